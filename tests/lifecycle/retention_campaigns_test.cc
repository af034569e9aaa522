// Campaign creation, cooldown, lifecycle and measured lift, through the SQLite store.
#include "lifecycle/retention_campaigns.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "store/store.h"

namespace fulcrum {
namespace {

constexpr UnixSeconds kNow = 1'700'000'000;
constexpr UnixSeconds kDay = kSecondsPerDay;

class CampaignStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ = std::filesystem::temp_directory_path() /
                 ("fulcrum_campaigns_" + std::to_string(::getpid()) + "_" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(directory_);
    std::filesystem::create_directories(directory_);
    auto store = open_store((directory_ / "store.db").string());
    ASSERT_TRUE(store.is_ok()) << store.status().to_string();
    store_ = std::move(*store);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(directory_);
  }
  std::filesystem::path directory_;
  std::unique_ptr<Store> store_;
};

// `droppers` users with 2 sessions/day for 84 days then none in the last 7; `steady` users
// active every day; one user with an unrecovered failed payment.
EventBatch planted_batch(int droppers, int steady) {
  EventBatch batch;
  auto add_user = [&](const std::string& id) {
    User user;
    user.user_id = id;
    user.signup_at = kNow - 200 * kDay;
    batch.users.push_back(user);
  };
  for (int u = 0; u < droppers; ++u) {
    std::string id = "drop" + std::to_string(u);
    add_user(id);
    for (int d = 8; d <= 84; ++d) {
      batch.sessions.push_back({id, kNow - d * kDay + 100, 60});
      batch.sessions.push_back({id, kNow - d * kDay + 200, 60});
    }
  }
  for (int u = 0; u < steady; ++u) {
    std::string id = "steady" + std::to_string(u);
    add_user(id);
    for (int d = 1; d <= 84; ++d) batch.sessions.push_back({id, kNow - d * kDay + 100, 60});
  }
  add_user("payer");
  for (int d = 1; d <= 84; ++d) batch.sessions.push_back({"payer", kNow - d * kDay + 100, 60});
  batch.payments.push_back({"payer", kNow - 40 * kDay, true, 999});
  batch.payments.push_back({"payer", kNow - 10 * kDay, false, 999});
  return batch;
}

RetentionCampaignConfig behavioural_config() {
  RetentionCampaignConfig config;
  config.triggers.enabled = {TriggerType::kUsageDrop, TriggerType::kPaymentIssue,
                             TriggerType::kEngagementDecline, TriggerType::kFeatureAbandonment};
  return config;
}

TEST(CampaignHoldout, DeterministicAndNearTheFraction) {
  int held = 0;
  for (int u = 0; u < 20000; ++u) {
    std::string user = "u" + std::to_string(u);
    bool in = in_campaign_holdout("camp_x", user, 0.1);
    EXPECT_EQ(in, in_campaign_holdout("camp_x", user, 0.1));
    EXPECT_FALSE(in_campaign_holdout("camp_x", user, 0.0));
    held += in;
  }
  // Binomial(20000, 0.1): sd = 42, so +-250 is about 6 sd.
  EXPECT_NEAR(held, 2000, 250);
}

TEST_F(CampaignStoreTest, TriggersCreateStoredCampaignsAndRespectCooldown) {
  ASSERT_TRUE(store_->ingest(planted_batch(60, 20)).is_ok());
  ManualClock clock(kNow);
  auto config = behavioural_config();
  auto campaigns = trigger_retention_campaigns(*store_, clock, config);
  ASSERT_TRUE(campaigns.is_ok()) << campaigns.status().to_string();
  std::set<std::string> seen;
  bool saw_payment = false, saw_drop = false;
  for (const auto& campaign : *campaigns) {
    std::vector<std::string> everyone = campaign.target_users;
    everyone.insert(everyone.end(), campaign.holdout_users.begin(), campaign.holdout_users.end());
    for (const auto& user : everyone) {
      EXPECT_TRUE(seen.insert(user).second) << user << " targeted twice";
      EXPECT_EQ(user.rfind("steady", 0), std::string::npos) << user;
    }
    if (campaign.trigger_type == TriggerType::kPaymentIssue) {
      saw_payment = true;
      EXPECT_EQ(everyone, std::vector<std::string>{"payer"});
    }
    if (campaign.trigger_type == TriggerType::kUsageDrop) {
      saw_drop = true;
      EXPECT_EQ(everyone.size(), 60u);
      for (const auto& user : campaign.holdout_users) {
        EXPECT_TRUE(in_campaign_holdout(campaign.campaign_id, user, 0.1));
      }
    }
    EXPECT_EQ(campaign.campaign_status, "active");
    auto stored = get_campaign(*store_, campaign.campaign_id);
    ASSERT_TRUE(stored.is_ok());
    EXPECT_EQ(stored->target_users, campaign.target_users);
    auto members = store_->campaign_members(campaign.campaign_id);
    ASSERT_TRUE(members.is_ok());
    EXPECT_EQ(members->size(), everyone.size());
    auto json = campaign.to_json();
    for (const char* field :
         {"campaign_id", "campaign_name", "trigger_type", "target_users", "campaign_type",
          "campaign_message", "success_metrics", "campaign_status"}) {
      EXPECT_TRUE(json.contains(field)) << field;
    }
  }
  EXPECT_TRUE(saw_payment);
  EXPECT_TRUE(saw_drop);

  // Same day again: everyone matched is cooling down.
  auto again = trigger_retention_campaigns(*store_, clock, config);
  ASSERT_TRUE(again.is_ok());
  EXPECT_TRUE(again->empty());
  auto listed = list_campaigns(*store_);
  ASSERT_TRUE(listed.is_ok());
  EXPECT_EQ(listed->size(), campaigns->size());
}

// The store's users table lists the users in the reverse order of their first events (their
// rollup keys), so the slices of keys visit them in descending user order: the matches of
// a walk in small slices must still equal the held activity's, in user order.
TEST_F(CampaignStoreTest, StreamedSlicesGiveTheHeldActivitysMatchesInUserOrder) {
  EventBatch batch = planted_batch(60, 20);
  std::reverse(batch.users.begin(), batch.users.end());
  ASSERT_TRUE(store_->ingest(batch).is_ok());
  RetentionTriggerConfig config;  // every trigger, the churn model too
  auto held = load_user_activity(*store_, kNow, config.history_days());
  auto streamed = UserActivity::open(*store_, kNow, config.history_days(), /*keys_per_slice=*/7);
  ASSERT_TRUE(held.is_ok() && streamed.is_ok());
  auto expected = detect_retention_triggers(*held, config);
  auto actual = detect_retention_triggers(*streamed, config);
  ASSERT_TRUE(expected.is_ok()) << expected.status().to_string();
  ASSERT_TRUE(actual.is_ok()) << actual.status().to_string();
  ASSERT_EQ(actual->size(), expected->size());
  for (const auto& [type, list] : *expected) {
    const auto& got = actual->at(type);
    ASSERT_EQ(got.size(), list.size()) << trigger_type_name(type);
    for (std::size_t i = 0; i < list.size(); ++i) {
      EXPECT_EQ(got[i].user, list[i].user) << trigger_type_name(type);
      EXPECT_EQ(got[i].score, list[i].score) << trigger_type_name(type);  // same rows, same fit
      EXPECT_EQ(got[i].detail, list[i].detail);
    }
  }
  EXPECT_EQ(expected->at(TriggerType::kUsageDrop).size(), 60U);
  const auto& drops = actual->at(TriggerType::kUsageDrop);
  EXPECT_TRUE(std::is_sorted(drops.begin(), drops.end(),
                             [](const TriggerMatch& a, const TriggerMatch& b) { return a.user < b.user; }));
}

TEST_F(CampaignStoreTest, LifecycleDraftActiveCompleted) {
  ASSERT_TRUE(store_->ingest(planted_batch(5, 0)).is_ok());
  ManualClock clock(kNow);
  auto config = behavioural_config();
  config.initial_status = "draft";
  auto campaigns = trigger_retention_campaigns(*store_, clock, config);
  ASSERT_TRUE(campaigns.is_ok());
  ASSERT_FALSE(campaigns->empty());
  const std::string id = campaigns->front().campaign_id;
  EXPECT_EQ(complete_campaign(*store_, clock, id).status().code(), StatusCode::kFailedPrecondition);
  clock.advance(3600);
  auto active = activate_campaign(*store_, clock, id);
  ASSERT_TRUE(active.is_ok()) << active.status().to_string();
  EXPECT_EQ(active->campaign_status, "active");
  EXPECT_EQ(active->activated_at, kNow + 3600);
  EXPECT_EQ(list_campaigns(*store_, "active")->size(), 1u);
  auto completed = complete_campaign(*store_, clock, id);
  ASSERT_TRUE(completed.is_ok());
  EXPECT_EQ(get_campaign(*store_, id)->campaign_status, "completed");
  EXPECT_EQ(activate_campaign(*store_, clock, id).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(get_campaign(*store_, "camp_missing").status().code(), StatusCode::kNotFound);
}

TEST_F(CampaignStoreTest, ResultsMeasureRetentionLiftAgainstHoldout) {
  ASSERT_TRUE(store_->ingest(planted_batch(400, 0)).is_ok());
  ManualClock clock(kNow);
  auto config = behavioural_config();
  config.holdout_fraction = 0.3;
  auto campaigns = trigger_retention_campaigns(*store_, clock, config);
  ASSERT_TRUE(campaigns.is_ok());
  const RetentionCampaign* drop = nullptr;
  for (const auto& campaign : *campaigns) {
    if (campaign.trigger_type == TriggerType::kUsageDrop) drop = &campaign;
  }
  ASSERT_NE(drop, nullptr);
  // After targeting: 3 of 4 treated users come back, 1 of 4 held-out users do; one treated
  // user comes back only after the 28-day window (not retained).
  EventBatch after;
  int treated_back = 0, holdout_back = 0;
  for (std::size_t i = 0; i < drop->target_users.size(); ++i) {
    if (i % 4 != 0) {
      after.sessions.push_back({drop->target_users[i], kNow + 5 * kDay, 60});
      ++treated_back;
    } else {
      after.sessions.push_back({drop->target_users[i], kNow + 29 * kDay, 60});
    }
  }
  for (std::size_t i = 0; i < drop->holdout_users.size(); ++i) {
    if (i % 4 == 0) {
      after.feature_usage.push_back({drop->holdout_users[i], "budgets", kNow + 2 * kDay, 1});
      ++holdout_back;
    }
  }
  ASSERT_TRUE(store_->ingest(after).is_ok());
  clock.set(kNow + 10 * kDay);
  auto early = campaign_results(*store_, clock, drop->campaign_id);
  ASSERT_TRUE(early.is_ok()) << early.status().to_string();
  EXPECT_FALSE(early->observation_complete);
  clock.set(kNow + 40 * kDay);
  auto results = campaign_results(*store_, clock, drop->campaign_id);
  ASSERT_TRUE(results.is_ok());
  EXPECT_TRUE(results->observation_complete);
  EXPECT_EQ(results->treated.users, static_cast<std::int64_t>(drop->target_users.size()));
  EXPECT_EQ(results->holdout.users, static_cast<std::int64_t>(drop->holdout_users.size()));
  EXPECT_EQ(results->treated.retained, treated_back);
  EXPECT_EQ(results->holdout.retained, holdout_back);
  double expected_lift = static_cast<double>(treated_back) / drop->target_users.size() -
                         static_cast<double>(holdout_back) / drop->holdout_users.size();
  ASSERT_TRUE(results->lift.has_value());
  EXPECT_NEAR(*results->lift, expected_lift, 1e-12);
  EXPECT_LT(*results->ci_lower, *results->lift);
  EXPECT_GT(*results->ci_upper, *results->lift);
  EXPECT_GT(*results->ci_lower, 0.0);  // ~0.5 lift with ~120 held out users
  EXPECT_LT(*results->p_value, 1e-6);
  auto json = results->to_json();
  EXPECT_DOUBLE_EQ(json["lift"]["estimate"].get<double>(), expected_lift);
}

TEST(CampaignResults, EmptyHoldoutGivesNoComparison) {
  RetentionCampaign campaign;
  campaign.campaign_id = "camp_1";
  auto results = summarize_campaign_results(campaign, {false, false}, {true, false}, true, 0.05);
  ASSERT_TRUE(results.is_ok());
  EXPECT_FALSE(results->lift.has_value());
  EXPECT_DOUBLE_EQ(results->treated.retention_rate, 0.5);
  EXPECT_TRUE(results->to_json()["lift"].is_null());
}

TEST(CampaignConfig, RejectsBadValuesNamingTheField) {
  RetentionCampaignConfig config;
  config.holdout_fraction = 1.0;
  EXPECT_EQ(config.validate().field(), "holdout_fraction");
  config = RetentionCampaignConfig{};
  config.initial_status = "paused";
  EXPECT_EQ(config.validate().field(), "initial_status");
}

}  // namespace
}  // namespace fulcrum
