#include "tests/kafka/broker_chaos.h"

#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"

namespace polder {
namespace chaos {

using kafka_testing::KafkaCluster;

kafka_testing::KafkaClusterOptions FailureClusterOptions(const std::string& name) {
  kafka_testing::KafkaClusterOptions o;
  o.node.name = name;
  o.node.properties["broker.session.timeout.ms"] = "4000";
  o.node.properties["broker.heartbeat.interval.ms"] = "1000";
  return o;
}

BrokerChaos::BrokerChaos(KafkaCluster* cluster, uint32_t seed, absl::Duration max_delay,
                         absl::Duration max_down)
    : cluster_(cluster), seed_(seed), random_(seed), max_delay_(max_delay), max_down_(max_down) {
  std::fprintf(stderr, "[chaos] broker kills seeded with %u\n", seed);
}

void BrokerChaos::Add(std::string what, Whom whom) {
  targets_.emplace_back(std::move(what), std::move(whom));
}

void BrokerChaos::AddController() {
  Add("active controller", [](KafkaCluster& c) { return c.ActiveController(); });
}

void BrokerChaos::AddAnyNode() {
  Add("a node", [this](KafkaCluster& c) -> absl::StatusOr<int> {
    return 1 + static_cast<int>(random_() % static_cast<uint32_t>(c.size()));
  });
}

absl::StatusOr<std::string> BrokerChaos::Round() {
  if (targets_.empty()) return absl::FailedPreconditionError("no chaos target was added");
  auto uniform = [this](absl::Duration max) {
    const int64_t ms = absl::ToInt64Milliseconds(max);
    return ms <= 0 ? absl::ZeroDuration()
                   : absl::Milliseconds(static_cast<int64_t>(random_() % (ms + 1)));
  };
  const auto& [what, whom] = targets_[random_() % targets_.size()];
  const absl::Duration delay = uniform(max_delay_);
  const absl::Duration down = uniform(max_down_);
  ASSIGN_OR_RETURN(int id, whom(*cluster_));
  absl::SleepFor(delay);
  RETURN_IF_ERROR(cluster_->node(id).Kill());
  absl::SleepFor(down);
  RETURN_IF_ERROR(cluster_->Relaunch({id}));
  RETURN_IF_ERROR(cluster_->AwaitServing({id}));
  RETURN_IF_ERROR(cluster_->AwaitInSync());
  std::string round =
      absl::StrCat(what, ": node ", id, " killed after ", absl::FormatDuration(delay), ", down ",
                   absl::FormatDuration(down));
  std::fprintf(stderr, "[chaos] round %zu: %s\n", rounds_.size() + 1, round.c_str());
  rounds_.push_back(round);
  return round;
}

}  // namespace chaos
}  // namespace polder
