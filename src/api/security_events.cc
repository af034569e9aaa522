#include "api/security_events.h"

namespace fulcrum::api {

namespace {

// Cuts at a UTF-8 boundary so a truncated target stays valid text.
std::string truncate_utf8(std::string_view text, std::size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  std::size_t end = max_bytes;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return std::string(text.substr(0, end)) + "...";
}

}  // namespace

void SecurityEventLog::record(const std::string& actor, const std::string& action, int status,
                              std::string_view target, UnixSeconds now) {
  const std::int64_t minute = now >= 0 ? now / 60 : (now - 59) / 60;
  std::lock_guard lock(mutex_);
  Key key{minute, actor, action, status};
  auto found = tallies_.find(key);
  if (found == tallies_.end()) {
    if (tallies_.size() >= max_keys_) {
      key.actor = "*";
      key.action = "*";
    }
    found = tallies_.try_emplace(std::move(key)).first;
    if (found->second.count == 0) {
      found->second.first_target = truncate_utf8(target, kMaxSecurityTargetBytes);
    }
  }
  ++found->second.count;
}

std::vector<AuditEntry> SecurityEventLog::take_due(UnixSeconds now, bool everything) {
  const std::int64_t current_minute = now >= 0 ? now / 60 : (now - 59) / 60;
  std::vector<AuditEntry> entries;
  std::lock_guard lock(mutex_);
  for (auto it = tallies_.begin(); it != tallies_.end();) {
    if (!everything && it->first.minute >= current_minute) break;  // map is ordered by minute
    AuditEntry entry;
    entry.at = it->first.minute * 60;
    entry.actor = it->first.actor;
    entry.action = it->first.action;
    entry.target = it->second.first_target;
    entry.outcome = "denied: " + std::to_string(it->first.status) +
                    "; count=" + std::to_string(it->second.count) +
                    "; minute=" + format_iso8601(it->first.minute * 60);
    entries.push_back(std::move(entry));
    it = tallies_.erase(it);
  }
  return entries;
}

std::size_t SecurityEventLog::keys_held() const {
  std::lock_guard lock(mutex_);
  return tallies_.size();
}

}  // namespace fulcrum::api
