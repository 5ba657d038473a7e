#include "common/wire/confluent_frame.h"

#include <string>

#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace wire {
namespace {

using ::polder::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string Bytes(std::initializer_list<int> b) {
  std::string s;
  for (int x : b) s.push_back(static_cast<char>(x));
  return s;
}

// Golden frames, as Confluent's serializers (and @confluentinc/schemaregistry) write them.
TEST(ConfluentFrameTest, GoldenHeaders) {
  // Schema id 1, first message [0]: the single byte 0x00.
  EXPECT_EQ(EncodeHeader(1, {0}), Bytes({0x00, 0x00, 0x00, 0x00, 0x01, 0x00}));
  EXPECT_EQ(EncodeHeader(1, {}), Bytes({0x00, 0x00, 0x00, 0x00, 0x01, 0x00}));
  // Second top-level message [1]: count 1 (zig-zag 0x02), index 1 (0x02).
  EXPECT_EQ(EncodeHeader(258, {1}), Bytes({0x00, 0x00, 0x00, 0x01, 0x02, 0x02, 0x02}));
  // Nested [0, 1]: count 2 (0x04), 0 (0x00), 1 (0x02).
  EXPECT_EQ(EncodeHeader(7, {0, 1}), Bytes({0x00, 0x00, 0x00, 0x00, 0x07, 0x04, 0x00, 0x02}));
  // Index 64 needs two varint bytes (zig-zag 128 = 0x80 0x01).
  EXPECT_EQ(EncodeHeader(7, {64}), Bytes({0x00, 0x00, 0x00, 0x00, 0x07, 0x02, 0x80, 0x01}));
}

TEST(ConfluentFrameTest, RoundTrips) {
  for (const std::vector<int32_t>& idx :
       std::vector<std::vector<int32_t>>{{0}, {1}, {0, 1}, {3, 0, 200}, {64}}) {
    std::string frame = Encode(123456, idx, "\x08\x96\x01");
    ASSERT_OK_AND_ASSIGN(Frame f, Decode(frame));
    EXPECT_EQ(f.schema_id, 123456);
    EXPECT_EQ(f.message_indexes, idx);
    EXPECT_EQ(f.payload, "\x08\x96\x01");
  }
  ASSERT_OK_AND_ASSIGN(Frame empty_payload, Decode(EncodeHeader(5, {0})));
  EXPECT_THAT(empty_payload.message_indexes, ElementsAre(0));
  EXPECT_TRUE(empty_payload.payload.empty()) << "an all-defaults message has no bytes";
}

TEST(ConfluentFrameTest, PreciseErrors) {
  EXPECT_THAT(Decode(""), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("0 bytes")));
  EXPECT_THAT(Decode(Bytes({0, 0, 0, 1})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("4 bytes")));
  EXPECT_THAT(
      Decode("{\"a\":12}"),
      StatusIs(
          absl::StatusCode::kInvalidArgument,
          HasSubstr(
              "0x7b, not the magic byte 0x00 (not a schema-registry framed record; plain JSON?)")));
  EXPECT_THAT(Decode(Bytes({0, 0xff, 0xff, 0xff, 0xff, 0})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("negative schema id")));
  EXPECT_THAT(
      Decode(Bytes({0, 0, 0, 0, 1, 0x01})),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("negative message-index count -1")));
  EXPECT_THAT(
      Decode(Bytes({0, 0, 0, 0, 1, 0x7e})),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("count 63 at byte 5 exceeds 32")));
  EXPECT_THAT(
      Decode(Bytes({0, 0, 0, 0, 1, 0x04, 0x02})),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("truncated in the message indexes")));
  EXPECT_THAT(
      Decode(Bytes({0, 0, 0, 0, 1, 0x02, 0x03})),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("message index -2 at byte 6")));
  EXPECT_THAT(Decode(Bytes({0, 0, 0, 0, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("longer than 5 bytes")));
  EXPECT_THAT(Decode(Bytes({0, 0, 0, 0, 1, 0x80})),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("truncated in the message-index count")));
}

}  // namespace
}  // namespace wire
}  // namespace polder
