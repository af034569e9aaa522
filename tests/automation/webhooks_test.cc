// Endpoint validation (HTTPS unless loopback or allowed; known event types), the change ->
// event mapping, campaign paging in the fan-out and the retry back-off.
#include "automation/webhooks.h"

#include <gtest/gtest.h>

#include <set>

namespace fulcrum::automation {
namespace {

using nlohmann::json;

Status request_status(const json& request) { return parse_endpoint_request(request).status(); }

TEST(WebhookEndpointTest, UrlMustBeHttpsUnlessLoopbackOrAllowed) {
  EXPECT_TRUE(request_status({{"url", "https://crm.bank.example/hooks"},
                              {"event_types", {"campaign.created"}}})
                  .is_ok());
  EXPECT_TRUE(request_status({{"url", "http://127.0.0.1:9000/hooks"},
                              {"event_types", {"health.alert"}}})
                  .is_ok());
  EXPECT_TRUE(request_status({{"url", "http://[::1]:9000/"}, {"event_types", {"job.failed"}}})
                  .is_ok());
  Status plain = request_status({{"url", "http://crm.bank.example/hooks"},
                                 {"event_types", {"campaign.created"}}});
  EXPECT_EQ(plain.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(plain.field(), "url");
  EXPECT_TRUE(request_status({{"url", "http://crm.internal/hooks"},
                              {"event_types", {"campaign.created"}},
                              {"allow_insecure_http", true}})
                  .is_ok());
  for (const char* bad : {"ftp://x/y", "crm.bank.example/hooks", "https://user:pw@x/",
                          "https://:443/", "https://x:99999/", "https://x y/"}) {
    Status status = request_status({{"url", bad}, {"event_types", {"health.alert"}}});
    EXPECT_EQ(status.field(), "url") << bad;
  }
}

TEST(WebhookEndpointTest, UnknownEventTypeNamesItsIndex) {
  Status status = request_status({{"url", "https://x.example/"},
                                  {"event_types", {"health.alert", "test.exploded"}}});
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(status.field(), "event_types[1]");
  EXPECT_EQ(request_status({{"url", "https://x.example/"}, {"event_types", json::array()}}).field(),
            "event_types");
  EXPECT_EQ(request_status({{"url", "https://x.example/"},
                            {"event_types", {"health.alert"}},
                            {"format", "xml"}})
                .field(),
            "format");
  EXPECT_EQ(request_status({{"url", "https://x.example/"},
                            {"event_types", {"health.alert"}},
                            {"colour", "red"}})
                .field(),
            "colour");
}

Endpoint endpoint(const std::string& id, std::vector<std::string> types,
                  const std::string& format = "json") {
  Endpoint e;
  e.endpoint_id = id;
  e.url = "https://x.example/";
  e.event_types = std::move(types);
  e.format = format;
  e.key_id = "key_" + id;
  e.secret = "00";
  return e;
}

TEST(WebhookFanOutTest, CampaignTargetsArePagedWithHoldoutFlags) {
  DocumentChange change;
  change.sequence = 42;
  change.kind = "campaign";
  change.id = "camp_1";
  change.version = 1;
  change.status = "active";
  change.body = json{{"campaign_name", "Win back"}, {"target_users", json::array()}}.dump();
  change.at = 1000;
  std::vector<Store::CampaignMember> members;
  for (int i = 0; i < 1200; ++i) {
    members.push_back({"camp_1", "u" + std::to_string(1000 + i), i % 10 == 0, 1000});
  }
  auto deliveries = fan_out({change},
                            {endpoint("whk_a", {"campaign.created"}),
                             endpoint("whk_s", {"campaign.created"}, "slack"),
                             endpoint("whk_x", {"health.alert"})},
                            [&](const std::string& id) {
                              EXPECT_EQ(id, "camp_1");
                              return members;
                            },
                            2000);
  ASSERT_EQ(deliveries.size(), 4u);  // 3 pages to the JSON endpoint, 1 Slack summary
  std::set<std::string> ids;
  std::size_t users = 0, holdouts = 0;
  for (const auto& d : deliveries) {
    ids.insert(d.delivery_id);
    EXPECT_EQ(d.status, "pending");
    EXPECT_EQ(d.next_attempt_at, 2000);
    json payload = json::parse(d.payload);
    if (d.endpoint_id == "whk_s") {
      EXPECT_TRUE(payload.contains("text"));
      EXPECT_TRUE(payload["blocks"].is_array());
      continue;
    }
    EXPECT_EQ(payload["type"], "campaign.created");
    EXPECT_EQ(payload["id"], d.delivery_id);
    EXPECT_EQ(payload["data"]["page"]["count"], 3);
    for (const auto& user : payload["data"]["target_users"]) {
      ++users;
      holdouts += user["holdout"].get<bool>() ? 1 : 0;
    }
  }
  EXPECT_EQ(ids.size(), 4u);
  EXPECT_EQ(users, 1200u);
  EXPECT_EQ(holdouts, 120u);
  // Deterministic: fanning out again yields the same ids (stored once, see delivery_test).
  auto again = fan_out({change}, {endpoint("whk_a", {"campaign.created"})},
                       [&](const std::string&) { return members; }, 3000);
  ASSERT_EQ(again.size(), 3u);
  EXPECT_TRUE(ids.count(again[0].delivery_id));
}

TEST(WebhookFanOutTest, ExperimentChangesBecomeStateAndDecisionEvents) {
  DocumentChange created{1, "experiment", "test_1", 1, "draft", "", R"({"winner":null})", 10};
  EXPECT_TRUE(events_for_change(created).empty());
  DocumentChange started{2, "experiment", "test_1", 2, "active", "draft", R"({})", 20};
  auto events = events_for_change(started);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, "test.state_changed");
  EXPECT_EQ(events[0].data["from"], "draft");
  EXPECT_EQ(events[0].data["to"], "active");
  DocumentChange done{3, "experiment", "test_1", 3, "completed", "active",
                      R"({"winner":"variant","winner_forced":false})", 30};
  events = events_for_change(done);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].type, "test.decided");
  EXPECT_EQ(events[1].data["winner"], "variant");
  DocumentChange edited{4, "experiment", "test_1", 4, "completed", "completed", "{}", 40};
  EXPECT_TRUE(events_for_change(edited).empty());
}

TEST(WebhookRetryTest, ExponentialWithEqualJitterAndCap) {
  RetryPolicy policy{10, 300, 8};
  EXPECT_EQ(retry_delay(policy, 1, 0.0), 5);
  EXPECT_EQ(retry_delay(policy, 1, 0.999), 10);
  EXPECT_EQ(retry_delay(policy, 2, 0.0), 10);
  EXPECT_EQ(retry_delay(policy, 3, 0.5), 30);
  EXPECT_EQ(retry_delay(policy, 10, 0.999), 300);  // capped
  EXPECT_EQ(retry_delay(policy, 40, 0.0), 150);
}

}  // namespace
}  // namespace fulcrum::automation
