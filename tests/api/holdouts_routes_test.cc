// Global holdouts over HTTP: CRUD (audited, analysts read), every bad configuration a 422
// naming the field (percent, an unknown or stopped holdout_id on a test or a flag rule,
// alpha), and the four evaluation paths agreeing for the same users: POST /assign, the
// payload's holdout rule, remote evaluation and OFREP give held-out users the off value (no
// exposure counted into the test) and the others their variant. Then the impact route.
#if defined(FULCRUM_HAVE_FLAGS) && defined(FULCRUM_HAVE_EXPERIMENTS)

#include <boost/beast/http.hpp>

#include "api_test_support.h"
#include "experiments/holdout.h"

namespace fulcrum::api::testing {
namespace {

using json = nlohmann::json;

const char* kHoldout = R"({"holdout_id": "fy27", "name": "FY27 holdout", "percent": 10})";

json test_body(const std::string& feature) {
  return {{"test_name", "Card art"},
          {"feature_name", feature},
          {"success_metrics", {"conversion_rate"}},
          {"test_groups", {{"control", {{"art", "classic"}}}, {"gold", {{"art", "gold"}}}}},
          {"traffic_allocation", {{"control", 0.5}, {"gold", 0.5}}},
          {"holdout_id", "fy27"}};
}

class HoldoutRoutesTest : public ApiServerTest {
 protected:
  HttpReply ofrep(const std::string& flag, const std::string& user) {
    HttpClient client(port_);
    return client.request("POST", "/ofrep/v1/evaluate/flags/" + flag,
                          json{{"context", {{"targetingKey", user}}}}.dump(), keys_["sdk"]);
  }
  void expect_422(const HttpReply& reply, const std::string& field) {
    EXPECT_EQ(reply.status, 422) << reply.body;
    EXPECT_EQ(reply.json()["field"], field) << reply.body;
  }
};

TEST_F(HoldoutRoutesTest, CrudIsAuditedAndBadConfigurationsNameTheField) {
  for (const char* bad : {R"({"name": "h", "percent": 0})", R"({"name": "h", "percent": 25})",
                          R"({"name": "h", "percent": -3})", R"({"name": "h", "percent": "5"})"}) {
    expect_422(call("POST", api("/holdouts"), bad, keys_["admin"]), "percent");
  }
  expect_422(call("POST", api("/holdouts"), R"({"percent": 5})", keys_["admin"]), "name");
  EXPECT_EQ(call("POST", api("/holdouts"), kHoldout, keys_["analyst"]).status, 403);
  HttpReply created = call("POST", api("/holdouts"), kHoldout, keys_["admin"]);
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(created.header("location"), api("/holdouts/fy27"));
  EXPECT_EQ(created.json()["percent"], 10);
  EXPECT_EQ(created.json()["status"], "running");
  EXPECT_EQ(call("POST", api("/holdouts"), kHoldout, keys_["admin"]).status, 409);

  HttpReply listed = call("GET", api("/holdouts"), "", keys_["analyst"]);
  ASSERT_EQ(listed.status, 200);
  EXPECT_EQ(listed.json()["count"], 1);
  EXPECT_EQ(call("GET", api("/holdouts/nope"), "", keys_["analyst"]).status, 404);
  expect_422(call("PATCH", api("/holdouts/fy27"), R"({"percent": 3})", keys_["admin"]), "percent");
  HttpReply renamed =
      call("PATCH", api("/holdouts/fy27"), R"({"description": "FY27"})", keys_["admin"]);
  ASSERT_EQ(renamed.status, 200) << renamed.body;

  // Opting in: unknown holdouts and mid-phase changes are refused, naming the field.
  json unknown = test_body("card_art");
  unknown["holdout_id"] = "nope";
  expect_422(call("POST", api("/ab-tests"), unknown.dump(), keys_["admin"]), "holdout_id");
  expect_422(call("POST", api("/flags"), R"({"key": "f1", "value_type": "boolean",
      "default_value": false, "rules": [{"type": "force", "value": true,
      "holdout_id": "nope"}]})",
                  keys_["admin"]),
             "rules[0].holdout_id");
  // A test's config is set at creation over HTTP (no route edits it), so a running test
  // cannot be opted in mid-phase here; experiments::update_ab_test refuses that in-process
  // (tests/experiments/holdout_test.cc).
  expect_422(call("GET", api("/holdouts/fy27/impact?alpha=2"), "", keys_["analyst"]), "alpha");

  HttpReply stopped = call("POST", api("/holdouts/fy27/stop"), "", keys_["admin"]);
  ASSERT_EQ(stopped.status, 200) << stopped.body;
  EXPECT_EQ(stopped.json()["status"], "stopped");
  EXPECT_EQ(call("POST", api("/holdouts/fy27/stop"), "", keys_["admin"]).status, 409);
  expect_422(call("POST", api("/ab-tests"), test_body("x").dump(), keys_["admin"]), "holdout_id");

  int audited = 0;
  for (const AuditEntry& entry : audit_entries()) {
    if (entry.target == "fy27" && entry.outcome.rfind("ok", 0) == 0) ++audited;
  }
  EXPECT_EQ(audited, 3);  // create, patch, stop
}

TEST_F(HoldoutRoutesTest, AssignPayloadRemoteEvalAndOfrepAgreeForHeldOutUsers) {
  ASSERT_EQ(call("POST", api("/holdouts"), kHoldout, keys_["admin"]).status, 201);
  ASSERT_EQ(call("POST", api("/flags"), R"({"key": "card_art", "value_type": "json",
      "default_value": {"art": "none"}})",
                 keys_["admin"])
                .status,
            201);
  HttpReply test = call("POST", api("/ab-tests"), test_body("card_art").dump(), keys_["admin"]);
  ASSERT_EQ(test.status, 201) << test.body;
  const std::string test_id = test.json()["test_id"];
  ASSERT_EQ(call("POST", api("/ab-tests/" + test_id + "/start"), "", keys_["admin"]).status, 200);

  const json payload = call("GET", "/api/features/" + client_key_).json();
  const json& rules = payload["features"]["card_art"]["rules"];
  ASSERT_EQ(rules.size(), 2u);
  EXPECT_EQ(rules[0]["key"], "fy27");
  EXPECT_EQ(rules[0]["ranges"], json::parse("[[0.0, 0.1], [0.1, 1.0]]"));
  EXPECT_EQ(rules[0]["variations"], json::parse(R"([{"art": "none"}, {"art": "none"}])"));
  EXPECT_EQ(rules[0]["meta"][1]["passthrough"], true);

  auto holdout = experiments::get_holdout(*store_, "fy27");
  ASSERT_TRUE(holdout.is_ok());
  int held = 0;
  for (int i = 0; i < 80; ++i) {
    const std::string user = "member-" + std::to_string(i);
    const bool held_out = holdout->holds_out({{"id", user}});
    held += held_out;
    HttpReply assigned = call("POST", api("/ab-tests/" + test_id + "/assign"),
                              json{{"user_id", user}}.dump(), keys_["admin"]);
    ASSERT_EQ(assigned.status, 200) << assigned.body;
    HttpReply single = ofrep("card_art", user);
    ASSERT_EQ(single.status, 200) << single.body;
    HttpReply remote =
        call("POST", "/api/eval/" + client_key_, json{{"attributes", {{"id", user}}}}.dump());
    ASSERT_EQ(remote.status, 200) << remote.body;
    const json decision = assigned.json();
    const json remote_value = remote.json()["features"]["card_art"]["defaultValue"];
    if (held_out) {
      EXPECT_EQ(decision["reason"], "holdout") << user;
      EXPECT_EQ(decision["held_out"], true) << user;
      EXPECT_TRUE(decision["variant"].is_null()) << user;
      EXPECT_EQ(single.json()["value"], json({{"art", "none"}})) << user;
      EXPECT_EQ(remote_value, json({{"art", "none"}})) << user;
    } else {
      ASSERT_TRUE(decision["in_experiment"].get<bool>()) << user;
      EXPECT_EQ(single.json()["reason"], "SPLIT") << user;
      EXPECT_EQ(single.json()["variant"], decision["variant"]) << user;
      EXPECT_EQ(single.json()["value"], decision["config"]) << user;
      EXPECT_EQ(remote_value, decision["config"]) << user;
    }
  }
  EXPECT_GT(held, 0);
  EXPECT_LT(held, 80);
  // No held-out user is counted into the test.
  auto counts = store_->exposure_counts(test_id);
  ASSERT_TRUE(counts.is_ok());
  std::int64_t exposed = 0;
  for (const auto& [variant, users] : *counts) exposed += users;
  EXPECT_EQ(exposed, 80 - held);

  HttpReply impact = call("GET", api("/holdouts/fy27/impact"), "", keys_["analyst"]);
  ASSERT_EQ(impact.status, 200) << impact.body;
  ASSERT_EQ(impact.json()["ab_tests"].size(), 1u);
  EXPECT_EQ(impact.json()["ab_tests"][0]["test_id"], test_id);
  EXPECT_TRUE(impact.json()["flags"].is_array());
}

}  // namespace
}  // namespace fulcrum::api::testing

#endif
