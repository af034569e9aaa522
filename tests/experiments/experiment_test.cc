#include "experiments/experiment.h"

#include <gtest/gtest.h>

namespace fulcrum::experiments {
namespace {

using json = nlohmann::json;

json contract_request() {
  return json::parse(R"({
    "test_name": "Feature UI Test", "feature_name": "account_linking",
    "description": "Testing new UI for account linking",
    "hypothesis": "New UI will improve conversion rate by 20%",
    "success_metrics": ["conversion_rate", "revenue_per_user"],
    "test_groups": {"control": {"ui": "old"}, "variant": {"ui": "new"}},
    "traffic_allocation": {"control": 0.5, "variant": 0.5},
    "start_date": "2024-01-01T00:00:00Z"})");
}

// The field named by the error when `mutate` is applied to the contract request.
std::string error_field(const std::function<void(json&)>& mutate) {
  json request = contract_request();
  mutate(request);
  auto parsed = parse_config(request);
  EXPECT_FALSE(parsed.is_ok()) << request.dump();
  if (parsed.is_ok()) return "<ok>";
  EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
  return parsed.status().field();
}

TEST(ExperimentConfig, ContractRequestParsesWithDefaults) {
  auto parsed = parse_config(contract_request());
  ASSERT_TRUE(parsed.is_ok()) << parsed.status().to_string();
  const ExperimentConfig& c = *parsed;
  EXPECT_EQ(c.test_name, "Feature UI Test");
  EXPECT_EQ(c.control, "control");
  ASSERT_EQ(c.groups.size(), 2u);
  EXPECT_EQ(c.groups[0].name, "control");
  EXPECT_EQ(c.groups[1].config, json({{"ui", "new"}}));
  EXPECT_DOUBLE_EQ(c.coverage, 1.0);
  EXPECT_EQ(c.success_metrics[0].type, stats::MetricType::kBinomial);    // "rate"
  EXPECT_EQ(c.success_metrics[1].type, stats::MetricType::kContinuous);  // revenue
  EXPECT_EQ(c.method, AnalysisMethod::kFrequentist);
  EXPECT_EQ(c.start_date, parse_iso8601("2024-01-01T00:00:00Z"));
}

TEST(ExperimentConfig, ControlFirstThenOtherGroupsByName) {
  json request = contract_request();
  request["test_groups"] = {
      {"zeta", json::object()}, {"alpha", json::object()}, {"baseline", json::object()}};
  request["traffic_allocation"] = {{"zeta", 0.2}, {"alpha", 0.3}, {"baseline", 0.5}};
  request["control"] = "baseline";
  auto parsed = parse_config(request);
  ASSERT_TRUE(parsed.is_ok()) << parsed.status().to_string();
  EXPECT_EQ(parsed->groups[0].name, "baseline");
  EXPECT_EQ(parsed->groups[1].name, "alpha");
  EXPECT_EQ(parsed->groups[2].name, "zeta");
  EXPECT_DOUBLE_EQ(parsed->groups[2].weight, 0.2);
}

TEST(ExperimentConfig, ErrorsNameTheField) {
  EXPECT_EQ(error_field([](json& r) { r["colour"] = "blue"; }), "colour");
  EXPECT_EQ(error_field([](json& r) { r.erase("test_name"); }), "test_name");
  EXPECT_EQ(error_field([](json& r) { r["feature_name"] = 7; }), "feature_name");
  EXPECT_EQ(error_field([](json& r) { r["success_metrics"] = json::array(); }), "success_metrics");
  EXPECT_EQ(error_field([](json& r) { r["success_metrics"] = {"a", "a"}; }), "success_metrics[1]");
  EXPECT_EQ(error_field([](json& r) { r["traffic_allocation"]["variant"] = 1.5; }),
            "traffic_allocation.variant");
  EXPECT_EQ(error_field([](json& r) { r["traffic_allocation"]["variant"] = "half"; }),
            "traffic_allocation.variant");
  EXPECT_EQ(error_field([](json& r) { r["traffic_allocation"]["variant"] = 0.4; }),
            "traffic_allocation");
  EXPECT_EQ(error_field([](json& r) { r["traffic_allocation"].erase("variant"); }),
            "traffic_allocation.variant");
  EXPECT_EQ(error_field([](json& r) { r["traffic_allocation"]["extra"] = 0.0; }),
            "traffic_allocation.extra");
  EXPECT_EQ(error_field([](json& r) {
              r["test_groups"] = {{"control", json::object()}};
              r["traffic_allocation"] = {{"control", 1.0}};
            }),
            "test_groups");
  EXPECT_EQ(error_field([](json& r) { r["coverage"] = 0; }), "coverage");
  EXPECT_EQ(error_field([](json& r) { r["coverage"] = 1.2; }), "coverage");
  EXPECT_EQ(error_field([](json& r) { r["control"] = "baseline"; }), "control");
  EXPECT_EQ(error_field([](json& r) {
              r["metric_types"] = {{"conversion_rate", "ratio"}};
            }),
            "metric_types.conversion_rate");
  EXPECT_EQ(error_field([](json& r) {
              r["metric_types"] = {{"clicks", "binomial"}};
            }),
            "metric_types.clicks");
  EXPECT_EQ(error_field([](json& r) { r["alpha"] = 0.9; }), "alpha");
  EXPECT_EQ(error_field([](json& r) { r["analysis_method"] = "magic"; }), "analysis_method");
  EXPECT_EQ(error_field([](json& r) { r["min_sample_size"] = -5; }), "min_sample_size");
  EXPECT_EQ(error_field([](json& r) { r["target_power"] = 1.0; }), "target_power");
  EXPECT_EQ(error_field([](json& r) { r["start_date"] = "yesterday"; }), "start_date");
  EXPECT_EQ(error_field([](json& r) {
              r["namespace"] = {{"id", "checkout"}, {"start", 0.7}, {"end", 0.2}};
            }),
            "namespace.end");
  EXPECT_EQ(error_field([](json& r) { r["namespace"] = {{"id", ""}}; }), "namespace.id");
  EXPECT_EQ(error_field([](json& r) {
              r["namespace"] = {{"id", "n"}, {"size", 1}};
            }),
            "namespace.size");
  EXPECT_EQ(error_field([](json& r) {
              r["targeting"] = {{"app_version", {{"$vgtt", "5.0.0"}}}};
            }),
            "targeting.app_version.$vgtt");
  EXPECT_EQ(error_field([](json& r) { r["lower_is_better"] = {"bounce"}; }), "lower_is_better[0]");
  // Guardrails: roles of known metrics, the primary stays a goal, margins >= 0 on guardrails.
  EXPECT_EQ(error_field([](json& r) {
              r["metric_roles"] = {{"clicks", "guardrail"}};
            }),
            "metric_roles.clicks");
  EXPECT_EQ(error_field([](json& r) {
              r["metric_roles"] = {{r["success_metrics"][0].get<std::string>(), "guardrail"}};
            }),
            "metric_roles.conversion_rate");
  EXPECT_EQ(error_field([](json& r) {
              r["success_metrics"] = {"conversion_rate", "balance"};
              r["metric_roles"] = {{"balance", "boss"}};
            }),
            "metric_roles.balance");
  EXPECT_EQ(error_field([](json& r) {
              r["success_metrics"] = {"conversion_rate", "balance"};
              r["metric_roles"] = {{"balance", "guardrail"}};
              r["non_inferiority_margins"] = {{"balance", -0.01}};
            }),
            "non_inferiority_margins.balance");
  EXPECT_EQ(error_field([](json& r) {
              r["success_metrics"] = {"conversion_rate", "balance"};
              r["non_inferiority_margins"] = {{"balance", 0.01}};
            }),
            "non_inferiority_margins.balance");
}

TEST(ExperimentConfig, GuardrailRolesAndMarginsRoundTrip) {
  json r = contract_request();
  r["success_metrics"] = {"conversion_rate", "balance", "logins"};
  r["metric_roles"] = {{"balance", "guardrail"}};
  r["non_inferiority_margins"] = {{"balance", 0.03}};
  auto config = parse_config(r);
  ASSERT_TRUE(config.is_ok()) << config.status().to_string();
  EXPECT_EQ(config->success_metrics[0].role, stats::MetricRole::kGoal);
  EXPECT_EQ(config->success_metrics[1].role, stats::MetricRole::kGuardrail);
  EXPECT_EQ(config->success_metrics[1].non_inferiority_margin, 0.03);
  EXPECT_EQ(config->success_metrics[2].role, stats::MetricRole::kSecondary);
  auto again = parse_config(config_to_json(*config));
  ASSERT_TRUE(again.is_ok()) << again.status().to_string();
  EXPECT_EQ(again->success_metrics[1].role, stats::MetricRole::kGuardrail);
  EXPECT_EQ(again->success_metrics[1].non_inferiority_margin, 0.03);
}

TEST(ExperimentConfig, CappingAndQuantileMetricsRoundTrip) {
  json request = contract_request();
  request["success_metrics"] = {"revenue_per_user", "conversion_rate", "load_time_p90"};
  request["metric_types"] = {{"load_time_p90", "quantile"}};
  request["metric_quantiles"] = {{"load_time_p90", 0.9}};
  request["lower_is_better"] = {"load_time_p90"};
  request["metric_capping"] = {
      {"revenue_per_user", {{"type", "percentile"}, {"value", 0.99}, {"ignore_zeros", true}}}};
  auto parsed = parse_config(request);
  ASSERT_TRUE(parsed.is_ok()) << parsed.status().to_string();
  const MetricSpec& revenue = parsed->success_metrics[0];
  ASSERT_TRUE(revenue.capping.has_value());
  EXPECT_EQ(revenue.capping->kind, stats::CapKind::kPercentile);
  EXPECT_DOUBLE_EQ(revenue.capping->value, 0.99);
  EXPECT_TRUE(revenue.capping->ignore_zeros);
  EXPECT_FALSE(parsed->success_metrics[1].capping.has_value());
  EXPECT_EQ(parsed->success_metrics[2].type, stats::MetricType::kQuantile);
  EXPECT_DOUBLE_EQ(parsed->success_metrics[2].quantile.value(), 0.9);
  auto again = parse_config(config_to_json(*parsed));
  ASSERT_TRUE(again.is_ok()) << again.status().to_string();
  EXPECT_EQ(config_to_json(*again), config_to_json(*parsed));
  EXPECT_EQ(config_to_json(*again)["metric_capping"]["revenue_per_user"]["type"], "percentile");
  EXPECT_EQ(config_to_json(*again)["metric_quantiles"]["load_time_p90"], 0.9);

  request["metric_capping"] = {{"revenue_per_user", {{"type", "absolute"}, {"value", 500}}}};
  auto absolute = parse_config(request);
  ASSERT_TRUE(absolute.is_ok()) << absolute.status().to_string();
  EXPECT_EQ(absolute->success_metrics[0].capping->kind, stats::CapKind::kAbsolute);
  EXPECT_DOUBLE_EQ(absolute->success_metrics[0].capping->value, 500);
}

TEST(ExperimentConfig, BadCappingAndQuantileSettingsNameTheField) {
  auto capped = [](json cap) {
    return [cap](json& r) { r["metric_capping"] = {{"revenue_per_user", cap}}; };
  };
  EXPECT_EQ(error_field(capped({{"type", "percentile"}, {"value", 1.0}})),
            "metric_capping.revenue_per_user.value");
  EXPECT_EQ(error_field(capped({{"type", "percentile"}, {"value", 0.0}})),
            "metric_capping.revenue_per_user.value");
  EXPECT_EQ(error_field(capped({{"type", "percentile"}, {"value", 99}})),
            "metric_capping.revenue_per_user.value");
  EXPECT_EQ(error_field(capped({{"type", "absolute"}, {"value", -5}})),
            "metric_capping.revenue_per_user.value");
  EXPECT_EQ(error_field(capped({{"type", "absolute"}, {"value", 0}})),
            "metric_capping.revenue_per_user.value");
  EXPECT_EQ(error_field(capped({{"type", "absolute"}, {"value", "100"}})),
            "metric_capping.revenue_per_user.value");
  EXPECT_EQ(error_field(capped({{"type", "absolute"}, {"value", 5}, {"ignore_zeros", true}})),
            "metric_capping.revenue_per_user.ignore_zeros");
  EXPECT_EQ(error_field(capped({{"type", "winsor"}, {"value", 0.9}})),
            "metric_capping.revenue_per_user.type");
  EXPECT_EQ(error_field(capped({{"value", 0.9}})), "metric_capping.revenue_per_user.type");
  EXPECT_EQ(error_field(capped({{"type", "percentile"}})), "metric_capping.revenue_per_user.value");
  EXPECT_EQ(error_field(capped({{"type", "percentile"}, {"value", 0.9}, {"level", 1}})),
            "metric_capping.revenue_per_user.level");
  EXPECT_EQ(error_field(capped(0.99)), "metric_capping.revenue_per_user");
  EXPECT_EQ(error_field([](json& r) { r["metric_capping"] = json::array(); }), "metric_capping");
  // Binomial metrics are not capped; unknown metrics are refused.
  EXPECT_EQ(error_field([](json& r) {
              r["metric_capping"] = {{"conversion_rate", {{"type", "absolute"}, {"value", 1}}}};
            }),
            "metric_capping.conversion_rate");
  EXPECT_EQ(error_field([](json& r) {
              r["metric_capping"] = {{"nope", {{"type", "absolute"}, {"value", 1}}}};
            }),
            "metric_capping.nope");
  // Quantile levels.
  auto quantile = [](json level) {
    return [level](json& r) {
      r["metric_types"] = {{"revenue_per_user", "quantile"}};
      r["metric_quantiles"] = {{"revenue_per_user", level}};
    };
  };
  EXPECT_EQ(error_field(quantile(1.0)), "metric_quantiles.revenue_per_user");
  EXPECT_EQ(error_field(quantile(0)), "metric_quantiles.revenue_per_user");
  EXPECT_EQ(error_field(quantile(-0.5)), "metric_quantiles.revenue_per_user");
  EXPECT_EQ(error_field(quantile("p90")), "metric_quantiles.revenue_per_user");
  EXPECT_EQ(error_field([](json& r) {
              r["metric_types"] = {{"revenue_per_user", "quantile"}};
            }),
            "metric_quantiles.revenue_per_user");
  EXPECT_EQ(error_field([](json& r) {
              r["metric_quantiles"] = {{"revenue_per_user", 0.9}};
            }),
            "metric_quantiles.revenue_per_user");  // a continuous metric has no level
  EXPECT_EQ(error_field([](json& r) {
              r["metric_types"] = {{"revenue_per_user", "quantile"}};
              r["metric_quantiles"] = {{"revenue_per_user", 0.9}};
              r["metric_capping"] = {{"revenue_per_user", {{"type", "absolute"}, {"value", 1}}}};
            }),
            "metric_capping.revenue_per_user");
  EXPECT_EQ(error_field([](json& r) {
              r["metric_types"] = {{"revenue_per_user", "ratio"}};
            }),
            "metric_types.revenue_per_user");
}

TEST(ExperimentConfig, OptionalFieldsAreApplied) {
  json request = contract_request();
  request["coverage"] = 0.4;
  request["namespace"] = {{"id", "home"}, {"start", 0.0}, {"end", 0.5}};
  request["targeting"] = {{"tier", "free"}, {"app_version", {{"$vgte", "5.2.0"}}}};
  request["metric_types"] = {{"revenue_per_user", "binomial"}};
  request["analysis_method"] = "bayesian";
  request["alpha"] = 0.01;
  request["min_sample_size"] = 1000;
  auto parsed = parse_config(request);
  ASSERT_TRUE(parsed.is_ok()) << parsed.status().to_string();
  EXPECT_DOUBLE_EQ(parsed->coverage, 0.4);
  ASSERT_TRUE(parsed->ns.has_value());
  EXPECT_EQ(parsed->ns->id, "home");
  EXPECT_EQ(parsed->success_metrics[1].type, stats::MetricType::kBinomial);
  EXPECT_EQ(parsed->method, AnalysisMethod::kBayesian);
  EXPECT_EQ(parsed->min_sample_size, 1000);
  // Round trip through the request shape.
  auto again = parse_config(config_to_json(*parsed));
  ASSERT_TRUE(again.is_ok()) << again.status().to_string();
  EXPECT_EQ(config_to_json(*again), config_to_json(*parsed));
}

TEST(ExperimentConfig, DefaultMetricTypes) {
  EXPECT_EQ(default_metric_type("conversion_rate"), stats::MetricType::kBinomial);
  EXPECT_EQ(default_metric_type("checkout_Conversion"), stats::MetricType::kBinomial);
  EXPECT_EQ(default_metric_type("revenue_per_user"), stats::MetricType::kContinuous);
}

TEST(Experiment, DocumentRoundTrip) {
  Experiment e;
  e.test_id = "test_1";
  e.config = *parse_config(contract_request());
  e.status = ExperimentStatus::kPaused;
  e.phase = 1;
  e.hash_seed = "test_1:phase1";
  e.created_at = 1'700'000'000;
  e.updated_at = 1'700'000'100;
  e.started_at = 1'700'000'050;
  e.phases.push_back({0, "test_1", 1'700'000'050, 1'700'000'070, json::object(), 1.0, {}});
  // Seed-preserving coverage changes within a phase round-trip too.
  e.phases.push_back({1, "test_1:phase1", 1'700'000'070, std::nullopt, json::object(), 0.25,
                      {{1'700'000'080, 0.05, 0.25, "admin"}}});
  auto back = experiment_from_json(to_json(e));
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(to_json(*back), to_json(e));
  EXPECT_EQ(back->exposure_key(), "test_1:phase1");
  EXPECT_EQ(back->exposure_key_for_phase(0), "test_1");
}

}  // namespace
}  // namespace fulcrum::experiments
