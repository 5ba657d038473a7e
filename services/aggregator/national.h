// One national view's figures (ADR 0018 §3–§4), without Kafka: the cities' view cells and close
// records go in (Offer), decisions come out (Decide) — a national window closes when every
// expected city closed it or at its deadline (window end + the cities' grace + the national
// deadline), and a city that closes it later adds a revision. A figure is built only from what
// the cities published: per measure the sum (count, sum), minimum or maximum of published
// values, the number of withheld cells left out, and whether a perturbed value is included.
// Means are not combined (a city's mean cannot be weighted without its count).
//
// The state of each window is persisted by the caller (Encode/Restore) in the same transaction
// as the figures Decide asks for, so a restarted aggregator decides nothing twice.
//
//   National national(spec);
//   national.Offer("groningen", cell);          // every record of groningen's mirrored view
//   for (const Decision& d : national.Decide(now)) write(national.Figure(d.window, d.revision));
//
// Not thread-safe.
#ifndef POLDER_SERVICES_AGGREGATOR_NATIONAL_H_
#define POLDER_SERVICES_AGGREGATOR_NATIONAL_H_

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "proto/polder/national/v1/national_figure.pb.h"
#include "proto/polder/views/v1/aggregate_cell.pb.h"

namespace polder {
namespace aggregator {

struct NationalViewSpec {
  std::string dataset;
  std::string view;
  std::set<std::string> definition_hashes;  // the cities' definitions this view accepts
  std::set<std::string> cities;             // the cities it expects
  absl::Duration grace = absl::Minutes(5);  // the cities' grace
  absl::Duration deadline = absl::Minutes(15);
  // A window is kept this long after its deadline for late cities; later records are counted
  // and left out.
  absl::Duration revision_horizon = absl::Hours(24 * 7);
};

// A measure of one city's window, combined over its cells.
struct MeasureSum {
  double sum = 0;
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  int64_t published = 0;  // cells with a value
  int64_t withheld = 0;   // cells the city withheld
  bool perturbed = false;
};

struct CityWindow {
  std::map<std::string, MeasureSum> measures;   // by measure name
  std::vector<std::string> order;               // measure names as the cells list them
  int64_t cells = 0;                            // cells received
  bool closed = false;                          // the city closed the window
  int64_t closed_cells = 0;                     // the cells its close record counted
  absl::Time watermark = absl::InfinitePast();  // the city's watermark at its close
  int32_t included_in = -1;                     // the revision that included it; -1: none yet
};

struct Revision {
  int32_t number = 0;
  national::v1::RevisionReason reason = national::v1::REVISION_REASON_UNSPECIFIED;
  absl::Time decided_at;
  std::vector<std::string> cities_added;
};

struct NationalWindow {
  absl::Time start;
  absl::Time end;
  std::string definition_hash;
  std::map<std::string, CityWindow> cities;  // by peer
  std::vector<Revision> revisions;           // empty while the window is open
  absl::Time due;                            // end + grace + deadline
};

struct Decision {
  absl::Time window;  // its start
  int32_t revision = 0;
};

class National {
 public:
  explicit National(NationalViewSpec spec);

  const NationalViewSpec& spec() const { return spec_; }

  // What Offer did with a record.
  enum class Outcome {
    kCell,         // a cell, added to its city's window
    kClose,        // a close record
    kUnknownCity,  // from a city the view does not expect
    kOtherView,    // another dataset or view, or a definition the view does not accept
    kTooOld,       // for a window past its revision horizon (counted, left out)
    kAfterClose,   // a cell of a city that had already closed the window (never expected)
    kMalformed,    // no window, or a close record with a group
  };
  Outcome Offer(const std::string& city, const views::v1::AggregateCell& record, absl::Time now);

  // Closes and revisions due at `now`, oldest window first.
  std::vector<Decision> Decide(absl::Time now);

  // The figure of a window's revision; NOT_FOUND for one not decided.
  absl::StatusOr<national::v1::NationalFigure> Figure(absl::Time window, int32_t revision) const;

  // Windows past their horizon at `now` are dropped; their starts, for the changelog's
  // tombstones.
  std::vector<absl::Time> Forget(absl::Time now);

  // The windows changed since the last call (for the changelog), and whether the cities'
  // progress changed.
  std::vector<absl::Time> TakeDirty();
  bool TakeCitiesDirty();

  // Persistence: a window as JSON, and back; the cities' progress (how far each closed its
  // windows) likewise. DATA_LOSS naming what is wrong.
  std::string Encode(absl::Time window) const;
  absl::Status Restore(absl::string_view json);
  std::string EncodeCities() const;
  absl::Status RestoreCities(absl::string_view json);

  const std::map<absl::Time, NationalWindow>& windows() const { return windows_; }
  // Drops a window (a follower applying the changelog's tombstone of a forgotten window).
  void Drop(absl::Time start) { windows_.erase(start); }

 private:
  NationalWindow& WindowFor(absl::Time start, absl::Time end, const std::string& hash);
  void CloseCity(NationalWindow& w, CityWindow& c);

  NationalViewSpec spec_;
  std::map<absl::Time, NationalWindow> windows_;
  std::map<std::string, absl::Time> closed_through_;  // per city
  std::set<absl::Time> dirty_;
  bool cities_dirty_ = false;
};

// "<dataset>/<view>/<window start, RFC 3339 UTC>".
std::string FigureKey(const std::string& dataset, const std::string& view, absl::Time start);

}  // namespace aggregator
}  // namespace polder

#endif  // POLDER_SERVICES_AGGREGATOR_NATIONAL_H_
