// analyze_ab_test_results: reads the store's pushed-down sufficient statistics for the
// current phase, runs stats::analyze() and shapes the contract's results document:
// {
//   "test_id", "test_name", "status", "phase", "analysis_method", "alpha",
//   "winner": group | null (only when significant), "winner_forced",
//   "recommendation": plain text, "recommendation_action": ship|keep_running|stop,
//   "decision_rule": the rule that decided (stats::decision_rule_name, or
//     "bayesian_chance_to_beat_control" / "min_sample_size"), "decided_by_metric",
//   "days_needed", "additional_users_per_group",
//   "group_analysis": {group: {conversion_rate, statistical_significance, p_value, winner,
//                              sample_size, lift, confidence_interval, raw_p_value,
//                              chance_to_beat_control}},
//   "metrics": [{name, type, primary, role, higher_is_better, cuped_applied,
//                groups: {group: {..., guardrail (guardrail metrics)}}}],
//   "srm": {p_value, chi_square, mismatch, observed, expected},
//   "multi_variant_users", "total_exposures", "days_running",
//   "health": {multi_variant_share, multi_variant_limit (0.01), multi_variant_flag, message},
//   "daily_cumulative": {metric, groups: {group: [{date, users, converted, conversion_rate}]}},
//   metrics[].quantile (quantile metrics: the level), metrics[].capping (capped metrics:
//     {type, value, ignore_zeros, cap, users_capped: {group: n}, uncapped: {group: {...the
//     same fields}}}; "groups" holds the capped comparison, which decides),
//   "metrics_not_analysed": [{name, type, role, reason}] (a quantile metric too small for
//     its interval yet),
//   "slices": null, or with ?slice=: {attribute, metric, top, correction, capped_at,
//     rows: [{value, other, tested, users, groups: {group: {...as metrics[].groups}}}]},
//   "cupac": with ?cupac=true only, experiments/cupac.h cupac_report() (every binomial and
//     continuous metric unadjusted, with plain CUPED and with CUPAC side by side, and the
//     variance each cuts),
//   "bandit": bandit tests only, experiments/bandit.h bandit_summary() (current weights,
//     probability best per arm, the weights history); their SRM expects the exposure shares
//     the weights history implies (srm.expected), not the starting traffic_allocation
// }
// group_analysis fields are numbers in every state (no data yet, one group empty, a test
// that just started), so callers can format them without checks:
//   p_value: the multiplicity-adjusted p-value (Holm over all metric x treatment comparisons)
//     of this group against the control on the primary metric; raw_p_value is unadjusted.
//     The control's p_value is 1.0 (the control compared with itself shows no difference),
//     and so is a treatment's while there is too little data to test.
//   statistical_significance: 1 - p_value, in [0, 1] (the control: 0.0). The same number
//     under the same name as in `fulcrum analyze` and GET /dashboard.
//   significant: p_value < alpha (the boolean decision).
//   conversion_rate: 0.0 for a group with no exposed users.
#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <span>

#include "experiments/bandit.h"
#include "experiments/cupac.h"
#include "experiments/results_json.h"
#include "experiments/service.h"
#include "stats/analysis.h"
#include "stats/analysis_json.h"
#include "stats/capping.h"
#include "stats/quantile.h"

namespace fulcrum::experiments {
namespace {

using json = nlohmann::json;

json number_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

const stats::GroupResult* find_group(const stats::MetricResult& metric, const std::string& name) {
  for (const auto& g : metric.groups) {
    if (g.name == name) return &g;
  }
  return nullptr;
}

// One group of a metric's comparison, as metrics[].groups.{group}.
json metric_group_json(const stats::GroupResult& g) {
  json entry = {{"sample_size", g.n},
                {"mean", number_or_null(g.mean)},
                {"variance", number_or_null(g.variance)},
                {"is_control", g.is_control}};
  if (g.vs_control) {
    const auto& t = *g.vs_control;
    entry["absolute"] = effect_json(t.absolute);
    entry["relative"] = t.relative ? effect_json(*t.relative) : json(nullptr);
    entry["p_value"] = number_or_null(t.p_value);
    entry["adjusted_p_value"] = number_or_null(t.adjusted_p_value);
    entry["significant"] = t.significant;
    entry["chance_to_beat_control"] = number_or_null(t.chance_to_beat_control);
    if (t.guardrail) entry["guardrail"] = stats::guardrail_check_to_json(*t.guardrail);
    if (t.bayesian) {
      entry["bayesian"] = {
          {"posterior_mean", number_or_null(t.bayesian->posterior_mean)},
          {"posterior_sd", number_or_null(t.bayesian->posterior_sd)},
          {"chance_to_beat_control", number_or_null(t.bayesian->chance_to_beat_control)},
          {"expected_loss_treatment", number_or_null(t.bayesian->expected_loss_treatment)},
          {"expected_loss_control", number_or_null(t.bayesian->expected_loss_control)}};
    }
  }
  return entry;
}

json groups_json(const std::vector<stats::GroupResult>& groups) {
  json out = json::object();
  for (const auto& g : groups) out[g.name] = metric_group_json(g);
  return out;
}

// Why a quantile metric cannot be tested yet (empty: it can): every group's interval must
// exist (gbstats' rank bounds inside the sample, a non-zero spread).
std::string quantile_unready_reason(const stats::MetricInput& metric) {
  for (const auto& [group, input] : metric.groups) {
    auto summary =
        stats::summarize_quantile(input.values.value_or(std::vector<double>{}), metric.quantile);
    if (!summary) return group + ": " + summary.status().message();
    auto estimate = stats::quantile_estimate(*summary);
    if (!estimate) return group + ": " + estimate.status().message();
  }
  return {};
}

// Index of the metric whose rate is reported as conversion_rate: the first binomial
// success metric, else the primary one.
std::size_t conversion_metric_index(const ExperimentConfig& config) {
  for (std::size_t i = 0; i < config.success_metrics.size(); ++i) {
    if (config.success_metrics[i].type == stats::MetricType::kBinomial) return i;
  }
  return 0;
}

Result<json> daily_chart(Store& store, const std::string& key, const std::string& metric) {
  auto rows = store.daily_cumulative(key, metric);
  if (!rows) return rows.status();
  json groups = json::object();
  for (const auto& row : *rows) {
    groups[row.variant].push_back(
        {{"date", format_date(row.day)},
         {"users", row.users},
         {"converted", row.converted},
         {"conversion_rate",
          row.users > 0 ? static_cast<double>(row.converted) / row.users : 0.0}});
  }
  return json{{"metric", metric}, {"groups", groups}};
}

// Users exposed to more than one variant dilute both groups and usually mean a broken
// assignment (a cache, a second id, a client that re-buckets); above 1% of the exposed users
// the results are flagged (GrowthBook's "multiple exposures" health check).
inline constexpr double kMultiVariantShareLimit = 0.01;

json health_check(std::int64_t multi_variant_users, std::int64_t total_exposures) {
  const double share = total_exposures > 0 ? static_cast<double>(multi_variant_users) /
                                                 static_cast<double>(total_exposures)
                                           : 0.0;
  const bool flagged = share > kMultiVariantShareLimit;
  return {{"multi_variant_share", share},
          {"multi_variant_limit", kMultiVariantShareLimit},
          {"multi_variant_flag", flagged},
          {"message", flagged ? "More than 1% of the exposed users saw more than one variant: "
                                "check the assignment before trusting these results."
                              : ""}};
}

}  // namespace

json effect_json(const stats::EffectTest& t) {
  return {{"estimate", number_or_null(t.estimate)},
          {"standard_error", number_or_null(t.standard_error)},
          {"ci", {number_or_null(t.ci.lower), number_or_null(t.ci.upper)}},
          {"p_value", number_or_null(t.p_value)}};
}

Status validate_results_options(const ResultsOptions& options) {
  if (options.slice && !is_slice_attribute_name(*options.slice)) {
    return invalid_argument(
        "must name a user attribute: tier, country, app_version or a free-form attribute "
        "(1 to 64 of A-Z a-z 0-9 _ -, starting with a letter or _)",
        "slice");
  }
  if (options.slice_top < 1 || options.slice_top > kMaxSliceTop) {
    return invalid_argument("must be an integer from 1 to " + std::to_string(kMaxSliceTop),
                            "slice_top");
  }
  if (options.post_stratify && !options.slice) {
    return invalid_argument("post-stratification needs slice=<attribute>", "post_stratify");
  }
  return Status::ok();
}

Result<json> analyze_ab_test_results(Store& store, const Clock& clock, const std::string& test_id,
                                     const ResultsOptions& options) {
  FULCRUM_RETURN_IF_ERROR(validate_results_options(options));
  auto loaded = get_ab_test(store, test_id);
  if (!loaded) return loaded.status();
  const Experiment& e = *loaded;
  const ExperimentConfig& config = e.config;
  const std::string key = e.exposure_key();

  auto exposures = store.exposure_counts(key);
  if (!exposures) return exposures.status();
  std::map<std::string, std::int64_t> exposed;
  std::int64_t total_exposures = 0, unknown_variant = 0;
  for (const auto& [variant, count] : *exposures) {
    if (config.find_group(variant)) {
      exposed[variant] = count;
      total_exposures += count;
    } else {
      unknown_variant += count;
    }
  }
  auto multi = store.count_multi_variant_users(key);
  if (!multi) return multi.status();

  // Days the current phase has been running (to turn "users still needed" into days).
  std::optional<double> days_running;
  if (!e.phases.empty() && e.phases.back().started_at) {
    const UnixSeconds end = e.phases.back().ended_at.value_or(clock.now());
    days_running = std::max(1.0, static_cast<double>(end - *e.phases.back().started_at) /
                                     static_cast<double>(kSecondsPerDay));
  }

  stats::AnalysisInput input;
  input.control = config.control;
  for (const GroupSpec& g : config.groups) input.allocation[g.name] = g.weight;
  std::optional<json> bandit;
  if (config.bandit.enabled) {
    auto summary = bandit_summary(store, e);
    if (!summary) return summary.status();
    bandit = std::move(*summary);
    auto history = bandit_history(store, e.test_id);
    if (!history) return history.status();
    std::vector<std::int64_t> users_now;
    for (const GroupSpec& g : config.groups) {
      auto it = exposed.find(g.name);
      users_now.push_back(it == exposed.end() ? 0 : it->second);
    }
    const std::vector<double> shares = bandit_expected_shares(e, *history, users_now);
    for (std::size_t i = 0; i < shares.size(); ++i) {
      // A floor keeps the chi-square defined for an arm the history starved.
      input.allocation[config.groups[i].name] = std::max(shares[i], 1e-9);
    }
  }
  input.alpha = config.alpha;
  input.sequential = config.method == AnalysisMethod::kSequential;
  input.target_power = config.target_power;
  input.target_mde = config.target_mde;
  input.days_elapsed = days_running;
  std::int64_t min_n = INT64_MAX;
  std::string primary_unready;  // why the primary (quantile) metric cannot be tested yet
  json not_analysed = json::array();
  std::map<std::string, std::string> capping_not_applied;  // metric -> why
  double primary_cap = INFINITY;  // the primary metric's cap in this analysis (slices use it)
  for (std::size_t m = 0; m < config.success_metrics.size(); ++m) {
    const MetricSpec& metric = config.success_metrics[m];
    stats::MetricInput metric_input;
    metric_input.name = metric.name;
    metric_input.type = metric.type;
    metric_input.higher_is_better = metric.higher_is_better;
    metric_input.role = metric.role;
    metric_input.non_inferiority_margin = metric.non_inferiority_margin;
    if (metric.type == stats::MetricType::kQuantile || metric.capping) {
      // Capping and quantiles need every exposed user's value (the percentile cap is taken
      // over all of them pooled, per analysis), not sums.
      // A capped continuous metric keeps CUPED: the 14 days before exposure come with each
      // user's value, and the analysis caps them with the metric's cap (as GrowthBook does).
      const bool continuous = metric.type == stats::MetricType::kContinuous;
      const std::array<UnixSeconds, 2> cuped_window = {0, kCupedPrePeriod};
      auto read = store.exposed_user_metric(
          key, metric.name,
          continuous ? std::span<const UnixSeconds>(cuped_window) : std::span<const UnixSeconds>());
      if (!read) return read.status();
      const ExposedUserMetric& users = *read;
      bool any_pre = false;
      for (double pre : users.pre) any_pre = any_pre || pre != 0;
      metric_input.quantile = metric.quantile.value_or(0.5);
      std::vector<std::vector<double>> values_by_group;
      for (const GroupSpec& g : config.groups) {
        stats::MetricGroupInput group;
        group.values.emplace();
        if (any_pre) group.pre_values.emplace();
        for (std::size_t u = 0; u < users.size(); ++u) {
          if (users.variants[users.variant_index[u]] != g.name) continue;
          group.values->push_back(users.post[u]);
          if (any_pre) group.pre_values->push_back(users.pre[u]);
        }
        group.n = static_cast<std::int64_t>(group.values->size());
        for (double value : *group.values) {
          group.sum += value;
          group.sum_squares += value * value;
        }
        min_n = std::min(min_n, group.n);
        values_by_group.push_back(*group.values);
        metric_input.groups[g.name] = std::move(group);
      }
      if (metric.capping) {
        auto capped = stats::cap_groups(values_by_group, *metric.capping);
        if (capped) {
          metric_input.capping = metric.capping;
          if (m == 0) primary_cap = capped->cap;
        } else {
          // E.g. ignore_zeros with nobody above zero yet: analysed uncapped, and said so.
          capping_not_applied[metric.name] = capped.status().message();
        }
      }
      if (metric.type == stats::MetricType::kQuantile && min_n >= 2) {
        const std::string reason = quantile_unready_reason(metric_input);
        if (!reason.empty() && m == 0) primary_unready = reason;
        if (!reason.empty() && m > 0) {
          not_analysed.push_back({{"name", metric.name},
                                  {"type", stats::metric_type_name(metric.type)},
                                  {"role", stats::metric_role_name(metric.role)},
                                  {"reason", reason}});
          continue;
        }
      }
      input.metrics.push_back(std::move(metric_input));
      continue;
    }
    auto rows = store.variant_metric_stats(key, metric.name, kCupedPrePeriod);
    if (!rows) return rows.status();
    bool any_pre = false;
    for (const auto& row : *rows) any_pre = any_pre || row.pre_sum_squares > 0;
    for (const GroupSpec& g : config.groups) {
      stats::MetricGroupInput group;
      for (const auto& row : *rows) {
        if (row.variant != g.name) continue;
        group.n = row.users;
        if (metric.type == stats::MetricType::kBinomial) {
          group.sum = group.sum_squares = static_cast<double>(row.converted);
        } else {
          group.sum = row.sum;
          group.sum_squares = row.sum_squares;
          if (any_pre) {
            group.pre_sum = row.pre_sum;
            group.pre_sum_squares = row.pre_sum_squares;
            group.pre_cross_sum = row.cross_sum;
          }
        }
      }
      min_n = std::min(min_n, group.n);
      metric_input.groups[g.name] = group;
    }
    input.metrics.push_back(std::move(metric_input));
  }

  // Slices of the primary metric, aggregated by the store per (attribute value, variant).
  std::optional<std::size_t> slice_input_index;
  if (options.slice) {
    const MetricSpec& primary = config.success_metrics.front();
    if (primary.type == stats::MetricType::kQuantile) {
      return invalid_argument(
          "slices compare the primary metric's means or rates; a quantile primary metric "
          "cannot be sliced",
          "slice");
    }
    auto rows = store.sliced_metric_stats(key, primary.name, *options.slice, primary_cap);
    if (!rows) return rows.status();
    stats::AnalysisInput::SliceDimension dimension;
    dimension.attribute = *options.slice;
    dimension.top = options.slice_top;
    dimension.merge_untestable = true;
    if (options.post_stratify && primary.type != stats::MetricType::kBinomial &&
        primary.type != stats::MetricType::kContinuous) {
      return invalid_argument("post-stratification needs a binomial or continuous primary metric",
                              "post_stratify");
    }
    dimension.post_stratify = options.post_stratify;
    for (const auto& row : *rows) {
      if (!config.find_group(row.variant)) continue;
      stats::MetricGroupInput& group = dimension.values[row.slice][row.variant];
      group.n = row.users;
      if (primary.type == stats::MetricType::kBinomial) {
        group.sum = group.sum_squares = static_cast<double>(row.converted);
      } else {
        group.sum = row.sum;
        group.sum_squares = row.sum_squares;
      }
    }
    if (!dimension.values.empty()) {
      slice_input_index = input.slices.size();
      input.slices.push_back(std::move(dimension));
    }
  }

  const std::size_t conversion_index = conversion_metric_index(config);
  json out = {{"test_id", e.test_id},
              {"test_name", config.test_name},
              {"feature_name", config.feature_name},
              {"status", status_name(e.status)},
              {"phase", e.phase},
              {"analysis_method", analysis_method_name(config.method)},
              {"alpha", config.alpha},
              {"control", config.control},
              {"primary_metric", config.success_metrics.front().name},
              {"total_exposures", total_exposures},
              {"multi_variant_users", *multi},
              {"health", health_check(*multi, total_exposures)},
              {"unknown_variant_exposures", unknown_variant},
              {"days_running", days_running ? json(*days_running) : json(nullptr)},
              {"winner_forced", e.winner_forced}};
  auto chart = daily_chart(store, key, config.success_metrics[conversion_index].name);
  if (!chart) return chart.status();
  out["daily_cumulative"] = std::move(*chart);
  if (bandit) out["bandit"] = std::move(*bandit);

  out["metrics_not_analysed"] = not_analysed;
  out["slices"] = nullptr;
  // Too little data for any test: report counts and raw rates, keep running.
  if (min_n < 2 || !primary_unready.empty()) {
    json groups = json::object();
    const auto& conversion = input.metrics[conversion_index];
    for (const GroupSpec& g : config.groups) {
      const auto& stats_in = conversion.groups.at(g.name);
      groups[g.name] = {{"conversion_rate", stats_in.n > 0 ? stats_in.sum / stats_in.n : 0.0},
                        {"statistical_significance", 0.0},
                        {"p_value", 1.0},
                        {"significant", false},
                        {"winner", e.winner_forced && e.winner == g.name},
                        {"is_control", g.name == config.control},
                        {"sample_size", stats_in.n}};
    }
    out["group_analysis"] = groups;
    out["winner"] = e.winner_forced ? json(*e.winner) : json(nullptr);
    out["recommendation"] =
        min_n < 2 ? "Keep running: not enough exposed users yet to compare the groups (smallest "
                    "group has " +
                        std::to_string(min_n) + ")."
                  : "Keep running: " + config.success_metrics.front().name +
                        " cannot be tested yet (" + primary_unready + ").";
    out["recommendation_action"] = "keep_running";
    out["decision_rule"] = stats::decision_rule_name(stats::DecisionRule::kUnderpowered);
    out["decided_by_metric"] = nullptr;
    out["metrics"] = json::array();
    out["srm"] = nullptr;
    if (options.cupac) out["cupac"] = {{"unavailable", "not enough exposed users yet"}};
    return out;
  }

  auto analysis = stats::analyze(input);
  if (!analysis && input.cuped) {
    // CUPED can be degenerate (e.g. a constant pre-period); fall back to the plain test.
    input.cuped = false;
    analysis = stats::analyze(input);
  }
  if (!analysis) return analysis.status();
  const stats::AnalysisOutput& result = *analysis;

  std::optional<std::string> winner = result.winner;
  std::string action = stats::action_name(result.recommendation.action);
  std::string text = result.recommendation.text;
  const stats::MetricResult& primary = result.metrics.front();

  if (config.method == AnalysisMethod::kBayesian) {
    // Decide on the posterior: a treatment wins when its chance to beat control reaches
    // 1 - alpha; the control wins when every treatment's chance is at most alpha.
    const stats::GroupResult* best = nullptr;
    bool all_worse = true;
    for (const auto& g : primary.groups) {
      if (!g.vs_control) continue;
      if (!best || g.vs_control->chance_to_beat_control > best->vs_control->chance_to_beat_control)
        best = &g;
      if (g.vs_control->chance_to_beat_control > config.alpha) all_worse = false;
    }
    winner.reset();
    if (best && best->vs_control->chance_to_beat_control >= 1 - config.alpha) {
      winner = best->name;
      action = "ship";
      text = "Ship " + best->name + ": " +
             std::to_string(
                 static_cast<int>(std::round(100 * best->vs_control->chance_to_beat_control))) +
             "% chance to beat " + config.control + " on " + primary.name + ".";
    } else if (best && all_worse) {
      winner = config.control;
      action = "stop";
      text = "Stop: every treatment is likely worse than " + config.control + " on " +
             primary.name + ". Keep the control.";
    } else if (action == "ship") {
      action = "keep_running";
      text = "Keep running: the posterior is not yet conclusive on " + primary.name + ".";
    }
  }
  std::string rule = stats::decision_rule_name(result.decision.rule);
  std::optional<std::string> decided_by = result.decision.metric;
  if (config.method == AnalysisMethod::kBayesian) {
    rule = "bayesian_chance_to_beat_control";
    decided_by = primary.name;
    if (action == "ship" && winner) {
      // The posterior picked a winner; its guardrails must still be non-inferior.
      stats::ShipDecisionInput guard;
      guard.treatment = *winner;
      guard.goals = {{primary.name, true, true}};
      for (const auto& metric : result.metrics) {
        if (metric.role != stats::MetricRole::kGuardrail) continue;
        const stats::GroupResult* g = find_group(metric, *winner);
        if (g && g->vs_control && g->vs_control->guardrail) {
          guard.guardrails.push_back(*g->vs_control->guardrail);
        }
      }
      const stats::ShipDecision checked = stats::decide_ship(guard);
      if (checked.action != stats::Action::kShip) {
        action = stats::action_name(checked.action);
        text = checked.text;
        rule = stats::decision_rule_name(checked.rule);
        decided_by = checked.metric;
        winner.reset();
      }
    }
  }
  if (action == "ship" && config.min_sample_size > 0 && min_n < config.min_sample_size) {
    rule = "min_sample_size";
    decided_by = primary.name;
    action = "keep_running";
    winner.reset();
    text = "Keep running: the difference looks significant, but the smallest group has " +
           std::to_string(min_n) + " users of the planned minimum " +
           std::to_string(config.min_sample_size) + ".";
  }
  if (e.winner_forced) winner = e.winner;

  json group_analysis = json::object();
  const stats::MetricResult& conversion = result.metrics[conversion_index];
  for (const GroupSpec& g : config.groups) {
    const stats::GroupResult* p = find_group(primary, g.name);
    const stats::GroupResult* c = find_group(conversion, g.name);
    const double conversion_rate = c && std::isfinite(c->mean) ? c->mean : 0.0;
    json entry = {{"conversion_rate", conversion_rate},
                  {"sample_size", p ? p->n : 0},
                  {"winner", winner && *winner == g.name},
                  {"is_control", g.name == config.control}};
    if (p && p->vs_control) {
      const auto& t = *p->vs_control;
      // A test that cannot be computed (e.g. no variance in either group) is no evidence.
      const double p_value = std::isfinite(t.adjusted_p_value) ? t.adjusted_p_value : 1.0;
      entry["p_value"] = p_value;
      entry["statistical_significance"] = 1.0 - p_value;
      entry["significant"] = t.significant;
      entry["raw_p_value"] = number_or_null(t.p_value);
      entry["lift"] = t.relative ? number_or_null(t.relative->estimate) : json(nullptr);
      entry["confidence_interval"] = t.relative ? json{number_or_null(t.relative->ci.lower),
                                                       number_or_null(t.relative->ci.upper)}
                                                : json(nullptr);
      entry["absolute_difference"] = number_or_null(t.absolute.estimate);
      entry["chance_to_beat_control"] = number_or_null(t.chance_to_beat_control);
    } else {
      entry["p_value"] = 1.0;  // the control against itself
      entry["statistical_significance"] = 0.0;
      entry["significant"] = false;
    }
    group_analysis[g.name] = std::move(entry);
  }

  json metrics = json::array();
  for (std::size_t m = 0; m < result.metrics.size(); ++m) {
    const auto& metric = result.metrics[m];
    json entry = {{"name", metric.name},
                  {"type", stats::metric_type_name(metric.type)},
                  {"primary", m == 0},
                  {"role", stats::metric_role_name(metric.role)},
                  {"higher_is_better", metric.higher_is_better},
                  {"cuped_applied", metric.cuped_applied},
                  {"cuped_theta", number_or_null(metric.cuped_theta)},
                  {"sequential", result.sequential},
                  {"groups", groups_json(metric.groups)}};
    if (metric.quantile) entry["quantile"] = *metric.quantile;
    if (metric.capping) {
      const stats::CappingResult& capping = *metric.capping;
      // The uncapped comparison, side by side; not part of the correction family (its
      // adjusted_p_value is the raw one).
      entry["capping"] = {{"type", stats::cap_kind_name(capping.spec.kind)},
                          {"value", capping.spec.value},
                          {"ignore_zeros", capping.spec.ignore_zeros},
                          {"applied", true},
                          {"cap", number_or_null(capping.cap)},
                          {"users_capped", capping.users_capped},
                          {"uncapped", groups_json(capping.uncapped_groups)}};
    } else if (auto why = capping_not_applied.find(metric.name); why != capping_not_applied.end()) {
      const MetricSpec* spec = nullptr;
      for (const MetricSpec& s : config.success_metrics) {
        if (s.name == metric.name) spec = &s;
      }
      entry["capping"] = {{"type", stats::cap_kind_name(spec->capping->kind)},
                          {"value", spec->capping->value},
                          {"ignore_zeros", spec->capping->ignore_zeros},
                          {"applied", false},
                          {"reason", why->second}};
    }
    metrics.push_back(std::move(entry));
  }
  if (slice_input_index) {
    const stats::AnalysisOutput::SliceTable& table = result.slices.at(*slice_input_index);
    json rows = json::array();
    for (const auto& slice : table.slices) {
      rows.push_back({{"value", slice.value},
                      {"other", slice.other},
                      {"tested", slice.tested},
                      {"users", slice.users},
                      {"groups", groups_json(slice.groups)}});
    }
    out["slices"] = {{"attribute", table.attribute},
                     {"metric", primary.name},
                     {"top", options.slice_top},
                     {"correction", "holm"},
                     {"capped_at", std::isfinite(primary_cap) ? json(primary_cap) : json(nullptr)},
                     {"rows", std::move(rows)}};
    if (options.post_stratify) {
      out["slices"]["post_stratification"] = stats::post_stratification_to_json(table);
    }
  } else if (options.slice) {
    out["slices"] = {{"attribute", *options.slice}, {"metric", primary.name},
                     {"top", options.slice_top},    {"correction", "holm"},
                     {"capped_at", nullptr},        {"rows", json::array()}};
  }

  json observed = json::object(), expected = json::object();
  for (std::size_t i = 0; i < result.group_names.size(); ++i) {
    if (i < result.exposures.size()) observed[result.group_names[i]] = result.exposures[i];
    if (i < result.srm.expected.size()) expected[result.group_names[i]] = result.srm.expected[i];
  }
  out["srm"] = {{"p_value", number_or_null(result.srm.p_value)},
                {"chi_square", number_or_null(result.srm.chi_square)},
                {"mismatch", result.srm.mismatch},
                {"observed", observed},
                {"expected", expected}};
  out["winner"] = winner ? json(*winner) : json(nullptr);
  out["recommendation"] = text;
  out["recommendation_action"] = action;
  // Which rule of the decision (stats/decision.h) produced the action, and on which metric.
  out["decision_rule"] = rule;
  out["decided_by_metric"] = decided_by ? json(*decided_by) : json(nullptr);
  out["days_needed"] = result.recommendation.days_needed && action == "keep_running"
                           ? json(*result.recommendation.days_needed)
                           : json(nullptr);
  out["additional_users_per_group"] =
      result.recommendation.additional_users_per_group && action == "keep_running"
          ? json(*result.recommendation.additional_users_per_group)
          : json(nullptr);
  out["group_analysis"] = std::move(group_analysis);
  out["metrics"] = std::move(metrics);
  if (options.cupac) {
    std::map<std::string, double> caps;
    for (const auto& metric : result.metrics) {
      if (metric.capping) caps[metric.name] = metric.capping->cap;
    }
    auto report = cupac_report(store, e, caps);
    if (!report) return report.status();
    out["cupac"] = std::move(*report);
  }
  return out;
}

}  // namespace fulcrum::experiments
