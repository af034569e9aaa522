// The SDK payload built from flags and A/B tests: its GrowthBook shape, what paused,
// completed and cancelled tests turn into, kill switch and archive, and — through the one
// evaluator — the same group for every user as the /assign decision (plan_assignment).
#include "flags/payload.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "assign/evaluator.h"
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
