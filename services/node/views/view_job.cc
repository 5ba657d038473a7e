#include "services/node/views/view_job.h"

#include <sys/stat.h>

#include <set>
#include <utility>

#include "absl/memory/memory.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log/log.h"
#include "common/status/status_macros.h"
#include "common/views/names.h"
#include "common/views/times.h"
#include "common/views/window.h"
#include "common/wire/confluent_frame.h"
#include "common/wire/record_headers.h"
#include "proto/polder/views/v1/aggregate_cell.pb.h"

namespace polder {
namespace node {

namespace pb = ::google::protobuf;
namespace vv1 = ::polder::views::v1;

namespace {

// What a cell says of its protection: published, or withheld — never why (ADR 0016
// amendments: a reason bounds the cell for an attacker; the gate keeps it internally).
vv1::Protection ToProto(views::Protection p) {
  return p == views::Protection::kNone ? vv1::PROTECTION_UNSPECIFIED : vv1::PROTECTION_SUPPRESSED;
}

bool FileExists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

}  // namespace

ViewJob::ViewJob(Options options, kafka::ClientFactory& kafka)
    : options_(std::move(options)), kafka_(kafka) {
  source_topic_ = absl::StrCat(options_.peer, ".", options_.spec.dataset);
  changelog_topic_ = views::ViewChangelogTopic(options_.spec.dataset);
}

ViewJob::~ViewJob() {
  {
    absl::MutexLock lock(&read_mu_);
    reader_stopping_ = true;
  }
  if (reader_.joinable()) reader_.join();  // within one poll_wait
}

absl::StatusOr<std::unique_ptr<ViewJob>> ViewJob::Start(Options options,
                                                        kafka::ClientFactory& kafka) {
  RETURN_IF_ERROR(views::ValidateViewSet(options.peer, options.spec));
  if (options.dataset_message == nullptr || !options.descriptor_of) {
    return absl::InvalidArgumentError(
        absl::StrCat("views of ", options.spec.dataset, ": no schema to bind them to"));
  }
  auto job = absl::WrapUnique(new ViewJob(std::move(options), kafka));
  RETURN_IF_ERROR(job->Recover());
  return job;
}

absl::Status ViewJob::Recover() {
  const views::ViewSetSpec& spec = options_.spec;
  ASSIGN_OR_RETURN(views::PTable table, views::PTable::Build(spec.guard.ptable));
  table_ = std::make_unique<views::PTable>(std::move(table));
  ASSIGN_OR_RETURN(views::WindowClock clock, views::WindowClock::Amsterdam());
  clock_ = std::make_unique<views::WindowClock>(std::move(clock));
  layout_ = std::make_unique<views::SetLayout>(views::SetLayout::Of(spec, false));
  ASSIGN_OR_RETURN(views::Binding current,
                   views::Binding::Of(layout_.get(), options_.dataset_message));
  layout_->event_time_ends_interval = current.event_time_ends_interval();
  guard_ = std::make_unique<views::Guard>(spec.guard, current.data_class(), table_.get());
  definition_hashes_.clear();
  for (const views::ViewSpec& v : spec.views) {
    definition_hashes_.push_back(views::DefinitionHash(spec, v));
  }

  kafka::StateWriter::Options so;
  so.producer = options_.producer;
  so.producer.transactional_id = views::ViewTransactionalId(options_.peer, spec.dataset);
  so.consumer = options_.consumer;
  so.state_topic = changelog_topic_;
  so.timeout = options_.kafka_timeout;
  state_ = std::make_unique<kafka::StateWriter>(kafka_, so);
  views::RestoredViews restored;
  absl::StatusOr<int64_t> end = state_->Recover([&](const kafka::ConsumedRecord& r) {
    if (!r.key.has_value()) {
      return absl::DataLossError(absl::StrCat(changelog_topic_, " offset ", r.offset,
                                              ": a changelog entry without a key"));
    }
    return restored.Apply(*layout_, *r.key,
                          r.tombstone ? std::nullopt : std::optional<std::string>(r.value));
  });
  if (!end.ok()) {
    return Prepend(end.status(), absl::StrCat("views of ", spec.dataset, ": recovery: "));
  }

  // The key: made on the first start of an empty changelog, and from then on the one the
  // changelog names.
  if (restored.meta.has_value()) {
    ASSIGN_OR_RETURN(views::ViewKey key, views::ViewKey::Load(options_.key_path));
    if (key.Fingerprint() != restored.meta->key_fingerprint) {
      return absl::FailedPreconditionError(
          absl::StrCat("views of ", spec.dataset, ": the view key '", options_.key_path,
                       "' is not the one the changelog was written with (fingerprint ",
                       key.Fingerprint(), ", changelog ", restored.meta->key_fingerprint,
                       "); restore the key from backup, or reset the view set"));
    }
    if (restored.meta->ptable_sha256 != table_->sha256()) {
      return absl::FailedPreconditionError(
          absl::StrCat("views of ", spec.dataset, ": the perturbation table changed (",
                       table_->sha256(), ", changelog ", restored.meta->ptable_sha256,
                       "); the same cells would draw new noise, so the set does not start"));
    }
    for (size_t i = 0; i < spec.views.size(); ++i) {
      auto it = restored.meta->definitions.find(spec.views[i].id);
      if (it != restored.meta->definitions.end() && it->second != definition_hashes_[i]) {
        return absl::FailedPreconditionError(
            absl::StrCat("views of ", spec.dataset, ": the definition of view '", spec.views[i].id,
                         "' changed (", definition_hashes_[i], ", changelog ", it->second,
                         "); give the changed view a new id, or reset the view set"));
      }
    }
    key_ = std::make_unique<views::ViewKey>(std::move(key));
  } else {
    absl::StatusOr<views::ViewKey> key = FileExists(options_.key_path)
                                             ? views::ViewKey::Load(options_.key_path)
                                             : views::ViewKey::Create(options_.key_path);
    if (!key.ok()) return key.status();
    key_ = std::make_unique<views::ViewKey>(std::move(*key));
  }

  keys_ = std::make_unique<views::RecordKeyCache>(key_.get(), spec.dataset);
  const absl::Time now = options_.now();
  std::vector<int32_t> partitions;
  for (int32_t p = 0; p < options_.source_partitions; ++p) partitions.push_back(p);
  engine_ = std::make_unique<views::Engine>(layout_.get(), clock_.get(), partitions, now);
  // What a view that joins a running set cannot have seen: records up to the largest event
  // time read so far. The gate relates it to other views only for windows after that.
  absl::Time seen = restored.watermark;
  for (const auto& [p, clock] : restored.clocks) seen = std::max(seen, clock.max_event);
  coverage_.clear();
  gate_ = std::make_unique<views::Gate>(layout_.get(), clock_.get(), spec.guard,
                                        current.data_class(), table_.get());
  for (size_t i = 0; i < spec.views.size(); ++i) {
    const std::string& id = spec.views[i].id;
    if (restored.meta.has_value()) {
      auto known = restored.meta->coverage.find(id);
      if (known != restored.meta->coverage.end()) {
        coverage_[id] = known->second;
      } else if (restored.meta->definitions.count(id) == 0 && restored.has_progress) {
        coverage_[id] = seen;  // joins now
      }
    }
    auto c = coverage_.find(id);
    if (c != coverage_.end()) gate_->SetCoverage(static_cast<int>(i), c->second);
  }
  for (auto& [id, entry] : restored.gate) gate_->Restore(id, std::move(entry));
  for (auto& [key, pair] : restored.map_pairs) gate_->RestorePair(std::move(pair));
  for (const views::ViewSpec& v : spec.views) {
    auto f = restored.feed.find(v.id);
    if (views::IsFeedQualityView(v.id) && f != restored.feed.end()) feed_[v.id] = f->second;
  }
  stats_.feed = feed_;
  if (restored.has_progress) {
    engine_->Restore(restored.watermark, restored.clocks, restored.positions,
                     std::move(restored.cells), now);
  }
  closed_through_.clear();
  for (const views::ViewSpec& v : spec.views) closed_through_.push_back(ClosedThrough(v));

  kafka::ConsumerOptions co = options_.consumer;
  co.read_committed = true;
  // A view set reads its source as fast as the broker serves it: fetch up to 8 MiB per partition
  // per request (Kafka's default, 1 MiB, left the job waiting for data about a quarter of the
  // time in bench/views_bench). A few view sets per node make this memory cheap.
  co.max_partition_fetch_bytes = std::max<int64_t>(co.max_partition_fetch_bytes, 8 << 20);
  co.max_fetch_bytes = std::max<int64_t>(co.max_fetch_bytes, co.max_partition_fetch_bytes);
  ASSIGN_OR_RETURN(consumer_, kafka_.NewConsumer(co));
  std::vector<kafka::TopicPartitionOffset> assignment;
  for (int32_t p : partitions) {
    int64_t from = 0;
    auto pos = restored.positions.find(p);
    if (restored.has_progress && pos != restored.positions.end()) {
      from = pos->second;
    } else {
      // A new set starts with the records that can still be valid.
      ASSIGN_OR_RETURN(from, consumer_->OffsetForTime(source_topic_, p, now - spec.max_event_age,
                                                      options_.kafka_timeout));
    }
    assignment.push_back({source_topic_, p, from});
    engine_->Skip(p, from);
  }
  RETURN_IF_ERROR(consumer_->Assign(assignment));
  // Meta is written by the first commit when it is new or a view joined, and only then.
  meta_pending_ = !restored.meta.has_value();
  for (const views::ViewSpec& v : spec.views) {
    if (restored.meta.has_value() && restored.meta->definitions.count(v.id) == 0) {
      meta_pending_ = true;
    }
  }
  dirty_ = meta_pending_ || !restored.has_progress;
  last_commit_ = now;
  stats_.recoveries = state_->recoveries();
  stats_.watermark = engine_->watermark();
  log::Info("views recovered", {{"dataset", spec.dataset},
                                {"views", static_cast<int64_t>(spec.views.size())},
                                {"open_cells", static_cast<int64_t>(engine_->open_cells().size())},
                                {"watermark", engine_->watermark() == absl::InfinitePast()
                                                  ? std::string("none")
                                                  : views::FormatInstant(engine_->watermark())}});
  reader_ = std::thread([this] { ReadLoop(); });
  return absl::OkStatus();
}

absl::StatusOr<const views::Binding*> ViewJob::BindingFor(int32_t schema_id) {
  auto it = bindings_.find(schema_id);
  if (it != bindings_.end()) return it->second.get();
  auto bad = unbindable_.find(schema_id);
  if (bad != unbindable_.end()) return absl::InvalidArgumentError(bad->second);
  absl::StatusOr<const pb::Descriptor*> d = options_.descriptor_of(schema_id);
  absl::Status why = d.status();
  if (d.ok()) {
    absl::StatusOr<views::Binding> b = views::Binding::Of(layout_.get(), *d);
    if (b.ok() && b->event_time_ends_interval() != layout_->event_time_ends_interval) {
      why = absl::InvalidArgumentError("its event_time_ends_interval differs from the current");
    } else if (b.ok()) {
      auto [slot, inserted] =
          bindings_.emplace(schema_id, std::make_unique<views::Binding>(std::move(*b)));
      return slot->second.get();
    } else {
      why = b.status();
    }
  }
  if (absl::IsUnavailable(why) || absl::IsDeadlineExceeded(why)) return why;  // try again
  const std::string message = absl::StrCat("schema ", schema_id, ": ", why.message());
  log::Warning("views cannot read records of a schema; they are counted as rejected",
               {{"dataset", options_.spec.dataset}, {"reason", message}});
  unbindable_[schema_id] = message;
  return absl::InvalidArgumentError(message);
}

void ViewJob::Reject(int32_t partition, int64_t offset, const std::string& reason) {
  ++stats_.rejected[reason];
  auto key = std::make_pair(absl::StrCat("reject:", reason), partition);
  auto it = runs_.find(key);
  if (it != runs_.end() && it->second.last_offset + 1 == offset) {
    it->second.last_offset = offset;
    ++it->second.count;
    return;
  }
  if (it != runs_.end()) {
    finished_runs_.push_back(it->second);
    finished_run_kinds_.push_back("reject");
  }
  runs_[key] = views::RecordRun{partition, offset, offset, 1, reason};
}

void ViewJob::Late(int32_t partition, int64_t offset) {
  ++stats_.late;
  auto key = std::make_pair(std::string("late"), partition);
  auto it = runs_.find(key);
  if (it != runs_.end() && it->second.last_offset + 1 == offset) {
    it->second.last_offset = offset;
    ++it->second.count;
    return;
  }
  if (it != runs_.end()) {
    finished_runs_.push_back(it->second);
    finished_run_kinds_.push_back("late");
  }
  runs_[key] = views::RecordRun{partition, offset, offset, 1, ""};
}

int64_t ViewJob::read_ahead() const {
  absl::MutexLock lock(&read_mu_);
  return read_items_;
}

void ViewJob::ReadLoop() {
  while (true) {
    uint64_t serving = 0;
    {
      absl::MutexLock lock(&read_mu_);
      auto may_read = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(read_mu_) {
        return reader_stopping_ || read_items_ < options_.read_ahead ||
               polls_requested_ > polls_answered_;
      };
      read_mu_.Await(absl::Condition(&may_read));
      if (reader_stopping_) return;
      serving = polls_requested_;  // requests made before this poll starts
    }
    absl::StatusOr<std::vector<Item>> items = ReadOnce();
    absl::MutexLock lock(&read_mu_);
    polls_answered_ = std::max(polls_answered_, serving);
    if (!items.ok()) {
      read_error_ = items.status();
      return;  // the job is restarted from its changelog
    }
    read_items_ += static_cast<int64_t>(items->size());
    read_.push_back(*std::move(items));
  }
}

absl::StatusOr<std::vector<ViewJob::Item>> ViewJob::ReadOnce() {
  ASSIGN_OR_RETURN(std::vector<kafka::ConsumedRecord> records,
                   consumer_->Poll(options_.poll_wait, 10000));
  std::vector<Item> items;
  items.reserve(records.size() + static_cast<size_t>(options_.source_partitions));
  std::vector<std::pair<std::string, std::string>> headers;
  for (const kafka::ConsumedRecord& r : records) {
    Item& item = items.emplace_back();
    item.kind = Item::Kind::kUnreadable;
    item.partition = r.partition;
    item.offset = r.offset;
    headers.clear();
    for (const kafka::Header& h : r.headers) headers.emplace_back(h.key, h.value);
    absl::StatusOr<wire::DecodedRecord> decoded =
        wire::ReadRecordValue(headers, r.value, options_.federation);
    if (!decoded.ok()) continue;
    absl::StatusOr<const views::Binding*> binding = BindingFor(decoded->frame.schema_id);
    if (!binding.ok() &&
        (absl::IsUnavailable(binding.status()) || absl::IsDeadlineExceeded(binding.status()))) {
      // The schema could not be fetched now: stop here and read the record again after
      // recovery, rather than count it as unreadable.
      return binding.status();
    }
    if (!binding.ok()) continue;
    // One message per schema, cleared and reused: no allocation per record.
    std::unique_ptr<pb::Message>& message = scratch_[decoded->frame.schema_id];
    if (message == nullptr) {
      const pb::Descriptor* d = *options_.descriptor_of(decoded->frame.schema_id);
      message.reset(messages_.GetPrototype(d)->New());
    } else {
      message->Clear();
    }
    if (!message->ParseFromArray(decoded->frame.payload.data(),
                                 static_cast<int>(decoded->frame.payload.size()))) {
      continue;
    }
    absl::StatusOr<views::Fact> fact = (*binding)->Extract(*message, *keys_);
    if (!fact.ok()) continue;
    item.kind = Item::Kind::kFact;
    item.fact = *std::move(fact);
    item.fact.partition = r.partition;
    item.fact.offset = r.offset;
  }
  // Past transaction markers and aborted records too, so the stored positions are exact.
  for (int32_t p = 0; p < options_.source_partitions; ++p) {
    absl::StatusOr<int64_t> pos = consumer_->Position(source_topic_, p);
    if (!pos.ok()) continue;
    Item& item = items.emplace_back();
    item.kind = Item::Kind::kPosition;
    item.partition = p;
    item.offset = *pos;
  }
  return items;
}

void ViewJob::Apply(Item& item, absl::Time now) {
  switch (item.kind) {
    case Item::Kind::kPosition:
      if (item.offset > engine_->positions().at(item.partition)) {
        engine_->Skip(item.partition, item.offset);
        dirty_ = true;
      }
      return;
    case Item::Kind::kUnreadable:
      dirty_ = true;
      Reject(item.partition, item.offset, "unreadable");
      engine_->Skip(item.partition, item.offset + 1);
      return;
    case Item::Kind::kFact:
      break;
  }
  dirty_ = true;
  switch (engine_->Offer(item.fact, now)) {
    case views::Outcome::kMerged:
      ++stats_.merged;
      gate_->Note(item.fact);
      break;
    case views::Outcome::kTooNew:
      Reject(item.partition, item.offset, "too_new");
      break;
    case views::Outcome::kTooOld:
      Reject(item.partition, item.offset, "too_old");
      break;
    case views::Outcome::kLate:
      Late(item.partition, item.offset);
      break;
  }
}

absl::Status ViewJob::Step() {
  std::deque<std::vector<Item>> polls;
  std::optional<absl::Status> failed;
  {
    absl::MutexLock lock(&read_mu_);
    const uint64_t want = ++polls_requested_;
    auto answered = [this, want]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(read_mu_) {
      return polls_answered_ >= want || read_error_.has_value();
    };
    read_mu_.Await(absl::Condition(&answered));
    polls.swap(read_);
    read_items_ = 0;
    failed = read_error_;
  }
  // A read that failed ends the job: it restarts from its changelog and reads again from the
  // committed positions, so what was read before the failure needs no applying.
  if (failed.has_value()) return *failed;
  const absl::Time now = options_.now();
  for (std::vector<Item>& poll : polls) {
    for (Item& item : poll) Apply(item, now);
  }
  if (now - last_commit_ >= options_.commit_interval) return Commit();
  return absl::OkStatus();
}

absl::Status ViewJob::Commit() {
  const absl::Time now = options_.now();
  const std::optional<views::Engine::Advance> advance = engine_->Evaluate(now);
  std::vector<views::ClosedCell> closed = engine_->TakeClosed();
  last_commit_ = now;
  if (!dirty_ && !advance.has_value() && closed.empty() && runs_.empty()) {
    return absl::OkStatus();
  }
  for (auto& [key, run] : runs_) {
    finished_runs_.push_back(run);
    finished_run_kinds_.push_back(key.first == "late" ? "late" : "reject");
  }
  runs_.clear();
  // Guard and gate before the transaction: a failure of either writes nothing, and the job is
  // restarted from its changelog.
  std::vector<views::PublishedCell> published;
  published.reserve(closed.size());
  for (const views::ClosedCell& c : closed) published.push_back(guard_->Apply(*layout_, c));
  absl::StatusOr<views::Gate::Report> report = gate_->Apply(closed, &published);
  if (!report.ok()) {
    return Prepend(report.status(),
                   absl::StrCat("views of ", options_.spec.dataset, ": publication gate: "));
  }
  const std::map<std::string, views::FeedFigure> feed = FeedAfter(closed, published);
  feed_changed_.clear();
  for (const auto& [view, figure] : feed) {
    auto it = feed_.find(view);
    if (it == feed_.end() || !(it->second == figure)) feed_changed_.push_back({view, figure});
  }
  std::vector<views::MapPair> pairs_gone;
  const std::vector<views::CellId> forgotten = gate_->Forget(engine_->watermark(), &pairs_gone);
  const std::vector<views::MapPair> pairs_new = gate_->TakeNewPairs();
  absl::Status s = state_->Transact(
      [&] { return Fill(closed, published, forgotten, pairs_new, pairs_gone, advance); });
  if (!s.ok()) {
    // The engine has moved past what the changelog holds: only a new job, recovered from the
    // changelog, may go on.
    return Prepend(s, absl::StrCat("views of ", options_.spec.dataset,
                                   ": commit failed; the job restarts from its changelog: "));
  }
  ++stats_.commits;
  stats_.cells += static_cast<int64_t>(closed.size());
  feed_ = feed;
  stats_.feed = feed_;
  for (size_t v = 0; v < closed_through_.size(); ++v) {
    closed_through_[v] = std::max(closed_through_[v], ClosedThrough(options_.spec.views[v]));
  }
  stats_.gate.moves += report->moves;
  stats_.gate.fallbacks += report->fallbacks;
  stats_.gate.secondary += report->secondary;
  stats_.gate.relabelled += report->relabelled;
  stats_.gate.c2_violations += report->c2_violations;
  stats_.gate.c3_violations += report->c3_violations;
  stats_.gate.lps += report->lps;
  stats_.watermark = engine_->watermark();
  finished_runs_.clear();
  finished_run_kinds_.clear();
  dirty_ = false;
  meta_pending_ = false;
  return absl::OkStatus();
}

std::map<std::string, views::FeedFigure> ViewJob::FeedAfter(
    const std::vector<views::ClosedCell>& closed,
    const std::vector<views::PublishedCell>& published) const {
  std::map<std::string, views::FeedFigure> feed = feed_;
  const views::ViewSetSpec& spec = options_.spec;
  for (size_t i = 0; i < closed.size(); ++i) {
    const views::ViewSpec& view = spec.views[closed[i].id.view];
    if (!views::IsFeedQualityView(view.id) || published[i].measures.empty()) continue;
    auto it = feed.find(view.id);
    if (it != feed.end() && it->second.window.start > closed[i].cell.window.start) continue;
    const views::PublishedMeasure& m = published[i].measures[0];
    feed[view.id] = views::FeedFigure{closed[i].cell.window, m.value, m.perturbed};
  }
  // A closed window without a cell had no unit reporting: 0 (what its missing cell tells any
  // reader of the view anyway) — once the view published a cell (before that, nothing was
  // reported at all), and not for windows before a view joined the set.
  for (const views::ViewSpec& view : spec.views) {
    if (!views::IsFeedQualityView(view.id) || feed.count(view.id) == 0) continue;
    const absl::Time through = ClosedThrough(view);
    if (through == absl::InfinitePast()) continue;
    const views::Window newest = clock_->WindowOf(view.window, through - absl::Nanoseconds(1));
    auto since = coverage_.find(view.id);
    if (since != coverage_.end() && since->second > newest.start) continue;
    views::FeedFigure& figure = feed[view.id];
    if (figure.window.start < newest.start) figure = views::FeedFigure{newest, 0.0, false};
  }
  return feed;
}

absl::Time ViewJob::ClosedThrough(const views::ViewSpec& view) const {
  const absl::Time w = engine_->watermark();
  if (w == absl::InfinitePast() || w == absl::InfiniteFuture()) return absl::InfinitePast();
  return clock_->WindowOf(view.window, w).start;
}

absl::Status ViewJob::Fill(const std::vector<views::ClosedCell>& closed,
                           const std::vector<views::PublishedCell>& published,
                           const std::vector<views::CellId>& forgotten,
                           const std::vector<views::MapPair>& pairs_new,
                           const std::vector<views::MapPair>& pairs_gone,
                           const std::optional<views::Engine::Advance>& advance) {
  kafka::TransactionalProducer* producer = state_->producer();
  const views::ViewSetSpec& spec = options_.spec;
  kafka::TransactionRecords txn(producer);
  auto send_state = [&](const views::ChangelogEntry& e) {
    kafka::ProducerRecord r;
    r.topic = changelog_topic_;
    r.partition = 0;
    r.key = e.key;
    if (e.value.has_value()) {
      r.value = *e.value;
    } else {
      r.tombstone = true;
    }
    txn.Enqueue(r);
  };
  const std::string data_schema =
      wire::DataSchemaUrn(options_.federation, options_.output_schema_id);
  const std::string header = wire::EncodeHeader(options_.output_schema_id, {0});
  auto headers = [&](const views::ViewSpec& view, int v, absl::Time window_start,
                     const std::string& group_key) {
    const std::string start = views::FormatInstant(window_start);
    return std::vector<kafka::Header>{
        {"ce_specversion", "1.0"},
        {"ce_id", absl::StrCat("view:", spec.dataset, "/", view.id, "/",
                               definition_hashes_[v].substr(0, 12), "/", start, "/", group_key)},
        {"ce_source",
         absl::StrCat("/peers/", options_.peer, "/datasets/", spec.dataset, "/views/", view.id)},
        {"ce_type", views::kAggregateCellSubject},
        {"ce_time", start},
        {views::kViewDefinitionHeader, definition_hashes_[v]},
        {wire::kDataSchemaHeader, data_schema},
        {wire::kContentTypeHeader, wire::kConfluentProtobufContentType}};
  };
  auto send_close = [&](int v, const views::Window& window, int64_t cells, absl::Time through) {
    const views::ViewSpec& view = spec.views[v];
    vv1::AggregateCell cell;
    cell.mutable_window_start()->set_seconds(absl::ToUnixSeconds(window.start));
    cell.mutable_window_end()->set_seconds(absl::ToUnixSeconds(window.end));
    cell.set_dataset_id(spec.dataset);
    cell.set_view_id(view.id);
    cell.set_definition_hash(definition_hashes_[v]);
    cell.set_source_peer(options_.peer);
    vv1::WindowClose* close = cell.mutable_window_close();
    close->set_cells(cells);
    close->mutable_closed_through()->set_seconds(absl::ToUnixSeconds(through));
    views::SetProtoTime(engine_->watermark(), close->mutable_watermark());
    kafka::ProducerRecord r;
    r.topic = views::ViewTopic(options_.peer, spec.dataset, view.id);
    r.key = "";
    r.value = header + cell.SerializeAsString();
    r.timestamp_ms = absl::ToUnixMillis(window.end);
    r.headers = headers(view, v, window.start, "~close");
    txn.Enqueue(r);
  };
  // Outputs, with one close decision per closed (view, window).
  std::map<std::pair<int, absl::Time>, int64_t> windows;
  for (size_t i = 0; i < closed.size(); ++i) {
    const views::ClosedCell& c = closed[i];
    const views::PublishedCell& out = published[i];
    const views::ViewSpec& view = spec.views[c.id.view];
    vv1::AggregateCell cell;
    cell.set_group_key(c.id.group_key);
    cell.mutable_window_start()->set_seconds(absl::ToUnixSeconds(out.window.start));
    cell.mutable_window_end()->set_seconds(absl::ToUnixSeconds(out.window.end));
    cell.set_dataset_id(spec.dataset);
    cell.set_view_id(view.id);
    cell.set_definition_hash(definition_hashes_[c.id.view]);
    cell.set_source_peer(options_.peer);
    for (const auto& [dimension, value] : out.group) {
      vv1::GroupValue* g = cell.add_group();
      g->set_dimension(dimension);
      g->set_value(value);
    }
    for (const views::PublishedMeasure& m : out.measures) {
      vv1::MeasureValue* mv = cell.add_measures();
      mv->set_name(m.name);
      if (m.value.has_value()) mv->set_value(*m.value);
      mv->set_protection(ToProto(m.protection));
      mv->set_perturbed(m.perturbed);
      if (m.protection != views::Protection::kNone) {
        ++stats_.protected_cells[views::ProtectionName(m.protection)];
      }
    }
    kafka::ProducerRecord r;
    r.topic = views::ViewTopic(options_.peer, spec.dataset, view.id);
    r.key = c.id.group_key;
    r.value = header + cell.SerializeAsString();
    r.timestamp_ms = absl::ToUnixMillis(out.window.end);
    r.headers = headers(view, c.id.view, out.window.start, c.id.group_key);
    txn.Enqueue(r);
    ++windows[{c.id.view, c.cell.window.start}];
  }
  // Close records (ADR 0018 §2): after the cells, one per window that closed with cells, oldest
  // first, then one with 0 cells for the newest closed window of a view when it had none.
  for (size_t v = 0; v < spec.views.size(); ++v) {
    const absl::Time through = ClosedThrough(spec.views[v]);
    if (through <= closed_through_[v]) continue;
    const int view = static_cast<int>(v);
    for (auto it = windows.lower_bound({view, absl::InfinitePast()});
         it != windows.end() && it->first.first == view; ++it) {
      send_close(view, clock_->WindowOf(spec.views[v].window, it->first.second), it->second,
                 through);
    }
    const absl::Time newest =
        clock_->WindowOf(spec.views[v].window, through - absl::Nanoseconds(1)).start;
    if (windows.count({view, newest}) == 0) {
      send_close(view, clock_->WindowOf(spec.views[v].window, newest), 0, through);
    }
  }
  for (const auto& [window, cells] : windows) {
    views::CloseDecision d;
    d.view = spec.views[window.first].id;
    d.window_start = window.second;
    d.watermark = engine_->watermark();
    d.cause = advance.has_value() ? advance->cause : views::CloseCause::kWatermark;
    d.positions = engine_->positions();
    d.cells = cells;
    send_state(views::EncodeClose(d));
  }
  // What the gate must remember of this day's cells, and tombstones for days it forgot.
  const std::set<views::CellId> gone(forgotten.begin(), forgotten.end());
  for (const views::ClosedCell& c : closed) {
    const views::GateEntry* entry = gate_->Find(c.id);
    if (entry != nullptr && gone.count(c.id) == 0) {
      send_state(views::EncodeGate(*layout_, c.id, entry));
    }
  }
  for (const views::CellId& id : forgotten) send_state(views::EncodeGate(*layout_, id, nullptr));
  // The day's map pairs: new ones, and tombstones for days the gate forgot (a pair noted and
  // forgotten in the same commit is written and deleted in order).
  for (const views::MapPair& pair : pairs_new) send_state(views::EncodeMapPair(pair, true));
  for (const views::MapPair& pair : pairs_gone) send_state(views::EncodeMapPair(pair, false));
  for (const auto& [view, figure] : feed_changed_)
    send_state(views::EncodeFeedFigure(view, figure));
  for (const views::CellId& id : engine_->TakeDirty()) {
    auto it = engine_->open_cells().find(id);
    send_state(
        views::EncodeCell(*layout_, id, it == engine_->open_cells().end() ? nullptr : &it->second));
  }
  for (size_t i = 0; i < finished_runs_.size(); ++i) {
    send_state(views::EncodeRun(finished_run_kinds_[i], finished_runs_[i]));
  }
  if (meta_pending_) {
    views::ChangelogMeta meta;
    meta.key_fingerprint = key_->Fingerprint();
    meta.ptable_sha256 = table_->sha256();
    for (size_t i = 0; i < spec.views.size(); ++i) {
      meta.definitions[spec.views[i].id] = definition_hashes_[i];
    }
    meta.coverage = coverage_;
    send_state(views::EncodeMeta(meta));
  }
  send_state(views::EncodeProgress(*engine_));
  RETURN_IF_ERROR(txn.status());
  (void)producer->Flush(options_.kafka_timeout);
  if (options_.before_commit && !closed.empty()) options_.before_commit(++emitting_commits_);
  return absl::OkStatus();
}

absl::Status ViewJob::Run(const std::atomic<bool>& stop) {
  while (!stop.load()) RETURN_IF_ERROR(Step());
  return Commit();
}

}  // namespace node
}  // namespace polder
