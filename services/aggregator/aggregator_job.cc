#include "services/aggregator/aggregator_job.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/json/bounded.h"
#include "common/log/log.h"
#include "common/status/status_macros.h"
#include "common/views/names.h"
#include "common/views/window.h"
#include "common/wire/confluent_frame.h"
#include "common/wire/record_headers.h"
#include "nlohmann/json.hpp"

namespace polder {
namespace aggregator {

namespace nv1 = ::polder::national::v1;
namespace vv1 = ::polder::views::v1;
using json = nlohmann::json;

namespace {

const char* OutcomeName(National::Outcome o) {
  switch (o) {
    case National::Outcome::kCell:
      return "cell";
    case National::Outcome::kClose:
      return "close";
    case National::Outcome::kUnknownCity:
      return "unknown_city";
    case National::Outcome::kOtherView:
      return "other_view";
    case National::Outcome::kTooOld:
      return "too_old";
    case National::Outcome::kAfterClose:
      return "after_close";
    case National::Outcome::kMalformed:
      return "malformed";
  }
  return "unknown";
}

std::string ViewKey(const NationalViewSpec& v) { return absl::StrCat(v.dataset, "/", v.view); }

std::string WindowKey(const NationalViewSpec& v, absl::Time start) {
  return absl::StrCat("window/", ViewKey(v), "/", absl::ToUnixMillis(start));
}

// Applies the changelog's value of `key` (nullopt: a tombstone, the window was forgotten) to
// `nationals`; "progress" goes to `positions` (if set). An entry of a view no longer configured
// is left alone.
absl::Status ApplyChangelogEntry(const std::map<std::string, size_t>& by_key,
                                 std::vector<National>& nationals, const std::string& key,
                                 const std::optional<std::string>& value,
                                 std::map<std::string, int64_t>* positions) {
  if (key == "progress") {
    if (!value.has_value() || positions == nullptr) return absl::OkStatus();
    absl::StatusOr<json> j = json_input::Parse(*value);
    if (!j.ok() || !j->is_object()) {
      return absl::DataLossError("the aggregator's changelog entry 'progress' cannot be read");
    }
    for (auto it = j->begin(); it != j->end(); ++it) {
      if (!it.value().is_number_integer()) {
        return absl::DataLossError(absl::StrCat("progress of ", it.key(), " is no offset"));
      }
      (*positions)[it.key()] = it.value().get<int64_t>();
    }
    return absl::OkStatus();
  }
  // window/<dataset>/<view>/<ms> and cities/<dataset>/<view>
  const std::vector<std::string> parts = absl::StrSplit(key, '/');
  if (parts.size() < 3) {
    return absl::DataLossError(absl::StrCat("changelog entry '", key, "' is of no known kind"));
  }
  auto view = by_key.find(absl::StrCat(parts[1], "/", parts[2]));
  if (view == by_key.end()) return absl::OkStatus();  // a view no longer configured
  National& n = nationals[view->second];
  absl::Status s = absl::OkStatus();
  int64_t ms = 0;
  if (parts[0] == "window" && parts.size() == 4 && !value.has_value() &&
      absl::SimpleAtoi(parts[3], &ms)) {
    n.Drop(absl::FromUnixMillis(ms));
  } else if (!value.has_value()) {
    // A tombstone of another kind: nothing to restore.
  } else if (parts[0] == "window" && parts.size() == 4) {
    s = n.Restore(*value);
  } else if (parts[0] == "cities" && parts.size() == 3) {
    s = n.RestoreCities(*value);
  } else {
    s = absl::DataLossError("unknown kind");
  }
  if (!s.ok()) {
    return absl::DataLossError(absl::StrCat("changelog entry '", key, "': ", s.message()));
  }
  return absl::OkStatus();
}

// Every decided figure of `nationals`, per view index.
absl::StatusOr<std::vector<std::pair<size_t, nv1::NationalFigure>>> AllFigures(
    const std::vector<National>& nationals) {
  std::vector<std::pair<size_t, nv1::NationalFigure>> all;
  for (size_t i = 0; i < nationals.size(); ++i) {
    for (const auto& [start, w] : nationals[i].windows()) {
      for (const Revision& r : w.revisions) {
        absl::StatusOr<nv1::NationalFigure> f = nationals[i].Figure(start, r.number);
        if (!f.ok()) return f.status();
        all.emplace_back(i, *std::move(f));
      }
    }
  }
  return all;
}

}  // namespace

std::string NationalTopic(const std::string& dataset, const std::string& view) {
  return absl::StrCat("national.", dataset, ".view.", view);
}

AggregatorJob::AggregatorJob(Options options, kafka::ClientFactory& kafka)
    : options_(std::move(options)), kafka_(kafka) {}

absl::StatusOr<std::unique_ptr<AggregatorJob>> AggregatorJob::Start(Options options,
                                                                    kafka::ClientFactory& kafka) {
  if (options.id.empty()) return absl::InvalidArgumentError("the aggregator needs an id");
  if (options.views.empty()) return absl::InvalidArgumentError("no national view is configured");
  std::unique_ptr<AggregatorJob> job(new AggregatorJob(std::move(options), kafka));
  RETURN_IF_ERROR(job->Recover());
  return job;
}

absl::Status AggregatorJob::Recover() {
  nationals_.clear();
  inputs_.clear();
  std::map<std::string, size_t> by_key;
  for (size_t i = 0; i < options_.views.size(); ++i) {
    const NationalViewSpec& v = options_.views[i];
    if (!by_key.emplace(ViewKey(v), i).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("national view ", ViewKey(v), " is configured twice"));
    }
    nationals_.emplace_back(v);
    for (const std::string& city : v.cities) {
      inputs_[views::ViewTopic(city, v.dataset, v.view)] = {i, city};
    }
  }
  kafka::StateWriter::Options so;
  so.producer = options_.producer;
  so.producer.transactional_id = absl::StrCat("polder-aggregator-", options_.id);
  so.consumer = options_.consumer;
  so.state_topic = options_.changelog_topic;
  so.timeout = options_.kafka_timeout;
  state_ = std::make_unique<kafka::StateWriter>(kafka_, so);
  // The last value of every key, applied once the changelog is read to its end.
  std::map<std::string, std::optional<std::string>> latest;
  absl::StatusOr<int64_t> read = state_->Recover([&](const kafka::ConsumedRecord& r) {
    if (!r.key.has_value()) return absl::OkStatus();
    latest[*r.key] = r.tombstone ? std::nullopt : std::optional<std::string>(r.value);
    return absl::OkStatus();
  });
  if (!read.ok()) return read.status();
  positions_.clear();
  for (const auto& [key, value] : latest) {
    if (!value.has_value()) continue;
    RETURN_IF_ERROR(ApplyChangelogEntry(by_key, nationals_, key, value, &positions_));
  }
  for (National& n : nationals_) {
    n.TakeDirty();
    n.TakeCitiesDirty();
  }

  kafka::ConsumerOptions co = options_.consumer;
  co.read_committed = true;
  ASSIGN_OR_RETURN(consumer_, kafka_.NewConsumer(co));
  assigned_.clear();
  RETURN_IF_ERROR(AssignInputs());
  dirty_ = false;
  last_commit_ = options_.now();
  {
    absl::MutexLock lock(&mu_);
    stats_.recoveries = state_->recoveries();
  }
  published_.clear();
  for (const National& n : nationals_) published_[ViewKey(n.spec())];
  ASSIGN_OR_RETURN(auto all, AllFigures(nationals_));
  Publish(all, {});
  log::Info("aggregator recovered", {{"views", static_cast<int64_t>(nationals_.size())},
                                     {"inputs", static_cast<int64_t>(inputs_.size())}});
  return absl::OkStatus();
}

absl::Status AggregatorJob::AssignInputs() {
  last_topic_check_ = options_.now();
  if (assigned_.size() == inputs_.size()) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::unique_ptr<kafka::Admin> admin, kafka_.NewAdmin(options_.consumer.client));
  bool added = false;
  std::vector<std::string> waiting;
  for (const auto& [topic, who] : inputs_) {
    if (assigned_.count(topic) > 0) continue;
    absl::StatusOr<kafka::TopicDescription> d = admin->DescribeTopic(topic, options_.kafka_timeout);
    if (absl::IsNotFound(d.status())) {
      waiting.push_back(topic);
      continue;
    }
    if (!d.ok()) return d.status();
    if (d->partitions != 1) {
      return absl::FailedPreconditionError(absl::StrCat("input ", topic, " has ", d->partitions,
                                                        " partitions; a mirrored view has one"));
    }
    assigned_.insert(topic);
    added = true;
  }
  if (added) {
    std::vector<kafka::TopicPartitionOffset> assignment;
    for (const std::string& topic : assigned_) {
      auto pos = positions_.find(topic);
      assignment.push_back({topic, 0, pos == positions_.end() ? 0 : pos->second});
    }
    RETURN_IF_ERROR(consumer_->Assign(assignment));
  }
  absl::MutexLock lock(&mu_);
  stats_.waiting_inputs = std::move(waiting);
  return absl::OkStatus();
}

absl::Status AggregatorJob::Step() {
  if (assigned_.size() < inputs_.size() &&
      options_.now() - last_topic_check_ >= options_.topic_check_interval) {
    RETURN_IF_ERROR(AssignInputs());
  }
  ASSIGN_OR_RETURN(std::vector<kafka::ConsumedRecord> records,
                   consumer_->Poll(options_.poll_wait, 1000));
  const absl::Time now = options_.now();
  std::map<std::string, int64_t> outcomes;
  int64_t unreadable = 0;
  for (const kafka::ConsumedRecord& r : records) {
    auto input = inputs_.find(r.topic);
    if (input == inputs_.end()) continue;
    positions_[r.topic] = r.offset + 1;
    dirty_ = true;
    absl::StatusOr<wire::Frame> frame = wire::Decode(r.value);
    vv1::AggregateCell cell;
    if (!frame.ok() ||
        !cell.ParseFromArray(frame->payload.data(), static_cast<int>(frame->payload.size()))) {
      ++unreadable;
      continue;
    }
    ++outcomes[OutcomeName(nationals_[input->second.first].Offer(input->second.second, cell, now))];
  }
  // Past transaction markers and aborted records, too.
  for (const std::string& topic : assigned_) {
    absl::StatusOr<int64_t> pos = consumer_->Position(topic, 0);
    if (pos.ok() && *pos >= 0 && *pos > positions_[topic]) {
      positions_[topic] = *pos;
      dirty_ = true;
    }
  }
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [name, n] : outcomes) stats_.records[name] += n;
    stats_.unreadable += unreadable;
    stats_.positions = positions_;
  }
  if (now - last_commit_ >= options_.commit_interval) return Commit();
  return absl::OkStatus();
}

absl::Status AggregatorJob::Run(const std::atomic<bool>& stop) {
  while (!stop.load()) RETURN_IF_ERROR(Step());
  return Commit();
}

absl::Status AggregatorJob::Commit() {
  const absl::Time now = options_.now();
  last_commit_ = now;
  struct Out {
    size_t view;
    nv1::NationalFigure figure;
  };
  std::vector<Out> figures;
  std::vector<std::pair<size_t, absl::Time>> changed, gone;
  std::vector<size_t> cities_changed;
  int64_t revisions = 0;
  for (size_t i = 0; i < nationals_.size(); ++i) {
    National& n = nationals_[i];
    for (const Decision& d : n.Decide(now)) {
      ASSIGN_OR_RETURN(nv1::NationalFigure f, n.Figure(d.window, d.revision));
      if (d.revision > 0) ++revisions;
      figures.push_back({i, std::move(f)});
    }
    for (absl::Time w : n.Forget(now)) gone.push_back({i, w});
    for (absl::Time w : n.TakeDirty()) changed.push_back({i, w});
    if (n.TakeCitiesDirty()) cities_changed.push_back(i);
  }
  if (!dirty_ && figures.empty() && changed.empty() && gone.empty() && cities_changed.empty()) {
    return absl::OkStatus();
  }
  const bool writes_figures = !figures.empty();
  const int64_t commit_number = writes_figures ? figure_commits_ + 1 : figure_commits_;
  absl::Status s = state_->Transact([&]() -> absl::Status {
    kafka::TransactionalProducer* producer = state_->producer();
    const std::string header = wire::EncodeHeader(options_.output_schema_id, {0});
    kafka::TransactionRecords txn(producer);
    const std::string data_schema =
        wire::DataSchemaUrn(options_.federation, options_.output_schema_id);
    for (const Out& o : figures) {
      const nv1::NationalFigure& f = o.figure;
      kafka::ProducerRecord r;
      r.topic = NationalTopic(f.dataset_id(), f.view_id());
      r.partition = 0;
      r.key = f.figure_key();
      r.value = header + f.SerializeAsString();
      r.timestamp_ms = f.decided_at().seconds() * 1000 + f.decided_at().nanos() / 1000000;
      const std::string start =
          views::FormatInstant(absl::FromUnixSeconds(f.window_start().seconds()));
      r.headers = {{"ce_specversion", "1.0"},
                   {"ce_id", absl::StrCat("national:", f.figure_key(), "/", f.revision())},
                   {"ce_source", absl::StrCat("/national/", options_.id, "/datasets/",
                                              f.dataset_id(), "/views/", f.view_id())},
                   {"ce_type", kNationalFigureSubject},
                   {"ce_time", start},
                   {wire::kDataSchemaHeader, data_schema},
                   {wire::kContentTypeHeader, wire::kConfluentProtobufContentType}};
      txn.Enqueue(r);
    }
    auto send_state = [&](std::string key, std::optional<std::string> value) {
      kafka::ProducerRecord r;
      r.topic = options_.changelog_topic;
      r.partition = 0;
      r.key = std::move(key);
      if (value.has_value()) {
        r.value = std::move(*value);
      } else {
        r.tombstone = true;
      }
      txn.Enqueue(r);
    };
    for (const auto& [i, w] : changed) {
      send_state(WindowKey(options_.views[i], w), nationals_[i].Encode(w));
    }
    for (const auto& [i, w] : gone) send_state(WindowKey(options_.views[i], w), std::nullopt);
    for (size_t i : cities_changed) {
      send_state(absl::StrCat("cities/", ViewKey(options_.views[i])), nationals_[i].EncodeCities());
    }
    json progress = json::object();
    for (const auto& [topic, offset] : positions_) progress[topic] = offset;
    send_state("progress", progress.dump());
    RETURN_IF_ERROR(txn.status());
    if (writes_figures && options_.before_commit) {
      RETURN_IF_ERROR(producer->Flush(options_.kafka_timeout));
      options_.before_commit(commit_number);
    }
    return absl::OkStatus();
  });
  if (!s.ok()) {
    return absl::Status(s.code(), absl::StrCat("aggregator: commit failed; the job restarts from "
                                               "its changelog: ",
                                               s.message()));
  }
  figure_commits_ = commit_number;
  dirty_ = false;
  {
    absl::MutexLock lock(&mu_);
    ++stats_.commits;
    stats_.figures += static_cast<int64_t>(figures.size());
    stats_.revisions += revisions;
  }
  if (!figures.empty() || !gone.empty()) {
    std::vector<std::pair<size_t, nv1::NationalFigure>> added;
    added.reserve(figures.size());
    for (Out& o : figures) added.emplace_back(o.view, std::move(o.figure));
    Publish(added, gone);
  }
  return absl::OkStatus();
}

void AggregatorJob::Publish(const std::vector<std::pair<size_t, nv1::NationalFigure>>& added,
                            const std::vector<std::pair<size_t, absl::Time>>& gone) {
  for (const auto& [i, f] : added) {
    published_[ViewKey(options_.views[i])][absl::FromUnixSeconds(f.window_start().seconds())]
        .push_back(f);
  }
  for (const auto& [i, w] : gone) published_[ViewKey(options_.views[i])].erase(w);
  auto out = std::make_shared<Figures>(published_);
  absl::MutexLock lock(&mu_);
  figures_ = std::move(out);
}

std::shared_ptr<const AggregatorJob::Figures> AggregatorJob::figures() const {
  absl::MutexLock lock(&mu_);
  return figures_;
}

AggregatorJob::Stats AggregatorJob::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

// ---- FiguresFollower -----------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<FiguresFollower>> FiguresFollower::Start(
    Options options, kafka::ClientFactory& kafka) {
  std::unique_ptr<FiguresFollower> f(new FiguresFollower(std::move(options), kafka));
  for (size_t i = 0; i < f->options_.views.size(); ++i) {
    f->by_key_.emplace(ViewKey(f->options_.views[i]), i);
    f->nationals_.emplace_back(f->options_.views[i]);
  }
  kafka::ConsumerOptions co = f->options_.consumer;
  co.read_committed = true;  // only what the job committed, as readers of the topics see it
  ASSIGN_OR_RETURN(f->consumer_, kafka.NewConsumer(co));
  RETURN_IF_ERROR(f->consumer_->Assign({{f->options_.changelog_topic, 0, 0}}));
  f->thread_ = std::thread([p = f.get()] { p->Loop(); });
  return f;
}

FiguresFollower::~FiguresFollower() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void FiguresFollower::Loop() {
  while (!stop_) {
    absl::StatusOr<std::vector<kafka::ConsumedRecord>> records =
        consumer_->Poll(options_.poll_wait, 10000);
    if (!records.ok()) {
      absl::MutexLock lock(&mu_);
      last_error_ = std::string(records.status().message());
      continue;
    }
    bool changed = false;
    for (const kafka::ConsumedRecord& r : *records) {
      if (!r.key.has_value()) continue;
      const std::optional<std::string> value =
          r.tombstone ? std::nullopt : std::optional<std::string>(r.value);
      absl::Status s = ApplyChangelogEntry(by_key_, nationals_, *r.key, value, nullptr);
      if (!s.ok()) {
        absl::MutexLock lock(&mu_);
        last_error_ = std::string(s.message());
        ++unreadable_;
        continue;
      }
      changed = true;
    }
    if (!changed && caught_up_) continue;
    if (changed) {
      absl::StatusOr<std::vector<std::pair<size_t, nv1::NationalFigure>>> all =
          AllFigures(nationals_);
      if (all.ok()) {
        auto figures = std::make_shared<AggregatorJob::Figures>();
        for (const National& n : nationals_) (*figures)[ViewKey(n.spec())];
        for (const auto& [i, f] : *all) {
          (*figures)[ViewKey(options_.views[i])][absl::FromUnixSeconds(f.window_start().seconds())]
              .push_back(f);
        }
        absl::MutexLock lock(&mu_);
        figures_ = std::move(figures);
      }
    }
    if (!caught_up_) {
      // Caught up once the position reached the changelog's end (its last stable offset).
      absl::StatusOr<std::pair<int64_t, int64_t>> marks =
          consumer_->QueryWatermarks(options_.changelog_topic, 0, options_.kafka_timeout);
      absl::StatusOr<int64_t> position = consumer_->Position(options_.changelog_topic, 0);
      if (marks.ok() && position.ok() && (*position >= marks->second || marks->second == 0)) {
        if (figures() == nullptr) {
          auto empty = std::make_shared<AggregatorJob::Figures>();
          for (const National& n : nationals_) (*empty)[ViewKey(n.spec())];
          absl::MutexLock lock(&mu_);
          figures_ = std::move(empty);
        }
        caught_up_ = true;
      }
    }
  }
}

std::shared_ptr<const AggregatorJob::Figures> FiguresFollower::figures() const {
  absl::MutexLock lock(&mu_);
  return figures_;
}

}  // namespace aggregator
}  // namespace polder
