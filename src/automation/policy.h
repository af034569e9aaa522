// Experiment health checks and opt-in policies, as pure functions of an A/B test's results
// document (experiments::analyze_ab_test_results) and its policy.
//
// Health checks: "srm" (the results' chi-square sample-ratio test flags a mismatch),
// "multi_variant_users" (more than 1% of exposed users were seen in several variants),
// "sample_size_reached" (every group reached the planned min_sample_size), "guardrail_harm"
// (a treatment is significantly worse than control on a guardrail metric: its relative
// lift's confidence interval lies entirely on the harmful side, after the results' own
// multiple-testing adjustment) and "decisive" (a sequential, always-valid test has a
// winner). Guardrail metrics are the policy's `guardrail_metrics`, by default every
// secondary success metric and, for a test with a single metric, the primary one: the
// results document has no separate guardrail section yet.
//
// A policy (Store document kind "experiment_policy", id = test id, opt-in per test):
//   {"enabled": true, "stop_on_srm": true, "stop_on_guardrail_harm": true,
//    "guardrail_metrics": [...], "complete_when_decisive": true,
//    "complete_at_planned_sample": false, "overrides": [{"phase": 0, "check": "srm"}]}
// An admin override (POST /ab-tests/{id}/policy/override) records that a check must not act
// again on this phase, e.g. after the admin resumed a test the policy paused.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/status.h"

namespace fulcrum::automation {

inline constexpr const char* kPolicyKind = "experiment_policy";

struct PolicyOverride {
  int phase = 0;
  std::string check;
};

struct ExperimentPolicy {
  bool enabled = true;
  bool stop_on_srm = true;
  bool stop_on_guardrail_harm = true;
  std::vector<std::string> guardrail_metrics;
  bool complete_when_decisive = true;
  bool complete_at_planned_sample = false;
  std::vector<PolicyOverride> overrides;

  nlohmann::json to_json() const;
  bool overridden(int phase, const std::string& check) const;
};

// Strict: unknown fields and wrong types are kInvalidArgument naming the field.
Result<ExperimentPolicy> parse_policy(const nlohmann::json& body);

const std::vector<std::string>& health_checks();

struct HealthFinding {
  std::string check;
  std::string summary;
  nlohmann::json evidence;
};

// The findings of one results document. `guardrails` empty: the default guardrails above.
std::vector<HealthFinding> health_findings(const nlohmann::json& results,
                                           const std::vector<std::string>& guardrails,
                                           std::int64_t min_sample_size);

enum class PolicyAction { kNone, kPause, kComplete };
const char* policy_action_name(PolicyAction action);

struct PolicyDecision {
  PolicyAction action = PolicyAction::kNone;
  std::string check;  // the finding that decided
  std::string summary;
  nlohmann::json evidence;
};

// Safety first: SRM or guardrail harm pause the test; then a decisive sequential result or
// the planned sample completes it (winner from the analysis). Overridden checks are skipped.
PolicyDecision decide_policy(const ExperimentPolicy& policy, int phase,
                             const std::vector<HealthFinding>& findings);

}  // namespace fulcrum::automation
