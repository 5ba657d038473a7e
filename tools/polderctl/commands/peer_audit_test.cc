// PeerAuditClient against an in-process federation service on loopback (GetAuditEntries only):
// paging by sequence, the ends of the paging, errors; and the comparisons of a node's trail with
// the peer's trail or entries, on consistent and on tampered sides.
#include "tools/polderctl/commands/peer_audit.h"

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/audit/audit_chain.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "grpcpp/server_context.h"
#include "gtest/gtest.h"
#include "tools/polderctl/commands/audit_testing.h"
#include "tools/polderctl/commands/loopback_server.h"

namespace polder {
namespace polderctl {
namespace {

using ::polder::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;
using ::testing::StartsWith;

// The provider's side of GetAuditEntries: each stream's links, served from `from_sequence` in
// pages of `page_size`; NOT_FOUND for a stream it has none of, or (as the node does) past the end.
class FakeFederation : public federation::v1::FederationService::Service {
 public:
  enum class End { kNotFound, kEmptyPage, kRepeatLastPage };

  void Serve(const std::string& stream, std::vector<audit::AuditLink> links) {
    absl::MutexLock lock(&mu_);
    streams_[stream] = std::move(links);
  }
  void set_page_size(int n) {
    absl::MutexLock lock(&mu_);
    page_size_ = n;
  }
  void set_end(End end) {
    absl::MutexLock lock(&mu_);
    end_ = end;
  }
  void Fail(grpc::Status status) {
    absl::MutexLock lock(&mu_);
    fault_ = std::move(status);
  }
  // "<stream>@<from_sequence>" of each call.
  std::vector<std::string> requests() const {
    absl::MutexLock lock(&mu_);
    return requests_;
  }
  absl::Duration last_deadline() const {
    absl::MutexLock lock(&mu_);
    return last_deadline_;
  }

  grpc::Status GetAuditEntries(grpc::ServerContext* ctx,
                               const federation::v1::GetAuditEntriesRequest* req,
                               federation::v1::GetAuditEntriesResponse* resp) override {
    absl::MutexLock lock(&mu_);
    requests_.push_back(absl::StrCat(req->stream_id(), "@", req->from_sequence()));
    last_deadline_ = absl::FromChrono(ctx->deadline()) - absl::Now();
    if (fault_) return *fault_;
    auto it = streams_.find(req->stream_id());
    if (it == streams_.end()) return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such stream");
    std::vector<const audit::AuditLink*> page;
    for (const audit::AuditLink& l : it->second) {
      if (l.sequence >= req->from_sequence() && static_cast<int>(page.size()) < page_size_) {
        page.push_back(&l);
      }
    }
    if (page.empty()) {
      if (end_ == End::kNotFound) return grpc::Status(grpc::StatusCode::NOT_FOUND, "no entries");
      if (end_ == End::kRepeatLastPage) {
        for (size_t i = it->second.size() - std::min<size_t>(page_size_, it->second.size());
             i < it->second.size(); ++i) {
          page.push_back(&it->second[i]);
        }
      }
    }
    for (const audit::AuditLink* l : page) {
      federation::v1::AuditEntryView* v = resp->add_entries();
      v->set_sequence(l->sequence);
      v->set_hash(l->hash);
      v->set_canonical_json(l->canonical_json);
    }
    return grpc::Status::OK;
  }

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, std::vector<audit::AuditLink>> streams_ ABSL_GUARDED_BY(mu_);
  int page_size_ ABSL_GUARDED_BY(mu_) = 1000;
  End end_ ABSL_GUARDED_BY(mu_) = End::kNotFound;
  std::optional<grpc::Status> fault_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> requests_ ABSL_GUARDED_BY(mu_);
  absl::Duration last_deadline_ ABSL_GUARDED_BY(mu_) = absl::ZeroDuration();
};

class PeerAuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* peer : {"groningen", "amersfoort"}) {
      absl::StatusOr<trust::PrivateKey> key = trust::PrivateKey::Generate();
      ASSERT_TRUE(key.ok());
      keys_.emplace(peer, *std::move(key));
    }
    lookup_ = [this](const std::string& peer,
                     const std::string& kid) -> absl::StatusOr<trust::PublicKey> {
      auto it = keys_.find(peer);
      if (it == keys_.end() || it->second.public_key().kid() != kid) {
        return absl::NotFoundError(absl::StrCat("no key ", kid, " of ", peer));
      }
      return it->second.public_key();
    };
  }

  // `owner`'s signed head of its chain `links`, as the other side keeps it.
  audit::Receipt ReceiptOf(const std::string& owner, const std::string& stream,
                           const std::vector<audit::AuditLink>& links) {
    absl::StatusOr<audit::Receipt> r =
        audit::MakeReceipt(stream, owner, links.size(), links.back().hash, keys_.at(owner),
                           absl::FromUnixSeconds(1795001000));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : audit::Receipt{};
  }

  PeerAuditClient Client(absl::Duration timeout = absl::Seconds(30)) {
    return PeerAuditClient(server_.Channel(), {"groningen", server_.address(), timeout});
  }

  FakeFederation federation_;
  LoopbackServer server_{&federation_};
  std::map<std::string, trust::PrivateKey> keys_;
  audit::KeyLookup lookup_;
};

TEST_F(PeerAuditTest, FetchStreamPagesBySequenceAcrossSeveralPages) {
  const std::vector<audit::AuditLink> offered = TestChain("stream-1", "offered", 7);
  federation_.Serve("stream-1", offered);
  federation_.set_page_size(3);
  ASSERT_OK_AND_ASSIGN(std::vector<audit::AuditLink> links, Client().FetchStream("stream-1"));
  ASSERT_THAT(links, SizeIs(7));
  for (size_t i = 0; i < links.size(); ++i) {
    EXPECT_EQ(links[i].sequence, i + 1);
    EXPECT_EQ(links[i].hash, offered[i].hash);
    EXPECT_EQ(links[i].canonical_json, offered[i].canonical_json);
  }
  EXPECT_THAT(federation_.requests(),
              ElementsAre("stream-1@1", "stream-1@4", "stream-1@7", "stream-1@8"));
}

TEST_F(PeerAuditTest, FetchStreamEndsAtAnEmptyPage) {
  federation_.Serve("stream-1", TestChain("stream-1", "offered", 4));
  federation_.set_page_size(2);
  federation_.set_end(FakeFederation::End::kEmptyPage);
  ASSERT_OK_AND_ASSIGN(std::vector<audit::AuditLink> links, Client().FetchStream("stream-1"));
  EXPECT_THAT(links, SizeIs(4));
  EXPECT_THAT(federation_.requests(), ElementsAre("stream-1@1", "stream-1@3", "stream-1@5"));
}

TEST_F(PeerAuditTest, APeerRepeatingAPageCannotKeepThePagingGoing) {
  federation_.Serve("stream-1", TestChain("stream-1", "offered", 4));
  federation_.set_page_size(2);
  federation_.set_end(FakeFederation::End::kRepeatLastPage);
  ASSERT_OK_AND_ASSIGN(std::vector<audit::AuditLink> links, Client().FetchStream("stream-1"));
  // The repeated page is kept as served: VerifyTrail reports its links as inserted.
  EXPECT_THAT(links, SizeIs(6));
  EXPECT_THAT(federation_.requests(), ElementsAre("stream-1@1", "stream-1@3", "stream-1@5"));
  audit::Trail trail;
  trail.chains["stream-1"] = links;
  std::vector<audit::Finding> findings = audit::VerifyTrail(trail, lookup_);
  ASSERT_THAT(findings, SizeIs(1));
  EXPECT_EQ(findings[0].kind, "inserted");
}

TEST_F(PeerAuditTest, AStreamThePeerHasNoEntriesOfIsEmpty) {
  ASSERT_OK_AND_ASSIGN(std::vector<audit::AuditLink> links, Client().FetchStream("stream-9"));
  EXPECT_THAT(links, IsEmpty());
  EXPECT_THAT(federation_.requests(), ElementsAre("stream-9@1"));
}

TEST_F(PeerAuditTest, APeerErrorKeepsItsCodeAndNamesStreamPeerAndEndpoint) {
  federation_.Serve("stream-1", TestChain("stream-1", "offered", 2));
  federation_.Fail(grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "not the destination"));
  EXPECT_THAT(Client().FetchStream("stream-1"),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       absl::StrCat("GetAuditEntries of stream stream-1 from groningen at ",
                                    server_.address(), ": not the destination")));
}

TEST_F(PeerAuditTest, EachCallHasTheTimeoutAsDeadline) {
  federation_.Serve("stream-1", TestChain("stream-1", "offered", 2));
  ASSERT_OK(Client(absl::Seconds(20)).FetchStream("stream-1").status());
  EXPECT_GT(federation_.last_deadline(), absl::Seconds(10));
  EXPECT_LE(federation_.last_deadline(), absl::Seconds(21));  // gRPC rounds the deadline up
}

TEST_F(PeerAuditTest, FetchOfferedAsksOnlyForTheStreamsReceivedFromThePeer) {
  const audit::Trail mine = TestTrail({
      {"stream-1", TestChain("stream-1", "received", 3)},
      {"stream-2", TestChain("stream-2", "offered", 2, "amersfoort", "groningen")},
      {"stream-3", TestChain("stream-3", "received", 2, "enschede", "amersfoort")},
      {"stream-4", TestChain("stream-4", "received", 1)},
  });
  const std::vector<audit::AuditLink> offered = TestChain("stream-1", "offered", 3);
  federation_.Serve("stream-1", offered);
  ASSERT_OK_AND_ASSIGN(audit::Trail theirs, Client().FetchOffered(mine));
  EXPECT_THAT(federation_.requests(), ElementsAre("stream-1@1", "stream-1@4", "stream-4@1"));
  ASSERT_EQ(theirs.chains.size(), 1u) << "stream-4: the peer has none, left out";
  EXPECT_THAT(theirs.chains.at("stream-1"), SizeIs(3));
  EXPECT_EQ(theirs.entries_head.at("stream-1").direction, "offered");
  EXPECT_THAT(theirs.unreadable, IsEmpty());
}

TEST_F(PeerAuditTest, AnUnreadableFirstEntryIsListed) {
  const audit::Trail mine = TestTrail({{"stream-1", TestChain("stream-1", "received", 1)}});
  federation_.Serve("stream-1", {{1, "hash", "not json"}});
  ASSERT_OK_AND_ASSIGN(audit::Trail theirs, Client().FetchOffered(mine));
  EXPECT_THAT(theirs.chains, IsEmpty());
  ASSERT_THAT(theirs.unreadable, SizeIs(1));
  EXPECT_THAT(theirs.unreadable[0], StartsWith("stream-1 link 1 from groningen: "));
}

TEST_F(PeerAuditTest, AnEmptyTrailAsksForNothing) {
  ASSERT_OK_AND_ASSIGN(audit::Trail theirs, Client().FetchOffered(audit::Trail{}));
  EXPECT_THAT(theirs.chains, IsEmpty());
  EXPECT_THAT(theirs.unreadable, IsEmpty());
  EXPECT_THAT(federation_.requests(), IsEmpty());
  PeerComparison c = CompareWithPeerEntries(audit::Trail{}, theirs, "groningen", lookup_);
  EXPECT_THAT(c.findings, IsEmpty());
  EXPECT_EQ(c.summary,
            "; compared with groningen's entries of the streams received from it (0 streams, 0 "
            "links, via GetAuditEntries)");
}

TEST_F(PeerAuditTest, FetchedEntriesOfAnHonestProviderShowNoFindings) {
  const std::vector<audit::AuditLink> received = TestChain("stream-1", "received", 5);
  const std::vector<audit::AuditLink> offered = TestChain("stream-1", "offered", 5);
  const audit::Trail mine =
      TestTrail({{"stream-1", received}}, {ReceiptOf("groningen", "stream-1", offered)});
  federation_.Serve("stream-1", offered);
  federation_.set_page_size(2);
  ASSERT_OK_AND_ASSIGN(audit::Trail theirs, Client().FetchOffered(mine));
  PeerComparison c = CompareWithPeerEntries(mine, theirs, "groningen", lookup_);
  EXPECT_THAT(c.findings, IsEmpty());
  EXPECT_EQ(c.summary,
            "; compared with groningen's entries of the streams received from it (1 streams, 5 "
            "links, via GetAuditEntries)");
}

TEST_F(PeerAuditTest, FetchedEntriesThatDifferFromTheReceiptAndTheTrailAreFindings) {
  const std::vector<audit::AuditLink> received = TestChain("stream-1", "received", 3);
  const std::vector<audit::AuditLink> offered = TestChain("stream-1", "offered", 3);
  const audit::Trail mine =
      TestTrail({{"stream-1", received}}, {ReceiptOf("groningen", "stream-1", offered)});
  // The provider serves a rewritten chain: a consistent rehash of other batches.
  federation_.Serve("stream-1", TestChain("stream-1", "offered", 3, "groningen", "amersfoort-2"));
  ASSERT_OK_AND_ASSIGN(audit::Trail theirs, Client().FetchOffered(mine));
  PeerComparison c = CompareWithPeerEntries(mine, theirs, "groningen", lookup_);
  ASSERT_THAT(c.findings, Not(IsEmpty()));
  EXPECT_EQ(c.findings[0].stream, "stream-1");
  EXPECT_EQ(c.findings[0].kind, "rewritten");
  // A broken link in the served entries is reported as the peer's.
  std::vector<audit::AuditLink> broken = offered;
  broken[1].hash = broken[0].hash;
  audit::Trail served;
  served.chains["stream-1"] = broken;
  ASSERT_OK_AND_ASSIGN(served.entries_head["stream-1"],
                       audit::ParseEntry(broken[0].canonical_json));
  c = CompareWithPeerEntries(mine, served, "groningen", lookup_);
  ASSERT_THAT(c.findings, Not(IsEmpty()));
  EXPECT_THAT(c.findings[0].detail, StartsWith("(groningen's entries) "));
}

TEST_F(PeerAuditTest, TwoHonestTrailsCompareWithoutFindings) {
  const std::vector<audit::AuditLink> received = TestChain("stream-1", "received", 4);
  const std::vector<audit::AuditLink> offered = TestChain("stream-1", "offered", 4);
  const audit::Trail mine =
      TestTrail({{"stream-1", received}}, {ReceiptOf("groningen", "stream-1", offered)});
  const audit::Trail theirs =
      TestTrail({{"stream-1", offered}}, {ReceiptOf("amersfoort", "stream-1", received)});
  PeerComparison c = CompareWithPeerTrail(mine, theirs, "amersfoort", "groningen", lookup_);
  EXPECT_THAT(c.findings, IsEmpty());
  EXPECT_EQ(c.summary, "; compared with groningen's trail (1 streams, 1 receipts)");
}

TEST_F(PeerAuditTest, ATruncatedPeerTrailIsFoundFromBothSides) {
  const std::vector<audit::AuditLink> received = TestChain("stream-1", "received", 4);
  const std::vector<audit::AuditLink> offered = TestChain("stream-1", "offered", 4);
  const audit::Trail mine =
      TestTrail({{"stream-1", received}}, {ReceiptOf("groningen", "stream-1", offered)});
  // The peer dropped its last link, and a link in the middle of its chain no longer links.
  std::vector<audit::AuditLink> truncated(offered.begin(), offered.end() - 1);
  truncated[2].hash = "0000";
  const audit::Trail theirs =
      TestTrail({{"stream-1", truncated}}, {ReceiptOf("amersfoort", "stream-1", received)});
  PeerComparison c = CompareWithPeerTrail(mine, theirs, "amersfoort", "groningen", lookup_);
  std::vector<std::string> kinds;
  for (const audit::Finding& f : c.findings) kinds.push_back(f.kind);
  EXPECT_THAT(kinds, ::testing::Contains("truncated"));
  ASSERT_THAT(c.findings, Not(IsEmpty()));
  EXPECT_THAT(c.findings[0].detail, StartsWith("(groningen's trail) "));
}

TEST(FindingsStatusTest, ListsEachFindingOnALine) {
  EXPECT_OK(FindingsStatus({}));
  std::vector<audit::Finding> findings = {{"stream-1", "dropped", 3, "link 3 is missing"},
                                          {"stream-2", "unsigned", 1, "bad signature"}};
  EXPECT_THAT(FindingsStatus(findings),
              StatusIs(absl::StatusCode::kDataLoss,
                       absl::StrCat("2 finding(s) in the audit trail:\n  ", findings[0].ToString(),
                                    "\n  ", findings[1].ToString())));
}

TEST(CountLinksTest, CountsTheLinksOfAllChains) {
  audit::Trail trail;
  EXPECT_EQ(CountLinks(trail), 0);
  trail.chains["a"] = TestChain("a", "offered", 3);
  trail.chains["b"] = TestChain("b", "received", 2);
  EXPECT_EQ(CountLinks(trail), 5);
}

}  // namespace
}  // namespace polderctl
}  // namespace polder
