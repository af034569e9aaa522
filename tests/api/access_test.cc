// Access control over real HTTP: for every route, each role is either allowed (the answer is
// not 401/403) or refused with exactly 401 (no or bad credentials) or 403 (wrong role, or a
// user token for someone else). The expectations are written out here, independently of the
// server's route table, and every route the server has must appear in this table.
#include <set>

#include "api/audit.h"
#include "api_test_support.h"

namespace fulcrum::api::testing {
namespace {

enum Who { kNobody, kAdmin, kAnalyst, kService, kUserSelf, kUserOther, kSdk };
const char* who_name(Who who) {
  static const char* kNames[] = {"nobody",     "admin",       "analyst", "service",
                                 "user(self)", "user(other)", "sdk"};
  return kNames[who];
}

struct Expectation {
  std::string method;
  std::string pattern;  // as in the route table
  std::set<Who> allowed;
};

const std::set<Who> kEveryone = {kNobody,  kAdmin,     kAnalyst, kService,
                                 kUserSelf, kUserOther, kSdk};

std::vector<Expectation> expectations() {
  std::vector<Expectation> table = {
      {"GET", "/healthz", kEveryone},
      {"GET", "/metrics", kEveryone},
      {"POST", std::string(kApiPrefix) + "/auth/user-token", {kAdmin, kService}},
      {"POST", std::string(kApiPrefix) + "/events", {kAdmin, kService}},
      {"POST", std::string(kApiPrefix) + "/events/ndjson", {kAdmin, kService}},
      {"POST", std::string(kApiPrefix) + "/events/csv", {kAdmin, kService}},
  };
#ifdef FULCRUM_HAVE_EXPERIMENTS
  const std::string p = std::string(kApiPrefix);
  for (const char* action : {"start", "pause", "resume", "complete", "cancel"}) {
    table.push_back({"POST", p + "/ab-tests/{test_id}/" + action, {kAdmin}});
  }
  table.push_back({"POST", p + "/ab-tests", {kAdmin}});
  table.push_back({"GET", p + "/ab-tests", {kAdmin, kAnalyst}});
  table.push_back({"GET", p + "/ab-tests/{test_id}", {kAdmin, kAnalyst}});
  table.push_back({"GET", p + "/ab-tests/{test_id}/results", {kAdmin, kAnalyst}});
  table.push_back({"GET", p + "/ab-tests/{test_id}/bandit", {kAdmin, kAnalyst}});
  table.push_back({"POST", p + "/ab-tests/{test_id}/bandit/recompute", {kAdmin}});
  table.push_back({"POST", p + "/ab-tests/{test_id}/assign", {kAdmin, kService}});
  table.push_back({"PUT", p + "/ab-tests/{test_id}/coverage", {kAdmin}});
  table.push_back({"GET", p + "/dashboard", {kAdmin, kAnalyst}});
  table.push_back({"GET", p + "/holdouts", {kAdmin, kAnalyst}});
  table.push_back({"POST", p + "/holdouts", {kAdmin}});
  table.push_back({"GET", p + "/holdouts/{holdout_id}", {kAdmin, kAnalyst}});
  table.push_back({"PATCH", p + "/holdouts/{holdout_id}", {kAdmin}});
  table.push_back({"POST", p + "/holdouts/{holdout_id}/stop", {kAdmin}});
  table.push_back({"GET", p + "/holdouts/{holdout_id}/impact", {kAdmin, kAnalyst}});
#endif
#if defined(FULCRUM_HAVE_FLAGS) && defined(FULCRUM_HAVE_EXPERIMENTS)
  const std::string f = std::string(kApiPrefix);
  table.push_back({"GET", f + "/flags", {kAdmin, kAnalyst}});
  table.push_back({"POST", f + "/flags", {kAdmin}});
  table.push_back({"GET", f + "/flags/{key}", {kAdmin, kAnalyst}});
  table.push_back({"PATCH", f + "/flags/{key}", {kAdmin}});
  table.push_back({"POST", f + "/flags/{key}/kill", {kAdmin}});
  table.push_back({"POST", f + "/flags/{key}/archive", {kAdmin}});
  table.push_back({"GET", f + "/sdk-connections", {kAdmin}});
  // The SDK routes: the client key in the path is the credential (anyone holding it may
  // read the payload, as browser and mobile apps do); OFREP needs the sdk key as Bearer.
  table.push_back({"GET", "/api/features/{clientKey}", kEveryone});
  table.push_back({"GET", "/sub/{clientKey}", kEveryone});
  table.push_back({"POST", "/api/eval/{clientKey}", kEveryone});
  table.push_back({"POST", "/ofrep/v1/evaluate/flags/{key}", {kSdk}});
  table.push_back({"POST", "/ofrep/v1/evaluate/flags", {kSdk}});
  for (const char* pattern : {"/api/features/{clientKey}", "/sub/{clientKey}",
                              "/api/eval/{clientKey}", "/ofrep/v1/evaluate/flags/{key}",
                              "/ofrep/v1/evaluate/flags"}) {
    table.push_back({"OPTIONS", pattern, kEveryone});  // CORS preflight
  }
#endif
#ifdef FULCRUM_HAVE_RECOMMEND
  table.push_back({"GET", std::string(kApiPrefix) + "/feature-recommendations/{user_id}",
                   {kAdmin, kUserSelf}});
#endif
#ifdef FULCRUM_HAVE_SUNSET
  table.push_back({"GET", std::string(kApiPrefix) + "/feature-sunset", {kAdmin}});
#endif
  // Keys and the audit log's anchor (routes_trust.cc).
  const std::string t = std::string(kApiPrefix);
  table.push_back({"POST", t + "/users/{user_id}/revoke-tokens", {kAdmin, kService}});
  table.push_back({"GET", t + "/token-keys", {kAdmin}});
  table.push_back({"POST", t + "/token-keys/rotate", {kAdmin}});
  table.push_back({"POST", t + "/token-keys/{kid}/retire", {kAdmin}});
  table.push_back({"GET", t + "/audit/head", {kAdmin}});
  // The dashboard's user search (personal data: admin only, admin reads audited).
  table.push_back({"GET", std::string(kApiPrefix) + "/users", {kAdmin}});
#if defined(FULCRUM_HAVE_RECOMMEND) && defined(FULCRUM_HAVE_LIFECYCLE)
  table.push_back({"GET", std::string(kApiPrefix) + "/upgrade-timing/{user_id}",
                   {kAdmin, kUserSelf}});
#endif
#ifdef FULCRUM_HAVE_AUTOMATION
  const std::string a = std::string(kApiPrefix);
  table.push_back({"GET", a + "/automation/jobs", {kAdmin, kAnalyst}});
  table.push_back({"PUT", a + "/automation/jobs/{job_name}", {kAdmin}});
  table.push_back({"POST", a + "/automation/jobs/{job_name}/run", {kAdmin}});
  table.push_back({"GET", a + "/automation/jobs/{job_name}/runs", {kAdmin, kAnalyst}});
  table.push_back({"GET", a + "/webhooks", {kAdmin}});
  table.push_back({"POST", a + "/webhooks", {kAdmin}});
  table.push_back({"DELETE", a + "/webhooks/{endpoint_id}", {kAdmin}});
  table.push_back({"POST", a + "/webhooks/{endpoint_id}/rotate-secret", {kAdmin}});
  table.push_back({"GET", a + "/webhooks/deliveries", {kAdmin}});
  table.push_back({"POST", a + "/webhooks/deliveries/{delivery_id}/redeliver", {kAdmin}});
  table.push_back({"GET", a + "/ab-tests/{test_id}/policy", {kAdmin, kAnalyst}});
  table.push_back({"PUT", a + "/ab-tests/{test_id}/policy", {kAdmin}});
  table.push_back({"POST", a + "/ab-tests/{test_id}/policy/override", {kAdmin}});
  table.push_back({"GET", a + "/retention-campaigns/{campaign_id}/target-users", {kAdmin, kService}});
  table.push_back(
      {"GET", a + "/retention-campaigns/{campaign_id}/target-users.csv", {kAdmin, kService}});
#endif
#ifdef FULCRUM_HAVE_LIFECYCLE
  table.push_back({"GET", std::string(kApiPrefix) + "/retention-campaigns", {kAdmin}});
  table.push_back({"POST", std::string(kApiPrefix) + "/retention-campaigns/trigger", {kAdmin}});
  table.push_back({"GET", std::string(kApiPrefix) + "/retention-campaigns/{campaign_id}/results",
                   {kAdmin, kAnalyst}});
#endif
  return table;
}

const char* kCreateTest = R"({
  "test_name": "Feature UI Test", "feature_name": "account_linking",
  "description": "Testing new UI for account linking",
  "hypothesis": "New UI will improve conversion rate by 20%",
  "success_metrics": ["conversion_rate", "revenue_per_user"],
  "test_groups": {"control": {"ui": "old"}, "variant": {"ui": "new"}},
  "traffic_allocation": {"control": 0.5, "variant": 0.5},
  "start_date": "2024-01-01T00:00:00Z"})";

class AccessTest : public ApiServerTest {
 protected:
  std::string credential(Who who) {
    switch (who) {
      case kNobody:
        return "";
      case kAdmin:
        return keys_["admin"];
      case kAnalyst:
        return keys_["analyst"];
      case kService:
        return keys_["service"];
      case kUserSelf:
        return user_token("u-self");
      case kUserOther:
        return user_token("u-other");
      case kSdk:
        return keys_["sdk"];
    }
    return "";
  }

  // A plausible request for the route, so allowed callers get past validation where cheap.
  std::pair<std::string, std::string> request_for(const std::string& pattern) {
    std::string path = pattern;
    auto replace = [&](const std::string& from, const std::string& to) {
      auto at = path.find(from);
      if (at != std::string::npos) path.replace(at, from.size(), to);
    };
    // Revoking u-self's tokens would refuse the user-self calls that follow.
    replace("{user_id}", pattern.ends_with("/revoke-tokens") ? "u-revoked" : "u-self");
    replace("{test_id}", test_id_);
    replace("{campaign_id}", "camp_missing");
    replace("{clientKey}", client_key_);
    replace("{key}", "missing_flag");
    replace("{kid}", "kid_missing");
    replace("{holdout_id}", "holdout_missing");
    std::string body;
    if (pattern.ends_with("/auth/user-token")) body = R"({"user_id": "u-self"})";
    if (pattern.ends_with("/events")) {
      body = R"({"events": [{"type": "session", "user_id": "u1", "at": 1700000000}]})";
    }
    if (pattern.ends_with("/events/ndjson")) {
      body = R"({"type": "session", "user_id": "u1", "at": 1700000000})";
    }
    if (pattern.ends_with("/events/csv")) body = "type,user_id,at\nsession,u1,1700000000\n";
    if (pattern.ends_with("/ab-tests")) body = kCreateTest;
    if (pattern.ends_with("/assign")) body = R"({"user_id": "u1"})";
    if (pattern.ends_with("/coverage")) body = R"({"coverage": 0.5})";
    if (pattern.starts_with("/ofrep/")) body = R"({"context": {"targetingKey": "u1"}})";
    if (pattern.ends_with("/flags")) {
      body = R"({"key": "f1", "value_type": "boolean", "default_value": false})";
    }
    if (pattern.ends_with("/flags/{key}")) body = R"({"description": "x"})";
    if (pattern.ends_with("/holdouts")) body = R"({"name": "h"})";
    if (pattern.ends_with("/holdouts/{holdout_id}")) body = R"({"description": "x"})";
    return {path, body};
  }

  HttpReply head_only(const std::string& path, const std::string& bearer) {
    HttpClient client(port_);
    http::request<http::empty_body> req{http::verb::get, path, 11};
    req.set(http::field::host, "127.0.0.1");
    if (!bearer.empty()) req.set(http::field::authorization, "Bearer " + bearer);
    http::write(client.socket(), req);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    http::read_header(client.socket(), buffer, parser);
    HttpReply reply;
    reply.status = static_cast<int>(parser.get().result_int());
    for (const auto& field : parser.get()) {
      std::string name(field.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      reply.headers[name] = std::string(field.value());
    }
    return reply;
  }

  std::string test_id_ = "test_missing";
};

TEST_F(AccessTest, EveryRouteHasExpectations) {
  std::set<std::string> expected;
  for (const auto& e : expectations()) expected.insert(e.method + " " + e.pattern);
  std::set<std::string> served;
  for (const Route& route : server_->router().routes()) {
    served.insert(route.method + " " + route.pattern);
  }
  EXPECT_EQ(served, expected);
}

TEST_F(AccessTest, EachRoleIsAllowedOrRefusedWith401Or403) {
#ifdef FULCRUM_HAVE_EXPERIMENTS
  HttpReply created = call("POST", api("/ab-tests"), kCreateTest, keys_["admin"]);
  ASSERT_EQ(created.status, 201) << created.body;
  test_id_ = created.json()["test_id"];
#endif
  for (const Expectation& e : expectations()) {
    for (Who who : kEveryone) {
      auto [path, body] = request_for(e.pattern);
      // A stream's body never ends: only its status and headers are read.
      HttpReply reply = e.pattern.starts_with("/sub/") && e.method == "GET"
                            ? head_only(path, credential(who))
                            : call(e.method, path, body, credential(who));
      const std::string what = e.method + " " + path + " as " + who_name(who) + ": " +
                               std::to_string(reply.status) + " " + reply.body;
      if (e.allowed.count(who)) {
        EXPECT_NE(reply.status, 401) << what;
        EXPECT_NE(reply.status, 403) << what;
        EXPECT_LT(reply.status, 500) << what;
      } else if (who == kNobody) {
        EXPECT_EQ(reply.status, 401) << what;
        EXPECT_EQ(reply.header("content-type"), "application/problem+json") << what;
        EXPECT_EQ(reply.header("www-authenticate"), "Bearer") << what;
      } else {
        EXPECT_EQ(reply.status, 403) << what;
        EXPECT_EQ(reply.header("content-type"), "application/problem+json") << what;
      }
    }
  }
}

TEST_F(AccessTest, BadAndRevokedCredentialsAre401) {
  const std::string path = api("/auth/user-token");
  const std::string body = R"({"user_id": "u1"})";
  EXPECT_EQ(call("POST", path, body, "fk_not_a_key").status, 401);
  EXPECT_EQ(call("POST", path, body, "fut1.garbage.garbage").status, 401);
  EXPECT_EQ(call("POST", path, body, keys_["service"]).status, 201);
  ASSERT_TRUE(store_->revoke_api_key(key_ids_["service"], clock_.now()).is_ok());
  HttpReply revoked = call("POST", path, body, keys_["service"]);
  EXPECT_EQ(revoked.status, 401);
  EXPECT_NE(revoked.json()["detail"].get<std::string>().find("revoked"), std::string::npos);
}

TEST_F(AccessTest, MintedUserTokenAuthenticatesThatUser) {
  HttpReply minted =
      call("POST", api("/auth/user-token"), R"({"user_id": "alice", "ttl_seconds": 60})",
           keys_["service"]);
  ASSERT_EQ(minted.status, 201) << minted.body;
  EXPECT_EQ(minted.json()["user_id"], "alice");
  auto user = server_->authenticator().verify_user_token(minted.json()["token"].get<std::string>());
  ASSERT_TRUE(user.is_ok());
  EXPECT_EQ(user->user_id, "alice");
  EXPECT_EQ(user->minted_by, key_ids_["service"]);  // reads with it are attributed to the key
  // Unknown fields and bad values are named.
  HttpReply unknown = call("POST", api("/auth/user-token"), R"({"user_id": "a", "ttl": 5})",
                           keys_["service"]);
  EXPECT_EQ(unknown.status, 400);
  EXPECT_EQ(unknown.json()["field"], "ttl");
  HttpReply too_long = call("POST", api("/auth/user-token"),
                            R"({"user_id": "a", "ttl_seconds": 99999999})", keys_["service"]);
  EXPECT_EQ(too_long.status, 422);
  EXPECT_EQ(too_long.json()["field"], "ttl_seconds");
}

TEST_F(AccessTest, StateChangingCallsAreAuditedWithActorAndOutcome) {
  const std::string path = api("/users/bob/revoke-tokens");
  ASSERT_EQ(call("POST", path, "", keys_["admin"]).status, 200);
  ASSERT_EQ(call("POST", path, "", keys_["analyst"]).status, 403);
  ASSERT_EQ(call("POST", path, "").status, 401);
  std::vector<AuditEntry> entries = audit_entries();
  ASSERT_EQ(entries.size(), 1u);  // denied calls are aggregated per minute (security events)
  EXPECT_EQ(entries[0].actor, key_ids_["admin"]);
  EXPECT_EQ(entries[0].action, "POST /users/{user_id}/revoke-tokens");
  EXPECT_EQ(entries[0].target, "user:bob");
  EXPECT_EQ(entries[0].outcome, "ok");
  EXPECT_GT(entries[0].at, 0);
  // Reads of non-personal data are not audited.
  call("GET", "/healthz");
  EXPECT_EQ(audit_entries().size(), 1u);
  // The denied calls are appended when their minute ends, or at shutdown.
  server_->shutdown();
  server_->wait();
  entries = audit_entries();
  ASSERT_EQ(entries.size(), 3u);
  std::map<std::string, std::string> outcome_by_actor;
  for (std::size_t i = 1; i < entries.size(); ++i) {
    EXPECT_EQ(entries[i].action, "POST /users/{user_id}/revoke-tokens");
    outcome_by_actor[entries[i].actor] = entries[i].outcome;
  }
  EXPECT_EQ(outcome_by_actor[key_ids_["analyst"]].rfind("denied: 403; count=1; minute=", 0), 0u)
      << outcome_by_actor[key_ids_["analyst"]];
  EXPECT_EQ(outcome_by_actor["anonymous"].rfind("denied: 401; count=1; minute=", 0), 0u)
      << outcome_by_actor["anonymous"];
  auto verified = verify_audit_chain(*store_, server_->audit_key());
  ASSERT_TRUE(verified.is_ok());
  EXPECT_TRUE(verified->intact);
}

TEST_F(AccessTest, ReadsOfNonPersonalDataAreNotAudited) {
  call("GET", "/healthz");
  call("GET", api("/ab-tests"), "", keys_["analyst"]);
  EXPECT_EQ(audit_entries().size(), 0u);
}

}  // namespace
}  // namespace fulcrum::api::testing
