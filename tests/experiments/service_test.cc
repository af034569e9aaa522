#include "experiments/service.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "assign/assigner.h"
#include "assign/hash.h"
#include "experiments/demo_seed.h"
#include "../support/sqlite_store_fixture.h"

namespace fulcrum::experiments {
using testing_support::SqliteStoreFixture;
namespace {

using json = nlohmann::json;

json request(const std::string& name = "Feature UI Test") {
  json r = json::parse(R"({
    "feature_name": "account_linking",
    "success_metrics": ["conversion_rate", "revenue_per_user"],
    "test_groups": {"control": {"ui": "old"}, "variant": {"ui": "new"}},
    "traffic_allocation": {"control": 0.5, "variant": 0.5}})");
  r["test_name"] = name;
  return r;
}

std::int64_t total_exposed(Store& store, const std::string& key) {
  std::int64_t total = 0;
  for (const auto& [variant, n] : *store.exposure_counts(key)) total += n;
  return total;
}

class ServiceTest : public SqliteStoreFixture {
 protected:
  ManualClock clock_{1'700'000'000};
  std::string make_active(const json& r) {
    auto created = create_ab_test(store(), clock_, r);
    EXPECT_TRUE(created.is_ok()) << created.status().to_string();
    EXPECT_TRUE(start_ab_test(store(), clock_, created->test_id).is_ok());
    return created->test_id;
  }
};

TEST_F(ServiceTest, CreateGetAndList) {
  auto a = create_ab_test(store(), clock_, request("A"));
  ASSERT_TRUE(a.is_ok()) << a.status().to_string();
  EXPECT_EQ(a->status, ExperimentStatus::kDraft);
  EXPECT_EQ(a->test_id.rfind("test_", 0), 0u);
  EXPECT_EQ(a->hash_seed, a->test_id);
  clock_.advance(10);
  auto b = create_ab_test(store(), clock_, request("B"));
  ASSERT_TRUE(start_ab_test(store(), clock_, b->test_id).is_ok());

  auto got = get_ab_test(store(), a->test_id);
  ASSERT_TRUE(got.is_ok());
  EXPECT_EQ(got->config.test_name, "A");
  EXPECT_EQ(to_json(*got)["test_groups"]["variant"]["ui"], "new");

  auto all = list_ab_tests(store());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].config.test_name, "B");  // newest first
  auto active = list_ab_tests(store(), ExperimentStatus::kActive);
  ASSERT_EQ(active->size(), 1u);
  EXPECT_EQ((*active)[0].test_id, b->test_id);

  EXPECT_EQ(create_ab_test_with_id(store(), clock_, a->test_id, request()).status().code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(create_ab_test_with_id(store(), clock_, "bad id!", request()).status().field(),
            "test_id");
}

TEST_F(ServiceTest, InvalidRequestIsRejectedWithField) {
  json r = request();
  r["traffic_allocation"]["variant"] = 0.7;
  auto created = create_ab_test(store(), clock_, r);
  EXPECT_EQ(created.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(created.status().field(), "traffic_allocation");
  EXPECT_TRUE(list_ab_tests(store())->empty());
}

TEST_F(ServiceTest, AssignmentIsDeterministicAndRecordsExposures) {
  const std::string id = make_active(request());
  const Experiment e = *get_ab_test(store(), id);
  auto assigner = assign::Assigner::create(e.hash_seed, e.config.allocation());
  ASSERT_TRUE(assigner.is_ok());
  std::map<std::string, int> seen;
  for (int i = 0; i < 200; ++i) {
    const std::string user = "user_" + std::to_string(i);
    auto first = assign_user(store(), clock_, id, user);
    ASSERT_TRUE(first.is_ok()) << first.status().to_string();
    ASSERT_TRUE(first->in_experiment);
    EXPECT_TRUE(first->exposure_recorded);
    EXPECT_EQ(first->reason, "assigned");
    EXPECT_DOUBLE_EQ(first->bucket, *assign::hash(id, user, 2));
    EXPECT_EQ(*first->variant, e.config.groups[assigner->assign(user)].name);
    EXPECT_EQ(first->config["ui"], *first->variant == "control" ? "old" : "new");
    auto again = assign_user(store(), clock_, id, user);
    EXPECT_EQ(again->variant, first->variant);
    ++seen[*first->variant];
  }
  EXPECT_GT(seen["control"], 60);
  EXPECT_GT(seen["variant"], 60);
  // Repeated exposures count once per user.
  EXPECT_EQ(total_exposed(store(), id), 200);
  EXPECT_EQ(*store().count_multi_variant_users(id), 0);
  EXPECT_EQ(assign_user(store(), clock_, id, "").status().field(), "user_id");
}

TEST_F(ServiceTest, InactiveTestsRecordNothing) {
  auto draft = create_ab_test(store(), clock_, request());
  auto a = assign_user(store(), clock_, draft->test_id, "user_1");
  ASSERT_TRUE(a.is_ok());
  EXPECT_FALSE(a->in_experiment);
  EXPECT_FALSE(a->variant.has_value());
  EXPECT_EQ(a->reason, "not_active");
  EXPECT_EQ(total_exposed(store(), draft->test_id), 0);

  const std::string id = make_active(request());
  ASSERT_TRUE(pause_ab_test(store(), clock_, id).is_ok());
  EXPECT_EQ(assign_user(store(), clock_, id, "user_1")->reason, "not_active");
  EXPECT_EQ(total_exposed(store(), id), 0);

  // Completed tests roll out the winner to everyone, without exposures.
  ASSERT_TRUE(complete_ab_test(store(), clock_, id, "variant").is_ok());
  auto done = assign_user(store(), clock_, id, "user_1");
  EXPECT_EQ(done->variant, "variant");
  EXPECT_EQ(done->reason, "completed");
  EXPECT_FALSE(done->in_experiment);
  EXPECT_EQ(total_exposed(store(), id), 0);
}

TEST_F(ServiceTest, TargetingUsesStoredUsersOrGivenAttributes) {
  json r = request();
  r["targeting"] = {{"tier", {{"$in", {"plus", "premium"}}}},
                    {"app_version", {{"$vgte", "5.2.0"}}}};
  const std::string id = make_active(r);
  EventBatch users;
  users.users.push_back({"free_user", Tier::kFree, 0, "GB", "5.3.0", {}});
  users.users.push_back({"old_app", Tier::kPremium, 0, "GB", "5.1.9", {}});
  users.users.push_back({"premium_user", Tier::kPremium, 0, "GB", "5.10.0", {}});
  ASSERT_TRUE(store().ingest(users).is_ok());

  EXPECT_EQ(assign_user(store(), clock_, id, "free_user")->reason, "targeting");
  EXPECT_EQ(assign_user(store(), clock_, id, "old_app")->reason, "targeting");
  EXPECT_EQ(assign_user(store(), clock_, id, "premium_user")->reason, "assigned");
  EXPECT_EQ(assign_user(store(), clock_, id, "unknown_user")->reason, "targeting");
  const json attributes = {{"tier", "plus"}, {"app_version", "6.0.0"}};
  EXPECT_EQ(assign_user(store(), clock_, id, "unknown_user", &attributes)->reason, "assigned");
  EXPECT_EQ(total_exposed(store(), id), 2);
}

TEST_F(ServiceTest, CoverageAndNamespaceKeepUsersOut) {
  json r = request();
  r["coverage"] = 0.5;
  r["namespace"] = {{"id", "home"}, {"start", 0.0}, {"end", 0.5}};
  const std::string id = make_active(r);
  std::map<std::string, int> reasons;
  for (int i = 0; i < 400; ++i) {
    ++reasons[assign_user(store(), clock_, id, "u" + std::to_string(i))->reason];
  }
  // About half leave through the namespace, then half of the rest through coverage.
  EXPECT_NEAR(reasons["namespace"], 200, 45);
  EXPECT_NEAR(reasons["coverage"], 100, 40);
  EXPECT_NEAR(reasons["assigned"], 100, 40);
  EXPECT_EQ(total_exposed(store(), id), reasons["assigned"]);
}

TEST_F(ServiceTest, DistributionOfTheExperimentAssignerPassesChiSquare) {
  json r = request();
  r["test_groups"] = {
      {"control", json::object()}, {"nudge_a", json::object()}, {"nudge_b", json::object()}};
  r["traffic_allocation"] = {{"control", 0.5}, {"nudge_a", 0.25}, {"nudge_b", 0.25}};
  const std::string id = make_active(r);
  const Experiment e = *get_ab_test(store(), id);
  auto assigner = assign::Assigner::create(e.hash_seed, e.config.allocation());
  std::vector<int> counts(3, 0);
  constexpr int kUsers = 100000;
  for (int i = 0; i < kUsers; ++i) ++counts[assigner->assign("user_" + std::to_string(i))];
  const double expected[] = {0.5 * kUsers, 0.25 * kUsers, 0.25 * kUsers};
  double chi2 = 0;
  for (int g = 0; g < 3; ++g)
    chi2 += (counts[g] - expected[g]) * (counts[g] - expected[g]) / expected[g];
  EXPECT_LT(chi2, 13.82);  // chi-square(2 df) critical value at alpha = 0.001
}

TEST_F(ServiceTest, ConfigIsFrozenOnceStarted) {
  auto draft = create_ab_test(store(), clock_, request());
  // Drafts may change anything.
  auto changed = update_ab_test(store(), clock_, draft->test_id,
                                {{"traffic_allocation", {{"control", 0.3}, {"variant", 0.7}}}});
  ASSERT_TRUE(changed.is_ok()) << changed.status().to_string();
  EXPECT_DOUBLE_EQ(changed->config.groups[1].weight, 0.7);
  EXPECT_EQ(update_ab_test(store(), clock_, draft->test_id, {{"colour", "red"}}).status().field(),
            "colour");

  ASSERT_TRUE(start_ab_test(store(), clock_, draft->test_id).is_ok());
  for (const json& patch :
       {json{{"traffic_allocation", {{"control", 0.5}, {"variant", 0.5}}}}, json{{"coverage", 0.5}},
        json{{"test_groups", {{"control", {{"ui", "old"}}}, {"variant", {{"ui", "x"}}}}}},
        json{{"targeting", {{"tier", "free"}}}}}) {
    auto refused = update_ab_test(store(), clock_, draft->test_id, patch);
    EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition) << patch.dump();
    EXPECT_NE(refused.status().message().find("new phase"), std::string::npos);
  }
  auto described = update_ab_test(store(), clock_, draft->test_id,
                                  {{"description", "clearer copy"}, {"alpha", 0.01}});
  ASSERT_TRUE(described.is_ok()) << described.status().to_string();
  EXPECT_EQ(get_ab_test(store(), draft->test_id)->config.description, "clearer copy");
  EXPECT_DOUBLE_EQ(get_ab_test(store(), draft->test_id)->config.groups[1].weight, 0.7);
}

TEST_F(ServiceTest, NewPhaseReshufflesAndCountsExposuresSeparately) {
  const std::string id = make_active(request());
  std::map<std::string, std::string> before;
  for (int i = 0; i < 150; ++i) {
    const std::string user = "user_" + std::to_string(i);
    before[user] = *assign_user(store(), clock_, id, user)->variant;
  }
  EXPECT_EQ(new_phase(store(), clock_, "test_missing").status().code(), StatusCode::kNotFound);
  clock_.advance(kSecondsPerDay);
  auto phased = new_phase(store(), clock_, id,
                          {{"traffic_allocation", {{"control", 0.5}, {"variant", 0.5}}}});
  ASSERT_TRUE(phased.is_ok()) << phased.status().to_string();
  EXPECT_EQ(phased->phase, 1);
  EXPECT_EQ(phased->hash_seed, id + ":phase1");
  ASSERT_EQ(phased->phases.size(), 2u);
  EXPECT_EQ(phased->phases[0].ended_at, clock_.now());
  EXPECT_EQ(phased->phases[1].started_at, clock_.now());
  EXPECT_EQ(phased->exposure_key(), id + ":phase1");

  int moved = 0;
  for (int i = 0; i < 150; ++i) {
    const std::string user = "user_" + std::to_string(i);
    auto a = assign_user(store(), clock_, id, user);
    EXPECT_EQ(a->phase, 1);
    moved += *a->variant != before[user];
  }
  EXPECT_NEAR(moved, 75, 28);  // an independent reshuffle moves about half
  EXPECT_EQ(total_exposed(store(), id), 150);
  EXPECT_EQ(total_exposed(store(), id + ":phase1"), 150);
  EXPECT_EQ(*store().count_multi_variant_users(id), 0);

  auto draft = create_ab_test(store(), clock_, request());
  EXPECT_EQ(new_phase(store(), clock_, draft->test_id).status().code(),
            StatusCode::kFailedPrecondition);
}

TEST_F(ServiceTest, CoverageRampKeepsEveryIncludedUserInTheirVariant) {
  json r = request();
  r["test_groups"] = {
      {"control", json::object()}, {"nudge_a", json::object()}, {"nudge_b", json::object()}};
  r["traffic_allocation"] = {{"control", 0.5}, {"nudge_a", 0.3}, {"nudge_b", 0.2}};
  r["coverage"] = 0.01;
  const std::string id = make_active(r);
  constexpr int kUsers = 20000;
  // The variant of every user (empty: not in the test), without recording exposures.
  auto snapshot = [&] {
    const Experiment e = *get_ab_test(store(), id);
    std::vector<std::string> variants(kUsers);
    for (int i = 0; i < kUsers; ++i) {
      std::optional<ExposureEvent> exposure;
      auto a = plan_assignment(store(), e, "user_" + std::to_string(i), nullptr, clock_.now(),
                               exposure);
      EXPECT_TRUE(a.is_ok());
      if (a->in_experiment) variants[static_cast<std::size_t>(i)] = *a->variant;
    }
    return variants;
  };
  std::vector<std::string> before = snapshot();
  const double schedule[] = {0.05, 0.25, 0.5, 1.0, 0.05};
  double previous = 0.01;
  for (double coverage : schedule) {
    clock_.advance(kSecondsPerDay);
    auto updated = set_coverage(store(), clock_, id, coverage, "ramp-test");
    ASSERT_TRUE(updated.is_ok()) << updated.status().to_string();
    EXPECT_DOUBLE_EQ(updated->previous_coverage, previous);
    EXPECT_EQ(updated->experiment.hash_seed, id);  // same seed, same phase
    EXPECT_EQ(updated->experiment.phase, 0);
    std::vector<std::string> after = snapshot();
    int included = 0, moved = 0, left = 0, joined = 0;
    std::map<std::string, int> per_variant;
    for (int i = 0; i < kUsers; ++i) {
      const std::string& was = before[static_cast<std::size_t>(i)];
      const std::string& is = after[static_cast<std::size_t>(i)];
      if (!is.empty()) ++included, ++per_variant[is];
      if (!was.empty() && !is.empty() && was != is) ++moved;
      if (!was.empty() && is.empty()) ++left;
      if (was.empty() && !is.empty()) ++joined;
    }
    EXPECT_EQ(moved, 0) << coverage;
    if (coverage > previous) {
      EXPECT_EQ(left, 0) << coverage;  // raising adds users only
    } else {
      EXPECT_EQ(joined, 0) << coverage;  // lowering removes users only
    }
    // Included share ~ coverage (within 4 binomial standard deviations), split by weight.
    const double sd = std::sqrt(coverage * (1 - coverage) / kUsers);
    EXPECT_NEAR(included / static_cast<double>(kUsers), coverage, 4 * sd + 1e-9) << coverage;
    if (coverage >= 0.25) {
      EXPECT_NEAR(per_variant["control"] / static_cast<double>(included), 0.5, 0.03);
      EXPECT_NEAR(per_variant["nudge_b"] / static_cast<double>(included), 0.2, 0.03);
    }
    before = std::move(after);
    previous = coverage;
  }
  const Experiment e = *get_ab_test(store(), id);
  ASSERT_EQ(e.phases.size(), 1u);
  ASSERT_EQ(e.phases[0].coverage_changes.size(), 5u);
  EXPECT_DOUBLE_EQ(e.phases[0].coverage_changes[0].from, 0.01);
  EXPECT_DOUBLE_EQ(e.phases[0].coverage_changes[0].to, 0.05);
  EXPECT_EQ(e.phases[0].coverage_changes[0].by, "ramp-test");
  EXPECT_DOUBLE_EQ(e.phases[0].coverage, 0.05);
  EXPECT_DOUBLE_EQ(e.config.coverage, 0.05);

  for (double bad : {0.0, -0.1, 1.5, std::nan("")}) {
    EXPECT_EQ(set_coverage(store(), clock_, id, bad, "x").status().field(), "coverage") << bad;
  }
  EXPECT_EQ(set_coverage(store(), clock_, id, 0.5, "x", e.version - 1).status().code(),
            StatusCode::kFailedPrecondition);  // a stale reader loses
  EXPECT_DOUBLE_EQ(get_ab_test(store(), id)->config.coverage, 0.05);
  ASSERT_TRUE(complete_ab_test(store(), clock_, id).is_ok());
  EXPECT_EQ(set_coverage(store(), clock_, id, 0.5, "x").status().code(),
            StatusCode::kFailedPrecondition);
}

TEST_F(ServiceTest, StaleVersionIsRefused) {
  auto created = create_ab_test(store(), clock_, request());
  Document stale = **store().get_document(kDocumentKind, created->test_id);
  ASSERT_TRUE(start_ab_test(store(), clock_, created->test_id).is_ok());
  // A writer holding the old version loses instead of overwriting the start.
  EXPECT_EQ(store().put_document(stale).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(get_ab_test(store(), created->test_id)->status, ExperimentStatus::kActive);
}

TEST_F(ServiceTest, DemoExperimentsAreSeededOnce) {
  auto created = seed_demo_experiments(store(), clock_);
  ASSERT_TRUE(created.is_ok()) << created.status().to_string();
  EXPECT_EQ(*created, 2);
  EXPECT_EQ(*seed_demo_experiments(store(), clock_), 0);
  auto onboarding = get_ab_test(store(), kDemoOnboardingTest);
  ASSERT_TRUE(onboarding.is_ok());
  EXPECT_EQ(onboarding->status, ExperimentStatus::kActive);
  EXPECT_EQ(onboarding->started_at, clock_.now() - 30 * kSecondsPerDay);
  EXPECT_EQ(onboarding->config.success_metrics[0].name, "conversion_rate");
  EXPECT_EQ(onboarding->config.success_metrics[1].type, stats::MetricType::kContinuous);
  auto nudge = get_ab_test(store(), kDemoSavingsNudgeTest);
  EXPECT_EQ(nudge->started_at, clock_.now() - 45 * kSecondsPerDay);
  ASSERT_EQ(nudge->config.groups.size(), 3u);
  EXPECT_EQ(nudge->config.groups[0].name, "control");
  EXPECT_EQ(nudge->config.success_metrics[0].name, "savings_goal_created");
  EXPECT_EQ(nudge->config.success_metrics[0].type, stats::MetricType::kBinomial);
}

}  // namespace
}  // namespace fulcrum::experiments
