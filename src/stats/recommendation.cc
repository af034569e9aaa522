#include "stats/recommendation.h"

#include <fmt/format.h>

#include <cmath>

namespace fulcrum::stats {
namespace {

std::string describe_effect(const RecommendationInput& input) {
  const EffectTest& e = input.effect;
  if (input.effect_is_relative) {
    return fmt::format("{:+.2f}% (CI {:+.2f}% to {:+.2f}%)", 100 * e.estimate, 100 * e.ci.lower,
                       100 * e.ci.upper);
  }
  return fmt::format("{:+.4g} (CI {:+.4g} to {:+.4g})", e.estimate, e.ci.lower, e.ci.upper);
}

}  // namespace

const char* action_name(Action action) {
  switch (action) {
    case Action::kShip:
      return "ship";
    case Action::kKeepRunning:
      return "keep_running";
    case Action::kStop:
      return "stop";
  }
  return "keep_running";
}

Recommendation recommend(const RecommendationInput& input) {
  Recommendation out;
  if (input.sample_ratio_mismatch) {
    out.action = Action::kStop;
    out.text =
        "Stop: the group sizes do not match the configured traffic "
        "allocation (sample ratio "
        "mismatch, p < 0.001), so assignment or logging is broken and "
        "the results cannot be "
        "trusted. Fix the cause and restart the test.";
    return out;
  }
  const bool significant = input.p_value < input.alpha;
  const bool improves =
      input.higher_is_better ? input.effect.estimate > 0 : input.effect.estimate < 0;
  const std::string effect = describe_effect(input);
  const std::string p_text = fmt::format("p = {:.4g}", input.p_value);
  if (significant && improves) {
    out.action = Action::kShip;
    out.text = fmt::format("Ship {}: it improves {} by {}, {} < {}.", input.treatment, input.metric,
                           effect, p_text, input.alpha);
    return out;
  }
  if (significant) {
    out.action = Action::kStop;
    out.text = fmt::format("Stop: {} makes {} worse by {}, {} < {}. Keep the control.",
                           input.treatment, input.metric, effect, p_text, input.alpha);
    return out;
  }
  const bool powered = !input.required_n_per_group ||
                       static_cast<double>(input.n_per_group) >= *input.required_n_per_group;
  if (powered && input.required_n_per_group) {
    out.action = Action::kStop;
    out.text = fmt::format(
        "Stop: with {} users per group the test had {:.0f}% "
        "power for the target effect and "
        "found none on {} ({}, {}). The change makes no "
        "meaningful difference; keep the "
        "simpler variant.",
        input.n_per_group, 100 * input.target_power, input.metric, effect, p_text);
    return out;
  }
  out.action = Action::kKeepRunning;
  if (!input.required_n_per_group) {
    out.text = fmt::format("Keep running: no significant difference on {} yet ({}, {}).",
                           input.metric, effect, p_text);
    return out;
  }
  const double missing = *input.required_n_per_group - static_cast<double>(input.n_per_group);
  out.additional_users_per_group = static_cast<std::int64_t>(std::ceil(missing));
  std::string when;
  if (input.daily_users_per_group && *input.daily_users_per_group > 0) {
    out.days_needed = static_cast<std::int64_t>(std::ceil(missing / *input.daily_users_per_group));
    when = fmt::format(", about {} more day{} at the current traffic", *out.days_needed,
                       *out.days_needed == 1 ? "" : "s");
  }
  out.text = fmt::format(
      "Keep running: no significant difference on {} yet ({}, {}). "
      "The test needs {} more "
      "users per group to reach {:.0f}% power{}.",
      input.metric, effect, p_text, *out.additional_users_per_group, 100 * input.target_power,
      when);
  return out;
}

}  // namespace fulcrum::stats
