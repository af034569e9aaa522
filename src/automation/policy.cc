#include "automation/policy.h"

#include <algorithm>

namespace fulcrum::automation {

using nlohmann::json;

json ExperimentPolicy::to_json() const {
  json overrides_json = json::array();
  for (const auto& o : overrides) overrides_json.push_back({{"phase", o.phase}, {"check", o.check}});
  return {{"enabled", enabled},
          {"stop_on_srm", stop_on_srm},
          {"stop_on_guardrail_harm", stop_on_guardrail_harm},
          {"guardrail_metrics", guardrail_metrics},
          {"complete_when_decisive", complete_when_decisive},
          {"complete_at_planned_sample", complete_at_planned_sample},
          {"overrides", overrides_json}};
}

bool ExperimentPolicy::overridden(int phase, const std::string& check) const {
  return std::any_of(overrides.begin(), overrides.end(), [&](const PolicyOverride& o) {
    return o.phase == phase && o.check == check;
  });
}

const std::vector<std::string>& health_checks() {
  static const std::vector<std::string> kChecks = {"srm", "multi_variant_users",
                                                   "sample_size_reached", "guardrail_harm",
                                                   "decisive"};
  return kChecks;
}

Result<ExperimentPolicy> parse_policy(const json& body) {
  if (!body.is_object()) return invalid_argument("policy must be a JSON object", "body");
  ExperimentPolicy policy;
  for (const auto& [key, value] : body.items()) {
    bool* flag = key == "enabled"                      ? &policy.enabled
                 : key == "stop_on_srm"                ? &policy.stop_on_srm
                 : key == "stop_on_guardrail_harm"     ? &policy.stop_on_guardrail_harm
                 : key == "complete_when_decisive"     ? &policy.complete_when_decisive
                 : key == "complete_at_planned_sample" ? &policy.complete_at_planned_sample
                                                       : nullptr;
    if (flag) {
      if (!value.is_boolean()) return invalid_argument(key + " must be a boolean", key);
      *flag = value.get<bool>();
    } else if (key == "guardrail_metrics") {
      if (!value.is_array() || value.size() > 20) {
        return invalid_argument("guardrail_metrics must be an array of metric names", key);
      }
      for (std::size_t i = 0; i < value.size(); ++i) {
        if (!value[i].is_string() || value[i].get<std::string>().empty()) {
          return invalid_argument("a metric name", key + "[" + std::to_string(i) + "]");
        }
        policy.guardrail_metrics.push_back(value[i].get<std::string>());
      }
    } else if (key == "overrides") {
      if (!value.is_array() || value.size() > 100) {
        return invalid_argument("overrides must be an array", key);
      }
      for (std::size_t i = 0; i < value.size(); ++i) {
        const std::string field = key + "[" + std::to_string(i) + "]";
        const json& o = value[i];
        if (!o.is_object() || !o.contains("phase") || !o["phase"].is_number_integer() ||
            !o.contains("check") || !o["check"].is_string()) {
          return invalid_argument("an override is {\"phase\": N, \"check\": NAME}", field);
        }
        policy.overrides.push_back({o["phase"].get<int>(), o["check"].get<std::string>()});
      }
    } else {
      return invalid_argument("unknown field", key);
    }
  }
  return policy;
}

namespace {

double number(const json& value, double fallback = 0) {
  return value.is_number() ? value.get<double>() : fallback;
}

}  // namespace

std::vector<HealthFinding> health_findings(const json& results,
                                           const std::vector<std::string>& guardrails,
                                           std::int64_t min_sample_size) {
  std::vector<HealthFinding> findings;
  if (!results.is_object()) return findings;
  const std::string control = results.value("control", "control");
  if (results.contains("srm") && results["srm"].is_object() &&
      results["srm"].value("mismatch", false)) {
    findings.push_back({"srm",
                        "Sample ratio mismatch: exposures per group differ from the allocation "
                        "(chi-square p = " +
                            std::to_string(number(results["srm"]["p_value"])) + ")",
                        results["srm"]});
  }
  const double total = number(results.value("total_exposures", json(0)));
  const double multi = number(results.value("multi_variant_users", json(0)));
  if (total > 0 && multi / total > 0.01) {
    findings.push_back({"multi_variant_users",
                        std::to_string(static_cast<long long>(multi)) +
                            " users were exposed to more than one variant",
                        {{"multi_variant_users", multi},
                         {"total_exposures", total},
                         {"share", multi / total}}});
  }
  const json metrics = results.value("metrics", json::array());
  if (min_sample_size > 0 && !metrics.empty() && metrics[0].contains("groups")) {
    bool reached = true;
    json sizes = json::object();
    for (const auto& [name, group] : metrics[0]["groups"].items()) {
      const double n = number(group.value("sample_size", json(0)));
      sizes[name] = n;
      if (n < static_cast<double>(min_sample_size)) reached = false;
    }
    if (reached && !sizes.empty()) {
      findings.push_back({"sample_size_reached",
                          "Every group reached the planned " + std::to_string(min_sample_size) +
                              " users",
                          {{"min_sample_size", min_sample_size}, {"sample_sizes", sizes}}});
    }
  }
  // Guardrails: the named metrics, else the secondary metrics, else the primary.
  std::vector<std::string> names = guardrails;
  if (names.empty()) {
    for (std::size_t m = 1; m < metrics.size(); ++m) names.push_back(metrics[m].value("name", ""));
    if (names.empty() && !metrics.empty()) names.push_back(metrics[0].value("name", ""));
  }
  json harmed = json::array();
  for (const json& metric : metrics) {
    const std::string name = metric.value("name", "");
    if (std::find(names.begin(), names.end(), name) == names.end()) continue;
    const bool higher_is_better = metric.value("higher_is_better", true);
    if (!metric.contains("groups") || !metric["groups"].is_object()) continue;
    for (const auto& [group_name, group] : metric["groups"].items()) {
      if (group_name == control || !group.value("significant", false)) continue;
      if (!group.contains("relative") || !group["relative"].is_object()) continue;
      const json& ci = group["relative"].value("ci", json::array());
      if (!ci.is_array() || ci.size() != 2 || !ci[0].is_number() || !ci[1].is_number()) continue;
      const bool harm = higher_is_better ? ci[1].get<double>() < 0 : ci[0].get<double>() > 0;
      if (harm) {
        harmed.push_back({{"metric", name},
                          {"group", group_name},
                          {"relative_lift", group["relative"].value("estimate", json(nullptr))},
                          {"ci", ci},
                          {"p_value", group.value("adjusted_p_value", json(nullptr))},
                          {"higher_is_better", higher_is_better}});
      }
    }
  }
  if (!harmed.empty()) {
    findings.push_back({"guardrail_harm",
                        "Guardrail harmed: " + harmed[0]["group"].get<std::string>() +
                            " is significantly worse than " + control + " on " +
                            harmed[0]["metric"].get<std::string>(),
                        {{"harmed", harmed}, {"control", control}}});
  }
  if (results.value("analysis_method", "") == "sequential" && results.contains("winner") &&
      results["winner"].is_string()) {
    findings.push_back({"decisive",
                        "The sequential (always-valid) test is decisive: " +
                            results["winner"].get<std::string>() + " wins",
                        {{"winner", results["winner"]},
                         {"recommendation", results.value("recommendation", "")},
                         {"group_analysis", results.value("group_analysis", json::object())}}});
  }
  return findings;
}

const char* policy_action_name(PolicyAction action) {
  switch (action) {
    case PolicyAction::kPause: return "pause";
    case PolicyAction::kComplete: return "complete";
    case PolicyAction::kNone: break;
  }
  return "none";
}

PolicyDecision decide_policy(const ExperimentPolicy& policy, int phase,
                             const std::vector<HealthFinding>& findings) {
  PolicyDecision decision;
  if (!policy.enabled) return decision;
  auto take = [&](const std::string& check, bool wanted, PolicyAction action) {
    if (!wanted || policy.overridden(phase, check)) return false;
    for (const auto& finding : findings) {
      if (finding.check == check) {
        decision = {action, check, finding.summary, finding.evidence};
        return true;
      }
    }
    return false;
  };
  if (take("guardrail_harm", policy.stop_on_guardrail_harm, PolicyAction::kPause)) return decision;
  if (take("srm", policy.stop_on_srm, PolicyAction::kPause)) return decision;
  if (take("decisive", policy.complete_when_decisive, PolicyAction::kComplete)) return decision;
  if (take("sample_size_reached", policy.complete_at_planned_sample, PolicyAction::kComplete)) {
    return decision;
  }
  return decision;
}

}  // namespace fulcrum::automation
