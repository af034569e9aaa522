// GrowthBook's SDK conformance suite (tests/assign/growthbook_cases.json, a verbatim copy of
// packages/sdk-js/test/cases.json, specVersion 0.8.0) run through fulcrum_assign, the way the
// JS SDK's own json.test.ts runs it, so the server evaluates exactly as the SDKs do.
//
// Sections the evaluator does not implement, and why:
//   decrypt     - payload encryption (AES-128-CBC of encryptedFeatures) belongs to the payload
//                 builder in src/flags, not to evaluation; it is tested there.
//   urlRedirect - browser-only auto experiments that navigate the page (no server equivalent:
//                 the evaluator returns values, it never redirects).
// Every case of every other section runs; none is skipped.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "assign/buckets.h"
#include "assign/condition.h"
#include "assign/evaluator.h"
#include "assign/hash.h"

namespace fulcrum::assign {
namespace {

using json = nlohmann::json;

const json& cases() {
  static const json data = [] {
    std::ifstream in(std::string(FULCRUM_SOURCE_DIR) + "/tests/assign/growthbook_cases.json");
    return json::parse(in);
  }();
  return data;
}

const std::map<std::string, std::string>& skipped_sections() {
  static const std::map<std::string, std::string> kSkipped = {
      {"decrypt", "payload encryption is the payload builder's (src/flags), not evaluation"},
      {"urlRedirect", "browser-only redirect experiments; a server evaluator never navigates"},
  };
  return kSkipped;
}

const std::set<std::string>& tested_sections() {
  static const std::set<std::string> kTested = {"specVersion",
                                                "evalCondition",
                                                "hash",
                                                "getBucketRange",
                                                "feature",
                                                "run",
                                                "chooseVariation",
                                                "getQueryStringOverride",
                                                "inNamespace",
                                                "getEqualWeights",
                                                "stickyBucket",
                                                "contextualBandit"};
  return kTested;
}

std::vector<VariationRange> to_ranges(const json& j) {
  std::vector<VariationRange> out;
  for (const auto& r : j) out.push_back({r[0].get<double>(), r[1].get<double>()});
  return out;
}

// Holds the JSON an EvalContext borrows.
struct Context {
  explicit Context(const json& ctx) {
    attributes = ctx.value("attributes", json::object());
    forced = ctx.value("forcedVariations", json::object());
    groups = ctx.value("savedGroups", json::object());
    context.attributes = &attributes;
    context.forced_variations = &forced;
    context.saved_groups = &groups;
    context.url = ctx.value("url", "");
    context.enabled = ctx.value("enabled", true);
    context.qa_mode = ctx.value("qaMode", false);
    const json* bandits = ctx.contains("contextualBandits") ? &ctx["contextualBandits"] : nullptr;
    const json payload = ctx.value("features", json::object());
    // The suite feeds deliberately malformed payloads that the SDKs tolerate: strict compile
    // (what the server applies to saved flags) must reject them by field, lenient compile must
    // then evaluate them as the SDK does.
    strict_status = CompiledFeatures::compile(payload, bandits).status();
    auto compiled =
        CompiledFeatures::compile(payload, bandits, CompiledFeatures::Validation::kLenient);
    status = compiled.status();
    if (compiled) features = std::move(*compiled);
  }
  json attributes, forced, groups;
  EvalContext context;
  Status strict_status;
  Status status;
  std::optional<CompiledFeatures> features;
};

TEST(GrowthBookCases, SpecVersionAndSections) {
  EXPECT_EQ(cases().at("specVersion"), "0.8.0");
  for (auto it = cases().begin(); it != cases().end(); ++it) {
    EXPECT_TRUE(tested_sections().contains(it.key()) || skipped_sections().contains(it.key()))
        << "new section in cases.json, neither tested nor skipped with a reason: " << it.key();
  }
  for (const auto& [section, why] : skipped_sections()) {
    EXPECT_TRUE(cases().contains(section)) << section;
    std::cout << "skipped section " << section << " (" << cases()[section].size()
              << " cases): " << why << "\n";
  }
}

TEST(GrowthBookCases, EvalCondition) {
  ASSERT_EQ(cases().at("evalCondition").size(), 248u);
  for (const auto& c : cases().at("evalCondition")) {
    const json groups = c.size() > 4 ? c[4] : json::object();
    EXPECT_EQ(eval_condition(c[2], c[1], &groups), c[3].get<bool>()) << c[0];
  }
}

TEST(GrowthBookCases, Hash) {
  for (const auto& c : cases().at("hash")) {
    const auto got = hash(c[0].get<std::string>(), c[1].get<std::string>(), c[2].get<int>());
    const SeededHash seeded(c[0].get<std::string>(), c[2].get<int>());
    EXPECT_EQ(seeded(c[1].get<std::string>()), got) << c.dump();
    if (c[3].is_null()) {
      EXPECT_FALSE(got.has_value()) << c.dump();
    } else {
      ASSERT_TRUE(got.has_value()) << c.dump();
      EXPECT_EQ(*got, c[3].get<double>()) << c.dump();
    }
  }
}

TEST(GrowthBookCases, GetBucketRange) {
  for (const auto& c : cases().at("getBucketRange")) {
    const auto& args = c[1];
    std::vector<double> weights;
    if (!args[2].is_null()) weights = args[2].get<std::vector<double>>();
    const auto got = get_bucket_ranges(args[0].get<int>(), args[1].get<double>(), weights);
    const auto want = to_ranges(c[2]);
    ASSERT_EQ(got.size(), want.size()) << c[0];
    for (std::size_t i = 0; i < got.size(); ++i) {
      // json.test.ts compares after flooring to 8 decimals (float sums like 0.2 + 0.3).
      EXPECT_NEAR(got[i].start, want[i].start, 1e-8) << c[0] << " range " << i;
      EXPECT_NEAR(got[i].end, want[i].end, 1e-8) << c[0] << " range " << i;
    }
  }
}

TEST(GrowthBookCases, ChooseVariation) {
  for (const auto& c : cases().at("chooseVariation")) {
    EXPECT_EQ(choose_variation(c[1].get<double>(), to_ranges(c[2])), c[3].get<int>()) << c[0];
  }
}

TEST(GrowthBookCases, GetQueryStringOverride) {
  for (const auto& c : cases().at("getQueryStringOverride")) {
    const auto got =
        query_string_override(c[1].get<std::string>(), c[2].get<std::string>(), c[3].get<int>());
    if (c[4].is_null()) {
      EXPECT_FALSE(got.has_value()) << c[0] << " got " << got.value_or(-99);
    } else {
      EXPECT_EQ(got, std::optional<int>(c[4].get<int>())) << c[0];
    }
  }
}

TEST(GrowthBookCases, InNamespace) {
  for (const auto& c : cases().at("inNamespace")) {
    const Namespace ns{c[2][0].get<std::string>(), c[2][1].get<double>(), c[2][2].get<double>()};
    EXPECT_EQ(in_namespace(c[1].get<std::string>(), ns), c[3].get<bool>()) << c[0];
  }
}

TEST(GrowthBookCases, GetEqualWeights) {
  for (const auto& c : cases().at("getEqualWeights")) {
    const auto got = get_equal_weights(c[0].get<int>());
    const auto want = c[1].get<std::vector<double>>();
    ASSERT_EQ(got.size(), want.size());
    for (std::size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-8);
  }
}

// Cases whose payload strict compile rejects, with the field it names: malformed on purpose.
const std::map<std::string, std::string>& strictly_rejected() {
  static const std::map<std::string, std::string> kRejected = {
      {"force rules - coverage with bad hash version", "features.feature.rules[0].hashVersion"},
      {"ignores empty rules", "features.feature.rules[0]"},
  };
  return kRejected;
}

void run_feature_cases(const char* section) {
  ASSERT_FALSE(cases().at(section).empty());
  for (const auto& c : cases().at(section)) {
    Context ctx(c[1]);
    ASSERT_TRUE(ctx.status.is_ok()) << c[0] << ": " << ctx.status.to_string();
    auto rejected = strictly_rejected().find(c[0].get<std::string>());
    if (rejected == strictly_rejected().end()) {
      EXPECT_TRUE(ctx.strict_status.is_ok()) << c[0] << ": " << ctx.strict_status.to_string();
    } else {
      EXPECT_EQ(ctx.strict_status.field(), rejected->second) << c[0];
    }
    const FeatureResult got = ctx.features->evaluate(c[2].get<std::string>(), ctx.context);
    EXPECT_EQ(to_json(got), c[3]) << section << ": " << c[0] << "\n got: " << to_json(got).dump()
                                  << "\nwant: " << c[3].dump();
  }
}

TEST(GrowthBookCases, Feature) { run_feature_cases("feature"); }

TEST(GrowthBookCases, ContextualBandit) { run_feature_cases("contextualBandit"); }

TEST(GrowthBookCases, Run) {
  ASSERT_EQ(cases().at("run").size(), 73u);
  for (const auto& c : cases().at("run")) {
    Context ctx(c[1]);
    ASSERT_TRUE(ctx.status.is_ok()) << c[0] << ": " << ctx.status.to_string();
    const ExperimentResult got = run_experiment(c[2], ctx.context, &*ctx.features);
    EXPECT_EQ(got.value, c[3]) << c[0];
    EXPECT_EQ(got.in_experiment, c[4].get<bool>()) << c[0];
    EXPECT_EQ(got.hash_used, c[5].get<bool>()) << c[0];
  }
}

// As json.test.ts: seed the store, evaluate, then compare the experiment result and the
// documents the SDK holds for this user (those of the payload's sticky attributes).
TEST(GrowthBookCases, StickyBucket) {
  ASSERT_EQ(cases().at("stickyBucket").size(), 13u);
  for (const auto& c : cases().at("stickyBucket")) {
    Context ctx(c[1]);
    ASSERT_TRUE(ctx.status.is_ok()) << c[0] << ": " << ctx.status.to_string();
    InMemoryStickyBucketStore store;
    for (const auto& doc : c[2]) {
      StickyAssignmentsDocument d;
      d.attribute_name = doc["attributeName"].get<std::string>();
      d.attribute_value = doc["attributeValue"].get<std::string>();
      d.assignments = doc["assignments"].get<std::map<std::string, std::string>>();
      store.save_assignments(d);
    }
    ctx.context.sticky_buckets = &store;
    const FeatureResult got = ctx.features->evaluate(c[3].get<std::string>(), ctx.context);
    const json got_result = got.experiment_result ? to_json(*got.experiment_result) : json();
    EXPECT_EQ(got_result, c[4]) << c[0] << "\n got: " << got_result.dump()
                                << "\nwant: " << c[4].dump();

    json docs = json::object();
    for (const auto& attribute : ctx.features->sticky_bucket_attributes()) {
      auto it = ctx.attributes.find(attribute);
      const json value = it != ctx.attributes.end() && !it->is_null() ? *it : json("");
      const std::string text = value.is_string() ? value.get<std::string>() : value.dump();
      if (auto doc = store.get_assignments(attribute, text)) {
        docs[sticky_bucket_key(attribute, text)] = {{"attributeName", doc->attribute_name},
                                                    {"attributeValue", doc->attribute_value},
                                                    {"assignments", doc->assignments}};
      }
    }
    EXPECT_EQ(docs, c[5]) << c[0] << "\n got: " << docs.dump() << "\nwant: " << c[5].dump();
  }
}

}  // namespace
}  // namespace fulcrum::assign
