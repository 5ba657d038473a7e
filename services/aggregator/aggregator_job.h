// The national aggregator's job (ADR 0018 §5): reads the cities' mirrored view topics
// (`<city>.<dataset>.view.<view>`, one partition each) read_committed, hands every record to its
// national view (national.h), and at every commit (at most every `commit_interval` while
// anything changed or a decision is due) writes in one Kafka transaction
//   - the national figures decided (a national close or a revision) to
//     `national.<dataset>.view.<view>` (polder.national.v1.NationalFigure, key = figure key);
//   - the changelog `_polder.aggregator.changelog` (compacted): each changed national window
//     with its revisions, each view's cities' progress, and the input positions.
// Recovery is Start(): InitTransactions under `polder-aggregator-<id>` (fencing an older
// instance), the changelog read to its end, the inputs resumed at the stored positions — so after
// kill -9 no figure is written twice and no decision is made differently.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<AggregatorJob> job, AggregatorJob::Start(options, clients));
//   RETURN_IF_ERROR(job->Run(stop));
//
// Step, Commit and Run on one thread; Figures() from any thread.
#ifndef POLDER_SERVICES_AGGREGATOR_AGGREGATOR_JOB_H_
#define POLDER_SERVICES_AGGREGATOR_AGGREGATOR_JOB_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/kafka/client_factory.h"
#include "common/kafka/state_writer.h"
#include "proto/polder/national/v1/national_figure.pb.h"
#include "services/aggregator/national.h"

namespace polder {
namespace aggregator {

inline constexpr char kChangelogTopic[] = "_polder.aggregator.changelog";
inline constexpr char kNationalFigureSubject[] = "polder.national.v1.NationalFigure";

// The national topic of a view: "national.<dataset>.view.<view>".
std::string NationalTopic(const std::string& dataset, const std::string& view);

class AggregatorJob {
 public:
  struct Options {
    std::string id;          // the national operator's peer id (transactional id)
    std::string federation;  // for ce_dataschema
    std::vector<NationalViewSpec> views;
    std::string changelog_topic = kChangelogTopic;
    int32_t output_schema_id = 0;  // polder.national.v1.NationalFigure's registry id
    kafka::ProducerOptions producer;
    kafka::ConsumerOptions consumer;
    absl::Duration commit_interval = absl::Milliseconds(200);
    absl::Duration poll_wait = absl::Milliseconds(100);
    absl::Duration kafka_timeout = absl::Seconds(30);
    // How often inputs whose topic does not exist yet (no contract or mirror so far) are looked
    // for again.
    absl::Duration topic_check_interval = absl::Seconds(5);
    std::function<absl::Time()> now = [] { return absl::Now(); };
    // Called in each commit that writes figures, after they reached the broker and before the
    // commit, with the count of such commits: the test-hooks build dies there. Empty in
    // production.
    std::function<void(int64_t commit)> before_commit;
  };

  struct Stats {
    std::map<std::string, int64_t> records;  // by outcome ("cell", "close", "unknown_city", …)
    int64_t figures = 0;                     // national figures written
    int64_t revisions = 0;                   // of which revisions after the close
    int64_t commits = 0;
    int64_t recoveries = 0;
    int64_t unreadable = 0;                    // records that are no AggregateCell
    std::vector<std::string> waiting_inputs;   // input topics that do not exist (yet)
    std::map<std::string, int64_t> positions;  // input topic -> next offset read
  };

  static absl::StatusOr<std::unique_ptr<AggregatorJob>> Start(Options options,
                                                              kafka::ClientFactory& kafka);

  // Reads what one poll gives and applies it; commits when due.
  absl::Status Step();
  // Steps until `stop`, then commits what is pending.
  absl::Status Run(const std::atomic<bool>& stop);
  // Decides what is due at now() and commits it with everything read.
  absl::Status Commit();

  Stats stats() const;

  // The figures of the windows the aggregator keeps, as committed (thread-safe): per view
  // (dataset/view), per window start, every revision in order.
  using Figures =
      std::map<std::string, std::map<absl::Time, std::vector<national::v1::NationalFigure>>>;
  std::shared_ptr<const Figures> figures() const;

 private:
  AggregatorJob(Options options, kafka::ClientFactory& kafka);
  absl::Status Recover();
  // Assigns the consumer every input whose topic exists, at its stored position; the others
  // wait (Stats::waiting_inputs) and are looked for again every topic_check_interval.
  absl::Status AssignInputs();
  // Readers' figures after a commit: `added` appended, windows in `gone` dropped.
  void Publish(const std::vector<std::pair<size_t, national::v1::NationalFigure>>& added,
               const std::vector<std::pair<size_t, absl::Time>>& gone);

  Options options_;
  kafka::ClientFactory& kafka_;
  std::unique_ptr<kafka::StateWriter> state_;
  std::unique_ptr<kafka::Consumer> consumer_;
  std::vector<National> nationals_;
  // Input topic → (national view index, city).
  std::map<std::string, std::pair<size_t, std::string>> inputs_;
  std::map<std::string, int64_t> positions_;  // input topic → next offset
  std::set<std::string> assigned_;            // inputs whose topic exists
  absl::Time last_topic_check_;
  Figures published_;  // what figures_ holds, kept to update it by copy
  bool dirty_ = false;
  absl::Time last_commit_;
  int64_t figure_commits_ = 0;
  mutable absl::Mutex mu_;
  Stats stats_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const Figures> figures_ ABSL_GUARDED_BY(mu_);
};

// The figures as committed, for a replica that does not hold the job (ADR 0021 §7): tails the
// changelog read_committed from its beginning (it is compacted) and rebuilds every view's decided
// figures from it, exactly as the job recovers them — so every replica's API and live updates
// serve what the holder committed, and a switch of holder is invisible beyond the failover.
class FiguresFollower {
 public:
  struct Options {
    std::vector<NationalViewSpec> views;
    std::string changelog_topic = kChangelogTopic;
    kafka::ConsumerOptions consumer;
    absl::Duration poll_wait = absl::Milliseconds(200);
    absl::Duration kafka_timeout = absl::Seconds(30);
  };

  static absl::StatusOr<std::unique_ptr<FiguresFollower>> Start(Options options,
                                                                kafka::ClientFactory& kafka);
  ~FiguresFollower();

  // The figures as of the last record read; null until the changelog was read to its end once.
  std::shared_ptr<const AggregatorJob::Figures> figures() const;
  bool caught_up() const { return caught_up_.load(); }

 private:
  FiguresFollower(Options options, kafka::ClientFactory& kafka)
      : options_(std::move(options)), kafka_(kafka) {}
  void Loop();

  const Options options_;
  kafka::ClientFactory& kafka_;
  std::map<std::string, size_t> by_key_;
  std::vector<National> nationals_;  // the loop thread's
  std::unique_ptr<kafka::Consumer> consumer_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> caught_up_{false};
  std::thread thread_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const AggregatorJob::Figures> figures_ ABSL_GUARDED_BY(mu_);
  std::string last_error_ ABSL_GUARDED_BY(mu_);
  int64_t unreadable_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace aggregator
}  // namespace polder

#endif  // POLDER_SERVICES_AGGREGATOR_AGGREGATOR_JOB_H_
