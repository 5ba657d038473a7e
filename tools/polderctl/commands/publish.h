// The core of `polderctl publish`: an input file (publish_input.h) cut into batches, each with
// an idempotency key derived from the file's content, sent in order through a BatchSender (the
// node's gRPC ingest in the binary, a fake in tests), with a state file that makes a re-run
// resume after the batches already acknowledged.
//
// Key of batch i: "polderctl-publish/<dataset>/<file SHA-256>/<i>/<batch size>". The same file
// with the same batch size always gives the same keys, so a batch re-sent after a crash (sent,
// but the answer or the state file write was lost) answers duplicate=true instead of being
// written twice — within the node's idempotency window. A changed file (another SHA-256) or
// batch size gives other keys; the state file refuses both.
//
// State file (JSON, replaced atomically after every acknowledged batch):
//   {"version":1,"file":"bikes.csv","sha256":"…","dataset":"mobility.bike-counts",
//    "batch_records":500,"batches_total":7,"batches_acknowledged":3,"records_acknowledged":1500,
//    "duplicate_batches":0,"schema_id":4}
// `schema_id` is the schema the node validated the first acknowledged batch with; later batches
// ask for it explicitly, so a new schema version registered mid-way changes neither the records'
// schema nor the batches' content (which the node compares for a repeated key).
#ifndef POLDER_TOOLS_POLDERCTL_COMMANDS_PUBLISH_H_
#define POLDER_TOOLS_POLDERCTL_COMMANDS_PUBLISH_H_

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tools/polderctl/commands/publish_input.h"

namespace polder {
namespace polderctl {

// The default state file of an input file.
std::string DefaultStateFile(const std::string& input_path);

// See the file comment. At most 200 bytes (the node's limit): a longer key (a very long dataset
// id) is replaced by "polderctl-publish/" and the SHA-256 of the long form.
std::string BatchKey(const std::string& dataset, const std::string& sha256_hex, int64_t index,
                     int batch_records);

struct Batch {
  int64_t index = 0;
  std::string idempotency_key;
  size_t first = 0;  // index of the first record in InputFile::records
  size_t count = 0;
};
std::vector<Batch> MakeBatches(const InputFile& file, const std::string& dataset,
                               int batch_records);

struct PublishState {
  std::string file;
  std::string sha256;
  std::string dataset;
  int batch_records = 0;
  int64_t batches_total = 0;
  int64_t batches_acknowledged = 0;
  int64_t records_acknowledged = 0;
  int64_t duplicate_batches = 0;
  int32_t schema_id = 0;  // 0: none acknowledged yet
};

// NOT_FOUND if `path` does not exist; DATA_LOSS, naming the file and what is wrong, if it is not
// a state document (not JSON, a missing or mistyped field, impossible counts) — never silently
// treated as "start over".
absl::StatusOr<PublishState> LoadState(const std::string& path);
// Writes `state` to `path` atomically (temporary file, fsync, rename).
absl::Status SaveState(const std::string& path, const PublishState& state);

// What the node answered for a batch.
struct SendResult {
  int32_t schema_id = 0;
  int32_t records = 0;
  bool duplicate = false;
  std::string topic;
};

// Sends one batch. Errors as the node returns them: INVALID_ARGUMENT "record <i>: …" names the
// batch's record i; UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED and ABORTED are retried
// by RunPublish with the same key.
class BatchSender {
 public:
  virtual ~BatchSender() = default;
  virtual absl::StatusOr<SendResult> Send(const std::string& dataset, int32_t schema_id,
                                          const std::string& idempotency_key,
                                          const std::vector<const InputRecord*>& records) = 0;
};

struct PublishOptions {
  std::string dataset;
  int batch_records = 500;
  std::string state_file;  // empty: DefaultStateFile(input path)
  int32_t schema_id = 0;   // 0: the subject's latest (then pinned by the state file)
  int max_attempts = 5;    // per batch, for retryable errors
  absl::Duration first_backoff = absl::Seconds(1);  // doubled per attempt
  std::function<void(absl::Duration)> sleep;        // default absl::SleepFor
};

struct PublishSummary {
  std::string file;
  std::string dataset;
  std::string topic;
  int32_t schema_id = 0;
  int64_t records_total = 0;
  int64_t batches_total = 0;
  int64_t batches_resumed = 0;    // acknowledged by an earlier run, skipped now
  int64_t batches_sent = 0;       // acknowledged in this run (written or duplicate)
  int64_t records_written = 0;    // in batches the node wrote in this run
  int64_t duplicate_batches = 0;  // in this run: answered duplicate=true, written earlier
  int64_t duplicate_records = 0;
  int64_t batches_acknowledged = 0;  // in total, as the state file now says
};

// "bikes.csv → mobility.bike-counts: 7 batches (3500 records): 3 written (1500 records), 1
// duplicate …".
std::string SummaryLine(const PublishSummary& summary, bool complete);

// Publishes `file`: loads the state file (a missing one starts at batch 0; a corrupt one or one
// for another file content, dataset or batch size is an error before anything is sent), sends
// the batches not yet acknowledged in order and saves the state after each. A refused batch
// stops the run: INVALID_ARGUMENT "file:line: <the node's message>" when the node names a
// record, else "file:lines a-b (batch i): …"; `summary` is filled in either case. `progress`,
// if not null, gets a line per batch ending in '\r' (a terminal).
absl::Status RunPublish(const InputFile& file, BatchSender* sender, const PublishOptions& options,
                        PublishSummary* summary, std::ostream* progress);

}  // namespace polderctl
}  // namespace polder

#endif  // POLDER_TOOLS_POLDERCTL_COMMANDS_PUBLISH_H_
