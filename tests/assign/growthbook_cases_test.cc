// Runs the published GrowthBook SDK cases (growthbook_cases.json) through fulcrum_assign so
// that assignments agree with the open SDKs.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "assign/assigner.h"
#include "assign/buckets.h"
#include "assign/condition.h"
#include "assign/hash.h"
#include "assign/version.h"

namespace fulcrum::assign {
namespace {

using json = nlohmann::json;

const json& cases() {
  static const json data = [] {
    std::ifstream in(std::string(FULCRUM_SOURCE_DIR) + "/tests/assign/growthbook_cases.json");
    return json::parse(in);
  }();
  return data;
}

std::vector<VariationRange> to_ranges(const json& j) {
  std::vector<VariationRange> out;
  for (const auto& r : j) out.push_back({r[0].get<double>(), r[1].get<double>()});
  return out;
}

TEST(GrowthBookCases, FileLoaded) {
  ASSERT_GE(cases().at("hash").size(), 15u);
  ASSERT_GE(cases().at("evalCondition").size(), 100u);
}

TEST(GrowthBookCases, Hash) {
  for (const auto& c : cases().at("hash")) {
    const auto got = hash(c[0].get<std::string>(), c[1].get<std::string>(), c[2].get<int>());
    if (c[3].is_null()) {
      EXPECT_FALSE(got.has_value()) << c.dump();
    } else {
      ASSERT_TRUE(got.has_value()) << c.dump();
      EXPECT_DOUBLE_EQ(*got, c[3].get<double>()) << c.dump();
    }
  }
}

TEST(GrowthBookCases, GetBucketRange) {
  for (const auto& c : cases().at("getBucketRange")) {
    const auto& args = c[1];
    std::vector<double> weights;
    if (!args[2].is_null()) weights = args[2].get<std::vector<double>>();
    const auto got = get_bucket_ranges(args[0].get<int>(), args[1].get<double>(), weights);
    const auto want = to_ranges(c[2]);
    ASSERT_EQ(got.size(), want.size()) << c[0];
    for (std::size_t i = 0; i < got.size(); ++i) {
      // The SDK suite rounds to 6 decimals before comparing (floating sums like 0.2+0.3).
      EXPECT_NEAR(got[i].start, want[i].start, 1e-6) << c[0] << " range " << i;
      EXPECT_NEAR(got[i].end, want[i].end, 1e-6) << c[0] << " range " << i;
    }
  }
}

TEST(GrowthBookCases, ChooseVariation) {
  for (const auto& c : cases().at("chooseVariation")) {
    EXPECT_EQ(choose_variation(c[1].get<double>(), to_ranges(c[2])), c[3].get<int>()) << c[0];
  }
}

TEST(GrowthBookCases, InNamespace) {
  for (const auto& c : cases().at("inNamespace")) {
    const Namespace ns{c[2][0].get<std::string>(), c[2][1].get<double>(), c[2][2].get<double>()};
    EXPECT_EQ(in_namespace(c[1].get<std::string>(), ns), c[3].get<bool>()) << c[0];
  }
}

TEST(GrowthBookCases, GetEqualWeights) {
  for (const auto& c : cases().at("getEqualWeights")) {
    const auto got = get_equal_weights(c[0].get<int>());
    const auto want = c[1].get<std::vector<double>>();
    ASSERT_EQ(got.size(), want.size());
    for (std::size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-8);
  }
}

TEST(GrowthBookCases, VersionCompare) {
  const auto& vc = cases().at("versionCompare");
  for (const auto& c : vc.at("lt")) {
    EXPECT_EQ(compare_versions(c[0].get<std::string>(), c[1].get<std::string>()) < 0,
              c[2].get<bool>())
        << c.dump();
  }
  for (const auto& c : vc.at("gt")) {
    EXPECT_EQ(compare_versions(c[0].get<std::string>(), c[1].get<std::string>()) > 0,
              c[2].get<bool>())
        << c.dump();
  }
  for (const auto& c : vc.at("eq")) {
    EXPECT_EQ(compare_versions(c[0].get<std::string>(), c[1].get<std::string>()) == 0,
              c[2].get<bool>())
        << c.dump();
  }
}

// The SDK's run(): seed defaults to the key, hash version to 1, weights to equal, coverage
// to 1. Expected variation is the value (variations are [0, 1, ...]); not-in-experiment
// cases must come out as -1.
TEST(GrowthBookCases, RunExperiment) {
  for (const auto& c : cases().at("run")) {
    const auto& exp = c[2];
    const std::string user = c[1]["attributes"]["id"].get<std::string>();
    Allocation alloc;
    const auto n = exp["variations"].size();
    for (std::size_t i = 0; i < n; ++i) alloc.groups.push_back("v" + std::to_string(i));
    alloc.weights = exp.contains("weights") ? exp["weights"].get<std::vector<double>>()
                                            : get_equal_weights(static_cast<int>(n));
    const double coverage = exp.value("coverage", 1.0);
    alloc.coverage = coverage;
    std::optional<Namespace> ns;
    if (exp.contains("namespace")) {
      ns = Namespace{exp["namespace"][0].get<std::string>(), exp["namespace"][1].get<double>(),
                     exp["namespace"][2].get<double>()};
    }
    auto assigner = Assigner::create(exp.value("seed", exp["key"].get<std::string>()), alloc, ns,
                                     exp.value("hashVersion", 1));
    ASSERT_TRUE(assigner.is_ok()) << c[0] << ": " << assigner.status().to_string();
    const int got = assigner->assign(user);
    const bool in_experiment = c[4].get<bool>();
    if (in_experiment) {
      EXPECT_EQ(got, c[3].get<int>()) << c[0];
    } else {
      EXPECT_EQ(got, -1) << c[0];
    }
  }
}

TEST(GrowthBookCases, EvalCondition) {
  for (const auto& c : cases().at("evalCondition")) {
    EXPECT_EQ(eval_condition(c[2], c[1]), c[3].get<bool>()) << c[0];
  }
}

}  // namespace
}  // namespace fulcrum::assign
