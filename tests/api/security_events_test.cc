// The bounded bookkeeping behind denied calls and failed authentications: aggregated
// security events (one audit entry per caller/action/status/minute, bounded keys, truncated
// targets) and the per-address token bucket for failed authentications.
#include "api/auth_throttle.h"
#include "api/security_events.h"

#include <gtest/gtest.h>

namespace fulcrum::api {
namespace {

TEST(SecurityEventLogTest, CountsPerCallerActionStatusAndMinute) {
  SecurityEventLog log;
  const UnixSeconds minute = 1'800'000'000 / 60 * 60;
  for (int i = 0; i < 37; ++i) log.record("anonymous", "POST /ab-tests", 401, "t", minute + 5);
  log.record("key_1", "POST /ab-tests", 403, "t", minute + 10);
  log.record("anonymous", "POST /ab-tests", 401, "t", minute + 65);  // next minute
  EXPECT_TRUE(log.take_due(minute + 59).empty()) << "the minute is not over yet";
  std::vector<AuditEntry> due = log.take_due(minute + 60);
  ASSERT_EQ(due.size(), 2u);
  EXPECT_EQ(due[0].actor, "anonymous");
  EXPECT_EQ(due[0].at, minute);
  EXPECT_EQ(due[0].outcome,
            "denied: 401; count=37; minute=" + format_iso8601(minute));
  EXPECT_EQ(due[1].actor, "key_1");
  EXPECT_EQ(due[1].outcome.rfind("denied: 403; count=1;", 0), 0u);
  EXPECT_TRUE(log.take_due(minute + 60).empty()) << "taken once";
  ASSERT_EQ(log.take_due(minute + 60, /*everything=*/true).size(), 1u);
  EXPECT_EQ(log.keys_held(), 0u);
}

TEST(SecurityEventLogTest, TruncatesTargetsAndBoundsDistinctKeys) {
  SecurityEventLog log(/*max_keys=*/10);
  const UnixSeconds now = 1'800'000'000;
  for (int i = 0; i < 1000; ++i) {
    log.record("user:" + std::to_string(i), "POST /x", 403, std::string(8000, 'y'), now);
  }
  EXPECT_LE(log.keys_held(), 11u);
  std::vector<AuditEntry> entries = log.take_due(now, true);
  long total = 0;
  for (const AuditEntry& entry : entries) {
    EXPECT_LE(entry.target.size(), kMaxSecurityTargetBytes + 3);
    total += std::stol(entry.outcome.substr(entry.outcome.find("count=") + 6));
  }
  EXPECT_EQ(total, 1000) << "folded into the overflow key, not lost";
  EXPECT_EQ(entries.front().actor, "*") << "the overflow key sorts first";
  EXPECT_EQ(entries.front().action, "*");
}

TEST(AuthFailureThrottleTest, BurstThenRefillPerAddress) {
  AuthFailureThrottle throttle(/*burst=*/3, /*refill_per_second=*/0.5);
  const auto t0 = AuthFailureThrottle::Clock::now();
  EXPECT_FALSE(throttle.retry_after("a", t0));
  EXPECT_FALSE(throttle.record_failure("a", t0));
  EXPECT_FALSE(throttle.record_failure("a", t0));
  EXPECT_TRUE(throttle.record_failure("a", t0)) << "the third failure empties the bucket";
  ASSERT_TRUE(throttle.retry_after("a", t0));
  EXPECT_EQ(*throttle.retry_after("a", t0), 2);
  EXPECT_FALSE(throttle.retry_after("b", t0)) << "other addresses have their own budget";
  EXPECT_FALSE(throttle.retry_after("a", t0 + std::chrono::seconds(2))) << "one refilled";
}

TEST(AuthFailureThrottleTest, HoldsAtMostMaxAddresses) {
  AuthFailureThrottle throttle(2, 1.0, /*max_addresses=*/100);
  const auto t0 = AuthFailureThrottle::Clock::now();
  for (int i = 0; i < 10'000; ++i) throttle.record_failure(std::to_string(i), t0);
  EXPECT_LE(throttle.addresses_held(), 100u);
  AuthFailureThrottle disabled(0, 1.0);
  for (int i = 0; i < 100; ++i) disabled.record_failure("a", t0);
  EXPECT_FALSE(disabled.retry_after("a", t0));
}

}  // namespace
}  // namespace fulcrum::api
