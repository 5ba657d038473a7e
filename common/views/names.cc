#include "common/views/names.h"

#include "absl/strings/str_cat.h"

namespace polder {
namespace views {

bool IsValidDatasetId(absl::string_view id) {
  const size_t dot = id.find('.');
  if (dot == absl::string_view::npos || dot == 0 || dot + 1 == id.size() ||
      id.find('.', dot + 1) != absl::string_view::npos) {
    return false;
  }
  for (char c : id) {
    if (!(c == '.' || c == '-' || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
  }
  return id.size() <= 100;
}

absl::Status ValidateViewId(absl::string_view id) {
  if (id.empty() || id.size() > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("view id '", id, "' must have 1 to 64 characters"));
  }
  if (id[0] < 'a' || id[0] > 'z') {
    return absl::InvalidArgumentError(
        absl::StrCat("view id '", id, "' must start with a lowercase letter"));
  }
  for (size_t i = 0; i < id.size(); ++i) {
    const char c = id[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
      return absl::InvalidArgumentError(absl::StrCat("view id '", id, "' has '",
                                                     absl::string_view(&id[i], 1), "' at ", i,
                                                     "; only a-z, 0-9 and '-' are allowed"));
    }
  }
  return absl::OkStatus();
}

std::string ViewTopic(absl::string_view peer, absl::string_view dataset, absl::string_view view) {
  return absl::StrCat(peer, ".", dataset, ".view.", view);
}

std::string ViewChangelogTopic(absl::string_view dataset) {
  return absl::StrCat("_polder.views.", dataset, ".changelog");
}

std::string ViewTransactionalId(absl::string_view peer, absl::string_view dataset) {
  return absl::StrCat("polder-views-", peer, "-", dataset);
}

}  // namespace views
}  // namespace polder
