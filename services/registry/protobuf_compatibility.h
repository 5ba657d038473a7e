// The Protobuf compatibility engine (the registry's default checker): compares two versions of a
// schema under Protobuf binary-wire and proto3 JSON-mapping semantics, plus what Confluent framing
// adds — records name their message type by index, so a message's index path must not change.
//
// CompareForReading(reader, writer, reader_is) lists why records written with `writer` cannot be
// read with `reader`. BACKWARD checks (new, old, kNewer); FORWARD (old, new, kOlder); FULL both.
// Which side is newer matters for what one side has and the other lacks (ADR 0007):
//  - a field (by number) or enum value the writer has and the newer reader lacks was deleted:
//    refused unless the reader reserves its number and its name (otherwise a later version could
//    reuse them with another meaning, and old JSON would stop parsing);
//  - one the writer has and the older reader lacks was added: older readers skip unknown fields
//    and keep unknown enum numbers, and Polder never parses JSON text with another version than
//    the one it was written with — accepted (refused only if the older version reserves just its
//    number or just its name, i.e. for another field);
//  - likewise a message only the newer version has was added; one only the older has was removed;
//  - the newer version keeps every reservation of the older one;
//  - the same number with another name or JSON name (JSON uses names);
//  - the same number with another type (wire group and JSON representation must both match;
//    only identical types, and message/enum fields of the same full type, are accepted);
//  - repeated ↔ singular (JSON array vs value; packed ↔ unpacked is fine);
//  - a field moved into, out of or between oneofs;
//  - a message's index path changed (Confluent message indexes), the package renamed;
//  - an enum value renamed (JSON uses names);
//  - (deliberately stricter than buf) int32↔uint32 and fixed32↔sfixed32, which reinterpret
//    signs, and a renamed message (it names the subject and the CloudEvents type).
#ifndef POLDER_SERVICES_REGISTRY_PROTOBUF_COMPATIBILITY_H_
#define POLDER_SERVICES_REGISTRY_PROTOBUF_COMPATIBILITY_H_

#include <string>
#include <vector>

#include "common/schema/schema.h"

namespace polder {
namespace registry {

enum class ReaderIs { kNewer, kOlder };

// Why data written with `writer` cannot be read with `reader`; empty if it can.
std::vector<std::string> CompareForReading(const schema::ParsedSchema& reader,
                                           const schema::ParsedSchema& writer, ReaderIs reader_is);

}  // namespace registry
}  // namespace polder

#endif  // POLDER_SERVICES_REGISTRY_PROTOBUF_COMPATIBILITY_H_
