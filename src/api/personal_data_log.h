// Reads of personal data (a user's recommendations or upgrade timing, the user search, and
// minting a token that lets an app read one user's data), aggregated instead of one audit
// row per call: counted per (caller, action, hour) with the number of distinct users
// touched, and written as one audit entry each when the hour is over (outcome
// "read; calls=120; users=37; hour=2026-12-01T21:00:00Z", target the first user seen).
// The caller of a user-token read is the API key that minted the token ("user-token via
// key_..."), so a service key that mints tokens for many users and reads with them shows up
// as one caller. At most `max_keys` aggregates are held and `kMaxDistinctUsers` users per
// aggregate are told apart (more are reported as "users>=256"), so memory and rows per hour
// are bounded whatever the traffic. Pure bookkeeping with the time passed in; the server
// appends the entries to the keyed audit chain.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "core/time.h"
#include "store/model.h"

namespace fulcrum::api {

struct AuthContext;

class PersonalDataReadLog {
 public:
  static constexpr std::size_t kMaxDistinctUsers = 256;
  explicit PersonalDataReadLog(std::size_t max_keys = 1024) : max_keys_(max_keys) {}

  // The caller as the aggregate names it (see above).
  static std::string caller_of(const AuthContext& identity);

  // Counts one successful read of `user_id`'s data ("*" for a read of many users, e.g. the
  // user search). `action` is "GET /feature-recommendations/{user_id}" (a route pattern).
  void record(const std::string& caller, const std::string& action, const std::string& user_id,
              UnixSeconds now);

  // Audit entries of every hour that has ended by `now` (all when `everything`), removed
  // from memory; oldest hour first.
  std::vector<AuditEntry> take_due(UnixSeconds now, bool everything = false);

  std::size_t keys_held() const;

 private:
  struct Key {
    std::int64_t hour;
    std::string caller;
    std::string action;
    bool operator<(const Key& other) const {
      return std::tie(hour, caller, action) < std::tie(other.hour, other.caller, other.action);
    }
  };
  struct Tally {
    std::int64_t calls = 0;
    std::string first_user;
    std::set<std::string> users;  // up to kMaxDistinctUsers
    bool more_users = false;
  };
  std::size_t max_keys_;
  mutable std::mutex mutex_;
  std::map<Key, Tally> tallies_;
};

}  // namespace fulcrum::api
