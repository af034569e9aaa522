// Global holdouts: validation (each bad field named), the lifecycle, opting A/B tests in, the
// /assign decision for held-out users, and the cumulative-impact analysis against
// tests/experiments/holdout_oracle.py, which recomputes membership (its own FNV-1a hash),
// the monthly and cumulative per-user sums and every statistic from the raw events with
// scipy/statsmodels (never against numbers this code printed).
#include "experiments/holdout.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>

#include "../support/python_oracle.h"
#include "../support/sqlite_store_fixture.h"
#include "experiments/service.h"

namespace fulcrum::experiments {
using testing_support::SqliteStoreFixture;
namespace {

using json = nlohmann::json;

class HoldoutTest : public SqliteStoreFixture {
 protected:
  Status create_error(const json& request) {
    auto made = create_holdout(store(), clock_, request, "test");
    return made.is_ok() ? Status::ok() : made.status();
  }
  json test_request(const std::string& holdout_id = {}) {
    json request = {{"test_name", "t"},
                    {"feature_name", "f"},
                    {"success_metrics", {"conversion_rate"}},
                    {"test_groups", {{"control", json::object()}, {"variant", json::object()}}},
                    {"traffic_allocation", {{"control", 0.5}, {"variant", 0.5}}}};
    if (!holdout_id.empty()) request["holdout_id"] = holdout_id;
    return request;
  }
  ManualClock clock_{1'800'000'000};
};

TEST_F(HoldoutTest, DefaultsAndRoundTrip) {
  auto made = create_holdout(store(), clock_, {{"name", "FY27"}}, "alice");
  ASSERT_TRUE(made.is_ok()) << made.status().to_string();
  EXPECT_EQ(made->percent, 5);
  EXPECT_EQ(made->hash_attribute, "id");
  EXPECT_EQ(made->seed, made->holdout_id);
  EXPECT_EQ(made->holdout_id.rfind("holdout", 0), 0u);
  EXPECT_EQ(made->status, HoldoutStatus::kRunning);
  EXPECT_EQ(made->started_at, clock_.now());
  ASSERT_EQ(made->metrics.size(), 2u);
  EXPECT_EQ(made->metrics[0].type, stats::MetricType::kBinomial);
  EXPECT_EQ(made->metrics[1].type, stats::MetricType::kContinuous);
  auto read = get_holdout(store(), made->holdout_id);
  ASSERT_TRUE(read.is_ok());
  EXPECT_EQ(to_json(*read), to_json(*made));
  auto listed = list_holdouts(store());
  ASSERT_TRUE(listed.is_ok());
  EXPECT_EQ(listed->size(), 1u);
}

TEST_F(HoldoutTest, BadRequestsNameTheField) {
  struct Case {
    json request;
    const char* field;
  };
  const std::vector<Case> cases = {
      {{{"percent", 5}}, "name"},
      {{{"name", "h"}, {"percent", 0}}, "percent"},
      {{{"name", "h"}, {"percent", -1}}, "percent"},
      {{{"name", "h"}, {"percent", 20.5}}, "percent"},
      {{{"name", "h"}, {"percent", "5"}}, "percent"},
      {{{"name", "h"}, {"hash_attribute", ""}}, "hash_attribute"},
      {{{"name", "h"}, {"seed", 3}}, "seed"},
      {{{"name", "h"}, {"holdout_id", "no spaces"}}, "holdout_id"},
      {{{"name", "h"}, {"start_date", "2030-01-01T00:00:00Z"}}, "start_date"},
      {{{"name", "h"}, {"start_date", "yesterday"}}, "start_date"},
      {{{"name", "h"}, {"metrics", json::array()}}, "metrics"},
      {{{"name", "h"}, {"metrics", {"a", "a"}}}, "metrics[1]"},
      {{{"name", "h"}, {"metric_types", {{"nope", "binomial"}}}}, "metric_types.nope"},
      {{{"name", "h"}, {"metric_types", {{"revenue_per_user", "quantile"}}}},
       "metric_types.revenue_per_user"},
      {{{"name", "h"}, {"colour", "red"}}, "colour"},
  };
  for (const Case& c : cases) {
    Status status = create_error(c.request);
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << c.request.dump();
    EXPECT_EQ(status.field(), c.field) << c.request.dump();
  }
  EXPECT_TRUE(create_error({{"name", "h"}, {"percent", 20}}).is_ok());
}

TEST_F(HoldoutTest, OnlyDescriptiveFieldsChangeAndStoppingIsFinal) {
  auto made = create_holdout(store(), clock_, {{"holdout_id", "h1"}, {"name", "h"}}, "a");
  ASSERT_TRUE(made.is_ok());
  for (const char* fixed : {"percent", "hash_attribute", "seed", "start_date"}) {
    auto changed = update_holdout(store(), clock_, "h1", {{fixed, "x"}}, "a");
    ASSERT_FALSE(changed.is_ok());
    EXPECT_EQ(changed.status().field(), fixed);
  }
  auto renamed = update_holdout(store(), clock_, "h1",
                                {{"name", "FY27"}, {"metrics", {"revenue"}}, {"version", 1}}, "b");
  ASSERT_TRUE(renamed.is_ok()) << renamed.status().to_string();
  EXPECT_EQ(renamed->name, "FY27");
  EXPECT_EQ(renamed->updated_by, "b");
  ASSERT_EQ(renamed->metrics.size(), 1u);
  auto stale = update_holdout(store(), clock_, "h1", {{"name", "x"}, {"version", 1}}, "b");
  EXPECT_EQ(stale.status().code(), StatusCode::kFailedPrecondition);
  clock_.advance(60);
  auto stopped = stop_holdout(store(), clock_, "h1", "a");
  ASSERT_TRUE(stopped.is_ok());
  EXPECT_EQ(stopped->stopped_at, clock_.now());
  EXPECT_FALSE(stopped->holds_out({{"id", "anyone"}}));
  EXPECT_EQ(stop_holdout(store(), clock_, "h1", "a").status().code(),
            StatusCode::kFailedPrecondition);
}

TEST_F(HoldoutTest, TestsOptInOnlyToRunningHoldoutsAndNotMidPhase) {
  auto unknown = create_ab_test(store(), clock_, test_request("nope"));
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(unknown.status().field(), "holdout_id");
  ASSERT_TRUE(create_holdout(store(), clock_, {{"holdout_id", "h1"}, {"name", "h"}}, "a").is_ok());
  auto draft = create_ab_test_with_id(store(), clock_, "t1", test_request());
  ASSERT_TRUE(draft.is_ok());
  // A draft may opt in; a running test may not, until a new phase.
  ASSERT_TRUE(update_ab_test(store(), clock_, "t1", {{"holdout_id", "h1"}}).is_ok());
  ASSERT_TRUE(update_ab_test(store(), clock_, "t1", {{"holdout_id", nullptr}}).is_ok());
  ASSERT_TRUE(start_ab_test(store(), clock_, "t1").is_ok());
  auto mid_phase = update_ab_test(store(), clock_, "t1", {{"holdout_id", "h1"}});
  EXPECT_EQ(mid_phase.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(mid_phase.status().field(), "holdout_id");
  auto phased = new_phase(store(), clock_, "t1", {{"holdout_id", "h1"}});
  ASSERT_TRUE(phased.is_ok()) << phased.status().to_string();
  EXPECT_EQ(phased->config.holdout_id, "h1");
  EXPECT_EQ(to_json(*phased)["holdout_id"], "h1");
  ASSERT_TRUE(stop_holdout(store(), clock_, "h1", "a").is_ok());
  auto stopped = create_ab_test(store(), clock_, test_request("h1"));
  EXPECT_EQ(stopped.status().field(), "holdout_id");
}

// /assign: a held-out user gets no variant and no exposure, also after the test completed;
// once the holdout stops, the same user is assigned as usual.
TEST_F(HoldoutTest, AssignKeepsHeldOutUsersOutAndStopReleasesThem) {
  ASSERT_TRUE(
      create_holdout(store(), clock_, {{"holdout_id", "h1"}, {"name", "h"}, {"percent", 20}}, "a")
          .is_ok());
  ASSERT_TRUE(create_ab_test_with_id(store(), clock_, "t1", test_request("h1")).is_ok());
  ASSERT_TRUE(start_ab_test(store(), clock_, "t1").is_ok());
  auto holdout = get_holdout(store(), "h1");
  std::string held, free;
  for (int i = 0; held.empty() || free.empty(); ++i) {
    const std::string user = "u" + std::to_string(i);
    (holdout->holds_out({{"id", user}}) ? held : free) = user;
  }
  auto out = assign_user(store(), clock_, "t1", held);
  ASSERT_TRUE(out.is_ok());
  EXPECT_EQ(out->reason, "holdout");
  EXPECT_TRUE(out->held_out);
  EXPECT_FALSE(out->in_experiment);
  EXPECT_FALSE(out->exposure_recorded);
  EXPECT_TRUE(out->config.is_null());
  EXPECT_EQ(to_json(*out)["held_out"], true);
  auto in = assign_user(store(), clock_, "t1", free);
  ASSERT_TRUE(in.is_ok());
  EXPECT_TRUE(in->in_experiment);
  EXPECT_TRUE(in->exposure_recorded);
  auto counts = store().exposure_counts("t1");
  ASSERT_TRUE(counts.is_ok());
  std::int64_t exposed = 0;
  for (const auto& [variant, users] : *counts) exposed += users;
  EXPECT_EQ(exposed, 1);
  ASSERT_TRUE(complete_ab_test(store(), clock_, "t1", std::string("variant")).is_ok());
  EXPECT_EQ(assign_user(store(), clock_, "t1", held)->reason, "holdout");
  EXPECT_EQ(assign_user(store(), clock_, "t1", free)->reason, "completed");
  ASSERT_TRUE(stop_holdout(store(), clock_, "h1", "a").is_ok());
  auto released = assign_user(store(), clock_, "t1", held);
  EXPECT_EQ(released->reason, "completed");
  EXPECT_EQ(released->variant, "variant");
}

// --- cumulative impact against the oracle ----------------------------------------------------

json run_oracle(const json& request) {
  return testing_support::run_python_oracle("tests/experiments/holdout_oracle.py", request);
}

// Compares every number of `expected` (the oracle's) with the same path in `actual`: 1e-9
// relative, or absolute for values near 0 (a difference of two near-equal means).
void expect_numbers_match(const json& actual, const json& expected, const std::string& path,
                          int& compared) {
  if (expected.is_object()) {
    for (auto it = expected.begin(); it != expected.end(); ++it) {
      ASSERT_TRUE(actual.contains(it.key())) << path << "." << it.key();
      expect_numbers_match(actual[it.key()], it.value(), path + "." + it.key(), compared);
    }
  } else if (expected.is_array()) {
    ASSERT_EQ(actual.size(), expected.size()) << path;
    for (std::size_t i = 0; i < expected.size(); ++i) {
      expect_numbers_match(actual[i], expected[i], path + "[" + std::to_string(i) + "]", compared);
    }
  } else if (expected.is_number()) {
    ASSERT_TRUE(actual.is_number()) << path << ": " << actual.dump();
    const double a = actual.get<double>(), e = expected.get<double>();
    EXPECT_LE(std::abs(a - e), 1e-9 * std::max(1.0, std::abs(e)))
        << path << ": " << a << " vs " << e;
    ++compared;
  } else {
    EXPECT_EQ(actual, expected) << path;
  }
}

TEST_F(HoldoutTest, CumulativeImpactMatchesScipyOnRawEvents) {
  const UnixSeconds history = *parse_iso8601("2025-06-01T00:00:00Z");
  const UnixSeconds now = *parse_iso8601("2026-12-02T12:00:00Z");
  clock_.set(now);
  // Two holdouts over the same users: a 20% one on "id" started mid-September (4 months),
  // and a 15% one on a free-form attribute that 10% of users lack, started in June 2025 (19
  // months: the store is read in two passes of months, the second with the carried sums).
  auto a = create_holdout(store(), clock_,
                          {{"holdout_id", "fy27"},
                           {"name", "FY27"},
                           {"percent", 20},
                           {"start_date", "2026-09-10T08:30:00Z"}},
                          "test");
  auto b = create_holdout(store(), clock_,
                          {{"holdout_id", "long"},
                           {"name", "Long"},
                           {"percent", 15},
                           {"hash_attribute", "account"},
                           {"seed", "long-seed"},
                           {"start_date", "2025-06-15T00:00:00Z"},
                           {"metrics", {"conversion_rate", "revenue_per_user"}}},
                          "test");
  ASSERT_TRUE(a.is_ok() && b.is_ok());

  // Seeded users and events: the general population converts more and spends ~15% more,
  // so the impact is visible; revenue is heavy-tailed; some events fall before the starts.
  std::mt19937_64 rng(27);
  std::uniform_int_distribution<UnixSeconds> signup(history - 200 * kSecondsPerDay,
                                                    now - 10 * kSecondsPerDay);
  std::poisson_distribution<int> conversions(0.6), payments(3);
  std::lognormal_distribution<double> amount(3.0, 1.1);
  std::bernoulli_distribution has_account(0.9);
  EventBatch batch;
  json users = json::array(), events = json::array();
  for (int i = 0; i < 4000; ++i) {
    User user;
    user.user_id = "user-" + std::to_string(i);
    user.signup_at = signup(rng);
    if (has_account(rng)) user.attributes["account"] = "acct-" + std::to_string(i * 7919 % 100003);
    const bool held = a->holds_out(user_attributes(user));
    users.push_back(
        {{"id", user.user_id}, {"signup_at", user.signup_at}, {"attributes", user.attributes}});
    const UnixSeconds first = std::max(user.signup_at, history);
    std::uniform_int_distribution<UnixSeconds> when(first, now + 5 * kSecondsPerDay);
    const int converts = conversions(rng) + (held ? 0 : (rng() % 5 == 0));
    for (int c = 0; c < converts; ++c) {
      batch.metric_events.push_back({user.user_id, "conversion_rate", 1.0, when(rng)});
    }
    for (int p = payments(rng); p > 0; --p) {
      const double value = std::round(amount(rng) * (held ? 1.0 : 1.15) * 100) / 100;
      batch.metric_events.push_back({user.user_id, "revenue_per_user", value, when(rng)});
    }
    batch.users.push_back(std::move(user));
  }
  for (const MetricEvent& e : batch.metric_events) {
    events.push_back({e.user_id, e.metric, e.value, e.at});
  }
  ASSERT_TRUE(store().ingest(batch).is_ok());

  json holdouts = json::array();
  for (const Holdout* h : {&*a, &*b}) {
    holdouts.push_back(
        {{"holdout_id", h->holdout_id},
         {"seed", h->seed},
         {"percent", h->percent},
         {"hash_attribute", h->hash_attribute},
         {"started_at", h->started_at},
         {"end", now},
         {"metrics", {{"conversion_rate", "binomial"}, {"revenue_per_user", "continuous"}}}});
  }
  const json oracle =
      run_oracle({{"users", users}, {"events", events}, {"holdouts", holdouts}, {"alpha", 0.05}});
  ASSERT_TRUE(oracle.is_object()) << "the oracle failed (python3 with scipy and statsmodels)";

  int compared = 0;
  for (const char* id : {"fy27", "long"}) {
    auto impact = holdout_impact(store(), clock_, id);
    ASSERT_TRUE(impact.is_ok()) << impact.status().to_string();
    const json& expected = oracle[id];
    ASSERT_EQ((*impact)["periods"].size(), expected["periods"].size()) << id;
    expect_numbers_match((*impact)["periods"], expected["periods"], id, compared);
    // The figures: the last month's cumulative revenue difference.
    const json& last = (*impact)["periods"].back()["cumulative"]["revenue_per_user"];
    std::printf(
        "holdout %s: %zu months, %lld held-out / %lld general users; cumulative "
        "revenue per user %.2f vs %.2f, relative %+.1f%% [%+.1f%%, %+.1f%%], p=%.3g\n",
        id, (*impact)["periods"].size(),
        (*impact)["periods"].back()["holdout_users"].get<long long>(),
        (*impact)["periods"].back()["general_users"].get<long long>(),
        last["holdout"]["mean"].get<double>(), last["general"]["mean"].get<double>(),
        100 * last["relative"]["estimate"].get<double>(),
        100 * last["relative"]["ci_lower"].get<double>(),
        100 * last["relative"]["ci_upper"].get<double>(),
        last["absolute"]["p_value"].get<double>());
  }
  std::printf("numbers compared with the oracle: %d\n", compared);
  EXPECT_GT(compared, 1000);
}

}  // namespace
}  // namespace fulcrum::experiments
