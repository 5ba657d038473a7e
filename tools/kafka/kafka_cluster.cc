#include "tools/kafka/kafka_cluster.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <set>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status/status_macros.h"

namespace polder {
namespace kafka_testing {
namespace {

// A metadata snapshot from `bootstrap`: calls `use` with it (null on failure).
absl::Status WithMetadata(const std::string& bootstrap, const std::string& topic,
                          absl::Duration timeout,
                          const std::function<absl::Status(const rd_kafka_metadata_t&)>& use,
                          bool all_topics = false) {
  char err[256];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), err, sizeof err);
  rd_kafka_conf_set(conf, "log_level", "0", err, sizeof err);
  rd_kafka_conf_set(conf, "reconnect.backoff.ms", "50", err, sizeof err);
  rd_kafka_conf_set(conf, "reconnect.backoff.max.ms", "200", err, sizeof err);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    return absl::InternalError(err);
  }
  rd_kafka_topic_t* t = topic.empty() ? nullptr : rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t e = rd_kafka_metadata(rk, all_topics ? 1 : 0, t, &md,
                                            static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  absl::Status s = e == RD_KAFKA_RESP_ERR_NO_ERROR && md != nullptr
                       ? use(*md)
                       : absl::UnavailableError(
                             absl::StrCat("metadata from ", bootstrap, ": ", rd_kafka_err2str(e)));
  if (md != nullptr) rd_kafka_metadata_destroy(md);
  if (t != nullptr) rd_kafka_topic_destroy(t);
  rd_kafka_destroy(rk);
  return s;
}

const rd_kafka_metadata_partition_t* FindPartition(const rd_kafka_metadata_t& md,
                                                   const std::string& topic, int32_t partition) {
  for (int i = 0; i < md.topic_cnt; ++i) {
    if (topic != md.topics[i].topic) continue;
    for (int j = 0; j < md.topics[i].partition_cnt; ++j) {
      if (md.topics[i].partitions[j].id == partition) return &md.topics[i].partitions[j];
    }
  }
  return nullptr;
}

}  // namespace

int32_t KafkaCluster::JavaHashCode(const std::string& s) {
  uint32_t h = 0;
  for (unsigned char c : s) h = 31 * h + c;
  return static_cast<int32_t>(h);
}

KafkaCluster::KafkaCluster(KafkaClusterOptions options) : options_(std::move(options)) {}

KafkaCluster::~KafkaCluster() {
  // kill -9, not a controlled shutdown: a test cluster's data is thrown away, and the last
  // nodes' controlled shutdown waits out its timeout for a quorum already gone (a minute for
  // three nodes stopped one by one).
  for (auto& n : nodes_) (void)n->Kill();
}

absl::StatusOr<std::unique_ptr<KafkaCluster>> KafkaCluster::Start(KafkaClusterOptions options) {
  std::vector<KafkaClusterOptions> one;
  one.push_back(std::move(options));
  ASSIGN_OR_RETURN(auto clusters, StartAll(std::move(one)));
  return std::move(clusters.front());
}

absl::StatusOr<std::vector<std::unique_ptr<KafkaCluster>>> KafkaCluster::StartAll(
    std::vector<KafkaClusterOptions> options) {
  std::vector<std::unique_ptr<KafkaCluster>> clusters;
  for (KafkaClusterOptions& o : options) {
    if (o.nodes < 1) return absl::InvalidArgumentError("a cluster needs at least one node");
    clusters.push_back(std::unique_ptr<KafkaCluster>(new KafkaCluster(std::move(o))));
    RETURN_IF_ERROR(clusters.back()->Prepare());
  }
  std::vector<KafkaCluster*> pending;
  for (auto& c : clusters) pending.push_back(c.get());
  int attempts = 1;
  for (const auto& c : clusters) attempts = std::max(attempts, c->options_.node.start_attempts);
  absl::Status last = absl::InternalError("cluster start was not attempted");
  for (int attempt = 0; attempt < attempts && !pending.empty(); ++attempt) {
    // Every port of every pending cluster at once, all distinct.
    std::set<int> taken;
    for (KafkaCluster* c : pending) RETURN_IF_ERROR(c->Configure(taken));
    // Every node's storage is formatted at once (a JVM each, seconds on a small machine).
    std::vector<KafkaBroker*> all;
    for (KafkaCluster* c : pending) {
      for (auto& n : c->nodes_) all.push_back(n.get());
    }
    std::vector<absl::Status> formatted(all.size());
    std::vector<std::thread> formatting;
    for (size_t i = 0; i < all.size(); ++i) {
      formatting.emplace_back([&all, &formatted, i] { formatted[i] = all[i]->Format(); });
    }
    for (auto& t : formatting) t.join();
    for (const absl::Status& s : formatted) RETURN_IF_ERROR(s);
    // Every node launched before any is waited for (a quorum needs a majority).
    for (KafkaBroker* n : all) RETURN_IF_ERROR(n->Launch());
    std::vector<KafkaCluster*> retry;
    for (KafkaCluster* c : pending) {
      last = c->AwaitStarted();
      if (last.ok()) continue;
      for (auto& n : c->nodes_) (void)n->Kill();
      if (!absl::IsAlreadyExists(last)) return last;  // Only a port race is worth another try.
      retry.push_back(c);
    }
    pending = std::move(retry);
  }
  if (!pending.empty()) return last;
  return clusters;
}

absl::Status KafkaCluster::Prepare() {
  const KafkaClusterOptions& o = options_;
  replication_factor_ = o.replication_factor > 0 ? o.replication_factor : std::min(o.nodes, 3);
  min_insync_replicas_ =
      o.min_insync_replicas > 0 ? o.min_insync_replicas : std::max(1, replication_factor_ - 1);
  const std::string rf = std::to_string(replication_factor_);
  const std::string isr = std::to_string(min_insync_replicas_);
  const std::string parts = std::to_string(std::max(1, o.coordinator_partitions));
  for (int id = 1; id <= o.nodes; ++id) {
    KafkaBrokerOptions n = o.node;
    n.name = absl::StrCat(o.node.name, "-", id);
    if (!o.node.work_dir.empty()) n.work_dir = absl::StrCat(o.node.work_dir, "/node-", id);
    std::map<std::string, std::string> p = {
        {"default.replication.factor", rf},
        {"min.insync.replicas", isr},
        {"offsets.topic.replication.factor", rf},
        {"offsets.topic.num.partitions", parts},
        {"transaction.state.log.replication.factor", rf},
        {"transaction.state.log.min.isr", isr},
        {"transaction.state.log.num.partitions", parts},
        {"share.coordinator.state.topic.replication.factor", rf},
        {"share.coordinator.state.topic.min.isr", isr},
        {"unclean.leader.election.enable", "false"},
    };
    for (const auto& [k, v] : o.node.properties) p[k] = v;
    n.properties = std::move(p);
    std::unique_ptr<KafkaBroker> b(new KafkaBroker(std::move(n)));
    RETURN_IF_ERROR(b->Prepare());
    b->node_id_ = id;
    nodes_.push_back(std::move(b));
  }
  return absl::OkStatus();
}

absl::Status KafkaCluster::Stop() {
  std::vector<absl::Status> stopped(nodes_.size());
  std::vector<std::thread> stopping;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    stopping.emplace_back([this, i, &stopped] { stopped[i] = nodes_[i]->Stop(); });
  }
  for (auto& t : stopping) t.join();
  for (const absl::Status& s : stopped) RETURN_IF_ERROR(s);
  return absl::OkStatus();
}

absl::Status KafkaCluster::Relaunch(const std::vector<int>& ids) {
  for (int id : ids) {
    KafkaBroker& n = node(id);
    if (n.running() && !n.CheckExited()) {
      return absl::FailedPreconditionError(absl::StrCat("node ", id, " is running"));
    }
    RETURN_IF_ERROR(n.Launch());
  }
  return absl::OkStatus();
}

absl::Status KafkaCluster::AwaitServing(const std::vector<int>& ids) {
  for (int id : ids) {
    KafkaBroker& n = node(id);
    absl::Status s = n.WaitUntilServing();
    // The previous process may still have been releasing the port: as Restart does.
    for (int attempt = 1;
         absl::IsAlreadyExists(s) && attempt < std::max(1, n.options_.start_attempts); ++attempt) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      RETURN_IF_ERROR(n.Launch());
      s = n.WaitUntilServing();
    }
    RETURN_IF_ERROR(s);
  }
  return absl::OkStatus();
}

absl::Status KafkaCluster::Configure(std::set<int>& taken) {
  const KafkaBrokerOptions& o = options_.node;
  auto pick = o.port_picker ? o.port_picker : PickFreePort;
  std::vector<int> ports;
  while (ports.size() < 2 * nodes_.size()) {
    ASSIGN_OR_RETURN(int p, pick());
    if (taken.insert(p).second) ports.push_back(p);
  }
  auto it = ports.begin();
  std::vector<std::string> voters;
  for (auto& n : nodes_) {
    n->port_ = *it++;
    n->controller_port_ = *it++;
    voters.push_back(absl::StrCat(n->node_id_, "@", o.bind_address, ":", n->controller_port_));
  }
  cluster_id_ = NewClusterId();
  for (auto& n : nodes_) {
    n->quorum_voters_ = absl::StrJoin(voters, ",");
    n->cluster_id_ = cluster_id_;
    std::error_code ec;
    std::filesystem::remove_all(n->work_dir_ + "/data", ec);
    RETURN_IF_ERROR(n->WriteConfig());
  }
  return absl::OkStatus();
}

absl::Status KafkaCluster::AwaitStarted() {
  const KafkaBrokerOptions& o = options_.node;
  absl::Status last = absl::OkStatus();
  for (auto& n : nodes_) {
    absl::Status s = n->WaitUntilServing();
    if (!s.ok() && last.ok()) last = s;
  }
  if (!last.ok()) return last;
  // Serving alone is not enough: every node registered as a broker.
  const absl::Time until = absl::Now() + o.start_timeout;
  while (absl::Now() < until) {
    absl::StatusOr<std::vector<int>> brokers = Brokers(absl::Seconds(2));
    if (brokers.ok() && brokers->size() == nodes_.size()) return absl::OkStatus();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return absl::DeadlineExceededError(absl::StrCat(
      "not every node of the cluster registered within ", absl::FormatDuration(o.start_timeout),
      "; node 1's log tail:\n", nodes_[0]->LogTail(4096)));
}

absl::Status KafkaCluster::AwaitInSync(absl::Duration timeout) const {
  const absl::Time until = absl::Now() + timeout;
  std::string behind = "no metadata";
  while (absl::Now() < until) {
    absl::Status s = WithMetadata(
        RunningBootstrap(), "", absl::Seconds(5),
        [&](const rd_kafka_metadata_t& md) {
          behind.clear();
          if (md.broker_cnt != static_cast<int>(nodes_.size())) {
            behind = absl::StrCat(md.broker_cnt, " of ", nodes_.size(), " nodes registered");
          }
          for (int i = 0; i < md.topic_cnt && behind.empty(); ++i) {
            for (int j = 0; j < md.topics[i].partition_cnt; ++j) {
              const rd_kafka_metadata_partition_t& p = md.topics[i].partitions[j];
              if (p.leader < 0 || p.isr_cnt < p.replica_cnt) {
                behind = absl::StrCat(md.topics[i].topic, "/", p.id, ": ", p.isr_cnt, " of ",
                                      p.replica_cnt, " replicas in sync, leader ", p.leader);
                break;
              }
            }
          }
          return absl::OkStatus();
        },
        /*all_topics=*/true);
    if (s.ok() && behind.empty()) return absl::OkStatus();
    if (!s.ok()) behind = std::string(s.message());
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return absl::DeadlineExceededError(absl::StrCat("the cluster was not in sync within ",
                                                  absl::FormatDuration(timeout), ": ", behind));
}

std::string KafkaCluster::bootstrap_servers() const {
  std::vector<std::string> all;
  for (const auto& n : nodes_) all.push_back(n->bootstrap_servers());
  return absl::StrJoin(all, ",");
}

std::string KafkaCluster::RunningBootstrap() const {
  std::vector<std::string> up;
  for (const auto& n : nodes_) {
    if (n->running() && !n->paused()) up.push_back(n->bootstrap_servers());
  }
  return up.empty() ? bootstrap_servers() : absl::StrJoin(up, ",");
}

absl::StatusOr<std::vector<int>> KafkaCluster::Brokers(absl::Duration timeout) const {
  std::vector<int> ids;
  RETURN_IF_ERROR(WithMetadata(RunningBootstrap(), "", timeout, [&](const rd_kafka_metadata_t& md) {
    for (int i = 0; i < md.broker_cnt; ++i) ids.push_back(md.brokers[i].id);
    std::sort(ids.begin(), ids.end());
    return absl::OkStatus();
  }));
  return ids;
}

absl::StatusOr<int> KafkaCluster::LeaderOf(const std::string& topic, int32_t partition,
                                           absl::Duration timeout) const {
  int leader = -1;
  RETURN_IF_ERROR(
      WithMetadata(RunningBootstrap(), topic, timeout, [&](const rd_kafka_metadata_t& md) {
        const rd_kafka_metadata_partition_t* p = FindPartition(md, topic, partition);
        if (p == nullptr || p->leader < 0) {
          return absl::NotFoundError(absl::StrCat(topic, "/", partition, " has no leader now"));
        }
        leader = p->leader;
        return absl::OkStatus();
      }));
  return leader;
}

absl::StatusOr<std::vector<int>> KafkaCluster::InSyncReplicas(const std::string& topic,
                                                              int32_t partition,
                                                              absl::Duration timeout) const {
  std::vector<int> isr;
  RETURN_IF_ERROR(
      WithMetadata(RunningBootstrap(), topic, timeout, [&](const rd_kafka_metadata_t& md) {
        const rd_kafka_metadata_partition_t* p = FindPartition(md, topic, partition);
        if (p == nullptr)
          return absl::NotFoundError(absl::StrCat("no partition ", topic, "/", partition));
        isr.assign(p->isrs, p->isrs + p->isr_cnt);
        std::sort(isr.begin(), isr.end());
        return absl::OkStatus();
      }));
  return isr;
}

absl::StatusOr<int> KafkaCluster::TransactionCoordinatorOf(const std::string& transactional_id,
                                                           absl::Duration timeout) const {
  const int32_t h = JavaHashCode(transactional_id);
  // Kafka's Utils.abs: Integer.MIN_VALUE maps to 0.
  const int64_t abs = h == INT32_MIN ? 0 : std::llabs(static_cast<int64_t>(h));
  const int32_t partition =
      static_cast<int32_t>(abs % std::max(1, options_.coordinator_partitions));
  return LeaderOf("__transaction_state", partition, timeout);
}

absl::StatusOr<int> KafkaCluster::ActiveController() const {
  for (const auto& n : nodes_) {
    if (!n->running() || n->paused()) continue;
    ASSIGN_OR_RETURN(
        std::string out,
        RunKafkaTool(
            n->kafka_home_, options_.node.java, "org.apache.kafka.tools.MetadataQuorumCommand",
            {"--bootstrap-server", n->bootstrap_servers(), "describe", "--status"}, n->work_dir_));
    std::smatch m;
    static const std::regex kLeader(R"(LeaderId:\s+(\d+))");
    if (std::regex_search(out, m, kLeader)) return std::atoi(m[1].str().c_str());
    return absl::InternalError(absl::StrCat("no LeaderId in the quorum's status:\n", out));
  }
  return absl::UnavailableError("no node is running");
}

}  // namespace kafka_testing
}  // namespace polder
