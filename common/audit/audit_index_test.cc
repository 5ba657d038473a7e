#include "common/audit/audit_index.h"

#include <string>

#include "common/status/status_matchers.h"
#include "gtest/gtest.h"

namespace polder {
namespace audit {
namespace {

using ::polder::testing::StatusIs;

const std::string kHash(64, 'a');

TEST(AuditIndexTest, EveryKindRoundTrips) {
  for (const IndexRecord& r : {StreamRecord("stream-1", "groningen", "amersfoort", "offered", 17),
                               CheckpointRecord("stream-1", 128, kHash, 99),
                               EndRecord("stream-1", 130, kHash), ThroughRecord(1234)}) {
    ASSERT_OK_AND_ASSIGN(IndexRecord back, DecodeIndexRecord(r.Key(), r.Value()));
    EXPECT_EQ(back.kind, r.kind);
    EXPECT_EQ(back.Key(), r.Key());
    EXPECT_EQ(back.Value(), r.Value());
  }
  // Stream ids may hold slashes (a checkpoint's sequence is the last component).
  ASSERT_OK_AND_ASSIGN(
      IndexRecord c,
      DecodeIndexRecord("checkpoint/a/b/64", CheckpointRecord("x", 1, kHash, 1).Value()));
  EXPECT_EQ(c.stream_id, "a/b");
  EXPECT_EQ(c.sequence, 64u);
}

TEST(AuditIndexTest, BadRecordsAreRefusedNamingTheKey) {
  const std::string ok_stream = StreamRecord("s", "a", "b", "offered", 1).Value();
  EXPECT_THAT(DecodeIndexRecord("stream/s", "not json"), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(DecodeIndexRecord("stream/", ok_stream), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(
      DecodeIndexRecord("stream/s",
                        R"({"source":"a","destination":"b","direction":"offered","offset":-1})"),
      StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(DecodeIndexRecord("stream/s", R"({"source":"a","offset":3})"),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(DecodeIndexRecord("checkpoint/s", CheckpointRecord("s", 64, kHash, 1).Value()),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(DecodeIndexRecord("checkpoint/s/0", CheckpointRecord("s", 64, kHash, 1).Value()),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(DecodeIndexRecord("end/s", R"({"sequence":3,"hash":"short"})"),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(DecodeIndexRecord("through", R"({"offset":"12"})"),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(DecodeIndexRecord("future/s", ok_stream), StatusIs(absl::StatusCode::kDataLoss));
  // Deep nesting is refused by the bounded parser, not by the stack.
  EXPECT_THAT(DecodeIndexRecord("through", std::string(100000, '[') + std::string(100000, ']')),
              StatusIs(absl::StatusCode::kDataLoss));
  absl::StatusOr<IndexRecord> named = DecodeIndexRecord("stream/s", "{}");
  ASSERT_FALSE(named.ok());
  EXPECT_NE(named.status().message().find("stream/s"), std::string::npos);
}

}  // namespace
}  // namespace audit
}  // namespace polder
