// Event codec: decodes NDJSON or CSV event records into EventBatch chunks, streaming.
//
// Every record carries a "type" (user, feature, feature_usage, session, subscription_change,
// payment, paywall_hit, exposure, metric) and the members of the matching struct in
// store/model.h as fields. Times are ISO-8601 UTC strings or integer Unix seconds; money is
// a decimal amount in major units ("amount": "12.34") or an integer in minor units
// ("amount_minor": 1234). Bad records do not stop decoding: each one is reported as a
// RecordError with its 1-based line number, the field and the reason, and is left out of the
// batch, so the caller decides the policy (strict: store nothing of a chunk with errors;
// skip-invalid: store the valid records). docs/ingestion.md describes the formats.
#pragma once

#include <cstdint>
#include <functional>
#include <istream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/time.h"
#include "store/model.h"
#include "store/store.h"

namespace fulcrum {

enum class EventFormat { kNdjson, kCsv };
// "ndjson"/"jsonl" or "csv"; nullopt otherwise.
std::optional<EventFormat> parse_event_format(std::string_view name);
// Guesses from a file name's extension (.csv -> CSV, anything else NDJSON).
EventFormat event_format_from_path(std::string_view path);

struct RecordError {
  std::int64_t line = 0;  // 1-based physical line where the record starts
  std::string field;      // the offending field ("at", "type", ...); empty for syntax errors
  std::string reason;
  std::string to_string() const;  // "line 12: field 'at': not an ISO-8601 time ..."
};

// One decoded chunk: the valid records and the errors of the invalid ones.
struct DecodedChunk {
  EventBatch batch;
  std::int64_t records = 0;          // records seen (valid + invalid), blank lines excluded
  std::int64_t invalid_records = 0;  // may exceed errors.size() (errors are capped)
  std::vector<RecordError> errors;   // at most kMaxErrorsPerChunk
  std::int64_t first_line = 0, last_line = 0;

  static constexpr std::size_t kMaxErrorsPerChunk = 1000;
  bool ok() const { return invalid_records == 0; }
};

// Checks beyond a record's own syntax, set by whoever knows the context (the clock, the
// experiments). A record failing one is invalid like any other: reported with its line and
// field, and left out of the batch.
struct DecodeOptions {
  // Times ("at", "signup_at") outside [earliest_time, latest_time] are invalid.
  std::optional<UnixSeconds> earliest_time, latest_time;
  // Returns nullopt when the exposure may be stored, else (field, reason), e.g.
  // ("variant", "is not a group of test_x").
  std::function<std::optional<std::pair<std::string, std::string>>(const ExposureEvent&)>
      check_exposure;

  // The bounds of core/limits.h around `now`: 2000-01-01 to a day after `now`.
  static DecodeOptions plausible_times(UnixSeconds now);
};

// Reads records from a byte source in chunks of at most `records_per_chunk` records, so
// files of any size are decoded with bounded memory. A CSV source starts with a header line
// naming the columns (RFC 4180 quoting; "attributes.<key>" columns fill User::attributes).
class EventReader {
 public:
  static constexpr std::size_t kDefaultRecordsPerChunk = 100'000;

  // Reads from a stream (kept by reference; must outlive the reader).
  EventReader(std::istream& in, EventFormat format,
              std::size_t records_per_chunk = kDefaultRecordsPerChunk, DecodeOptions options = {});
  // Reads from memory (copied), e.g. an HTTP request body.
  EventReader(std::string_view text, EventFormat format,
              std::size_t records_per_chunk = kDefaultRecordsPerChunk, DecodeOptions options = {});
  ~EventReader();
  EventReader(const EventReader&) = delete;
  EventReader& operator=(const EventReader&) = delete;

  // Decodes the next chunk into `chunk` (cleared first). Returns false when the input is
  // exhausted and nothing was decoded. Returns an error only for problems that make the
  // rest of the input unreadable: an I/O error or a bad CSV header.
  Result<bool> next(DecodedChunk& chunk);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// Decodes a whole in-memory text into one chunk (for request bodies of bounded size).
Result<DecodedChunk> decode_events(std::string_view text, EventFormat format,
                                   DecodeOptions options = {});

// What to do with a chunk that has invalid records.
enum class InvalidRecordPolicy {
  kRejectChunk,  // store nothing of it (default: all or none)
  kSkipInvalid,  // store its valid records, report the invalid ones
};

// Stores a decoded chunk in one Store::ingest transaction according to `policy`. Returns
// what was stored (records whose event_id was stored before are counted as duplicates),
// kInvalidArgument (naming the first bad line and field) when the chunk was rejected, or the
// store's error.
Result<IngestReport> ingest_chunk(Store& store, const DecodedChunk& chunk,
                                  InvalidRecordPolicy policy, const IngestOptions& options = {});

}  // namespace fulcrum
