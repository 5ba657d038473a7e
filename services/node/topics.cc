#include "services/node/topics.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status/status_macros.h"
#include "common/views/names.h"
#include "nlohmann/json.hpp"

namespace polder {
namespace node {
namespace {

// Topics looked up (and created) at once.
constexpr size_t kLookupThreads = 8;

using Wanted = WantedTopic;

int64_t ConfigInt(const kafka::TopicDescription& d, const std::string& key, int64_t fallback) {
  auto it = d.configs.find(key);
  int64_t v = 0;
  if (it == d.configs.end() || !absl::SimpleAtoi(it->second.value, &v)) return fallback;
  return v;
}

}  // namespace

std::vector<WantedTopic> WantedTopics(const NodeConfig& c) {
  const SizeLimits limits = DeriveSizeLimits(c);
  const int64_t max_message_bytes = limits.producer_batch_bytes + 1024;
  std::vector<Wanted> wanted;
  for (const DatasetConfig& d : c.datasets) {
    Wanted w;
    w.spec.name = c.TopicOf(d);
    w.spec.partitions = d.partitions;
    w.spec.replication_factor = d.replication_factor;
    w.spec.configs = {{"cleanup.policy", "delete"},
                      {"retention.ms", std::to_string(absl::ToInt64Milliseconds(d.retention))},
                      {"max.message.bytes", std::to_string(max_message_bytes)},
                      {"message.timestamp.type", "CreateTime"}};
    wanted.push_back(std::move(w));
  }
  Wanted keys;
  keys.dataset = false;
  keys.spec.name = c.keys_topic;
  keys.spec.partitions = c.keys_partitions;
  keys.spec.replication_factor = c.internal_replication_factor;
  keys.spec.configs = {
      {"cleanup.policy", "delete"},
      {"retention.ms", std::to_string(absl::ToInt64Milliseconds(2 * c.idempotency_window))},
      {"max.message.bytes", std::to_string(max_message_bytes)}};
  keys.exact_partitions = true;
  wanted.push_back(std::move(keys));
  // Who holds which key partition (ADR 0021 §2): the latest claim per partition and replica.
  Wanted replicas;
  replicas.dataset = false;
  replicas.internal_log = true;
  replicas.spec = {
      c.replicas_topic,
      1,
      c.internal_replication_factor,
      {{"cleanup.policy", "compact"}, {"max.message.bytes", std::to_string(max_message_bytes)}}};
  wanted.push_back(std::move(replicas));
  // Roles (ADR 0021 §3): only its partitions matter (the group assigns them); nothing is
  // written, so a short retention keeps it empty.
  Wanted roles;
  roles.dataset = false;
  roles.spec = {c.roles_topic,
                NodeConfig::kRolesPartitions,
                c.internal_replication_factor,
                {{"cleanup.policy", "delete"},
                 {"retention.ms", "3600000"},
                 {"max.message.bytes", std::to_string(max_message_bytes)}}};
  roles.exact_partitions = true;
  wanted.push_back(std::move(roles));
  // Feed quality (ADR 0018 §6): the latest per provider and dataset.
  Wanted feed_quality;
  feed_quality.dataset = false;
  feed_quality.internal_log = true;
  feed_quality.spec = {
      c.feed_quality_topic,
      1,
      c.internal_replication_factor,
      {{"cleanup.policy", "compact"}, {"max.message.bytes", std::to_string(max_message_bytes)}}};
  wanted.push_back(std::move(feed_quality));
  // Aggregate views (ADR 0016): each view's output beside its dataset (kept as long), and the
  // set's compacted changelog.
  for (const views::ViewSetSpec& set : c.views) {
    const DatasetConfig* d = c.FindDataset(set.dataset);
    if (d == nullptr) continue;  // refused when the config was read
    for (const views::ViewSpec& v : set.views) {
      Wanted w;
      w.spec.name = views::ViewTopic(c.peer_id, set.dataset, v.id);
      w.spec.partitions = 1;
      w.spec.replication_factor = d->replication_factor;
      w.spec.configs = {{"cleanup.policy", "delete"},
                        {"retention.ms", std::to_string(absl::ToInt64Milliseconds(d->retention))},
                        {"max.message.bytes", std::to_string(max_message_bytes)},
                        {"message.timestamp.type", "CreateTime"}};
      w.exact_partitions = true;
      wanted.push_back(std::move(w));
    }
    Wanted changelog;
    changelog.dataset = false;
    changelog.internal_log = true;
    changelog.spec = {
        views::ViewChangelogTopic(set.dataset),
        1,
        c.internal_replication_factor,
        {{"cleanup.policy", "compact"}, {"max.message.bytes", std::to_string(max_message_bytes)}}};
    wanted.push_back(std::move(changelog));
  }
  if (c.sharing.enabled) {
    // Mirrors of other cities' datasets: the source's name and partition count.
    for (const SubscriptionConfig& sub : c.sharing.subscriptions) {
      Wanted m;
      m.spec.name = NodeConfig::MirrorTopicOf(sub);
      m.spec.partitions = sub.partitions;
      m.spec.replication_factor = sub.replication_factor;
      m.spec.configs = {
          {"cleanup.policy", "delete"},
          {"retention.ms", std::to_string(absl::ToInt64Milliseconds(sub.mirror_retention))},
          {"max.message.bytes", std::to_string(max_message_bytes)},
          {"message.timestamp.type", "CreateTime"}};
      m.exact_partitions = true;
      m.mirror = true;
      wanted.push_back(std::move(m));
    }
    Wanted cursors;
    cursors.dataset = false;
    cursors.internal_log = true;
    cursors.spec = {
        c.sharing.cursors_topic,
        1,
        c.internal_replication_factor,
        {{"cleanup.policy", "compact"}, {"max.message.bytes", std::to_string(max_message_bytes)}}};
    wanted.push_back(std::move(cursors));
    Wanted audit;
    audit.dataset = false;
    audit.internal_log = true;
    // Never compacted, no time-based deletion (a legal retention is set on the topic by hand).
    audit.spec = {c.sharing.audit_topic,
                  1,
                  c.internal_replication_factor,
                  {{"cleanup.policy", "delete"},
                   {"retention.ms", "-1"},
                   {"retention.bytes", "-1"},
                   {"max.message.bytes", std::to_string(max_message_bytes)}}};
    wanted.push_back(std::move(audit));
    // The audit index (ADR 0011 §8): small, compacted; rebuilt from the audit topic if lost.
    Wanted audit_index;
    audit_index.dataset = false;
    audit_index.internal_log = true;
    audit_index.spec = {
        c.sharing.audit_index_topic,
        1,
        c.internal_replication_factor,
        {{"cleanup.policy", "compact"}, {"max.message.bytes", std::to_string(max_message_bytes)}}};
    wanted.push_back(std::move(audit_index));
  }
  return wanted;
}

KafkaNeeds KafkaNeedsOf(const NodeConfig& c) {
  KafkaNeeds needs;
  needs.topics = WantedTopics(c);
  // Ingest (ADR 0021 §2): one writer per key partition, and the single node's id it takes over.
  needs.transactional_ids.push_back(c.transactional_id);
  needs.transactional_id_prefixes.push_back(absl::StrCat("polder-ingest-", c.peer_id, "-k"));
  for (const views::ViewSetSpec& set : c.views) {
    needs.transactional_ids.push_back(views::ViewTransactionalId(c.peer_id, set.dataset));
  }
  if (c.sharing.enabled) {
    for (const SubscriptionConfig& sub : c.sharing.subscriptions) {
      needs.transactional_ids.push_back(c.MirrorTransactionalIdOf(sub));
    }
  }
  needs.groups = {absl::StrCat("polder-", c.peer_id, "-keys"),
                  absl::StrCat("polder-", c.peer_id, "-roles")};
  return needs;
}

std::string KafkaNeedsJson(const KafkaNeeds& needs) {
  nlohmann::json topics = nlohmann::json::array();
  for (const WantedTopic& w : needs.topics) {
    nlohmann::json configs = nlohmann::json::object();
    for (const auto& [k, v] : w.spec.configs) configs[k] = v;
    topics.push_back({{"name", w.spec.name},
                      {"partitions", w.spec.partitions},
                      {"replication_factor", w.spec.replication_factor},
                      {"configs", configs},
                      {"exact_partitions", w.exact_partitions},
                      {"created_by", w.mirror ? "node" : "operator"}});
  }
  nlohmann::json out = {{"topics", topics},
                        {"transactional_ids", needs.transactional_ids},
                        {"transactional_id_prefixes", needs.transactional_id_prefixes},
                        {"groups", needs.groups}};
  return out.dump(2);
}

absl::StatusOr<TopicReport> EnsureTopics(kafka::Admin& admin, const NodeConfig& c,
                                         absl::Duration timeout) {
  const SizeLimits limits = DeriveSizeLimits(c);
  std::vector<Wanted> wanted = WantedTopics(c);

  // Each topic described (and created if missing) at once with the others: one after another,
  // a node's first start spent ~1.3 s here. Judged below in order, as listed.
  struct Found {
    absl::StatusOr<kafka::TopicDescription> d = absl::UnknownError("not looked up");
    bool create_tried = false;
    absl::Status created;
  };
  std::vector<Found> found(wanted.size());
  {
    std::atomic<size_t> next{0};
    auto look_up = [&] {
      for (size_t i = next++; i < wanted.size(); i = next++) {
        const Wanted& w = wanted[i];
        Found& f = found[i];
        f.d = admin.DescribeTopic(w.spec.name, timeout);
        if (f.d.ok() || f.d.status().code() != absl::StatusCode::kNotFound) continue;
        f.create_tried = true;
        f.created = admin.CreateTopic(w.spec, timeout);
        if (!f.created.ok() && f.created.code() != absl::StatusCode::kAlreadyExists) continue;
        // A new topic reaches every broker's metadata shortly after creation.
        const absl::Time until = absl::Now() + timeout;
        do {
          f.d = admin.DescribeTopic(w.spec.name, timeout);
          if (f.d.ok() || f.d.status().code() != absl::StatusCode::kNotFound) break;
          absl::SleepFor(absl::Milliseconds(200));
        } while (absl::Now() < until);
      }
    };
    std::vector<std::thread> workers;
    for (size_t k = 0; k < std::min<size_t>(kLookupThreads, wanted.size()); ++k) {
      workers.emplace_back(look_up);
    }
    for (std::thread& t : workers) t.join();
  }

  TopicReport report;
  std::map<std::string, int64_t> max_bytes;
  for (size_t i = 0; i < wanted.size(); ++i) {
    const Wanted& w = wanted[i];
    absl::StatusOr<kafka::TopicDescription>& d = found[i].d;
    if (found[i].create_tried) {
      const absl::Status& created = found[i].created;
      if (!created.ok() && created.code() != absl::StatusCode::kAlreadyExists) {
        if (created.code() == absl::StatusCode::kUnavailable ||
            created.code() == absl::StatusCode::kDeadlineExceeded) {
          return created;
        }
        report.errors.push_back(
            absl::StrCat("topic ", w.spec.name, " cannot be created: ", created.message()));
        continue;
      }
      if (created.ok()) report.created.push_back(w.spec.name);
    }
    if (!d.ok()) {
      if (d.status().code() == absl::StatusCode::kUnavailable ||
          d.status().code() == absl::StatusCode::kDeadlineExceeded) {
        return d.status();
      }
      report.errors.push_back(absl::StrCat("topic ", w.spec.name, ": ", d.status().message()));
      continue;
    }
    const std::string& name = w.spec.name;
    if (name == c.keys_topic && d->partitions != w.spec.partitions) {
      report.errors.push_back(absl::StrCat(
          "topic ", name, " has ", d->partitions, " partitions, kafka.keys_partitions is ",
          w.spec.partitions,
          ": the key partitions are fixed once created (a key's partition, and so its holder, "
          "follows from the count); set kafka.keys_partitions to ",
          d->partitions));
    } else if (name == c.roles_topic && d->partitions != w.spec.partitions) {
      report.errors.push_back(absl::StrCat(
          "topic ", name, " has ", d->partitions, " partitions; the roles topic has ",
          w.spec.partitions,
          " (a role's partition, and so which replica holds it, follows from the count): "
          "delete it while every replica is stopped, or name another kafka.roles_topic"));
    } else if (w.exact_partitions && d->partitions != w.spec.partitions) {
      report.errors.push_back(absl::StrCat("mirror topic ", name, " has ", d->partitions,
                                           " partitions; the source has ", w.spec.partitions,
                                           " (mirrors keep source partitions)"));
    } else if (w.dataset && d->partitions != w.spec.partitions) {
      report.warnings.push_back(absl::StrCat("topic ", name, " has ", d->partitions,
                                             " partitions, configured ", w.spec.partitions,
                                             " (left as it is: repartitioning changes key order)"));
    }
    if (w.internal_log && d->partitions != 1) {
      report.errors.push_back(
          absl::StrCat("topic ", name, " must have 1 partition, has ", d->partitions));
    }
    if (d->replication_factor != w.spec.replication_factor) {
      report.warnings.push_back(absl::StrCat("topic ", name, " has replication factor ",
                                             d->replication_factor, ", configured ",
                                             w.spec.replication_factor));
    }
    if (d->replication_factor < c.production_replication_factor) {
      report.warnings.push_back(absl::StrCat("topic ", name, " has replication factor ",
                                             d->replication_factor, ", below the production value ",
                                             c.production_replication_factor,
                                             ": a broker failure can lose acknowledged records"));
    }
    const int64_t min_isr = ConfigInt(*d, "min.insync.replicas", 1);
    if (min_isr < c.production_min_insync_replicas) {
      report.warnings.push_back(absl::StrCat("topic ", name, " has min.insync.replicas=", min_isr,
                                             ", below the production value ",
                                             c.production_min_insync_replicas));
    }
    auto policy = d->configs.find("cleanup.policy");
    const bool wants_compaction =
        w.spec.configs.count("cleanup.policy") && w.spec.configs.at("cleanup.policy") == "compact";
    if (!wants_compaction && policy != d->configs.end() &&
        !absl::StrContains(policy->second.value, "delete")) {
      report.errors.push_back(
          absl::StrCat("topic ", name, " has cleanup.policy=", policy->second.value,
                       "; ingest needs delete (compaction would drop records of the same entity)"));
    }
    const int64_t retention = ConfigInt(*d, "retention.ms", -1);
    int64_t wanted_retention = -1;
    if (auto r = w.spec.configs.find("retention.ms");
        r != w.spec.configs.end() && !absl::SimpleAtoi(r->second, &wanted_retention)) {
      wanted_retention = -1;
    }
    if (w.dataset && retention != wanted_retention) {
      report.warnings.push_back(absl::StrCat("topic ", name, " keeps records for retention.ms=",
                                             retention, ", configured ", wanted_retention));
    }
    if (name == c.sharing.audit_topic && c.sharing.enabled && retention >= 0) {
      report.warnings.push_back(absl::StrCat("audit topic ", name,
                                             " deletes entries after retention.ms=", retention,
                                             ": keep it only if that is the legal retention"));
    }
    if (name == c.keys_topic && retention >= 0 &&
        retention < absl::ToInt64Milliseconds(c.idempotency_window)) {
      report.errors.push_back(absl::StrCat("topic ", name, " keeps keys for ", retention,
                                           " ms, less than the idempotency window"));
    }
    max_bytes[name] = ConfigInt(*d, "max.message.bytes", 1048588);
  }
  for (std::string& problem : CheckSizeLimits(c, limits, max_bytes))
    report.errors.push_back(std::move(problem));
  return report;
}

}  // namespace node
}  // namespace polder
