// Routes over the recommendation, sunset and retention engines, when built in: personal
// reads are limited to admin or the user themself, and admin reads of personal data are
// audited.
#include "api_test_support.h"

namespace fulcrum::api::testing {
namespace {

class EngineRoutesTest : public ApiServerTest {};

#ifdef FULCRUM_HAVE_RECOMMEND
TEST_F(EngineRoutesTest, RecommendationsForSelfOrAdminAndAdminReadsAreAudited) {
  HttpReply ingested = call("POST", api("/events"), R"({"events": [
      {"type": "feature", "name": "transfers", "required_tier": "free"},
      {"type": "feature", "name": "budgets", "required_tier": "free"},
      {"type": "user", "user_id": "alice", "tier": "free", "signup_at": 1700000000},
      {"type": "user", "user_id": "bob", "tier": "free", "signup_at": 1700000000},
      {"type": "feature_usage", "user_id": "alice", "feature": "transfers", "at": 1700100000},
      {"type": "feature_usage", "user_id": "bob", "feature": "transfers", "at": 1700100000},
      {"type": "feature_usage", "user_id": "bob", "feature": "budgets", "at": 1700100000}]})",
                            keys_["service"]);
  ASSERT_EQ(ingested.status, 200) << ingested.body;
  const std::size_t audited_before = audit_entries().size();

  HttpReply self = call("GET", api("/feature-recommendations/alice"), "", user_token("alice"));
  EXPECT_NE(self.status, 401);
  EXPECT_NE(self.status, 403);
  EXPECT_LT(self.status, 500) << self.body;
  EXPECT_EQ(call("GET", api("/feature-recommendations/alice"), "", user_token("bob")).status, 403);
  HttpReply admin = call("GET", api("/feature-recommendations/alice"), "", keys_["admin"]);
  EXPECT_LT(admin.status, 500) << admin.body;
  call("GET", api("/feature-recommendations/bob"), "", keys_["admin"]);
  // Personal-data reads are aggregated per caller and hour, not one row per call...
  EXPECT_EQ(audit_entries().size(), audited_before);
  // ...and written when the hour ends or the server stops.
  server_->shutdown();
  server_->wait();
  std::map<std::string, AuditEntry> by_actor;
  bool denial_recorded = false;
  for (const AuditEntry& entry : audit_entries()) {
    if (entry.actor == "user:bob" && entry.outcome.starts_with("denied: 403")) {
      denial_recorded = true;
    }
    // Only the read tallies: the 403 is a security event of the same action.
    if (entry.action == "GET /feature-recommendations/{user_id}" &&
        entry.outcome.starts_with("read;")) {
      by_actor[entry.actor] = entry;
    }
  }
  std::string actors;
  for (const auto& [actor, entry] : by_actor) actors += actor + " (" + entry.outcome + "); ";
  ASSERT_EQ(by_actor.size(), 2u) << actors;
  ASSERT_TRUE(by_actor.contains(key_ids_["admin"]));
  EXPECT_EQ(by_actor[key_ids_["admin"]].outcome.rfind("read; calls=2; users=2; hour=", 0), 0u)
      << by_actor[key_ids_["admin"]].outcome;
  EXPECT_EQ(by_actor[key_ids_["admin"]].target, "alice");
  EXPECT_TRUE(denial_recorded) << actors;  // bob's 403 is a security event
  ASSERT_TRUE(by_actor.contains("user-token"));  // the self read
  EXPECT_EQ(by_actor["user-token"].outcome.rfind("read; calls=1; users=1; hour=", 0), 0u)
      << by_actor["user-token"].outcome;
}
#endif

#ifdef FULCRUM_HAVE_SUNSET
TEST_F(EngineRoutesTest, FeatureSunsetAnswersAnArray) {
  HttpReply reply = call("GET", api("/feature-sunset"), "", keys_["admin"]);
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_TRUE(reply.json().is_array());
}
#endif

#ifdef FULCRUM_HAVE_LIFECYCLE
TEST_F(EngineRoutesTest, CampaignListIsAnAuditedAdminRead) {
  HttpReply reply = call("GET", api("/retention-campaigns"), "", keys_["admin"]);
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.json()["count"], 0);
  EXPECT_EQ(call("GET", api("/retention-campaigns?status=nope"), "", keys_["admin"]).status,
            400);
  EXPECT_EQ(call("GET", api("/retention-campaigns/camp_x/results"), "", keys_["analyst"]).status,
            404);
  server_->shutdown();
  server_->wait();  // writes the hour's personal-data aggregate
  ASSERT_EQ(audit_entries().size(), 1u);
  EXPECT_EQ(audit_entries()[0].action, "GET /retention-campaigns");
  EXPECT_EQ(audit_entries()[0].outcome.rfind("read; calls=1; users=1; hour=", 0), 0u)
      << audit_entries()[0].outcome;
}
#endif

}  // namespace
}  // namespace fulcrum::api::testing
