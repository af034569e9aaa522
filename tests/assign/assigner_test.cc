#include "assign/assigner.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>

#include "assign/hash.h"

namespace fulcrum::assign {
namespace {

Allocation two_way(double control = 0.5, double variant = 0.5) {
  return {{"control", "variant"}, {control, variant}, 1.0};
}

TEST(Hash, Fnv1aKnownVectors) {
  // Reference values of 32-bit FNV-1a (Fowler/Noll/Vo test suite).
  EXPECT_EQ(fnv1a32(""), 0x811c9dc5u);
  EXPECT_EQ(fnv1a32("a"), 0xe40c292cu);
  EXPECT_EQ(fnv1a32("foobar"), 0xbf9cf968u);
}

TEST(Hash, StreamingEqualsConcatenation) {
  EXPECT_EQ(fnv1a32_append(fnv1a32("seed"), "user_42"), fnv1a32("seeduser_42"));
}

TEST(Hash, NonAsciiUsesUtf16CodeUnitsLikeJavaScript) {
  // "é" is one UTF-16 unit 0xE9: one FNV step with 0xE9, not two with the UTF-8 bytes.
  const std::uint32_t expected = (kFnvOffsetBasis ^ 0xE9u) * kFnvPrime;
  EXPECT_EQ(fnv1a32("\xC3\xA9"), expected);
  // U+1F600 is the surrogate pair D83D DE00.
  const std::uint32_t pair = (((kFnvOffsetBasis ^ 0xD83Du) * kFnvPrime) ^ 0xDE00u) * kFnvPrime;
  EXPECT_EQ(fnv1a32("\xF0\x9F\x98\x80"), pair);
}

TEST(Allocation, ValidAllocationPasses) { EXPECT_TRUE(validate_allocation(two_way()).is_ok()); }

TEST(Allocation, ErrorsNameTheField) {
  auto status = validate_allocation(two_way(0.5, 1.5));
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(status.field(), "traffic_allocation.variant");

  status = validate_allocation(two_way(-0.1, 1.1));
  EXPECT_EQ(status.field(), "traffic_allocation.control");

  status = validate_allocation(two_way(0.5, 0.4));
  EXPECT_EQ(status.field(), "traffic_allocation");
  EXPECT_NE(status.message().find("sum to 1"), std::string::npos);

  status = validate_allocation({{"control"}, {1.0}, 1.0});
  EXPECT_EQ(status.field(), "traffic_allocation");
  EXPECT_NE(status.message().find("two groups"), std::string::npos);

  status = validate_allocation({{"a", "a"}, {0.5, 0.5}, 1.0});
  EXPECT_EQ(status.field(), "traffic_allocation.a");

  Allocation zero_coverage = two_way();
  zero_coverage.coverage = 0;
  EXPECT_EQ(validate_allocation(zero_coverage).field(), "coverage");
  zero_coverage.coverage = 1.01;
  EXPECT_EQ(validate_allocation(zero_coverage).field(), "coverage");
}

TEST(Allocation, SumToleranceIsOneMillionth) {
  EXPECT_TRUE(validate_allocation(two_way(0.5, 0.5000005)).is_ok());
  EXPECT_FALSE(validate_allocation(two_way(0.5, 0.50001)).is_ok());
}

TEST(Assigner, RejectsBadNamespaceAndHashVersion) {
  EXPECT_EQ(Assigner::create("s", two_way(), Namespace{"ns", 0.5, 0.2}).status().field(),
            "namespace.range");
  EXPECT_EQ(Assigner::create("s", two_way(), std::nullopt, 3).status().field(), "hash_version");
}

TEST(Assigner, DeterministicAndMatchesFreeFunctions) {
  auto a = Assigner::create("exp_checkout", two_way());
  auto b = Assigner::create("exp_checkout", two_way());
  ASSERT_TRUE(a.is_ok());
  for (int i = 0; i < 1000; ++i) {
    const std::string user = "user_" + std::to_string(i);
    const int first = a->assign(user);
    EXPECT_EQ(first, a->assign(user));
    EXPECT_EQ(first, b->assign(user));
    const double bucket = *hash("exp_checkout", user, 2);
    EXPECT_DOUBLE_EQ(a->bucket(user), bucket);
    EXPECT_EQ(first, choose_variation(bucket, get_bucket_ranges(2, 1.0)));
  }
  EXPECT_EQ(a->assign(""), -1);
}

TEST(Assigner, NewSeedReshufflesUsers) {
  auto phase0 = Assigner::create("exp_x", two_way());
  auto phase1 = Assigner::create("exp_x:phase1", two_way());
  int moved = 0;
  for (int i = 0; i < 10000; ++i) {
    const std::string user = "u" + std::to_string(i);
    moved += phase0->assign(user) != phase1->assign(user);
  }
  // Independent 50/50 splits disagree for about half the users.
  EXPECT_NEAR(moved / 10000.0, 0.5, 0.03);
}

// Chi-square goodness of fit of 100k users against the configured weights. Critical values
// (alpha = 0.001): 13.82 for 2 df, 10.83 for 1 df.
double chi_square(const std::vector<int>& observed, const std::vector<double>& expected_share,
                  int total) {
  double chi2 = 0;
  for (std::size_t i = 0; i < observed.size(); ++i) {
    const double expected = expected_share[i] * total;
    chi2 += (observed[i] - expected) * (observed[i] - expected) / expected;
  }
  return chi2;
}

TEST(Assigner, DistributionMatchesWeights) {
  Allocation three{{"control", "nudge_a", "nudge_b"}, {0.2, 0.3, 0.5}, 1.0};
  auto assigner = Assigner::create("exp_distribution", three);
  ASSERT_TRUE(assigner.is_ok());
  std::vector<int> counts(3, 0);
  constexpr int kUsers = 100000;
  for (int i = 0; i < kUsers; ++i) {
    const int v = assigner->assign("user_" + std::to_string(i));
    ASSERT_GE(v, 0);
    ++counts[v];
  }
  EXPECT_LT(chi_square(counts, {0.2, 0.3, 0.5}, kUsers), 13.82)
      << counts[0] << " " << counts[1] << " " << counts[2];
}

TEST(Assigner, CoverageLimitsShareInExperiment) {
  Allocation half = two_way();
  half.coverage = 0.3;
  auto assigner = Assigner::create("exp_coverage", half);
  constexpr int kUsers = 100000;
  std::vector<int> counts(2, 0);
  int out = 0;
  for (int i = 0; i < kUsers; ++i) {
    const int v = assigner->assign("user_" + std::to_string(i));
    if (v < 0) {
      ++out;
    } else {
      ++counts[v];
    }
  }
  EXPECT_LT(chi_square({kUsers - out, out}, {0.3, 0.7}, kUsers), 10.83);
  EXPECT_LT(chi_square(counts, {0.5, 0.5}, kUsers - out), 10.83);
}

TEST(Assigner, DisjointNamespaceSlicesNeverShareUsers) {
  auto left = Assigner::create("exp_left", two_way(), Namespace{"checkout", 0.0, 0.5});
  auto right = Assigner::create("exp_right", two_way(), Namespace{"checkout", 0.5, 1.0});
  int in_left = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::string user = "user_" + std::to_string(i);
    const bool l = left->assign(user) >= 0, r = right->assign(user) >= 0;
    EXPECT_FALSE(l && r) << user;
    EXPECT_TRUE(l || r) << user;
    in_left += l;
  }
  EXPECT_NEAR(in_left / 20000.0, 0.5, 0.02);
}

}  // namespace
}  // namespace fulcrum::assign
