#include "api/personal_data_log.h"

#include "api/http.h"

namespace fulcrum::api {

namespace {

std::int64_t hour_of(UnixSeconds t) { return t >= 0 ? t / 3600 : (t - 3599) / 3600; }

}  // namespace

std::string PersonalDataReadLog::caller_of(const AuthContext& identity) {
  if (identity.role == Role::kUser) {
    return identity.minted_by.empty() ? "user-token" : "user-token via " + identity.minted_by;
  }
  return identity.actor;
}

void PersonalDataReadLog::record(const std::string& caller, const std::string& action,
                                 const std::string& user_id, UnixSeconds now) {
  std::lock_guard lock(mutex_);
  Key key{hour_of(now), caller, action};
  auto found = tallies_.find(key);
  if (found == tallies_.end()) {
    if (tallies_.size() >= max_keys_) {
      key.caller = "*";
      key.action = "*";
    }
    found = tallies_.try_emplace(std::move(key)).first;
  }
  Tally& tally = found->second;
  if (tally.calls++ == 0) tally.first_user = user_id.substr(0, 256);
  if (tally.users.size() < kMaxDistinctUsers) {
    tally.users.insert(user_id.substr(0, 256));
  } else if (!tally.users.contains(user_id)) {
    tally.more_users = true;
  }
}

std::vector<AuditEntry> PersonalDataReadLog::take_due(UnixSeconds now, bool everything) {
  const std::int64_t current_hour = hour_of(now);
  std::vector<AuditEntry> entries;
  std::lock_guard lock(mutex_);
  for (auto it = tallies_.begin(); it != tallies_.end();) {
    if (!everything && it->first.hour >= current_hour) break;  // ordered by hour
    const Tally& tally = it->second;
    AuditEntry entry;
    entry.at = it->first.hour * 3600;
    entry.actor = it->first.caller;
    entry.action = it->first.action;
    entry.target = tally.first_user;
    entry.outcome = "read; calls=" + std::to_string(tally.calls) + "; users" +
                    (tally.more_users ? ">=" : "=") + std::to_string(tally.users.size()) +
                    "; hour=" + format_iso8601(it->first.hour * 3600);
    entries.push_back(std::move(entry));
    it = tallies_.erase(it);
  }
  return entries;
}

std::size_t PersonalDataReadLog::keys_held() const {
  std::lock_guard lock(mutex_);
  return tallies_.size();
}

}  // namespace fulcrum::api
