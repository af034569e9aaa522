// The SDK payload built from flags and A/B tests: its GrowthBook shape, what paused,
// completed and cancelled tests turn into, kill switch and archive, and — through the one
// evaluator — the same group for every user as the /assign decision (plan_assignment).
#include "flags/payload.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "assign/evaluator.h"
#include "experiments/bandit.h"
#include "experiments/service.h"
#include "flags/encryption.h"
#include "flags/service.h"

namespace fulcrum::flags {
namespace {

using json = nlohmann::json;
namespace ex = experiments;

json test_request(const std::string& feature) {
  return json::parse(R"({
    "test_name": "Checkout button", "feature_name": ")" + feature + R"(",
    "success_metrics": ["conversion_rate"],
    "test_groups": {"control": {"color": "grey"}, "blue": {"color": "blue"},
                    "green": {"color": "green"}},
    "traffic_allocation": {"control": 0.2, "blue": 0.5, "green": 0.3},
    "coverage": 0.7,
    "namespace": {"id": "checkout", "start": 0.1, "end": 0.9},
    "targeting": {"country": {"$in": ["GB", "IE"]}, "app_version": {"$vgte": "5.2.0"}}})");
}

class PayloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("fulcrum_payload_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    store_ = open_store((dir_ / "store.db").string()).value();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  SdkPayload build() {
    auto flags = list_flags(*store_, true);
    auto tests = ex::list_ab_tests(*store_);
    EXPECT_TRUE(flags.is_ok() && tests.is_ok());
    return build_payload(*flags, *tests);
  }
  std::filesystem::path dir_;
  std::unique_ptr<Store> store_;
  ManualClock clock_{1'800'000'000};
};

TEST_F(PayloadTest, ActiveTestIsAnExperimentRuleWithTheAssignSemantics) {
  ASSERT_TRUE(ex::create_ab_test_with_id(*store_, clock_, "checkout-test", test_request("checkout_button")).is_ok());
  ASSERT_TRUE(ex::start_ab_test(*store_, clock_, "checkout-test").is_ok());
  SdkPayload payload = build();
  const json& feature = payload.features["checkout_button"];
  EXPECT_TRUE(feature["defaultValue"].is_null());  // implicit feature
  ASSERT_EQ(feature["rules"].size(), 1u);
  const json& rule = feature["rules"][0];
  EXPECT_EQ(rule["key"], "checkout-test");
  EXPECT_EQ(rule["seed"], "checkout-test");
  EXPECT_EQ(rule["hashAttribute"], "id");
  EXPECT_EQ(rule["hashVersion"], 2);
  EXPECT_EQ(rule["coverage"], 0.7);
  EXPECT_EQ(rule["phase"], "0");
  EXPECT_EQ(rule["name"], "Checkout button");
  EXPECT_EQ(rule["namespace"], json::parse(R"(["checkout", 0.1, 0.9])"));
  // Assignment order: control first, then the others by name.
  EXPECT_EQ(rule["variations"], json::parse(R"([{"color":"grey"},{"color":"blue"},{"color":"green"}])"));
  EXPECT_EQ(rule["weights"], json::parse("[0.2, 0.5, 0.3]"));
  EXPECT_EQ(rule["meta"][1]["key"], "blue");
  EXPECT_EQ(rule["condition"], test_request("x")["targeting"]);
  EXPECT_EQ(payload.exposure_keys.at("checkout-test"), "checkout-test");
  EXPECT_EQ(payload.tests_by_feature.at("checkout_button"),
            (std::vector<TestOnFeature>{{"checkout-test", "active"}}));

  // The evaluator over this payload puts every user where /assign does.
  auto compiled = assign::CompiledFeatures::compile(payload.features);
  ASSERT_TRUE(compiled.is_ok()) << compiled.status().to_string();
  auto test = ex::get_ab_test(*store_, "checkout-test");
  const char* countries[] = {"GB", "IE", "US", "FR"};
  const char* versions[] = {"5.1.9", "5.2.0", "5.10.1", "6.0.0"};
  int in_test = 0;
  for (int i = 0; i < 4000; ++i) {
    const std::string user = "user-" + std::to_string(i);
    json attributes = {{"id", user}, {"country", countries[i % 4]}, {"app_version", versions[(i / 4) % 4]}};
    std::optional<ExposureEvent> exposure;
    auto decided = ex::plan_assignment(*store_, *test, user, &attributes, clock_.now(), exposure);
    ASSERT_TRUE(decided.is_ok());
    assign::EvalContext context;
    context.attributes = &attributes;
    assign::FeatureResult result = compiled->evaluate("checkout_button", context);
    const bool sdk_in = result.source == "experiment" && result.experiment_result &&
                        result.experiment_result->in_experiment;
    ASSERT_EQ(sdk_in, decided->in_experiment) << user << " " << attributes.dump();
    if (sdk_in) {
      ++in_test;
      EXPECT_EQ(result.experiment_result->key, *decided->variant) << user;
      EXPECT_EQ(result.value, decided->config) << user;
    } else {
      EXPECT_TRUE(result.value.is_null()) << user;
    }
  }
  EXPECT_GT(in_test, 400);  // targeting x namespace x coverage leave a fair share in
}

// A bandit test: the payload serves the current weights; new users agree with /assign under
// any weights, and users already in the test agree when the SDK keeps sticky buckets
// (bucketVersion = phase), as /assign keeps their first exposure.
TEST_F(PayloadTest, BanditServesCurrentWeightsAndStickyBucketsKeepUsersWhereAssignDoes) {
  json request = json::parse(R"({
    "test_name": "Nudge", "feature_name": "nudge", "success_metrics": ["conversion_rate"],
    "test_groups": {"control": {"v": 0}, "b": {"v": 1}, "c": {"v": 2}},
    "traffic_allocation": {"control": 0.34, "b": 0.33, "c": 0.33},
    "bandit": {"enabled": true, "recompute_interval_minutes": 60}})");
  ASSERT_TRUE(ex::create_ab_test_with_id(*store_, clock_, "nudge", request).is_ok());
  ASSERT_TRUE(ex::start_ab_test(*store_, clock_, "nudge").is_ok());
  assign::InMemoryStickyBucketStore sdk_buckets;  // what an SDK keeps on the device
  auto evaluate = [](const SdkPayload& payload, const std::string& user,
                     assign::StickyBucketStore* sticky) {
    auto compiled = assign::CompiledFeatures::compile(payload.features);
    EXPECT_TRUE(compiled.is_ok()) << compiled.status().to_string();
    json attributes = {{"id", user}};
    assign::EvalContext context;
    context.attributes = &attributes;
    context.sticky_buckets = sticky;
    return compiled->evaluate("nudge", context).experiment_result->key;
  };
  auto assign_now = [&](const std::string& user, bool record) {
    auto test = ex::get_ab_test(*store_, "nudge");
    std::optional<ExposureEvent> exposure;
    auto decided = ex::plan_assignment(*store_, *test, user, nullptr, clock_.now(), exposure);
    EXPECT_TRUE(decided.is_ok() && exposure);
    if (record) {
      EXPECT_TRUE(store_->append_exposures_and_audit({*exposure}, {}, [](const AuditEntry&) {
                          return std::string();
                        }).is_ok());
    }
    return *decided->variant;
  };

  SdkPayload before = build();
  EXPECT_EQ(before.features["nudge"]["rules"][0]["bucketVersion"], 0);
  EventBatch conversions;
  std::vector<ExposureEvent> exposures;
  std::map<std::string, std::string> first_variant;
  for (int i = 0; i < 600; ++i) {
    const std::string user = "early-" + std::to_string(i);
    const std::string variant = assign_now(user, false);
    ASSERT_EQ(evaluate(before, user, &sdk_buckets), variant) << user;
    first_variant[user] = variant;
    exposures.push_back({"nudge", user, variant, clock_.now()});
    // c converts 30% of the time, the others 5%.
    if ((variant == "c" && i % 10 < 3) || (variant != "c" && i % 20 == 0)) {
      conversions.metric_events.push_back({user, "conversion_rate", 1, clock_.now() + 1});
    }
  }
  ASSERT_TRUE(store_->append_exposures_and_audit(exposures, {}, [](const AuditEntry&) {
                      return std::string();
                    }).is_ok());
  ASSERT_TRUE(store_->ingest(conversions).is_ok());
  clock_.advance(3600);
  auto entry = ex::recompute_bandit_weights(*store_, clock_, "nudge");
  ASSERT_TRUE(entry.is_ok() && entry->has_value() && (*entry)->weights_changed);

  SdkPayload after = build();
  auto test = ex::get_ab_test(*store_, "nudge");
  EXPECT_EQ(after.features["nudge"]["rules"][0]["weights"], json(test->bandit_weights));
  EXPECT_GT(test->bandit_weights[2], 0.4);
  int moved_without_sticky = 0;
  for (const auto& [user, variant] : first_variant) {
    EXPECT_EQ(assign_now(user, false), variant) << user;                 // /assign: sticky
    EXPECT_EQ(evaluate(after, user, &sdk_buckets), variant) << user;      // SDK: sticky buckets
    moved_without_sticky += evaluate(after, user, nullptr) != variant;  // hashing alone moves
  }
  EXPECT_GT(moved_without_sticky, 50);
  // New users: the current weights, the same bucket on both sides.
  std::map<std::string, int> counts;
  for (int i = 0; i < 1000; ++i) {
    const std::string user = "late-" + std::to_string(i);
    const std::string variant = assign_now(user, false);
    ASSERT_EQ(evaluate(after, user, nullptr), variant) << user;
    ++counts[variant];
  }
  EXPECT_NEAR(counts["c"] / 1000.0, test->bandit_weights[2], 0.05);
}

TEST_F(PayloadTest, PausedAndCancelledTestsAreNotServedCompletedServeTheWinner) {
  ASSERT_TRUE(ex::create_ab_test_with_id(*store_, clock_, "t1", test_request("f1")).is_ok());
  ASSERT_TRUE(ex::start_ab_test(*store_, clock_, "t1").is_ok());
  ASSERT_TRUE(ex::pause_ab_test(*store_, clock_, "t1").is_ok());
  EXPECT_FALSE(build().features.contains("f1"));
  ASSERT_TRUE(ex::complete_ab_test(*store_, clock_, "t1", std::string("green")).is_ok());
  SdkPayload completed = build();
  const json& rule = completed.features["f1"]["rules"][0];
  EXPECT_EQ(rule["force"], json::parse(R"({"color":"green"})"));
  EXPECT_FALSE(rule.contains("condition"));  // /assign gives the winner to everyone
  EXPECT_EQ(completed.rule_variants.at(rule["id"].get<std::string>()), "green");
  EXPECT_EQ(completed.tests_by_feature.at("f1")[0].status, "completed");

  ASSERT_TRUE(ex::create_ab_test_with_id(*store_, clock_, "t2", test_request("f2")).is_ok());
  ASSERT_TRUE(ex::start_ab_test(*store_, clock_, "t2").is_ok());
  ASSERT_TRUE(ex::cancel_ab_test(*store_, clock_, "t2").is_ok());
  EXPECT_FALSE(build().features.contains("f2"));
}

TEST_F(PayloadTest, FlagRulesFollowTheTestKillSwitchAndArchiveWin) {
  json flag = json::parse(R"({"key": "f1", "value_type": "json", "default_value": {"color": "grey"},
    "rules": [{"id": "staff", "type": "force", "condition": {"segment": "staff"},
               "value": {"color": "red"}},
              {"id": "half", "type": "force", "value": {"color": "pink"}, "coverage": 0.5},
              {"id": "off", "type": "force", "value": {"color": "x"}, "enabled": false}]})");
  ASSERT_TRUE(create_flag(*store_, clock_, flag, "a").is_ok());
  ASSERT_TRUE(ex::create_ab_test_with_id(*store_, clock_, "t1", test_request("f1")).is_ok());
  ASSERT_TRUE(ex::start_ab_test(*store_, clock_, "t1").is_ok());
  SdkPayload payload = build();
  const json& rules = payload.features["f1"]["rules"];
  ASSERT_EQ(rules.size(), 3u);  // the disabled rule is left out
  EXPECT_EQ(rules[0]["key"], "t1");
  EXPECT_EQ(rules[1]["id"], "staff");
  EXPECT_EQ(rules[2]["seed"], "f1");
  EXPECT_EQ(rules[2]["hashVersion"], 2);
  EXPECT_EQ(payload.features["f1"]["defaultValue"], json::parse(R"({"color":"grey"})"));

  ASSERT_TRUE(set_flag_killed(*store_, clock_, "f1", true, "a").is_ok());
  SdkPayload killed = build();
  EXPECT_EQ(killed.features["f1"], json::parse(R"({"defaultValue": {"color": "grey"}})"));
  EXPECT_EQ(killed.killed_features, std::vector<std::string>{"f1"});

  ASSERT_TRUE(set_flag_archived(*store_, clock_, "f1", true, "a").is_ok());
  // Archived: the flag is gone; the running test still serves its feature.
  SdkPayload archived = build();
  EXPECT_TRUE(archived.features["f1"]["defaultValue"].is_null());
  EXPECT_EQ(archived.features["f1"]["rules"].size(), 1u);
}

TEST_F(PayloadTest, DocumentIsGrowthBookShapedAndEncryptsOnRequest) {
  ASSERT_TRUE(create_flag(*store_, clock_,
                          json::parse(R"({"key":"b","value_type":"boolean","default_value":true})"),
                          "a")
                  .is_ok());
  SdkPayload payload = build();
  auto plain = payload_document(payload, format_iso8601_millis(1'800'000'000'123));
  ASSERT_TRUE(plain.is_ok());
  EXPECT_EQ((*plain)["dateUpdated"], "2027-01-15T08:00:00.123Z");
  EXPECT_EQ((*plain)["status"], 200);
  EXPECT_EQ((*plain)["experiments"], json::array());
  EXPECT_EQ((*plain)["features"]["b"]["defaultValue"], true);
  const std::string key = "Zvwv/+uhpFDznZ6SX28Yjg==";
  auto encrypted = payload_document(payload, "d", key);
  ASSERT_TRUE(encrypted.is_ok());
  EXPECT_FALSE(encrypted->contains("features"));
  auto decrypted = decrypt_payload((*encrypted)["encryptedFeatures"].get<std::string>(), key);
  ASSERT_TRUE(decrypted.has_value());
  EXPECT_EQ(json::parse(*decrypted), payload.features);
}

}  // namespace
}  // namespace fulcrum::flags
