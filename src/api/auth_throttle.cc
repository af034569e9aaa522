#include "api/auth_throttle.h"

#include <algorithm>
#include <cmath>

namespace fulcrum::api {

AuthFailureThrottle::AuthFailureThrottle(int burst, double refill_per_second,
                                         std::size_t max_addresses)
    : burst_(std::max(0, burst)),
      refill_per_second_(refill_per_second > 0 ? refill_per_second : 1.0 / 60),
      max_addresses_(std::max<std::size_t>(1, max_addresses)) {}

void AuthFailureThrottle::refill(Bucket& bucket, Clock::time_point now) const {
  const double elapsed = std::chrono::duration<double>(now - bucket.updated).count();
  if (elapsed > 0) {
    bucket.tokens = std::min<double>(burst_, bucket.tokens + elapsed * refill_per_second_);
    bucket.updated = now;
  }
}

std::optional<int> AuthFailureThrottle::retry_after(const std::string& address,
                                                    Clock::time_point now) {
  if (!enabled()) return std::nullopt;
  std::lock_guard lock(mutex_);
  auto found = buckets_.find(address);
  if (found == buckets_.end()) return std::nullopt;
  refill(found->second, now);
  if (found->second.tokens >= 1.0) return std::nullopt;
  const double wait = (1.0 - found->second.tokens) / refill_per_second_;
  return std::max(1, static_cast<int>(std::ceil(wait)));
}

bool AuthFailureThrottle::record_failure(const std::string& address, Clock::time_point now) {
  if (!enabled()) return false;
  std::lock_guard lock(mutex_);
  auto found = buckets_.find(address);
  if (found == buckets_.end()) {
    if (buckets_.size() >= max_addresses_) {
      for (auto it = buckets_.begin(); it != buckets_.end();) {
        refill(it->second, now);
        it = it->second.tokens >= burst_ ? buckets_.erase(it) : std::next(it);
      }
      // Everyone is failing at once: forget them all rather than grow (a new spray starts
      // with fresh budgets, which is still `burst` guesses per address per refill period).
      if (buckets_.size() >= max_addresses_) buckets_.clear();
    }
    found = buckets_.emplace(address, Bucket{static_cast<double>(burst_), now}).first;
  }
  Bucket& bucket = found->second;
  refill(bucket, now);
  const bool had_budget = bucket.tokens >= 1.0;
  bucket.tokens = std::max(0.0, bucket.tokens - 1.0);
  return had_budget && bucket.tokens < 1.0;
}

std::size_t AuthFailureThrottle::addresses_held() const {
  std::lock_guard lock(mutex_);
  return buckets_.size();
}

}  // namespace fulcrum::api
