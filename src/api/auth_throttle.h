// Failed-authentication rate limit per client address: a token bucket of `burst` failures
// refilled at `refill_per_second` (e.g. 20, then one more every 2 s). While an address's
// bucket is empty its calls get 429 with Retry-After, except calls whose credential is
// already known good (see Authenticator::authenticate_known), so a valid key used from the
// same address (a NAT, a proxy) keeps working while a guesser behind it is held back. At
// most `max_addresses` buckets are kept: idle (full) buckets are dropped first, so a
// spray from many addresses cannot grow memory. Thread-safe; time is passed in.
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace fulcrum::api {

class AuthFailureThrottle {
 public:
  using Clock = std::chrono::steady_clock;
  // burst 0 disables the limit.
  AuthFailureThrottle(int burst, double refill_per_second, std::size_t max_addresses = 65536);

  // When `address` is over its budget: the seconds after which one more failure is allowed.
  std::optional<int> retry_after(const std::string& address, Clock::time_point now);
  // Counts one failure. True when this failure emptied the bucket (the caller logs it once).
  bool record_failure(const std::string& address, Clock::time_point now);

  bool enabled() const { return burst_ > 0; }
  std::size_t addresses_held() const;

 private:
  struct Bucket {
    double tokens;
    Clock::time_point updated;
  };
  void refill(Bucket& bucket, Clock::time_point now) const;

  int burst_;
  double refill_per_second_;
  std::size_t max_addresses_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace fulcrum::api
