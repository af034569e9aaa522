#include "experiments/experiment.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "assign/condition.h"
#include "core/limits.h"
#include "core/untrusted_json.h"

namespace fulcrum::experiments {
namespace {

using json = nlohmann::json;

const std::set<std::string> kConfigFields = {"test_name",
                                             "feature_name",
                                             "description",
                                             "hypothesis",
                                             "success_metrics",
                                             "test_groups",
                                             "traffic_allocation",
                                             "start_date",
                                             "created_by",
                                             "control",
                                             "coverage",
                                             "namespace",
                                             "targeting",
                                             "metric_types",
                                             "lower_is_better",
                                             "alpha",
                                             "analysis_method",
                                             "min_sample_size",
                                             "target_power",
                                             "target_mde",
                                             "metric_roles",
                                             "non_inferiority_margins",
                                             "metric_capping",
                                             "metric_quantiles",
                                             "bandit",
                                             "holdout_id"};

Status require_string(const json& obj, const char* key, std::string& out, bool required,
                      std::size_t max_bytes = limits::kMaxIdBytes) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) return invalid_argument("is required", key);
    return Status::ok();
  }
  if (!it->is_string()) return invalid_argument("must be a string", key);
  out = it->get<std::string>();
  if (required && out.empty()) return invalid_argument("must not be empty", key);
  return limits::check_text(out, key, max_bytes, /*allow_empty=*/true);
}

Status optional_number(const json& obj, const char* key, double& out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Status::ok();
  if (!it->is_number()) return invalid_argument("must be a number", key);
  out = it->get<double>();
  if (!std::isfinite(out)) return invalid_argument("must be finite", key);
  return Status::ok();
}

std::optional<UnixSeconds> opt_time(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return std::nullopt;
  return parse_iso8601(it->get<std::string>());
}

json time_json(const std::optional<UnixSeconds>& t) {
  return t ? json(format_iso8601(*t)) : json(nullptr);
}

// bandit {enabled, min_weight, recompute_interval_minutes, top_two}; after groups and
// metrics are parsed.
Status parse_bandit(const json& bandit, ExperimentConfig& config) {
  if (!bandit.is_object()) {
    return invalid_argument(
        "must be {\"enabled\", \"min_weight\", "
        "\"recompute_interval_minutes\", \"top_two\"}",
        "bandit");
  }
  BanditConfig parsed;
  for (auto it = bandit.begin(); it != bandit.end(); ++it) {
    const std::string field = "bandit." + shorten_for_message(it.key(), limits::kMaxIdBytes);
    if (it.key() == "enabled" || it.key() == "top_two") {
      if (!it->is_boolean()) return invalid_argument("must be true or false", field);
      if (it.key() == "enabled") {
        parsed.enabled = it->get<bool>();
      } else {
        parsed.top_two = it->get<bool>();
      }
    } else if (it.key() == "min_weight") {
      if (!it->is_number() || !std::isfinite(it->get<double>())) {
        return invalid_argument("must be a number", field);
      }
      parsed.min_weight = it->get<double>();
    } else if (it.key() == "recompute_interval_minutes") {
      if (!it->is_number_integer() || it->get<std::int64_t>() < 15 ||
          it->get<std::int64_t>() > 43200) {
        return invalid_argument(
            "must be an integer number of minutes in [15, 43200] (the job runs every 15 "
            "minutes; at most 30 days)",
            field);
      }
      parsed.recompute_interval_minutes = it->get<std::int64_t>();
    } else {
      return invalid_argument("unknown field", field);
    }
  }
  const double arms = static_cast<double>(config.groups.size());
  if (!(parsed.min_weight > 0 && parsed.min_weight <= 1.0 / arms + 1e-12)) {
    return invalid_argument("must be in (0, 1/arms] = (0, " + std::to_string(1.0 / arms) +
                                "] for " + std::to_string(config.groups.size()) + " groups",
                            "bandit.min_weight");
  }
  if (parsed.enabled && config.success_metrics.front().type == stats::MetricType::kQuantile) {
    return invalid_argument(
        "a bandit needs a per-user mean: its primary metric must be \"binomial\" or "
        "\"continuous\"",
        "metric_types." + config.success_metrics.front().name);
  }
  if (parsed.enabled) {
    const double total = [&] {
      double sum = 0;
      for (const GroupSpec& g : config.groups) sum += g.weight;
      return sum;
    }();
    for (const GroupSpec& g : config.groups) {
      if (g.weight / total + 1e-12 < parsed.min_weight) {
        return invalid_argument("a bandit's starting weight must be at least bandit.min_weight",
                                "traffic_allocation." + g.name);
      }
    }
  }
  config.bandit = parsed;
  return Status::ok();
}

MetricSpec* find_metric_spec(ExperimentConfig& config, const std::string& name) {
  for (MetricSpec& spec : config.success_metrics) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

// metric_capping {metric: {"type", "value", "ignore_zeros"}}; after metric_types.
Status parse_metric_capping(const json& request, ExperimentConfig& config) {
  auto capping = request.find("metric_capping");
  if (capping == request.end() || capping->is_null()) return Status::ok();
  if (!capping->is_object()) {
    return invalid_argument("must be an object of metric name to {\"type\", \"value\"}",
                            "metric_capping");
  }
  for (auto it = capping->begin(); it != capping->end(); ++it) {
    const std::string field =
        "metric_capping." + shorten_for_message(it.key(), limits::kMaxIdBytes);
    MetricSpec* spec = find_metric_spec(config, it.key());
    if (spec == nullptr) return invalid_argument("not one of success_metrics", field);
    if (spec->type != stats::MetricType::kContinuous) {
      return invalid_argument("only continuous metrics can be capped", field);
    }
    if (!it->is_object()) {
      return invalid_argument(
          "must be {\"type\": \"absolute\"|\"percentile\", \"value\", \"ignore_zeros\"}", field);
    }
    stats::CapSpec cap;
    bool has_type = false, has_value = false;
    for (auto f = it->begin(); f != it->end(); ++f) {
      const std::string sub = field + "." + shorten_for_message(f.key(), limits::kMaxIdBytes);
      if (f.key() == "type") {
        if (*f == "absolute") {
          cap.kind = stats::CapKind::kAbsolute;
        } else if (*f == "percentile") {
          cap.kind = stats::CapKind::kPercentile;
        } else {
          return invalid_argument("must be \"absolute\" or \"percentile\"", sub);
        }
        has_type = true;
      } else if (f.key() == "value") {
        if (!f->is_number() || !std::isfinite(f->get<double>())) {
          return invalid_argument("must be a number", sub);
        }
        cap.value = f->get<double>();
        has_value = true;
      } else if (f.key() == "ignore_zeros") {
        if (!f->is_boolean()) return invalid_argument("must be true or false", sub);
        cap.ignore_zeros = f->get<bool>();
      } else {
        return invalid_argument("unknown field", sub);
      }
    }
    if (!has_type) return invalid_argument("is required", field + ".type");
    if (!has_value) return invalid_argument("is required", field + ".value");
    if (cap.kind == stats::CapKind::kPercentile && !(cap.value > 0 && cap.value < 1)) {
      return invalid_argument("a percentile cap must be in (0, 1), e.g. 0.99", field + ".value");
    }
    if (cap.kind == stats::CapKind::kAbsolute && !(cap.value > 0)) {
      return invalid_argument("an absolute cap must be a positive number", field + ".value");
    }
    if (cap.kind == stats::CapKind::kAbsolute && cap.ignore_zeros) {
      return invalid_argument("only a percentile cap ignores zeros", field + ".ignore_zeros");
    }
    spec->capping = cap;
  }
  return Status::ok();
}

// metric_quantiles {metric: level}; after metric_types. Every quantile metric needs one.
Status parse_metric_quantiles(const json& request, ExperimentConfig& config) {
  auto quantiles = request.find("metric_quantiles");
  if (quantiles != request.end() && !quantiles->is_null()) {
    if (!quantiles->is_object()) {
      return invalid_argument("must be an object of metric name to a level in (0, 1)",
                              "metric_quantiles");
    }
    for (auto it = quantiles->begin(); it != quantiles->end(); ++it) {
      const std::string field =
          "metric_quantiles." + shorten_for_message(it.key(), limits::kMaxIdBytes);
      MetricSpec* spec = find_metric_spec(config, it.key());
      if (spec == nullptr) return invalid_argument("not one of success_metrics", field);
      if (spec->type != stats::MetricType::kQuantile) {
        return invalid_argument("only quantile metrics (metric_types) have a level", field);
      }
      if (!it->is_number() || !(it->get<double>() > 0 && it->get<double>() < 1)) {
        return invalid_argument("the quantile level must be in (0, 1), e.g. 0.9 for p90", field);
      }
      spec->quantile = it->get<double>();
    }
  }
  for (const MetricSpec& spec : config.success_metrics) {
    if (spec.type == stats::MetricType::kQuantile && !spec.quantile) {
      return invalid_argument("a quantile metric needs its level in (0, 1), e.g. 0.9 for p90",
                              "metric_quantiles." + spec.name);
    }
  }
  return Status::ok();
}

}  // namespace

const char* analysis_method_name(AnalysisMethod method) {
  switch (method) {
    case AnalysisMethod::kFrequentist:
      return "frequentist";
    case AnalysisMethod::kBayesian:
      return "bayesian";
    case AnalysisMethod::kSequential:
      return "sequential";
  }
  return "frequentist";
}

stats::MetricType default_metric_type(const std::string& metric_name) {
  std::string lower = metric_name;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower.find("rate") != std::string::npos || lower.find("conversion") != std::string::npos) {
    return stats::MetricType::kBinomial;
  }
  return stats::MetricType::kContinuous;
}

assign::Allocation ExperimentConfig::allocation() const {
  assign::Allocation allocation;
  for (const GroupSpec& g : groups) {
    allocation.groups.push_back(g.name);
    allocation.weights.push_back(g.weight);
  }
  allocation.coverage = coverage;
  return allocation;
}

assign::Allocation Experiment::current_allocation() const {
  assign::Allocation allocation = config.allocation();
  if (config.bandit.enabled && bandit_weights.size() == allocation.weights.size()) {
    allocation.weights = bandit_weights;
  }
  return allocation;
}

const GroupSpec* ExperimentConfig::find_group(const std::string& name) const {
  for (const GroupSpec& g : groups) {
    if (g.name == name) return &g;
  }
  return nullptr;
}

std::string Experiment::exposure_key_for_phase(int phase_number) const {
  return phase_number == 0 ? test_id : test_id + ":phase" + std::to_string(phase_number);
}

Result<ExperimentConfig> parse_config(const json& request) {
  if (!request.is_object()) return invalid_argument("request body must be a JSON object");
  for (auto it = request.begin(); it != request.end(); ++it) {
    if (!kConfigFields.contains(it.key())) {
      const std::string field = shorten_for_message(it.key(), limits::kMaxIdBytes);
      return invalid_argument("unknown field '" + field + "'", field);
    }
  }
  ExperimentConfig config;
  FULCRUM_RETURN_IF_ERROR(require_string(request, "test_name", config.test_name, true));
  FULCRUM_RETURN_IF_ERROR(require_string(request, "feature_name", config.feature_name, true));
  FULCRUM_RETURN_IF_ERROR(require_string(request, "description", config.description, false,
                                         limits::kMaxDescriptionBytes));
  FULCRUM_RETURN_IF_ERROR(require_string(request, "hypothesis", config.hypothesis, false,
                                         limits::kMaxDescriptionBytes));
  FULCRUM_RETURN_IF_ERROR(require_string(request, "created_by", config.created_by, false));

  // success_metrics
  auto metrics = request.find("success_metrics");
  if (metrics == request.end() || metrics->is_null()) {
    return invalid_argument("is required", "success_metrics");
  }
  if (!metrics->is_array() || metrics->empty()) {
    return invalid_argument("must be a non-empty list of metric names", "success_metrics");
  }
  if (metrics->size() > limits::kMaxMetrics) {
    return invalid_argument("has " + std::to_string(metrics->size()) + " metrics, more than " +
                                std::to_string(limits::kMaxMetrics),
                            "success_metrics");
  }
  std::set<std::string> metric_names;
  for (std::size_t i = 0; i < metrics->size(); ++i) {
    const json& m = (*metrics)[i];
    const std::string field = "success_metrics[" + std::to_string(i) + "]";
    if (!m.is_string() || m.get<std::string>().empty()) {
      return invalid_argument("must be a non-empty string", field);
    }
    FULCRUM_RETURN_IF_ERROR(limits::check_id(m.get_ref<const std::string&>(), field));
    if (!metric_names.insert(m.get<std::string>()).second) {
      return invalid_argument("duplicate metric", field);
    }
    config.success_metrics.push_back(
        {m.get<std::string>(), default_metric_type(m), true,
         i == 0 ? stats::MetricRole::kGoal : stats::MetricRole::kSecondary, std::nullopt,
         std::nullopt, std::nullopt});
  }
  auto find_metric = [&](const std::string& name) {
    return std::find_if(config.success_metrics.begin(), config.success_metrics.end(),
                        [&](const MetricSpec& s) { return s.name == name; });
  };
  if (auto roles = request.find("metric_roles"); roles != request.end() && !roles->is_null()) {
    if (!roles->is_object()) return invalid_argument("must be an object", "metric_roles");
    for (auto it = roles->begin(); it != roles->end(); ++it) {
      const std::string field = "metric_roles." + it.key();
      auto spec = find_metric(it.key());
      if (spec == config.success_metrics.end()) {
        return invalid_argument("not one of success_metrics", field);
      }
      if (*it == "goal") {
        spec->role = stats::MetricRole::kGoal;
      } else if (*it == "guardrail") {
        spec->role = stats::MetricRole::kGuardrail;
      } else if (*it == "secondary") {
        spec->role = stats::MetricRole::kSecondary;
      } else {
        return invalid_argument("must be \"goal\", \"guardrail\" or \"secondary\"", field);
      }
      if (spec == config.success_metrics.begin() && spec->role != stats::MetricRole::kGoal) {
        return invalid_argument("the first success metric is the primary one and must be a goal",
                                field);
      }
    }
  }
  if (auto margins = request.find("non_inferiority_margins");
      margins != request.end() && !margins->is_null()) {
    if (!margins->is_object()) {
      return invalid_argument("must be an object", "non_inferiority_margins");
    }
    for (auto it = margins->begin(); it != margins->end(); ++it) {
      const std::string field = "non_inferiority_margins." + it.key();
      auto spec = find_metric(it.key());
      if (spec == config.success_metrics.end()) {
        return invalid_argument("not one of success_metrics", field);
      }
      if (spec->role != stats::MetricRole::kGuardrail) {
        return invalid_argument("only guardrail metrics (metric_roles) have a margin", field);
      }
      if (!it->is_number() || !std::isfinite(it->get<double>()) || it->get<double>() < 0) {
        return invalid_argument(
            "must be a non-negative relative lift (0.02 = the treatment may be 2% worse)", field);
      }
      spec->non_inferiority_margin = it->get<double>();
    }
  }
  if (auto types = request.find("metric_types"); types != request.end() && !types->is_null()) {
    if (!types->is_object()) return invalid_argument("must be an object", "metric_types");
    for (auto it = types->begin(); it != types->end(); ++it) {
      const std::string field = "metric_types." + it.key();
      auto spec = std::find_if(config.success_metrics.begin(), config.success_metrics.end(),
                               [&](const MetricSpec& s) { return s.name == it.key(); });
      if (spec == config.success_metrics.end()) {
        return invalid_argument("not one of success_metrics", field);
      }
      if (*it == "binomial") {
        spec->type = stats::MetricType::kBinomial;
      } else if (*it == "continuous") {
        spec->type = stats::MetricType::kContinuous;
      } else if (*it == "quantile") {
        spec->type = stats::MetricType::kQuantile;
      } else if (*it == "ratio") {
        return invalid_argument(
            "ratio metrics are analysed by `fulcrum analyze` only; an A/B test takes "
            "\"binomial\", \"continuous\" or \"quantile\"",
            field);
      } else {
        return invalid_argument("must be \"binomial\", \"continuous\" or \"quantile\"", field);
      }
    }
  }
  FULCRUM_RETURN_IF_ERROR(parse_metric_capping(request, config));
  FULCRUM_RETURN_IF_ERROR(parse_metric_quantiles(request, config));
  if (auto lower = request.find("lower_is_better"); lower != request.end() && !lower->is_null()) {
    if (!lower->is_array())
      return invalid_argument("must be a list of metric names", "lower_is_better");
    for (std::size_t i = 0; i < lower->size(); ++i) {
      const std::string field = "lower_is_better[" + std::to_string(i) + "]";
      const json& m = (*lower)[i];
      auto spec = std::find_if(config.success_metrics.begin(), config.success_metrics.end(),
                               [&](const MetricSpec& s) { return m.is_string() && s.name == m; });
      if (spec == config.success_metrics.end()) {
        return invalid_argument("not one of success_metrics", field);
      }
      spec->higher_is_better = false;
    }
  }

  // test_groups and traffic_allocation must name the same groups.
  auto groups = request.find("test_groups");
  if (groups == request.end() || groups->is_null())
    return invalid_argument("is required", "test_groups");
  if (!groups->is_object())
    return invalid_argument("must be an object of group name to config", "test_groups");
  auto allocation = request.find("traffic_allocation");
  if (allocation == request.end() || allocation->is_null()) {
    return invalid_argument("is required", "traffic_allocation");
  }
  if (!allocation->is_object()) {
    return invalid_argument("must be an object of group name to weight", "traffic_allocation");
  }
  if (groups->size() < 2)
    return invalid_argument("an experiment needs at least two groups", "test_groups");
  if (groups->size() > limits::kMaxGroups) {
    return invalid_argument("has " + std::to_string(groups->size()) + " groups, more than " +
                                std::to_string(limits::kMaxGroups),
                            "test_groups");
  }
  for (auto it = groups->begin(); it != groups->end(); ++it) {
    FULCRUM_RETURN_IF_ERROR(limits::check_id(it.key(), "test_groups." + it.key()));
    if (json_depth_exceeds(*it, JsonLimits::kDefaultMaxDepth) ||
        dump_json(*it).size() > limits::kMaxGroupConfigBytes) {
      return invalid_argument("group config larger than " +
                                  std::to_string(limits::kMaxGroupConfigBytes) + " bytes of JSON",
                              "test_groups." + it.key());
    }
    const std::string field = "traffic_allocation." + it.key();
    auto weight = allocation->find(it.key());
    if (weight == allocation->end()) return invalid_argument("missing weight for group", field);
    if (!weight->is_number()) return invalid_argument("must be a number", field);
    GroupSpec spec{it.key(), *it, weight->get<double>()};
    config.groups.push_back(std::move(spec));
  }
  for (auto it = allocation->begin(); it != allocation->end(); ++it) {
    if (!groups->contains(it.key())) {
      return invalid_argument("not one of test_groups", "traffic_allocation." + it.key());
    }
  }

  // Control: explicit, else "control", else the first name.
  config.control.clear();
  FULCRUM_RETURN_IF_ERROR(require_string(request, "control", config.control, false));
  if (config.control.empty()) {
    config.control = groups->contains("control") ? "control" : config.groups.front().name;
  } else if (!groups->contains(config.control)) {
    return invalid_argument("not one of test_groups", "control");
  }
  std::stable_sort(config.groups.begin(), config.groups.end(),
                   [&](const GroupSpec& a, const GroupSpec& b) {
                     if ((a.name == config.control) != (b.name == config.control)) {
                       return a.name == config.control;
                     }
                     return a.name < b.name;
                   });

  FULCRUM_RETURN_IF_ERROR(optional_number(request, "coverage", config.coverage));
  FULCRUM_RETURN_IF_ERROR(assign::validate_allocation(config.allocation()));

  if (auto ns = request.find("namespace"); ns != request.end() && !ns->is_null()) {
    if (!ns->is_object())
      return invalid_argument("must be {\"id\", \"start\", \"end\"}", "namespace");
    for (auto it = ns->begin(); it != ns->end(); ++it) {
      if (it.key() != "id" && it.key() != "start" && it.key() != "end") {
        return invalid_argument("unknown field '" + it.key() + "'", "namespace." + it.key());
      }
    }
    assign::Namespace parsed;
    auto id = ns->find("id");
    if (id == ns->end() || !id->is_string() || id->get<std::string>().empty()) {
      return invalid_argument("must be a non-empty string", "namespace.id");
    }
    parsed.id = id->get<std::string>();
    FULCRUM_RETURN_IF_ERROR(limits::check_id(parsed.id, "namespace.id"));
    auto start = ns->find("start"), end = ns->find("end");
    if (start != ns->end()) {
      if (!start->is_number()) return invalid_argument("must be a number", "namespace.start");
      parsed.start = start->get<double>();
    }
    if (end != ns->end()) {
      if (!end->is_number()) return invalid_argument("must be a number", "namespace.end");
      parsed.end = end->get<double>();
    }
    if (!(parsed.start >= 0 && parsed.start < 1)) {
      return invalid_argument("must be in [0, 1)", "namespace.start");
    }
    if (!(parsed.end > parsed.start && parsed.end <= 1)) {
      return invalid_argument("must be in (start, 1]", "namespace.end");
    }
    config.ns = parsed;
  }

  if (auto targeting = request.find("targeting");
      targeting != request.end() && !targeting->is_null()) {
    FULCRUM_RETURN_IF_ERROR(assign::validate_condition(*targeting, "targeting"));
    config.targeting = *targeting;
  }

  FULCRUM_RETURN_IF_ERROR(optional_number(request, "alpha", config.alpha));
  if (!(config.alpha > 0 && config.alpha <= 0.5))
    return invalid_argument("must be in (0, 0.5]", "alpha");
  FULCRUM_RETURN_IF_ERROR(optional_number(request, "target_power", config.target_power));
  if (!(config.target_power > 0 && config.target_power < 1)) {
    return invalid_argument("must be in (0, 1)", "target_power");
  }
  FULCRUM_RETURN_IF_ERROR(optional_number(request, "target_mde", config.target_mde));
  if (!(config.target_mde > 0)) return invalid_argument("must be > 0", "target_mde");
  if (auto m = request.find("min_sample_size"); m != request.end() && !m->is_null()) {
    if (!m->is_number_integer() || m->get<std::int64_t>() < 0) {
      return invalid_argument("must be a non-negative integer", "min_sample_size");
    }
    config.min_sample_size = m->get<std::int64_t>();
  }
  if (auto m = request.find("analysis_method"); m != request.end() && !m->is_null()) {
    if (*m == "frequentist") {
      config.method = AnalysisMethod::kFrequentist;
    } else if (*m == "bayesian") {
      config.method = AnalysisMethod::kBayesian;
    } else if (*m == "sequential") {
      config.method = AnalysisMethod::kSequential;
    } else {
      return invalid_argument("must be \"frequentist\", \"bayesian\" or \"sequential\"",
                              "analysis_method");
    }
  }
  if (auto bandit = request.find("bandit"); bandit != request.end() && !bandit->is_null()) {
    FULCRUM_RETURN_IF_ERROR(parse_bandit(*bandit, config));
  }
  if (auto holdout = request.find("holdout_id"); holdout != request.end() && !holdout->is_null()) {
    if (!holdout->is_string() || holdout->get_ref<const std::string&>().empty()) {
      return invalid_argument("must be a holdout id", "holdout_id");
    }
    FULCRUM_RETURN_IF_ERROR(limits::check_id(holdout->get_ref<const std::string&>(), "holdout_id"));
    config.holdout_id = holdout->get<std::string>();
  }
  if (auto s = request.find("start_date"); s != request.end() && !s->is_null()) {
    if (!s->is_string()) return invalid_argument("must be an ISO-8601 string", "start_date");
    config.start_date = parse_iso8601(s->get<std::string>());
    if (!config.start_date) {
      return invalid_argument("must be ISO-8601, e.g. 2024-01-01T00:00:00Z", "start_date");
    }
  }
  return config;
}

json config_to_json(const ExperimentConfig& config) {
  json groups = json::object(), allocation = json::object(), types = json::object();
  for (const GroupSpec& g : config.groups) {
    groups[g.name] = g.config;
    allocation[g.name] = g.weight;
  }
  json metrics = json::array(), lower = json::array(), roles = json::object(),
       margins = json::object(), capping = json::object(), quantiles = json::object();
  for (const MetricSpec& m : config.success_metrics) {
    metrics.push_back(m.name);
    types[m.name] = stats::metric_type_name(m.type);
    if (!m.higher_is_better) lower.push_back(m.name);
    roles[m.name] = stats::metric_role_name(m.role);
    if (m.non_inferiority_margin) margins[m.name] = *m.non_inferiority_margin;
    if (m.capping) {
      capping[m.name] = {{"type", stats::cap_kind_name(m.capping->kind)},
                         {"value", m.capping->value}};
      if (m.capping->ignore_zeros) capping[m.name]["ignore_zeros"] = true;
    }
    if (m.quantile) quantiles[m.name] = *m.quantile;
  }
  json out = {{"test_name", config.test_name},
              {"feature_name", config.feature_name},
              {"description", config.description},
              {"hypothesis", config.hypothesis},
              {"success_metrics", metrics},
              {"metric_types", types},
              {"lower_is_better", lower},
              {"metric_roles", roles},
              {"non_inferiority_margins", margins},
              {"metric_capping", capping},
              {"metric_quantiles", quantiles},
              {"test_groups", groups},
              {"traffic_allocation", allocation},
              {"control", config.control},
              {"coverage", config.coverage},
              {"targeting", config.targeting},
              {"alpha", config.alpha},
              {"analysis_method", analysis_method_name(config.method)},
              {"min_sample_size", config.min_sample_size},
              {"target_power", config.target_power},
              {"target_mde", config.target_mde},
              {"start_date", time_json(config.start_date)},
              {"created_by", config.created_by}};
  if (config.bandit != BanditConfig{}) {
    json bandit = {{"enabled", config.bandit.enabled},
                   {"min_weight", config.bandit.min_weight},
                   {"recompute_interval_minutes", config.bandit.recompute_interval_minutes}};
    if (config.bandit.top_two) bandit["top_two"] = *config.bandit.top_two;
    out["bandit"] = bandit;
  }
  if (!config.holdout_id.empty()) out["holdout_id"] = config.holdout_id;
  out["namespace"] =
      config.ns ? json{{"id", config.ns->id}, {"start", config.ns->start}, {"end", config.ns->end}}
                : json(nullptr);
  return out;
}

json to_json(const Experiment& e) {
  json out = config_to_json(e.config);
  out["test_id"] = e.test_id;
  out["status"] = status_name(e.status);
  out["phase"] = e.phase;
  out["hash_seed"] = e.hash_seed;
  json groups = json::array();
  for (const GroupSpec& g : e.config.groups) groups.push_back(g.name);
  out["groups"] = groups;  // assignment order (variation index)
  json phases = json::array();
  for (const PhaseRecord& p : e.phases) {
    json phase = {{"phase", p.phase},
                  {"hash_seed", p.hash_seed},
                  {"started_at", time_json(p.started_at)},
                  {"ended_at", time_json(p.ended_at)},
                  {"traffic_allocation", p.traffic_allocation},
                  {"coverage", p.coverage}};
    if (!p.coverage_changes.empty()) {
      json changes = json::array();
      for (const CoverageChange& c : p.coverage_changes) {
        changes.push_back(
            {{"at", format_iso8601(c.at)}, {"from", c.from}, {"to", c.to}, {"by", c.by}});
      }
      phase["coverage_changes"] = std::move(changes);
    }
    phases.push_back(std::move(phase));
  }
  out["phases"] = phases;
  out["created_at"] = format_iso8601(e.created_at);
  out["updated_at"] = format_iso8601(e.updated_at);
  out["started_at"] = time_json(e.started_at);
  out["ended_at"] = time_json(e.ended_at);
  out["winner"] = e.winner ? json(*e.winner) : json(nullptr);
  out["winner_forced"] = e.winner_forced;
  out["version"] = e.version;
  if (e.config.bandit.enabled) {
    json weights = json::object();
    const assign::Allocation current = e.current_allocation();
    for (std::size_t i = 0; i < current.groups.size(); ++i) {
      weights[current.groups[i]] = current.weights[i];
    }
    out["bandit_state"] = {{"weights", weights},
                           {"updated_at", time_json(e.bandit_weights_at)},
                           {"period", e.bandit_period},
                           {"recomputed", !e.bandit_weights.empty()}};
  }
  return out;
}

Result<Experiment> experiment_from_json(const json& body) {
  if (!body.is_object()) return internal_error("experiment document is not a JSON object");
  json request = json::object();
  for (auto it = body.begin(); it != body.end(); ++it) {
    if (kConfigFields.contains(it.key())) request[it.key()] = it.value();
  }
  auto config = parse_config(request);
  if (!config) {
    return internal_error("stored experiment is invalid: " + config.status().to_string());
  }
  Experiment e;
  e.config = std::move(*config);
  e.test_id = body.value("test_id", "");
  auto status = parse_status(body.value("status", "draft"));
  if (!status) return internal_error("stored experiment has an unknown status");
  e.status = *status;
  e.phase = body.value("phase", 0);
  e.hash_seed = body.value("hash_seed", e.test_id);
  if (auto phases = body.find("phases"); phases != body.end() && phases->is_array()) {
    for (const json& p : *phases) {
      PhaseRecord record;
      record.phase = p.value("phase", 0);
      record.hash_seed = p.value("hash_seed", "");
      record.started_at = opt_time(p, "started_at");
      record.ended_at = opt_time(p, "ended_at");
      record.traffic_allocation = p.value("traffic_allocation", json::object());
      record.coverage = p.value("coverage", 1.0);
      if (auto changes = p.find("coverage_changes");
          changes != p.end() && changes->is_array()) {
        for (const json& c : *changes) {
          if (!c.is_object()) continue;
          record.coverage_changes.push_back({opt_time(c, "at").value_or(0), c.value("from", 0.0),
                                             c.value("to", 0.0), c.value("by", "")});
        }
      }
      e.phases.push_back(std::move(record));
    }
  }
  e.created_at = opt_time(body, "created_at").value_or(0);
  e.updated_at = opt_time(body, "updated_at").value_or(0);
  e.started_at = opt_time(body, "started_at");
  e.ended_at = opt_time(body, "ended_at");
  if (auto w = body.find("winner"); w != body.end() && w->is_string())
    e.winner = w->get<std::string>();
  e.winner_forced = body.value("winner_forced", false);
  if (auto state = body.find("bandit_state"); state != body.end() && state->is_object()) {
    if (state->value("recomputed", false)) {
      const json weights = state->value("weights", json::object());
      for (const GroupSpec& g : e.config.groups) {
        auto w = weights.find(g.name);
        if (w == weights.end() || !w->is_number()) {
          return internal_error("stored bandit weights of " + e.test_id + " miss " + g.name);
        }
        e.bandit_weights.push_back(w->get<double>());
      }
    }
    e.bandit_weights_at = opt_time(*state, "updated_at");
    e.bandit_period = state->value("period", std::int64_t{-1});
  }
  return e;
}

}  // namespace fulcrum::experiments
