#include "core/trained_model_holder.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace fulcrum {
namespace {

struct FakeModel {
  UnixSeconds trained = 0;
  UnixSeconds trained_at() const { return trained; }
};

TEST(TrainedModelHolderTest, TrainsWhenAbsentOrStaleAndKeepsTheOldModelOnFailure) {
  TrainedModelHolder<FakeModel> holder(100);
  int trainings = 0;
  bool fail = false;
  auto train = [&](UnixSeconds now) -> Result<FakeModel> {
    ++trainings;
    if (fail) return internal_error("training failed");
    return FakeModel{now};
  };
  EXPECT_EQ(holder.model(), nullptr);
  EXPECT_EQ((*holder.fresh(1000, train))->trained, 1000);
  EXPECT_EQ((*holder.fresh(1100, train))->trained, 1000);  // 100 s old: still fresh
  EXPECT_EQ(trainings, 1);
  EXPECT_EQ((*holder.fresh(1101, train))->trained, 1101);  // stale: retrained
  EXPECT_EQ(trainings, 2);
  fail = true;
  EXPECT_FALSE(holder.fresh(5000, train).is_ok());
  EXPECT_FALSE(holder.refresh(5000, train).is_ok());
  EXPECT_EQ(holder.model()->trained, 1101);  // the old model still serves
}

TEST(TrainedModelHolderTest, ConcurrentCallersShareOneTraining) {
  TrainedModelHolder<FakeModel> holder(100);
  std::atomic<int> trainings = 0;
  auto train = [&](UnixSeconds now) -> Result<FakeModel> {
    ++trainings;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return FakeModel{now};
  };
  std::vector<std::thread> callers;
  for (int i = 0; i < 8; ++i) {
    callers.emplace_back([&] { EXPECT_TRUE(holder.fresh(1000, train).is_ok()); });
  }
  for (auto& caller : callers) caller.join();
  EXPECT_EQ(trainings.load(), 1);
}

}  // namespace
}  // namespace fulcrum
