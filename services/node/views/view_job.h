// One dataset's view set, computed exactly once by the node that owns the dataset (ADR 0016
// §3–§5): reads `<peer>.<dataset>` read_committed from assigned partitions, reduces each record
// to a fact, keeps the views' open cells in memory, and at every commit (at most every
// `commit_interval` while anything changed) writes in one Kafka transaction
//   - the cells of windows that closed, guarded, to `<peer>.<dataset>.view.<view>`;
//   - the changelog entries (`_polder.views.<dataset>.changelog`): changed cells, close
//     decisions, runs of late and rejected records, progress (watermark, input positions).
// Recovery is Start(): InitTransactions under `polder-views-<peer>-<dataset>` (fencing an older
// instance), the changelog read to its end, the source resumed at the stored positions — so
// after kill -9 nothing is emitted twice or lost. A job whose commit failed must be started
// again (Run returns the error; the node's supervisor restarts it).
//
// Two threads: a reader thread polls the source and reduces each record to a fact (decoding,
// parsing and binding, the larger part of the work per record) ahead of the job, up to
// `read_ahead` facts; the caller's thread applies them to the views in source order, guards,
// gates and commits. So records are decoded while a commit waits for the broker.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<ViewJob> job, ViewJob::Start(options, clients));
//   RETURN_IF_ERROR(job->Run(stop));
#ifndef POLDER_SERVICES_NODE_VIEWS_VIEW_JOB_H_
#define POLDER_SERVICES_NODE_VIEWS_VIEW_JOB_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/kafka/client_factory.h"
#include "common/kafka/state_writer.h"
#include "common/views/binding.h"
#include "common/views/changelog.h"
#include "common/views/engine.h"
#include "common/views/gate.h"
#include "common/views/guard.h"
#include "common/views/ptable.h"
#include "common/views/spec.h"
#include "common/views/view_key.h"
#include "common/views/window.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"

namespace polder {
namespace node {

class ViewJob {
 public:
  struct Options {
    std::string peer;        // this node's peer id
    std::string federation;  // for ce_dataschema
    views::ViewSetSpec spec;
    int32_t source_partitions = 1;
    std::string key_path;             // <state_dir>/views/<dataset>.key
    int32_t output_schema_id = 0;     // polder.views.v1.AggregateCell's registry id
    kafka::ProducerOptions producer;  // client settings; the transactional id is the job's
    kafka::ConsumerOptions consumer;  // client settings
    absl::Duration commit_interval = absl::Milliseconds(100);
    absl::Duration poll_wait = absl::Milliseconds(100);
    // How many facts the reader thread may hold ahead of the job (besides one poll's worth,
    // up to 10,000, read for each Step). About 200 bytes each.
    int64_t read_ahead = 50000;
    absl::Duration kafka_timeout = absl::Seconds(30);
    // The dataset's message in its current schema: the set is bound to it at start (and
    // refused if it does not fit); it also gives the personal-data class.
    const google::protobuf::Descriptor* dataset_message = nullptr;
    // The dataset message of a schema id (the node's schema cache).
    std::function<absl::StatusOr<const google::protobuf::Descriptor*>(int32_t schema_id)>
        descriptor_of;
    std::function<absl::Time()> now = [] { return absl::Now(); };
    // Called in each commit that emits cells, after its records reached the broker and before
    // it commits, with the count of such commits (1, 2, …): the test-hooks build of polder-node
    // dies there. Empty in production.
    std::function<void(int64_t commit)> before_commit;
  };

  struct Stats {
    int64_t merged = 0;
    int64_t late = 0;
    std::map<std::string, int64_t> rejected;         // by reason
    int64_t cells = 0;                               // cells emitted
    std::map<std::string, int64_t> protected_cells;  // by rule
    int64_t commits = 0;
    int64_t recoveries = 0;
    absl::Time watermark = absl::InfinitePast();
    // The publication gate (ADR 0016 §10): counted since start; violations alert on /statusz.
    views::Gate::Report gate;
    // Feed quality's entities reporting (ADR 0018 §6): per feed-quality view (spec.h) what it
    // published for its newest closed window, as committed (restored from the changelog).
    std::map<std::string, views::FeedFigure> feed;
  };

  // Recovers (see above). FAILED_PRECONDITION when the changelog was written with another key
  // or p-table, or a view's definition changed; the key file's problems as ViewKey says.
  static absl::StatusOr<std::unique_ptr<ViewJob>> Start(Options options,
                                                        kafka::ClientFactory& kafka);
  ~ViewJob();

  // Applies every fact the reader has produced, including those of a poll that started after
  // this call (so a Step sees at least what one poll at the time of the call would; it waits up
  // to poll_wait when nothing is there), then, when due, commits.
  absl::Status Step();
  // Steps until `stop`, then commits what is pending.
  absl::Status Run(const std::atomic<bool>& stop);
  // Commits now if anything changed (records read, windows closed).
  absl::Status Commit();

  Stats stats() const { return stats_; }
  // Items the reader thread holds that no Step has applied yet (thread-safe).
  int64_t read_ahead() const;

 private:
  // What the reader thread hands to the job, in source order.
  struct Item {
    enum class Kind { kFact, kUnreadable, kPosition };
    Kind kind = Kind::kFact;
    int32_t partition = 0;
    int64_t offset = 0;  // kPosition: the consumer's position (past markers and aborted records)
    views::Fact fact;    // kFact
  };

  ViewJob(Options options, kafka::ClientFactory& kafka);
  absl::Status Recover();
  // The reader thread: polls and reduces records to items until stopped or a read fails.
  void ReadLoop();
  // One poll's items; an error when the source or a schema cannot be read now.
  absl::StatusOr<std::vector<Item>> ReadOnce();
  void Apply(Item& item, absl::Time now);
  absl::StatusOr<const views::Binding*> BindingFor(int32_t schema_id);
  void Reject(int32_t partition, int64_t offset, const std::string& reason);
  void Late(int32_t partition, int64_t offset);
  absl::Status Fill(const std::vector<views::ClosedCell>& closed,
                    const std::vector<views::PublishedCell>& published,
                    const std::vector<views::CellId>& forgotten,
                    const std::vector<views::MapPair>& pairs_new,
                    const std::vector<views::MapPair>& pairs_gone,
                    const std::optional<views::Engine::Advance>& advance);

  Options options_;
  kafka::ClientFactory& kafka_;
  // Owned by the reader thread once it runs: consumer_, keys_, messages_, scratch_, bindings_,
  // unbindable_. Everything else belongs to the caller's thread (Step, Commit).
  std::string source_topic_;
  std::string changelog_topic_;
  std::unique_ptr<kafka::StateWriter> state_;
  std::unique_ptr<kafka::Consumer> consumer_;
  std::unique_ptr<views::PTable> table_;
  std::unique_ptr<views::WindowClock> clock_;
  std::unique_ptr<views::SetLayout> layout_;
  std::unique_ptr<views::ViewKey> key_;
  std::unique_ptr<views::RecordKeyCache> keys_;
  std::unique_ptr<views::Guard> guard_;
  std::unique_ptr<views::Engine> engine_;
  std::unique_ptr<views::Gate> gate_;
  std::map<std::string, absl::Time> coverage_;  // view id → since (views that joined later)
  std::vector<std::string> definition_hashes_;  // per view
  // Per view: every window ending at or before this instant is closed and its close record
  // written (ADR 0018 §2); the start of the window holding the watermark.
  std::vector<absl::Time> closed_through_;
  absl::Time ClosedThrough(const views::ViewSpec& view) const;
  google::protobuf::DynamicMessageFactory messages_;
  // Per schema id: the message records of that schema are parsed into (declared after
  // messages_, whose prototypes they come from, so they are destroyed first).
  std::map<int32_t, std::unique_ptr<google::protobuf::Message>> scratch_;
  std::map<int32_t, std::unique_ptr<views::Binding>> bindings_;
  std::map<int32_t, std::string> unbindable_;  // schema id → why
  // Runs of late and rejected records since the last commit, per (kind, partition).
  std::map<std::pair<std::string, int32_t>, views::RecordRun> runs_;
  std::vector<views::RecordRun> finished_runs_;
  std::vector<std::string> finished_run_kinds_;
  // Feed figures as committed, and those the commit under way changes (written by Fill).
  std::map<std::string, views::FeedFigure> feed_;
  std::vector<std::pair<std::string, views::FeedFigure>> feed_changed_;
  // The feed figures after `closed` (guarded and gated as `published`) is committed.
  std::map<std::string, views::FeedFigure> FeedAfter(
      const std::vector<views::ClosedCell>& closed,
      const std::vector<views::PublishedCell>& published) const;
  bool dirty_ = false;
  bool meta_pending_ = false;  // the changelog's meta is missing or lacks a view
  int64_t emitting_commits_ = 0;
  absl::Time last_commit_;
  Stats stats_;

  // Between the reader thread and Step.
  mutable absl::Mutex read_mu_;
  std::deque<std::vector<Item>> read_ ABSL_GUARDED_BY(read_mu_);  // one vector per poll
  int64_t read_items_ ABSL_GUARDED_BY(read_mu_) = 0;
  uint64_t polls_requested_ ABSL_GUARDED_BY(read_mu_) = 0;  // by Step
  uint64_t polls_answered_ ABSL_GUARDED_BY(read_mu_) = 0;   // requests a finished poll served
  std::optional<absl::Status> read_error_ ABSL_GUARDED_BY(read_mu_);
  bool reader_stopping_ ABSL_GUARDED_BY(read_mu_) = false;
  std::thread reader_;  // started last in Recover, joined first in the destructor
};

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_VIEWS_VIEW_JOB_H_
