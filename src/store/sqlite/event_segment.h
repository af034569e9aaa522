// Event segments: how the SQLite backend stores events. A segment packs up to a few thousand
// events of one kind (and one key: the experiment of exposures, the metric of metric events)
// into one BLOB row, so ingestion writes one b-tree row per segment instead of one row plus
// index entries per event, and scans decode tight arrays instead of stepping the SQLite VM
// per event. Users are stored as integer keys from the user_keys table; other strings
// (feature, variant) through a per-segment dictionary.
//
// Layout (little-endian, fixed width so decoding is a bounds-checked memcpy):
//   u32 format (=1) | u32 event count | u32 string count | strings (u32 length + bytes)...
//   | rows: per event, its fields in the order EventCodec<E> writes them
//     (user: u32 key, text: u32 dictionary index, integer: i64, real: f64).
#pragma once

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "store/model.h"

namespace fulcrum::sqlite {

// Stored in event_segments.kind; never renumber.
enum class EventKind : int {
  kFeatureUsage = 1,
  kSession = 2,
  kSubscriptionChange = 3,
  kPayment = 4,
  kPaywallHit = 5,
  kExposure = 6,
  kMetric = 7,
};

using UserKey = std::uint32_t;

class SegmentWriter {
 public:
  SegmentWriter() = default;
  // Continues an existing segment (to top up a small one); fails on a malformed blob.
  static Result<SegmentWriter> resume(std::string_view blob);

  void user(UserKey key) { put(key); }
  void text(std::string_view value);
  void integer(std::int64_t value) { put(value); }
  void real(double value) { put(value); }
  void end_event() { ++count_; }

  std::uint32_t count() const { return count_; }
  std::string finish() const;

 private:
  template <typename T>
  void put(T value) {
    const auto* bytes = reinterpret_cast<const char*>(&value);
    rows_.append(bytes, sizeof(T));
  }
  std::uint32_t text_index(std::string_view value);
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view value) const {
      return std::hash<std::string_view>{}(value);
    }
  };
  std::vector<std::string> strings_;
  std::unordered_map<std::string, std::uint32_t, StringHash, std::equal_to<>> index_of_string_;
  std::string rows_;
  std::uint32_t count_ = 0;
};

class UserNames;

// Reads the rows of one segment in order; it views into the blob, which must outlive it.
// Reads past the end or bad dictionary indexes set an error (checked with status()) and
// return zero values instead of reading out of bounds, so a damaged blob is reported,
// never undefined behaviour.

class SegmentReader {
 public:
  static Result<SegmentReader> open(std::string_view blob);

  std::uint32_t count() const { return count_; }
  const std::vector<std::string_view>& strings() const { return strings_; }
  UserKey user() { return get<UserKey>(); }
  std::uint32_t text_index() {
    const auto index = get<std::uint32_t>();
    if (index >= strings_.size()) {
      failed_ = true;
      return 0;
    }
    return index;
  }
  std::string_view text() {
    const std::uint32_t index = text_index();
    return failed_ ? std::string_view() : strings_[index];
  }
  std::int64_t integer() { return get<std::int64_t>(); }
  double real() { return get<double>(); }
  Status status() const;
  // The user's id; an unknown key marks the segment as damaged.
  std::string user_name(const UserNames& names);

 private:
  template <typename T>
  T get() {
    T value{};
    if (rows_.size() - position_ < sizeof(T)) {
      failed_ = true;
      return value;
    }
    std::memcpy(&value, rows_.data() + position_, sizeof(T));
    position_ += sizeof(T);
    return value;
  }
  std::vector<std::string_view> strings_;
  std::string_view rows_;
  std::size_t position_ = 0;
  std::uint32_t count_ = 0;
  bool failed_ = false;
};

// Maps user keys back to user ids (the user_keys table); index = key. Stored in chunks
// shared between copies, so a copy that appends new users (readers do, as users arrive)
// costs the new names and one chunk, not all of them.
class UserNames {
 public:
  UserNames() = default;
  UserNames(std::initializer_list<std::string> names) {
    for (const auto& name : names) push_back(name);
  }
  std::size_t size() const { return size_; }
  const std::string& operator[](std::size_t key) const {
    return (*chunks_[key / kChunk])[key % kChunk];
  }
  // Sets the name of `key`, growing the table (with empty names) up to it.
  void set(std::size_t key, std::string name) {
    while (size_ <= key) push_back({});
    writable_chunk(key / kChunk)[key % kChunk] = std::move(name);
  }
  void push_back(std::string name) {
    if (size_ % kChunk == 0) chunks_.push_back(std::make_shared<std::vector<std::string>>());
    writable_chunk(chunks_.size() - 1).push_back(std::move(name));
    ++size_;
  }

 private:
  static constexpr std::size_t kChunk = 1 << 16;
  // Copy-on-write: a chunk shared with another UserNames is copied before it changes.
  std::vector<std::string>& writable_chunk(std::size_t index) {
    auto& chunk = chunks_[index];
    if (chunk.use_count() > 1) chunk = std::make_shared<std::vector<std::string>>(*chunk);
    return *chunk;
  }
  std::vector<std::shared_ptr<std::vector<std::string>>> chunks_;
  std::size_t size_ = 0;
};

inline std::string SegmentReader::user_name(const UserNames& names) {
  const UserKey key = user();
  if (key >= names.size()) {
    failed_ = true;
    return {};
  }
  return names[key];
}

// How each event type is laid out. `key` is the segment key (empty for most kinds);
// write() takes the user's key, read() gets the user's name from `names`.
template <typename Event>
struct EventCodec;

template <>
struct EventCodec<FeatureUsageEvent> {
  static constexpr EventKind kKind = EventKind::kFeatureUsage;
  static std::string_view key(const FeatureUsageEvent&) { return {}; }
  static void write(SegmentWriter& out, UserKey user, const FeatureUsageEvent& event) {
    out.user(user);
    out.text(event.feature);
    out.integer(event.at);
    out.integer(event.count);
  }
  static FeatureUsageEvent read(SegmentReader& in, std::string_view, const UserNames& names);
};

template <>
struct EventCodec<SessionEvent> {
  static constexpr EventKind kKind = EventKind::kSession;
  static std::string_view key(const SessionEvent&) { return {}; }
  static void write(SegmentWriter& out, UserKey user, const SessionEvent& event) {
    out.user(user);
    out.integer(event.at);
    out.integer(event.duration_seconds);
  }
  static SessionEvent read(SegmentReader& in, std::string_view, const UserNames& names);
};

template <>
struct EventCodec<SubscriptionChangeEvent> {
  static constexpr EventKind kKind = EventKind::kSubscriptionChange;
  static std::string_view key(const SubscriptionChangeEvent&) { return {}; }
  static void write(SegmentWriter& out, UserKey user, const SubscriptionChangeEvent& event) {
    out.user(user);
    out.integer(event.at);
    out.integer(static_cast<std::int64_t>(event.kind));
    out.integer(static_cast<std::int64_t>(event.from_tier));
    out.integer(static_cast<std::int64_t>(event.to_tier));
  }
  static SubscriptionChangeEvent read(SegmentReader& in, std::string_view, const UserNames& names);
};

template <>
struct EventCodec<PaymentEvent> {
  static constexpr EventKind kKind = EventKind::kPayment;
  static std::string_view key(const PaymentEvent&) { return {}; }
  static void write(SegmentWriter& out, UserKey user, const PaymentEvent& event) {
    out.user(user);
    out.integer(event.at);
    out.integer(event.succeeded ? 1 : 0);
    out.integer(event.amount_minor);
  }
  static PaymentEvent read(SegmentReader& in, std::string_view, const UserNames& names);
};

template <>
struct EventCodec<PaywallHitEvent> {
  static constexpr EventKind kKind = EventKind::kPaywallHit;
  static std::string_view key(const PaywallHitEvent&) { return {}; }
  static void write(SegmentWriter& out, UserKey user, const PaywallHitEvent& event) {
    out.user(user);
    out.text(event.feature);
    out.integer(event.at);
  }
  static PaywallHitEvent read(SegmentReader& in, std::string_view, const UserNames& names);
};

template <>
struct EventCodec<ExposureEvent> {
  static constexpr EventKind kKind = EventKind::kExposure;
  static std::string_view key(const ExposureEvent& event) { return event.experiment_id; }
  static void write(SegmentWriter& out, UserKey user, const ExposureEvent& event) {
    out.user(user);
    out.text(event.variant);
    out.integer(event.at);
  }
  static ExposureEvent read(SegmentReader& in, std::string_view key, const UserNames& names);
};

template <>
struct EventCodec<MetricEvent> {
  static constexpr EventKind kKind = EventKind::kMetric;
  static std::string_view key(const MetricEvent& event) { return event.metric; }
  static void write(SegmentWriter& out, UserKey user, const MetricEvent& event) {
    out.user(user);
    out.real(event.value);
    out.integer(event.at);
  }
  static MetricEvent read(SegmentReader& in, std::string_view key, const UserNames& names);
};

}  // namespace fulcrum::sqlite
