#include "services/node/server/views_subsystem.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/kafka/errors.h"
#include "common/log/log.h"
#include "common/status/status_macros.h"
#include "common/views/names.h"
#include "common/views/window.h"
#include "services/node/server/startup.h"

namespace polder {
namespace node {

namespace {

ViewJob::Stats Sum(const ViewJob::Stats& a, const ViewJob::Stats& b) {
  ViewJob::Stats s = a;
  s.merged += b.merged;
  s.late += b.late;
  s.cells += b.cells;
  s.commits += b.commits;
  for (const auto& [k, n] : b.rejected) s.rejected[k] += n;
  for (const auto& [k, n] : b.protected_cells) s.protected_cells[k] += n;
  s.watermark = std::max(a.watermark, b.watermark);
  s.gate.moves += b.gate.moves;
  s.gate.fallbacks += b.gate.fallbacks;
  s.gate.secondary += b.gate.secondary;
  s.gate.relabelled += b.gate.relabelled;
  s.gate.c2_violations += b.gate.c2_violations;
  s.gate.c3_violations += b.gate.c3_violations;
  s.gate.lps += b.gate.lps;
  for (const auto& [view, figure] : b.feed) s.feed[view] = figure;  // b is the later job
  return s;
}

}  // namespace

class ViewsSubsystem::SetRole : public replica::Role {
 public:
  SetRole(ViewsSubsystem* views, Set* set) : views_(views), set_(set) {}
  void Start() override { views_->StartSet(set_); }
  // A lost set's last commit is fenced by the new holder; a handed-over one commits first.
  void Stop(bool lost) override {
    (void)lost;
    views_->StopSet(set_, "elsewhere");
  }

 private:
  ViewsSubsystem* const views_;
  Set* const set_;
};

ViewsSubsystem::ViewsSubsystem(const NodeConfig& config, kafka::ClientFactory& kafka,
                               SchemaSubsystem* schemas, BeforeCommit before_commit,
                               replica::RoleGroup* roles)
    : config_(config),
      kafka_(kafka),
      schemas_(schemas),
      before_commit_(std::move(before_commit)),
      roles_(roles) {
  for (const views::ViewSetSpec& spec : config.views) {
    auto set = std::make_unique<Set>();
    set->spec = spec;
    set_roles_.push_back(std::make_unique<SetRole>(this, set.get()));
    roles_->Add(RoleName(spec.dataset), "views", set_roles_.back().get());
    sets_.push_back(std::move(set));
  }
}

ViewsSubsystem::~ViewsSubsystem() { Stop(); }

void ViewsSubsystem::StartSet(Set* set) {
  if (set->thread.joinable()) set->thread.join();  // a run that ended fenced
  set->stop = false;
  {
    absl::MutexLock lock(&set->mu);
    set->wake = false;
    set->state = "starting";
  }
  set->thread = std::thread([this, set] { Supervise(set); });
}

void ViewsSubsystem::StopSet(Set* set, const std::string& final_state) {
  set->stop = true;
  {
    absl::MutexLock lock(&set->mu);
    set->wake = true;
  }
  if (set->thread.joinable()) set->thread.join();
  absl::MutexLock lock(&set->mu);
  set->state = final_state;
}

void ViewsSubsystem::Stop() {
  for (const std::unique_ptr<Set>& set : sets_) StopSet(set.get(), "stopped");
}

absl::StatusOr<ViewJob::Options> ViewsSubsystem::OptionsFor(const views::ViewSetSpec& spec) {
  const DatasetConfig* d = config_.FindDataset(spec.dataset);
  if (d == nullptr) return absl::InternalError("view set of an unknown dataset");
  SchemaCache* cache = schemas_->cache();
  ASSIGN_OR_RETURN(int32_t current_id, cache->IdOf(d->subject, -1),
                   _.Prepend(absl::StrCat("the schema of ", spec.dataset, ": ")));
  ASSIGN_OR_RETURN(int32_t output_id, cache->IdOf(views::kAggregateCellSubject, -1),
                   _.Prepend(absl::StrCat(views::kAggregateCellSubject,
                                          " (registered by `polderctl federation bootstrap`): ")));
  // The parsed schemas stay alive as long as the job may use their descriptors.
  auto held = std::make_shared<std::map<int32_t, std::shared_ptr<const CachedSchema>>>();
  auto held_mu = std::make_shared<absl::Mutex>();
  auto descriptor_of = [cache, held, held_mu, subject = d->subject](
                           int32_t id) -> absl::StatusOr<const google::protobuf::Descriptor*> {
    std::shared_ptr<const CachedSchema> schema;
    {
      absl::MutexLock lock(held_mu.get());
      auto it = held->find(id);
      if (it != held->end()) schema = it->second;
    }
    if (schema == nullptr) {
      ASSIGN_OR_RETURN(schema, cache->ById(id));
      absl::MutexLock lock(held_mu.get());
      (*held)[id] = schema;
    }
    const google::protobuf::Descriptor* message =
        schema->parsed->file()->pool()->FindMessageTypeByName(subject);
    if (message == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("schema ", id, " does not define ", subject));
    }
    return message;
  };
  ViewJob::Options o;
  o.peer = config_.peer_id;
  o.federation = config_.federation;
  o.spec = spec;
  o.source_partitions = d->partitions;
  o.key_path = absl::StrCat(config_.state_dir, "/views/", spec.dataset, ".key");
  o.output_schema_id = output_id;
  const SizeLimits limits = DeriveSizeLimits(config_);
  o.producer.client = NodeKafkaClient(config_);
  o.producer.max_request_bytes = limits.producer_max_request_bytes;
  o.producer.batch_bytes = limits.producer_batch_bytes;
  o.producer.delivery_timeout = config_.delivery_timeout;
  o.producer.transaction_timeout = config_.transaction_timeout;
  o.producer.transaction_spacing = config_.transaction_spacing;
  o.producer.linger = absl::ZeroDuration();  // each commit flushes at once
  o.consumer.client = NodeKafkaClient(config_);
  o.consumer.max_partition_fetch_bytes = limits.consumer_max_partition_fetch_bytes;
  o.kafka_timeout = config_.publish_timeout;
  ASSIGN_OR_RETURN(o.dataset_message, descriptor_of(current_id));
  o.descriptor_of = std::move(descriptor_of);
  if (before_commit_) {
    o.before_commit = [hook = before_commit_, dataset = spec.dataset](int64_t commit) {
      hook(dataset, commit);
    };
  }
  return o;
}

void ViewsSubsystem::Supervise(Set* set) {
  absl::Duration backoff = absl::Seconds(1);
  while (!set->stop) {
    absl::Status ended;
    absl::StatusOr<ViewJob::Options> options = OptionsFor(set->spec);
    std::unique_ptr<ViewJob> job;
    if (options.ok()) {
      absl::StatusOr<std::unique_ptr<ViewJob>> started = ViewJob::Start(*options, kafka_);
      if (started.ok()) {
        job = *std::move(started);
      } else {
        ended = started.status();
      }
    } else {
      ended = options.status();
    }
    if (job != nullptr) {
      {
        absl::MutexLock lock(&set->mu);
        set->state = "running";
        set->last_error.clear();
      }
      backoff = absl::Seconds(1);
      absl::Time last_export = absl::InfinitePast();
      while (!set->stop) {
        ended = job->Step();
        if (!ended.ok()) break;
        if (absl::Now() - last_export >= absl::Seconds(1)) {
          absl::MutexLock lock(&set->mu);
          set->stats = job->stats();
          last_export = absl::Now();
        }
      }
      if (ended.ok()) ended = job->Commit();  // stopping: what is pending
      absl::MutexLock lock(&set->mu);
      set->ended = Sum(set->ended, job->stats());
      set->stats = ViewJob::Stats();
      set->stats.watermark = set->ended.watermark;
    }
    if (set->stop && ended.ok()) break;
    if (kafka::IsFenced(ended)) {
      // Another replica holds the set now: never initialise over it (ADR 0021 §3). The group
      // stops this role and, if it gives the set back, starts it anew.
      {
        absl::MutexLock lock(&set->mu);
        set->state = "fenced";
        set->last_error = std::string(ended.message());
      }
      log::Error("views fenced: another replica holds the set; waiting for the group",
                 {{"dataset", set->spec.dataset}, {"error", std::string(ended.message())}});
      roles_->Fenced(RoleName(set->spec.dataset));
      return;
    }
    {
      absl::MutexLock lock(&set->mu);
      set->state = "retrying";
      set->last_error = std::string(ended.message());
      ++set->restarts;
    }
    log::Error("views stopped; starting again", {{"dataset", set->spec.dataset},
                                                 {"error", std::string(ended.message())},
                                                 {"retry_in", absl::FormatDuration(backoff)}});
    job.reset();
    absl::MutexLock lock(&set->mu);
    set->mu.AwaitWithTimeout(absl::Condition(&set->wake), backoff);
    backoff = std::min(backoff * 2, absl::Seconds(30));
  }
}

nlohmann::json ViewsSubsystem::Status() const {
  nlohmann::json out = nlohmann::json::array();
  for (const std::unique_ptr<Set>& set : sets_) {
    absl::MutexLock lock(&set->mu);
    const ViewJob::Stats total = Sum(set->ended, set->stats);
    nlohmann::json listed = nlohmann::json::array();
    for (const views::ViewSpec& v : set->spec.views) {
      listed.push_back({{"id", v.id},
                        {"topic", views::ViewTopic(config_.peer_id, set->spec.dataset, v.id)},
                        {"definition_hash", views::DefinitionHash(set->spec, v)}});
    }
    out.push_back({{"dataset", set->spec.dataset},
                   {"state", set->state},
                   {"error", set->last_error},
                   {"restarts", set->restarts},
                   {"watermark", total.watermark == absl::InfinitePast()
                                     ? std::string()
                                     : views::FormatInstant(total.watermark)},
                   {"records_merged", total.merged},
                   {"records_late", total.late},
                   {"records_rejected", total.rejected},
                   {"cells_emitted", total.cells},
                   {"cells_protected", total.protected_cells},
                   {"gate",
                    {{"moves", total.gate.moves},
                     {"fallbacks", total.gate.fallbacks},
                     {"secondary", total.gate.secondary},
                     {"relabelled", total.gate.relabelled},
                     {"c2_violations", total.gate.c2_violations},
                     {"c3_violations", total.gate.c3_violations},
                     {"linear_programs", total.gate.lps}}},
                   {"views", listed}});
    if (total.gate.c2_violations + total.gate.c3_violations > 0) {
      out.back()["alert"] =
          "the publication gate published cells below their protection criterion "
          "(ADR 0016 §11): review the view set's definitions with a disclosure-control expert";
    }
  }
  return out;
}

std::map<std::string, int64_t> ViewsSubsystem::LateRecords() const {
  std::map<std::string, int64_t> out;
  for (const std::unique_ptr<Set>& set : sets_) {
    absl::MutexLock lock(&set->mu);
    out[set->spec.dataset] += Sum(set->ended, set->stats).late;
  }
  return out;
}

std::map<std::string, std::map<std::string, views::FeedFigure>> ViewsSubsystem::FeedFigures()
    const {
  std::map<std::string, std::map<std::string, views::FeedFigure>> out;
  for (const std::unique_ptr<Set>& set : sets_) {
    absl::MutexLock lock(&set->mu);
    out[set->spec.dataset] = Sum(set->ended, set->stats).feed;
  }
  return out;
}

void ViewsSubsystem::Export(NodeMetrics* metrics) const {
  for (const std::unique_ptr<Set>& set : sets_) {
    absl::MutexLock lock(&set->mu);
    const ViewJob::Stats total = Sum(set->ended, set->stats);
    NodeMetrics::ViewSetStats s;
    s.running = set->state == "running";
    s.restarts = set->restarts;
    s.merged = total.merged;
    s.late = total.late;
    s.rejected = total.rejected;
    s.cells = total.cells;
    s.protected_cells = total.protected_cells;
    s.commits = total.commits;
    s.watermark = total.watermark;
    s.gate_decisions = {{"move", total.gate.moves},
                        {"fallback", total.gate.fallbacks},
                        {"secondary", total.gate.secondary},
                        {"relabelled", total.gate.relabelled}};
    s.gate_violations = total.gate.c2_violations + total.gate.c3_violations;
    metrics->SetViewSet(set->spec.dataset, s);
  }
}

}  // namespace node
}  // namespace polder
