// The usage layer reads the store's rollups: the same history whether built from the store
// or from the events in memory, one user's rows only for load_user, whole UTC days for
// windows, and UserActivity's day cells equal to the events they summarise.
#include "usage/usage_history.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <random>

#include "store/store.h"
#include "usage/user_activity.h"

namespace fulcrum {
namespace {

constexpr UnixSeconds kDay = kSecondsPerDay;
constexpr UnixSeconds kStart = 20'000 * kDay;  // a midnight (2024-10-04)

EventBatch sample_events() {
  EventBatch batch;
  batch.users = {{"alice", Tier::kFree, kStart - 30 * kDay, "DE", "5.0", {}},
                 {"bob", Tier::kPlus, kStart - 10 * kDay, "FR", "5.1", {}}};
  batch.features = {{"budgets", Tier::kFree, 100, 200, "planning"},
                    {"wealth", Tier::kPremium, 500, 900, "investing"}};
  for (int d = 0; d < 20; ++d) {
    batch.sessions.push_back({"alice", kStart + d * kDay + 3600, 120});
    if (d % 2 == 0) batch.feature_usage.push_back({"alice", "budgets", kStart + d * kDay + 60, 2});
    if (d % 5 == 0) batch.paywall_hits.push_back({"alice", "wealth", kStart + d * kDay + 70});
  }
  batch.sessions.push_back({"bob", kStart + 3 * kDay, 10});
  batch.feature_usage.push_back({"bob", "wealth", kStart + 3 * kDay + 5, 1});
  batch.feature_usage.push_back({"carol", "budgets", kStart + 4 * kDay, 1});      // no users row
  batch.feature_usage.push_back({"bob", "legacy_export", kStart + 5 * kDay, 1});  // no catalog
  batch.payments = {{"alice", kStart + 2 * kDay, false, 999},
                    {"alice", kStart + 2 * kDay + 9, true, 999}};
  batch.subscription_changes = {
      {"alice", kStart + 15 * kDay, SubscriptionChangeKind::kUpgrade, Tier::kFree, Tier::kPlus}};
  batch.users[0].tier = Tier::kPlus;  // current tier after the upgrade
  return batch;
}

class UsageHistoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ =
        std::filesystem::temp_directory_path() / ("fulcrum_usage_" + std::to_string(::getpid()) +
                                                  "_" + std::to_string(std::random_device{}()));
    std::filesystem::create_directories(directory_);
    auto store = open_store((directory_ / "store.db").string());
    ASSERT_TRUE(store.is_ok()) << store.status().to_string();
    store_ = std::move(store).value();
    ASSERT_TRUE(store_->ingest(sample_events()).is_ok());
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(directory_);
  }
  std::filesystem::path directory_;
  std::unique_ptr<Store> store_;
};

void expect_same(const UsageHistory& a, const UsageHistory& b) {
  ASSERT_EQ(a.user_count(), b.user_count());
  ASSERT_EQ(a.feature_names(), b.feature_names());
  for (int u = 0; u < a.user_count(); ++u) {
    const int v = b.find_user(a.user_id(u));
    ASSERT_GE(v, 0) << a.user_id(u);
    ASSERT_EQ(a.days(u).size(), b.days(v).size());
    for (std::size_t i = 0; i < a.days(u).size(); ++i) {
      EXPECT_EQ(a.days(u)[i].day, b.days(v)[i].day);
      EXPECT_EQ(a.days(u)[i].sessions, b.days(v)[i].sessions);
      EXPECT_EQ(a.days(u)[i].uses, b.days(v)[i].uses);
      EXPECT_EQ(a.days(u)[i].paywall_hits, b.days(v)[i].paywall_hits);
      EXPECT_EQ(a.days(u)[i].payments_failed, b.days(v)[i].payments_failed);
    }
    ASSERT_EQ(a.feature_days(u).size(), b.feature_days(v).size());
    for (std::size_t i = 0; i < a.feature_days(u).size(); ++i) {
      EXPECT_EQ(a.feature_days(u)[i].day, b.feature_days(v)[i].day);
      EXPECT_EQ(a.feature_days(u)[i].feature, b.feature_days(v)[i].feature);
      EXPECT_EQ(a.feature_days(u)[i].uses, b.feature_days(v)[i].uses);
    }
    EXPECT_EQ(a.tier_changes(u).size(), b.tier_changes(v).size());
  }
}

TEST_F(UsageHistoryTest, StoreRollupsAndInMemoryEventsGiveTheSameHistory) {
  auto loaded = UsageHistory::load(*store_);
  ASSERT_TRUE(loaded.is_ok()) << loaded.status().to_string();
  const UsageHistory in_memory = UsageHistory::from_events(sample_events());
  expect_same(*loaded, in_memory);
  // Registered users only by default; the catalog first (by name), then event-only names.
  EXPECT_EQ(loaded->user_count(), 2);
  EXPECT_LT(loaded->find_user("carol"), 0);
  ASSERT_EQ(loaded->features().size(), 2u);
  EXPECT_EQ(loaded->feature_names().back(), "legacy_export");
  const int alice = loaded->find_user("alice");
  EXPECT_EQ(loaded->days(alice).size(), 20u);
  EXPECT_EQ(loaded->tier_at(alice, kStart + 10 * kDay), Tier::kFree);
  EXPECT_EQ(loaded->tier_at(alice, kStart + 16 * kDay), Tier::kPlus);
  UsageLoadOptions everyone;
  everyone.include_unregistered_users = true;
  auto with_carol = UsageHistory::load(*store_, everyone);
  ASSERT_TRUE(with_carol.is_ok());
  EXPECT_GE(with_carol->find_user("carol"), 0);
}

TEST_F(UsageHistoryTest, LoadUserReadsOneUserAndTheDayRange) {
  UsageLoadOptions window;
  window.from_day = usage_day_of(kStart) + 5;
  window.to_day = usage_day_of(kStart) + 10;
  auto alice = UsageHistory::load_user(*store_, "alice", window);
  ASSERT_TRUE(alice.is_ok()) << alice.status().to_string();
  ASSERT_EQ(alice->user_count(), 1);
  ASSERT_EQ(alice->days(0).size(), 5u);
  EXPECT_EQ(alice->days(0).front().day, window.from_day);
  EXPECT_EQ(alice->days(0).back().day, window.to_day - 1);
  EXPECT_EQ(alice->tier_changes(0).size(), 1u);  // the whole tier timeline
  auto missing = UsageHistory::load_user(*store_, "nobody");
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

// A streamed history (open) visits every user once, each with exactly the rows load() holds,
// and only that slice's rows are loaded at a time; one key per slice is the harshest split.
TEST_F(UsageHistoryTest, StreamedSlicesHoldTheSameRowsOneSliceAtATime) {
  // A user registered without events belongs to the first slice.
  EventBatch dave;
  dave.users = {{"dave", Tier::kFree, kStart, "DE", "5.0", {}}};
  ASSERT_TRUE(store_->ingest(dave).is_ok());
  UsageLoadOptions everyone;
  everyone.include_unregistered_users = true;
  everyone.from_day = usage_day_of(kStart) + 2;
  auto loaded = UsageHistory::load(*store_, everyone);
  ASSERT_TRUE(loaded.is_ok()) << loaded.status().to_string();
  for (std::uint32_t keys_per_slice : {1u, 2u, 1000u}) {
    auto streamed = UsageHistory::open(*store_, everyone, keys_per_slice);
    ASSERT_TRUE(streamed.is_ok()) << streamed.status().to_string();
    ASSERT_TRUE(streamed->streamed());
    ASSERT_EQ(streamed->user_count(), loaded->user_count());
    std::vector<int> visits(static_cast<std::size_t>(loaded->user_count()), 0);
    int slices = 0;
    Status walked = streamed->for_each_slice([&](std::span<const int> users) {
      ++slices;
      std::size_t rows = 0;
      for (int u : users) {
        ++visits[static_cast<std::size_t>(u)];
        const int v = loaded->find_user(streamed->user_id(u));
        EXPECT_EQ(streamed->days(u).size(), loaded->days(v).size()) << streamed->user_id(u);
        EXPECT_EQ(streamed->feature_days(u).size(), loaded->feature_days(v).size());
        for (std::size_t i = 0; i < streamed->days(u).size(); ++i) {
          EXPECT_EQ(streamed->days(u)[i].day, loaded->days(v)[i].day);
          EXPECT_EQ(streamed->days(u)[i].sessions, loaded->days(v)[i].sessions);
        }
        rows += streamed->days(u).size() + streamed->feature_days(u).size();
      }
      EXPECT_EQ(streamed->day_rows() + streamed->feature_day_rows(), rows);  // this slice's only
      return Status::ok();
    });
    ASSERT_TRUE(walked.is_ok()) << walked.to_string();
    for (int count : visits) EXPECT_EQ(count, 1);
    // Keys start at 1: dave (no key) alone in slice 0, then one slice per user with events.
    if (keys_per_slice == 1) {
      EXPECT_EQ(slices, 4);
    }
    EXPECT_EQ(streamed->day_rows(), 0u);  // nothing held after the walk
    EXPECT_EQ(streamed->tier_changes(streamed->find_user("alice")).size(), 1u);
  }
}

TEST_F(UsageHistoryTest, StreamedUserActivityHoldsOneSliceOfCellsAtATime) {
  const UnixSeconds now = kStart + 20 * kDay;
  auto held = load_user_activity(*store_, now, 20);
  auto streamed = UserActivity::open(*store_, now, 20, /*keys_per_slice=*/1);
  ASSERT_TRUE(held.is_ok() && streamed.is_ok());
  EXPECT_TRUE(streamed->streamed());
  const int users = held->user_count();
  ASSERT_EQ(streamed->user_count(), users);
  ASSERT_EQ(streamed->feature_count(), held->feature_count());
  for (int u = 0; u < users; ++u) EXPECT_EQ(streamed->user_id(u), held->user_id(u));
  const int alice = streamed->find_user("alice");
  EXPECT_EQ(streamed->activity_sum(alice, 0, 20), 0);  // no cells outside a walk
  std::vector<int> visits(static_cast<std::size_t>(users), 0);
  int slices = 0;
  Status walked = streamed->for_each_slice([&](std::span<const int> slice) {
    ++slices;
    for (int u : slice) ++visits[static_cast<std::size_t>(u)];
    for (int u = 0; u < users; ++u) {
      const bool in_slice = std::find(slice.begin(), slice.end(), u) != slice.end();
      for (int d = 0; d < 20; ++d) {
        EXPECT_EQ(streamed->activity(u, d), in_slice ? held->activity(u, d) : 0) << u << " " << d;
      }
      EXPECT_EQ(streamed->payments(u).size(), in_slice ? held->payments(u).size() : 0U);
      for (int f = 0; f < held->feature_count(); ++f) {
        EXPECT_EQ(streamed->used_feature_ever(u, f), in_slice && held->used_feature_ever(u, f));
      }
    }
    return Status::ok();
  });
  ASSERT_TRUE(walked.is_ok()) << walked.to_string();
  EXPECT_EQ(slices, 3);  // one store key per slice: alice, bob, carol
  EXPECT_EQ(visits, std::vector<int>(static_cast<std::size_t>(users), 1));
  EXPECT_EQ(streamed->activity_sum(alice, 0, 20), 0);  // the last slice's cells are gone
  // An error of the visit ends the walk and is returned.
  slices = 0;
  Status stopped = streamed->for_each_slice([&](std::span<const int>) {
    ++slices;
    return internal_error("stop");
  });
  EXPECT_FALSE(stopped.is_ok());
  EXPECT_EQ(slices, 1);
}

TEST(UsageDays, AnalysisEndRoundsDownToTheLastMidnight) {
  EXPECT_EQ(analysis_end(kStart), kStart);        // a midnight stays
  EXPECT_EQ(analysis_end(kStart + 353), kStart);  // a few minutes past: those days exactly
  EXPECT_EQ(analysis_end(kStart + kDay - 1), kStart);
  EXPECT_EQ(usage_day_of(-1), -1);
  EXPECT_EQ(usage_day_of(0), 0);
}

TEST_F(UsageHistoryTest, UserActivityCellsSumTheDaysEvents) {
  const UnixSeconds now = kStart + 20 * kDay;  // the window is the 20 days of data
  auto activity = load_user_activity(*store_, now, 20);
  ASSERT_TRUE(activity.is_ok()) << activity.status().to_string();
  const int alice = activity->find_user("alice");
  ASSERT_GE(alice, 0);
  EXPECT_EQ(activity->activity(alice, 0), 1 + 2);  // a session and 2 uses of budgets
  EXPECT_EQ(activity->activity(alice, 1), 1);
  EXPECT_EQ(activity->active_days(alice, 0, 20), 20);
  EXPECT_GE(activity->find_user("carol"), 0);  // events without a users row count too
  const auto& payments = activity->payments(alice);
  ASSERT_EQ(payments.size(), 2u);
  EXPECT_FALSE(payments[0].succeeded);  // the day's failure first: the retry recovered it
  EXPECT_TRUE(payments[1].succeeded);
  int budgets = -1;
  for (int f = 0; f < activity->feature_count(); ++f) {
    if (activity->feature_name(f) == "budgets") budgets = f;
  }
  ASSERT_GE(budgets, 0);
  EXPECT_TRUE(activity->used_feature(alice, budgets, 0));
  EXPECT_FALSE(activity->used_feature(alice, budgets, 1));
  // A clock in the middle of a day analyses the whole days before it.
  auto mid_day = load_user_activity(*store_, kStart + 20 * kDay + 7200, 20);
  ASSERT_TRUE(mid_day.is_ok());
  EXPECT_EQ(mid_day->now(), now);
  EXPECT_EQ(mid_day->activity(alice, 0), 1 + 2);
}

}  // namespace
}  // namespace fulcrum
