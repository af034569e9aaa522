// UTC time as integer seconds since the Unix epoch, and an injectable clock.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace fulcrum {

using UnixSeconds = std::int64_t;
constexpr UnixSeconds kSecondsPerDay = 86400;

// Formats as ISO-8601 UTC: 2024-01-01T00:00:00Z.
std::string format_iso8601(UnixSeconds t);
// Formats the date only: 2024-01-01.
std::string format_date(UnixSeconds t);
// Parses 2024-01-01T00:00:00Z, 2024-01-01T00:00:00.123Z, 2024-01-01T00:00:00+02:00 and
// 2024-01-01. Returns nullopt for anything else (including out-of-range fields).
std::optional<UnixSeconds> parse_iso8601(std::string_view text);
// Start of the UTC day containing t.
inline UnixSeconds floor_to_day(UnixSeconds t) {
  return t >= 0 ? t - t % kSecondsPerDay : t - ((t % kSecondsPerDay) + kSecondsPerDay) % kSecondsPerDay;
}

// The one clock abstraction: production uses the system clock, tests a manual one.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual UnixSeconds now() const = 0;
};

class SystemClock final : public Clock {
 public:
  UnixSeconds now() const override;
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(UnixSeconds start) : now_(start) {}
  UnixSeconds now() const override { return now_; }
  void set(UnixSeconds t) { now_ = t; }
  void advance(UnixSeconds seconds) { now_ += seconds; }

 private:
  UnixSeconds now_;
};

}  // namespace fulcrum
