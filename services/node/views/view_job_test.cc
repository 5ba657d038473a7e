// The view job without a broker: a fake Kafka (held to a real broker by the conformance suite)
// and a clock the test moves. Every case counts the outputs: each (window, group) exactly once,
// across restarts, a crash between producing and committing, and fencing.
#include "services/node/views/view_job.h"

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "common/kafka/testing/fake_kafka.h"
#include "common/status/status_matchers.h"
#include "common/views/names.h"
#include "common/wire/confluent_frame.h"
#include "common/wire/record_headers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "polder/datasets/mobility/v1/bike_count.pb.h"
#include "proto/polder/views/v1/aggregate_cell.pb.h"

namespace polder {
namespace node {
namespace {

using ::polder::kafka::testing::CommitFault;
using ::polder::kafka::testing::FakeClientFactory;
using ::polder::kafka::testing::FakeKafka;
using ::polder::testing::StatusIs;
using ::testing::HasSubstr;

namespace mobility = ::polder::datasets::mobility::v1;
namespace vv1 = ::polder::views::v1;

constexpr char kSource[] = "groningen.mobility.bike-counts";
constexpr char kDataset[] = "mobility.bike-counts";
constexpr int32_t kSchemaId = 7;
constexpr int32_t kCellSchemaId = 42;

absl::Time At(int h, int m) {
  return absl::FromCivil(absl::CivilMinute(2026, 12, 3, h, m), absl::UTCTimeZone());
}

class ViewJobTest : public ::testing::Test {
 protected:
  ViewJobTest() : clients_(&kafka_) {
    EXPECT_OK(kafka_.CreateTopic({kSource, 2}));
    EXPECT_OK(kafka_.CreateTopic({views::ViewChangelogTopic(kDataset), 1}));
    EXPECT_OK(kafka_.CreateTopic({Output(), 1}));
    spec_.dataset = kDataset;
    views::ViewSpec v;
    v.id = "quarter";
    v.group_by = {*views::ParseDimension("municipality")};
    v.measures = {*views::ParseMeasure("count")};
    spec_.views.push_back(v);
    now_ = At(12, 0);
  }

  static std::string Output() { return views::ViewTopic("groningen", kDataset, "quarter"); }

  ViewJob::Options Options() {
    ViewJob::Options o;
    o.peer = "groningen";
    o.federation = "nl";
    o.spec = spec_;
    o.source_partitions = 2;
    o.key_path = absl::StrCat(std::getenv("TEST_TMPDIR"), "/",
                              ::testing::UnitTest::GetInstance()->current_test_info()->name(),
                              "/views/", kDataset, ".key");
    o.output_schema_id = kCellSchemaId;
    o.producer.client.client_id = "views-test";
    o.consumer.client.client_id = "views-test";
    o.commit_interval = commit_interval_;
    o.poll_wait = absl::Milliseconds(1);
    o.dataset_message = mobility::BikeCount::descriptor();
    o.descriptor_of = [](int32_t id) -> absl::StatusOr<const google::protobuf::Descriptor*> {
      if (id == kSchemaId) return mobility::BikeCount::descriptor();
      return absl::NotFoundError(absl::StrCat("schema ", id, " is not registered"));
    };
    o.now = [this] { return now_; };
    return o;
  }

  std::unique_ptr<ViewJob> StartJob() {
    absl::StatusOr<std::unique_ptr<ViewJob>> job = ViewJob::Start(Options(), clients_);
    EXPECT_OK(job.status());
    return job.ok() ? *std::move(job) : nullptr;
  }

  // One bike count of `count` from `counter` at event time t, as the node's ingest frames it.
  void Produce(const std::string& counter, absl::Time t, int64_t count, int32_t partition = 0,
               const std::string& municipality = "GM0014") {
    mobility::BikeCount b;
    b.set_counter_id(counter);
    b.mutable_event_time()->set_seconds(absl::ToUnixSeconds(t));
    b.mutable_location()->set_municipality_code(municipality);
    b.set_count(count);
    ProduceRaw(partition, wire::Encode(kSchemaId, {0}, b.SerializeAsString()));
  }
  void ProduceRaw(int32_t partition, std::string value) {
    auto producer = clients_.NewProducer(kafka::ProducerOptions{});
    ASSERT_OK(producer.status());
    kafka::ProducerRecord r;
    r.topic = kSource;
    r.partition = partition;
    r.key = "k";
    r.value = std::move(value);
    r.headers = {{wire::kContentTypeHeader, wire::kConfluentProtobufContentType},
                 {wire::kDataSchemaHeader, wire::DataSchemaUrn("nl", kSchemaId)}};
    (*producer)->Send(r, [](absl::StatusOr<kafka::RecordMetadata>) {});
    ASSERT_OK((*producer)->Flush(absl::Seconds(5)));
  }

  // The committed output cells, by (window start, group key); EXPECTs each to appear once.
  std::map<std::pair<int64_t, std::string>, vv1::AggregateCell> Cells(
      const std::string& view = "quarter") {
    std::map<std::pair<int64_t, std::string>, vv1::AggregateCell> out;
    for (const kafka::ConsumedRecord& r :
         kafka_.Committed(views::ViewTopic("groningen", kDataset, view), 0)) {
      absl::StatusOr<wire::Frame> f = wire::Decode(r.value);
      EXPECT_OK(f.status());
      if (!f.ok()) continue;
      EXPECT_EQ(f->schema_id, kCellSchemaId);
      vv1::AggregateCell c;
      EXPECT_TRUE(c.ParseFromArray(f->payload.data(), static_cast<int>(f->payload.size())));
      if (c.has_window_close()) continue;  // a close record (Closes)
      const auto key = std::make_pair(c.window_start().seconds(), c.group_key());
      EXPECT_EQ(out.count(key), 0u) << "emitted twice: " << c.ShortDebugString();
      out[key] = c;
    }
    return out;
  }

  // The committed close records, by window start, with the offset of each and the largest
  // offset of a cell of its window; EXPECTs each window's record once.
  struct Close {
    vv1::WindowClose close;
    int64_t offset = 0;
    int64_t last_cell = -1;
  };
  std::map<int64_t, Close> Closes(const std::string& view = "quarter") {
    std::map<int64_t, Close> out;
    std::map<int64_t, int64_t> last_cell;
    for (const kafka::ConsumedRecord& r :
         kafka_.Committed(views::ViewTopic("groningen", kDataset, view), 0)) {
      absl::StatusOr<wire::Frame> f = wire::Decode(r.value);
      if (!f.ok()) continue;
      vv1::AggregateCell c;
      if (!c.ParseFromArray(f->payload.data(), static_cast<int>(f->payload.size()))) continue;
      const int64_t start = c.window_start().seconds();
      if (!c.has_window_close()) {
        last_cell[start] = std::max(last_cell[start], r.offset);
        continue;
      }
      EXPECT_EQ(out.count(start), 0u) << "closed twice: " << c.ShortDebugString();
      EXPECT_TRUE(c.group_key().empty());
      EXPECT_EQ(c.measures_size(), 0);
      out[start] =
          Close{c.window_close(), r.offset, last_cell.count(start) ? last_cell[start] : -1};
    }
    return out;
  }

  // Steps until the job has read everything produced so far, then commits.
  void Drain(ViewJob& job) {
    for (int i = 0; i < 5; ++i) ASSERT_OK(job.Step());
    ASSERT_OK(job.Commit());
  }

  FakeKafka kafka_;
  FakeClientFactory clients_;
  views::ViewSetSpec spec_;
  absl::Time now_;
  absl::Duration commit_interval_ = absl::ZeroDuration();  // every Step commits
};

TEST_F(ViewJobTest, EmitsEachClosedCellOnceGuardedAndDescribed) {
  std::unique_ptr<ViewJob> job = StartJob();
  ASSERT_NE(job, nullptr);
  // Five counters in GM0014 at 10:15 (the 10:00 quarter: event times end their interval), one
  // counter in GM0034; then a record at 10:40 moves the watermark past 10:15.
  for (int i = 0; i < 5; ++i) Produce(absl::StrCat("c", i), At(10, 15), 20, i % 2);
  Produce("lonely", At(10, 15), 3, 1, "GM0034");
  Drain(*job);
  EXPECT_TRUE(Cells().empty()) << "nothing closes before the watermark passes";
  Produce("c0", At(10, 40), 1, 0);
  Produce("c1", At(10, 40), 1, 1);
  Drain(*job);
  auto cells = Cells();
  ASSERT_EQ(cells.size(), 2u);
  const vv1::AggregateCell& big = cells.at({absl::ToUnixSeconds(At(10, 0)), "municipality=GM0014"});
  EXPECT_EQ(big.dataset_id(), kDataset);
  EXPECT_EQ(big.view_id(), "quarter");
  EXPECT_EQ(big.source_peer(), "groningen");
  EXPECT_EQ(big.definition_hash(), views::DefinitionHash(spec_, spec_.views[0]));
  EXPECT_EQ(big.window_end().seconds(), absl::ToUnixSeconds(At(10, 15)));
  ASSERT_EQ(big.measures_size(), 1);
  EXPECT_TRUE(big.measures(0).perturbed());
  EXPECT_TRUE(big.measures(0).has_value());
  EXPECT_NEAR(big.measures(0).value(), 100, 6) << "five sensors of 20: perturbed by at most D";
  const vv1::AggregateCell& small =
      cells.at({absl::ToUnixSeconds(At(10, 0)), "municipality=GM0034"});
  EXPECT_FALSE(small.measures(0).has_value()) << "a count of 3 is below k";
  EXPECT_EQ(small.measures(0).protection(), vv1::PROTECTION_SUPPRESSED) << "never why";
  EXPECT_EQ(job->stats().cells, 2);
  EXPECT_EQ(job->stats().merged, 8);
}

TEST_F(ViewJobTest, RestartResumesWithoutEmittingTwiceOrLosingOpenCells) {
  std::unique_ptr<ViewJob> job = StartJob();
  ASSERT_NE(job, nullptr);
  for (int i = 0; i < 6; ++i) Produce(absl::StrCat("c", i), At(10, 15), 10, i % 2);
  Drain(*job);
  job.reset();  // a clean stop: the open cells are in the changelog

  now_ += absl::Minutes(1);
  job = StartJob();
  ASSERT_NE(job, nullptr);
  for (int i = 6; i < 9; ++i) Produce(absl::StrCat("c", i), At(10, 14), 10, i % 2);
  Produce("c0", At(10, 50), 1, 0);
  Produce("c1", At(10, 50), 1, 1);
  Drain(*job);
  auto cells = Cells();
  ASSERT_EQ(cells.size(), 1u);
  // Nine sensors of 10 before the restart and after: one cell of about 90.
  EXPECT_NEAR(cells.begin()->second.measures(0).value(), 90, 6);
  Drain(*job);
  job = StartJob();
  ASSERT_NE(job, nullptr);
  Drain(*job);
  EXPECT_EQ(Cells().size(), 1u) << "a restart does not emit again";
}

TEST_F(ViewJobTest, ACrashBetweenProducingAndCommittingEmitsNothingTwice) {
  commit_interval_ = absl::Hours(1);  // only the explicit Commit commits
  std::unique_ptr<ViewJob> job = StartJob();
  ASSERT_NE(job, nullptr);
  for (int i = 0; i < 6; ++i) Produce(absl::StrCat("c", i), At(10, 15), 10, i % 2);
  Produce("c0", At(10, 40), 1, 0);
  Produce("c1", At(10, 40), 1, 1);
  for (int i = 0; i < 5; ++i) ASSERT_OK(job->Step());
  kafka_.FailCommit(CommitFault::kCrashBeforeCommit,
                    views::ViewTransactionalId("groningen", kDataset));
  EXPECT_FALSE(job->Commit().ok());
  EXPECT_TRUE(Cells().empty()) << "the crashed transaction's outputs are invisible";
  job.reset();

  commit_interval_ = absl::ZeroDuration();
  job = StartJob();  // fences the dead instance and aborts its transaction
  ASSERT_NE(job, nullptr);
  Drain(*job);
  auto cells = Cells();
  ASSERT_EQ(cells.size(), 1u);
  EXPECT_NEAR(cells.begin()->second.measures(0).value(), 60, 6);
  EXPECT_EQ(job->stats().merged, 8) << "every record read again, once";
}

TEST_F(ViewJobTest, ASecondInstanceFencesTheFirst) {
  std::unique_ptr<ViewJob> first = StartJob();
  ASSERT_NE(first, nullptr);
  Produce("c0", At(10, 15), 10);
  std::unique_ptr<ViewJob> second = StartJob();
  ASSERT_NE(second, nullptr);
  EXPECT_FALSE(first->Step().ok()) << "the older instance is fenced at its commit";
  Drain(*second);
  EXPECT_EQ(second->stats().merged, 1);
}

TEST_F(ViewJobTest, RejectedAndUnreadableRecordsAreCountedAndMoveNothing) {
  std::unique_ptr<ViewJob> job = StartJob();
  ASSERT_NE(job, nullptr);
  for (int i = 0; i < 5; ++i) Produce(absl::StrCat("c", i), At(10, 15), 10);
  // Written straight to Kafka a day ahead: it must not close the 10:00 quarter.
  Produce("clock-skew", now_ + absl::Hours(24), 10);
  Produce("ancient", now_ - absl::Hours(24 * 30), 10);
  ProduceRaw(0, "not a frame");
  ProduceRaw(1, wire::Encode(99, {0}, "whatever"));
  Drain(*job);
  EXPECT_TRUE(Cells().empty());
  const ViewJob::Stats s = job->stats();
  EXPECT_EQ(s.rejected.at("too_new"), 1);
  EXPECT_EQ(s.rejected.at("too_old"), 1);
  EXPECT_EQ(s.rejected.at("unreadable"), 2);
  EXPECT_EQ(s.merged, 5);
}

TEST_F(ViewJobTest, ASchemaThatCannotBeFetchedNowEndsTheJobAndItsRecordsAreReadAgain) {
  // The reader thread meets a record whose schema the registry cannot serve now: the job ends
  // with UNAVAILABLE (its supervisor restarts it), nothing is counted as unreadable, and the
  // restarted job reads those records again from the committed positions.
  std::atomic<bool> registry_down{false};
  ViewJob::Options o = Options();
  o.descriptor_of = [&](int32_t id) -> absl::StatusOr<const google::protobuf::Descriptor*> {
    if (registry_down.load()) return absl::UnavailableError("registry unreachable (injected)");
    if (id == kSchemaId) return mobility::BikeCount::descriptor();
    return absl::NotFoundError(absl::StrCat("schema ", id, " is not registered"));
  };
  registry_down = true;
  absl::StatusOr<std::unique_ptr<ViewJob>> first = ViewJob::Start(o, clients_);
  ASSERT_OK(first.status());
  for (int i = 0; i < 4; ++i) Produce(absl::StrCat("c", i), At(11, 10), 10);
  absl::Status ended;
  for (int i = 0; i < 5 && ended.ok(); ++i) ended = (*first)->Step();
  EXPECT_THAT(ended, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("injected")));
  EXPECT_TRUE((*first)->stats().rejected.empty());
  EXPECT_EQ((*first)->stats().merged, 0);
  first->reset();

  registry_down = false;
  absl::StatusOr<std::unique_ptr<ViewJob>> second = ViewJob::Start(o, clients_);
  ASSERT_OK(second.status());
  Drain(**second);
  EXPECT_EQ((*second)->stats().merged, 4);
  EXPECT_TRUE((*second)->stats().rejected.empty());
}

TEST_F(ViewJobTest, TheReaderHoldsNoMoreThanItsReadAheadBeforeTheJobAsks) {
  ViewJob::Options o = Options();
  o.read_ahead = 1;
  absl::StatusOr<std::unique_ptr<ViewJob>> job = ViewJob::Start(o, clients_);
  ASSERT_OK(job.status());
  for (int i = 0; i < 3; ++i) Produce(absl::StrCat("a", i), At(11, 10), 1);
  // The reader polls until it holds at least one item (its bound), then waits for the job.
  for (int i = 0; i < 2000 && (*job)->read_ahead() == 0; ++i) absl::SleepFor(absl::Milliseconds(1));
  const int64_t held = (*job)->read_ahead();
  EXPECT_GE(held, 1);
  for (int i = 0; i < 3; ++i) Produce(absl::StrCat("b", i), At(11, 10), 1);
  absl::SleepFor(absl::Milliseconds(50));  // time enough for the reader to poll again if it could
  EXPECT_EQ((*job)->read_ahead(), held) << "the reader polled past its bound";
  // A Step asks for a fresh poll beyond the bound and applies everything.
  ASSERT_OK((*job)->Step());
  EXPECT_EQ((*job)->stats().merged, 6);
}

TEST_F(ViewJobTest, IdleCloseEmitsWhenTheSourceFallsSilent) {
  std::unique_ptr<ViewJob> job = StartJob();
  ASSERT_NE(job, nullptr);
  for (int i = 0; i < 5; ++i) Produce(absl::StrCat("c", i), At(11, 45), 10, 0);
  Drain(*job);
  EXPECT_TRUE(Cells().empty()) << "partition 1 has said nothing yet";
  now_ += absl::Minutes(30);  // idle_timeout: both partitions silent
  Drain(*job);
  now_ += absl::Minutes(15);
  Drain(*job);
  EXPECT_EQ(Cells().size(), 1u) << "closed by the idle close, once";
}

TEST_F(ViewJobTest, ChangedKeyOrDefinitionStopsTheSet) {
  std::unique_ptr<ViewJob> job = StartJob();
  ASSERT_NE(job, nullptr);
  Produce("c0", At(10, 15), 10);
  Drain(*job);
  job.reset();
  spec_.views[0].window = views::WindowSize::kHour;
  EXPECT_THAT(ViewJob::Start(Options(), clients_).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("definition of view 'quarter' changed")));
  spec_.views[0].window = views::WindowSize::kQuarterHour;
  const std::string key = Options().key_path;
  ASSERT_EQ(std::remove(key.c_str()), 0);
  ASSERT_OK(views::ViewKey::Create(key).status());
  EXPECT_THAT(ViewJob::Start(Options(), clients_).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not the one")));
  ASSERT_EQ(std::remove(key.c_str()), 0);
  EXPECT_THAT(ViewJob::Start(Options(), clients_).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("cannot be read")));
}

// The publication gate's memory of the day survives a restart: a quarter dominated by one
// counter (100 bikes beside 1) and a published quarter close, the job restarts, then their hour
// closes — publishing it would give the dominated quarter as the hour minus the published one,
// so the gate (which must know both quarters) withholds the hour (secondary protection).
TEST_F(ViewJobTest, TheGateRemembersTheDayAcrossARestart) {
  views::ViewSpec hour = spec_.views[0];
  hour.id = "hour";
  hour.window = views::WindowSize::kHour;
  spec_.views.push_back(hour);
  ASSERT_OK(kafka_.CreateTopic({views::ViewTopic("groningen", kDataset, "hour"), 1}));
  std::unique_ptr<ViewJob> job = StartJob();
  ASSERT_NE(job, nullptr);
  Produce("big", At(10, 10), 100, 0, "GM0034");  // the 10:00 quarter: dominated
  Produce("tiny", At(10, 10), 1, 1, "GM0034");
  for (int i = 0; i < 5; ++i) {
    Produce(absl::StrCat("d", i), At(10, 25), 20, i % 2, "GM0034");  // the 10:15 quarter
  }
  for (int i = 0; i < 5; ++i) Produce(absl::StrCat("c", i), At(10, 40), 50, i % 2);
  Drain(*job);  // W = 10:35: both GM0034 quarters close, the hour does not
  auto quarters = Cells("quarter");
  const vv1::AggregateCell& dominated =
      quarters.at({absl::ToUnixSeconds(At(10, 0)), "municipality=GM0034"});
  EXPECT_FALSE(dominated.measures(0).has_value());
  EXPECT_EQ(dominated.measures(0).protection(), vv1::PROTECTION_SUPPRESSED);
  EXPECT_TRUE(quarters.at({absl::ToUnixSeconds(At(10, 15)), "municipality=GM0034"})
                  .measures(0)
                  .has_value());
  EXPECT_TRUE(Cells("hour").empty());
  job.reset();

  now_ += absl::Minutes(1);
  job = StartJob();
  ASSERT_NE(job, nullptr);
  Produce("c0", At(11, 10), 50, 0);
  Produce("c1", At(11, 10), 50, 1);
  Drain(*job);  // W = 11:05: the 10:00 hour closes
  auto hours = Cells("hour");
  const auto gm0034 = hours.find({absl::ToUnixSeconds(At(10, 0)), "municipality=GM0034"});
  ASSERT_NE(gm0034, hours.end());
  EXPECT_FALSE(gm0034->second.measures(0).has_value())
      << "the hour minus the published quarter would give the dominated quarter";
  EXPECT_EQ(gm0034->second.measures(0).protection(), vv1::PROTECTION_SUPPRESSED);
  EXPECT_EQ(job->stats().gate.secondary, 1);
  EXPECT_EQ(job->stats().gate.c3_violations, 0);
}

// Feed quality's entities reporting (ADR 0018 §6): the entities views' newest closed window and
// what was published for it — perturbed, withheld below k, 0 for a window nobody reported in —
// committed with the cells and restored after a restart.
TEST_F(ViewJobTest, EntitiesReportingIsWhatTheEntitiesViewsPublishedAndSurvivesARestart) {
  ASSERT_OK_AND_ASSIGN(spec_, views::WithFeedQualityViews(spec_));
  for (const char* view : {views::kEntitiesHourView, views::kEntitiesDayView}) {
    ASSERT_OK(kafka_.CreateTopic({views::ViewTopic("groningen", kDataset, view), 1}));
  }
  std::unique_ptr<ViewJob> job = StartJob();
  ASSERT_NE(job, nullptr);
  for (int i = 0; i < 6; ++i) Produce(absl::StrCat("c", i), At(10, 10), 100 * i, i % 2);
  Produce("c0", At(10, 50), 7, 0);  // one of the six again: six sensors in the hour
  Drain(*job);
  EXPECT_TRUE(job->stats().feed.empty()) << "no entities window closed yet";
  Produce("c0", At(11, 10), 1, 0);
  Produce("c1", At(11, 10), 1, 1);
  Drain(*job);  // W = 11:05: the 10:00 hour closes
  const auto hour = Cells(views::kEntitiesHourView);
  ASSERT_EQ(hour.size(), 1u);
  const vv1::AggregateCell& ten = hour.begin()->second;
  ASSERT_EQ(ten.measures_size(), 1);
  EXPECT_EQ(ten.measures(0).name(), "entities");
  ASSERT_TRUE(ten.measures(0).has_value());
  ASSERT_OK_AND_ASSIGN(views::PTable table, views::PTable::Build(spec_.guard.ptable));
  ASSERT_TRUE(table.CanPublish(6, static_cast<int64_t>(ten.measures(0).value())))
      << "six sensors, however much they counted";
  ASSERT_EQ(job->stats().feed.count(views::kEntitiesHourView), 1u);
  views::FeedFigure f = job->stats().feed.at(views::kEntitiesHourView);
  EXPECT_EQ(f.window.start, At(10, 0));
  EXPECT_EQ(f.window.end, At(11, 0));
  ASSERT_TRUE(f.value.has_value());
  EXPECT_EQ(*f.value, ten.measures(0).value()) << "what the view published";
  EXPECT_TRUE(f.perturbed);
  EXPECT_EQ(job->stats().feed.count(views::kEntitiesDayView), 0u) << "the day is open";

  now_ = At(12, 30);  // records may lead the clock by 5 min at most
  Produce("c0", At(12, 10), 1, 0);
  Produce("c1", At(12, 10), 1, 1);
  Drain(*job);  // the 11:00 hour closes with two sensors: withheld
  f = job->stats().feed.at(views::kEntitiesHourView);
  EXPECT_EQ(f.window.start, At(11, 0));
  EXPECT_FALSE(f.value.has_value()) << "two sensors are below k";
  job.reset();

  now_ = At(14, 30);
  job = StartJob();
  ASSERT_NE(job, nullptr);
  f = job->stats().feed.at(views::kEntitiesHourView);
  EXPECT_EQ(f.window.start, At(11, 0)) << "restored from the changelog";
  EXPECT_FALSE(f.value.has_value());
  Produce("c0", At(14, 10), 1, 0);
  Produce("c1", At(14, 10), 1, 1);
  Drain(*job);  // W = 14:05: 12:00 (two sensors) and 13:00 (none) close
  f = job->stats().feed.at(views::kEntitiesHourView);
  EXPECT_EQ(f.window.start, At(13, 0));
  ASSERT_TRUE(f.value.has_value()) << "nobody reported: 0, exactly";
  EXPECT_EQ(*f.value, 0);
  EXPECT_FALSE(f.perturbed);
}

// Close records (ADR 0018 §2): after the cells of every window that closed with cells, one
// record with their number; the newest closed window gets a record with 0 cells when it had
// none; closed_through covers the empty windows between. Exactly once across a restart.
TEST_F(ViewJobTest, CloseRecordsFollowTheCellsOfEveryClosedWindow) {
  std::unique_ptr<ViewJob> job = StartJob();
  ASSERT_NE(job, nullptr);
  Produce("a", At(10, 5), 20, 0);
  Produce("b", At(10, 6), 20, 1);
  Produce("c", At(10, 35), 20, 0, "GM0034");
  Produce("a", At(10, 55), 20, 0);
  Produce("b", At(10, 55), 20, 1);
  Drain(*job);  // W ≈ 10:50: the quarters 10:00, 10:15 (empty) and 10:30 close
  std::map<int64_t, Close> closes = Closes();
  ASSERT_EQ(closes.size(), 2u);
  const Close& ten = closes.at(absl::ToUnixSeconds(At(10, 0)));
  EXPECT_EQ(ten.close.cells(), 1);
  EXPECT_EQ(ten.close.closed_through().seconds(), absl::ToUnixSeconds(At(10, 45)));
  // Bike counts' event times end their interval: W is kept in window time, 1 ms earlier.
  EXPECT_EQ(ten.close.watermark().seconds(), absl::ToUnixSeconds(At(10, 49)) + 59);
  EXPECT_EQ(ten.close.watermark().nanos(), 999000000);
  EXPECT_GT(ten.offset, ten.last_cell) << "the close record follows its window's cells";
  EXPECT_GE(ten.last_cell, 0);
  const Close& half = closes.at(absl::ToUnixSeconds(At(10, 30)));
  EXPECT_EQ(half.close.cells(), 1);
  EXPECT_GT(half.offset, half.last_cell);
  EXPECT_EQ(closes.count(absl::ToUnixSeconds(At(10, 15))), 0u) << "covered by closed_through";
  job.reset();

  now_ += absl::Minutes(1);
  job = StartJob();
  ASSERT_NE(job, nullptr);
  Produce("a", At(11, 21), 20, 0);
  Produce("b", At(11, 21), 20, 1);
  Drain(*job);  // W = 11:16: 10:45 (the 10:55 records) and 11:00 (empty) close
  closes = Closes();
  ASSERT_EQ(closes.size(), 4u) << "nothing written twice after the restart";
  EXPECT_EQ(closes.at(absl::ToUnixSeconds(At(10, 45))).close.cells(), 1);
  const Close& empty = closes.at(absl::ToUnixSeconds(At(11, 0)));
  EXPECT_EQ(empty.close.cells(), 0);
  EXPECT_EQ(empty.last_cell, -1);
  EXPECT_EQ(empty.close.closed_through().seconds(), absl::ToUnixSeconds(At(11, 15)));
  Drain(*job);  // nothing new: no record
  EXPECT_EQ(Closes().size(), 4u);
}

// The gate's map (which grid cells the day's records placed in which municipality) is written
// with the commit that first saw a pair, restored on restart (not written again) and
// tombstoned once the day ends.
TEST_F(ViewJobTest, TheGatesMapPairsAreKeptInTheChangelogWhileTheirDayIsOpen) {
  spec_.views[0].group_by = {*views::ParseDimension("grid:100m")};
  views::ViewSpec municipality = spec_.views[0];
  municipality.id = "municipality";
  municipality.group_by = {*views::ParseDimension("municipality")};
  spec_.views.push_back(municipality);
  ASSERT_OK(kafka_.CreateTopic({views::ViewTopic("groningen", kDataset, "municipality"), 1}));
  auto produce = [&](double lat, double lon, const std::string& m, absl::Time t, int32_t p) {
    mobility::BikeCount b;
    b.set_counter_id(absl::StrCat("c", lat, lon));
    b.mutable_event_time()->set_seconds(absl::ToUnixSeconds(t));
    b.mutable_location()->set_municipality_code(m);
    b.mutable_location()->set_latitude(lat);
    b.mutable_location()->set_longitude(lon);
    b.set_count(10);
    ProduceRaw(p, wire::Encode(kSchemaId, {0}, b.SerializeAsString()));
  };
  // The last changelog record of every map/ key: true while it holds a pair.
  auto pairs = [&] {
    std::map<std::string, bool> out;
    int64_t written = 0;
    for (const kafka::ConsumedRecord& r :
         kafka_.Committed(views::ViewChangelogTopic(kDataset), 0)) {
      if (!r.key.has_value() || !absl::StartsWith(*r.key, "map/")) continue;
      out[*r.key] = !r.tombstone;
      if (!r.tombstone) ++written;
    }
    return std::make_pair(out, written);
  };
  std::unique_ptr<ViewJob> job = StartJob();
  ASSERT_NE(job, nullptr);
  produce(53.2194, 6.5665, "GM0014", At(10, 10), 0);
  produce(53.2194, 6.5665, "GM0014", At(10, 12), 1);  // the same pair
  produce(53.2500, 6.6200, "GM1966", At(10, 20), 0);
  Drain(*job);
  auto [open, written] = pairs();
  EXPECT_EQ(open.size(), 2u);
  EXPECT_EQ(written, 2);
  for (const auto& [key, present] : open) {
    EXPECT_TRUE(present) << key;
    EXPECT_THAT(key, ::testing::HasSubstr("/grid:100m/E"));
  }
  job.reset();

  now_ += absl::Minutes(1);
  job = StartJob();
  ASSERT_NE(job, nullptr);
  produce(53.2194, 6.5665, "GM0014", At(10, 40), 1);  // restored: not written again
  Drain(*job);
  EXPECT_EQ(pairs().second, 2);

  // The next Amsterdam day's records move the watermark past the end of this one.
  now_ = At(12, 0) + absl::Hours(14);
  produce(53.2194, 6.5665, "GM0014", At(12, 0) + absl::Hours(13), 0);
  produce(53.2194, 6.5665, "GM0014", At(12, 0) + absl::Hours(13), 1);
  Drain(*job);
  auto [after, total] = pairs();
  EXPECT_EQ(total, 3) << "one pair of the new day";
  int held = 0;
  for (const auto& [key, present] : after) held += present ? 1 : 0;
  EXPECT_EQ(held, 1) << "the first day's pairs are tombstoned";
  EXPECT_EQ(after.size(), 3u);
}

// The changelog's meta (key fingerprint, p-table, definitions) is written when it is new or a
// view joins — not with every commit.
TEST_F(ViewJobTest, MetaIsWrittenWhenNewOrWhenAViewJoinsOnly) {
  auto metas = [this] {
    int n = 0;
    for (const kafka::ConsumedRecord& r :
         kafka_.Committed(views::ViewChangelogTopic(kDataset), 0)) {
      if (r.key.has_value() && *r.key == "meta") ++n;
    }
    return n;
  };
  std::unique_ptr<ViewJob> job = StartJob();
  ASSERT_NE(job, nullptr);
  for (int i = 0; i < 3; ++i) {
    Produce(absl::StrCat("c", i), At(10, 15 + i), 10, i % 2);
    Drain(*job);
  }
  EXPECT_GE(job->stats().commits, 3);
  EXPECT_EQ(metas(), 1);
  job.reset();
  job = StartJob();
  ASSERT_NE(job, nullptr);
  Produce("c9", At(10, 20), 10, 0);
  Drain(*job);
  EXPECT_EQ(metas(), 1) << "a restart with the same views writes no new meta";
  job.reset();

  views::ViewSpec hour = spec_.views[0];
  hour.id = "hour";
  hour.window = views::WindowSize::kHour;
  spec_.views.push_back(hour);
  ASSERT_OK(kafka_.CreateTopic({views::ViewTopic("groningen", kDataset, "hour"), 1}));
  job = StartJob();
  ASSERT_NE(job, nullptr);
  Drain(*job);
  EXPECT_EQ(metas(), 2) << "a view joined";
}

}  // namespace
}  // namespace node
}  // namespace polder
