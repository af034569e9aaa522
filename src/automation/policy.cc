#include "automation/policy.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "stats/sequential.h"
#include "stats/srm.h"

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
  // The jobs look at every running test every period, so a fixed-horizon check repeated at
  // every look would stop A/A tests far more often than its level. Both automatic checks
  // below are anytime-valid instead, and start only once every group has
  // kMinUsersForAutomaticChecks users (tests/automation/peeking_test.cc simulates both).
  if (results.contains("srm") && results["srm"].is_object()) {
    const json& srm = results["srm"];
    std::vector<std::int64_t> observed;
    std::vector<double> weights;
    bool enough = true;
    if (srm.contains("observed") && srm["observed"].is_object() && srm.contains("expected") &&
        srm["expected"].is_object()) {
      for (const auto& [group, count] : srm["observed"].items()) {
        const double expected = number(srm["expected"].value(group, json(0)));
        if (!count.is_number() || !(expected > 0)) {
          enough = false;
          break;
        }
        observed.push_back(count.get<std::int64_t>());
        weights.push_back(expected);
        if (observed.back() < kMinUsersForAutomaticChecks) enough = false;
      }
    }
    if (enough && observed.size() >= 2) {
      auto sequential = stats::sequential_sample_ratio_mismatch(observed, weights);
      if (sequential.is_ok() && sequential->mismatch) {
        json evidence = srm;
        evidence["rule"] = "sequential_dirichlet_multinomial";
        evidence["log_bayes_factor"] = sequential->log_bayes_factor;
        evidence["sequential_p_value"] = sequential->p_value;
        evidence["threshold"] = stats::kSrmThreshold;
        findings.push_back({"srm",
                            "Sample ratio mismatch: exposures per group differ from the "
                            "allocation (sequential p = " +
                                std::to_string(sequential->p_value) + ")",
                            std::move(evidence)});
      }
    }
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
  // Guardrail harm from the always-valid confidence sequence of the relative lift
  // (stats/sequential.h: Waudby-Smith et al. 2023, arXiv:2103.06476, eq. 9 for the
  // half-width), two-sided at the test's alpha, so each side crosses with probability at most
  // alpha at any look. With a non-inferiority margin (guardrail-role metrics) harm is the
  // whole sequence beyond the margin on the harmful side; without one, beyond zero, at alpha
  // split over the guardrail comparisons (Bonferroni).
  const double alpha = number(results.value("alpha", json(0.05)));
  const double tuning = stats::kDefaultSequentialTuning;
  std::int64_t unmargined_comparisons = 0;
  for (const json& metric : metrics) {
    const std::string name = metric.value("name", "");
    if (std::find(names.begin(), names.end(), name) == names.end()) continue;
    if (!metric.contains("groups") || !metric["groups"].is_object()) continue;
    for (const auto& [group_name, group] : metric["groups"].items()) {
      if (group_name != control && !group.contains("guardrail")) ++unmargined_comparisons;
    }
  }
  json harmed = json::array();
  for (const json& metric : metrics) {
    const std::string name = metric.value("name", "");
    if (std::find(names.begin(), names.end(), name) == names.end()) continue;
    const bool higher_is_better = metric.value("higher_is_better", true);
    if (!metric.contains("groups") || !metric["groups"].is_object()) continue;
    const json& groups = metric["groups"];
    const double control_n =
        groups.contains(control) ? number(groups[control].value("sample_size", json(0))) : 0;
    for (const auto& [group_name, group] : groups.items()) {
      if (group_name == control) continue;
      const double group_n = number(group.value("sample_size", json(0)));
      if (control_n < kMinUsersForAutomaticChecks || group_n < kMinUsersForAutomaticChecks) {
        continue;
      }
      const json relative = group.contains("relative") && group["relative"].is_object()
                                ? group["relative"]
                                : json::object();
      const double estimate = number(relative.value("estimate", json(nullptr)), NAN);
      const double standard_error = number(relative.value("standard_error", json(nullptr)), NAN);
      if (!std::isfinite(estimate) || !(standard_error > 0) || !(alpha > 0 && alpha < 1)) {
        continue;
      }
      const bool has_margin = group.contains("guardrail") && group["guardrail"].is_object();
      const double margin = has_margin ? number(group["guardrail"].value("margin", json(0))) : 0;
      const double level =
          has_margin
              ? alpha
              : alpha / static_cast<double>(std::max<std::int64_t>(1, unmargined_comparisons));
      const double total_n = control_n + group_n;
      const double half_width = stats::sequential_halfwidth(
          standard_error * standard_error * total_n, total_n, level, tuning);
      const double lower = estimate - half_width, upper = estimate + half_width;
      const bool harm = higher_is_better ? upper < -margin : lower > margin;
      if (!harm) continue;
      json entry = {{"metric", name},
                    {"group", group_name},
                    {"relative_lift", estimate},
                    {"confidence_sequence", {lower, upper}},
                    {"alpha", level},
                    {"higher_is_better", higher_is_better},
                    {"sample_sizes", {{control, control_n}, {group_name, group_n}}}};
      entry["anytime_valid"] = true;
      if (has_margin) {
        entry["rule"] = "non_inferiority_margin";
        entry["margin"] = margin;
        // The results' fixed-horizon one-sided test, for context only.
        entry["fixed_horizon_p_value"] = group["guardrail"].value("harm_p_value", json(nullptr));
      } else {
        entry["rule"] = "confidence_interval";
      }
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
