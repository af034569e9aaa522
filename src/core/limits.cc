#include "core/limits.h"

#include <string>

#include "core/untrusted_json.h"

namespace fulcrum::limits {

Status check_text(std::string_view value, std::string_view field, std::size_t max_bytes,
                  bool allow_empty) {
  if (value.empty() && !allow_empty)
    return invalid_argument("must not be empty", std::string(field));
  if (value.size() > max_bytes) {
    return invalid_argument("is " + std::to_string(value.size()) +
                                " bytes, more than the limit of " + std::to_string(max_bytes),
                            std::string(field));
  }
  if (!is_valid_utf8(value)) return invalid_argument("is not valid UTF-8", std::string(field));
  return Status::ok();
}

Status check_event_time(UnixSeconds at, UnixSeconds now, std::string_view field) {
  if (at < kEarliestEventTime) {
    return invalid_argument("is before 2000-01-01T00:00:00Z", std::string(field));
  }
  if (at > now && at - now > kMaxFutureSeconds) {
    return invalid_argument("is more than a day in the future", std::string(field));
  }
  return Status::ok();
}

}  // namespace fulcrum::limits
