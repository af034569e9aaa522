#include "stats/multiple_testing.h"

#include <gtest/gtest.h>

#include <random>

#include "oracle_client.h"

namespace fulcrum::stats {
namespace {

using nlohmann::json;
using testing::close;

json multitest_cases() {
  std::mt19937_64 rng(4242);
  std::uniform_int_distribution<int> size_dist(1, 25);
  std::uniform_real_distribution<double> u(0, 1);
  json cases = json::array();
  for (int i = 0; i < 200; ++i) {
    std::vector<double> p;
    const int m = size_dist(rng);
    for (int j = 0; j < m; ++j) {
      // Mix of tiny, moderate and null p-values, with deliberate ties.
      const double draw = u(rng);
      if (j > 0 && draw < 0.1) {
        p.push_back(p[j - 1]);
      } else if (draw < 0.4) {
        p.push_back(std::pow(u(rng), 6));
      } else {
        p.push_back(u(rng));
      }
    }
    cases.push_back({{"p_values", p}});
  }
  return cases;
}

[[maybe_unused]] const bool kRegistered =
    testing::register_oracle_cases("multitest", multitest_cases());

TEST(MultipleTesting, MatchesStatsmodelsMultipletests) {
  const auto& batch = testing::oracle_batch("multitest");
  ASSERT_FALSE(batch.expected.is_null()) << "oracle.py failed";
  for (size_t i = 0; i < batch.cases.size(); ++i) {
    SCOPED_TRACE("case " + std::to_string(i) + ": " + batch.cases[i].dump());
    const auto p = batch.cases[i]["p_values"].get<std::vector<double>>();
    auto holm = holm_adjust(p);
    auto bh = benjamini_hochberg_adjust(p);
    ASSERT_TRUE(holm.is_ok() && bh.is_ok());
    for (size_t j = 0; j < p.size(); ++j) {
      EXPECT_TRUE(close((*holm)[j], batch.expected[i]["holm"][j]));
      EXPECT_TRUE(close((*bh)[j], batch.expected[i]["fdr_bh"][j]));
    }
  }
}

TEST(MultipleTesting, TextbookExample) {
  // Benjamini & Hochberg style example: p = 0.01, 0.04, 0.03, 0.005 (m = 4).
  // Holm: sorted 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1 ->
  // max-accumulated 0.06.
  auto holm = holm_adjust({0.01, 0.04, 0.03, 0.005});
  ASSERT_TRUE(holm.is_ok());
  EXPECT_DOUBLE_EQ((*holm)[0], 0.03);
  EXPECT_DOUBLE_EQ((*holm)[1], 0.06);
  EXPECT_DOUBLE_EQ((*holm)[2], 0.06);
  EXPECT_DOUBLE_EQ((*holm)[3], 0.02);
  // BH: 0.005*4/1=0.02, 0.01*4/2=0.02, 0.03*4/3=0.04, 0.04*4/4=0.04.
  auto bh = benjamini_hochberg_adjust({0.01, 0.04, 0.03, 0.005});
  ASSERT_TRUE(bh.is_ok());
  EXPECT_DOUBLE_EQ((*bh)[0], 0.02);
  EXPECT_DOUBLE_EQ((*bh)[1], 0.04);
  EXPECT_DOUBLE_EQ((*bh)[2], 0.04);
  EXPECT_DOUBLE_EQ((*bh)[3], 0.02);
}

TEST(MultipleTesting, RejectsPValuesOutsideUnitInterval) {
  EXPECT_EQ(holm_adjust({0.1, 1.5}).status().field(), "p_values");
  EXPECT_FALSE(benjamini_hochberg_adjust({-0.1}).is_ok());
  auto none = adjust_p_values({0.2, 0.01}, Correction::kNone);
  ASSERT_TRUE(none.is_ok());
  EXPECT_EQ(*none, (std::vector<double>{0.2, 0.01}));
}

}  // namespace
}  // namespace fulcrum::stats
