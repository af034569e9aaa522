// Bandit A/B tests through the experiment service and a real SQLite store: config
// validation, the weights recomputation (idempotent per period), sticky assignment when the
// weights change, the SRM check against the weights history, and a seeded simulation with an
// injected clock showing regret well below uniform allocation.
#include "experiments/bandit.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <random>

#include "assign/assigner.h"
#include "experiments/service.h"
#include "../support/sqlite_store_fixture.h"

namespace fulcrum::experiments {
using testing_support::SqliteStoreFixture;
namespace {

using json = nlohmann::json;

json bandit_request(std::size_t arms = 4, json bandit = json{{"enabled", true}}) {
  json groups = json::object(), allocation = json::object();
  const char* names[] = {"control", "b", "c", "d", "e"};
  for (std::size_t i = 0; i < arms; ++i) {
    groups[names[i]] = {{"arm", static_cast<int>(i)}};
    allocation[names[i]] = 1.0 / static_cast<double>(arms);
  }
  return {{"test_name", "Savings nudge"},           {"feature_name", "savings_nudge"},
          {"success_metrics", {"conversion_rate"}}, {"test_groups", groups},
          {"traffic_allocation", allocation},       {"bandit", bandit}};
}

Status field_error(const json& request) {
  auto parsed = parse_config(request);
  return parsed.is_ok() ? Status::ok() : parsed.status();
}

TEST(BanditConfig, BadConfigurationsNameTheField) {
  auto expect_field = [](json request, const std::string& field) {
    Status status = field_error(request);
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << request.dump();
    EXPECT_EQ(status.field(), field) << status.to_string();
  };
  expect_field(bandit_request(4, {{"enabled", true}, {"min_weight", 0}}), "bandit.min_weight");
  expect_field(bandit_request(4, {{"enabled", true}, {"min_weight", -0.1}}), "bandit.min_weight");
  // 1/arms is the largest floor (then the weights are uniform); above it is an error.
  EXPECT_TRUE(field_error(bandit_request(4, {{"enabled", true}, {"min_weight", 0.25}})).is_ok());
  expect_field(bandit_request(4, {{"enabled", true}, {"min_weight", 0.26}}), "bandit.min_weight");
  expect_field(bandit_request(4, {{"enabled", "yes"}}), "bandit.enabled");
  expect_field(bandit_request(4, {{"enabled", true}, {"top_two", 1}}), "bandit.top_two");
  expect_field(bandit_request(4, {{"enabled", true}, {"recompute_interval_minutes", 5}}),
               "bandit.recompute_interval_minutes");
  expect_field(bandit_request(4, {{"enabled", true}, {"recompute_interval_minutes", 60.5}}),
               "bandit.recompute_interval_minutes");
  expect_field(bandit_request(4, {{"enabled", true}, {"warmup", 3}}), "bandit.warmup");
  expect_field(bandit_request(4, json::array({true})), "bandit");
  // The bandit needs a per-user mean: a ratio or quantile primary metric is refused.
  json ratio = bandit_request();
  ratio["metric_types"] = {{"conversion_rate", "ratio"}};
  expect_field(ratio, "metric_types.conversion_rate");
  // A quantile metric is fine in an A/B test, but not as a bandit's primary metric.
  ratio["metric_types"] = {{"conversion_rate", "quantile"}};
  ratio["metric_quantiles"] = {{"conversion_rate", 0.5}};
  expect_field(ratio, "metric_types.conversion_rate");
  ratio["bandit"]["enabled"] = false;
  EXPECT_TRUE(parse_config(ratio).is_ok());
  // A starting weight below the floor.
  json starved = bandit_request(2, {{"enabled", true}, {"min_weight", 0.2}});
  starved["traffic_allocation"] = {{"control", 0.9}, {"b", 0.1}};
  expect_field(starved, "traffic_allocation.b");
}

TEST(BanditConfig, RoundTripsAndDefaults) {
  auto parsed = parse_config(bandit_request(3));
  ASSERT_TRUE(parsed.is_ok()) << parsed.status().to_string();
  EXPECT_TRUE(parsed->bandit.enabled);
  EXPECT_DOUBLE_EQ(parsed->bandit.min_weight, 0.01);
  EXPECT_EQ(parsed->bandit.recompute_interval_minutes, 1440);
  EXPECT_TRUE(parsed->bandit.uses_top_two(3));
  EXPECT_FALSE(parsed->bandit.uses_top_two(2));  // top-two with two arms is always 50/50
  auto again = parse_config(config_to_json(*parsed));
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(again->bandit, parsed->bandit);
  // A test without a bandit keeps its JSON exactly as before (no "bandit" key).
  json plain = bandit_request();
  plain.erase("bandit");
  EXPECT_FALSE(config_to_json(*parse_config(plain)).contains("bandit"));
}

class BanditServiceTest : public SqliteStoreFixture {
 protected:
  ManualClock clock_{1'800'000'000};

  std::string start(const std::string& id, json request) {
    auto created = create_ab_test_with_id(store(), clock_, id, request);
    EXPECT_TRUE(created.is_ok()) << created.status().to_string();
    EXPECT_TRUE(start_ab_test(store(), clock_, id).is_ok());
    return id;
  }

  // Assigns `users` new users (ids prefix + n) with the stored test and records their
  // exposures in one commit (as the server's group commit does); each converts with the
  // probability of its arm. Returns the expected regret of these assignments.
  double serve(const std::string& id, const std::string& prefix, int first, int users,
               const std::map<std::string, double>& rates, std::mt19937_64& rng,
               std::map<std::string, int>* by_variant = nullptr) {
    auto e = get_ab_test(store(), id);
    EXPECT_TRUE(e.is_ok());
    double best = 0;
    for (const auto& [name, rate] : rates) best = std::max(best, rate);
    std::vector<ExposureEvent> exposures;
    EventBatch conversions;
    std::uniform_real_distribution<double> unit(0, 1);
    double regret = 0;
    for (int i = first; i < first + users; ++i) {
      const std::string user = prefix + std::to_string(i);
      std::optional<ExposureEvent> exposure;
      auto a = plan_assignment(store(), *e, user, nullptr, clock_.now(), exposure);
      EXPECT_TRUE(a.is_ok() && a->in_experiment);
      const double rate = rates.at(*a->variant);
      regret += best - rate;
      if (by_variant) ++(*by_variant)[*a->variant];
      exposures.push_back(*exposure);
      if (unit(rng) < rate) {
        conversions.metric_events.push_back({user, "conversion_rate", 1, clock_.now() + 1});
      }
    }
    EXPECT_TRUE(store()
                    .append_exposures_and_audit(exposures, {}, [](const AuditEntry&) { return ""; })
                    .is_ok());
    if (!conversions.metric_events.empty()) {
      EXPECT_TRUE(store().ingest(conversions).is_ok());
    }
    return regret;
  }
};

TEST_F(BanditServiceTest, RecomputationIsIdempotentPerPeriodAndUsersKeepTheirArm) {
  const std::string id =
      start("nudge", bandit_request(3, {{"enabled", true}, {"recompute_interval_minutes", 60}}));
  std::mt19937_64 rng(7);
  const std::map<std::string, double> rates = {{"control", 0.05}, {"b", 0.05}, {"c", 0.30}};
  std::map<std::string, int> first_arms;
  serve(id, "early-", 0, 900, rates, rng, &first_arms);
  // Uniform start: every arm got about a third.
  for (const auto& [name, n] : first_arms) EXPECT_NEAR(n, 300, 60) << name;

  clock_.advance(3600);  // period 1
  auto entry = recompute_bandit_weights(store(), clock_, id);
  ASSERT_TRUE(entry.is_ok()) << entry.status().to_string();
  ASSERT_TRUE(entry->has_value());
  EXPECT_EQ((*entry)->period, 1);
  EXPECT_TRUE((*entry)->weights_changed);
  EXPECT_TRUE((*entry)->top_two);
  // The clearly best arm gets the largest weight and P(best) near 1.
  EXPECT_GT((*entry)->arms[2].weight, 0.45);
  EXPECT_GT((*entry)->arms[2].best_arm_probability, 0.99);
  for (const auto& arm : (*entry)->arms) EXPECT_GE(arm.weight, 0.01 - 1e-12);

  // Same period again: nothing new, the history keeps one entry.
  auto again = recompute_bandit_weights(store(), clock_, id);
  ASSERT_TRUE(again.is_ok());
  EXPECT_FALSE(again->has_value());
  auto history = bandit_history(store(), id);
  ASSERT_TRUE(history.is_ok());
  ASSERT_EQ(history->size(), 1u);
  auto e = get_ab_test(store(), id);
  ASSERT_EQ(e->bandit_weights.size(), 3u);
  EXPECT_DOUBLE_EQ(e->bandit_weights[2], (*entry)->arms[2].weight);

  // Early users keep their arm although the current weights would move many of them.
  auto assigner = assign::Assigner::create(e->hash_seed, e->current_allocation());
  int would_move = 0;
  for (int i = 0; i < 900; ++i) {
    const std::string user = "early-" + std::to_string(i);
    auto a = assign_user(store(), clock_, id, user);
    ASSERT_TRUE(a.is_ok());
    auto original = store().first_exposure_variant(e->exposure_key(), user);
    EXPECT_EQ(*a->variant, **original) << user;
    EXPECT_TRUE(a->sticky);
    if (e->config.groups[static_cast<std::size_t>(assigner->assign(user))].name != *a->variant) {
      ++would_move;
    }
  }
  EXPECT_GT(would_move, 100);  // the check above is not vacuous
  EXPECT_EQ(*store().count_multi_variant_users(e->exposure_key()), 0);

  // New users are bucketed with the current weights.
  std::map<std::string, int> later;
  serve(id, "late-", 0, 1000, rates, rng, &later);
  EXPECT_NEAR(later["c"] / 1000.0, e->bandit_weights[2], 0.05);

  // SRM is judged against the shares the history implies, so the bandit's own skew is not
  // a mismatch.
  auto results = analyze_ab_test_results(store(), clock_, id);
  ASSERT_TRUE(results.is_ok()) << results.status().to_string();
  EXPECT_FALSE((*results)["srm"]["mismatch"].get<bool>()) << (*results)["srm"].dump();
  ASSERT_TRUE(results->contains("bandit"));
  EXPECT_EQ((*results)["bandit"]["history"].size(), 1u);
  EXPECT_GT((*results)["bandit"]["best_arm_probability"]["c"].get<double>(), 0.99);
  EXPECT_DOUBLE_EQ((*results)["bandit"]["current_weights"]["c"].get<double>(),
                   e->bandit_weights[2]);

  // A new phase reshuffles: weights start over, and earlier exposures no longer stick.
  ASSERT_TRUE(new_phase(store(), clock_, id).is_ok());
  auto phased = get_ab_test(store(), id);
  EXPECT_TRUE(phased->bandit_weights.empty());
  auto fresh = assign_user(store(), clock_, id, "early-1");
  EXPECT_FALSE(fresh->sticky);
  // The bandit's settings are frozen while it runs.
  auto edit = update_ab_test(store(), clock_, id, {{"bandit", {{"enabled", false}}}});
  EXPECT_EQ(edit.status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(BanditServiceTest, BurnInKeepsTheStartingWeightsUntilEveryArmHas100Users) {
  const std::string id =
      start("burn", bandit_request(2, {{"enabled", true}, {"recompute_interval_minutes", 60}}));
  std::mt19937_64 rng(3);
  serve(id, "u", 0, 100, {{"control", 0.1}, {"b", 0.5}}, rng);  // ~50 per arm
  clock_.advance(3600);
  auto entry = recompute_bandit_weights(store(), clock_, id);
  ASSERT_TRUE(entry.is_ok() && entry->has_value());
  EXPECT_FALSE((*entry)->weights_changed);
  EXPECT_DOUBLE_EQ((*entry)->arms[0].weight, 0.5);
  EXPECT_GT((*entry)->arms[1].best_arm_probability, 0.9);  // reported all the same
  // Not a bandit, or not active: nothing to do.
  json plain = bandit_request(2);
  plain.erase("bandit");
  start("plain", plain);
  EXPECT_FALSE(recompute_bandit_weights(store(), clock_, "plain")->has_value());
  EXPECT_EQ(recompute_bandit_weights(store(), clock_, "missing").status().code(),
            StatusCode::kNotFound);
  auto job = run_bandit_recomputation(store(), clock_);
  ASSERT_TRUE(job.is_ok());
  EXPECT_EQ((*job)["tests"].size(), 0u);  // "burn" is done for this period
  EXPECT_EQ((*job)["skipped"], 1);
}

// Seeded simulation, four Bernoulli arms, 20 recompute periods of 400 new users: cumulative
// regret against allocating uniformly, and how often the best arm ends with the largest
// probability of being best.
TEST_F(BanditServiceTest, SimulatedRegretIsWellBelowUniformAllocation) {
  const std::map<std::string, double> rates = {
      {"control", 0.10}, {"b", 0.11}, {"c", 0.12}, {"d", 0.15}};
  const double best = 0.15, mean = (0.10 + 0.11 + 0.12 + 0.15) / 4;
  constexpr int kPeriods = 20, kUsersPerPeriod = 400, kRuns = 2;
  for (bool top_two : {false, true}) {
    double regret = 0, uniform = 0, final_best_probability = 0;
    int best_picked = 0;
    for (int run = 0; run < kRuns; ++run) {
      std::mt19937_64 rng(1000 + run);
      const std::string id = std::string(top_two ? "tt" : "ts") + std::to_string(run);
      start(id,
            bandit_request(
                4, {{"enabled", true}, {"recompute_interval_minutes", 60}, {"top_two", top_two}}));
      for (int period = 0; period < kPeriods; ++period) {
        regret += serve(id, id + "-u", period * kUsersPerPeriod, kUsersPerPeriod, rates, rng);
        uniform += kUsersPerPeriod * (best - mean);
        clock_.advance(3600);
        ASSERT_TRUE(recompute_bandit_weights(store(), clock_, id).is_ok());
      }
      auto history = bandit_history(store(), id);
      ASSERT_TRUE(history.is_ok());
      EXPECT_EQ(history->size(), static_cast<std::size_t>(kPeriods));
      const BanditHistoryEntry& last = history->back();
      std::size_t argmax = 0;
      for (std::size_t i = 0; i < last.arms.size(); ++i) {
        if (last.arms[i].best_arm_probability > last.arms[argmax].best_arm_probability) {
          argmax = i;
        }
      }
      best_picked += last.arms[argmax].group == "d";
      final_best_probability += last.arms[3].best_arm_probability / kRuns;
    }
    std::printf(
        "bandit simulation (%s): regret %.1f vs uniform %.1f (%.2f), best arm picked "
        "%d/%d, mean final P(best arm) %.3f\n",
        top_two ? "top-two Thompson" : "Thompson", regret, uniform, regret / uniform, best_picked,
        kRuns, final_best_probability);
    EXPECT_LT(regret, (top_two ? 0.8 : 0.5) * uniform);
    EXPECT_EQ(best_picked, kRuns);
  }
}

}  // namespace
}  // namespace fulcrum::experiments
