// On the demo generator's data (docs/demo-data.md) the planted declining feature,
// legacy_statements, must be the only one recommended for sunset, and the planted growing
// one, instant_savings, must be kept.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "store/store.h"
#include "sunset/sunset.h"

#ifdef FULCRUM_HAVE_DEMO
#include "demo/demo_data.h"

namespace fulcrum {
namespace {

TEST(SunsetOnDemoData, PlantedDecliningFeatureIsTheOnlySunsetGrowingOneIsKept) {
  const auto directory = std::filesystem::temp_directory_path() /
                         ("fulcrum_sunset_demo_" + std::to_string(::getpid()));
  std::filesystem::remove_all(directory);
  std::filesystem::create_directories(directory);
  {
    auto store = open_store((directory / "store.db").string());
    ASSERT_TRUE(store.is_ok());
    demo::DemoOptions options;
    options.users = 2500;
    options.days = 90;
    options.end = 1'735'689'600;  // 2025-01-01
    auto summary = demo::generate_demo_data(
        options, [&](const EventBatch& batch) { return (*store)->ingest(batch).status(); });
    ASSERT_TRUE(summary.is_ok()) << summary.status().to_string();
    ManualClock clock(options.end);
    auto analyses = analyze_feature_sunset(**store, clock, SunsetConfig{});
    ASSERT_TRUE(analyses.is_ok()) << analyses.status().to_string();
    int sunsets = 0;
    for (const auto& analysis : *analyses) {
      SCOPED_TRACE(analysis.to_json().dump());
      if (analysis.sunset_recommendation == "sunset") ++sunsets;
      if (analysis.feature_name == "legacy_statements") {
        EXPECT_EQ(analysis.usage_trend.direction, "declining");
        EXPECT_EQ(analysis.sunset_recommendation, "sunset");
        EXPECT_TRUE(analysis.sunset_date.has_value());
      }
      if (analysis.feature_name == "instant_savings") {
        EXPECT_EQ(analysis.usage_trend.direction, "growing");
        EXPECT_EQ(analysis.sunset_recommendation, "keep");
      }
    }
    EXPECT_EQ(sunsets, 1);
  }
  std::filesystem::remove_all(directory);
}

}  // namespace
}  // namespace fulcrum
#endif
