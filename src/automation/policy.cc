#include "automation/policy.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace fulcrum::automation {

using nlohmann::json;

json RampConfig::to_json() const {
  return {{"steps", steps},
          {"min_hours_per_step", min_hours_per_step},
          {"min_users_per_step", min_users_per_step},
          {"on_guardrail_harm", pause_on_harm ? "pause" : "previous_step"}};
}

json RampState::to_json() const {
  return {{"phase", phase},
          {"step", step},
          {"step_started_at", format_iso8601(step_started_at)},
          {"step_start_exposures", step_start_exposures},
          {"status", status}};
}

json ExperimentPolicy::to_json() const {
  json overrides_json = json::array();
  for (const auto& o : overrides) overrides_json.push_back({{"phase", o.phase}, {"check", o.check}});
  return {{"enabled", enabled},
          {"ramp", ramp ? ramp->to_json() : json(nullptr)},
          {"ramp_state", ramp_state ? ramp_state->to_json() : json(nullptr)},
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

namespace {

Result<RampConfig> parse_ramp(const json& value) {
  if (!value.is_object()) {
    return invalid_argument("ramp must be an object {\"steps\": [...], ...}", "ramp");
  }
  RampConfig ramp;
  if (!value.contains("steps")) return invalid_argument("ramp needs steps", "ramp.steps");
  for (const auto& [key, item] : value.items()) {
    const std::string field = "ramp." + key;
    if (key == "steps") {
      if (!item.is_array() || item.empty() || item.size() > 20) {
        return invalid_argument("steps must be an array of 1 to 20 coverages in (0, 1]", field);
      }
      for (std::size_t i = 0; i < item.size(); ++i) {
        const std::string step_field = field + "[" + std::to_string(i) + "]";
        if (!item[i].is_number()) return invalid_argument("a step must be a number", step_field);
        const double step = item[i].get<double>();
        if (!std::isfinite(step) || step <= 0 || step > 1) {
          return invalid_argument("a step must be a coverage in (0, 1]", step_field);
        }
        if (!ramp.steps.empty() && step <= ramp.steps.back()) {
          return invalid_argument("steps must be strictly increasing", step_field);
        }
        ramp.steps.push_back(step);
      }
    } else if (key == "min_hours_per_step") {
      if (!item.is_number() || !std::isfinite(item.get<double>()) || item.get<double>() < 0 ||
          item.get<double>() > 8760) {
        return invalid_argument("min_hours_per_step must be a number of hours in [0, 8760]",
                                field);
      }
      ramp.min_hours_per_step = item.get<double>();
    } else if (key == "min_users_per_step") {
      if (!item.is_number_integer() || item.get<std::int64_t>() < 0) {
        return invalid_argument("min_users_per_step must be a non-negative integer", field);
      }
      ramp.min_users_per_step = item.get<std::int64_t>();
    } else if (key == "on_guardrail_harm") {
      if (!item.is_string() || (item != "previous_step" && item != "pause")) {
        return invalid_argument("on_guardrail_harm must be \"previous_step\" or \"pause\"", field);
      }
      ramp.pause_on_harm = item == "pause";
    } else {
      return invalid_argument("unknown field", field);
    }
  }
  return ramp;
}

// The job's own record; lenient (a damaged state restarts the ramp rather than failing).
std::optional<RampState> parse_ramp_state(const json& value) {
  if (!value.is_object()) return std::nullopt;
  RampState state;
  state.phase = value.value("phase", 0);
  state.step = value.value("step", 0);
  state.step_started_at = parse_iso8601(value.value("step_started_at", "")).value_or(0);
  state.step_start_exposures = value.value("step_start_exposures", std::int64_t{0});
  state.status = value.value("status", "ramping");
  return state;
}

}  // namespace

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
    } else if (key == "ramp") {
      if (!value.is_null()) {
        auto ramp = parse_ramp(value);
        if (!ramp.is_ok()) return ramp.status();
        policy.ramp = std::move(*ramp);
      }
    } else if (key == "ramp_state") {
      policy.ramp_state = parse_ramp_state(value);
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
  // Guardrails: the policy's named metrics, else the test's metrics whose role is
  // "guardrail" (metric_roles).
  std::vector<std::string> names = guardrails;
  if (names.empty()) {
    for (const json& metric : metrics) {
      if (metric.value("role", "") == "guardrail") names.push_back(metric.value("name", ""));
    }
  }
  json harmed = json::array();
  for (const json& metric : metrics) {
    const std::string name = metric.value("name", "");
    if (std::find(names.begin(), names.end(), name) == names.end()) continue;
    const bool higher_is_better = metric.value("higher_is_better", true);
    if (!metric.contains("groups") || !metric["groups"].is_object()) continue;
    for (const auto& [group_name, group] : metric["groups"].items()) {
      if (group_name == control) continue;
      const json relative = group.contains("relative") && group["relative"].is_object()
                                ? group["relative"]
                                : json::object();
      const json ci = relative.value("ci", json::array());
      json entry = {{"metric", name},
                    {"group", group_name},
                    {"relative_lift", relative.value("estimate", json(nullptr))},
                    {"ci", ci},
                    {"higher_is_better", higher_is_better}};
      if (group.contains("guardrail") && group["guardrail"].is_object()) {
        // A guardrail metric: the results' one-sided test against its non-inferiority margin
        // (stats/decision.h): harmed = significantly worse than the margin.
        const json& check = group["guardrail"];
        if (!check.value("harmed", false)) continue;
        entry["rule"] = "non_inferiority_margin";
        entry["margin"] = check.value("margin", json(nullptr));
        entry["p_value"] = check.value("harm_p_value", json(nullptr));
        entry["worst_case_lift"] = check.value("worst_case_lift", json(nullptr));
        harmed.push_back(std::move(entry));
        continue;
      }
      // Any other metric named a guardrail: significantly worse, i.e. the relative lift's
      // interval (after the results' multiple-testing adjustment) on the harmful side.
      if (!group.value("significant", false)) continue;
      if (!ci.is_array() || ci.size() != 2 || !ci[0].is_number() || !ci[1].is_number()) continue;
      const bool harm = higher_is_better ? ci[1].get<double>() < 0 : ci[0].get<double>() > 0;
      if (!harm) continue;
      entry["rule"] = "confidence_interval";
      entry["p_value"] = group.value("adjusted_p_value", json(nullptr));
      harmed.push_back(std::move(entry));
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
  // With a ramp, guardrail harm is the ramp's business (decide_ramp: roll back or pause).
  if (take("guardrail_harm", policy.stop_on_guardrail_harm && !policy.ramp, PolicyAction::kPause)) {
    return decision;
  }
  if (take("srm", policy.stop_on_srm, PolicyAction::kPause)) return decision;
  if (take("decisive", policy.complete_when_decisive, PolicyAction::kComplete)) return decision;
  if (take("sample_size_reached", policy.complete_at_planned_sample, PolicyAction::kComplete)) {
    return decision;
  }
  return decision;
}

const char* ramp_move_name(RampMove move) {
  switch (move) {
    case RampMove::kStart: return "start";
    case RampMove::kAdvance: return "advance";
    case RampMove::kRollback: return "rollback";
    case RampMove::kPause: return "pause";
    case RampMove::kNone: break;
  }
  return "none";
}

namespace {

std::string percent(double share) {
  char text[32];
  std::snprintf(text, sizeof text, "%g%%", share * 100);
  return text;
}

}  // namespace

RampDecision decide_ramp(const ExperimentPolicy& policy, int phase, double coverage,
                         std::int64_t exposed_users, UnixSeconds now,
                         const std::vector<HealthFinding>& findings, bool safety_clear) {
  RampDecision decision;
  decision.from = decision.to = coverage;
  if (!policy.enabled || !policy.ramp || policy.ramp->steps.empty()) return decision;
  const std::vector<double>& steps = policy.ramp->steps;
  const int last = static_cast<int>(steps.size()) - 1;
  constexpr double kSame = 1e-9;

  // The state for this phase; a new phase (or a damaged state) starts the ramp again at the
  // highest step not above the coverage (the first step when the coverage is below it).
  bool fresh = !policy.ramp_state || policy.ramp_state->phase != phase ||
               policy.ramp_state->step < 0 || policy.ramp_state->step > last;
  RampState state = fresh ? RampState{} : *policy.ramp_state;
  double start_coverage = coverage;
  if (fresh) {
    state.phase = phase;
    state.step = 0;
    for (int i = 0; i <= last; ++i) {
      if (steps[static_cast<std::size_t>(i)] <= coverage + kSame) state.step = i;
    }
    if (coverage + kSame < steps[0]) start_coverage = steps[0];
    state.step_started_at = now;
    state.step_start_exposures = exposed_users;
    state.status = state.step == last ? "done" : "ramping";
  }

  const HealthFinding* harm = nullptr;
  for (const auto& finding : findings) {
    if (finding.check == "guardrail_harm") harm = &finding;
  }
  if (harm && policy.stop_on_guardrail_harm && !policy.overridden(phase, "guardrail_harm") &&
      state.status != "rolled_back") {
    const bool pause = policy.ramp->pause_on_harm || state.step == 0;
    decision.move = pause ? RampMove::kPause : RampMove::kRollback;
    decision.next = state;
    decision.next.status = "rolled_back";
    if (!pause) {
      decision.next.step = state.step - 1;
      decision.next.step_started_at = now;
      decision.next.step_start_exposures = exposed_users;
      decision.to = steps[static_cast<std::size_t>(decision.next.step)];
    }
    decision.summary = pause ? "ramp stopped at " + percent(coverage) + " and the test paused: " +
                                   harm->summary
                             : "coverage rolled back from " + percent(coverage) + " to " +
                                   percent(decision.to) + ": " + harm->summary;
    decision.evidence = {{"guardrail_harm", harm->evidence},
                         {"coverage_from", coverage},
                         {"coverage_to", decision.to},
                         {"step_from", state.step},
                         {"step_to", decision.next.step},
                         {"steps", steps}};
    return decision;
  }
  if (fresh) {
    decision.move = RampMove::kStart;
    decision.to = start_coverage;
    decision.next = state;
    decision.summary = "ramp started at step " + std::to_string(state.step + 1) + " of " +
                       std::to_string(last + 1) + " (" + percent(start_coverage) + ")";
    decision.evidence = {{"steps", steps}, {"step", state.step}};
    return decision;
  }
  if (!safety_clear || state.status != "ramping" || state.step >= last) return decision;
  const double dwell_seconds = policy.ramp->min_hours_per_step * 3600.0;
  const std::int64_t new_users = exposed_users - state.step_start_exposures;
  if (static_cast<double>(now - state.step_started_at) < dwell_seconds ||
      new_users < policy.ramp->min_users_per_step) {
    return decision;
  }
  decision.move = RampMove::kAdvance;
  decision.next = state;
  decision.next.step = state.step + 1;
  decision.next.step_started_at = now;
  decision.next.step_start_exposures = exposed_users;
  decision.next.status = decision.next.step == last ? "done" : "ramping";
  decision.to = steps[static_cast<std::size_t>(decision.next.step)];
  decision.summary = "coverage raised from " + percent(coverage) + " to " + percent(decision.to) +
                     " (step " + std::to_string(decision.next.step + 1) + " of " +
                     std::to_string(last + 1) + ")";
  decision.evidence = {{"coverage_from", coverage},
                       {"coverage_to", decision.to},
                       {"step_hours", static_cast<double>(now - state.step_started_at) / 3600.0},
                       {"users_exposed_during_step", new_users},
                       {"steps", steps}};
  return decision;
}

}  // namespace fulcrum::automation
