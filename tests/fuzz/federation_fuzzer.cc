// Federation messages: the first byte picks what the rest is — a Subscribe request or response,
// a receipt exchange, an audit-entries answer (Protobuf, as a peer sends them), or an audit
// record, receipt record or audit entry (JSON, as stored in _polder.audit). Everything decodes
// or is refused without crashing; what decodes survives the round trips Polder relies on.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/audit/audit_chain.h"
#include "common/audit/trail.h"
#include "proto/polder/federation/v1/federation.pb.h"
#include "services/node/federation/receipts.h"

namespace fv1 = ::polder::federation::v1;
namespace audit = ::polder::audit;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string rest(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 7) {
    case 0: {
      fv1::SubscribeRequest m;
      if (m.ParseFromString(rest)) (void)m.SerializeAsString();
      break;
    }
    case 1: {
      fv1::SubscribeResponse m;
      if (m.ParseFromString(rest) && m.has_batch()) {
        for (const auto& r : m.batch().records()) (void)r.value().size();
      }
      break;
    }
    case 2: {
      fv1::ExchangeReceiptsRequest m;
      if (m.ParseFromString(rest)) {
        audit::Receipt r = polder::node::FromProto(m.receipt());
        (void)audit::ReceiptSigner(r);
        if (polder::node::FromProto(polder::node::ToProto(r)).stream_id != r.stream_id)
          std::abort();
      }
      break;
    }
    case 3: {
      fv1::GetAuditEntriesResponse m;
      if (m.ParseFromString(rest)) {
        std::vector<audit::AuditLink> links;
        for (const auto& e : m.entries())
          links.push_back({e.sequence(), e.hash(), e.canonical_json()});
        (void)audit::VerifyChain("stream-fuzz", links);
      }
      break;
    }
    case 4: {
      auto link = audit::DecodeAuditRecord(rest);
      if (link.ok()) (void)audit::ParseEntry(link->canonical_json);
      break;
    }
    case 5: {
      auto r = audit::DecodeReceipt(rest);
      if (r.ok()) {
        auto again = audit::DecodeReceipt(audit::EncodeReceipt(*r));
        if (!again.ok() || again->jws != r->jws || again->sequence != r->sequence) std::abort();
      }
      break;
    }
    case 6: {
      auto e = audit::ParseEntry(rest);
      if (e.ok()) {
        auto canonical = audit::CanonicalJson(*e);
        if (canonical.ok()) {
          auto again = audit::ParseEntry(*canonical);
          if (!again.ok() || audit::CanonicalJson(*again).value_or("") != *canonical) std::abort();
        }
      }
      (void)audit::ReadTrail({{"stream-fuzz/1", rest}, {"receipt/s/p/1", rest}});
      break;
    }
  }
  return 0;
}
