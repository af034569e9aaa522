#include "stats/analysis_json.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "core/untrusted_json.h"

namespace fulcrum::stats {
namespace {

using nlohmann::json;

Status reject_unknown_keys(const json& object, const std::set<std::string>& known,
                           const std::string& prefix) {
  for (const auto& [key, value] : object.items()) {
    if (!known.count(key)) {
      return invalid_argument("unknown field", prefix.empty() ? key : prefix + "." + key);
    }
  }
  return Status::ok();
}

std::string join(const std::string& prefix, const std::string& key) {
  return prefix.empty() ? key : prefix + "." + key;
}

Status read_number(const json& object, const std::string& key, const std::string& prefix,
                   double& out) {
  auto it = object.find(key);
  if (it == object.end()) return Status::ok();
  if (!it->is_number()) return invalid_argument("must be a number", join(prefix, key));
  out = it->get<double>();
  if (!std::isfinite(out)) return invalid_argument("must be finite", join(prefix, key));
  return Status::ok();
}

Status read_optional_number(const json& object, const std::string& key, const std::string& prefix,
                            std::optional<double>& out) {
  if (!object.contains(key)) return Status::ok();
  double value = 0;
  FULCRUM_RETURN_IF_ERROR(read_number(object, key, prefix, value));
  out = value;
  return Status::ok();
}

Status read_bool(const json& object, const std::string& key, const std::string& prefix, bool& out) {
  auto it = object.find(key);
  if (it == object.end()) return Status::ok();
  if (!it->is_boolean()) return invalid_argument("must be true or false", join(prefix, key));
  out = it->get<bool>();
  return Status::ok();
}

Status read_string(const json& object, const std::string& key, const std::string& prefix,
                   std::string& out) {
  auto it = object.find(key);
  if (it == object.end()) return Status::ok();
  if (!it->is_string()) return invalid_argument("must be a string", join(prefix, key));
  out = it->get<std::string>();
  return Status::ok();
}

// A JSON array of finite numbers; errors name the element.
Result<std::vector<double>> read_number_array(const json& array, const std::string& field) {
  if (!array.is_array()) return invalid_argument("must be an array of per-user numbers", field);
  std::vector<double> parsed;
  parsed.reserve(array.size());
  for (size_t i = 0; i < array.size(); ++i) {
    const json& value = array[i];
    const std::string element = field + "[" + std::to_string(i) + "]";
    if (!value.is_number()) return invalid_argument("must be a number", element);
    parsed.push_back(value.get<double>());
    if (!std::isfinite(parsed.back())) return invalid_argument("must be finite", element);
  }
  return parsed;
}

Status read_group(const json& object, const std::string& prefix, MetricGroupInput& group) {
  if (!object.is_object()) return invalid_argument("must be an object", prefix);
  FULCRUM_RETURN_IF_ERROR(reject_unknown_keys(
      object,
      {"n", "sum", "sum_squares", "pre_sum", "pre_sum_squares", "pre_cross_sum", "denominator_sum",
       "denominator_sum_squares", "ratio_cross_sum", "values", "pre_values", "ratio_pre"},
      prefix));
  if (auto pre = object.find("ratio_pre"); pre != object.end()) {
    const std::string field = prefix + ".ratio_pre";
    if (!pre->is_object()) return invalid_argument("must be an object", field);
    static const char* const kFields[] = {"numerator_sum",
                                          "numerator_sum_squares",
                                          "denominator_sum",
                                          "denominator_sum_squares",
                                          "numerator_x_pre_numerator",
                                          "denominator_x_pre_denominator",
                                          "pre_numerator_x_pre_denominator",
                                          "numerator_x_pre_denominator",
                                          "denominator_x_pre_numerator"};
    FULCRUM_RETURN_IF_ERROR(
        reject_unknown_keys(*pre, {std::begin(kFields), std::end(kFields)}, field));
    MetricGroupInput::RatioPre ratio_pre;
    double* targets[] = {&ratio_pre.numerator_sum,
                         &ratio_pre.numerator_sum_squares,
                         &ratio_pre.denominator_sum,
                         &ratio_pre.denominator_sum_squares,
                         &ratio_pre.numerator_x_pre_numerator,
                         &ratio_pre.denominator_x_pre_denominator,
                         &ratio_pre.pre_numerator_x_pre_denominator,
                         &ratio_pre.numerator_x_pre_denominator,
                         &ratio_pre.denominator_x_pre_numerator};
    for (size_t i = 0; i < std::size(kFields); ++i) {
      if (!pre->contains(kFields[i])) {
        return invalid_argument("is required", field + "." + kFields[i]);
      }
      FULCRUM_RETURN_IF_ERROR(read_number(*pre, kFields[i], field, *targets[i]));
    }
    group.ratio_pre = ratio_pre;
  }
  if (auto values = object.find("values"); values != object.end()) {
    if (!values->is_array()) {
      return invalid_argument("must be an array of per-user numbers", prefix + ".values");
    }
    for (const char* sum_field : {"n", "sum", "sum_squares"}) {
      if (object.contains(sum_field)) {
        return invalid_argument("give either per-user values or n/sum/sum_squares, not both",
                                prefix + "." + sum_field);
      }
    }
    for (const char* sum_field : {"pre_sum", "pre_sum_squares", "pre_cross_sum"}) {
      if (object.contains(sum_field)) {
        return invalid_argument("with per-user values the covariate is pre_values, not sums",
                                prefix + "." + sum_field);
      }
    }
    auto parsed = read_number_array(*values, prefix + ".values");
    if (!parsed) return parsed.status();
    group.n = static_cast<std::int64_t>(parsed->size());
    group.values = std::move(*parsed);
    if (auto pre = object.find("pre_values"); pre != object.end()) {
      if (!pre->is_array() || pre->size() != group.values->size()) {
        return invalid_argument("must be an array with one covariate per value, in order",
                                prefix + ".pre_values");
      }
      auto covariates = read_number_array(*pre, prefix + ".pre_values");
      if (!covariates) return covariates.status();
      group.pre_values = std::move(*covariates);
    }
    return Status::ok();
  }
  if (object.contains("pre_values")) {
    return invalid_argument("pre_values go with per-user values", prefix + ".pre_values");
  }
  auto n = object.find("n");
  if (n == object.end()) return invalid_argument("is required", prefix + ".n");
  if (!n->is_number_integer() || n->get<std::int64_t>() < 0) {
    return invalid_argument("must be a non-negative integer", prefix + ".n");
  }
  group.n = n->get<std::int64_t>();
  if (!object.contains("sum")) return invalid_argument("is required", prefix + ".sum");
  FULCRUM_RETURN_IF_ERROR(read_number(object, "sum", prefix, group.sum));
  FULCRUM_RETURN_IF_ERROR(read_number(object, "sum_squares", prefix, group.sum_squares));
  FULCRUM_RETURN_IF_ERROR(read_optional_number(object, "pre_sum", prefix, group.pre_sum));
  FULCRUM_RETURN_IF_ERROR(
      read_optional_number(object, "pre_sum_squares", prefix, group.pre_sum_squares));
  FULCRUM_RETURN_IF_ERROR(
      read_optional_number(object, "pre_cross_sum", prefix, group.pre_cross_sum));
  const int pre_fields = group.pre_sum.has_value() + group.pre_sum_squares.has_value() +
                         group.pre_cross_sum.has_value();
  if (pre_fields != 0 && pre_fields != 3) {
    return invalid_argument(
        "CUPED needs pre_sum, pre_sum_squares and pre_cross_sum together",
        prefix + (group.pre_sum ? (group.pre_sum_squares ? ".pre_cross_sum" : ".pre_sum_squares")
                                : ".pre_sum"));
  }
  FULCRUM_RETURN_IF_ERROR(read_number(object, "denominator_sum", prefix, group.denominator_sum));
  FULCRUM_RETURN_IF_ERROR(
      read_number(object, "denominator_sum_squares", prefix, group.denominator_sum_squares));
  FULCRUM_RETURN_IF_ERROR(read_number(object, "ratio_cross_sum", prefix, group.ratio_cross_sum));
  return Status::ok();
}

Status read_metric(const json& object, const std::string& prefix, MetricInput& metric) {
  if (!object.is_object()) return invalid_argument("must be an object", prefix);
  FULCRUM_RETURN_IF_ERROR(reject_unknown_keys(object,
                                              {"name", "type", "higher_is_better", "groups", "role",
                                               "non_inferiority_margin", "capping", "quantile"},
                                              prefix));
  if (!object.contains("name")) return invalid_argument("is required", prefix + ".name");
  FULCRUM_RETURN_IF_ERROR(read_string(object, "name", prefix, metric.name));
  std::string type = "binomial";
  FULCRUM_RETURN_IF_ERROR(read_string(object, "type", prefix, type));
  if (type == "binomial") {
    metric.type = MetricType::kBinomial;
  } else if (type == "continuous") {
    metric.type = MetricType::kContinuous;
  } else if (type == "ratio") {
    metric.type = MetricType::kRatio;
  } else if (type == "quantile") {
    metric.type = MetricType::kQuantile;
  } else {
    return invalid_argument("must be binomial, continuous, ratio or quantile", prefix + ".type");
  }
  FULCRUM_RETURN_IF_ERROR(read_bool(object, "higher_is_better", prefix, metric.higher_is_better));
  if (object.contains("role")) {
    std::string role;
    FULCRUM_RETURN_IF_ERROR(read_string(object, "role", prefix, role));
    if (role == "goal") {
      metric.role = MetricRole::kGoal;
    } else if (role == "guardrail") {
      metric.role = MetricRole::kGuardrail;
    } else if (role == "secondary") {
      metric.role = MetricRole::kSecondary;
    } else {
      return invalid_argument("must be goal, guardrail or secondary", prefix + ".role");
    }
  }
  FULCRUM_RETURN_IF_ERROR(read_optional_number(object, "non_inferiority_margin", prefix,
                                               metric.non_inferiority_margin));
  if (object.contains("quantile")) {
    if (metric.type != MetricType::kQuantile) {
      return invalid_argument("only quantile metrics have a quantile level", prefix + ".quantile");
    }
    FULCRUM_RETURN_IF_ERROR(read_number(object, "quantile", prefix, metric.quantile));
  } else if (metric.type == MetricType::kQuantile) {
    return invalid_argument("is required for quantile metrics (e.g. 0.9 for p90)",
                            prefix + ".quantile");
  }
  if (auto capping = object.find("capping"); capping != object.end()) {
    const std::string field = prefix + ".capping";
    if (!capping->is_object()) return invalid_argument("must be an object", field);
    FULCRUM_RETURN_IF_ERROR(
        reject_unknown_keys(*capping, {"type", "value", "ignore_zeros"}, field));
    CapSpec spec;
    std::string kind = "percentile";
    FULCRUM_RETURN_IF_ERROR(read_string(*capping, "type", field, kind));
    if (kind == "percentile") {
      spec.kind = CapKind::kPercentile;
    } else if (kind == "absolute") {
      spec.kind = CapKind::kAbsolute;
    } else {
      return invalid_argument("must be percentile or absolute", field + ".type");
    }
    if (!capping->contains("value")) return invalid_argument("is required", field + ".value");
    FULCRUM_RETURN_IF_ERROR(read_number(*capping, "value", field, spec.value));
    if (spec.kind == CapKind::kPercentile && !(spec.value > 0 && spec.value < 1)) {
      return invalid_argument("a percentile cap must be in (0, 1), e.g. 0.99", field + ".value");
    }
    FULCRUM_RETURN_IF_ERROR(read_bool(*capping, "ignore_zeros", field, spec.ignore_zeros));
    metric.capping = spec;
  }
  auto groups = object.find("groups");
  if (groups == object.end() || !groups->is_object()) {
    return invalid_argument("must be an object of group name -> statistics", prefix + ".groups");
  }
  for (const auto& [name, value] : groups->items()) {
    FULCRUM_RETURN_IF_ERROR(read_group(value, prefix + ".groups." + name, metric.groups[name]));
  }
  return Status::ok();
}

json number(double value) { return std::isfinite(value) ? json(value) : json(nullptr); }

json effect_json(const EffectTest& test) {
  return {{"estimate", number(test.estimate)},
          {"standard_error", number(test.standard_error)},
          {"statistic", number(test.statistic)},
          {"df", number(test.df)},
          {"p_value", number(test.p_value)},
          {"ci", json::array({number(test.ci.lower), number(test.ci.upper)})}};
}

const char* correction_name(Correction correction) {
  switch (correction) {
    case Correction::kHolm:
      return "holm";
    case Correction::kBenjaminiHochberg:
      return "fdr_bh";
    case Correction::kNone:
      return "none";
  }
  return "none";
}

}  // namespace

Result<AnalysisInput> analysis_input_from_json(const json& document) {
  if (!document.is_object()) return invalid_argument("the input must be a JSON object", "");
  FULCRUM_RETURN_IF_ERROR(reject_unknown_keys(
      document,
      {"control", "allocation", "alpha", "correction", "cuped", "sequential", "sequential_tuning",
       "prior", "target_power", "target_mde", "days_elapsed", "metrics", "bandit", "slices"},
      ""));
  AnalysisInput input;
  FULCRUM_RETURN_IF_ERROR(read_string(document, "control", "", input.control));
  if (auto it = document.find("allocation"); it != document.end()) {
    if (!it->is_object()) return invalid_argument("must be an object", "allocation");
    for (const auto& [name, weight] : it->items()) {
      if (!weight.is_number() || !(weight.get<double>() > 0)) {
        return invalid_argument("must be a positive number", "allocation." + name);
      }
      input.allocation[name] = weight.get<double>();
    }
  }
  FULCRUM_RETURN_IF_ERROR(read_number(document, "alpha", "", input.alpha));
  std::string correction = "holm";
  FULCRUM_RETURN_IF_ERROR(read_string(document, "correction", "", correction));
  if (correction == "holm") {
    input.correction = Correction::kHolm;
  } else if (correction == "fdr_bh" || correction == "bh") {
    input.correction = Correction::kBenjaminiHochberg;
  } else if (correction == "none") {
    input.correction = Correction::kNone;
  } else {
    return invalid_argument("must be holm, fdr_bh or none", "correction");
  }
  FULCRUM_RETURN_IF_ERROR(read_bool(document, "cuped", "", input.cuped));
  FULCRUM_RETURN_IF_ERROR(read_bool(document, "sequential", "", input.sequential));
  FULCRUM_RETURN_IF_ERROR(read_number(document, "sequential_tuning", "", input.sequential_tuning));
  if (auto it = document.find("prior"); it != document.end()) {
    if (!it->is_object()) return invalid_argument("must be an object", "prior");
    FULCRUM_RETURN_IF_ERROR(reject_unknown_keys(*it, {"proper", "mean", "variance"}, "prior"));
    FULCRUM_RETURN_IF_ERROR(read_bool(*it, "proper", "prior", input.prior.proper));
    FULCRUM_RETURN_IF_ERROR(read_number(*it, "mean", "prior", input.prior.mean));
    FULCRUM_RETURN_IF_ERROR(read_number(*it, "variance", "prior", input.prior.variance));
    if (input.prior.proper && !(input.prior.variance > 0)) {
      return invalid_argument("must be positive", "prior.variance");
    }
  }
  FULCRUM_RETURN_IF_ERROR(read_number(document, "target_power", "", input.target_power));
  FULCRUM_RETURN_IF_ERROR(read_number(document, "target_mde", "", input.target_mde));
  FULCRUM_RETURN_IF_ERROR(read_optional_number(document, "days_elapsed", "", input.days_elapsed));
  if (auto bandit = document.find("bandit"); bandit != document.end()) {
    if (!bandit->is_object()) return invalid_argument("must be an object", "bandit");
    FULCRUM_RETURN_IF_ERROR(reject_unknown_keys(*bandit, {"top_two", "min_weight"}, "bandit"));
    BanditSettings settings;
    FULCRUM_RETURN_IF_ERROR(read_bool(*bandit, "top_two", "bandit", settings.top_two));
    FULCRUM_RETURN_IF_ERROR(read_number(*bandit, "min_weight", "bandit", settings.min_weight));
    if (!(settings.min_weight >= 0 && settings.min_weight < 0.5)) {
      return invalid_argument("must be in [0, 0.5), e.g. 0.01 for 1% per arm", "bandit.min_weight");
    }
    input.bandit = settings;
  }
  if (auto slices = document.find("slices"); slices != document.end()) {
    if (!slices->is_array()) return invalid_argument("must be an array", "slices");
    for (size_t d = 0; d < slices->size(); ++d) {
      const std::string prefix = "slices[" + std::to_string(d) + "]";
      const json& entry = (*slices)[d];
      if (!entry.is_object()) return invalid_argument("must be an object", prefix);
      FULCRUM_RETURN_IF_ERROR(reject_unknown_keys(
          entry, {"attribute", "top", "values", "merge_untestable", "post_stratify"}, prefix));
      AnalysisInput::SliceDimension dimension;
      FULCRUM_RETURN_IF_ERROR(read_string(entry, "attribute", prefix, dimension.attribute));
      if (auto top = entry.find("top"); top != entry.end()) {
        if (!top->is_number_integer() || top->get<std::int64_t>() < 1 ||
            top->get<std::int64_t>() > 100) {
          return invalid_argument("must be an integer from 1 to 100", prefix + ".top");
        }
        dimension.top = top->get<std::size_t>();
      }
      if (auto stratify = entry.find("post_stratify"); stratify != entry.end()) {
        if (!stratify->is_boolean()) {
          return invalid_argument("must be true or false", prefix + ".post_stratify");
        }
        dimension.post_stratify = stratify->get<bool>();
      }
      if (auto merge = entry.find("merge_untestable"); merge != entry.end()) {
        if (!merge->is_boolean()) {
          return invalid_argument("must be true or false", prefix + ".merge_untestable");
        }
        dimension.merge_untestable = merge->get<bool>();
      }
      auto values = entry.find("values");
      if (values == entry.end() || !values->is_object() || values->empty()) {
        return invalid_argument("must be an object of value -> group -> statistics",
                                prefix + ".values");
      }
      for (const auto& [value, groups] : values->items()) {
        const std::string value_prefix = prefix + ".values." + value;
        if (!groups.is_object()) return invalid_argument("must be an object", value_prefix);
        for (const auto& [group, stats] : groups.items()) {
          FULCRUM_RETURN_IF_ERROR(
              read_group(stats, value_prefix + "." + group, dimension.values[value][group]));
        }
      }
      input.slices.push_back(std::move(dimension));
    }
  }
  auto metrics = document.find("metrics");
  if (metrics == document.end() || !metrics->is_array() || metrics->empty()) {
    return invalid_argument("must be a non-empty array", "metrics");
  }
  for (size_t i = 0; i < metrics->size(); ++i) {
    MetricInput metric;
    FULCRUM_RETURN_IF_ERROR(
        read_metric((*metrics)[i], "metrics[" + std::to_string(i) + "]", metric));
    input.metrics.push_back(std::move(metric));
  }
  return input;
}

Result<AnalysisInput> parse_analysis_input(std::string_view text) {
  auto document = parse_untrusted_json(text, "input");
  if (!document.is_ok()) return document.status();
  return analysis_input_from_json(*document);
}

namespace {

json groups_json(const std::vector<GroupResult>& groups) {
  json out = json::object();
  for (const GroupResult& group : groups) {
    json g = {{"n", group.n},
              {"mean", number(group.mean)},
              {"variance", number(group.variance)},
              {"is_control", group.is_control}};
    if (!group.vs_control) {
      // The control against itself: the same meaning as a treatment's fields.
      g["p_value"] = 1.0;
      g["adjusted_p_value"] = 1.0;
      g["significant"] = false;
      g["statistical_significance"] = 0.0;
    } else {
      const TreatmentResult& t = *group.vs_control;
      g["lift"] = {{"absolute", effect_json(t.absolute)},
                   {"relative", t.relative ? effect_json(*t.relative) : json(nullptr)}};
      g["p_value"] = number(t.p_value);
      g["adjusted_p_value"] = number(t.adjusted_p_value);
      g["significant"] = t.significant;
      // 1 - adjusted p-value, as in GET /ab-tests/{id}/results and GET /dashboard.
      g["statistical_significance"] =
          std::isfinite(t.adjusted_p_value) ? 1 - t.adjusted_p_value : 0.0;
      g["chance_to_beat_control"] = number(t.chance_to_beat_control);
      if (t.bayesian) {
        g["bayesian"] = {
            {"posterior_mean", number(t.bayesian->posterior_mean)},
            {"posterior_sd", number(t.bayesian->posterior_sd)},
            {"expected_loss_treatment", number(t.bayesian->expected_loss_treatment)},
            {"expected_loss_control", number(t.bayesian->expected_loss_control)},
            {"credible_interval", json::array({number(t.bayesian->credible_interval.lower),
                                               number(t.bayesian->credible_interval.upper)})}};
      } else {
        g["bayesian"] = nullptr;
      }
      if (t.guardrail) g["guardrail"] = guardrail_check_to_json(*t.guardrail);
    }
    out[group.name] = std::move(g);
  }
  return out;
}

}  // namespace

json guardrail_check_to_json(const GuardrailCheck& check) {
  return {{"margin", number(check.margin)},
          {"non_inferior", check.non_inferior},
          {"harmed", check.harmed},
          {"non_inferiority_p_value", number(check.non_inferiority.p_value)},
          {"harm_p_value", number(check.harm.p_value)},
          // The one-sided (1 - alpha) bound on the relative lift in the metric's bad
          // direction: the worst change the data still allow.
          {"worst_case_lift",
           number(std::isfinite(check.non_inferiority.ci.lower) ? check.non_inferiority.ci.lower
                                                                : check.non_inferiority.ci.upper)}};
}

json ship_decision_to_json(const ShipDecision& decision) {
  return {{"action", action_name(decision.action)},
          {"rule", decision_rule_name(decision.rule)},
          {"metric", decision.metric ? json(*decision.metric) : json(nullptr)},
          {"text", decision.text}};
}

namespace {

json mid_power_json(const AnalysisOutput& output) {
  const MidExperimentPower& power = *output.mid_power;
  return {{"treatment", output.candidate ? json(*output.candidate) : json(nullptr)},
          {"power_now", number(power.power_now)},
          {"powered", power.powered},
          {"scaling_factor", power.upper_bound_hit ? json(nullptr) : number(power.scaling_factor)},
          {"additional_users",
           power.upper_bound_hit ? json(nullptr) : json(std::ceil(power.additional_users))},
          {"additional_days", output.mid_power_additional_days
                                  ? json(std::ceil(*output.mid_power_additional_days))
                                  : json(nullptr)},
          {"upper_bound_hit", power.upper_bound_hit}};
}

}  // namespace

json post_stratification_to_json(const AnalysisOutput::SliceTable& table) {
  if (table.post_stratification_unavailable) {
    return {{"unavailable", *table.post_stratification_unavailable}};
  }
  if (!table.post_stratification) return nullptr;
  const auto& stratification = *table.post_stratification;
  json treatments = json::array();
  for (const auto& row : stratification.treatments) {
    treatments.push_back({{"group", row.group},
                          {"absolute", effect_json(row.absolute)},
                          {"relative", row.relative ? effect_json(*row.relative) : json(nullptr)},
                          {"unstratified_standard_error", number(row.unstratified_standard_error)},
                          {"variance_reduction", number(row.variance_reduction)}});
  }
  return {{"strata_used", stratification.strata_used},
          {"strata_merged", stratification.strata_merged},
          {"treatments", std::move(treatments)}};
}

namespace {

json slices_json(const AnalysisOutput& output) {
  json tables = json::array();
  for (const auto& table : output.slices) {
    json rows = json::array();
    for (const auto& slice : table.slices) {
      // `other` tells the merged rest from a value literally named "other".
      rows.push_back({{"value", slice.value},
                      {"other", slice.other},
                      {"tested", slice.tested},
                      {"users", slice.users},
                      {"groups", groups_json(slice.groups)}});
    }
    json entry = {{"attribute", table.attribute}, {"slices", std::move(rows)}};
    if (json stratified = post_stratification_to_json(table); !stratified.is_null()) {
      entry["post_stratification"] = std::move(stratified);
    }
    tables.push_back(std::move(entry));
  }
  return tables;
}

json bandit_json(const AnalysisOutput& output) {
  const BanditWeights& bandit = *output.bandit;
  json weights = json::object(), best = json::object(), mean = json::object();
  const auto& groups = output.metrics.front().groups;
  for (size_t i = 0; i < groups.size() && i < bandit.weights.size(); ++i) {
    weights[groups[i].name] = number(bandit.weights[i]);
    best[groups[i].name] = number(bandit.best_arm_probability[i]);
    mean[groups[i].name] = number(bandit.posterior_mean[i]);
  }
  return {{"weights", std::move(weights)},
          {"best_arm_probability", std::move(best)},
          {"posterior_mean", std::move(mean)},
          {"enough_units", bandit.enough_units}};
}

}  // namespace

json analysis_output_to_json(const AnalysisOutput& output) {
  json srm_observed = json::object(), srm_expected = json::object();
  for (size_t i = 0; i < output.group_names.size(); ++i) {
    srm_observed[output.group_names[i]] = output.exposures[i];
    if (i < output.srm.expected.size()) {
      srm_expected[output.group_names[i]] = number(output.srm.expected[i]);
    }
  }
  json metrics = json::array();
  for (const MetricResult& metric : output.metrics) {
    json entry = {{"name", metric.name},
                  {"type", metric_type_name(metric.type)},
                  {"role", metric_role_name(metric.role)},
                  {"higher_is_better", metric.higher_is_better},
                  {"cuped",
                   {{"applied", metric.cuped_applied},
                    {"theta", metric.cuped_applied ? number(metric.cuped_theta) : json(nullptr)}}},
                  {"groups", groups_json(metric.groups)}};
    if (metric.quantile) entry["quantile"] = *metric.quantile;
    if (metric.capping) {
      entry["capping"] = {{"type", cap_kind_name(metric.capping->spec.kind)},
                          {"value", number(metric.capping->spec.value)},
                          {"ignore_zeros", metric.capping->spec.ignore_zeros},
                          {"cap", number(metric.capping->cap)},
                          {"users_capped", metric.capping->users_capped},
                          {"uncapped_groups", groups_json(metric.capping->uncapped_groups)}};
    }
    metrics.push_back(std::move(entry));
  }
  const Recommendation& rec = output.recommendation;
  return {
      {"control", output.control},
      {"alpha", output.alpha},
      {"correction", correction_name(output.correction)},
      {"sequential", output.sequential},
      {"primary_metric", output.metrics.empty() ? json(nullptr) : json(output.metrics[0].name)},
      {"srm",
       {{"chi_square", number(output.srm.chi_square)},
        {"df", output.srm.degrees_of_freedom},
        {"p_value", number(output.srm.p_value)},
        {"mismatch", output.srm.mismatch},
        {"observed", std::move(srm_observed)},
        {"expected", std::move(srm_expected)}}},
      {"metrics", std::move(metrics)},
      {"winner", output.winner ? json(*output.winner) : json(nullptr)},
      {"recommendation",
       {{"action", action_name(rec.action)},
        {"days_needed", rec.days_needed ? json(*rec.days_needed) : json(nullptr)},
        {"additional_users_per_group",
         rec.additional_users_per_group ? json(*rec.additional_users_per_group) : json(nullptr)},
        {"rule", decision_rule_name(output.decision.rule)},
        {"decided_by_metric",
         output.decision.metric ? json(*output.decision.metric) : json(nullptr)},
        {"candidate", output.candidate ? json(*output.candidate) : json(nullptr)},
        {"text", rec.text}}},
      {"power", output.mid_power ? mid_power_json(output) : json(nullptr)},
      {"bandit", output.bandit ? bandit_json(output) : json(nullptr)},
      {"slices", slices_json(output)}};
}

}  // namespace fulcrum::stats
