// The Protobuf compatibility engine (the registry's default checker): compares two versions of a schema under Protobuf binary-wire and proto3 JSON
// mapping semantics, plus what Confluent framing adds — records name their message type by
// index, so a message's index path must not change.
//
// Compare(reader, writer) lists why data written with `writer` cannot be read with `reader`.
// BACKWARD checks Compare(new, old); FORWARD Compare(old, new); FULL both. Rules:
//  - a field (by number) present on one side only: refused unless the other side reserves
//    its number and its name (a later reuse with another type would corrupt data; JSON names
//    must not come back with another meaning);
//  - the same number with another name or JSON name (JSON uses names);
//  - the same number with another type (wire group and JSON representation must both match;
//    only identical types, and message/enum fields of the same full type, are accepted);
//  - repeated ↔ singular (JSON array vs value; packed ↔ unpacked is fine);
//  - a field moved into, out of or between oneofs;
//  - a message's index path changed or the message gone (Confluent message indexes);
//  - an enum value (by number) gone unless reserved, or renamed (JSON uses names);
//  - a number or name reserved on one side used on the other, or not reserved there any more;
//  - (deliberately stricter than buf) int32↔uint32 and fixed32↔sfixed32, which reinterpret
//    signs, and a renamed message (it names the subject and the CloudEvents type).
#ifndef POLDER_SERVICES_REGISTRY_PROTOBUF_COMPATIBILITY_H_
#define POLDER_SERVICES_REGISTRY_PROTOBUF_COMPATIBILITY_H_

#include <string>
#include <vector>

#include "common/schema/schema.h"

namespace polder {
namespace registry {

// Why data written with `writer` cannot be read with `reader`; empty if it can.
std::vector<std::string> CompareForReading(const schema::ParsedSchema& reader,
                                           const schema::ParsedSchema& writer);

}  // namespace registry
}  // namespace polder

#endif  // POLDER_SERVICES_REGISTRY_PROTOBUF_COMPATIBILITY_H_
