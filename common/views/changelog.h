// The changelog of a view set (ADR 0016 §4): the compacted topic
// `_polder.views.<dataset>.changelog` that holds, written in the same Kafka transaction as the
// outputs, everything the job needs to resume exactly where its last commit left it.
//
//   key                              value (JSON)
//   meta                             key fingerprint, p-table hash, definition hash per view
//   progress                         W, per partition M_p, alignment and next input offset
//   cell/<view>/<start ms>/<group>   an open cell's per-unit contributions (by unit key, never
//                                    a unit id); a tombstone once the cell is emitted
//   close/<view>/<start ms>          a close decision: W, cause, input positions, cells emitted
//   late/<partition>/<offset>        a run of late records: last offset, count
//   reject/<partition>/<offset>      a run of rejected records: last offset, count, reason
//   gate/<view>/<start ms>/<group>   a cell the publication gate remembers while its Amsterdam
//                                    day is open (published value or label; for DOMINANCE and
//                                    relabelled cells, confidential truth); a tombstone after
//   map/<day ms>/<grid>/<code>/<m>   a grid cell and a municipality one of the day's records
//                                    joined (the gate's map, gate.h); a tombstone after the day
//   feed/<view>                      the newest closed window of a feed-quality view and the
//                                    value published for it (entities reporting, ADR 0018 §6)
//
// Decoding never trusts the topic: a value that does not parse is DATA_LOSS naming its key.
#ifndef POLDER_COMMON_VIEWS_CHANGELOG_H_
#define POLDER_COMMON_VIEWS_CHANGELOG_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/views/engine.h"
#include "common/views/gate.h"

namespace polder {
namespace views {

struct ChangelogMeta {
  std::string key_fingerprint;
  std::string ptable_sha256;
  std::map<std::string, std::string> definitions;  // view id → definition hash
  // View id → the instant from which it saw every record (views that joined a running set);
  // absent: from the set's start.
  std::map<std::string, absl::Time> coverage;
};

struct CloseDecision {
  std::string view;
  absl::Time window_start;
  absl::Time watermark;
  CloseCause cause = CloseCause::kWatermark;
  std::map<int32_t, int64_t> positions;
  int64_t cells = 0;
};

struct RecordRun {
  int32_t partition = 0;
  int64_t first_offset = 0;
  int64_t last_offset = 0;
  int64_t count = 0;
  std::string reason;  // rejects: "too_new", "too_old", "unreadable"
};

// What a feed-quality view (spec.h) published for its newest closed window: the value, or
// withheld; 0 exactly when no unit reported (an empty window has no cell).
struct FeedFigure {
  Window window;
  std::optional<double> value;  // absent: withheld by the guard or the gate
  bool perturbed = false;
  friend bool operator==(const FeedFigure& a, const FeedFigure& b) {
    return a.window.start == b.window.start && a.window.end == b.window.end && a.value == b.value &&
           a.perturbed == b.perturbed;
  }
};

// One changelog entry, as written.
struct ChangelogEntry {
  std::string key;
  std::optional<std::string> value;  // nullopt: a tombstone
};

ChangelogEntry EncodeMeta(const ChangelogMeta& meta);
ChangelogEntry EncodeProgress(const Engine& engine);
// The cell's current contents, or a tombstone when it is no longer open.
ChangelogEntry EncodeCell(const SetLayout& layout, const CellId& id, const Cell* open);
ChangelogEntry EncodeClose(const CloseDecision& decision);
ChangelogEntry EncodeRun(absl::string_view kind, const RecordRun& run);  // "late" / "reject"
// The gate's memory of a cell, or a tombstone when its day is forgotten.
ChangelogEntry EncodeGate(const SetLayout& layout, const CellId& id, const GateEntry* entry);
// A pair of the gate's map, or its tombstone (`present` false).
ChangelogEntry EncodeMapPair(const MapPair& pair, bool present);
ChangelogEntry EncodeFeedFigure(absl::string_view view, const FeedFigure& figure);

// What a changelog read to its end restores.
struct RestoredViews {
  std::optional<ChangelogMeta> meta;
  bool has_progress = false;
  absl::Time watermark = absl::InfinitePast();
  std::map<int32_t, PartitionClock> clocks;
  std::map<int32_t, int64_t> positions;
  std::map<CellId, Cell> cells;
  std::map<std::string, CloseDecision> closes;  // by key
  std::vector<RecordRun> late, rejected;
  std::map<CellId, GateEntry> gate;
  std::map<std::string, MapPair> map_pairs;  // by key
  std::map<std::string, FeedFigure> feed;    // by view id

  // Applies one record (value nullopt for a tombstone). DATA_LOSS naming the key when a value
  // cannot be read; a cell of a view the layout no longer has is INVALID_ARGUMENT.
  absl::Status Apply(const SetLayout& layout, absl::string_view key,
                     const std::optional<std::string>& value);
};

}  // namespace views
}  // namespace polder

#endif  // POLDER_COMMON_VIEWS_CHANGELOG_H_
