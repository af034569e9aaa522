#include "experiments/bandit.h"

#include <algorithm>
#include <numeric>

#include "experiments/service.h"
#include "stats/bandit.h"

namespace fulcrum::experiments {
namespace {

using json = nlohmann::json;

json optional_number(const std::optional<double>& value) {
  return value ? json(*value) : json(nullptr);
}

BanditHistoryEntry entry_from_json(const json& j) {
  BanditHistoryEntry entry;
  entry.phase = j.value("phase", 0);
  entry.period = j.value("period", std::int64_t{0});
  entry.at = parse_iso8601(j.value("at", "")).value_or(0);
  entry.metric = j.value("metric", "");
  entry.weights_changed = j.value("weights_changed", false);
  entry.top_two = j.value("top_two", false);
  for (const json& arm : j.value("arms", json::array())) {
    BanditArmSummary summary;
    summary.group = arm.value("group", "");
    summary.weight = arm.value("weight", 0.0);
    summary.best_arm_probability = arm.value("best_arm_probability", 0.0);
    if (arm.contains("posterior_mean") && arm["posterior_mean"].is_number()) {
      summary.posterior_mean = arm["posterior_mean"].get<double>();
      summary.posterior_sd = arm.value("posterior_sd", 0.0);
    }
    summary.users = arm.value("users", std::int64_t{0});
    summary.converted = arm.value("converted", std::int64_t{0});
    entry.arms.push_back(std::move(summary));
  }
  return entry;
}

struct LoadedHistory {
  std::vector<BanditHistoryEntry> entries;
  std::optional<Document> doc;
};

Result<LoadedHistory> load_history(Store& store, const std::string& test_id) {
  auto doc = store.get_document(kBanditHistoryKind, test_id);
  if (!doc) return doc.status();
  LoadedHistory out;
  out.doc = std::move(*doc);
  if (!out.doc) return out;
  const json body = json::parse(out.doc->body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object()) {
    return internal_error("stored bandit history of " + test_id + " is not a JSON object");
  }
  for (const json& entry : body.value("entries", json::array())) {
    out.entries.push_back(entry_from_json(entry));
  }
  return out;
}

const BanditHistoryEntry* find_entry(const std::vector<BanditHistoryEntry>& entries, int phase,
                                     std::int64_t period) {
  for (const BanditHistoryEntry& entry : entries) {
    if (entry.phase == phase && entry.period == period) return &entry;
  }
  return nullptr;
}

Result<Experiment> load_experiment(Store& store, const std::string& test_id) {
  return get_ab_test(store, test_id);
}

// Writes the experiment with the entry's weights (the experiment document's version guards
// against a concurrent edit; the caller retries on the next run).
Status apply_entry(Store& store, Experiment& e, const BanditHistoryEntry& entry) {
  e.bandit_weights.clear();
  for (const BanditArmSummary& arm : entry.arms) e.bandit_weights.push_back(arm.weight);
  e.bandit_weights_at = entry.at;
  e.bandit_period = entry.period;
  e.updated_at = std::max(e.updated_at, entry.at);
  return save_ab_test(store, e);
}

}  // namespace

json to_json(const BanditHistoryEntry& entry) {
  json arms = json::array();
  for (const BanditArmSummary& arm : entry.arms) {
    arms.push_back({{"group", arm.group},
                    {"weight", arm.weight},
                    {"best_arm_probability", arm.best_arm_probability},
                    {"posterior_mean", optional_number(arm.posterior_mean)},
                    {"posterior_sd", optional_number(arm.posterior_sd)},
                    {"users", arm.users},
                    {"converted", arm.converted}});
  }
  return {{"phase", entry.phase},
          {"period", entry.period},
          {"at", format_iso8601(entry.at)},
          {"metric", entry.metric},
          {"weights_changed", entry.weights_changed},
          {"top_two", entry.top_two},
          {"arms", arms}};
}

std::optional<std::int64_t> bandit_period(const Experiment& e, UnixSeconds now) {
  if (!e.config.bandit.enabled || e.status != ExperimentStatus::kActive) return std::nullopt;
  if (e.phases.empty() || e.phases.back().phase != e.phase || !e.phases.back().started_at) {
    return std::nullopt;
  }
  const UnixSeconds started = *e.phases.back().started_at;
  if (now < started) return std::nullopt;
  return (now - started) / (e.config.bandit.recompute_interval_minutes * 60);
}

Result<std::optional<BanditHistoryEntry>> recompute_bandit_weights(Store& store, const Clock& clock,
                                                                   const std::string& test_id) {
  auto loaded = load_experiment(store, test_id);
  if (!loaded) return loaded.status();
  Experiment e = std::move(*loaded);
  const UnixSeconds now = clock.now();
  const std::optional<std::int64_t> period = bandit_period(e, now);
  if (!period) return std::optional<BanditHistoryEntry>();
  auto history = load_history(store, test_id);
  if (!history) return history.status();
  if (const BanditHistoryEntry* done = find_entry(history->entries, e.phase, *period)) {
    // Recorded already; make sure its weights reached the experiment (a concurrent edit may
    // have beaten the first attempt).
    if (e.bandit_period != *period) FULCRUM_RETURN_IF_ERROR(apply_entry(store, e, *done));
    return std::optional<BanditHistoryEntry>();
  }

  const MetricSpec& metric = e.config.success_metrics.front();
  auto rows = store.variant_metric_stats(e.exposure_key(), metric.name, 0);
  if (!rows) return rows.status();
  const assign::Allocation current = e.current_allocation();
  std::vector<stats::SampleStats> arms(e.config.groups.size());
  BanditHistoryEntry entry;
  entry.phase = e.phase;
  entry.period = *period;
  entry.at = now;
  entry.metric = metric.name;
  entry.top_two = e.config.bandit.uses_top_two(e.config.groups.size());
  for (std::size_t i = 0; i < e.config.groups.size(); ++i) {
    BanditArmSummary arm;
    arm.group = e.config.groups[i].name;
    arm.weight = current.weights[i];
    for (const VariantMetricStats& row : *rows) {
      if (row.variant != arm.group) continue;
      arm.users = row.users;
      arm.converted = row.converted;
      arms[i].n = row.users;
      if (metric.type == stats::MetricType::kBinomial) {
        arms[i].sum = arms[i].sum_squares = static_cast<double>(row.converted);
      } else {
        arms[i].sum = row.sum;
        arms[i].sum_squares = row.sum_squares;
      }
    }
    entry.arms.push_back(std::move(arm));
  }
  // Weights as proportions (the configured ones need not sum to 1).
  const double total = std::accumulate(current.weights.begin(), current.weights.end(), 0.0);
  for (BanditArmSummary& arm : entry.arms) arm.weight = total > 0 ? arm.weight / total : 0;

  stats::BanditSettings settings;
  settings.top_two = entry.top_two;
  settings.min_weight = e.config.bandit.min_weight;
  settings.higher_is_better = metric.higher_is_better;
  const bool every_arm_has_two =
      std::all_of(arms.begin(), arms.end(), [](const stats::SampleStats& a) { return a.n >= 2; });
  if (every_arm_has_two) {
    auto weights = stats::bandit_weights(arms, settings);
    if (!weights) return weights.status();
    for (std::size_t i = 0; i < entry.arms.size(); ++i) {
      entry.arms[i].best_arm_probability = weights->best_arm_probability[i];
      entry.arms[i].posterior_mean = weights->posterior_mean[i];
      entry.arms[i].posterior_sd = weights->posterior_sd[i];
      if (weights->enough_units) entry.arms[i].weight = weights->weights[i];
    }
    entry.weights_changed = weights->enough_units;
  } else {
    for (BanditArmSummary& arm : entry.arms) {
      arm.best_arm_probability = 1.0 / static_cast<double>(entry.arms.size());
    }
  }

  // History first (create-or-append under its version), then the experiment.
  json entries = json::array();
  std::vector<BanditHistoryEntry> kept = history->entries;
  kept.push_back(entry);
  if (kept.size() > kMaxBanditHistoryEntries) {
    kept.erase(kept.begin(),
               kept.begin() + static_cast<std::ptrdiff_t>(kept.size() - kMaxBanditHistoryEntries));
  }
  for (const BanditHistoryEntry& kept_entry : kept) entries.push_back(to_json(kept_entry));
  Document doc;
  doc.kind = kBanditHistoryKind;
  doc.id = test_id;
  doc.status = "active";
  doc.created_at = history->doc ? history->doc->created_at : now;
  doc.updated_at = now;
  doc.version = history->doc ? history->doc->version : 0;
  doc.body = json{{"test_id", test_id}, {"entries", entries}}.dump();
  auto put = store.put_document(doc);
  if (!put) {
    // Someone else recorded it in between (another runner): theirs stands.
    if (put.status().code() == StatusCode::kAlreadyExists ||
        put.status().code() == StatusCode::kFailedPrecondition) {
      return std::optional<BanditHistoryEntry>();
    }
    return put.status();
  }
  FULCRUM_RETURN_IF_ERROR(apply_entry(store, e, entry));
  return std::optional<BanditHistoryEntry>(std::move(entry));
}

Result<json> run_bandit_recomputation(Store& store, const Clock& clock) {
  auto tests = list_ab_tests(store, ExperimentStatus::kActive);
  if (!tests) return tests.status();
  json recomputed = json::array(), errors = json::array();
  std::int64_t skipped = 0;
  for (const Experiment& e : *tests) {
    if (!e.config.bandit.enabled) continue;
    auto entry = recompute_bandit_weights(store, clock, e.test_id);
    if (!entry) {
      errors.push_back({{"test_id", e.test_id}, {"error", entry.status().to_string()}});
    } else if (entry->has_value()) {
      recomputed.push_back(e.test_id);
    } else {
      ++skipped;
    }
  }
  return json{{"tests", recomputed}, {"skipped", skipped}, {"errors", errors}};
}

Result<std::vector<BanditHistoryEntry>> bandit_history(Store& store, const std::string& test_id) {
  auto history = load_history(store, test_id);
  if (!history) return history.status();
  return std::move(history->entries);
}

Result<json> bandit_summary(Store& store, const Experiment& e) {
  auto history = bandit_history(store, e.test_id);
  if (!history) return history.status();
  const assign::Allocation current = e.current_allocation();
  const double total = std::accumulate(current.weights.begin(), current.weights.end(), 0.0);
  json weights = json::object(), best = json::object();
  for (std::size_t i = 0; i < current.groups.size(); ++i) {
    weights[current.groups[i]] = total > 0 ? current.weights[i] / total : 0;
  }
  json entries = json::array();
  const BanditHistoryEntry* latest = nullptr;
  for (const BanditHistoryEntry& entry : *history) {
    entries.push_back(to_json(entry));
    if (entry.phase == e.phase) latest = &entry;
  }
  if (latest) {
    for (const BanditArmSummary& arm : latest->arms) best[arm.group] = arm.best_arm_probability;
  }
  return json{{"enabled", e.config.bandit.enabled},
              {"min_weight", e.config.bandit.min_weight},
              {"recompute_interval_minutes", e.config.bandit.recompute_interval_minutes},
              {"top_two", e.config.bandit.uses_top_two(e.config.groups.size())},
              {"metric", e.config.success_metrics.front().name},
              {"current_weights", weights},
              {"updated_at",
               e.bandit_weights_at ? json(format_iso8601(*e.bandit_weights_at)) : json(nullptr)},
              {"best_arm_probability", latest ? best : json(nullptr)},
              {"history", entries}};
}

std::vector<double> bandit_expected_shares(const Experiment& e,
                                           const std::vector<BanditHistoryEntry>& history,
                                           const std::vector<std::int64_t>& users_now) {
  const std::size_t k = e.config.groups.size();
  std::vector<double> weights(k), expected(k, 0);
  {
    const assign::Allocation start = e.config.allocation();
    const double total = std::accumulate(start.weights.begin(), start.weights.end(), 0.0);
    for (std::size_t i = 0; i < k; ++i) weights[i] = start.weights[i] / total;
  }
  std::int64_t users_before = 0;
  auto add_segment = [&](std::int64_t users_after) {
    const double arrived =
        static_cast<double>(std::max<std::int64_t>(0, users_after - users_before));
    for (std::size_t i = 0; i < k; ++i) expected[i] += arrived * weights[i];
    users_before = std::max(users_before, users_after);
  };
  bool any = false;
  for (const BanditHistoryEntry& entry : history) {
    if (entry.phase != e.phase || entry.arms.size() != k) continue;
    any = true;
    std::int64_t users = 0;
    for (const BanditArmSummary& arm : entry.arms) users += arm.users;
    add_segment(users);
    for (std::size_t i = 0; i < k; ++i) weights[i] = entry.arms[i].weight;
  }
  if (!any) return {};
  add_segment(std::accumulate(users_now.begin(), users_now.end(), std::int64_t{0}));
  const double total = std::accumulate(expected.begin(), expected.end(), 0.0);
  if (!(total > 0)) return {};
  for (double& share : expected) share /= total;
  return expected;
}

}  // namespace fulcrum::experiments
