#include "tools/polderctl/commands/publish.h"

#include <algorithm>
#include <filesystem>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/json/bounded.h"
#include "common/status/status_macros.h"
#include "common/trust/keys.h"
#include "nlohmann/json.hpp"

namespace polder {
namespace polderctl {

using nlohmann::json;
using nlohmann::ordered_json;

namespace {

constexpr int kStateVersion = 1;
constexpr size_t kMaxKeyBytes = 200;

bool Retryable(const absl::Status& s) {
  return absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s) || absl::IsResourceExhausted(s) ||
         absl::IsAborted(s);
}

// The record index the node's error names ("record 3: eventTime: ..."), or -1.
int64_t RecordIndexOf(absl::string_view message) {
  if (!absl::ConsumePrefix(&message, "record ")) return -1;
  const size_t colon = message.find(": ");
  int64_t index = -1;
  if (colon == absl::string_view::npos || !absl::SimpleAtoi(message.substr(0, colon), &index))
    return -1;
  return index;
}

}  // namespace

std::string DefaultStateFile(const std::string& input_path) {
  return absl::StrCat(input_path, ".polder-publish.json");
}

std::string BatchKey(const std::string& dataset, const std::string& sha256_hex, int64_t index,
                     int batch_records) {
  std::string key =
      absl::StrCat("polderctl-publish/", dataset, "/", sha256_hex, "/", index, "/", batch_records);
  if (key.size() <= kMaxKeyBytes) return key;
  return absl::StrCat("polderctl-publish/", Sha256Hex(key));
}

std::vector<Batch> MakeBatches(const InputFile& file, const std::string& dataset,
                               int batch_records) {
  std::vector<Batch> out;
  const size_t size = static_cast<size_t>(std::max(batch_records, 1));
  for (size_t first = 0; first < file.records.size(); first += size) {
    Batch b;
    b.index = static_cast<int64_t>(out.size());
    b.first = first;
    b.count = std::min(size, file.records.size() - first);
    b.idempotency_key = BatchKey(dataset, file.sha256_hex, b.index, batch_records);
    out.push_back(std::move(b));
  }
  return out;
}

absl::StatusOr<PublishState> LoadState(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return absl::NotFoundError(absl::StrCat("no state file '", path, "'"));
  }
  absl::StatusOr<std::string> text = trust::ReadFileToString(path);
  if (!text.ok()) return absl::FailedPreconditionError(text.status().message());
  auto corrupt = [&path](absl::string_view why) {
    return absl::DataLossError(
        absl::StrCat("state file '", path, "' is corrupt (", why,
                     "); it is left as it is. It says how many batches ",
                     "the node acknowledged: repair it, or remove it to publish from the first "
                     "batch (batches the node ",
                     "still remembers answer duplicate=true, older ones are written again)"));
  };
  absl::StatusOr<json> parsed = json_input::Parse(*text);
  if (!parsed.ok()) return corrupt(absl::StrCat("not JSON: ", parsed.status().message()));
  const json& doc = *parsed;
  if (!doc.is_object()) return corrupt("not a JSON object");
  auto string_field = [&](const char* name, std::string* out) -> absl::Status {
    if (!doc.contains(name) || !doc[name].is_string())
      return corrupt(absl::StrCat("\"", name, "\" is not a string"));
    *out = doc[name].get<std::string>();
    return absl::OkStatus();
  };
  auto int_field = [&](const char* name, int64_t* out) -> absl::Status {
    if (!doc.contains(name) || !doc[name].is_number_integer() || doc[name].get<int64_t>() < 0) {
      return corrupt(absl::StrCat("\"", name, "\" is not a non-negative integer"));
    }
    *out = doc[name].get<int64_t>();
    return absl::OkStatus();
  };
  int64_t version = 0, batch_records = 0, schema_id = 0;
  RETURN_IF_ERROR(int_field("version", &version));
  if (version != kStateVersion) {
    return corrupt(absl::StrCat("version ", version, ", this polderctl writes ", kStateVersion));
  }
  PublishState s;
  RETURN_IF_ERROR(string_field("file", &s.file));
  RETURN_IF_ERROR(string_field("sha256", &s.sha256));
  RETURN_IF_ERROR(string_field("dataset", &s.dataset));
  RETURN_IF_ERROR(int_field("batch_records", &batch_records));
  RETURN_IF_ERROR(int_field("batches_total", &s.batches_total));
  RETURN_IF_ERROR(int_field("batches_acknowledged", &s.batches_acknowledged));
  RETURN_IF_ERROR(int_field("records_acknowledged", &s.records_acknowledged));
  RETURN_IF_ERROR(int_field("duplicate_batches", &s.duplicate_batches));
  RETURN_IF_ERROR(int_field("schema_id", &schema_id));
  if (s.sha256.size() != 64) return corrupt("\"sha256\" is not a SHA-256 in hex");
  if (batch_records < 1 || batch_records > (1 << 30))
    return corrupt("\"batch_records\" is out of range");
  if (schema_id > INT32_MAX) return corrupt("\"schema_id\" is out of range");
  if (s.batches_acknowledged > s.batches_total) {
    return corrupt(
        absl::StrCat(s.batches_acknowledged, " batches acknowledged of ", s.batches_total));
  }
  if (s.records_acknowledged > s.batches_acknowledged * batch_records) {
    return corrupt(absl::StrCat(s.records_acknowledged, " records in ", s.batches_acknowledged,
                                " batches of at most ", batch_records));
  }
  s.batch_records = static_cast<int>(batch_records);
  s.schema_id = static_cast<int32_t>(schema_id);
  return s;
}

absl::Status SaveState(const std::string& path, const PublishState& state) {
  ordered_json doc = {{"version", kStateVersion},
                      {"file", state.file},
                      {"sha256", state.sha256},
                      {"dataset", state.dataset},
                      {"batch_records", state.batch_records},
                      {"batches_total", state.batches_total},
                      {"batches_acknowledged", state.batches_acknowledged},
                      {"records_acknowledged", state.records_acknowledged},
                      {"duplicate_batches", state.duplicate_batches},
                      {"schema_id", state.schema_id}};
  return trust::WriteFileAtomically(path, doc.dump(2) + "\n", 0644);
}

std::string SummaryLine(const PublishSummary& s, bool complete) {
  std::string line =
      absl::StrCat(s.file, " → ", s.dataset, ": ", s.batches_total, " batch(es), ", s.records_total,
                   " record(s); this run: ", s.batches_sent, " batch(es) acknowledged, ",
                   s.records_written, " record(s) written, ", s.duplicate_batches,
                   " duplicate batch(es) (", s.duplicate_records, " record(s) already written)");
  if (s.batches_resumed > 0)
    absl::StrAppend(&line, ", ", s.batches_resumed, " batch(es) acknowledged earlier skipped");
  if (!s.topic.empty()) absl::StrAppend(&line, "; topic ", s.topic);
  if (s.schema_id > 0) absl::StrAppend(&line, ", schema ", s.schema_id);
  absl::StrAppend(&line, complete ? "; complete"
                                  : absl::StrCat("; stopped, ", s.batches_acknowledged, " of ",
                                                 s.batches_total, " batch(es) acknowledged"));
  return line;
}

absl::Status RunPublish(const InputFile& file, BatchSender* sender, const PublishOptions& options,
                        PublishSummary* summary, std::ostream* progress) {
  if (options.batch_records < 1)
    return absl::InvalidArgumentError("--batch-records must be at least 1");
  const std::string state_path =
      options.state_file.empty() ? DefaultStateFile(file.path) : options.state_file;
  const std::vector<Batch> batches = MakeBatches(file, options.dataset, options.batch_records);
  *summary = PublishSummary();
  summary->file = file.path;
  summary->dataset = options.dataset;
  summary->records_total = static_cast<int64_t>(file.records.size());
  summary->batches_total = static_cast<int64_t>(batches.size());

  PublishState state;
  absl::StatusOr<PublishState> loaded = LoadState(state_path);
  if (loaded.ok()) {
    state = *loaded;
    auto mismatch = [&](absl::string_view what) {
      return absl::FailedPreconditionError(
          absl::StrCat("state file '", state_path, "' was written for ", what,
                       "; its keys would differ, so re-sending the ", state.batches_acknowledged,
                       " acknowledged batch(es) could write them twice. Use the original file and ",
                       "settings, or another --state-file for a new publication"));
    };
    if (state.sha256 != file.sha256_hex) {
      return mismatch(absl::StrCat("another content of the file (SHA-256 ", state.sha256, ", now ",
                                   file.sha256_hex, ")"));
    }
    if (state.dataset != options.dataset) return mismatch(absl::StrCat("dataset ", state.dataset));
    if (state.batch_records != options.batch_records) {
      return mismatch(absl::StrCat("--batch-records ", state.batch_records));
    }
    if (state.batches_total != summary->batches_total) {
      return absl::DataLossError(absl::StrCat("state file '", state_path, "' counts ",
                                              state.batches_total, " batches, the file makes ",
                                              summary->batches_total));
    }
    if (options.schema_id != 0 && state.schema_id != 0 && options.schema_id != state.schema_id) {
      return mismatch(
          absl::StrCat("schema ", state.schema_id, " (--schema-id ", options.schema_id, ")"));
    }
  } else if (absl::IsNotFound(loaded.status())) {
    state.file = file.path;
    state.sha256 = file.sha256_hex;
    state.dataset = options.dataset;
    state.batch_records = options.batch_records;
    state.batches_total = summary->batches_total;
    state.schema_id = options.schema_id;
  } else {
    return loaded.status();
  }
  if (state.schema_id == 0) state.schema_id = options.schema_id;
  summary->batches_resumed = state.batches_acknowledged;
  summary->batches_acknowledged = state.batches_acknowledged;
  summary->schema_id = state.schema_id;

  auto sleep = options.sleep ? options.sleep : [](absl::Duration d) { absl::SleepFor(d); };
  for (size_t b = static_cast<size_t>(state.batches_acknowledged); b < batches.size(); ++b) {
    const Batch& batch = batches[b];
    std::vector<const InputRecord*> records;
    records.reserve(batch.count);
    for (size_t i = 0; i < batch.count; ++i) records.push_back(&file.records[batch.first + i]);
    absl::StatusOr<SendResult> result = absl::UnknownError("not sent");
    absl::Duration backoff = options.first_backoff;
    for (int attempt = 1;; ++attempt) {
      result = sender->Send(options.dataset, state.schema_id, batch.idempotency_key, records);
      if (result.ok() || !Retryable(result.status()) || attempt >= options.max_attempts) break;
      if (progress != nullptr) {
        *progress << "batch " << batch.index << ": " << result.status().message()
                  << " (retrying)\n";
      }
      sleep(backoff);
      backoff *= 2;
    }
    if (!result.ok()) {
      const absl::Status& s = result.status();
      const int64_t first_line = records.front()->line;
      const int64_t last_line = records.back()->line;
      const int64_t index = RecordIndexOf(s.message());
      if (index >= 0 && index < static_cast<int64_t>(records.size())) {
        const absl::string_view message = s.message();
        const size_t colon = message.find(": ");
        return absl::Status(s.code(),
                            absl::StrCat(file.path, ":", records[index]->line, ": ",
                                         message.substr(colon + 2), " (batch ", batch.index, ")"));
      }
      return Prepend(s, absl::StrCat(file.path, ":", first_line, "-", last_line, " (batch ",
                                     batch.index, "): "));
    }
    state.batches_acknowledged = batch.index + 1;
    state.records_acknowledged += static_cast<int64_t>(batch.count);
    if (result->duplicate) ++state.duplicate_batches;
    if (state.schema_id == 0) state.schema_id = result->schema_id;
    if (absl::Status saved = SaveState(state_path, state); !saved.ok()) {
      return Prepend(saved, absl::StrCat("batch ", batch.index,
                                         " was acknowledged but saving the state failed: "));
    }
    ++summary->batches_sent;
    summary->batches_acknowledged = state.batches_acknowledged;
    summary->schema_id = state.schema_id;
    summary->topic = result->topic;
    if (result->duplicate) {
      ++summary->duplicate_batches;
      summary->duplicate_records += static_cast<int64_t>(batch.count);
    } else {
      summary->records_written += static_cast<int64_t>(batch.count);
    }
    if (progress != nullptr) {
      *progress << "\r" << file.path << ": batch " << state.batches_acknowledged << "/"
                << batches.size() << ", " << state.records_acknowledged << "/"
                << file.records.size() << " records" << std::flush;
    }
  }
  if (progress != nullptr && summary->batches_sent > 0) *progress << "\n";
  return absl::OkStatus();
}

}  // namespace polderctl
}  // namespace polder
