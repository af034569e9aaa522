#include "stats/analysis.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "stats/cuped.h"
#include "stats/power.h"
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

}  // namespace

const char* metric_type_name(MetricType type) {
  switch (type) {
    case MetricType::kBinomial:
      return "binomial";
    case MetricType::kContinuous:
      return "continuous";
    case MetricType::kRatio:
      return "ratio";
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
    output.exposures.push_back(group == primary.groups.end() ? 0 : group->second.n);
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
    const MetricInput& metric = input.metrics[m];
    const std::string prefix = "metrics[" + std::to_string(m) + "]";
    if (metric.name.empty()) return invalid_argument("metric name is empty", prefix + ".name");
    auto control_it = metric.groups.find(input.control);
    if (control_it == metric.groups.end()) {
      return invalid_argument("control group '" + input.control + "' is missing",
                              prefix + ".groups." + input.control);
    }
    if (metric.groups.size() < 2) {
      return invalid_argument("a metric needs the control and at least one treatment",
                              prefix + ".groups");
    }
    MetricResult result;
    result.name = metric.name;
    result.type = metric.type;
    result.higher_is_better = metric.higher_is_better;
    // Control first, then treatments in name order.
    std::vector<std::pair<std::string, const MetricGroupInput*>> groups;
    groups.emplace_back(input.control, &control_it->second);
    for (const auto& [name, group] : metric.groups) {
      if (name != input.control) groups.emplace_back(name, &group);
    }
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
      result.cuped_applied = true;
      result.cuped_theta = adjustment->theta;
      estimates = adjustment->adjusted;
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
            metric.type == MetricType::kBinomial
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
        pending.push_back({m, g});
        raw_p_values.push_back(treatment.p_value);
      }
      result.groups.push_back(std::move(group_result));
    }
    output.metrics.push_back(std::move(result));
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
  }
  return output;
}

}  // namespace fulcrum::stats
