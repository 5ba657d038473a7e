#include "tools/polderctl/cli.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace polder {
namespace cli {

absl::StatusOr<Args> Args::Parse(const std::vector<std::string>& argv,
                                 const std::vector<FlagSpec>& specs) {
  Args args;
  std::map<std::string, const FlagSpec*> by_name;
  for (const FlagSpec& s : specs) {
    by_name[s.name] = &s;
    if (!s.default_value.empty()) args.defaults_[s.name] = s.default_value;
  }
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (!absl::StartsWith(a, "--")) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", a, "'"));
    }
    std::string name = a.substr(2);
    std::string value;
    bool has_value = false;
    size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name, " (see --help)"));
    }
    const FlagSpec& spec = *it->second;
    if (spec.boolean) {
      if (has_value && value != "true" && value != "false") {
        return absl::InvalidArgumentError(absl::StrCat("--", name, " takes no value"));
      }
      if (!has_value || value == "true") args.values_[name].push_back("true");
      continue;
    }
    if (!has_value) {
      if (i + 1 >= argv.size()) {
        return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
      }
      value = argv[++i];
    }
    if (!spec.repeated && args.values_.count(name) > 0) {
      return absl::InvalidArgumentError(absl::StrCat("--", name, " given twice"));
    }
    args.values_[name].push_back(value);
  }
  for (const FlagSpec& s : specs) {
    if (s.required && args.values_.count(s.name) == 0) {
      return absl::InvalidArgumentError(absl::StrCat("--", s.name, " is required (", s.help, ")"));
    }
  }
  return args;
}

std::string Args::Get(const std::string& name) const {
  auto it = values_.find(name);
  if (it != values_.end() && !it->second.empty()) return it->second.back();
  auto d = defaults_.find(name);
  return d == defaults_.end() ? "" : d->second;
}

std::vector<std::string> Args::GetAll(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

std::string FlagHelp(const std::vector<FlagSpec>& specs) {
  std::string out;
  for (const FlagSpec& s : specs) {
    std::string left = absl::StrCat("  --", s.name, s.boolean ? "" : " VALUE");
    if (left.size() < 28) left.resize(28, ' ');
    absl::StrAppend(&out, left, " ", s.help);
    if (s.required) absl::StrAppend(&out, " (required)");
    if (s.repeated) absl::StrAppend(&out, " (repeatable)");
    if (!s.default_value.empty()) absl::StrAppend(&out, " [default: ", s.default_value, "]");
    absl::StrAppend(&out, "\n");
  }
  return out;
}

}  // namespace cli
}  // namespace polder
