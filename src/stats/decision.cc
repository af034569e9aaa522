#include "stats/decision.h"

#include <fmt/format.h>

#include <cmath>

namespace fulcrum::stats {

const char* metric_role_name(MetricRole role) {
  switch (role) {
    case MetricRole::kGoal:
      return "goal";
    case MetricRole::kGuardrail:
      return "guardrail";
    case MetricRole::kSecondary:
      return "secondary";
  }
  return "secondary";
}

const char* decision_rule_name(DecisionRule rule) {
  switch (rule) {
    case DecisionRule::kSampleRatioMismatch:
      return "sample_ratio_mismatch";
    case DecisionRule::kGoalHarmed:
      return "goal_harmed";
    case DecisionRule::kGuardrailHarmed:
      return "guardrail_harmed";
    case DecisionRule::kGoalWinsGuardrailsHold:
      return "goal_wins_guardrails_hold";
    case DecisionRule::kGuardrailNotNonInferior:
      return "guardrail_not_non_inferior";
    case DecisionRule::kPoweredNoEffect:
      return "powered_no_effect";
    case DecisionRule::kUnderpowered:
      return "underpowered";
  }
  return "underpowered";
}

Result<GuardrailCheck> check_guardrail(const std::string& metric, const EffectTest& relative_lift,
                                       bool higher_is_better, double margin, double alpha) {
  if (!(alpha > 0 && alpha < 1)) return invalid_argument("alpha must be in (0, 1)", "alpha");
  if (!std::isfinite(margin) || margin < 0) {
    return invalid_argument(
        "must be a non-negative relative lift (0.02 = the treatment may be 2% worse)",
        "non_inferiority_margin");
  }
  GuardrailCheck check;
  check.metric = metric;
  check.margin = margin;
  // "Worse by the margin" is a lift of -margin when higher is better, +margin when lower is.
  const double boundary = higher_is_better ? -margin : margin;
  const Tail safe_side = higher_is_better ? Tail::kGreater : Tail::kLesser;
  const Tail harm_side = higher_is_better ? Tail::kLesser : Tail::kGreater;
  check.non_inferiority = one_sided_test(relative_lift.estimate, relative_lift.standard_error,
                                         relative_lift.df, alpha, safe_side, boundary);
  check.harm = one_sided_test(relative_lift.estimate, relative_lift.standard_error,
                              relative_lift.df, alpha, harm_side, boundary);
  check.non_inferior = check.non_inferiority.p_value < alpha;
  check.harmed = check.harm.p_value < alpha;
  return check;
}

ShipDecision decide_ship(const ShipDecisionInput& input) {
  ShipDecision out;
  if (input.sample_ratio_mismatch) {
    out.action = Action::kStop;
    out.rule = DecisionRule::kSampleRatioMismatch;
    out.text =
        "Stop: the group sizes do not match the configured traffic allocation (sample ratio "
        "mismatch), so the results cannot be trusted.";
    return out;
  }
  for (const GoalEvidence& goal : input.goals) {
    if (goal.significant && !goal.improves) {
      out.action = Action::kStop;
      out.rule = DecisionRule::kGoalHarmed;
      out.metric = goal.metric;
      out.text = fmt::format("Stop: {} makes the goal metric {} significantly worse.",
                             input.treatment, goal.metric);
      return out;
    }
  }
  for (const GuardrailCheck& guardrail : input.guardrails) {
    if (guardrail.harmed) {
      out.action = Action::kStop;
      out.rule = DecisionRule::kGuardrailHarmed;
      out.metric = guardrail.metric;
      out.text = fmt::format(
          "Stop: {} makes the guardrail {} worse by more than its {:.4g}% margin "
          "(one-sided p = {:.4g}).",
          input.treatment, guardrail.metric, 100 * guardrail.margin, guardrail.harm.p_value);
      return out;
    }
  }
  const GoalEvidence* winning = nullptr;
  for (const GoalEvidence& goal : input.goals) {
    if (goal.significant && goal.improves) {
      winning = &goal;
      break;
    }
  }
  if (winning) {
    for (const GuardrailCheck& guardrail : input.guardrails) {
      if (!guardrail.non_inferior) {
        out.action = Action::kKeepRunning;
        out.rule = DecisionRule::kGuardrailNotNonInferior;
        out.metric = guardrail.metric;
        out.text = fmt::format(
            "Keep running: {} wins on {}, but the guardrail {} is not yet shown to be at most "
            "{:.4g}% worse (one-sided p = {:.4g}).",
            input.treatment, winning->metric, guardrail.metric, 100 * guardrail.margin,
            guardrail.non_inferiority.p_value);
        return out;
      }
    }
    out.action = Action::kShip;
    out.rule = DecisionRule::kGoalWinsGuardrailsHold;
    out.metric = winning->metric;
    out.text = input.guardrails.empty()
                   ? fmt::format("Ship {}: it improves the goal metric {}.", input.treatment,
                                 winning->metric)
                   : fmt::format(
                         "Ship {}: it improves the goal metric {} and every guardrail is "
                         "within its margin.",
                         input.treatment, winning->metric);
    return out;
  }
  if (input.primary_powered) {
    out.action = Action::kStop;
    out.rule = DecisionRule::kPoweredNoEffect;
    out.text = "Stop: the test is powered and no goal metric moved.";
    return out;
  }
  out.action = Action::kKeepRunning;
  out.rule = DecisionRule::kUnderpowered;
  out.text = "Keep running: no goal metric has a significant difference yet.";
  return out;
}

}  // namespace fulcrum::stats
