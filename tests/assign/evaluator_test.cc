// The evaluator beyond the conformance suite: agreement with Assigner (the /assign path),
// strict compile errors naming the field, sticky bucketing across weight changes and bucket
// versions, exposure tracking and concurrent use.
#include "assign/evaluator.h"

#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "assign/assigner.h"
#include "assign/condition.h"

namespace fulcrum::assign {
namespace {

using json = nlohmann::json;

struct Split {
  std::string name;
  std::vector<std::string> groups;
  std::vector<double> weights;
  double coverage = 1;
  std::optional<Namespace> ns;
  json targeting = json::object();
};

// The same experiment as a payload experiment rule, the way src/flags serves an A/B test.
json rule_for(const Split& s) {
  json rule = {{"key", s.name},          {"seed", s.name + ":seed"},    {"hashAttribute", "id"},
               {"hashVersion", 2},       {"variations", json::array()}, {"weights", s.weights},
               {"coverage", s.coverage}, {"meta", json::array()}};
  for (const auto& g : s.groups) {
    rule["variations"].push_back(json{{"group", g}});
    rule["meta"].push_back(json{{"key", g}, {"name", g}});
  }
  if (s.ns) rule["namespace"] = json::array({s.ns->id, s.ns->start, s.ns->end});
  if (!s.targeting.empty()) rule["condition"] = s.targeting;
  return rule;
}

// What POST /ab-tests/{id}/assign computes (experiments/service.cc plan_assignment):
// targeting, then the namespace, then Assigner.
std::optional<std::string> assign_like_the_api(const Split& s, const Assigner& assigner,
                                               const json& attributes) {
  const std::string user = attributes["id"].get<std::string>();
  if (!s.targeting.empty() && !eval_condition(attributes, s.targeting)) return std::nullopt;
  if (s.ns && !in_namespace(user, *s.ns)) return std::nullopt;
  const int index = assigner.assign(user);
  if (index < 0) return std::nullopt;
  return s.groups[static_cast<std::size_t>(index)];
}

json user_attributes(int i, std::mt19937& rng) {
  static const char* kCountries[] = {"GB", "IE", "FR", "DE", "gb"};
  static const char* kVersions[] = {"5.1.9", "5.2.0", "5.10.3", "4.99.0", "6.0.0-beta.1"};
  return {{"id", "user-" + std::to_string(i)},
          {"country", kCountries[rng() % 5]},
          {"app_version", kVersions[rng() % 5]},
          {"tier", rng() % 2 ? "free" : "premium"}};
}

TEST(Evaluator, AgreesWithAssignerOverTwentyThousandUsers) {
  const std::vector<Split> splits = {
      {"uneven", {"control", "a", "b"}, {0.2, 0.5, 0.3}, 1.0, std::nullopt, json::object()},
      {"partial", {"control", "variant"}, {0.5, 0.5}, 0.35, std::nullopt, json::object()},
      {"namespaced",
       {"control", "variant"},
       {0.7, 0.3},
       1.0,
       Namespace{"checkout", 0.2, 0.65},
       json::object()},
      {"targeted",
       {"control", "variant"},
       {0.4, 0.6},
       0.9,
       Namespace{"pricing", 0.0, 0.5},
       json::parse(R"({"country": {"$in": ["GB", "IE"]}, "app_version": {"$vgte": "5.2.0"}})")},
  };
  json features = json::object();
  for (const auto& s : splits) {
    features["flag-" + s.name] = {{"defaultValue", nullptr}, {"rules", json::array({rule_for(s)})}};
  }
  auto compiled = CompiledFeatures::compile(features);
  ASSERT_TRUE(compiled.is_ok()) << compiled.status().to_string();

  std::mt19937 rng(16);
  for (const auto& s : splits) {
    auto assigner = Assigner::create(s.name + ":seed", Allocation{s.groups, s.weights, s.coverage});
    ASSERT_TRUE(assigner.is_ok()) << assigner.status().to_string();
    std::map<std::string, int> counts;
    int excluded = 0;
    for (int i = 0; i < 20000; ++i) {
      const json attributes = user_attributes(i, rng);
      EvalContext ctx;
      ctx.attributes = &attributes;
      const FeatureResult r = compiled->evaluate("flag-" + s.name, ctx);
      const auto expected = assign_like_the_api(s, *assigner, attributes);
      if (!expected) {
        ++excluded;
        EXPECT_EQ(r.source, "defaultValue") << s.name << " " << attributes.dump();
        continue;
      }
      ++counts[*expected];
      ASSERT_EQ(r.source, "experiment") << s.name << " " << attributes.dump();
      ASSERT_TRUE(r.experiment_result.has_value());
      EXPECT_EQ(r.experiment_result->key, *expected) << s.name << " " << attributes.dump();
      EXPECT_EQ(r.value["group"], *expected);
      EXPECT_EQ(*r.experiment_result->bucket,
                assigner->bucket(attributes["id"].get<std::string>()));
      EXPECT_TRUE(r.experiment_result->should_track());
    }
    // Non-vacuous: every group is reached, and the exclusions the split implies happen.
    for (const auto& g : s.groups) EXPECT_GT(counts[g], 200) << s.name << " " << g;
    if (s.coverage < 1 || s.ns || !s.targeting.empty()) {
      EXPECT_GT(excluded, 2000) << s.name;
    } else {
      EXPECT_EQ(excluded, 0) << s.name;
    }
  }
}

TEST(Evaluator, StrictCompileNamesTheField) {
  const auto field_of = [](const char* text) {
    return CompiledFeatures::compile(json::parse(text)).status().field();
  };
  EXPECT_EQ(field_of(R"({"f": {"rules": [{"force": 1}, {"variations": [0, 1],
                         "weights": [0.5, 0.3, 0.2]}]}})"),
            "features.f.rules[1].weights");
  EXPECT_EQ(field_of(R"({"f": {"rules": [{"variations": [0, 1], "weights": [0.5, 0.3]}]}})"),
            "features.f.rules[0].weights");
  EXPECT_EQ(field_of(R"({"f": {"rules": [{"force": 1,
                         "condition": {"country": {"$inn": ["GB"]}}}]}})"),
            "features.f.rules[0].condition.country.$inn");
  EXPECT_EQ(field_of(R"({"f": {"rules": [{"force": 1, "coverage": 1.5}]}})"),
            "features.f.rules[0].coverage");
  EXPECT_EQ(field_of(R"({"f": {"rules": [{"variations": [0, 1], "namespace": ["n", 0.6, 0.2]}]}})"),
            "features.f.rules[0].namespace");
  EXPECT_EQ(field_of(R"({"f": {"rules": [{"variations": [0, 1], "hashVersion": 3}]}})"),
            "features.f.rules[0].hashVersion");
  EXPECT_EQ(field_of(R"({"f": {"rules": {"force": 1}}})"), "features.f.rules");
  EXPECT_EQ(field_of(R"({"f": 3})"), "features.f");
  EXPECT_EQ(field_of(R"([])"), "features");
  EXPECT_EQ(field_of(R"({"f": {"rules": [{"variations": [0, 1],
                         "parentConditions": [{"condition": {"value": true}}]}]}})"),
            "features.f.rules[0].parentConditions[0].id");
  EXPECT_TRUE(CompiledFeatures::compile(json::parse(R"({"f": {"defaultValue": 1}})")).is_ok());
}

TEST(Evaluator, UnknownFeatureAndKeys) {
  auto compiled = CompiledFeatures::compile(json::parse(R"({"b": {}, "a": {"defaultValue": 2}})"));
  ASSERT_TRUE(compiled.is_ok());
  EXPECT_EQ(compiled->keys(), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(compiled->contains("a"));
  EXPECT_FALSE(compiled->contains("c"));
  EvalContext ctx;  // no attributes at all
  const FeatureResult r = compiled->evaluate("c", ctx);
  EXPECT_EQ(r.source, "unknownFeature");
  EXPECT_TRUE(r.value.is_null());
  EXPECT_EQ(compiled->evaluate("a", ctx).value, 2);
  EXPECT_TRUE(compiled->evaluate("a", ctx).on);
}

json sticky_payload(const std::vector<double>& weights, int bucket_version,
                    int min_bucket_version) {
  json rule = {{"key", "exp"},
               {"seed", "exp"},
               {"hashAttribute", "id"},
               {"hashVersion", 2},
               {"variations", {0, 1}},
               {"weights", weights},
               {"meta", {{{"key", "control"}}, {{"key", "variant"}}}},
               {"bucketVersion", bucket_version},
               {"minBucketVersion", min_bucket_version}};
  return {{"f", {{"defaultValue", -1}, {"rules", {rule}}}}};
}

// The SDK spec's promise: changing weights mid-test does not move users who already have a
// bucket; a new bucketVersion re-buckets; minBucketVersion excludes holders of older ones.
TEST(Evaluator, StickyBucketsSurviveWeightChanges) {
  InMemoryStickyBucketStore store;
  auto before = CompiledFeatures::compile(sticky_payload({0.5, 0.5}, 0, 0));
  auto after = CompiledFeatures::compile(sticky_payload({0.0, 1.0}, 0, 0));
  auto rebucketed = CompiledFeatures::compile(sticky_payload({0.0, 1.0}, 1, 0));
  auto blocked = CompiledFeatures::compile(sticky_payload({0.0, 1.0}, 1, 1));
  ASSERT_TRUE(before && after && rebucketed && blocked);
  int controls = 0;
  for (int i = 0; i < 400; ++i) {
    const json attributes = {{"id", "u" + std::to_string(i)}};
    EvalContext ctx;
    ctx.attributes = &attributes;
    ctx.sticky_buckets = &store;
    const FeatureResult first = before->evaluate("f", ctx);
    ASSERT_EQ(first.source, "experiment");
    EXPECT_FALSE(first.experiment_result->sticky_bucket_used);
    const FeatureResult second = after->evaluate("f", ctx);
    EXPECT_EQ(second.value, first.value) << "sticky bucket lost for " << attributes.dump();
    EXPECT_TRUE(second.experiment_result->sticky_bucket_used);
    EXPECT_EQ(rebucketed->evaluate("f", ctx).value, 1);  // weights 0/1 under the new version
    if (first.value == 0) {
      ++controls;
      // Holds an assignment for version 0 < minBucketVersion 1: out of the test for good.
      const FeatureResult out = blocked->evaluate("f", ctx);
      EXPECT_EQ(out.source, "defaultValue");
    }
    auto doc = store.get_assignments("id", attributes["id"].get<std::string>());
    ASSERT_TRUE(doc.has_value());
    EXPECT_EQ(doc->assignments.at("exp__0"), first.experiment_result->key);
    EXPECT_EQ(doc->assignments.at("exp__1"), "variant");
  }
  EXPECT_GT(controls, 150);
  // Without a store nothing is sticky: the new weights apply.
  const json attributes = {{"id", "u1"}};
  EvalContext ctx;
  ctx.attributes = &attributes;
  EXPECT_EQ(after->evaluate("f", ctx).value, 1);
}

TEST(Evaluator, ForcedVariationsAreNotTracked) {
  auto compiled = CompiledFeatures::compile(sticky_payload({0.5, 0.5}, 0, 0));
  ASSERT_TRUE(compiled.is_ok());
  const json attributes = {{"id", "u1"}};
  const json forced = {{"exp", 1}};
  EvalContext ctx;
  ctx.attributes = &attributes;
  ctx.forced_variations = &forced;
  const FeatureResult r = compiled->evaluate("f", ctx);
  ASSERT_EQ(r.source, "experiment");
  EXPECT_EQ(r.value, 1);
  EXPECT_FALSE(r.experiment_result->hash_used);
  EXPECT_FALSE(r.experiment_result->should_track());
  EXPECT_EQ(r.experiment_key, "exp");
  ctx.forced_variations = nullptr;
  EXPECT_TRUE(compiled->evaluate("f", ctx).experiment_result->should_track());
}

TEST(Evaluator, ConcurrentEvaluationGivesTheSameResults) {
  const json features = json::parse(R"({
    "f": {"defaultValue": "off", "rules": [
      {"force": "gb", "condition": {"country": "GB"}, "coverage": 0.5, "hashVersion": 2},
      {"key": "e", "variations": ["x", "y", "z"], "weights": [0.1, 0.3, 0.6],
       "hashVersion": 2, "coverage": 0.8}]}})");
  auto compiled = CompiledFeatures::compile(features);
  ASSERT_TRUE(compiled.is_ok());
  std::vector<json> users;
  for (int i = 0; i < 2000; ++i) {
    users.push_back({{"id", "u" + std::to_string(i)}, {"country", i % 3 ? "GB" : "FR"}});
  }
  const auto evaluate_all = [&] {
    std::vector<json> out;
    for (const auto& u : users) {
      EvalContext ctx;
      ctx.attributes = &u;
      out.push_back(compiled->evaluate("f", ctx).value);
    }
    return out;
  };
  const auto expected = evaluate_all();
  std::vector<std::vector<json>> results(4);
  std::vector<std::thread> threads;
  for (auto& r : results) threads.emplace_back([&r, &evaluate_all] { r = evaluate_all(); });
  for (auto& t : threads) t.join();
  for (const auto& r : results) EXPECT_EQ(r, expected);
  std::map<std::string, int> counts;
  for (const auto& v : expected) ++counts[v.get<std::string>()];
  EXPECT_GT(counts["gb"], 300);
  EXPECT_GT(counts["z"], 300);
  EXPECT_GT(counts["off"], 100);
}

TEST(Evaluator, RunExperimentIsLenientLikeTheSdk) {
  const json attributes = {{"id", "1"}};
  EvalContext ctx;
  ctx.attributes = &attributes;
  // Weights that do not match the variations fall back to equal weights, as in the SDK.
  const ExperimentResult r = run_experiment(
      json::parse(R"({"key": "my-test", "variations": [0, 1], "weights": [0.1, 0.2, 0.7]})"), ctx);
  EXPECT_TRUE(r.in_experiment);
  EXPECT_EQ(r.value, 1);  // hash("my-test", "1", 1) = 0.866 -> second half
  EXPECT_TRUE(r.feature_id.empty());
  EXPECT_TRUE(to_json(r)["featureId"].is_null());
}

}  // namespace
}  // namespace fulcrum::assign
