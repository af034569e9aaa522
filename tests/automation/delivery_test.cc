// Webhook delivery to a real HTTP receiver on loopback: signatures verify with the
// endpoint's secret, a receiver failing three times gets the delivery after it recovers
// (with the back-off respected), the last failure dead-letters a delivery and a manual
// redelivery sends it again under the same idempotency id, a campaign's target users
// arrive in pages, and fanning out the same change twice stores its deliveries once.
#include "automation/delivery.h"

#include <gtest/gtest.h>

#include "automation/jobs.h"
#include "automation/scheduler.h"
#include "automation/signature.h"
#include "automation_test_support.h"

namespace fulcrum::automation {
namespace {

using nlohmann::json;
using testing::PostgresSchema;
using testing::SqliteFixture;
using testing::WebhookReceiver;

constexpr UnixSeconds kNow = 1'796'169'600;  // 2026-12-02T00:00:00Z

class DeliveryTest : public SqliteFixture {
 protected:
  ManualClock clock_{kNow};
  WebhookReceiver receiver_;

  Endpoint add_endpoint(std::vector<std::string> types, const std::string& format = "json") {
    auto created = create_endpoint(store(), clock_,
                                   {{"url", receiver_.url()}, {"event_types", types},
                                    {"format", format}});
    EXPECT_TRUE(created.is_ok()) << created.status().to_string();
    return *created;
  }
  void raise_alert(const std::string& id) {
    auto raised = raise_event(store(), clock_, id, "health.alert", "test_1",
                              "SRM on test_1", {{"test_id", "test_1"}, {"check", "srm"}});
    ASSERT_TRUE(raised.is_ok()) << raised.status().to_string();
    ASSERT_TRUE(*raised);
  }
};

TEST_F(DeliveryTest, DeliveriesAreSignedWithTheEndpointSecret) {
  const Endpoint endpoint = add_endpoint({"health.alert"});
  raise_alert("health:test_1:p0:srm");
  WebhookDispatcher dispatcher(store(), clock_);
  EXPECT_EQ(*dispatcher.fan_out_pending(), 1u);
  EXPECT_EQ(*dispatcher.send_due(), 1u);
  auto requests = receiver_.requests();
  ASSERT_EQ(requests.size(), 1u);
  const auto& r = requests[0];
  EXPECT_EQ(r.target, "/hooks");
  EXPECT_EQ(r.headers.at("content-type"), "application/json");
  EXPECT_EQ(r.headers.at("fulcrum-event-type"), "health.alert");
  const std::string signature = r.headers.at("fulcrum-signature");
  EXPECT_NE(signature.find("kid=" + endpoint.key_id), std::string::npos);
  EXPECT_TRUE(verify_signature(signature, endpoint.secret, r.body, kNow).is_ok());
  EXPECT_FALSE(verify_signature(signature, "not-the-secret", r.body, kNow).is_ok());
  json body = json::parse(r.body);
  EXPECT_EQ(body["type"], "health.alert");
  EXPECT_EQ(body["id"], r.headers.at("idempotency-key"));
  EXPECT_EQ(body["data"]["check"], "srm");
  auto stored = store().get_webhook_delivery(body["id"]);
  ASSERT_TRUE(stored.is_ok() && *stored);
  EXPECT_EQ((*stored)->status, "delivered");
  EXPECT_EQ((*stored)->attempts, 1);
  // Raising the same alert again is a no-op: nothing new to deliver.
  auto again = raise_event(store(), clock_, "health:test_1:p0:srm", "health.alert", "test_1", "",
                           json::object());
  EXPECT_FALSE(*again);
  EXPECT_EQ(*dispatcher.fan_out_pending(), 0u);
}

// Rotation: during the grace period each delivery carries a signature by the new secret
// and one by the old, so a receiver on either verifies; after it only the new one signs.
TEST_F(DeliveryTest, ARotatedSecretSignsBesideTheNewOneUntilItsGraceEnds) {
  const Endpoint original = add_endpoint({"health.alert"});
  auto rotated = rotate_endpoint_secret(store(), clock_, original.endpoint_id, 3600);
  ASSERT_TRUE(rotated.is_ok()) << rotated.status().to_string();
  EXPECT_NE(rotated->secret, original.secret);
  EXPECT_NE(rotated->key_id, original.key_id);
  EXPECT_EQ(rotated->previous_key_id, original.key_id);
  WebhookDispatcher dispatcher(store(), clock_);
  raise_alert("health:test_1:p0:srm");
  ASSERT_EQ(*dispatcher.fan_out_pending(), 1u);
  ASSERT_EQ(*dispatcher.send_due(), 1u);
  auto during = receiver_.requests();
  ASSERT_EQ(during.size(), 1u);
  const std::string header = during[0].headers.at("fulcrum-signature");
  EXPECT_NE(header.find("kid=" + rotated->key_id), std::string::npos) << header;
  EXPECT_TRUE(verify_signature(header, rotated->secret, during[0].body, kNow).is_ok());
  EXPECT_TRUE(verify_signature(header, original.secret, during[0].body, kNow).is_ok());

  clock_.advance(3600);  // the grace is over
  raise_alert("health:test_1:p0:multi_variant_users");
  ASSERT_EQ(*dispatcher.fan_out_pending(), 1u);
  ASSERT_EQ(*dispatcher.send_due(), 1u);
  auto after = receiver_.requests();
  ASSERT_EQ(after.size(), 2u);
  const std::string later = after[1].headers.at("fulcrum-signature");
  EXPECT_TRUE(verify_signature(later, rotated->secret, after[1].body, clock_.now()).is_ok());
  EXPECT_FALSE(verify_signature(later, original.secret, after[1].body, clock_.now()).is_ok());

  // No grace: the old secret stops at once. Out-of-range grace names the field.
  auto immediate = rotate_endpoint_secret(store(), clock_, original.endpoint_id, 0);
  ASSERT_TRUE(immediate.is_ok());
  EXPECT_TRUE(immediate->previous_secret_at(clock_.now()).empty());
  auto bad = rotate_endpoint_secret(store(), clock_, original.endpoint_id, 8 * 86400);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().field(), "grace_seconds");
  auto unknown = rotate_endpoint_secret(store(), clock_, "whk_nope", 60);
  ASSERT_FALSE(unknown.is_ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
}

TEST_F(DeliveryTest, AReceiverFailingThreeTimesGetsTheDeliveryAfterItRecovers) {
  add_endpoint({"health.alert"});
  receiver_.set_answer([](const testing::ReceivedRequest&, int index) {
    return index < 3 ? 500 : 200;
  });
  raise_alert("health:test_1:p0:srm");
  RetryPolicy policy{10, 3600, 8};
  double next_random = 0.5;
  WebhookDispatcher dispatcher(store(), clock_, policy, std::chrono::milliseconds(2000),
                               [&] { return next_random; });
  ASSERT_EQ(*dispatcher.fan_out_pending(), 1u);
  // Failures 1..3 wait 10 * 2^(n-1) * (0.5 + 0.5 * 0.5): 7.5 -> 8, 15, 30 seconds.
  const UnixSeconds waits[] = {8, 15, 30};
  for (UnixSeconds wait : waits) {
    EXPECT_EQ(*dispatcher.send_due(), 1u);
    EXPECT_EQ(*dispatcher.send_due(), 0u);  // not due yet
    clock_.advance(wait - 1);
    EXPECT_EQ(*dispatcher.send_due(), 0u);
    clock_.advance(1);
  }
  EXPECT_EQ(*dispatcher.send_due(), 1u);
  const auto requests = receiver_.requests();
  ASSERT_EQ(requests.size(), 4u);
  for (const auto& r : requests) {
    EXPECT_EQ(r.headers.at("idempotency-key"), requests[0].headers.at("idempotency-key"));
  }
  ASSERT_EQ(receiver_.processed().size(), 1u);
  auto deliveries = store().list_webhook_deliveries({});
  ASSERT_EQ(deliveries->size(), 1u);
  EXPECT_EQ((*deliveries)[0].status, "delivered");
  EXPECT_EQ((*deliveries)[0].attempts, 4);
  EXPECT_EQ(dispatcher.counters().begin()->second.failed_attempts, 3);
  EXPECT_EQ(dispatcher.counters().begin()->second.delivered, 1);
}

TEST_F(DeliveryTest, DeadLettersAndManualRedelivery) {
  add_endpoint({"health.alert"});
  std::atomic<int> status{500};
  receiver_.set_answer([&](const testing::ReceivedRequest&, int) { return status.load(); });
  raise_alert("health:test_1:p0:srm");
  WebhookDispatcher dispatcher(store(), clock_, RetryPolicy{10, 3600, 2});
  ASSERT_EQ(*dispatcher.fan_out_pending(), 1u);
  EXPECT_EQ(*dispatcher.send_due(), 1u);
  clock_.advance(3600);
  EXPECT_EQ(*dispatcher.send_due(), 1u);
  clock_.advance(3600);
  EXPECT_EQ(*dispatcher.send_due(), 0u);  // dead: no more attempts
  auto dead = store().list_webhook_deliveries({"", "dead", 10});
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_EQ((*dead)[0].last_status_code, 500);
  EXPECT_EQ((*dead)[0].last_error, "HTTP 500");
  status = 200;
  auto queued = dispatcher.redeliver((*dead)[0].delivery_id);
  ASSERT_TRUE(queued.is_ok()) << queued.status().to_string();
  EXPECT_EQ(dispatcher.redeliver((*dead)[0].delivery_id).status().code(),
            StatusCode::kFailedPrecondition);  // already pending
  EXPECT_EQ(*dispatcher.send_due(), 1u);
  // Redelivering a delivered one sends the same idempotency id: the receiver drops it.
  ASSERT_TRUE(dispatcher.redeliver((*dead)[0].delivery_id).is_ok());
  EXPECT_EQ(*dispatcher.send_due(), 1u);
  EXPECT_EQ(receiver_.requests().size(), 4u);
  EXPECT_EQ(receiver_.processed().size(), 1u);
  EXPECT_EQ(dispatcher.redeliver("dlv_nope").status().code(), StatusCode::kNotFound);
}

TEST_F(DeliveryTest, CampaignTargetUsersArriveInPagesAndFanOutIsIdempotent) {
  add_endpoint({"campaign.created"});
  Document campaign;
  campaign.kind = "campaign";
  campaign.id = "camp_1";
  campaign.status = "active";
  campaign.created_at = campaign.updated_at = kNow;
  std::vector<Store::CampaignMember> members;
  json targets = json::array();
  for (int i = 0; i < 1100; ++i) {
    const std::string user = "u" + std::to_string(10000 + i);
    members.push_back({"camp_1", user, i % 10 == 0, kNow});
    targets.push_back(user);
  }
  campaign.body = json{{"campaign_name", "Win back"}, {"target_users", targets}}.dump();
  ASSERT_TRUE(store().put_document_and_members(campaign, members).is_ok());
  auto changes = store().pending_document_changes(100);
  ASSERT_TRUE(changes.is_ok());
  WebhookDispatcher dispatcher(store(), clock_);
  ASSERT_EQ(*dispatcher.fan_out_pending(), 3u);  // 500 + 500 + 100
  // A second replica fanning out the same changes stores nothing new.
  auto endpoints = list_endpoints(store());
  auto deliveries = fan_out(*changes, *endpoints,
                            [&](const std::string&) { return members; }, kNow);
  ASSERT_TRUE(store().fan_out_document_changes({}, deliveries).is_ok());
  EXPECT_EQ(store().list_webhook_deliveries({})->size(), 3u);
  EXPECT_EQ(*dispatcher.send_due(), 3u);
  std::set<std::string> users;
  int holdouts = 0;
  for (const auto& r : receiver_.processed()) {
    json body = json::parse(r.body);
    EXPECT_EQ(body["data"]["campaign_id"], "camp_1");
    EXPECT_EQ(body["data"]["page"]["count"], 3);
    for (const auto& user : body["data"]["target_users"]) {
      users.insert(user["user_id"].get<std::string>());
      holdouts += user["holdout"].get<bool>() ? 1 : 0;
    }
  }
  EXPECT_EQ(users.size(), 1100u);
  EXPECT_EQ(holdouts, 110);
}

TEST_F(DeliveryTest, SlackEndpointsGetAMessage) {
  add_endpoint({"health.alert"}, "slack");
  raise_alert("health:test_1:p0:srm");
  WebhookDispatcher dispatcher(store(), clock_);
  ASSERT_EQ(*dispatcher.fan_out_pending(), 1u);
  ASSERT_EQ(*dispatcher.send_due(), 1u);
  json body = json::parse(receiver_.requests().at(0).body);
  EXPECT_EQ(body["text"], ":warning: SRM on test_1");
  EXPECT_EQ(body["blocks"][0]["text"]["type"], "mrkdwn");
}

// Change-feed pruning: fanned-out rows older than the retention go, in batches; younger
// rows and pending rows (however old) stay. The same on both backends.
void expect_change_feed_pruning(Store& store) {
  ManualClock clock(kNow);
  auto put = [&](const std::string& id, UnixSeconds at) {
    Document doc;
    doc.kind = "note";
    doc.id = id;
    doc.status = "open";
    doc.body = "{}";
    doc.created_at = doc.updated_at = at;
    ASSERT_TRUE(store.put_document(doc).is_ok());
  };
  for (int i = 0; i < 30; ++i) put("old" + std::to_string(i), kNow - 10 * kSecondsPerDay);
  for (int i = 0; i < 5; ++i) put("recent" + std::to_string(i), kNow - 2 * kSecondsPerDay);
  WebhookDispatcher dispatcher(store, clock);
  ASSERT_EQ(store.pending_document_changes(100)->size(), 35u);
  ASSERT_TRUE(dispatcher.fan_out_pending().is_ok());
  ASSERT_TRUE(store.pending_document_changes(100)->empty());
  put("old_pending", kNow - 30 * kSecondsPerDay);  // not fanned out yet: must survive
  JobContext context{store, clock, "test", kNow + 600, [] { return false; }};
  const UnixSeconds week = 7 * kSecondsPerDay;
  auto pruned = run_change_feed_pruning(store, clock, week, context, /*batch=*/7);
  ASSERT_TRUE(pruned.is_ok()) << pruned.status().to_string();
  EXPECT_EQ((*pruned)["deleted"], 30) << pruned->dump();
  EXPECT_EQ((*pruned)["batches"], 5);  // 7 + 7 + 7 + 7 + 2
  EXPECT_TRUE((*pruned)["finished"].get<bool>());
  EXPECT_EQ((*run_change_feed_pruning(store, clock, week, context))["deleted"], 0);
  auto pending = store.pending_document_changes(100);
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ((*pending)[0].id, "old_pending");
  // Six days on, the recent rows are past the retention too; the pending one still stays.
  clock.advance(6 * kSecondsPerDay);
  EXPECT_EQ((*run_change_feed_pruning(store, clock, week, context))["deleted"], 5);
  ASSERT_TRUE(dispatcher.fan_out_pending().is_ok());
  EXPECT_EQ((*run_change_feed_pruning(store, clock, week, context))["deleted"], 1);
  // A stopped job (time bound passed) deletes nothing more.
  put("late", kNow - 20 * kSecondsPerDay);
  ASSERT_TRUE(dispatcher.fan_out_pending().is_ok());
  JobContext expired{store, clock, "test", kNow, [] { return true; }};
  EXPECT_EQ((*run_change_feed_pruning(store, clock, week, expired))["deleted"], 0);
  EXPECT_FALSE((*run_change_feed_pruning(store, clock, week, expired))["finished"].get<bool>());
}

TEST_F(DeliveryTest, ChangeFeedPruningOnSqlite) { expect_change_feed_pruning(store()); }

TEST(ChangeFeedPruningTest, OnPostgres) {
  PostgresSchema schema;
  FULCRUM_REQUIRE_POSTGRES(schema);
  auto store = open_store(schema.store_url());
  ASSERT_TRUE(store.is_ok()) << store.status().to_string();
  expect_change_feed_pruning(**store);
}

}  // namespace
}  // namespace fulcrum::automation
