#include "services/node/replica/directory.h"

#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/json/bounded.h"
#include "common/log/log.h"
#include "common/status/status_macros.h"
#include "nlohmann/json.hpp"

namespace polder {
namespace node {

using nlohmann::json;

kafka::ProducerRecord ReplicaDirectory::KeyClaim(const std::string& topic, int32_t partition,
                                                 const ReplicaAddress& owner) {
  kafka::ProducerRecord r;
  r.topic = topic;
  r.partition = 0;
  r.key = absl::StrCat("keys/", partition);
  r.value = json{{"replica", owner.replica}, {"endpoint", owner.endpoint}, {"partition", partition}}
                .dump();
  return r;
}

kafka::ProducerRecord ReplicaDirectory::ReplicaRecord(const std::string& topic,
                                                      const ReplicaAddress& self) {
  kafka::ProducerRecord r;
  r.topic = topic;
  r.partition = 0;
  r.key = absl::StrCat("replica/", self.replica);
  r.value = json{{"replica", self.replica}, {"endpoint", self.endpoint}}.dump();
  return r;
}

absl::StatusOr<std::unique_ptr<ReplicaDirectory>> ReplicaDirectory::Start(
    Options options, kafka::ClientFactory& kafka) {
  std::unique_ptr<ReplicaDirectory> d(new ReplicaDirectory(std::move(options), kafka));
  kafka::ConsumerOptions co = d->options_.consumer;
  co.read_committed = true;
  ASSIGN_OR_RETURN(d->consumer_, kafka.NewConsumer(co));
  // A topic created a moment ago may not be in every broker's metadata yet.
  absl::StatusOr<std::pair<int64_t, int64_t>> marks;
  const absl::Time until = absl::Now() + co.client.request_timeout;
  while (true) {
    marks = d->consumer_->QueryWatermarks(d->options_.topic, 0, co.client.request_timeout);
    if (marks.ok() || absl::Now() > until ||
        (marks.status().code() != absl::StatusCode::kNotFound &&
         marks.status().code() != absl::StatusCode::kUnavailable)) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
  if (!marks.ok()) return marks.status();
  d->load_end_ = marks->second;
  if (d->load_end_ <= marks->first) d->loaded_ = true;
  RETURN_IF_ERROR(d->consumer_->Assign({{d->options_.topic, 0, kafka::kOffsetBeginning}}));
  d->thread_ = std::thread([raw = d.get()] { raw->Loop(); });
  return d;
}

ReplicaDirectory::~ReplicaDirectory() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void ReplicaDirectory::Apply(const kafka::ConsumedRecord& r) {
  if (!r.key) return;
  json v = json_input::ParseOrDiscarded(r.value);
  ReplicaAddress a;
  a.replica = json_input::StringOr(v, "replica", "");
  a.endpoint = json_input::StringOr(v, "endpoint", "");
  a.at = absl::FromUnixMillis(r.timestamp_ms);
  absl::MutexLock lock(&mu_);
  int32_t k = 0;
  if (absl::StartsWith(*r.key, "keys/") && absl::SimpleAtoi(r.key->substr(5), &k)) {
    if (r.tombstone || a.replica.empty()) {
      keys_.erase(k);
    } else {
      keys_[k] = std::move(a);
    }
  } else if (absl::StartsWith(*r.key, "replica/")) {
    const std::string id = r.key->substr(8);
    if (r.tombstone || a.endpoint.empty()) {
      replicas_.erase(id);
    } else {
      replicas_[id] = std::move(a);
    }
  }
}

void ReplicaDirectory::Loop() {
  while (!stop_) {
    absl::StatusOr<std::vector<kafka::ConsumedRecord>> batch =
        consumer_->Poll(absl::Milliseconds(100), 1000);
    if (!batch.ok()) {
      static log::RateLimit limit(6);
      if (int64_t suppressed = 0; limit.Allow(&suppressed)) {
        log::Warning("reading the replica directory",
                     {{"topic", options_.topic}, {"error", std::string(batch.status().message())}});
      }
      absl::SleepFor(absl::Milliseconds(200));
      continue;
    }
    for (const kafka::ConsumedRecord& r : *batch) Apply(r);
    absl::StatusOr<int64_t> pos = consumer_->Position(options_.topic, 0);
    if (pos.ok() && *pos >= 0) {
      absl::MutexLock lock(&mu_);
      position_ = *pos;
      if (*pos >= load_end_) loaded_ = true;
    }
  }
}

bool ReplicaDirectory::CatchUp(absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  absl::StatusOr<std::unique_ptr<kafka::Consumer>> probe = kafka_.NewConsumer(options_.consumer);
  if (!probe.ok()) return false;
  absl::StatusOr<std::pair<int64_t, int64_t>> marks =
      (*probe)->QueryWatermarks(options_.topic, 0, timeout);
  if (!marks.ok()) return false;
  absl::MutexLock lock(&mu_);
  auto caught_up = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return position_ >= marks->second; };
  return mu_.AwaitWithDeadline(absl::Condition(&caught_up), deadline);
}

std::optional<ReplicaAddress> ReplicaDirectory::KeyOwner(int32_t partition) const {
  absl::MutexLock lock(&mu_);
  auto it = keys_.find(partition);
  if (it == keys_.end()) return std::nullopt;
  return it->second;
}

std::map<int32_t, ReplicaAddress> ReplicaDirectory::KeyOwners() const {
  absl::MutexLock lock(&mu_);
  return keys_;
}

std::optional<ReplicaAddress> ReplicaDirectory::Replica(const std::string& id) const {
  absl::MutexLock lock(&mu_);
  auto it = replicas_.find(id);
  if (it == replicas_.end()) return std::nullopt;
  return it->second;
}

}  // namespace node
}  // namespace polder
