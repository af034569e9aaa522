// The automation routes on a real server: bad configuration is a 4xx naming the field and
// stores nothing; an endpoint registered over HTTP receives a signed test.state_changed
// when a test is started through the API (the server's dispatcher running); jobs list and
// run; /metrics carries the job and endpoint series; campaign target users page and export.
#include <gtest/gtest.h>

#include "../api/api_test_support.h"
#include "automation/signature.h"
#include "automation_test_support.h"

namespace fulcrum::api::testing {
namespace {

using nlohmann::json;

class AutomationRoutesTest : public ApiServerTest {
 protected:
  void configure(ServerOptions& options) override {
    options.automation = true;
    options.automation_scheduler = false;
    options.webhook_dispatch_interval = std::chrono::milliseconds(20);
    options.change_feed_retention = 30 * kSecondsPerDay;
  }
  automation::testing::WebhookReceiver receiver_;
};

TEST_F(AutomationRoutesTest, BadConfigurationIsA4xxNamingTheField) {
  const std::string admin = keys_["admin"];
  struct Case {
    json body;
    std::string field;
  };
  const std::vector<Case> webhooks = {
      {{{"url", "http://crm.bank.example/hook"}, {"event_types", {"health.alert"}}}, "url"},
      {{{"url", "https://crm.bank.example/hook"}, {"event_types", {"health.alert", "nope"}}},
       "event_types[1]"},
      {{{"url", "https://crm.bank.example/hook"}}, "event_types"},
      {{{"url", "https://crm.bank.example/hook"}, {"event_types", {"job.failed"}}, {"x", 1}}, "x"}};
  for (const auto& c : webhooks) {
    HttpReply reply = call("POST", api("/webhooks"), c.body.dump(), admin);
    EXPECT_EQ(reply.status, 422) << reply.body;
    EXPECT_EQ(reply.json()["field"], c.field) << reply.body;
  }
  EXPECT_EQ(call("GET", api("/webhooks"), {}, admin).json()["endpoints"].size(), 0u);
  const std::vector<Case> jobs = {{{{"schedule", "61 * * * *"}}, "schedule"},
                                  {{{"schedule", "every 1w"}}, "schedule"},
                                  {{{"timezone", "Mars/Base"}}, "timezone"},
                                  {{{"enabled", "yes"}}, "enabled"}};
  for (const auto& c : jobs) {
    HttpReply reply = call("PUT", api("/automation/jobs/retention_triggers"), c.body.dump(), admin);
    EXPECT_EQ(reply.status, 422) << reply.body;
    EXPECT_EQ(reply.json()["field"], c.field) << reply.body;
  }
  EXPECT_EQ(call("PUT", api("/automation/jobs/nightly"), "{}", admin).status, 404);
  EXPECT_EQ(call("POST", api("/webhooks"), "{}", keys_["analyst"]).status, 403);
  HttpReply ok = call("PUT", api("/automation/jobs/retention_triggers"),
                      R"({"schedule":"30 5 * * *","timezone":"Europe/Berlin"})", admin);
  EXPECT_EQ(ok.status, 200) << ok.body;
  HttpReply listed = call("GET", api("/automation/jobs"), {}, keys_["analyst"]);
  ASSERT_EQ(listed.status, 200);
  bool found = false;
  const json listing = listed.json();  // (a temporary's member would dangle in the loop)
  for (const auto& job : listing["jobs"]) {
    if (job["name"] == "retention_triggers") {
      found = true;
      EXPECT_EQ(job["schedule"], "30 5 * * *");
      EXPECT_EQ(job["timezone"], "Europe/Berlin");
      EXPECT_TRUE(job["next_run_at"].is_string());
    }
  }
  EXPECT_TRUE(found) << listed.body;

  // A bad ramp in a test's policy: 422 naming the field, and the stored policy unchanged.
  HttpReply test = call("POST", api("/ab-tests"),
                        R"({"test_name":"T","feature_name":"f","success_metrics":["conversion_rate"],
                            "test_groups":{"control":{},"variant":{}},
                            "traffic_allocation":{"control":0.5,"variant":0.5},"coverage":0.01})",
                        admin);
  ASSERT_EQ(test.status, 201) << test.body;
  const std::string policy_path = api("/ab-tests/" + test.json()["test_id"].get<std::string>() + "/policy");
  const json good = {{"ramp", {{"steps", {0.01, 0.05, 0.25, 0.5}}, {"min_hours_per_step", 12}}}};
  ASSERT_EQ(call("PUT", policy_path, good.dump(), admin).status, 200);
  const std::string stored = call("GET", policy_path, {}, admin).body;
  const std::vector<Case> ramps = {
      {{{"ramp", {{"steps", {0.05, 0.01}}}}}, "ramp.steps[1]"},
      {{{"ramp", {{"steps", {0.5, 2}}}}}, "ramp.steps[1]"},
      {{{"ramp", {{"steps", {"1%"}}}}}, "ramp.steps[0]"},
      {{{"ramp", {{"steps", 0.5}}}}, "ramp.steps"},
      {{{"ramp", {{"steps", {0.5}}, {"min_hours_per_step", -1}}}}, "ramp.min_hours_per_step"},
      {{{"ramp", {{"steps", {0.5}}, {"min_users_per_step", 1.5}}}}, "ramp.min_users_per_step"},
      {{{"ramp", {{"steps", {0.5}}, {"on_guardrail_harm", "ignore"}}}}, "ramp.on_guardrail_harm"},
      {{{"ramp", "1% to 50%"}}, "ramp"},
      {{{"ramp_state", {{"step", 3}}}}, "ramp_state"}};
  for (const auto& c : ramps) {
    HttpReply reply = call("PUT", policy_path, c.body.dump(), admin);
    EXPECT_EQ(reply.status, 422) << reply.body;
    EXPECT_EQ(reply.json()["field"], c.field) << reply.body;
  }
  EXPECT_EQ(call("GET", policy_path, {}, admin).body, stored);
}

TEST_F(AutomationRoutesTest, AStartedTestIsAnnouncedToARegisteredEndpoint) {
  const std::string admin = keys_["admin"];
  HttpReply created = call("POST", api("/webhooks"),
                           json{{"url", receiver_.url()}, {"event_types", {"test.state_changed"}}}
                               .dump(),
                           admin);
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string secret = created.json()["secret"];
  const std::string endpoint_id = created.json()["endpoint_id"];
  EXPECT_FALSE(call("GET", api("/webhooks"), {}, admin).json()["endpoints"][0].contains("secret"));
  HttpReply test = call("POST", api("/ab-tests"),
                        R"({"test_name":"T","feature_name":"f","success_metrics":["conversion_rate"],
                            "test_groups":{"control":{},"variant":{}},
                            "traffic_allocation":{"control":0.5,"variant":0.5}})",
                        admin);
  ASSERT_EQ(test.status, 201) << test.body;
  const std::string test_id = test.json()["test_id"];
  ASSERT_EQ(call("POST", api("/ab-tests/" + test_id + "/start"), {}, admin).status, 200);
  for (int i = 0; i < 200 && receiver_.processed().empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto processed = receiver_.processed();
  ASSERT_EQ(processed.size(), 1u);
  EXPECT_TRUE(automation::verify_signature(processed[0].headers.at("fulcrum-signature"), secret,
                                           processed[0].body, clock_.now())
                  .is_ok());
  json event = json::parse(processed[0].body);
  EXPECT_EQ(event["type"], "test.state_changed");
  EXPECT_EQ(event["subject"], test_id);
  EXPECT_EQ(event["data"]["to"], "active");
  // The receiver has answered; the dispatcher records the outcome just after (on a loaded
  // machine, possibly after this test's next request), so wait for it.
  HttpReply deliveries;
  for (int i = 0; i < 200; ++i) {
    deliveries = call("GET", api("/webhooks/deliveries?status=delivered"), {}, admin);
    if (deliveries.status != 200 || !deliveries.json()["deliveries"].empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(deliveries.status, 200);
  EXPECT_EQ(deliveries.json()["deliveries"].size(), 1u);
  EXPECT_EQ(call("GET", api("/webhooks/deliveries?status=lost"), {}, admin).json()["field"],
            "status");
  HttpReply metrics = call("GET", "/metrics");
  EXPECT_NE(metrics.body.find("fulcrum_webhook_deliveries_total{endpoint=\"" + endpoint_id +
                              "\",outcome=\"delivered\"} 1"),
            std::string::npos)
      << metrics.body;
  EXPECT_NE(metrics.body.find("fulcrum_job_runs_total{job=\"retention_triggers\",outcome=\"ok\"}"),
            std::string::npos);
  // Rotation over HTTP: the new secret once, the old one never shown; bad grace is a 422.
  HttpReply rotated =
      call("POST", api("/webhooks/" + endpoint_id + "/rotate-secret"), R"({"grace_seconds": 60})",
           admin);
  ASSERT_EQ(rotated.status, 200) << rotated.body;
  EXPECT_NE(rotated.json()["secret"], secret);
  EXPECT_FALSE(rotated.json().contains("previous_secret"));
  EXPECT_EQ(rotated.json()["previous_key_id"], created.json()["key_id"]);
  EXPECT_FALSE(call("GET", api("/webhooks"), {}, admin).json()["endpoints"][0].contains(
      "previous_secret"));
  for (const char* bad : {R"({"grace_seconds": -1})", R"({"grace_seconds": "1h"})",
                          R"({"grace": 5})"}) {
    HttpReply refused =
        call("POST", api("/webhooks/" + endpoint_id + "/rotate-secret"), bad, admin);
    EXPECT_EQ(refused.status, 422) << bad;
    EXPECT_TRUE(refused.json()["field"].get<std::string>().starts_with("grace")) << refused.body;
  }
  EXPECT_EQ(call("POST", api("/webhooks/" + endpoint_id + "/rotate-secret"), {}, keys_["analyst"])
                .status,
            403);
  EXPECT_EQ(call("POST", api("/webhooks/whk_nope/rotate-secret"), {}, admin).status, 404);
  HttpReply removed = call("DELETE", api("/webhooks/" + endpoint_id), {}, admin);
  EXPECT_EQ(removed.status, 200);
  EXPECT_EQ(call("GET", api("/webhooks"), {}, admin).json()["endpoints"].size(), 0u);
}

TEST_F(AutomationRoutesTest, JobsRunOnRequestAndRecordTheirRuns) {
  const std::string admin = keys_["admin"];
  // The change-feed retention is the server's option (fulcrum serve
  // --change-feed-retention-days), not a fixed week.
  HttpReply pruned = call("POST", api("/automation/jobs/change_feed_pruning/run"), {}, admin);
  ASSERT_EQ(pruned.status, 200) << pruned.body;
  EXPECT_EQ(pruned.json()["detail"]["retention_days"], 30) << pruned.body;
  HttpReply ran = call("POST", api("/automation/jobs/experiment_health/run"), {}, admin);
  ASSERT_EQ(ran.status, 200) << ran.body;
  EXPECT_EQ(ran.json()["outcome"], "ok");
  EXPECT_EQ(ran.json()["detail"]["active_tests"], 0);
  HttpReply runs = call("GET", api("/automation/jobs/experiment_health/runs"), {}, admin);
  ASSERT_EQ(runs.status, 200);
  EXPECT_EQ(runs.json()["runs"].size(), 1u);
  EXPECT_EQ(call("POST", api("/automation/jobs/nope/run"), {}, admin).status, 404);
  bool audited = false;
  for (const auto& entry : audit_entries()) {
    audited = audited || entry.action == "POST /automation/jobs/{job_name}/run";
  }
  EXPECT_TRUE(audited);
}

TEST_F(AutomationRoutesTest, CampaignTargetUsersPageAndExport) {
  Document campaign;
  campaign.kind = "campaign";
  campaign.id = "camp_routes";
  campaign.status = "active";
  campaign.created_at = campaign.updated_at = clock_.now();
  std::vector<Store::CampaignMember> members;
  json targets = json::array(), holdouts = json::array();
  for (int i = 0; i < 25; ++i) {
    const std::string user = "u" + std::to_string(100 + i);
    members.push_back({"camp_routes", user, i % 5 == 0, clock_.now()});
    (i % 5 == 0 ? holdouts : targets).push_back(user);
  }
  campaign.body = json{{"campaign_id", "camp_routes"},
                       {"campaign_name", "Win back"},
                       {"trigger_type", "usage_drop"},
                       {"target_users", targets},
                       {"holdout_users", holdouts},
                       {"campaign_type", "email"},
                       {"campaign_message", "We miss you"},
                       {"success_metrics", {"retention_rate"}},
                       {"holdout_fraction", 0.2},
                       {"retention_window_days", 28},
                       {"details", json::object()},
                       {"campaign_status", "active"},
                       {"created_at", format_iso8601(clock_.now())}}
                      .dump();
  ASSERT_TRUE(store_->put_document_and_members(campaign, members).is_ok());
  std::vector<std::string> seen;
  std::string cursor;
  int pages = 0;
  do {
    HttpReply page = call("GET",
                          api("/retention-campaigns/camp_routes/target-users?limit=10" +
                              (cursor.empty() ? std::string() : "&cursor=" + cursor)),
                          {}, keys_["service"]);
    ASSERT_EQ(page.status, 200) << page.body;
    ++pages;
    const json body = page.json();
    for (const auto& user : body["users"]) {
      seen.push_back(user["user_id"]);
      EXPECT_EQ(user["holdout"].get<bool>(), std::stoi(user["user_id"].get<std::string>().substr(1)) % 5 == 0);
    }
    cursor = page.json()["next_cursor"].is_string() ? page.json()["next_cursor"].get<std::string>()
                                                    : std::string();
  } while (!cursor.empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen.size(), 25u);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  HttpReply csv = call("GET", api("/retention-campaigns/camp_routes/target-users.csv"), {},
                       keys_["admin"]);
  ASSERT_EQ(csv.status, 200);
  EXPECT_EQ(csv.header("content-type"), "text/csv; charset=utf-8");
  EXPECT_EQ(csv.body.rfind("user_id,holdout,targeted_at\nu100,true,", 0), 0u) << csv.body;
  EXPECT_EQ(std::count(csv.body.begin(), csv.body.end(), '\n'), 26);
  EXPECT_EQ(call("GET", api("/retention-campaigns/camp_routes/target-users?cursor=zz"), {},
                 keys_["admin"])
                .json()["field"],
            "cursor");
  EXPECT_EQ(call("GET", api("/retention-campaigns/nope/target-users"), {}, keys_["admin"]).status,
            404);
  EXPECT_EQ(call("GET", api("/retention-campaigns/camp_routes/target-users"), {}, keys_["analyst"])
                .status,
            403);
}

}  // namespace
}  // namespace fulcrum::api::testing
