#include "stats/analysis.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "stats/analysis_json.h"
#include "stats/cuped.h"
#include "stats/multiple_testing.h"
#include "stats/sequential.h"

namespace fulcrum::stats {
namespace {

using nlohmann::json;

json example_input() {
  return json::parse(R"({
    "control": "control",
    "allocation": {"control": 0.5, "variant": 0.5},
    "alpha": 0.05,
    "days_elapsed": 10,
    "metrics": [
      {"name": "conversion_rate", "type": "binomial",
       "groups": {"control": {"n": 10000, "sum": 1000},
                  "variant": {"n": 10050, "sum": 1150}}},
      {"name": "revenue_per_user", "type": "continuous",
       "groups": {"control": {"n": 10000, "sum": 250000, "sum_squares": 15250000,
                              "pre_sum": 240000, "pre_sum_squares": 14000000,
                              "pre_cross_sum": 13500000},
                  "variant": {"n": 10050, "sum": 253000, "sum_squares": 15400000,
                              "pre_sum": 241000, "pre_sum_squares": 14050000,
                              "pre_cross_sum": 13560000}}},
      {"name": "revenue_per_session", "type": "ratio",
       "groups": {"control": {"n": 10000, "sum": 250000, "sum_squares": 15250000,
                              "denominator_sum": 30000, "denominator_sum_squares": 120000,
                              "ratio_cross_sum": 900000},
                  "variant": {"n": 10050, "sum": 253000, "sum_squares": 15400000,
                              "denominator_sum": 30500, "denominator_sum_squares": 123000,
                              "ratio_cross_sum": 915000}}}
    ]})");
}

AnalysisOutput run(const json& document) {
  auto input = analysis_input_from_json(document);
  EXPECT_TRUE(input.is_ok()) << input.status().to_string();
  auto output = analyze(*input);
  EXPECT_TRUE(output.is_ok()) << output.status().to_string();
  return *output;
}

TEST(Analysis, EachMetricUsesItsTestAndAdjustsAcrossTheFamily) {
  const AnalysisOutput output = run(example_input());
  ASSERT_EQ(output.metrics.size(), 3u);
  // Binomial: identical to compare_proportions.
  auto direct = compare_proportions({10000, 1000, 1000}, {10050, 1150, 1150}, 0.05);
  ASSERT_TRUE(direct.is_ok());
  const TreatmentResult& conversion = *output.metrics[0].groups[1].vs_control;
  EXPECT_EQ(output.metrics[0].groups[0].name, "control");
  EXPECT_DOUBLE_EQ(conversion.p_value, direct->absolute.p_value);
  EXPECT_DOUBLE_EQ(conversion.relative->ci.lower, direct->relative->ci.lower);
  // Continuous with pre-period sums: CUPED applied, same as compare_cuped.
  EXPECT_TRUE(output.metrics[1].cuped_applied);
  auto cuped = compare_cuped({{10000, 250000, 15250000}, 240000, 14000000, 13500000},
                             {{10050, 253000, 15400000}, 241000, 14050000, 13560000}, 0.05);
  ASSERT_TRUE(cuped.is_ok());
  EXPECT_DOUBLE_EQ(output.metrics[1].groups[1].vs_control->absolute.estimate,
                   cuped->absolute.estimate);
  // Holm over the three comparisons.
  std::vector<double> raw;
  for (const MetricResult& metric : output.metrics) {
    raw.push_back(metric.groups[1].vs_control->p_value);
  }
  auto holm = holm_adjust(raw);
  ASSERT_TRUE(holm.is_ok());
  for (size_t m = 0; m < 3; ++m) {
    const TreatmentResult& t = *output.metrics[m].groups[1].vs_control;
    EXPECT_DOUBLE_EQ(t.adjusted_p_value, (*holm)[m]);
    EXPECT_EQ(t.significant, t.adjusted_p_value < 0.05);
  }
  EXPECT_FALSE(output.srm.mismatch);
  // 10% -> 11.44%: significant, the variant wins and should ship.
  ASSERT_TRUE(conversion.significant);
  EXPECT_GT(conversion.chance_to_beat_control, 0.99);
  ASSERT_TRUE(output.winner.has_value());
  EXPECT_EQ(*output.winner, "variant");
  EXPECT_EQ(output.recommendation.action, Action::kShip);
  EXPECT_NE(output.recommendation.text.find("Ship variant"), std::string::npos);
}

TEST(Analysis, UnderpoweredTestKeepsRunningWithDaysNeeded) {
  json document = example_input();
  document["metrics"] = json::array({document["metrics"][0]});
  document["metrics"][0]["groups"] = {{"control", {{"n", 1000}, {"sum", 100}}},
                                      {"variant", {{"n", 1000}, {"sum", 104}}}};
  document["target_mde"] = 0.1;  // detect a 10% relative lift on the 10% baseline
  const AnalysisOutput output = run(document);
  EXPECT_EQ(output.recommendation.action, Action::kKeepRunning);
  // 0.10 -> 0.11 needs 14,745 users per group at 80% power (Cohen's h 0.03247):
  // 13,745 more at 100 per group per day = 138 days.
  ASSERT_TRUE(output.recommendation.additional_users_per_group.has_value());
  EXPECT_EQ(*output.recommendation.additional_users_per_group, 13745);
  ASSERT_TRUE(output.recommendation.days_needed.has_value());
  EXPECT_EQ(*output.recommendation.days_needed, 138);
  EXPECT_FALSE(output.winner.has_value());
}

TEST(Analysis, PoweredNullResultSaysStop) {
  // 60,000 per group exceeds the 57,756 needed for a 5% relative lift on 10% (statsmodels).
  json document = example_input();
  document["metrics"] = json::array({document["metrics"][0]});
  document["metrics"][0]["groups"] = {{"control", {{"n", 60000}, {"sum", 6000}}},
                                      {"variant", {{"n", 60000}, {"sum", 6010}}}};
  const AnalysisOutput output = run(document);
  EXPECT_EQ(output.recommendation.action, Action::kStop);
  EXPECT_NE(output.recommendation.text.find("no meaningful difference"), std::string::npos);
}

TEST(Analysis, HarmfulVariantSaysStopAndControlWins) {
  json document = example_input();
  document["metrics"] = json::array({document["metrics"][0]});
  document["metrics"][0]["groups"]["variant"]["sum"] = 800;
  const AnalysisOutput output = run(document);
  EXPECT_EQ(output.recommendation.action, Action::kStop);
  ASSERT_TRUE(output.winner.has_value());
  EXPECT_EQ(*output.winner, "control");
}

TEST(Analysis, LowerIsBetterFlipsTheChanceToBeatControl) {
  json document = example_input();
  document["metrics"] = json::array({document["metrics"][0]});
  document["metrics"][0]["higher_is_better"] = false;
  const AnalysisOutput output = run(document);
  const TreatmentResult& t = *output.metrics[0].groups[1].vs_control;
  EXPECT_LT(t.chance_to_beat_control, 0.01);
  EXPECT_EQ(output.recommendation.action, Action::kStop);  // significantly worse
}

TEST(Analysis, SampleRatioMismatchOverridesTheRecommendation) {
  json document = example_input();
  document["metrics"][0]["groups"]["variant"]["n"] = 11000;
  document["metrics"][0]["groups"]["variant"]["sum"] = 1259;
  const AnalysisOutput output = run(document);
  EXPECT_TRUE(output.srm.mismatch);
  EXPECT_EQ(output.recommendation.action, Action::kStop);
  EXPECT_NE(output.recommendation.text.find("sample ratio mismatch"), std::string::npos);
}

TEST(Analysis, SequentialModeUsesAlwaysValidIntervals) {
  json document = example_input();
  document["sequential"] = true;
  const AnalysisOutput fixed = run(example_input());
  const AnalysisOutput sequential = run(document);
  const TreatmentResult& f = *fixed.metrics[0].groups[1].vs_control;
  const TreatmentResult& s = *sequential.metrics[0].groups[1].vs_control;
  auto expected = sequential_test(f.absolute, 20050, 0.05);
  ASSERT_TRUE(expected.is_ok());
  EXPECT_DOUBLE_EQ(s.absolute.ci.lower, expected->ci.lower);
  EXPECT_DOUBLE_EQ(s.p_value, expected->p_value);
  EXPECT_GT(s.p_value, f.p_value);
}

TEST(Analysis, OutputJsonCarriesTheContractFields) {
  const json out = analysis_output_to_json(run(example_input()));
  const json& variant = out["metrics"][0]["groups"]["variant"];
  for (const char* key : {"mean", "p_value", "adjusted_p_value", "significant",
                          "statistical_significance", "chance_to_beat_control", "lift"}) {
    EXPECT_TRUE(variant.contains(key)) << key;
  }
  // One meaning of statistical_significance everywhere: 1 - adjusted p; the control 0.
  EXPECT_DOUBLE_EQ(variant["statistical_significance"].get<double>(),
                   1.0 - variant["adjusted_p_value"].get<double>());
  const json& control = out["metrics"][0]["groups"]["control"];
  EXPECT_DOUBLE_EQ(control["statistical_significance"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(control["p_value"].get<double>(), 1.0);
  EXPECT_EQ(variant["lift"]["absolute"]["ci"].size(), 2u);
  EXPECT_TRUE(variant["lift"]["absolute"]["df"].is_null());  // z-test: infinite df
  EXPECT_EQ(out["winner"], "variant");
  EXPECT_EQ(out["recommendation"]["action"], "ship");
  EXPECT_EQ(out["srm"]["observed"]["variant"], 10050);
  EXPECT_EQ(out["correction"], "holm");
}

struct BadInputCase {
  std::string patch;  // JSON merge patch applied to example_input()
  std::string field;
};

class AnalysisBadInput : public ::testing::TestWithParam<BadInputCase> {};

TEST_P(AnalysisBadInput, NamesTheField) {
  json document = example_input();
  document.merge_patch(json::parse(GetParam().patch));
  auto input = analysis_input_from_json(document);
  Status status = input.status();
  if (input.is_ok()) {
    auto output = analyze(*input);
    ASSERT_FALSE(output.is_ok()) << GetParam().patch;
    status = output.status();
  }
  EXPECT_EQ(status.field(), GetParam().field) << status.to_string();
}

INSTANTIATE_TEST_SUITE_P(
    Fields, AnalysisBadInput,
    ::testing::Values(
        BadInputCase{R"({"alpha": 2})", "alpha"}, BadInputCase{R"({"alpha": "x"})", "alpha"},
        BadInputCase{R"({"alpah": 0.1})", "alpah"},
        BadInputCase{R"({"correction": "bonferroni"})", "correction"},
        BadInputCase{R"({"metrics": []})", "metrics"},
        BadInputCase{R"({"allocation": {"variant": null}})", "allocation.variant"},
        BadInputCase{R"({"allocation": {"control": -1, "variant": 1}})", "allocation.control"},
        BadInputCase{R"({"control": "baseline"})", "metrics[0].groups.baseline"},
        BadInputCase{R"({"days_elapsed": 0})", "days_elapsed"},
        BadInputCase{R"({"prior": {"proper": true, "variance": 0}})", "prior.variance"}));

TEST(AnalysisBadGroupInput, NamesTheNestedField) {
  auto field_for = [](auto mutate) {
    json document = example_input();
    mutate(document);
    auto input = analysis_input_from_json(document);
    if (!input.is_ok()) return input.status().field();
    auto output = analyze(*input);
    return output.is_ok() ? std::string("(accepted)") : output.status().field();
  };
  EXPECT_EQ(field_for([](json& d) { d["metrics"][0]["groups"]["variant"]["sum"] = 20000; }),
            "metrics[0].groups.variant.sum");
  EXPECT_EQ(field_for([](json& d) { d["metrics"][0]["groups"]["variant"]["n"] = 1.5; }),
            "metrics[0].groups.variant.n");
  EXPECT_EQ(field_for([](json& d) { d["metrics"][0]["groups"]["variant"].erase("sum"); }),
            "metrics[0].groups.variant.sum");
  EXPECT_EQ(field_for([](json& d) { d["metrics"][1]["groups"]["control"]["sum_squares"] = 1; }),
            "metrics[1].groups.control.sum_squares");
  EXPECT_EQ(field_for([](json& d) { d["metrics"][1]["groups"]["control"].erase("pre_sum"); }),
            "metrics[1].groups.control.pre_sum");
  EXPECT_EQ(field_for([](json& d) { d["metrics"][2]["groups"]["variant"]["denominator_sum"] = 0; }),
            "metrics[2].groups.variant.denominator_sum");
  EXPECT_EQ(field_for([](json& d) { d["metrics"][0]["type"] = "poisson"; }), "metrics[0].type");
  EXPECT_EQ(field_for([](json& d) { d["metrics"][0]["groups"].erase("variant"); }),
            "metrics[0].groups");
}

TEST(AnalysisJson, MalformedTextIsAnError) {
  auto input = parse_analysis_input("{\"metrics\": [");
  ASSERT_FALSE(input.is_ok());
  EXPECT_NE(input.status().message().find("not valid JSON"), std::string::npos);
}

}  // namespace
}  // namespace fulcrum::stats
