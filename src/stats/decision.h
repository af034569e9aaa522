// The ship decision over goal and guardrail metrics (a risk-aware decision rule in the sense
// of Schultzberg, Ankargren & Frånberg 2024, "Risk-aware product decisions in A/B tests with
// multiple metrics"): every metric of a test is a goal, a guardrail or a secondary metric.
// Ship only when a goal metric improves significantly, no goal metric is significantly
// worse, and every guardrail is shown non-inferior: its one-sided test of
//   H0: the treatment is worse than the control by at least `margin` (relative lift)
// rejects at level alpha. The guardrails form an intersection-union test (ship needs all of
// them to pass), which keeps the false-ship rate at alpha without a multiplicity correction
// (Berger 1982). A guardrail whose opposite one-sided test shows it significantly worse than
// its margin stops the test. The result names the rule that decided and, where one did, the
// metric, so callers (the results route, experiment policies) can act on it without reading
// text.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "stats/hypothesis.h"
#include "stats/recommendation.h"

namespace fulcrum::stats {

enum class MetricRole { kGoal, kGuardrail, kSecondary };
const char* metric_role_name(MetricRole role);  // "goal", "guardrail", "secondary"

// Relative margin used when a guardrail names none: the treatment may be at most 1% worse.
inline constexpr double kDefaultNonInferiorityMargin = 0.01;

struct GuardrailCheck {
  std::string metric;
  double margin = 0;  // relative (0.02 = may be 2% worse), >= 0
  // H0: worse by at least margin; p < alpha means non-inferior. Interval is one-sided.
  EffectTest non_inferiority;
  // H0: worse by less than margin; p < alpha means significantly worse than the margin.
  EffectTest harm;
  bool non_inferior = false;
  bool harmed = false;
};

// One guardrail for one treatment. `relative_lift` is the relative-lift test of the metric
// (estimate, standard error, df as the two-sided test computed them). The margin must be >= 0
// and finite (kInvalidArgument naming "non_inferiority_margin"); alpha in (0, 1).
Result<GuardrailCheck> check_guardrail(const std::string& metric, const EffectTest& relative_lift,
                                       bool higher_is_better, double margin, double alpha);

struct GoalEvidence {
  std::string metric;
  bool significant = false;  // after the multiplicity correction
  bool improves = false;     // estimate in the metric's good direction
};

struct ShipDecisionInput {
  std::string treatment = "the treatment";
  bool sample_ratio_mismatch = false;
  std::vector<GoalEvidence> goals;  // of the candidate treatment, primary first; not empty
  std::vector<GuardrailCheck> guardrails;
  // The primary goal has collected the users needed for the target power (a null result is
  // then evidence of no effect rather than of too little data).
  bool primary_powered = false;
};

enum class DecisionRule {
  kSampleRatioMismatch,      // stop: the data cannot be trusted
  kGoalHarmed,               // stop: a goal metric is significantly worse
  kGuardrailHarmed,          // stop: a guardrail is significantly worse than its margin
  kGoalWinsGuardrailsHold,   // ship
  kGuardrailNotNonInferior,  // keep running: a goal wins, a guardrail is not yet shown safe
  kPoweredNoEffect,          // stop: powered and no goal moved
  kUnderpowered,             // keep running
};
// "sample_ratio_mismatch", "goal_harmed", "guardrail_harmed", "goal_wins_guardrails_hold",
// "guardrail_not_non_inferior", "powered_no_effect", "underpowered"
const char* decision_rule_name(DecisionRule rule);

struct ShipDecision {
  Action action = Action::kKeepRunning;
  DecisionRule rule = DecisionRule::kUnderpowered;
  std::optional<std::string> metric;  // the metric that decided, when one did
  std::string text;                   // one sentence a person reads
};

// Rules in order: sample ratio mismatch, a goal significantly worse, a guardrail significantly
// worse than its margin, a goal winning with every guardrail non-inferior (ship), a goal
// winning with a guardrail not yet non-inferior, powered without a win, underpowered.
ShipDecision decide_ship(const ShipDecisionInput& input);

}  // namespace fulcrum::stats
