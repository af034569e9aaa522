// Slice tables (AnalysisInput::slices): top values plus "other", the correction across the
// slices of an attribute, and the field-naming errors.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "stats/analysis.h"
#include "stats/analysis_json.h"
#include "stats/multiple_testing.h"

namespace fulcrum::stats {
namespace {

using nlohmann::json;

json slice_input() {
  // Seven countries; only "de" has a real effect (10% -> 14%).
  json values = json::object();
  const char* countries[] = {"de", "fr", "it", "es", "nl", "pl", "pt"};
  const int users[] = {4000, 3000, 2500, 800, 300, 200, 100};
  for (int c = 0; c < 7; ++c) {
    const int n = users[c];
    values[countries[c]] = {{"control", {{"n", n}, {"sum", n / 10}}},
                            {"variant", {{"n", n}, {"sum", c == 0 ? n * 14 / 100 : n / 10 + 1}}}};
  }
  return {{"metrics",
           {{{"name", "conversion"},
             {"groups",
              {{"control", {{"n", 10900}, {"sum", 1090}}},
               {"variant", {{"n", 10900}, {"sum", 1260}}}}}}}},
          {"slices", {{{"attribute", "country"}, {"top", 3}, {"values", values}}}}};
}

TEST(Slices, TopValuesPlusOtherWithTheCorrectionAcrossSlices) {
  auto input = analysis_input_from_json(slice_input());
  ASSERT_TRUE(input.is_ok()) << input.status().message();
  auto output = analyze(*input);
  ASSERT_TRUE(output.is_ok()) << output.status().message();
  ASSERT_EQ(output->slices.size(), 1u);
  const auto& table = output->slices[0];
  EXPECT_EQ(table.attribute, "country");
  ASSERT_EQ(table.slices.size(), 4u);
  EXPECT_EQ(table.slices[0].value, "de");
  EXPECT_EQ(table.slices[1].value, "fr");
  EXPECT_EQ(table.slices[2].value, "it");
  EXPECT_EQ(table.slices[3].value, "other");
  EXPECT_EQ(table.slices[3].users, 2 * (800 + 300 + 200 + 100));
  EXPECT_EQ(table.slices[3].groups[0].n, 1400);
  // "other" sums the merged countries' conversions: 80 + 30 + 20 + 10.
  EXPECT_DOUBLE_EQ(table.slices[3].groups[0].mean, 140.0 / 1400);
  std::vector<double> raw;
  for (const auto& slice : table.slices) raw.push_back(slice.groups[1].vs_control->p_value);
  auto holm = adjust_p_values(raw, Correction::kHolm);
  ASSERT_TRUE(holm.is_ok());
  for (size_t i = 0; i < raw.size(); ++i) {
    EXPECT_DOUBLE_EQ(table.slices[i].groups[1].vs_control->adjusted_p_value, (*holm)[i]);
  }
  EXPECT_TRUE(table.slices[0].groups[1].vs_control->significant);
  EXPECT_FALSE(table.slices[1].groups[1].vs_control->significant);
  const json out = analysis_output_to_json(*output);
  EXPECT_EQ(out["slices"][0]["slices"][3]["value"], "other");
  EXPECT_TRUE(out["slices"][0]["slices"][0]["groups"]["variant"]["significant"].get<bool>());
}

// A value literally named "other" is a slice of its own; the merged rest is told apart by
// its `other` flag, not by its name.
TEST(Slices, AValueNamedOtherDoesNotCollideWithTheMergedRest) {
  json doc = slice_input();
  json values = doc["slices"][0]["values"];
  values["other"] = values["de"];  // ranks first with "de" (ties by name: "de" < "other")
  values.erase("de");
  doc["slices"][0]["values"] = values;
  auto input = analysis_input_from_json(doc);
  ASSERT_TRUE(input.is_ok()) << input.status().message();
  auto output = analyze(*input);
  ASSERT_TRUE(output.is_ok()) << output.status().message();
  const auto& slices = output->slices[0].slices;
  ASSERT_EQ(slices.size(), 4u);
  EXPECT_EQ(slices[0].value, "other");
  EXPECT_FALSE(slices[0].other);
  EXPECT_EQ(slices[0].users, 8000);
  EXPECT_EQ(slices[3].value, "other");
  EXPECT_TRUE(slices[3].other);
  EXPECT_EQ(slices[3].users, 2800);
  const json out = analysis_output_to_json(*output);
  EXPECT_FALSE(out["slices"][0]["slices"][0]["other"].get<bool>());
  EXPECT_TRUE(out["slices"][0]["slices"][3]["other"].get<bool>());
  EXPECT_TRUE(out["slices"][0]["slices"][0]["tested"].get<bool>());
}

// merge_untestable: a value missing a group, or with a group of fewer than 2 users, goes to
// "other" whatever its rank; an "other" still too small is reported untested.
TEST(Slices, UntestableValuesMergeIntoOtherWhenAsked) {
  json doc = slice_input();
  doc["slices"][0]["values"]["fr"].erase("control");     // 2nd by users
  doc["slices"][0]["values"]["it"]["variant"]["n"] = 1;  // 3rd: one user
  doc["slices"][0]["values"]["it"]["variant"]["sum"] = 0;
  doc["slices"][0]["merge_untestable"] = true;
  auto input = analysis_input_from_json(doc);
  ASSERT_TRUE(input.is_ok()) << input.status().message();
  auto output = analyze(*input);
  ASSERT_TRUE(output.is_ok()) << output.status().message();
  const auto& slices = output->slices[0].slices;
  ASSERT_EQ(slices.size(), 4u);
  EXPECT_EQ(slices[0].value, "de");
  EXPECT_EQ(slices[1].value, "es");
  EXPECT_EQ(slices[2].value, "nl");
  EXPECT_TRUE(slices[3].other);
  // fr's variant alone, it's 2500 + 1, pl and pt.
  EXPECT_EQ(slices[3].users, 3000 + 2501 + 2 * (200 + 100));
  EXPECT_TRUE(slices[3].tested);

  // Every value untestable and the rest without a control: reported, not tested.
  json tiny = slice_input();
  for (auto& [value, groups] : tiny["slices"][0]["values"].items()) groups.erase("control");
  tiny["slices"][0]["merge_untestable"] = true;
  auto tiny_input = analysis_input_from_json(tiny);
  ASSERT_TRUE(tiny_input.is_ok());
  auto tiny_output = analyze(*tiny_input);
  ASSERT_TRUE(tiny_output.is_ok()) << tiny_output.status().message();
  ASSERT_EQ(tiny_output->slices[0].slices.size(), 1u);
  EXPECT_TRUE(tiny_output->slices[0].slices[0].other);
  EXPECT_FALSE(tiny_output->slices[0].slices[0].tested);
  EXPECT_EQ(tiny_output->slices[0].slices[0].users, 10900);
  EXPECT_TRUE(tiny_output->slices[0].slices[0].groups.empty());
}

TEST(Slices, BadSlicesNameTheField) {
  json doc = slice_input();
  doc["slices"][0]["top"] = 0;
  EXPECT_EQ(analysis_input_from_json(doc).status().field(), "slices[0].top");
  doc = slice_input();
  doc["slices"][0]["values"]["de"]["variant"].erase("sum");
  EXPECT_EQ(analysis_input_from_json(doc).status().field(), "slices[0].values.de.variant.sum");
  doc = slice_input();
  doc["slices"][0]["values"]["fr"].erase("control");
  auto input = analysis_input_from_json(doc);
  ASSERT_TRUE(input.is_ok());
  auto output = analyze(*input);
  ASSERT_FALSE(output.is_ok());
  EXPECT_EQ(output.status().field(), "slices[0].values.fr");
}

}  // namespace
}  // namespace fulcrum::stats

namespace fulcrum::stats {
namespace {

// The gbstats post-stratification strata (see post_stratification_test.cc) as an analyze
// input: a continuous primary metric whose slice attribute is post-stratified.
nlohmann::json post_stratified_input() {
  const double strata[5][6] = {
      {21, 330.0696210595999, 5377.811252605509, 42, 708.1220000911836, 12249.255519049513},
      {65, 1391.96628040659, 30546.63404187155, 75, 1807.4703052657744, 45000.287664918586},
      {102, 2916.824124651419, 86396.06886690554, 101, 3104.5399914554023, 98365.40553530994},
      {151, 5172.587929941052, 182453.04528037464, 121, 4613.696610070716, 180520.64781229294},
      {160, 6539.348445231273, 274981.98909352464, 162, 7431.953259880505, 349244.6690736718}};
  nlohmann::json values = nlohmann::json::object();
  double totals[6] = {0, 0, 0, 0, 0, 0};
  for (int k = 0; k < 5; ++k) {
    values["browser_" + std::to_string(k)] = {
        {"control",
         {{"n", static_cast<int>(strata[k][0])}, {"sum", strata[k][1]}, {"sum_squares", strata[k][2]}}},
        {"variant",
         {{"n", static_cast<int>(strata[k][3])}, {"sum", strata[k][4]}, {"sum_squares", strata[k][5]}}}};
    for (int i = 0; i < 6; ++i) totals[i] += strata[k][i];
  }
  return {{"metrics",
           {{{"name", "revenue"},
             {"type", "continuous"},
             {"groups",
              {{"control",
                {{"n", static_cast<int>(totals[0])}, {"sum", totals[1]}, {"sum_squares", totals[2]}}},
               {"variant",
                {{"n", static_cast<int>(totals[3])}, {"sum", totals[4]}, {"sum_squares", totals[5]}}}}}}}},
          {"slices",
           {{{"attribute", "browser"}, {"top", 2}, {"post_stratify", true}, {"values", values}}}}};
}

TEST(Slices, PostStratifiedByASliceAttributeMatchesGbstats) {
  auto input = analysis_input_from_json(post_stratified_input());
  ASSERT_TRUE(input.is_ok()) << input.status().message();
  auto output = analyze(*input);
  ASSERT_TRUE(output.is_ok()) << output.status().message();
  const auto& table = output->slices.at(0);
  ASSERT_TRUE(table.post_stratification.has_value());
  EXPECT_EQ(table.post_stratification->strata_used, 5u);  // every value, not only the top 2
  ASSERT_EQ(table.post_stratification->treatments.size(), 1u);
  const auto& row = table.post_stratification->treatments[0];
  EXPECT_EQ(row.group, "variant");
  // gbstats test_post_strat.py: point_estimate_count_abs/rel, standard_error_count_abs/rel.
  EXPECT_NEAR(row.absolute.estimate, 3.548094377986586, 1e-9);
  EXPECT_NEAR(row.absolute.standard_error, 0.37634374823059685, 1e-9);
  ASSERT_TRUE(row.relative.has_value());
  EXPECT_NEAR(row.relative->estimate, 0.10994584851937336, 1e-11);
  EXPECT_NEAR(row.relative->standard_error, 0.012225394656480164, 1e-11);
  // The plain comparison of the same users is the metric's own result.
  EXPECT_DOUBLE_EQ(row.unstratified_standard_error,
                   output->metrics[0].groups[1].vs_control->absolute.standard_error);
  EXPECT_GT(row.variance_reduction, 0.0);
  const nlohmann::json out = analysis_output_to_json(*output);
  const auto& reported = out["slices"][0]["post_stratification"];
  EXPECT_EQ(reported["strata_used"], 5);
  EXPECT_NEAR(reported["treatments"][0]["absolute"]["estimate"].get<double>(), 3.548094377986586,
              1e-9);
  EXPECT_GT(reported["treatments"][0]["variance_reduction"].get<double>(), 0.0);
}

TEST(Slices, BadPostStratificationNamesTheField) {
  nlohmann::json not_bool = post_stratified_input();
  not_bool["slices"][0]["post_stratify"] = "yes";
  auto parsed = analysis_input_from_json(not_bool);
  ASSERT_FALSE(parsed.is_ok());
  EXPECT_EQ(parsed.status().field(), "slices[0].post_stratify");

  // A ratio primary metric: every group (and slice) gets a denominator per user.
  nlohmann::json ratio = post_stratified_input();
  ratio["metrics"][0]["type"] = "ratio";
  auto with_denominator = [](nlohmann::json& group) {
    const double n = group["n"].get<int>();
    group["denominator_sum"] = 2 * n;
    group["denominator_sum_squares"] = 5 * n;
    group["ratio_cross_sum"] = 2 * group["sum"].get<double>();
  };
  for (auto& [name, group] : ratio["metrics"][0]["groups"].items()) with_denominator(group);
  for (auto& [value, groups] : ratio["slices"][0]["values"].items()) {
    for (auto& [name, group] : groups.items()) with_denominator(group);
  }
  auto input = analysis_input_from_json(ratio);
  ASSERT_TRUE(input.is_ok()) << input.status().message();
  auto output = analyze(*input);
  ASSERT_FALSE(output.is_ok());
  EXPECT_EQ(output.status().field(), "slices[0].post_stratify");
}

}  // namespace
}  // namespace fulcrum::stats
