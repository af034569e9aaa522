#include "stats/analysis.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "stats/cuped.h"
#include "stats/power.h"
#include "stats/quantile.h"
#include "stats/sequential.h"

namespace fulcrum::stats {
namespace {

Status with_prefix(const Status& status, const std::string& prefix) {
  std::string field = status.field().empty() ? prefix : prefix + "." + status.field();
  return invalid_argument(status.message(), std::move(field));
}

Result<GroupEstimate> estimate_group(const MetricInput& metric, const MetricGroupInput& group) {
  switch (metric.type) {
    case MetricType::kBinomial:
      return proportion_estimate({group.n, group.sum, group.sum});
    case MetricType::kContinuous:
      return mean_estimate({group.n, group.sum, group.sum_squares});
    case MetricType::kRatio: {
      auto estimate = ratio_estimate({group.n, group.sum, group.sum_squares, group.denominator_sum,
                                      group.denominator_sum_squares, group.ratio_cross_sum});
      if (estimate) return estimate;
      // Report the JSON names: the numerator lives in sum / sum_squares.
      std::string field = estimate.status().field();
      if (field == "numerator_sum") field = "sum";
      if (field == "numerator_sum_squares") field = "sum_squares";
      if (field == "cross_sum") field = "ratio_cross_sum";
      return invalid_argument(estimate.status().message(), field);
    }
    case MetricType::kQuantile: {
      if (!group.values) return invalid_argument("quantile metrics need per-user values", "values");
      auto summary = summarize_quantile(*group.values, metric.quantile);
      if (!summary) return summary.status();
      return quantile_estimate(*summary);
    }
  }
  return invalid_argument("unknown metric type", "type");
}

bool has_pre(const MetricGroupInput& group) {
  return group.pre_sum && group.pre_sum_squares && group.pre_cross_sum;
}

struct PendingTreatment {
  size_t metric_index;
  size_t group_index;
};

struct MetricEvaluation {
  std::vector<GroupResult> groups;
  bool cuped_applied = false;
  double cuped_theta = 0;
};

// Every treatment of one metric against the control, without the multiplicity
// correction (adjusted_p_value is left equal to the raw p-value).
Result<MetricEvaluation> evaluate_metric(const MetricInput& metric, const AnalysisInput& input,
                                         const std::string& prefix) {
  // Control first, then treatments in name order.
  std::vector<std::pair<std::string, const MetricGroupInput*>> groups;
  groups.emplace_back(input.control, &metric.groups.at(input.control));
  for (const auto& [name, group] : metric.groups) {
    if (name != input.control) groups.emplace_back(name, &group);
  }
  MetricEvaluation evaluation;
  std::vector<GroupEstimate> estimates;
  for (const auto& [name, group] : groups) {
    auto estimate = estimate_group(metric, *group);
    if (!estimate) return with_prefix(estimate.status(), prefix + ".groups." + name);
    estimates.push_back(*estimate);
  }
  const bool use_cuped =
      input.cuped && metric.type == MetricType::kContinuous &&
      std::all_of(groups.begin(), groups.end(), [](const auto& g) { return has_pre(*g.second); });
  if (use_cuped) {
    std::vector<CupedStats> cuped_groups;
    for (const auto& [name, group] : groups) {
      cuped_groups.push_back({{group->n, group->sum, group->sum_squares},
                              *group->pre_sum,
                              *group->pre_sum_squares,
                              *group->pre_cross_sum});
    }
    auto adjustment = cuped_adjust(cuped_groups);
    if (!adjustment) return with_prefix(adjustment.status(), prefix + ".groups");
    evaluation.cuped_applied = true;
    evaluation.cuped_theta = adjustment->theta;
    estimates = adjustment->adjusted;
  }
  // Ratio CUPED compares each treatment with the control on its own pair's theta (gbstats
  // computes theta per pair); the groups show the first pair's adjusted ratios.
  std::vector<std::optional<Comparison>> ratio_cuped(groups.size());
  const bool use_ratio_cuped = input.cuped && metric.type == MetricType::kRatio &&
                               std::all_of(groups.begin(), groups.end(), [](const auto& g) {
                                 return g.second->ratio_pre.has_value();
                               });
  if (use_ratio_cuped) {
    auto stats_of = [](const MetricGroupInput& g) {
      const MetricGroupInput::RatioPre& pre = *g.ratio_pre;
      RatioCupedStats s;
      s.n = g.n;
      s.numerator_sum = g.sum;
      s.numerator_sum_squares = g.sum_squares;
      s.denominator_sum = g.denominator_sum;
      s.denominator_sum_squares = g.denominator_sum_squares;
      s.numerator_denominator = g.ratio_cross_sum;
      s.pre_numerator_sum = pre.numerator_sum;
      s.pre_numerator_sum_squares = pre.numerator_sum_squares;
      s.pre_denominator_sum = pre.denominator_sum;
      s.pre_denominator_sum_squares = pre.denominator_sum_squares;
      s.numerator_pre_numerator = pre.numerator_x_pre_numerator;
      s.denominator_pre_denominator = pre.denominator_x_pre_denominator;
      s.pre_numerator_pre_denominator = pre.pre_numerator_x_pre_denominator;
      s.numerator_pre_denominator = pre.numerator_x_pre_denominator;
      s.denominator_pre_numerator = pre.denominator_x_pre_numerator;
      return s;
    };
    for (size_t g = 1; g < groups.size(); ++g) {
      auto pair = compare_ratio_cuped(stats_of(*groups[0].second), stats_of(*groups[g].second),
                                      input.alpha);
      if (!pair) {
        std::string field = pair.status().field();
        const bool control_side = field.rfind("control.", 0) == 0;
        field = field.substr(field.find('.') + 1);
        return invalid_argument(
            pair.status().message(),
            prefix + ".groups." + groups[control_side ? 0 : g].first + ".ratio_pre." + field);
      }
      if (g == 1) {
        evaluation.cuped_applied = true;
        evaluation.cuped_theta = pair->theta;
        estimates[0] = pair->control;
      }
      estimates[g] = pair->treatment;
      ratio_cuped[g] = pair->comparison;
    }
  }
  const TestDistribution distribution = metric.type == MetricType::kBinomial
                                            ? TestDistribution::kNormal
                                            : TestDistribution::kStudentT;
  for (size_t g = 0; g < groups.size(); ++g) {
    GroupResult group_result;
    group_result.name = groups[g].first;
    group_result.is_control = g == 0;
    group_result.n = estimates[g].n;
    group_result.mean = estimates[g].mean;
    group_result.variance = estimates[g].variance;
    if (g > 0) {
      Result<Comparison> comparison =
          ratio_cuped[g] ? Result<Comparison>(*ratio_cuped[g])
          : metric.type == MetricType::kBinomial
              ? compare_proportions(
                    {groups[0].second->n, groups[0].second->sum, groups[0].second->sum},
                    {groups[g].second->n, groups[g].second->sum, groups[g].second->sum},
                    input.alpha)
              : compare_estimates(estimates[0], estimates[g], input.alpha, distribution);
      if (!comparison) {
        return with_prefix(comparison.status(), prefix + ".groups." + group_result.name);
      }
      TreatmentResult treatment;
      treatment.absolute = comparison->absolute;
      treatment.relative = comparison->relative;
      // Guardrails are judged on the fixed-horizon lift (before any sequential widening).
      if (metric.role == MetricRole::kGuardrail) {
        const double margin = metric.non_inferiority_margin.value_or(kDefaultNonInferiorityMargin);
        if (treatment.relative) {
          auto check = check_guardrail(metric.name, *treatment.relative, metric.higher_is_better,
                                       margin, input.alpha);
          if (!check) return with_prefix(check.status(), prefix);
          treatment.guardrail = *check;
        } else {
          // No relative lift (control mean 0): non-inferiority cannot be shown.
          GuardrailCheck check;
          check.metric = metric.name;
          check.margin = margin;
          treatment.guardrail = check;
        }
      }
      if (input.sequential) {
        const std::int64_t total_n = estimates[0].n + estimates[g].n;
        auto absolute =
            sequential_test(treatment.absolute, total_n, input.alpha, input.sequential_tuning);
        if (!absolute) return absolute.status();
        treatment.absolute = *absolute;
        if (treatment.relative) {
          auto relative =
              sequential_test(*treatment.relative, total_n, input.alpha, input.sequential_tuning);
          if (!relative) return relative.status();
          treatment.relative = *relative;
        }
      }
      treatment.p_value = treatment.absolute.p_value;
      treatment.adjusted_p_value = treatment.p_value;
      treatment.significant = treatment.p_value < input.alpha;
      const EffectTest& lift = treatment.relative ? *treatment.relative : treatment.absolute;
      if (lift.standard_error > 0) {
        auto bayes = bayesian_lift(lift.estimate, lift.standard_error, input.prior, input.alpha);
        if (!bayes) return with_prefix(bayes.status(), "prior");
        treatment.bayesian = *bayes;
        treatment.chance_to_beat_control = metric.higher_is_better
                                               ? bayes->chance_to_beat_control
                                               : 1 - bayes->chance_to_beat_control;
      } else if (lift.estimate != 0) {
        treatment.chance_to_beat_control = (lift.estimate > 0) == metric.higher_is_better;
      }
      group_result.vs_control = treatment;
    }
    evaluation.groups.push_back(std::move(group_result));
  }
  return evaluation;
}

// CUPED's covariate sums from per-user values and covariates, both capped at `cap` (+inf:
// uncapped): GrowthBook caps the covariate with the metric's cap, so the adjustment
// compares like with like.
void set_covariate_sums(const std::vector<double>& values, const std::vector<double>& covariates,
                        double cap, MetricGroupInput& group) {
  double sum = 0, sum_squares = 0, cross = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    const double y = std::min(values[i], cap), x = std::min(covariates[i], cap);
    sum += x;
    sum_squares += x * x;
    cross += x * y;
  }
  group.pre_sum = sum;
  group.pre_sum_squares = sum_squares;
  group.pre_cross_sum = cross;
}

// Checks the metric's settings and turns per-user values into sums (capped when asked).
// `uncapped` receives the uncapped copy of a capped metric.
Status prepare_metric(const MetricInput& metric, size_t index, const std::string& prefix,
                      MetricInput& prepared, std::optional<MetricInput>& uncapped,
                      std::optional<CappingResult>& capping) {
  prepared = metric;
  prepared.role = metric.role.value_or(index == 0 ? MetricRole::kGoal : MetricRole::kSecondary);
  if (index == 0 && *prepared.role != MetricRole::kGoal) {
    return invalid_argument("the first metric is the primary one and must be a goal",
                            prefix + ".role");
  }
  if (metric.non_inferiority_margin) {
    if (*prepared.role != MetricRole::kGuardrail) {
      return invalid_argument("only guardrail metrics have a non-inferiority margin",
                              prefix + ".non_inferiority_margin");
    }
    if (!std::isfinite(*metric.non_inferiority_margin) || *metric.non_inferiority_margin < 0) {
      return invalid_argument(
          "must be a non-negative relative lift (0.02 = the treatment may be 2% worse)",
          prefix + ".non_inferiority_margin");
    }
  }
  if (metric.type == MetricType::kQuantile && !(metric.quantile > 0 && metric.quantile < 1)) {
    return invalid_argument("the quantile level must be in (0, 1), e.g. 0.9 for p90",
                            prefix + ".quantile");
  }
  const bool takes_values =
      metric.type == MetricType::kContinuous || metric.type == MetricType::kQuantile;
  for (const auto& [name, group] : metric.groups) {
    const std::string field = prefix + ".groups." + name;
    if (group.values && !takes_values) {
      return invalid_argument("per-user values are for continuous and quantile metrics",
                              field + ".values");
    }
    if (group.ratio_pre && metric.type != MetricType::kRatio) {
      return invalid_argument("ratio_pre is for ratio metrics", field + ".ratio_pre");
    }
    if (group.pre_values && (metric.type != MetricType::kContinuous || !group.values ||
                             group.pre_values->size() != group.values->size())) {
      return invalid_argument(
          "a continuous metric's per-user covariate: one per value of `values`, in order",
          field + ".pre_values");
    }
    if (!group.values && (metric.type == MetricType::kQuantile || metric.capping)) {
      return invalid_argument(metric.capping ? "capping needs the per-user values of every group"
                                             : "quantile metrics need the per-user values",
                              field + ".values");
    }
  }
  if (metric.capping && metric.type != MetricType::kContinuous) {
    return invalid_argument("only continuous metrics can be capped", prefix + ".capping");
  }
  if (!takes_values) return Status::ok();
  std::vector<std::string> names;
  std::vector<std::vector<double>> values;
  for (const auto& [name, group] : metric.groups) {
    if (!group.values) continue;
    names.push_back(name);
    values.push_back(*group.values);
  }
  if (names.empty()) return Status::ok();
  CapSpec no_cap{CapKind::kAbsolute, INFINITY, false};
  auto sums = cap_groups(values, metric.capping.value_or(no_cap));
  if (!sums) {
    if (sums.status().field() == "value") {
      return invalid_argument(sums.status().message(), prefix + ".capping.value");
    }
    return invalid_argument(sums.status().message(), prefix + ".groups");
  }
  // CUPED from per-user covariates needs them in every group.
  const bool covariates =
      std::all_of(metric.groups.begin(), metric.groups.end(),
                  [](const auto& g) { return g.second.pre_values.has_value(); });
  for (size_t g = 0; g < names.size(); ++g) {
    MetricGroupInput& group = prepared.groups[names[g]];
    if (covariates) set_covariate_sums(*group.values, *group.pre_values, sums->cap, group);
    if (metric.type == MetricType::kContinuous) {
      group.values.reset();
      group.pre_values.reset();
    }
    group.n = sums->capped[g].n;
    group.sum = sums->capped[g].sum;
    group.sum_squares = sums->capped[g].sum_squares;
  }
  if (metric.capping) {
    uncapped = prepared;
    uncapped->capping.reset();
    CappingResult result;
    result.spec = *metric.capping;
    result.cap = sums->cap;
    for (size_t g = 0; g < names.size(); ++g) {
      MetricGroupInput& group = uncapped->groups[names[g]];
      group.sum = sums->uncapped[g].sum;
      group.sum_squares = sums->uncapped[g].sum_squares;
      if (covariates) {
        const MetricGroupInput& raw = metric.groups.at(names[g]);
        set_covariate_sums(*raw.values, *raw.pre_values, INFINITY, group);
      }
      result.users_capped[names[g]] = sums->users_capped[g];
    }
    capping = std::move(result);
  }
  return Status::ok();
}

// The primary metric (binomial or continuous) post-stratified by every value of one slice
// attribute, per treatment. Errors are about the data (a group without variance, a zero
// control mean): the caller reports them instead of failing the analysis.
Result<AnalysisOutput::PostStratification> post_stratify(
    const AnalysisInput& input, const AnalysisInput::SliceDimension& dimension,
    const std::string& prefix) {
  const MetricInput& primary = input.metrics.front();
  const StratifiedMetric kind = primary.type == MetricType::kBinomial
                                    ? StratifiedMetric::kProportion
                                    : StratifiedMetric::kMean;
  auto sums = [](const MetricGroupInput& group) {
    if (!group.values) return SampleStats{group.n, group.sum, group.sum_squares};
    SampleStats stats;
    for (double value : *group.values) {
      ++stats.n;
      stats.sum += value;
      stats.sum_squares += value * value;
    }
    return stats;
  };
  AnalysisOutput::PostStratification out;
  for (const auto& [treatment, unused] : primary.groups) {
    if (treatment == input.control) continue;
    std::vector<Stratum> strata;
    for (const auto& [value, groups] : dimension.values) {
      Stratum stratum;
      if (auto c = groups.find(input.control); c != groups.end()) stratum.control = sums(c->second);
      if (auto t = groups.find(treatment); t != groups.end()) stratum.treatment = sums(t->second);
      if (stratum.control.n + stratum.treatment.n > 0) strata.push_back(stratum);
    }
    auto result = compare_post_stratified(strata, kind, input.alpha);
    if (!result) {
      return invalid_argument("post-stratifying " + treatment + ": " + result.status().message() +
                                  " (" + result.status().field() + ")",
                              prefix + ".values");
    }
    out.strata_used = result->strata_used;
    out.strata_merged = result->strata_merged;
    AnalysisOutput::PostStratifiedTreatment row;
    row.group = treatment;
    row.absolute = result->comparison.absolute;
    row.relative = result->comparison.relative;
    row.unstratified_standard_error = result->unstratified.absolute.standard_error;
    if (row.unstratified_standard_error > 0) {
      const double ratio = row.absolute.standard_error / row.unstratified_standard_error;
      row.variance_reduction = 1 - ratio * ratio;
    }
    out.treatments.push_back(std::move(row));
  }
  return out;
}

}  // namespace

const char* metric_type_name(MetricType type) {
  switch (type) {
    case MetricType::kBinomial:
      return "binomial";
    case MetricType::kContinuous:
      return "continuous";
    case MetricType::kRatio:
      return "ratio";
    case MetricType::kQuantile:
      return "quantile";
  }
  return "binomial";
}

Result<AnalysisOutput> analyze(const AnalysisInput& input) {
  if (!(input.alpha > 0 && input.alpha < 1)) {
    return invalid_argument("alpha must be in (0, 1)", "alpha");
  }
  if (input.control.empty()) return invalid_argument("control group name is empty", "control");
  if (input.metrics.empty()) return invalid_argument("at least one metric is needed", "metrics");
  if (!(input.target_power > input.alpha && input.target_power < 1)) {
    return invalid_argument("target_power must be in (alpha, 1)", "target_power");
  }
  if (!(input.target_mde > 0) || !std::isfinite(input.target_mde)) {
    return invalid_argument("target_mde must be positive", "target_mde");
  }
  if (input.days_elapsed && !(*input.days_elapsed > 0)) {
    return invalid_argument("days_elapsed must be positive", "days_elapsed");
  }
  if (input.sequential && !(input.sequential_tuning > 0)) {
    return invalid_argument("sequential_tuning must be positive", "sequential_tuning");
  }
  AnalysisOutput output;
  output.control = input.control;
  output.alpha = input.alpha;
  output.correction = input.correction;
  output.sequential = input.sequential;

  // Groups: those of the primary metric plus any allocated group, control
  // first.
  const MetricInput& primary = input.metrics.front();
  if (!primary.groups.count(input.control)) {
    return invalid_argument("control group '" + input.control + "' is missing",
                            "metrics[0].groups." + input.control);
  }
  if (primary.groups.size() < 2) {
    return invalid_argument("a metric needs the control and at least one treatment",
                            "metrics[0].groups");
  }
  output.group_names.push_back(input.control);
  for (const auto& [name, group] : primary.groups) {
    if (name != input.control) output.group_names.push_back(name);
  }
  for (const auto& [name, weight] : input.allocation) {
    if (std::find(output.group_names.begin(), output.group_names.end(), name) ==
        output.group_names.end()) {
      output.group_names.push_back(name);
    }
  }
  std::vector<double> weights;
  for (const std::string& name : output.group_names) {
    auto group = primary.groups.find(name);
    std::int64_t exposed = 0;
    if (group != primary.groups.end()) {
      exposed = group->second.values ? static_cast<std::int64_t>(group->second.values->size())
                                     : group->second.n;
    }
    output.exposures.push_back(exposed);
    if (input.allocation.empty()) {
      weights.push_back(1);
    } else {
      auto weight = input.allocation.find(name);
      if (weight == input.allocation.end()) {
        return invalid_argument("group '" + name + "' has no allocation weight",
                                "allocation." + name);
      }
      weights.push_back(weight->second);
    }
  }
  auto srm = sample_ratio_mismatch(output.exposures, weights);
  if (!srm) return srm.status();
  output.srm = *srm;

  std::vector<PendingTreatment> pending;
  std::vector<double> raw_p_values;
  for (size_t m = 0; m < input.metrics.size(); ++m) {
    const MetricInput& raw_metric = input.metrics[m];
    const std::string prefix = "metrics[" + std::to_string(m) + "]";
    if (raw_metric.name.empty()) return invalid_argument("metric name is empty", prefix + ".name");
    if (!raw_metric.groups.count(input.control)) {
      return invalid_argument("control group '" + input.control + "' is missing",
                              prefix + ".groups." + input.control);
    }
    if (raw_metric.groups.size() < 2) {
      return invalid_argument("a metric needs the control and at least one treatment",
                              prefix + ".groups");
    }
    MetricInput metric;
    std::optional<MetricInput> uncapped;
    std::optional<CappingResult> capping;
    FULCRUM_RETURN_IF_ERROR(prepare_metric(raw_metric, m, prefix, metric, uncapped, capping));
    auto evaluation = evaluate_metric(metric, input, prefix);
    if (!evaluation) return evaluation.status();
    if (uncapped) {
      auto plain = evaluate_metric(*uncapped, input, prefix);
      if (!plain) return plain.status();
      capping->uncapped_groups = std::move(plain->groups);
    }
    MetricResult result;
    result.name = metric.name;
    result.type = metric.type;
    result.role = *metric.role;
    result.higher_is_better = metric.higher_is_better;
    result.cuped_applied = evaluation->cuped_applied;
    result.cuped_theta = evaluation->cuped_theta;
    if (metric.type == MetricType::kQuantile) result.quantile = metric.quantile;
    result.capping = std::move(capping);
    result.groups = std::move(evaluation->groups);
    // The correction family: every (goal or secondary metric, treatment) comparison.
    // Guardrails are an intersection-union test and need no correction (stats/decision.h).
    if (result.role != MetricRole::kGuardrail) {
      for (size_t g = 1; g < result.groups.size(); ++g) {
        pending.push_back({m, g});
        raw_p_values.push_back(result.groups[g].vs_control->p_value);
      }
    }
    output.metrics.push_back(std::move(result));
  }

  if (input.bandit) {
    const MetricInput& decision_metric = input.metrics.front();
    if (decision_metric.type != MetricType::kBinomial &&
        decision_metric.type != MetricType::kContinuous) {
      return invalid_argument(
          std::string("a bandit allocates on a binomial or continuous primary metric, not ") +
              metric_type_name(decision_metric.type),
          "metrics[0].type");
    }
    const MetricResult& primary = output.metrics.front();
    if (input.bandit->min_weight * static_cast<double>(primary.groups.size()) >= 1) {
      return invalid_argument("the arms' minimum weights must add up to less than 1",
                              "bandit.min_weight");
    }
    // The (capped) sums the primary metric was analysed on.
    std::vector<SampleStats> arms;
    for (const GroupResult& group : primary.groups) {
      const double n = static_cast<double>(group.n);
      const double variance = primary.type == MetricType::kBinomial
                                  ? group.variance * n / std::max(1.0, n - 1)
                                  : group.variance;
      // Rebuild sums from the mean and the sample variance the metric reported (CUPED-
      // adjusted when applied, which only narrows the posterior).
      const double sum = group.mean * n;
      arms.push_back({group.n, sum, variance * (n - 1) + sum * sum / std::max(1.0, n)});
    }
    BanditSettings settings = *input.bandit;
    settings.higher_is_better = primary.higher_is_better;
    auto weights = bandit_weights(arms, settings);
    if (!weights) return with_prefix(weights.status(), "bandit");
    output.bandit = *weights;
  }

  // One family: every (metric, treatment) comparison.
  auto adjusted = adjust_p_values(raw_p_values, input.correction);
  if (!adjusted) return adjusted.status();
  for (size_t i = 0; i < pending.size(); ++i) {
    TreatmentResult& treatment =
        *output.metrics[pending[i].metric_index].groups[pending[i].group_index].vs_control;
    treatment.adjusted_p_value = (*adjusted)[i];
    treatment.significant = treatment.adjusted_p_value < input.alpha;
  }

  // Slice tables on the primary metric.
  for (size_t d = 0; d < input.slices.size(); ++d) {
    const AnalysisInput::SliceDimension& dimension = input.slices[d];
    const std::string prefix = "slices[" + std::to_string(d) + "]";
    if (dimension.attribute.empty()) {
      return invalid_argument("name the user attribute", prefix + ".attribute");
    }
    if (dimension.top < 1) return invalid_argument("must be at least 1", prefix + ".top");
    // Rank values by users over all groups.
    std::vector<std::pair<std::int64_t, std::string>> ranked;
    for (const auto& [value, groups] : dimension.values) {
      std::int64_t users = 0;
      for (const auto& [group, stats] : groups) {
        users += stats.values ? static_cast<std::int64_t>(stats.values->size()) : stats.n;
      }
      ranked.emplace_back(users, value);
    }
    std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    // Every group of the primary metric with at least 2 users in the slice.
    auto testable = [&](const std::map<std::string, MetricGroupInput>& groups) {
      for (const auto& [name, unused] : input.metrics.front().groups) {
        auto found = groups.find(name);
        if (found == groups.end()) return false;
        const MetricGroupInput& stats = found->second;
        if ((stats.values ? static_cast<std::int64_t>(stats.values->size()) : stats.n) < 2) {
          return false;
        }
      }
      return true;
    };
    std::vector<std::pair<std::string, MetricInput>> slice_metrics;
    MetricInput other = input.metrics.front();
    other.groups.clear();
    other.capping.reset();  // a cap is the whole analysis's; slices report plain sums
    bool has_other = false;
    std::size_t kept = 0;
    for (size_t r = 0; r < ranked.size(); ++r) {
      const auto& groups = dimension.values.at(ranked[r].second);
      if (kept < dimension.top && (!dimension.merge_untestable || testable(groups))) {
        MetricInput slice = other;
        slice.groups = groups;
        slice_metrics.emplace_back(ranked[r].second, std::move(slice));
        ++kept;
        continue;
      }
      has_other = true;
      for (const auto& [group, stats] : groups) {
        if (stats.values) {
          return invalid_argument("values beyond the top slices cannot be merged; give sums",
                                  prefix + ".values." + ranked[r].second + "." + group);
        }
        MetricGroupInput& merged = other.groups[group];
        merged.n += stats.n;
        merged.sum += stats.sum;
        merged.sum_squares += stats.sum_squares;
        merged.denominator_sum += stats.denominator_sum;
        merged.denominator_sum_squares += stats.denominator_sum_squares;
        merged.ratio_cross_sum += stats.ratio_cross_sum;
      }
    }
    AnalysisOutput::SliceTable table;
    table.attribute = dimension.attribute;
    std::optional<AnalysisOutput::SliceResult> untested_rest;
    if (has_other && dimension.merge_untestable && !testable(other.groups)) {
      // Too few users in some group even together: reported, not tested.
      AnalysisOutput::SliceResult rest;
      rest.value = "other";
      rest.other = true;
      rest.tested = false;
      for (const auto& [group, stats] : other.groups) rest.users += stats.n;
      untested_rest = std::move(rest);
      has_other = false;
    }
    const std::size_t other_index = has_other ? slice_metrics.size() : SIZE_MAX;
    if (has_other) slice_metrics.emplace_back("other", std::move(other));
    std::vector<std::pair<size_t, size_t>> slice_pending;
    std::vector<double> slice_p_values;
    for (size_t s = 0; s < slice_metrics.size(); ++s) {
      auto& [value, metric] = slice_metrics[s];
      const std::string field = s == other_index ? prefix + ".other" : prefix + ".values." + value;
      if (!metric.groups.count(input.control) || metric.groups.size() < 2) {
        return invalid_argument("a slice needs the control and at least one treatment", field);
      }
      MetricInput prepared;
      std::optional<MetricInput> unused_uncapped;
      std::optional<CappingResult> unused_capping;
      metric.role = MetricRole::kGoal;
      auto status = prepare_metric(metric, 0, field, prepared, unused_uncapped, unused_capping);
      if (!status.is_ok()) return status;
      auto evaluation = evaluate_metric(prepared, input, field);
      if (!evaluation) return evaluation.status();
      AnalysisOutput::SliceResult slice;
      slice.value = value;
      slice.other = s == other_index;
      for (const GroupResult& group : evaluation->groups) slice.users += group.n;
      slice.groups = std::move(evaluation->groups);
      for (size_t g = 1; g < slice.groups.size(); ++g) {
        slice_pending.emplace_back(table.slices.size(), g);
        slice_p_values.push_back(slice.groups[g].vs_control->p_value);
      }
      table.slices.push_back(std::move(slice));
    }
    auto slice_adjusted = adjust_p_values(slice_p_values, input.correction);
    if (!slice_adjusted) return slice_adjusted.status();
    for (size_t i = 0; i < slice_pending.size(); ++i) {
      TreatmentResult& t =
          *table.slices[slice_pending[i].first].groups[slice_pending[i].second].vs_control;
      t.adjusted_p_value = (*slice_adjusted)[i];
      t.significant = t.adjusted_p_value < input.alpha;
    }
    if (untested_rest) table.slices.push_back(std::move(*untested_rest));
    if (dimension.post_stratify) {
      const MetricType primary_type = input.metrics.front().type;
      if (primary_type != MetricType::kBinomial && primary_type != MetricType::kContinuous) {
        return invalid_argument("post-stratification needs a binomial or continuous primary metric",
                                prefix + ".post_stratify");
      }
      auto stratified = post_stratify(input, dimension, prefix);
      if (stratified) {
        table.post_stratification = std::move(stratified).value();
      } else {
        table.post_stratification_unavailable = stratified.status().message();
      }
    }
    output.slices.push_back(std::move(table));
  }

  // Winner and recommendation from the primary metric.
  const MetricResult& primary_result = output.metrics.front();
  const GroupResult* best = nullptr;
  bool all_worse = true;
  auto better = [&](const TreatmentResult& t) {
    return primary_result.higher_is_better ? t.absolute.estimate > 0 : t.absolute.estimate < 0;
  };
  for (const GroupResult& group : primary_result.groups) {
    if (!group.vs_control) continue;
    const TreatmentResult& t = *group.vs_control;
    if (!(t.significant && !better(t))) all_worse = false;
    // Rank by (significant improvement, chance to beat control).
    auto rank = [&](const TreatmentResult& r) {
      return std::make_pair(r.significant && better(r), r.chance_to_beat_control);
    };
    const bool beats_best = best == nullptr || rank(t) > rank(*best->vs_control);
    if (beats_best) best = &group;
  }
  if (best && best->vs_control->significant && better(*best->vs_control)) {
    output.winner = best->name;
  } else if (all_worse && best) {
    output.winner = input.control;
  }
  if (best) {
    const TreatmentResult& t = *best->vs_control;
    RecommendationInput rec;
    rec.metric = primary_result.name;
    rec.treatment = best->name;
    rec.p_value = t.adjusted_p_value;
    rec.alpha = input.alpha;
    rec.effect_is_relative = t.relative.has_value();
    rec.effect = t.relative ? *t.relative : t.absolute;
    rec.higher_is_better = primary_result.higher_is_better;
    rec.target_power = input.target_power;
    rec.sample_ratio_mismatch = output.srm.mismatch;
    rec.n_per_group = primary_result.groups.front().n;
    for (const GroupResult& group : primary_result.groups) {
      rec.n_per_group = std::min(rec.n_per_group, group.n);
    }
    // Users per group needed to detect the target relative lift on the
    // control's level.
    const GroupResult& control = primary_result.groups.front();
    PowerQuery query;
    query.kind =
        primary_result.type == MetricType::kBinomial ? MetricKind::kProportion : MetricKind::kMean;
    query.baseline = control.mean;
    query.sd = std::sqrt(control.variance);
    query.mde = input.target_mde;
    query.relative = true;
    query.alpha = input.alpha;
    query.power = input.target_power;
    query.groups = static_cast<int>(primary_result.groups.size());
    if (auto plan = plan_sample_size(query)) {
      rec.required_n_per_group = plan->exact_sample_size;
    }
    if (input.days_elapsed) {
      rec.daily_users_per_group = static_cast<double>(rec.n_per_group) / *input.days_elapsed;
    }
    output.recommendation = recommend(rec);

    // The ship decision for the candidate over every goal and guardrail metric.
    ShipDecisionInput decision_input;
    decision_input.treatment = best->name;
    decision_input.sample_ratio_mismatch = output.srm.mismatch;
    decision_input.primary_powered =
        rec.required_n_per_group &&
        static_cast<double>(rec.n_per_group) >= *rec.required_n_per_group;
    for (const MetricResult& metric : output.metrics) {
      const GroupResult* candidate = nullptr;
      for (const GroupResult& group : metric.groups) {
        if (group.name == best->name) candidate = &group;
      }
      if (!candidate || !candidate->vs_control) continue;
      const TreatmentResult& r = *candidate->vs_control;
      if (metric.role == MetricRole::kGoal) {
        const bool improves =
            metric.higher_is_better ? r.absolute.estimate > 0 : r.absolute.estimate < 0;
        decision_input.goals.push_back({metric.name, r.significant, improves});
      } else if (metric.role == MetricRole::kGuardrail && r.guardrail) {
        decision_input.guardrails.push_back(*r.guardrail);
      }
    }
    output.candidate = best->name;
    // How many more users (and days) the candidate's primary lift needs (gbstats
    // MidExperimentPower), on the fixed-horizon relative lift before any sequential widening.
    if (best->vs_control->relative && best->vs_control->relative->standard_error > 0) {
      MidExperimentPowerQuery power_query;
      const double se = best->vs_control->relative->standard_error;
      // Sequential mode widened the interval but kept the standard error.
      power_query.standard_error = se;
      power_query.pairwise_sample_size = primary_result.groups.front().n + best->n;
      power_query.target_mde = input.target_mde;
      power_query.target_power = input.target_power;
      power_query.alpha = input.alpha;
      power_query.goal_metrics = static_cast<int>(decision_input.goals.size());
      power_query.variations = static_cast<int>(primary_result.groups.size());
      power_query.corrected = input.correction != Correction::kNone;
      power_query.sequential = input.sequential;
      power_query.sequential_tuning = input.sequential_tuning;
      power_query.prior_proper = input.prior.proper;
      power_query.prior_mean = input.prior.mean;
      power_query.prior_variance = input.prior.variance;
      if (auto power = mid_experiment_power(power_query)) {
        output.mid_power = *power;
        if (input.days_elapsed && !power->upper_bound_hit) {
          const double users_per_day =
              static_cast<double>(power_query.pairwise_sample_size) / *input.days_elapsed;
          output.mid_power_additional_days = power->additional_users / users_per_day;
        }
      }
    }
    output.decision = decide_ship(decision_input);
    Recommendation& final_rec = output.recommendation;
    const bool same_story =
        final_rec.action == output.decision.action &&
        (!output.decision.metric || *output.decision.metric == primary_result.name);
    if (!same_story) {
      final_rec.action = output.decision.action;
      final_rec.text = output.decision.text;
      final_rec.days_needed.reset();
      final_rec.additional_users_per_group.reset();
    } else if (output.decision.rule == DecisionRule::kGoalWinsGuardrailsHold &&
               !decision_input.guardrails.empty()) {
      final_rec.text += " Every guardrail is within its non-inferiority margin.";
    }
    // A winner is what the decision would ship (or the control when every treatment is worse).
    if (output.winner && *output.winner != input.control &&
        output.decision.action != Action::kShip) {
      output.winner.reset();
    }
    if (!output.winner && output.decision.action == Action::kShip) {
      output.winner = best->name;
    }
  }
  return output;
}

}  // namespace fulcrum::stats
