#include "experiments/lifecycle.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "experiments/service.h"
#include "../support/sqlite_store_fixture.h"

namespace fulcrum::experiments {
using testing_support::SqliteStoreFixture;
namespace {

using S = ExperimentStatus;
using A = LifecycleAction;

const S kAllStatuses[] = {S::kDraft, S::kActive, S::kPaused, S::kCompleted, S::kCancelled};
const A kAllActions[] = {A::kStart, A::kPause, A::kResume, A::kComplete, A::kCancel};

// The legal transitions, written out independently of lifecycle.cc's table.
const std::map<std::pair<S, A>, S> kLegal = {
    {{S::kDraft, A::kStart}, S::kActive},        {{S::kPaused, A::kStart}, S::kActive},
    {{S::kActive, A::kPause}, S::kPaused},       {{S::kPaused, A::kResume}, S::kActive},
    {{S::kActive, A::kComplete}, S::kCompleted}, {{S::kPaused, A::kComplete}, S::kCompleted},
    {{S::kDraft, A::kCancel}, S::kCancelled},    {{S::kActive, A::kCancel}, S::kCancelled},
    {{S::kPaused, A::kCancel}, S::kCancelled},
};

TEST(Lifecycle, EveryPairFollowsTheTable) {
  int legal = 0;
  for (S from : kAllStatuses) {
    for (A action : kAllActions) {
      auto result = transition(from, action);
      auto it = kLegal.find({from, action});
      if (it != kLegal.end()) {
        ++legal;
        ASSERT_TRUE(result.is_ok()) << status_name(from) << " " << action_name(action);
        EXPECT_EQ(*result, it->second);
      } else {
        ASSERT_FALSE(result.is_ok()) << status_name(from) << " " << action_name(action);
        EXPECT_EQ(result.status().code(), StatusCode::kFailedPrecondition);
        // The message says what was attempted, from which state, and what is allowed.
        EXPECT_NE(result.status().message().find(action_name(action)), std::string::npos);
        EXPECT_NE(result.status().message().find(status_name(from)), std::string::npos);
        EXPECT_NE(result.status().message().find("allowed only from"), std::string::npos);
      }
    }
  }
  EXPECT_EQ(legal, 9);
}

TEST(Lifecycle, NamesRoundTrip) {
  for (S s : kAllStatuses) EXPECT_EQ(parse_status(status_name(s)), s);
  for (A a : kAllActions) EXPECT_EQ(parse_action(action_name(a)), a);
  EXPECT_FALSE(parse_status("running").has_value());
  EXPECT_FALSE(parse_action("stop").has_value());
}

const char* kRequest = R"({
  "test_name": "Feature UI Test", "feature_name": "account_linking",
  "description": "Testing new UI for account linking",
  "hypothesis": "New UI will improve conversion rate by 20%",
  "success_metrics": ["conversion_rate", "revenue_per_user"],
  "test_groups": {"control": {"ui": "old"}, "variant": {"ui": "new"}},
  "traffic_allocation": {"control": 0.5, "variant": 0.5},
  "start_date": "2024-01-01T00:00:00Z"})";

class LifecycleStoreTest : public SqliteStoreFixture {};

// Drives a stored test into `status` through legal actions.
std::string make_test_in(Store& store, ManualClock& clock, S status) {
  auto created = create_ab_test(store, clock, nlohmann::json::parse(kRequest));
  EXPECT_TRUE(created.is_ok()) << created.status().to_string();
  const std::string id = created->test_id;
  switch (status) {
    case S::kDraft:
      break;
    case S::kActive:
      EXPECT_TRUE(start_ab_test(store, clock, id).is_ok());
      break;
    case S::kPaused:
      EXPECT_TRUE(start_ab_test(store, clock, id).is_ok());
      EXPECT_TRUE(pause_ab_test(store, clock, id).is_ok());
      break;
    case S::kCompleted:
      EXPECT_TRUE(start_ab_test(store, clock, id).is_ok());
      EXPECT_TRUE(complete_ab_test(store, clock, id).is_ok());
      break;
    case S::kCancelled:
      EXPECT_TRUE(cancel_ab_test(store, clock, id).is_ok());
      break;
  }
  return id;
}

TEST_F(LifecycleStoreTest, EveryPairThroughTheStore) {
  ManualClock clock(1'700'000'000);
  for (S from : kAllStatuses) {
    for (A action : kAllActions) {
      const std::string id = make_test_in(store(), clock, from);
      ASSERT_EQ(get_ab_test(store(), id)->status, from);
      clock.advance(60);
      auto result = apply_lifecycle_action(store(), clock, id, action);
      auto stored = get_ab_test(store(), id);
      ASSERT_TRUE(stored.is_ok());
      auto it = kLegal.find({from, action});
      if (it != kLegal.end()) {
        ASSERT_TRUE(result.is_ok()) << result.status().to_string();
        EXPECT_EQ(stored->status, it->second);
        EXPECT_EQ(stored->updated_at, clock.now());
      } else {
        EXPECT_EQ(result.status().code(), StatusCode::kFailedPrecondition);
        EXPECT_EQ(stored->status, from) << "a refused action must not change the test";
      }
    }
  }
}

TEST_F(LifecycleStoreTest, StartStampsTimesAndCompleteAcceptsForcedWinner) {
  ManualClock clock(1'700'000'000);
  const std::string id = make_test_in(store(), clock, S::kDraft);
  clock.advance(100);
  auto started = start_ab_test(store(), clock, id);
  ASSERT_TRUE(started.is_ok());
  EXPECT_EQ(started->started_at, clock.now());
  clock.advance(100);
  auto bad = complete_ab_test(store(), clock, id, "treatment");
  EXPECT_EQ(bad.status().field(), "winner");
  auto done = complete_ab_test(store(), clock, id, "variant");
  ASSERT_TRUE(done.is_ok()) << done.status().to_string();
  EXPECT_EQ(done->winner, "variant");
  EXPECT_TRUE(done->winner_forced);
  EXPECT_EQ(done->ended_at, clock.now());
  EXPECT_EQ(get_ab_test(store(), id)->winner, "variant");
}

TEST_F(LifecycleStoreTest, UnknownTestIsNotFound) {
  ManualClock clock(0);
  EXPECT_EQ(start_ab_test(store(), clock, "test_missing").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace fulcrum::experiments
