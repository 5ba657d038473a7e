#include "services/aggregator/national_config.h"

#include <set>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/trust/document.h"
#include "common/views/names.h"

namespace polder {
namespace aggregator {
namespace {

bool IsDefinitionHash(const std::string& h) {
  if (h.size() != 64) return false;
  for (char c : h) {
    if (!absl::ascii_isdigit(c) && !(c >= 'a' && c <= 'f')) return false;
  }
  return true;
}

}  // namespace

void ReadNationalSection(config::ObjectReader& root, std::vector<NationalViewSpec>* views) {
  config::ObjectReader national = root.Object("national", config::kRequired);
  absl::Duration deadline = absl::Minutes(15);
  absl::Duration horizon = absl::Hours(24 * 7);
  national.Optional("deadline", &deadline).Optional("revision_horizon", &horizon);
  national.Check(deadline >= absl::ZeroDuration() && deadline <= absl::Hours(24), "deadline",
                 "must be between 0s and 24h");
  national.Check(horizon >= absl::Hours(1) && horizon <= absl::Hours(24 * 31), "revision_horizon",
                 "must be between 1h and 744h (31 days)");
  std::set<std::string> seen;
  national.ObjectList<NationalViewSpec>(
      "views", views,
      [&](config::ObjectReader& r, NationalViewSpec* v) {
        std::vector<std::string> hashes, cities;
        v->deadline = deadline;
        v->revision_horizon = horizon;
        r.Required("dataset", &v->dataset)
            .Required("view", &v->view)
            .Required("definition_hashes", &hashes)
            .Required("cities", &cities)
            .Optional("grace", &v->grace)
            .Optional("deadline", &v->deadline);
        r.Check(views::IsValidDatasetId(v->dataset), "dataset", "must be <domain>.<name>");
        const absl::Status view_ok = views::ValidateViewId(v->view);
        r.Check(view_ok.ok(), "view", view_ok.message());
        r.Check(!hashes.empty(), "definition_hashes", "list the definitions it accepts");
        for (const std::string& h : hashes) {
          r.Check(IsDefinitionHash(h), "definition_hashes",
                  absl::StrCat("'", h, "' is not a definition hash (64 lowercase hex digits)"));
          r.Check(v->definition_hashes.insert(h).second, "definition_hashes",
                  absl::StrCat("'", h, "' is listed twice"));
        }
        r.Check(!cities.empty(), "cities", "list the cities whose views it combines");
        for (const std::string& c : cities) {
          r.Check(trust::IsValidPeerId(c), "cities",
                  absl::StrCat("'", c, "' is not a peer id (a lowercase name such as groningen)"));
          r.Check(v->cities.insert(c).second, "cities", absl::StrCat("'", c, "' is listed twice"));
        }
        r.Check(v->grace >= absl::ZeroDuration() && v->grace <= absl::Hours(24), "grace",
                "must be between 0s and 24h");
        r.Check(v->deadline >= absl::ZeroDuration() && v->deadline <= absl::Hours(24), "deadline",
                "must be between 0s and 24h");
        r.Check(seen.insert(absl::StrCat(v->dataset, "/", v->view)).second, "view",
                absl::StrCat(v->dataset, "/", v->view, " is configured twice"));
      },
      config::kRequired);
  national.Check(!views->empty(), "views", "configure at least one national view");
}

}  // namespace aggregator
}  // namespace polder
