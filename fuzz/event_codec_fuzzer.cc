// The NDJSON/CSV event codec: the first byte picks the format, the rest is the input,
// decoded whole (as a request body) and streamed in chunks of 3 records (as `fulcrum
// import` reads files). Both must agree on the records and the invalid ones.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "store/event_codec.h"

using namespace fulcrum;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const EventFormat format = data[0] % 2 == 0 ? EventFormat::kNdjson : EventFormat::kCsv;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  auto whole = decode_events(text, format, DecodeOptions::plausible_times(1'704'067'200));

  std::istringstream in{std::string(text)};
  EventReader reader(in, format, 3, DecodeOptions::plausible_times(1'704'067'200));
  std::int64_t records = 0, invalid = 0;
  bool failed = false;
  DecodedChunk chunk;
  while (true) {
    auto more = reader.next(chunk);
    if (!more.is_ok()) {
      failed = true;
      break;
    }
    if (!*more) break;
    records += chunk.records;
    invalid += chunk.invalid_records;
    for (const RecordError& error : chunk.errors) (void)error.to_string();
  }
  if (whole.is_ok() && !failed &&
      (whole->records != records || whole->invalid_records != invalid)) {
    std::fprintf(stderr, "fuzz: whole decode %lld/%lld records, streamed %lld/%lld\n",
                 static_cast<long long>(whole->records),
                 static_cast<long long>(whole->invalid_records), static_cast<long long>(records),
                 static_cast<long long>(invalid));
    std::abort();
  }
  return 0;
}
