// Experiment health checks and opt-in policies, as pure functions of an A/B test's results
// document (experiments::analyze_ab_test_results) and its policy.
//
// Health checks: "srm" (the results' chi-square sample-ratio test flags a mismatch),
// "multi_variant_users" (more than 1% of exposed users were seen in several variants),
// "sample_size_reached" (every group reached the planned min_sample_size), "guardrail_harm"
// (a treatment is significantly worse than control on a guardrail metric) and "decisive" (a
// sequential, always-valid test has a winner). Guardrail metrics are the policy's
// `guardrail_metrics`, by default the test's metrics whose metric_roles is "guardrail". For
// a guardrail-role metric the harm is the results' per-group `guardrail` entry: its
// one-sided test shows the treatment worse than the non-inferiority margin (stats/decision.h).
// A metric without a margin (a goal or secondary metric named in guardrail_metrics) is
// harmed when its relative lift's confidence interval, after the results' multiple-testing
// adjustment, lies entirely on the harmful side.
//
// A policy (Store document kind "experiment_policy", id = test id, opt-in per test):
//   {"enabled": true, "stop_on_srm": true, "stop_on_guardrail_harm": true,
//    "guardrail_metrics": [...], "complete_when_decisive": true,
//    "complete_at_planned_sample": false, "overrides": [{"phase": 0, "check": "srm"}]}
// An admin override (POST /ab-tests/{id}/policy/override) records that a check must not act
// again on this phase, e.g. after the admin resumed a test the policy paused.
//
// Coverage ramp (opt-in, "ramp" in the policy):
//   {"steps": [0.01, 0.05, 0.25, 0.5], "min_hours_per_step": 24, "min_users_per_step": 0,
//    "on_guardrail_harm": "previous_step" | "pause"}
// The experiment_policies job raises the test's coverage to the next step (seed-preserving,
// experiments::set_coverage) once the current step has lasted min_hours_per_step AND at least
// min_users_per_step more users were exposed during it, and no safety check (guardrail harm,
// SRM) fires. A guardrail harm rolls the coverage back to the previous step and holds the ramp
// ("previous_step"; at the first step, or with "pause", the test is paused instead). A held
// ramp moves again only after an admin override of "guardrail_harm" (with resume). The job's
// progress is "ramp_state" in the same document (kept by the job, never sent by people).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/time.h"

namespace fulcrum::automation {

inline constexpr const char* kPolicyKind = "experiment_policy";

struct PolicyOverride {
  int phase = 0;
  std::string check;
};

struct RampConfig {
  std::vector<double> steps;  // strictly increasing, each in (0, 1]
  double min_hours_per_step = 24;
  std::int64_t min_users_per_step = 0;  // users newly exposed during the step
  bool pause_on_harm = false;           // on_guardrail_harm: "pause" (else "previous_step")
  nlohmann::json to_json() const;
  friend bool operator==(const RampConfig&, const RampConfig&) = default;
};

// Where the ramp stands for one phase of the test.
struct RampState {
  int phase = 0;
  int step = 0;  // index into RampConfig::steps
  UnixSeconds step_started_at = 0;
  std::int64_t step_start_exposures = 0;  // the phase's exposed users when the step began
  std::string status = "ramping";         // "ramping", "done" (last step), "rolled_back"
  nlohmann::json to_json() const;
};

struct ExperimentPolicy {
  bool enabled = true;
  bool stop_on_srm = true;
  bool stop_on_guardrail_harm = true;
  std::vector<std::string> guardrail_metrics;
  bool complete_when_decisive = true;
  bool complete_at_planned_sample = false;
  std::vector<PolicyOverride> overrides;
  std::optional<RampConfig> ramp;
  std::optional<RampState> ramp_state;

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

// The automatic SRM and guardrail-harm checks wait until every group has this many users.
inline constexpr std::int64_t kMinUsersForAutomaticChecks = 100;

// The findings of one results document. `guardrails` empty: the guardrail-role metrics.
// The SRM and guardrail-harm findings are anytime-valid (safe to check at every look): SRM
// is the sequential Dirichlet-multinomial test (stats/srm.h) at the chi-square's threshold,
// guardrail harm the always-valid confidence sequence of the relative lift (stats/
// sequential.h) at the test's alpha; neither fires before every group involved has
// kMinUsersForAutomaticChecks users.
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

// The ramp's next move for an active test whose policy has a ramp. `coverage` is the test's
// coverage now, `exposed_users` the phase's exposed users (results' total_exposures).
// Rollback comes first (a guardrail_harm finding, not overridden for the phase, on a ramp
// that is not already held); then, when `safety_clear` (no other safety action is due), the
// start of the ramp for this phase or the advance to the next step.
enum class RampMove { kNone, kStart, kAdvance, kRollback, kPause };
const char* ramp_move_name(RampMove move);  // "none", "start", "advance", "rollback", "pause"

struct RampDecision {
  RampMove move = RampMove::kNone;
  double from = 0, to = 0;  // coverage before and after (equal for kPause)
  RampState next;           // the state to store after acting
  std::string summary;
  nlohmann::json evidence;
};
RampDecision decide_ramp(const ExperimentPolicy& policy, int phase, double coverage,
                         std::int64_t exposed_users, UnixSeconds now,
                         const std::vector<HealthFinding>& findings, bool safety_clear);

}  // namespace fulcrum::automation
