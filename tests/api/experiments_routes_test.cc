// A/B test routes end to end over HTTP against the experiments engine and SQLite.
#include "api_test_support.h"

#ifdef FULCRUM_HAVE_EXPERIMENTS

namespace fulcrum::api::testing {
namespace {

const char* kCreate = R"({
  "test_name": "Feature UI Test", "feature_name": "account_linking",
  "description": "Testing new UI for account linking",
  "hypothesis": "New UI will improve conversion rate by 20%",
  "success_metrics": ["conversion_rate", "revenue_per_user"],
  "test_groups": {"control": {"ui": "old"}, "variant": {"ui": "new"}},
  "traffic_allocation": {"control": 0.5, "variant": 0.5},
  "start_date": "2024-01-01T00:00:00Z"})";

class ExperimentRoutesTest : public ApiServerTest {
 protected:
  std::string create() {
    HttpReply reply = call("POST", api("/ab-tests"), kCreate, keys_["admin"]);
    EXPECT_EQ(reply.status, 201) << reply.body;
    return reply.json().value("test_id", "");
  }
  HttpReply action(const std::string& id, const std::string& name, const std::string& body = {}) {
    return call("POST", api("/ab-tests/" + id + "/" + name), body, keys_["admin"]);
  }
};

TEST_F(ExperimentRoutesTest, CreateReturnsDraftWithLocation) {
  HttpReply reply = call("POST", api("/ab-tests"), kCreate, keys_["admin"]);
  ASSERT_EQ(reply.status, 201) << reply.body;
  const std::string id = reply.json()["test_id"];
  EXPECT_EQ(reply.json()["status"], "draft");
  EXPECT_EQ(reply.header("location"), api("/ab-tests/" + id));
  HttpReply got = call("GET", api("/ab-tests/" + id), "", keys_["analyst"]);
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(got.json()["test_name"], "Feature UI Test");
}

// created_by is the caller (the key's label), never "" and never someone else.
TEST_F(ExperimentRoutesTest, CreatedByIsTheCallingKeysLabel) {
  HttpReply reply = call("POST", api("/ab-tests"), kCreate, keys_["admin"]);
  ASSERT_EQ(reply.status, 201) << reply.body;
  EXPECT_EQ(reply.json()["created_by"], "test admin");
  nlohmann::json same = nlohmann::json::parse(kCreate);
  same["created_by"] = "test admin";
  EXPECT_EQ(call("POST", api("/ab-tests"), same.dump(), keys_["admin"]).status, 201);
  nlohmann::json other = nlohmann::json::parse(kCreate);
  other["created_by"] = "someone_else";
  HttpReply impostor = call("POST", api("/ab-tests"), other.dump(), keys_["admin"]);
  EXPECT_EQ(impostor.status, 422) << impostor.body;
  EXPECT_EQ(impostor.json()["field"], "created_by");
}

// The app may pick the test's id (the seed's code refers to "test_123"); a taken id is 409.
TEST_F(ExperimentRoutesTest, CreateWithAChosenTestId) {
  nlohmann::json request = nlohmann::json::parse(kCreate);
  request["test_id"] = "test_123";
  HttpReply created = call("POST", api("/ab-tests"), request.dump(), keys_["admin"]);
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(created.json()["test_id"], "test_123");
  EXPECT_EQ(call("POST", api("/ab-tests"), request.dump(), keys_["admin"]).status, 409);
  request["test_id"] = "bad id!";
  HttpReply bad = call("POST", api("/ab-tests"), request.dump(), keys_["admin"]);
  EXPECT_EQ(bad.status, 422);
  EXPECT_EQ(bad.json()["field"], "test_id");
}

TEST_F(ExperimentRoutesTest, CreateRejectsUnknownFieldsAndBadValuesNamingTheField) {
  std::string with_typo = kCreate;
  with_typo.insert(1, R"("test_nmae": "x", )");
  HttpReply typo = call("POST", api("/ab-tests"), with_typo, keys_["admin"]);
  EXPECT_EQ(typo.status, 422) << typo.body;
  EXPECT_EQ(typo.header("content-type"), "application/problem+json");
  EXPECT_EQ(typo.json()["field"], "test_nmae");
  EXPECT_NE(typo.json()["detail"].get<std::string>().find("test_nmae"), std::string::npos);

  nlohmann::json bad = nlohmann::json::parse(kCreate);
  bad["traffic_allocation"]["variant"] = -1;
  HttpReply negative = call("POST", api("/ab-tests"), bad.dump(), keys_["admin"]);
  EXPECT_EQ(negative.status, 422);
  EXPECT_NE(negative.json()["field"].get<std::string>().find("traffic_allocation"),
            std::string::npos)
      << negative.body;
  HttpReply not_json = call("POST", api("/ab-tests"), "{", keys_["admin"]);
  EXPECT_EQ(not_json.status, 400);
}

TEST_F(ExperimentRoutesTest, ResultsSlicesAndBadSliceParametersNameTheParameter) {
  const std::string id = create();
  ASSERT_EQ(action(id, "start").status, 200);
  for (int u = 0; u < 20; ++u) {
    const std::string body = R"({"user_id": "user)" + std::to_string(u) + R"("})";
    ASSERT_EQ(call("POST", api("/ab-tests/" + id + "/assign"), body, keys_["service"]).status, 200);
  }
  const std::string results = api("/ab-tests/" + id + "/results");
  HttpReply sliced = call("GET", results + "?slice=tier&slice_top=3", "", keys_["analyst"]);
  ASSERT_EQ(sliced.status, 200) << sliced.body;
  EXPECT_TRUE(sliced.json().contains("slices"));
  // Too little data to post-stratify is said in the answer, not a failure of the results.
  HttpReply stratified =
      call("GET", results + "?slice=tier&post_stratify=true", "", keys_["analyst"]);
  ASSERT_EQ(stratified.status, 200) << stratified.body;
  EXPECT_TRUE(stratified.json()["slices"]["post_stratification"].contains("unavailable"))
      << stratified.body;
  for (const auto& [query, field] : std::vector<std::pair<std::string, std::string>>{
           {"?slice=a%20b", "slice"},
           {"?slice=", "slice"},
           {"?slice=x%22y", "slice"},
           {"?slice=tier&slice_top=0", "slice_top"},
           {"?slice=tier&slice_top=51", "slice_top"},
           {"?slice=tier&slice_top=-1", "slice_top"},
           {"?slice=tier&slice_top=three", "slice_top"},
           {"?post_stratify=true", "post_stratify"},
           {"?slice=tier&post_stratify=yes", "post_stratify"}}) {
    HttpReply bad = call("GET", results + query, "", keys_["analyst"]);
    EXPECT_EQ(bad.status, 422) << query << ": " << bad.body;
    EXPECT_EQ(bad.json()["field"], field) << query;
  }
  // A percentile cap outside (0, 1) on create is 422 naming the field.
  nlohmann::json capped = nlohmann::json::parse(kCreate);
  capped["metric_capping"] = {{"revenue_per_user", {{"type", "percentile"}, {"value", 1.5}}}};
  HttpReply bad_cap = call("POST", api("/ab-tests"), capped.dump(), keys_["admin"]);
  EXPECT_EQ(bad_cap.status, 422) << bad_cap.body;
  EXPECT_EQ(bad_cap.json()["field"], "metric_capping.revenue_per_user.value");
}

TEST_F(ExperimentRoutesTest, LifecycleTransitionsAndConflicts) {
  const std::string id = create();
  EXPECT_EQ(action(id, "pause").status, 409);  // draft cannot pause
  HttpReply started = action(id, "start");
  ASSERT_EQ(started.status, 200) << started.body;
  EXPECT_EQ(started.json()["status"], "active");
  EXPECT_EQ(action(id, "start").status, 409);
  EXPECT_EQ(action(id, "pause").json()["status"], "paused");
  EXPECT_EQ(action(id, "resume").json()["status"], "active");
  HttpReply unknown_body = action(id, "complete", R"({"winnr": "variant"})");
  EXPECT_EQ(unknown_body.status, 400);
  EXPECT_EQ(unknown_body.json()["field"], "winnr");
  HttpReply completed = action(id, "complete", R"({"winner": "variant"})");
  ASSERT_EQ(completed.status, 200) << completed.body;
  EXPECT_EQ(completed.json()["status"], "completed");
  EXPECT_EQ(completed.json()["winner"], "variant");
  HttpReply cancel = action(id, "cancel");
  EXPECT_EQ(cancel.status, 409);
  EXPECT_EQ(cancel.header("content-type"), "application/problem+json");
  EXPECT_EQ(action("test_nope", "start").status, 404);
  EXPECT_EQ(call("GET", api("/ab-tests/test_nope"), "", keys_["admin"]).status, 404);

  // Each lifecycle call is in the audit log with the test as target.
  int audited_for_test = 0;
  for (const AuditEntry& entry : audit_entries()) {
    if (entry.target == id) ++audited_for_test;
  }
  EXPECT_EQ(audited_for_test, 1 /*create*/ + 8 /*actions above on id*/);
}

TEST_F(ExperimentRoutesTest, ListFiltersByStatus) {
  const std::string a = create();
  const std::string b = create();
  ASSERT_EQ(action(b, "start").status, 200);
  HttpReply all = call("GET", api("/ab-tests"), "", keys_["analyst"]);
  ASSERT_EQ(all.status, 200);
  EXPECT_EQ(all.json()["count"], 2);
  HttpReply active = call("GET", api("/ab-tests?status=active"), "", keys_["analyst"]);
  ASSERT_EQ(active.status, 200);
  ASSERT_EQ(active.json()["count"], 1);
  EXPECT_EQ(active.json()["ab_tests"][0]["test_id"], b);
  HttpReply bad = call("GET", api("/ab-tests?status=running"), "", keys_["analyst"]);
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.json()["field"], "status");
}

TEST_F(ExperimentRoutesTest, AssignmentIsDeterministicAndResultsHaveContractFields) {
  const std::string id = create();
  ASSERT_EQ(action(id, "start").status, 200);
  std::map<std::string, int> by_variant;
  for (int u = 0; u < 40; ++u) {
    const std::string body = R"({"user_id": "user)" + std::to_string(u) + R"("})";
    HttpReply first = call("POST", api("/ab-tests/" + id + "/assign"), body, keys_["service"]);
    ASSERT_EQ(first.status, 200) << first.body;
    HttpReply again = call("POST", api("/ab-tests/" + id + "/assign"), body, keys_["service"]);
    EXPECT_EQ(first.json()["variant"], again.json()["variant"]);
    ++by_variant[first.json()["variant"].get<std::string>()];
  }
  EXPECT_EQ(by_variant.size(), 2u);  // both groups get users at 50/50
  HttpReply missing_user =
      call("POST", api("/ab-tests/" + id + "/assign"), R"({"user": "x"})", keys_["service"]);
  EXPECT_EQ(missing_user.status, 400);
  EXPECT_EQ(missing_user.json()["field"], "user");

  HttpReply results = call("GET", api("/ab-tests/" + id + "/results"), "", keys_["analyst"]);
  ASSERT_EQ(results.status, 200) << results.body;
  EXPECT_EQ(results.json()["test_name"], "Feature UI Test");
  EXPECT_TRUE(results.json().contains("group_analysis"));
  EXPECT_TRUE(results.json().contains("recommendation"));

  HttpReply dashboard = call("GET", api("/dashboard"), "", keys_["analyst"]);
  ASSERT_EQ(dashboard.status, 200) << dashboard.body;
  EXPECT_EQ(dashboard.json()["ab_tests"]["counts_by_status"]["active"], 1);
  EXPECT_TRUE(dashboard.json()["ab_tests"]["results"].contains(id));
  // All five sections, each stamped; on this store (no features) the model-based ones
  // report their engine's error instead of failing the document.
  for (const char* section :
       {"ab_tests", "recommendations", "upgrade_timing", "retention", "sunset"}) {
    ASSERT_TRUE(dashboard.json().contains(section)) << section;
    EXPECT_TRUE(dashboard.json()[section].contains("computed_at")) << section;
  }
  // Results in the dashboard carry the same numeric fields as the results route.
  const nlohmann::json control = dashboard.json()["ab_tests"]["results"][id]["group_analysis"]["control"];
  EXPECT_TRUE(control["p_value"].is_number());
  EXPECT_TRUE(control["statistical_significance"].is_number());
}

}  // namespace
}  // namespace fulcrum::api::testing

#endif  // FULCRUM_HAVE_EXPERIMENTS
