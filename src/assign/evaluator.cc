#include "assign/evaluator.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <unordered_map>

#include "assign/buckets.h"
#include "assign/condition.h"
#include "assign/hash.h"
#include "assign/js.h"

namespace fulcrum::assign {

using json = nlohmann::json;

namespace {

const json& empty_string_json() {
  static const json kEmpty = "";
  return kEmpty;
}
const json& empty_object_json() {
  static const json kEmpty = json::object();
  return kEmpty;
}

// ---- compiled payload ---------------------------------------------------------------------

struct CompiledFilter {
  std::string attribute;  // "" reads as "id"
  SeededHash hash;
  std::vector<VariationRange> ranges;
};

struct ParentCondition {
  std::string id;
  CompiledCondition condition;
  bool gate = false;
};

struct VariationMeta {
  std::optional<std::string> key;
  std::optional<std::string> name;
  bool passthrough = false;
};

// Everything runExperiment() reads, from a feature rule or an inline experiment.
struct CompiledExperiment {
  std::string key;
  json variations = json::array();
  int num_variations = 0;
  std::optional<double> coverage;
  std::optional<std::vector<double>> weights;
  std::string hash_attribute;      // "" reads as "id"
  std::string fallback_attribute;  // "" means none
  bool disable_sticky_bucketing = false;
  int bucket_version = 0;
  int min_bucket_version = 0;
  std::optional<Namespace> ns;
  std::optional<std::vector<VariationMeta>> meta;
  bool explicit_ranges = false;
  std::vector<VariationRange> ranges;  // explicit `ranges`, else from weights and coverage
  SeededHash hash;                     // seed || key, hashVersion || 1
  std::optional<std::vector<CompiledFilter>> filters;
  std::optional<CompiledCondition> condition;
  std::optional<std::vector<ParentCondition>> parents;
  bool active = true;
  std::string status;
  bool has_force = false;
  int force = -1;
  std::string contextual_bandit_ref;
  std::shared_ptr<const json> experiment_json;  // GrowthBook's Experiment object
};

struct CompiledRule {
  std::string id;
  std::optional<std::vector<ParentCondition>> parents;
  std::optional<std::vector<CompiledFilter>> filters;
  bool is_force = false;
  json force;
  std::optional<CompiledCondition> condition;
  // Percentage rollout of a force rule.
  SeededHash rollout_hash;  // seed || feature key, hashVersion || 1
  std::string hash_attribute;
  std::string fallback_attribute;
  bool disable_sticky_bucketing = false;
  std::optional<VariationRange> range;
  std::optional<double> coverage;
  // Experiment rule (absent: a rule without variations, which the SDK skips).
  std::optional<CompiledExperiment> experiment;
};

struct CompiledFeature {
  std::string key;
  json default_value;
  std::vector<CompiledRule> rules;
};

struct BanditLeaf {
  int leaf_id = 0;
  CompiledCondition condition;
  std::vector<double> weights;
};
struct BanditDefinition {
  std::vector<BanditLeaf> contexts;
  std::optional<int> bandit_version;
};

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

}  // namespace

struct CompiledFeatures::Impl {
  std::unordered_map<std::string, CompiledFeature, StringHash, std::equal_to<>> features;
  std::unordered_map<std::string, BanditDefinition, StringHash, std::equal_to<>> bandits;
  std::set<std::string, std::less<>> sticky_attributes;

  const CompiledFeature* find(std::string_view key) const {
    auto it = features.find(key);
    return it == features.end() ? nullptr : &it->second;
  }
};

namespace {

// ---- parsing ------------------------------------------------------------------------------
//
// Two modes: strict (CompiledFeatures::compile: malformed input is an error naming the field)
// and lenient (run_experiment: the SDK's own repairs, since an inline experiment comes from
// the caller as is).

class Parser {
 public:
  explicit Parser(bool strict) : strict_(strict) {}
  const Status& status() const { return status_; }
  bool ok() const { return status_.is_ok(); }

  // Records the first error (strict mode only); returns false when parsing must stop.
  bool fail(const std::string& message, const std::string& field) {
    if (strict_ && status_.is_ok()) status_ = invalid_argument(message, field);
    return !strict_;
  }

  std::optional<double> number(const json& obj, const char* name, const std::string& field) {
    auto it = obj.find(name);
    if (it == obj.end()) return std::nullopt;
    if (!it->is_number()) {
      fail("must be a number", field + "." + name);
      return std::nullopt;
    }
    return it->get<double>();
  }

  std::string string(const json& obj, const char* name, const std::string& field) {
    auto it = obj.find(name);
    if (it == obj.end() || it->is_null()) return {};
    if (!it->is_string()) {
      fail("must be a string", field + "." + name);
      return js::truthy(*it) ? js::string_of(*it) : std::string();
    }
    return it->get<std::string>();
  }

  bool boolean(const json& obj, const char* name, const std::string& field) {
    auto it = obj.find(name);
    if (it == obj.end() || it->is_null()) return false;
    if (!it->is_boolean()) fail("must be true or false", field + "." + name);
    return js::truthy(*it);
  }

  int integer(const json& obj, const char* name, const std::string& field, int fallback) {
    auto it = obj.find(name);
    if (it == obj.end() || it->is_null()) return fallback;
    if (!it->is_number() || it->get<double>() != std::floor(it->get<double>()) ||
        it->get<double>() < 0) {
      fail("must be a non-negative integer", field + "." + name);
      return it->is_number() ? static_cast<int>(it->get<double>()) : fallback;
    }
    return static_cast<int>(it->get<double>());
  }

  // hashVersion: JavaScript `x || default`; strict mode admits only 1 and 2.
  int hash_version(const json& obj, const std::string& field, int fallback) {
    auto it = obj.find("hashVersion");
    if (it == obj.end() || !js::truthy(*it)) return fallback;
    if (!it->is_number() || (it->get<double>() != 1 && it->get<double>() != 2)) {
      fail("hashVersion must be 1 or 2", field + ".hashVersion");
      return it->is_number() ? static_cast<int>(it->get<double>()) : 0;
    }
    return static_cast<int>(it->get<double>());
  }

  std::optional<VariationRange> range(const json& r, const std::string& field) {
    if (!r.is_array() || r.size() != 2 || !r[0].is_number() || !r[1].is_number()) {
      fail("must be [start, end] with numbers", field);
      return std::nullopt;
    }
    const double start = r[0].get<double>(), end = r[1].get<double>();
    if (!(start >= 0 && start <= end && end <= 1)) {
      fail("must satisfy 0 <= start <= end <= 1", field);
    }
    return VariationRange{start, end};
  }

  std::optional<CompiledCondition> condition(const json& obj, const char* name,
                                             const std::string& field) {
    auto it = obj.find(name);
    if (it == obj.end() || !js::truthy(*it)) return std::nullopt;
    if (strict_) {
      const Status s = validate_condition(*it, field + "." + name);
      if (!s.is_ok()) {
        fail(s.message(), s.field());
        return std::nullopt;
      }
    }
    return CompiledCondition::compile(*it);
  }

  std::optional<std::vector<CompiledFilter>> filters(const json& obj, const std::string& field) {
    auto it = obj.find("filters");
    if (it == obj.end() || !js::truthy(*it)) return std::nullopt;
    std::vector<CompiledFilter> out;
    if (!it->is_array()) {
      fail("must be an array", field + ".filters");
      return out;
    }
    for (std::size_t i = 0; i < it->size(); ++i) {
      const json& f = (*it)[i];
      const std::string path = field + ".filters[" + std::to_string(i) + "]";
      if (!f.is_object()) {
        fail("must be an object", path);
        continue;
      }
      CompiledFilter filter;
      filter.attribute = string(f, "attribute", path);
      filter.hash = SeededHash(string(f, "seed", path), hash_version(f, path, 2));
      auto ranges = f.find("ranges");
      if (ranges != f.end() && ranges->is_array()) {
        for (std::size_t k = 0; k < ranges->size(); ++k) {
          if (auto r = range((*ranges)[k], path + ".ranges[" + std::to_string(k) + "]")) {
            filter.ranges.push_back(*r);
          }
        }
      } else {
        fail("must be an array of ranges", path + ".ranges");
      }
      out.push_back(std::move(filter));
    }
    return out;
  }

  std::optional<std::vector<ParentCondition>> parents(const json& obj, const std::string& field) {
    auto it = obj.find("parentConditions");
    if (it == obj.end() || !js::truthy(*it)) return std::nullopt;
    std::vector<ParentCondition> out;
    if (!it->is_array()) {
      fail("must be an array", field + ".parentConditions");
      return out;
    }
    for (std::size_t i = 0; i < it->size(); ++i) {
      const json& p = (*it)[i];
      const std::string path = field + ".parentConditions[" + std::to_string(i) + "]";
      if (!p.is_object()) {
        fail("must be an object", path);
        continue;
      }
      ParentCondition parent;
      parent.id = string(p, "id", path);
      if (parent.id.empty()) fail("must name a feature", path + ".id");
      auto condition = p.find("condition");
      if (condition != p.end() && js::truthy(*condition)) {
        if (strict_) {
          const Status s = validate_condition(*condition, path + ".condition");
          if (!s.is_ok()) fail(s.message(), s.field());
        }
        parent.condition = CompiledCondition::compile(*condition);
      }
      parent.gate = boolean(p, "gate", path);
      out.push_back(std::move(parent));
    }
    return out;
  }

  // The Experiment an experiment rule (or inline experiment) describes. `variations` is
  // rule.contextualVariations ?? rule.variations.
  CompiledExperiment experiment(const json& rule, const json& variations, const std::string& key,
                                const std::string& field) {
    CompiledExperiment e;
    e.key = key;
    json exp = {{"key", key}};
    if (!variations.is_array()) {
      fail("must be an array", field + ".variations");
    } else {
      e.variations = variations;
    }
    exp["variations"] = e.variations;
    e.num_variations = static_cast<int>(e.variations.size());
    if (rule.contains("coverage")) {
      e.coverage = number(rule, "coverage", field);
      if (e.coverage && !(*e.coverage >= 0 && *e.coverage <= 1)) {
        fail("must be between 0 and 1", field + ".coverage");
      }
      exp["coverage"] = rule["coverage"];
    }
    if (auto w = rule.find("weights"); w != rule.end() && js::truthy(*w)) {
      exp["weights"] = *w;
      std::vector<double> weights;
      bool numeric = w->is_array();
      bool in_unit_interval = true;
      if (numeric) {
        for (const auto& x : *w) {
          if (!x.is_number()) {
            numeric = false;
            break;
          }
          const double value = x.get<double>();
          in_unit_interval = in_unit_interval && value >= 0 && value <= 1;
          weights.push_back(value);
        }
      }
      if (!numeric || !in_unit_interval) {
        fail("must be an array of numbers between 0 and 1", field + ".weights");
      }
      if (numeric) {
        double total = 0;
        for (double x : weights) total += x;
        if (weights.size() != e.variations.size()) {
          fail("needs one weight per variation (" + std::to_string(e.variations.size()) + ")",
               field + ".weights");
        } else if (total < 0.99 || total > 1.01) {
          fail("must sum to 1", field + ".weights");
        }
        e.weights = std::move(weights);
      }
    }
    e.hash_attribute = string(rule, "hashAttribute", field);
    if (!e.hash_attribute.empty()) exp["hashAttribute"] = e.hash_attribute;
    e.fallback_attribute = string(rule, "fallbackAttribute", field);
    if (!e.fallback_attribute.empty()) exp["fallbackAttribute"] = e.fallback_attribute;
    e.disable_sticky_bucketing = boolean(rule, "disableStickyBucketing", field);
    if (e.disable_sticky_bucketing) exp["disableStickyBucketing"] = true;
    if (rule.contains("bucketVersion")) {
      e.bucket_version = integer(rule, "bucketVersion", field, 0);
      exp["bucketVersion"] = rule["bucketVersion"];
    }
    if (rule.contains("minBucketVersion")) {
      e.min_bucket_version = integer(rule, "minBucketVersion", field, 0);
      exp["minBucketVersion"] = rule["minBucketVersion"];
    }
    if (auto ns = rule.find("namespace"); ns != rule.end() && js::truthy(*ns)) {
      exp["namespace"] = *ns;
      if (!ns->is_array() || ns->size() != 3 || !(*ns)[0].is_string() || !(*ns)[1].is_number() ||
          !(*ns)[2].is_number()) {
        fail("must be [id, start, end]", field + ".namespace");
      } else {
        e.ns =
            Namespace{(*ns)[0].get<std::string>(), (*ns)[1].get<double>(), (*ns)[2].get<double>()};
        if (!(e.ns->start >= 0 && e.ns->start <= e.ns->end && e.ns->end <= 1)) {
          fail("must satisfy 0 <= start <= end <= 1", field + ".namespace");
        }
      }
    }
    if (auto meta = rule.find("meta"); meta != rule.end() && js::truthy(*meta)) {
      exp["meta"] = *meta;
      std::vector<VariationMeta> metas;
      if (!meta->is_array()) {
        fail("must be an array", field + ".meta");
      } else {
        if (meta->size() != e.variations.size()) {
          fail("needs one entry per variation", field + ".meta");
        }
        for (std::size_t i = 0; i < meta->size(); ++i) {
          const json& m = (*meta)[i];
          const std::string path = field + ".meta[" + std::to_string(i) + "]";
          VariationMeta vm;
          if (m.is_object()) {
            const std::string k = string(m, "key", path);
            if (!k.empty()) vm.key = k;
            const std::string n = string(m, "name", path);
            if (!n.empty()) vm.name = n;
            vm.passthrough = boolean(m, "passthrough", path);
          } else {
            fail("must be an object", path);
          }
          metas.push_back(std::move(vm));
        }
      }
      e.meta = std::move(metas);
    }
    if (auto ranges = rule.find("ranges"); ranges != rule.end() && js::truthy(*ranges)) {
      exp["ranges"] = *ranges;
      e.explicit_ranges = true;
      if (!ranges->is_array()) {
        fail("must be an array of ranges", field + ".ranges");
      } else {
        if (ranges->size() != e.variations.size()) {
          fail("needs one range per variation", field + ".ranges");
        }
        for (std::size_t i = 0; i < ranges->size(); ++i) {
          auto r = range((*ranges)[i], field + ".ranges[" + std::to_string(i) + "]");
          e.ranges.push_back(r.value_or(VariationRange{0, 0}));
        }
      }
    } else {
      e.ranges = get_bucket_ranges(
          e.num_variations, e.coverage.value_or(1),
          e.weights ? std::span<const double>(*e.weights) : std::span<const double>());
    }
    const std::string name = string(rule, "name", field);
    if (!name.empty()) exp["name"] = name;
    const std::string phase = string(rule, "phase", field);
    if (!phase.empty()) exp["phase"] = phase;
    const std::string seed = string(rule, "seed", field);
    if (!seed.empty()) exp["seed"] = seed;
    const int version = hash_version(rule, field, 1);
    if (auto v = rule.find("hashVersion"); v != rule.end() && js::truthy(*v)) {
      exp["hashVersion"] = *v;
    }
    e.hash = SeededHash(seed.empty() ? key : seed, version);
    e.filters = filters(rule, field);
    if (e.filters) exp["filters"] = rule["filters"];
    e.condition = condition(rule, "condition", field);
    if (e.condition) exp["condition"] = rule["condition"];
    e.parents = parents(rule, field);
    if (e.parents) exp["parentConditions"] = rule["parentConditions"];
    e.experiment_json = std::make_shared<const json>(std::move(exp));
    return e;
  }

  // Inline experiments (run) may also carry force, active and status.
  void inline_fields(const json& obj, CompiledExperiment& e, const std::string& field) {
    if (obj.contains("force")) {
      e.has_force = true;
      const json& f = obj["force"];
      e.force = f.is_number() ? static_cast<int>(f.get<double>()) : -1;
    }
    if (auto a = obj.find("active"); a != obj.end() && a->is_boolean()) e.active = a->get<bool>();
    e.status = string(obj, "status", field);
  }

  CompiledRule rule(const json& r, const std::string& feature_key, const std::string& field,
                    std::set<std::string, std::less<>>& sticky_attributes) {
    CompiledRule rule;
    if (!r.is_object()) {
      fail("must be an object", field);
      return rule;
    }
    rule.id = string(r, "id", field);
    rule.parents = parents(r, field);
    rule.filters = filters(r, field);
    if (r.contains("force")) {
      rule.is_force = true;
      rule.force = r["force"];
      rule.condition = condition(r, "condition", field);
      const std::string seed = string(r, "seed", field);
      rule.rollout_hash = SeededHash(seed.empty() ? feature_key : seed, hash_version(r, field, 1));
      rule.hash_attribute = string(r, "hashAttribute", field);
      rule.fallback_attribute = string(r, "fallbackAttribute", field);
      rule.disable_sticky_bucketing = boolean(r, "disableStickyBucketing", field);
      if (auto it = r.find("range"); it != r.end() && js::truthy(*it)) {
        rule.range = range(*it, field + ".range");
      }
      if (r.contains("coverage")) {
        rule.coverage = number(r, "coverage", field);
        if (rule.coverage && !(*rule.coverage >= 0 && *rule.coverage <= 1)) {
          fail("must be between 0 and 1", field + ".coverage");
        }
      }
      return rule;
    }
    const json* variations = nullptr;
    if (auto it = r.find("contextualVariations"); it != r.end() && !it->is_null()) {
      variations = &*it;
    } else if (auto v = r.find("variations"); v != r.end() && js::truthy(*v)) {
      variations = &*v;
    }
    if (variations == nullptr) {
      // A prerequisite gate ({"parentConditions": [...]} alone) is what GrowthBook emits for
      // a blocking prerequisite; anything else without force or variations is a mistake.
      if (!rule.parents) fail("needs force, variations or parentConditions", field);
      return rule;  // the SDK skips it once its prerequisites pass
    }
    const std::string key = string(r, "key", field);
    rule.experiment = experiment(r, *variations, key.empty() ? feature_key : key, field);
    rule.experiment->contextual_bandit_ref = string(r, "contextualBanditRef", field);
    sticky_attributes.insert(
        rule.experiment->hash_attribute.empty() ? "id" : rule.experiment->hash_attribute);
    if (!rule.experiment->fallback_attribute.empty()) {
      sticky_attributes.insert(rule.experiment->fallback_attribute);
    }
    return rule;
  }

 private:
  bool strict_;
  Status status_;
};

// ---- evaluation ---------------------------------------------------------------------------

struct HashAttribute {
  std::string_view attribute;
  const json* value;  // points at the attribute, or at "" when missing/falsy
};

const json& attributes_of(const EvalContext& ctx) {
  return ctx.attributes != nullptr && ctx.attributes->is_object() ? *ctx.attributes
                                                                  : empty_object_json();
}

// getHashAttribute: the attribute (default "id") when truthy, else the fallback when truthy.
HashAttribute get_hash_attribute(const EvalContext& ctx, std::string_view attribute,
                                 std::string_view fallback) {
  const json& attributes = attributes_of(ctx);
  HashAttribute out{attribute.empty() ? std::string_view("id") : attribute, &empty_string_json()};
  if (auto it = attributes.find(out.attribute); it != attributes.end() && js::truthy(*it)) {
    out.value = &*it;
    return out;
  }
  if (!fallback.empty()) {
    if (auto it = attributes.find(fallback); it != attributes.end() && js::truthy(*it)) {
      out.value = &*it;
      out.attribute = fallback;
    }
  }
  return out;
}

// The text JavaScript's `seed + value` sees.
struct HashText {
  explicit HashText(const json& value) {
    if (value.is_string()) {
      view = value.get_ref<const std::string&>();
    } else {
      owned = js::string_of(value);
      view = owned;
    }
  }
  std::string owned;
  std::string_view view;
};

bool sticky_enabled(const EvalContext& ctx, bool disabled) {
  return ctx.sticky_buckets != nullptr && !disabled;
}

bool filtered_out(const std::vector<CompiledFilter>& filters, const EvalContext& ctx) {
  for (const auto& filter : filters) {
    const HashAttribute h = get_hash_attribute(ctx, filter.attribute, {});
    if (!js::truthy(*h.value)) return true;
    const auto n = filter.hash(HashText(*h.value).view);
    if (!n) return true;
    bool in_any = false;
    for (const auto& r : filter.ranges) in_any = in_any || (*n >= r.start && *n < r.end);
    if (!in_any) return true;
  }
  return false;
}

bool included_in_rollout(const CompiledRule& rule, const EvalContext& ctx) {
  if (!rule.range && !rule.coverage) return true;
  if (!rule.range && *rule.coverage == 0) return false;
  const HashAttribute h = get_hash_attribute(ctx, rule.hash_attribute,
                                             sticky_enabled(ctx, rule.disable_sticky_bucketing)
                                                 ? std::string_view(rule.fallback_attribute)
                                                 : std::string_view());
  if (!js::truthy(*h.value)) return false;
  const auto n = rule.rollout_hash(HashText(*h.value).view);
  if (!n) return false;
  if (rule.range) return *n >= rule.range->start && *n < rule.range->end;
  return *n <= *rule.coverage;
}

std::string experiment_key_for_sticky(const std::string& key, int bucket_version) {
  return key + "__" + std::to_string(bucket_version);
}

constexpr std::size_t kMaxPrerequisiteDepth = 64;

// The features being evaluated, outermost first (cycle detection for prerequisites). A fixed
// array: evaluation allocates nothing for it, and prerequisite chains are bounded.
struct Stack {
  Stack() = default;  // items stay uninitialized: only [0, size) is ever read
  Stack(const Stack& other) : size(other.size) {
    std::copy(other.items, other.items + other.size, items);
  }
  Stack& operator=(const Stack&) = delete;
  bool contains(std::string_view key) const {
    for (std::size_t i = 0; i < size; ++i) {
      if (std::string_view(items[i].data, items[i].length) == key) return true;
    }
    return false;
  }
  void push(std::string_view key) { items[size++] = {key.data(), key.size()}; }

  struct Item {
    const char* data;
    std::size_t length;
  };
  Item items[kMaxPrerequisiteDepth];
  std::size_t size = 0;
};

struct BanditPick {
  std::optional<int> leaf_id;
  std::vector<double> weights;
  std::optional<int> bandit_version;
  std::optional<std::vector<VariationRange>> ranges;  // when the leaf changes the weights
};

class Run {
 public:
  Run(const CompiledFeatures::Impl* impl, const EvalContext& ctx) : impl_(impl), ctx_(ctx) {}

  FeatureResult feature(std::string_view key, Stack& stack) const;
  ExperimentResult experiment(const CompiledExperiment& e, const std::string& feature_id,
                              const BanditPick* bandit, const Stack& stack) const;

 private:
  ExperimentResult result(const CompiledExperiment& e, int variation, bool hash_used,
                          const std::string& feature_id, std::optional<double> bucket = {},
                          bool sticky_bucket_used = false) const;
  // -1: no sticky assignment; -2: the user holds an assignment of a blocked bucket version.
  int sticky_variation(const CompiledExperiment& e) const;
  std::map<std::string, std::string> sticky_assignments(const CompiledExperiment& e) const;
  std::optional<StickyAssignmentsDocument> sticky_document(std::string_view attribute,
                                                           const json& value) const;
  void save_sticky(const CompiledExperiment& e, std::string_view attribute, const json& value,
                   const std::string& variation_key) const;
  bool parents_pass(const std::vector<ParentCondition>& parents, const Stack& stack, bool& cyclic,
                    bool& gate_failed) const;
  BanditPick bandit(const CompiledExperiment& e) const;

  const CompiledFeatures::Impl* impl_;
  const EvalContext& ctx_;
};

FeatureResult feature_result(json value, std::string source, std::string rule_id = {}) {
  FeatureResult r;
  r.on = js::truthy(value);
  r.off = !r.on;
  r.value = std::move(value);
  r.source = std::move(source);
  r.rule_id = std::move(rule_id);
  return r;
}

ExperimentResult Run::result(const CompiledExperiment& e, int variation, bool hash_used,
                             const std::string& feature_id, std::optional<double> bucket,
                             bool sticky_bucket_used) const {
  ExperimentResult r;
  r.in_experiment = true;
  if (variation < 0 || variation >= e.num_variations) {
    variation = 0;
    r.in_experiment = false;
  }
  const HashAttribute h = get_hash_attribute(ctx_, e.hash_attribute,
                                             sticky_enabled(ctx_, e.disable_sticky_bucketing)
                                                 ? std::string_view(e.fallback_attribute)
                                                 : std::string_view());
  r.variation_id = variation;
  r.hash_used = hash_used;
  if (variation < e.num_variations) r.value = e.variations[static_cast<std::size_t>(variation)];
  r.hash_attribute = std::string(h.attribute);
  r.hash_value = *h.value;
  r.feature_id = feature_id;
  r.sticky_bucket_used = sticky_bucket_used;
  r.bucket = bucket;
  const VariationMeta* meta = nullptr;
  if (e.meta && static_cast<std::size_t>(variation) < e.meta->size()) {
    meta = &(*e.meta)[static_cast<std::size_t>(variation)];
  }
  r.key = meta && meta->key ? *meta->key : std::to_string(variation);
  if (meta) {
    r.name = meta->name;
    r.passthrough = meta->passthrough;
  }
  return r;
}

std::optional<StickyAssignmentsDocument> Run::sticky_document(std::string_view attribute,
                                                              const json& value) const {
  // The SDK loads documents only for the payload's sticky attributes.
  if (impl_ != nullptr && !impl_->sticky_attributes.contains(attribute)) {
    return std::nullopt;
  }
  return ctx_.sticky_buckets->get_assignments(attribute, js::to_string(value));
}

std::map<std::string, std::string> Run::sticky_assignments(const CompiledExperiment& e) const {
  std::map<std::string, std::string> out;
  const HashAttribute h = get_hash_attribute(ctx_, e.hash_attribute, {});
  // getHashAttribute(ctx, fallbackAttribute) reads "id" when there is no fallback attribute.
  const HashAttribute f = get_hash_attribute(ctx_, e.fallback_attribute, {});
  if (js::truthy(*f.value)) {
    if (auto doc = sticky_document(f.attribute, *f.value)) out = doc->assignments;
  }
  if (auto doc = sticky_document(h.attribute, *h.value)) {
    for (auto& [k, v] : doc->assignments) out[k] = v;
  }
  return out;
}

int Run::sticky_variation(const CompiledExperiment& e) const {
  const auto assignments = sticky_assignments(e);
  for (int i = 0; i < e.min_bucket_version; ++i) {
    if (assignments.contains(experiment_key_for_sticky(e.key, i))) return -2;
  }
  auto it = assignments.find(experiment_key_for_sticky(e.key, e.bucket_version));
  if (it == assignments.end() || !e.meta) return -1;
  for (std::size_t i = 0; i < e.meta->size(); ++i) {
    if ((*e.meta)[i].key && *(*e.meta)[i].key == it->second) return static_cast<int>(i);
  }
  return -1;  // an assignment to a variation that no longer exists counts as none
}

void Run::save_sticky(const CompiledExperiment& e, std::string_view attribute, const json& value,
                      const std::string& variation_key) const {
  const std::string value_text = js::to_string(value);
  StickyAssignmentsDocument doc;
  doc.attribute_name = std::string(attribute);
  doc.attribute_value = value_text;
  if (auto existing = ctx_.sticky_buckets->get_assignments(attribute, value_text)) {
    doc.assignments = existing->assignments;
  }
  const std::string key = experiment_key_for_sticky(e.key, e.bucket_version);
  auto it = doc.assignments.find(key);
  if (it != doc.assignments.end() && it->second == variation_key) return;  // unchanged
  doc.assignments[key] = variation_key;
  ctx_.sticky_buckets->save_assignments(doc);
}

bool Run::parents_pass(const std::vector<ParentCondition>& parents, const Stack& stack,
                       bool& cyclic, bool& gate_failed) const {
  cyclic = false;
  gate_failed = false;
  for (const auto& parent : parents) {
    Stack parent_stack = stack;
    const FeatureResult parent_result = feature(parent.id, parent_stack);
    if (parent_result.source == "cyclicPrerequisite") {
      cyclic = true;
      return false;
    }
    // evalCondition({value}, condition) without saved groups, as the SDK does.
    const json subject = {{"value", parent_result.value}};
    if (!parent.condition.matches(subject, nullptr)) {
      gate_failed = parent.gate;
      return false;
    }
  }
  return true;
}

BanditPick Run::bandit(const CompiledExperiment& e) const {
  BanditPick pick;
  if (impl_ == nullptr) return pick;
  auto it = impl_->bandits.find(e.contextual_bandit_ref);
  if (it == impl_->bandits.end()) return pick;  // dangling ref: marginal weights, no metadata
  const BanditDefinition& definition = it->second;
  pick.bandit_version = definition.bandit_version;
  for (const auto& leaf : definition.contexts) {
    if (leaf.condition.matches(attributes_of(ctx_), ctx_.saved_groups)) {
      pick.leaf_id = leaf.leaf_id;
      pick.weights = leaf.weights;
      pick.ranges = get_bucket_ranges(e.num_variations, e.coverage.value_or(1), leaf.weights);
      return pick;
    }
  }
  pick.leaf_id = -1;  // no leaf matched: the rule's own (marginal) weights
  pick.weights = e.weights ? *e.weights : get_equal_weights(e.num_variations);
  return pick;
}

// Query-string forcing (getQueryStringOverride in util.ts).
std::optional<int> query_override(std::string_view key, std::string_view url, int n) {
  return query_string_override(key, url, n);
}

ExperimentResult Run::experiment(const CompiledExperiment& e, const std::string& feature_id,
                                 const BanditPick* bandit, const Stack& stack) const {
  auto finish = [&](ExperimentResult r) {
    if (bandit && bandit->leaf_id && r.hash_used && r.in_experiment) {
      r.leaf_id = bandit->leaf_id;
      r.variation_weights = bandit->weights;
      r.bandit_version = bandit->bandit_version;
    }
    return r;
  };
  // 1. Fewer than two variations: never in the experiment.
  if (e.num_variations < 2) return result(e, -1, false, feature_id);
  // 2. Context disabled.
  if (!ctx_.enabled) return result(e, -1, false, feature_id);
  // 3. Variation forced in the URL's query string.
  if (!ctx_.url.empty()) {
    if (auto forced = query_override(e.key, ctx_.url, e.num_variations)) {
      return result(e, *forced, false, feature_id);
    }
  }
  // 4. Variation forced in the context.
  if (ctx_.forced_variations != nullptr && ctx_.forced_variations->is_object()) {
    if (auto it = ctx_.forced_variations->find(e.key); it != ctx_.forced_variations->end()) {
      const int forced = it->is_number() ? static_cast<int>(it->get<double>()) : -1;
      return result(e, forced, false, feature_id);
    }
  }
  // 5. Draft or inactive.
  if (e.status == "draft" || !e.active) return result(e, -1, false, feature_id);
  // 6. Hash attribute (with the fallback only when sticky bucketing is on).
  const bool sticky = sticky_enabled(ctx_, e.disable_sticky_bucketing);
  const HashAttribute h = get_hash_attribute(
      ctx_, e.hash_attribute, sticky ? std::string_view(e.fallback_attribute) : std::string_view());
  if (!js::truthy(*h.value)) return result(e, -1, false, feature_id);
  const HashText hash_text(*h.value);

  int assigned = -1;
  bool found_sticky = false, sticky_blocked = false;
  if (sticky) {
    const int v = sticky_variation(e);
    sticky_blocked = v == -2;
    found_sticky = v >= 0;
    assigned = v >= 0 ? v : -1;
  }
  if (!found_sticky) {
    // 7. Filters, or else the namespace (same in_namespace as Assigner).
    if (e.filters) {
      if (filtered_out(*e.filters, ctx_)) return result(e, -1, false, feature_id);
    } else if (e.ns && !in_namespace(hash_text.view, *e.ns)) {
      return result(e, -1, false, feature_id);
    }
    // 8. Targeting condition.
    if (e.condition && !e.condition->matches(attributes_of(ctx_), ctx_.saved_groups)) {
      return result(e, -1, false, feature_id);
    }
    // 8.05. Prerequisites.
    if (e.parents) {
      bool cyclic = false, gate_failed = false;
      if (!parents_pass(*e.parents, stack, cyclic, gate_failed)) {
        return result(e, -1, false, feature_id);
      }
    }
  }
  // 9. Bucket (same SeededHash, bucket ranges and choose_variation as Assigner).
  const auto n = e.hash(hash_text.view);
  if (!n) return result(e, -1, false, feature_id);
  if (!found_sticky) {
    const auto& ranges = bandit && bandit->ranges ? *bandit->ranges : e.ranges;
    assigned = choose_variation(*n, ranges);
  }
  // 9.5. A sticky assignment from a blocked bucket version unenrolls the user.
  if (sticky_blocked) return result(e, -1, false, feature_id, std::nullopt, true);
  // 10. Outside the coverage.
  if (assigned < 0) return result(e, -1, false, feature_id);
  // 11. Forced variation in the experiment itself.
  if (e.has_force) return result(e, e.force, false, feature_id);
  // 12. QA mode; 12.5. stopped.
  if (ctx_.qa_mode || e.status == "stopped") return result(e, -1, false, feature_id);
  // 13. In the experiment.
  ExperimentResult r = result(e, assigned, true, feature_id, *n, found_sticky);
  if (sticky) save_sticky(e, h.attribute, *h.value, r.key);
  return finish(std::move(r));
}

FeatureResult Run::feature(std::string_view key, Stack& stack) const {
  if (stack.contains(key) || stack.size >= kMaxPrerequisiteDepth) {
    return feature_result(nullptr, "cyclicPrerequisite");
  }
  stack.push(key);
  const CompiledFeature* f = impl_ != nullptr ? impl_->find(key) : nullptr;
  if (f == nullptr) return feature_result(nullptr, "unknownFeature");
  for (const auto& rule : f->rules) {
    if (rule.parents) {
      bool cyclic = false, gate_failed = false;
      if (!parents_pass(*rule.parents, stack, cyclic, gate_failed)) {
        if (cyclic) return feature_result(nullptr, "cyclicPrerequisite");
        if (gate_failed) return feature_result(nullptr, "prerequisite");
        continue;
      }
    }
    if (rule.filters && filtered_out(*rule.filters, ctx_)) continue;
    if (rule.is_force) {
      if (rule.condition && !rule.condition->matches(attributes_of(ctx_), ctx_.saved_groups)) {
        continue;
      }
      if (!included_in_rollout(rule, ctx_)) continue;
      return feature_result(rule.force, "force", rule.id);
    }
    if (!rule.experiment) continue;
    const CompiledExperiment& e = *rule.experiment;
    std::optional<BanditPick> pick;
    if (!e.contextual_bandit_ref.empty()) pick = bandit(e);
    ExperimentResult r = experiment(e, f->key, pick ? &*pick : nullptr, stack);
    if (r.in_experiment && !r.passthrough) {
      FeatureResult out = feature_result(r.value, "experiment", rule.id);
      out.experiment_key = e.key;
      if (pick && (pick->leaf_id || pick->ranges)) {
        auto copy = std::make_shared<json>(*e.experiment_json);
        if (pick->ranges) (*copy)["weights"] = pick->weights;
        if (pick->leaf_id && r.hash_used) {
          json cb = {{"leafId", *pick->leaf_id}, {"variationWeights", pick->weights}};
          if (pick->bandit_version) cb["banditVersion"] = *pick->bandit_version;
          (*copy)["contextualBandit"] = std::move(cb);
        }
        out.experiment = std::move(copy);
      } else {
        out.experiment = e.experiment_json;
      }
      out.experiment_result = std::move(r);
      return out;
    }
  }
  return feature_result(f->default_value, "defaultValue");
}

}  // namespace

// ---- public API ---------------------------------------------------------------------------

std::string sticky_bucket_key(std::string_view attribute_name, std::string_view attribute_value) {
  std::string key(attribute_name);
  key += "||";
  key += attribute_value;
  return key;
}

std::optional<StickyAssignmentsDocument> InMemoryStickyBucketStore::get_assignments(
    std::string_view attribute_name, std::string_view attribute_value) const {
  const std::string key = sticky_bucket_key(attribute_name, attribute_value);
  std::lock_guard lock(mutex_);
  auto it = documents_.find(key);
  if (it == documents_.end()) return std::nullopt;
  return it->second;
}

void InMemoryStickyBucketStore::save_assignments(const StickyAssignmentsDocument& document) {
  const std::string key = sticky_bucket_key(document.attribute_name, document.attribute_value);
  std::lock_guard lock(mutex_);
  documents_[key] = document;
}

std::map<std::string, StickyAssignmentsDocument> InMemoryStickyBucketStore::documents() const {
  std::lock_guard lock(mutex_);
  return documents_;
}

std::optional<int> query_string_override(std::string_view experiment_key, std::string_view url,
                                         int num_variations) {
  // url.split("?")[1], then drop the anchor.
  const auto q = url.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  std::string_view search = url.substr(q + 1);
  if (const auto next = search.find('?'); next != std::string_view::npos) {
    search = search.substr(0, next);
  }
  if (search.empty()) return std::nullopt;
  if (const auto hash = search.find('#'); hash != std::string_view::npos) {
    search = search.substr(0, hash);
  }
  std::size_t begin = 0;
  while (begin <= search.size()) {
    auto end = search.find('&', begin);
    if (end == std::string_view::npos) end = search.size();
    const std::string_view pair = search.substr(begin, end - begin);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) == experiment_key) {
      // parseInt(v): optional whitespace and sign, then decimal digits; NaN otherwise.
      if (eq == std::string_view::npos) return std::nullopt;
      std::string_view v = pair.substr(eq + 1);
      if (const auto next = v.find('='); next != std::string_view::npos) v = v.substr(0, next);
      while (!v.empty() && std::isspace(static_cast<unsigned char>(v.front()))) v.remove_prefix(1);
      bool negative = false;
      if (!v.empty() && (v.front() == '-' || v.front() == '+')) {
        negative = v.front() == '-';
        v.remove_prefix(1);
      }
      if (v.empty() || !std::isdigit(static_cast<unsigned char>(v.front()))) return std::nullopt;
      long long value = 0;
      for (char c : v) {
        if (!std::isdigit(static_cast<unsigned char>(c))) break;
        value = value * 10 + (c - '0');
        if (value > 1'000'000'000) break;
      }
      if (negative) value = -value;
      if (value >= 0 && value < num_variations) return static_cast<int>(value);
      return std::nullopt;
    }
    begin = end + 1;
  }
  return std::nullopt;
}

Result<CompiledFeatures> CompiledFeatures::compile(const json& features,
                                                   const json* contextual_bandits,
                                                   Validation validation) {
  if (!features.is_object()) return invalid_argument("must be a JSON object", "features");
  auto impl = std::make_shared<Impl>();
  const bool strict = validation == Validation::kStrict;
  Parser parser(strict);
  for (auto it = features.begin(); it != features.end(); ++it) {
    const std::string field = "features." + it.key();
    const json& def = it.value();
    if (!def.is_object()) return invalid_argument("must be a JSON object", field);
    CompiledFeature feature;
    feature.key = it.key();
    if (auto d = def.find("defaultValue"); d != def.end()) feature.default_value = *d;
    if (auto rules = def.find("rules"); rules != def.end() && !rules->is_null()) {
      if (!rules->is_array()) return invalid_argument("must be an array", field + ".rules");
      for (std::size_t i = 0; i < rules->size(); ++i) {
        feature.rules.push_back(parser.rule((*rules)[i], feature.key,
                                            field + ".rules[" + std::to_string(i) + "]",
                                            impl->sticky_attributes));
        if (!parser.ok()) return parser.status();
      }
    }
    impl->features.emplace(feature.key, std::move(feature));
  }
  if (contextual_bandits != nullptr && !contextual_bandits->is_null()) {
    if (!contextual_bandits->is_object()) {
      return invalid_argument("must be a JSON object", "contextualBandits");
    }
    for (auto it = contextual_bandits->begin(); it != contextual_bandits->end(); ++it) {
      const std::string field = "contextualBandits." + it.key();
      const json& def = it.value();
      if (!def.is_object()) return invalid_argument("must be a JSON object", field);
      BanditDefinition bandit;
      if (auto v = def.find("banditVersion"); v != def.end() && v->is_number()) {
        bandit.bandit_version = static_cast<int>(v->get<double>());
      }
      if (auto contexts = def.find("contexts"); contexts != def.end() && !contexts->is_null()) {
        if (!contexts->is_array()) return invalid_argument("must be an array", field + ".contexts");
        for (std::size_t i = 0; i < contexts->size(); ++i) {
          const json& c = (*contexts)[i];
          const std::string path = field + ".contexts[" + std::to_string(i) + "]";
          if (!c.is_object()) return invalid_argument("must be a JSON object", path);
          BanditLeaf leaf;
          if (auto id = c.find("leafId"); id != c.end() && id->is_number()) {
            leaf.leaf_id = static_cast<int>(id->get<double>());
          } else {
            return invalid_argument("must be a number", path + ".leafId");
          }
          if (auto cond = c.find("condition"); cond != c.end() && !cond->is_null()) {
            if (strict) FULCRUM_RETURN_IF_ERROR(validate_condition(*cond, path + ".condition"));
            leaf.condition = CompiledCondition::compile(*cond);
          }
          auto weights = c.find("weights");
          if (weights == c.end() || !weights->is_array()) {
            return invalid_argument("must be an array of numbers", path + ".weights");
          }
          for (const auto& w : *weights) {
            if (!w.is_number()) return invalid_argument("must be numbers", path + ".weights");
            leaf.weights.push_back(w.get<double>());
          }
          bandit.contexts.push_back(std::move(leaf));
        }
      }
      impl->bandits.emplace(it.key(), std::move(bandit));
    }
  }
  return CompiledFeatures(std::move(impl));
}

FeatureResult CompiledFeatures::evaluate(std::string_view feature_key,
                                         const EvalContext& context) const {
  Stack stack;
  return Run(impl_.get(), context).feature(feature_key, stack);
}

bool CompiledFeatures::contains(std::string_view feature_key) const {
  return impl_->find(feature_key) != nullptr;
}

std::vector<std::string> CompiledFeatures::keys() const {
  std::vector<std::string> out;
  out.reserve(impl_->features.size());
  for (const auto& [key, feature] : impl_->features) out.push_back(key);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> CompiledFeatures::sticky_bucket_attributes() const {
  return {impl_->sticky_attributes.begin(), impl_->sticky_attributes.end()};
}

ExperimentResult run_experiment(const json& experiment, const EvalContext& context,
                                const CompiledFeatures* features) {
  Parser parser(false);
  const json& obj = experiment.is_object() ? experiment : empty_object_json();
  const std::string key = obj.contains("key") ? js::string_of(obj["key"]) : std::string();
  const json& variations = obj.contains("variations") ? obj["variations"] : json::array();
  CompiledExperiment e = parser.experiment(obj, variations, key, "experiment");
  parser.inline_fields(obj, e, "experiment");
  const CompiledFeatures::Impl* impl = features != nullptr ? features->impl_.get() : nullptr;
  Stack stack;
  return Run(impl, context).experiment(e, {}, nullptr, stack);
}

// ---- JSON shapes --------------------------------------------------------------------------

json to_json(const ExperimentResult& r) {
  json out = {{"inExperiment", r.in_experiment},
              {"variationId", r.variation_id},
              {"value", r.value},
              {"hashUsed", r.hash_used},
              {"hashAttribute", r.hash_attribute},
              {"hashValue", r.hash_value},
              {"key", r.key},
              {"stickyBucketUsed", r.sticky_bucket_used}};
  out["featureId"] = r.feature_id.empty() ? json(nullptr) : json(r.feature_id);
  if (r.name) out["name"] = *r.name;
  if (r.bucket) out["bucket"] = *r.bucket;
  if (r.passthrough) out["passthrough"] = true;
  if (r.leaf_id) {
    out["leafId"] = *r.leaf_id;
    out["variationWeights"] = r.variation_weights;
    if (r.bandit_version) out["banditVersion"] = *r.bandit_version;
  }
  return out;
}

json to_json(const FeatureResult& r) {
  json out = {{"value", r.value},
              {"on", r.on},
              {"off", r.off},
              {"source", r.source},
              {"ruleId", r.rule_id}};
  if (r.experiment) out["experiment"] = *r.experiment;
  if (r.experiment_result) out["experimentResult"] = to_json(*r.experiment_result);
  return out;
}

}  // namespace fulcrum::assign
