// Limits on what callers may send, shared by every entry point (HTTP routes, the event codec,
// the CLI) so a value accepted by one path is accepted by all. docs/limits.md lists them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/status.h"
#include "core/time.h"

namespace fulcrum::limits {

// User ids, experiment/test ids, metric, feature and group names: bytes of UTF-8.
inline constexpr std::size_t kMaxIdBytes = 256;
// Free text: experiment descriptions and hypotheses.
inline constexpr std::size_t kMaxDescriptionBytes = 10 * 1024;
// An experiment's groups and success metrics.
inline constexpr std::size_t kMaxGroups = 20;
inline constexpr std::size_t kMaxMetrics = 50;
// What the app renders for one group (any JSON), serialized.
inline constexpr std::size_t kMaxGroupConfigBytes = 16 * 1024;
// A targeting condition: nesting (operators inside operators) and its serialized size.
inline constexpr std::size_t kMaxConditionDepth = 16;
inline constexpr std::size_t kMaxConditionBytes = 16 * 1024;
// Attributes sent with an assignment request: members and serialized size.
inline constexpr std::size_t kMaxAttributes = 100;
inline constexpr std::size_t kMaxAttributesBytes = 16 * 1024;
// Event times: not before 2000-01-01T00:00:00Z, not more than a day ahead of the clock.
inline constexpr UnixSeconds kEarliestEventTime = 946684800;
inline constexpr UnixSeconds kMaxFutureSeconds = 86400;
// Idempotency-Key header of the ingestion routes: its length, and how long the first
// response to a key is remembered (a retry after that is a new request).
inline constexpr std::size_t kMaxIdempotencyKeyBytes = 256;
inline constexpr UnixSeconds kIdempotencyKeyLifetimeSeconds = 24 * 3600;
// Paginated list routes: page size when `limit` is absent, and its maximum.
inline constexpr std::size_t kDefaultPageSize = 100;
inline constexpr std::size_t kMaxPageSize = 1000;

// OK, or kInvalidArgument naming `field`: `value` must be non-empty (unless `allow_empty`),
// at most `max_bytes` long and valid UTF-8.
Status check_text(std::string_view value, std::string_view field, std::size_t max_bytes,
                  bool allow_empty = false);
inline Status check_id(std::string_view value, std::string_view field) {
  return check_text(value, field, kMaxIdBytes);
}
// OK, or kInvalidArgument naming `field` when `at` is before kEarliestEventTime or more than
// kMaxFutureSeconds after `now`.
Status check_event_time(UnixSeconds at, UnixSeconds now, std::string_view field);

}  // namespace fulcrum::limits
