#include "flags/payload.h"

#include <algorithm>
#include <cstdio>
#include <set>

#include "flags/encryption.h"

namespace fulcrum::flags {
namespace {

using json = nlohmann::json;
namespace ex = experiments;

json rule_json(const Flag& flag, const Rule& rule) {
  json out = {{"id", rule.id}};
  if (!rule.condition.empty()) out["condition"] = rule.condition;
  if (rule.kind == Rule::Kind::kForce) {
    out["force"] = rule.value;
    if (rule.coverage) {
      out["coverage"] = *rule.coverage;
      out["hashAttribute"] = rule.hash_attribute;
      out["seed"] = rule.seed.empty() ? flag.key : rule.seed;
      out["hashVersion"] = 2;
    }
    return out;
  }
  const std::string key = rule.experiment_key.empty() ? flag.key : rule.experiment_key;
  json variations = json::array(), meta = json::array();
  for (const Variation& v : rule.variations) {
    variations.push_back(v.value);
    meta.push_back({{"key", v.name}, {"name", v.name}});
  }
  out["key"] = key;
  out["variations"] = variations;
  out["weights"] = rule.weights;
  out["coverage"] = rule.coverage.value_or(1.0);
  out["hashAttribute"] = rule.hash_attribute;
  out["hashVersion"] = rule.hash_version;
  out["seed"] = rule.seed.empty() ? key : rule.seed;
  out["meta"] = meta;
  if (rule.ns) out["namespace"] = json::array({rule.ns->id, rule.ns->start, rule.ns->end});
  return out;
}

json test_rule_json(const ex::Experiment& test) {
  const ex::ExperimentConfig& config = test.config;
  json variations = json::array(), weights = json::array(), meta = json::array();
  const assign::Allocation allocation = test.current_allocation();  // a bandit's current weights
  for (std::size_t i = 0; i < config.groups.size(); ++i) {
    const ex::GroupSpec& group = config.groups[i];
    variations.push_back(group.config);
    weights.push_back(allocation.weights[i]);
    meta.push_back({{"key", group.name}, {"name", group.name}});
  }
  json out = {{"id", "test:" + test.test_id},
              {"key", test.test_id},
              {"variations", variations},
              {"weights", weights},
              {"coverage", config.coverage},
              {"hashAttribute", "id"},
              {"hashVersion", 2},
              {"seed", test.hash_seed},
              {"phase", std::to_string(test.phase)},
              {"name", config.test_name},
              {"meta", meta}};
  if (config.ns) out["namespace"] = json::array({config.ns->id, config.ns->start, config.ns->end});
  if (!config.targeting.empty()) out["condition"] = config.targeting;
  // A bandit's weights change during a phase: an SDK with sticky bucketing keeps each user's
  // variation under "<key>__<phase>", as /assign keeps the first exposure of the phase.
  if (config.bandit.enabled) out["bucketVersion"] = test.phase;
  return out;
}

// A test or flag rule on its way into a feature, with the holdout it opted into ("" none).
struct PendingRule {
  json rule;
  std::string holdout_id;
};

// The holdout experiment rule GrowthBook's SDKs evaluate (SDK spec cases "Support holdout
// groups" / "Support passthrough variations"): both variations serve the off value; a user
// hashed into [0, p) is held out ("holdoutcontrol") and gets it, everyone else falls in the
// passthrough range [p, 1) and the SDK goes on to the next rule.
json holdout_rule_json(const ex::Holdout& holdout, const json& off_value) {
  const double p = holdout.share();
  return {
      {"id", "holdout:" + holdout.holdout_id},
      {"key", holdout.holdout_id},
      {"hashAttribute", holdout.hash_attribute},
      {"seed", holdout.seed},
      {"hashVersion", 2},
      {"variations", json::array({off_value, off_value})},
      {"ranges", json::array({json::array({0.0, p}), json::array({p, 1.0})})},
      {"meta",
       json::array(
           {{{"key", "holdoutcontrol"}, {"name", "Holdout"}},
            {{"key", "holdouttreatment"}, {"name", "General population"}, {"passthrough", true}}})},
      {"name", holdout.name}};
}

}  // namespace

SdkPayload build_payload(const std::vector<Flag>& flags, const std::vector<ex::Experiment>& tests,
                         const std::vector<ex::Holdout>& holdouts) {
  SdkPayload payload;
  std::map<std::string, const Flag*> by_key;
  for (const Flag& flag : flags) {
    payload.last_change = std::max(payload.last_change, flag.updated_at);
    if (!flag.archived) by_key[flag.key] = &flag;
  }
  std::vector<const ex::Experiment*> ordered;
  for (const ex::Experiment& test : tests) {
    payload.last_change = std::max(payload.last_change, test.updated_at);
    if (test.status == ex::ExperimentStatus::kActive ||
        test.status == ex::ExperimentStatus::kCompleted) {
      ordered.push_back(&test);
    }
  }
  std::sort(ordered.begin(), ordered.end(), [](const ex::Experiment* a, const ex::Experiment* b) {
    return a->created_at != b->created_at ? a->created_at < b->created_at : a->test_id < b->test_id;
  });

  // Test rules first, per feature, in test order; each with the holdout it opted into.
  std::map<std::string, std::vector<PendingRule>> test_rules;
  for (const ex::Experiment* test : ordered) {
    const std::string& feature = test->config.feature_name;
    if (feature.empty()) continue;
    std::vector<PendingRule>& rules = test_rules[feature];
    if (test->status == ex::ExperimentStatus::kActive) {
      rules.push_back({test_rule_json(*test), test->config.holdout_id});
      payload.exposure_keys[test->test_id] = test->exposure_key();
      if (test->config.bandit.enabled) payload.bandit_bucket_versions[test->test_id] = test->phase;
      payload.tests_by_feature[feature].push_back({test->test_id, "active"});
    } else {
      const std::string winner = test->winner.value_or(test->config.control);
      const ex::GroupSpec* group = test->config.find_group(winner);
      if (!group) continue;
      const std::string rule_id = "test:" + test->test_id + ":winner";
      rules.push_back({{{"id", rule_id}, {"force", group->config}}, test->config.holdout_id});
      payload.rule_variants[rule_id] = winner;
      payload.tests_by_feature[feature].push_back({test->test_id, "completed"});
    }
  }

  std::map<std::string, const ex::Holdout*> running_holdouts;
  for (const ex::Holdout& holdout : holdouts) {
    payload.last_change = std::max(payload.last_change, holdout.updated_at);
    if (holdout.status == ex::HoldoutStatus::kRunning) {
      running_holdouts[holdout.holdout_id] = &holdout;
    }
  }
  // The feature's rules in order, each running holdout's rule right before the first rule
  // that opted into it: held-out users get `off_value` there, the others pass through.
  auto assemble = [&](const std::vector<PendingRule>& pending, const json& off_value) {
    json rules = json::array();
    std::set<std::string> emitted;
    for (const PendingRule& rule : pending) {
      auto holdout = running_holdouts.find(rule.holdout_id);
      if (holdout != running_holdouts.end() && emitted.insert(rule.holdout_id).second) {
        rules.push_back(holdout_rule_json(*holdout->second, off_value));
      }
      rules.push_back(rule.rule);
    }
    return rules;
  };

  for (const auto& [key, flag] : by_key) {
    if (flag->killed) {
      payload.features[key] = {{"defaultValue", flag->off_value()}};
      payload.killed_features.push_back(key);
      continue;
    }
    std::vector<PendingRule> pending;
    if (auto it = test_rules.find(key); it != test_rules.end()) pending = it->second;
    for (const Rule& rule : flag->rules) {
      if (!rule.enabled) continue;
      pending.push_back({rule_json(*flag, rule), rule.holdout_id});
      if (rule.kind == Rule::Kind::kExperiment) {
        const std::string exp_key = rule.experiment_key.empty() ? key : rule.experiment_key;
        payload.exposure_keys.emplace(exp_key, exp_key);
      }
    }
    json feature = {{"defaultValue", flag->default_value}};
    json rules = assemble(pending, flag->default_value);
    if (!rules.empty()) feature["rules"] = rules;
    payload.features[key] = feature;
  }
  for (auto& [feature, pending] : test_rules) {
    if (by_key.count(feature)) continue;
    payload.features[feature] = {{"defaultValue", nullptr}, {"rules", assemble(pending, nullptr)}};
  }
  return payload;
}

std::string format_iso8601_millis(std::int64_t unix_millis) {
  std::string seconds = format_iso8601(unix_millis / 1000);  // "...T21:30:00Z"
  char millis[8];
  std::snprintf(millis, sizeof millis, ".%03dZ", static_cast<int>(unix_millis % 1000));
  if (!seconds.empty() && seconds.back() == 'Z') seconds.pop_back();
  return seconds + millis;
}

Result<json> payload_document(const SdkPayload& payload, const std::string& date_updated,
                              const std::optional<std::string>& encryption_key) {
  json document = json::object();
  if (encryption_key) {
    auto encrypted = encrypt_payload(payload.features.dump(), *encryption_key);
    if (!encrypted) return encrypted.status();
    document["encryptedFeatures"] = *encrypted;
  } else {
    document["features"] = payload.features;
  }
  document["experiments"] = json::array();
  document["dateUpdated"] = date_updated;
  document["status"] = 200;
  return document;
}

}  // namespace fulcrum::flags
