// SQLite event segments (BLOBs read back from the store): the first byte picks the event
// kind, the rest is the blob. Decoding every row must stay in bounds whatever the blob
// holds (a damaged blob is reported through status()), and resuming a writer from it must
// fail cleanly or round-trip.
#include <cstddef>
#include <cstdint>

#include "store/sqlite/event_segment.h"

using namespace fulcrum;
using namespace fulcrum::sqlite;

namespace {

template <typename Event>
void read_all(std::string_view blob) {
  auto reader = SegmentReader::open(blob);
  if (!reader.is_ok()) return;
  const UserNames names = {"alice", "bob", "carol"};
  for (std::uint32_t i = 0; i < reader->count(); ++i) {
    (void)EventCodec<Event>::read(*reader, "key", names);
    if (!reader->status().is_ok()) return;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view blob(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 7) {
    case 0:
      read_all<FeatureUsageEvent>(blob);
      break;
    case 1:
      read_all<SessionEvent>(blob);
      break;
    case 2:
      read_all<SubscriptionChangeEvent>(blob);
      break;
    case 3:
      read_all<PaymentEvent>(blob);
      break;
    case 4:
      read_all<PaywallHitEvent>(blob);
      break;
    case 5:
      read_all<ExposureEvent>(blob);
      break;
    case 6:
      read_all<MetricEvent>(blob);
      break;
  }
  auto writer = SegmentWriter::resume(blob);
  if (writer.is_ok()) {
    writer->text("fuzz");
    writer->integer(1);
    writer->end_event();
    (void)writer->finish();
  }
  return 0;
}
