// Instants as the views and the national aggregator store them: in Protobuf records
// (google.protobuf.Timestamp) and in their JSON changelogs (Unix milliseconds, null for "never",
// i.e. absl::InfinitePast()).
#ifndef POLDER_COMMON_VIEWS_TIMES_H_
#define POLDER_COMMON_VIEWS_TIMES_H_

#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"
#include "nlohmann/json.hpp"

namespace polder {
namespace views {

inline absl::Time TimeFromProto(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

inline void SetProtoTime(absl::Time t, google::protobuf::Timestamp* out) {
  const int64_t seconds = absl::ToUnixSeconds(t);
  out->set_seconds(seconds);
  out->set_nanos(
      static_cast<int32_t>(absl::ToInt64Nanoseconds(t - absl::FromUnixSeconds(seconds))));
}

inline nlohmann::json MillisJson(absl::Time t) {
  if (t == absl::InfinitePast()) return nlohmann::json();
  return absl::ToUnixMillis(t);
}

// Throws nlohmann::json's type_error for anything but null or an integer (callers parse inside
// a try and report DATA_LOSS).
inline absl::Time TimeFromMillisJson(const nlohmann::json& j) {
  if (j.is_null()) return absl::InfinitePast();
  return absl::FromUnixMillis(j.get<int64_t>());
}

}  // namespace views
}  // namespace polder

#endif  // POLDER_COMMON_VIEWS_TIMES_H_
