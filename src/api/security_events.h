// Denied calls (401, 403, 429) to audited routes, aggregated instead of one audit row per
// request: an anonymous caller must never be able to grow the store at request rate. Calls
// are counted per (caller, action, status, minute); when a minute is over its counts become
// one audit entry each (outcome "denied: 401; count=37; minute=2026-12-01T21:30:00Z", target
// the first target seen, truncated to kMaxSecurityTargetBytes). At most
// `max_keys` distinct keys are held; further callers in that minute are folded into one
// overflow key (actor "*"), so memory and rows per minute are bounded whatever the traffic.
// Pure bookkeeping with the time passed in; the server appends the entries to the audit log
// (the hash chain covers them like any other entry).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "core/time.h"
#include "store/model.h"

namespace fulcrum::api {

inline constexpr std::size_t kMaxSecurityTargetBytes = 128;

class SecurityEventLog {
 public:
  explicit SecurityEventLog(std::size_t max_keys = 1024) : max_keys_(max_keys) {}

  // Counts one denied call. `actor` is "anonymous", "invalid-credential" or an
  // authenticated caller's actor; `action` "POST /ab-tests" (route pattern, never a path).
  void record(const std::string& actor, const std::string& action, int status,
              std::string_view target, UnixSeconds now);

  // Audit entries of every minute that has ended by `now` (all minutes when `everything`),
  // removed from memory; oldest minute first. Sequence and hashes are left to the store.
  std::vector<AuditEntry> take_due(UnixSeconds now, bool everything = false);

  std::size_t keys_held() const;

 private:
  struct Key {
    std::int64_t minute;
    std::string actor;
    std::string action;
    int status;
    bool operator<(const Key& other) const {
      return std::tie(minute, actor, action, status) <
             std::tie(other.minute, other.actor, other.action, other.status);
    }
  };
  struct Tally {
    std::int64_t count = 0;
    std::string first_target;
  };
  std::size_t max_keys_;
  mutable std::mutex mutex_;
  std::map<Key, Tally> tallies_;
};

}  // namespace fulcrum::api
