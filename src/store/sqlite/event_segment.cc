#include "store/sqlite/event_segment.h"

namespace fulcrum::sqlite {
namespace {

constexpr std::uint32_t kFormat = 1;

void append_u32(std::string& out, std::uint32_t value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof value);
}

// Parses the header and dictionary; `rows` gets the rest of the blob.
Status parse_header(std::string_view blob, std::uint32_t& count,
                    std::vector<std::string_view>& strings, std::string_view& rows) {
  std::size_t position = 0;
  auto read_u32 = [&](std::uint32_t& value) {
    if (blob.size() - position < sizeof value) return false;
    std::memcpy(&value, blob.data() + position, sizeof value);
    position += sizeof value;
    return true;
  };
  std::uint32_t format = 0, string_count = 0;
  if (!read_u32(format) || format != kFormat) {
    return internal_error("event segment: unknown format");
  }
  if (!read_u32(count) || !read_u32(string_count)) {
    return internal_error("event segment: truncated header");
  }
  if (string_count > blob.size()) return internal_error("event segment: bad string count");
  strings.reserve(string_count);
  for (std::uint32_t i = 0; i < string_count; ++i) {
    std::uint32_t length = 0;
    if (!read_u32(length) || blob.size() - position < length) {
      return internal_error("event segment: truncated dictionary");
    }
    strings.emplace_back(blob.data() + position, length);
    position += length;
  }
  rows = blob.substr(position);
  return Status::ok();
}

}  // namespace

Result<SegmentWriter> SegmentWriter::resume(std::string_view blob) {
  std::uint32_t count = 0;
  std::vector<std::string_view> strings;
  std::string_view rows;
  FULCRUM_RETURN_IF_ERROR(parse_header(blob, count, strings, rows));
  SegmentWriter writer;
  for (std::string_view value : strings) writer.text_index(value);
  writer.rows_.assign(rows);
  writer.count_ = count;
  return writer;
}

std::uint32_t SegmentWriter::text_index(std::string_view value) {
  auto found = index_of_string_.find(value);
  if (found != index_of_string_.end()) return found->second;
  const auto index = static_cast<std::uint32_t>(strings_.size());
  strings_.emplace_back(value);
  index_of_string_.emplace(std::string(value), index);
  return index;
}

void SegmentWriter::text(std::string_view value) { put(text_index(value)); }

std::string SegmentWriter::finish() const {
  std::string blob;
  std::size_t dictionary_bytes = 0;
  for (const auto& value : strings_) dictionary_bytes += 4 + value.size();
  blob.reserve(12 + dictionary_bytes + rows_.size());
  append_u32(blob, kFormat);
  append_u32(blob, count_);
  append_u32(blob, static_cast<std::uint32_t>(strings_.size()));
  for (const auto& value : strings_) {
    append_u32(blob, static_cast<std::uint32_t>(value.size()));
    blob.append(value);
  }
  blob.append(rows_);
  return blob;
}

Result<SegmentReader> SegmentReader::open(std::string_view blob) {
  SegmentReader reader;
  FULCRUM_RETURN_IF_ERROR(parse_header(blob, reader.count_, reader.strings_, reader.rows_));
  return reader;
}

Status SegmentReader::status() const {
  if (failed_) return internal_error("event segment: damaged rows");
  return Status::ok();
}

FeatureUsageEvent EventCodec<FeatureUsageEvent>::read(SegmentReader& in, std::string_view,
                                                      const UserNames& names) {
  FeatureUsageEvent event;
  event.user_id = in.user_name(names);
  event.feature = in.text();
  event.at = in.integer();
  event.count = static_cast<std::int32_t>(in.integer());
  return event;
}

SessionEvent EventCodec<SessionEvent>::read(SegmentReader& in, std::string_view,
                                            const UserNames& names) {
  SessionEvent event;
  event.user_id = in.user_name(names);
  event.at = in.integer();
  event.duration_seconds = static_cast<std::int32_t>(in.integer());
  return event;
}

SubscriptionChangeEvent EventCodec<SubscriptionChangeEvent>::read(SegmentReader& in,
                                                                  std::string_view,
                                                                  const UserNames& names) {
  SubscriptionChangeEvent event;
  event.user_id = in.user_name(names);
  event.at = in.integer();
  event.kind = static_cast<SubscriptionChangeKind>(in.integer());
  event.from_tier = static_cast<Tier>(in.integer());
  event.to_tier = static_cast<Tier>(in.integer());
  return event;
}

PaymentEvent EventCodec<PaymentEvent>::read(SegmentReader& in, std::string_view,
                                            const UserNames& names) {
  PaymentEvent event;
  event.user_id = in.user_name(names);
  event.at = in.integer();
  event.succeeded = in.integer() != 0;
  event.amount_minor = in.integer();
  return event;
}

PaywallHitEvent EventCodec<PaywallHitEvent>::read(SegmentReader& in, std::string_view,
                                                  const UserNames& names) {
  PaywallHitEvent event;
  event.user_id = in.user_name(names);
  event.feature = in.text();
  event.at = in.integer();
  return event;
}

ExposureEvent EventCodec<ExposureEvent>::read(SegmentReader& in, std::string_view key,
                                              const UserNames& names) {
  ExposureEvent event;
  event.experiment_id = std::string(key);
  event.user_id = in.user_name(names);
  event.variant = in.text();
  event.at = in.integer();
  return event;
}

MetricEvent EventCodec<MetricEvent>::read(SegmentReader& in, std::string_view key,
                                          const UserNames& names) {
  MetricEvent event;
  event.metric = std::string(key);
  event.user_id = in.user_name(names);
  event.value = in.real();
  event.at = in.integer();
  return event;
}

}  // namespace fulcrum::sqlite
