// Feature flags over HTTP and SDK delivery: the admin flag routes (audited, bad input named
// and not stored), the GrowthBook payload route (client keys, ETag/304, CORS, encryption),
// Server-Sent Events pushing a flip, remote evaluation and OFREP (errors, SPLIT with the
// /assign variant, exposures recorded), on a real server over loopback.
#if defined(FULCRUM_HAVE_FLAGS) && defined(FULCRUM_HAVE_EXPERIMENTS)

#include <chrono>
#include <functional>
#include <map>
#include <sys/socket.h>

#include "api/audit.h"
#include "api_test_support.h"
#include "flags/encryption.h"
#include "flags/service.h"

namespace fulcrum::api::testing {
namespace {

using json = nlohmann::json;

const char* kFlag = R"({"key": "new_checkout", "value_type": "boolean", "default_value": false,
  "rules": [{"id": "staff", "type": "force", "condition": {"segment": "staff"}, "value": true}]})";

const char* kTest = R"({
  "test_name": "Checkout colour", "feature_name": "checkout_colour",
  "success_metrics": ["conversion_rate"],
  "test_groups": {"control": {"color": "grey"}, "blue": {"color": "blue"}},
  "traffic_allocation": {"control": 0.3, "blue": 0.7}, "coverage": 0.8,
  "targeting": {"country": {"$in": ["GB", "IE"]}}})";

class SdkRoutesTest : public ApiServerTest {
 protected:
  std::string start_test() {
    HttpReply created = call("POST", api("/ab-tests"), kTest, keys_["admin"]);
    EXPECT_EQ(created.status, 201) << created.body;
    const std::string id = created.json()["test_id"];
    EXPECT_EQ(call("POST", api("/ab-tests/" + id + "/start"), "", keys_["admin"]).status, 200);
    return id;
  }
  std::string document_body(const std::string& key) {
    auto doc = store_->get_document(flags::kFlagDocumentKind, key);
    return doc.is_ok() && doc->has_value() ? (*doc)->body + "@" + std::to_string((*doc)->version)
                                           : "<none>";
  }
  HttpReply ofrep(const std::string& path, const std::string& body,
                  const std::string& if_none_match = {}) {
    HttpClient client(port_);
    http::request<http::string_body> req{http::verb::post, path, 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::authorization, "Bearer " + keys_["sdk"]);
    req.set(http::field::content_type, "application/json");
    if (!if_none_match.empty()) req.set(http::field::if_none_match, if_none_match);
    req.body() = body;
    req.prepare_payload();
    http::write(client.socket(), req);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(client.socket(), buffer, res);
    HttpReply reply;
    reply.status = res.result_int();
    reply.body = res.body();
    for (const auto& field : res) {
      std::string name(field.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      reply.headers[name] = std::string(field.value());
    }
    return reply;
  }
};

TEST_F(SdkRoutesTest, FlagLifecycleIsAuditedAndServed) {
  HttpReply created = call("POST", api("/flags"), kFlag, keys_["admin"]);
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(created.json()["version"], 1);
  EXPECT_EQ(created.header("location"), api("/flags/new_checkout"));
  HttpReply listed = call("GET", api("/flags"), "", keys_["analyst"]);
  ASSERT_EQ(listed.status, 200);
  EXPECT_EQ(listed.json()["count"], 1);
  HttpReply bad_archived = call("GET", api("/flags?archived=yes"), "", keys_["analyst"]);
  EXPECT_EQ(bad_archived.status, 400);
  EXPECT_EQ(bad_archived.json()["field"], "archived");
  HttpReply patched = call("PATCH", api("/flags/new_checkout"),
                           R"({"default_value": true, "version": 1})", keys_["admin"]);
  ASSERT_EQ(patched.status, 200) << patched.body;
  EXPECT_EQ(patched.json()["version"], 2);
  HttpReply stale = call("PATCH", api("/flags/new_checkout"),
                         R"({"default_value": false, "version": 1})", keys_["admin"]);
  EXPECT_EQ(stale.status, 409);
  HttpReply killed = call("POST", api("/flags/new_checkout/kill"), "", keys_["admin"]);
  ASSERT_EQ(killed.status, 200);
  EXPECT_EQ(killed.json()["killed"], true);
  HttpReply payload = call("GET", "/api/features/" + client_key_);
  ASSERT_EQ(payload.status, 200);
  EXPECT_EQ(payload.json()["features"]["new_checkout"], json::parse(R"({"defaultValue": false})"));
  HttpReply archived = call("POST", api("/flags/new_checkout/archive"), "", keys_["admin"]);
  ASSERT_EQ(archived.status, 200);
  EXPECT_FALSE(call("GET", "/api/features/" + client_key_).json()["features"].contains("new_checkout"));

  std::vector<std::string> actions;
  for (const AuditEntry& entry : audit_entries()) {
    if (entry.target != "new_checkout") continue;
    EXPECT_EQ(entry.actor, key_ids_["admin"]);
    actions.push_back(entry.action + " " + entry.outcome);
  }
  EXPECT_EQ(actions, (std::vector<std::string>{
                         "POST /flags ok", "PATCH /flags/{key} ok", "PATCH /flags/{key} error: 409",
                         "POST /flags/{key}/kill ok", "POST /flags/{key}/archive ok"}));
}

TEST_F(SdkRoutesTest, BadFlagsAreRejectedNamingTheFieldAndNothingChanges) {
  ASSERT_EQ(call("POST", api("/flags"), kFlag, keys_["admin"]).status, 201);
  const std::string before = document_body("new_checkout");
  const std::string before_payload = call("GET", "/api/features/" + client_key_).body;

  HttpReply bad_operator = call(
      "PATCH", api("/flags/new_checkout"),
      R"({"rules": [{"type": "force", "condition": {"app_version": {"$vgtt": "5"}}, "value": true}]})",
      keys_["admin"]);
  EXPECT_EQ(bad_operator.status, 422);
  EXPECT_EQ(bad_operator.header("content-type"), "application/problem+json");
  EXPECT_EQ(bad_operator.json()["field"], "rules[0].condition.app_version.$vgtt");

  HttpReply bad_weights = call("PATCH", api("/flags/new_checkout"), R"({"rules": [
      {"type": "experiment", "variations": [{"name": "a", "value": false}, {"name": "b", "value": true}],
       "weights": [0.2, 0.3, 0.5]}]})",
                               keys_["admin"]);
  EXPECT_EQ(bad_weights.status, 422);
  EXPECT_EQ(bad_weights.json()["field"], "rules[0].weights");

  HttpReply bad_type = call("PATCH", api("/flags/new_checkout"), R"({"default_value": "yes"})",
                            keys_["admin"]);
  EXPECT_EQ(bad_type.status, 422);
  EXPECT_EQ(bad_type.json()["field"], "default_value");

  HttpReply not_json = call("POST", api("/flags"), "{nope", keys_["admin"]);
  EXPECT_EQ(not_json.status, 400);
  EXPECT_EQ(not_json.json()["field"], "body");

  EXPECT_EQ(document_body("new_checkout"), before);
  EXPECT_EQ(call("GET", "/api/features/" + client_key_).body, before_payload);
  EXPECT_EQ(call("GET", api("/flags/nope"), "", keys_["admin"]).status, 404);
}

TEST_F(SdkRoutesTest, PayloadRouteHasEtagCorsAndSseSupportAndRejectsUnknownKeys) {
  ASSERT_EQ(call("POST", api("/flags"), kFlag, keys_["admin"]).status, 201);
  HttpReply unknown = call("GET", "/api/features/sdk_00000000000000000000000000000000");
  EXPECT_EQ(unknown.status, 401);
  EXPECT_EQ(unknown.json()["field"], "clientKey");
  EXPECT_EQ(call("GET", "/api/features/" + keys_["sdk"]).status, 401);  // never the secret
  EXPECT_EQ(unknown.header("access-control-allow-origin"), "*");

  HttpReply first = call("GET", "/api/features/" + client_key_);
  ASSERT_EQ(first.status, 200);
  const json payload = first.json();
  EXPECT_EQ(payload["status"], 200);
  EXPECT_TRUE(payload["experiments"].is_array());
  EXPECT_TRUE(payload["dateUpdated"].is_string());
  EXPECT_EQ(payload["features"]["new_checkout"]["rules"][0]["force"], true);
  EXPECT_EQ(first.header("x-sse-support"), "enabled");
  EXPECT_EQ(first.header("access-control-allow-origin"), "*");
  EXPECT_NE(first.header("access-control-expose-headers").find("x-sse-support"), std::string::npos);
  EXPECT_EQ(first.header("cache-control"), "public, max-age=0, must-revalidate");
  const std::string etag = first.header("etag");
  ASSERT_FALSE(etag.empty());

  HttpClient client(port_);
  http::request<http::empty_body> conditional{http::verb::get, "/api/features/" + client_key_, 11};
  conditional.set(http::field::host, "127.0.0.1");
  conditional.set(http::field::if_none_match, etag);
  http::write(client.socket(), conditional);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.skip(false);
  http::read(client.socket(), buffer, parser);
  EXPECT_EQ(parser.get().result_int(), 304u);
  EXPECT_TRUE(parser.get().body().empty());

  ASSERT_EQ(call("POST", api("/flags/new_checkout/kill"), "", keys_["admin"]).status, 200);
  HttpReply after = call("GET", "/api/features/" + client_key_);
  EXPECT_NE(after.header("etag"), etag);
  EXPECT_NE(after.json()["dateUpdated"], payload["dateUpdated"]);

  ASSERT_TRUE(store_->revoke_api_key(key_ids_["sdk"], clock_.now()).is_ok());
  EXPECT_EQ(call("GET", "/api/features/" + client_key_).status, 401);
}

TEST_F(SdkRoutesTest, EncryptedKeyGetsEncryptedFeatures) {
  const std::string key = flags::generate_encryption_key();
  ASSERT_TRUE(flags::put_sdk_connection(*store_, clock_, {key_ids_["sdk"], key}).is_ok());
  ASSERT_EQ(call("POST", api("/flags"), kFlag, keys_["admin"]).status, 201);  // refreshes
  const json payload = call("GET", "/api/features/" + client_key_).json();
  ASSERT_TRUE(payload.contains("encryptedFeatures")) << payload.dump();
  EXPECT_FALSE(payload.contains("features"));
  auto plain = flags::decrypt_payload(payload["encryptedFeatures"].get<std::string>(), key);
  ASSERT_TRUE(plain.has_value());
  EXPECT_EQ(json::parse(*plain)["new_checkout"]["defaultValue"], false);
}

// Reads raw bytes from a socket until `done` holds or the deadline passes.
bool read_until(asio::ip::tcp::socket& socket, std::string& seen,
                const std::function<bool(const std::string&)>& done,
                std::chrono::milliseconds within) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  timeval tv{0, 100'000};
  setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char chunk[4096];
  while (!done(seen)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    const ssize_t n = ::recv(socket.native_handle(), chunk, sizeof chunk, 0);
    if (n == 0) return false;
    if (n > 0) seen.append(chunk, static_cast<std::size_t>(n));
  }
  return true;
}

std::vector<json> sse_payloads(const std::string& raw) {
  std::vector<json> out;
  std::size_t at = 0;
  while ((at = raw.find("event: features\ndata: ", at)) != std::string::npos) {
    at += 22;
    const std::size_t end = raw.find("\n\n", at);
    if (end == std::string::npos) break;
    out.push_back(json::parse(raw.substr(at, end - at)));
    at = end;
  }
  return out;
}

TEST_F(SdkRoutesTest, StreamPushesEveryChangeToEverySubscriber) {
  ASSERT_EQ(call("POST", api("/flags"), kFlag, keys_["admin"]).status, 201);
  std::vector<std::unique_ptr<HttpClient>> subscribers;
  std::vector<std::string> seen(3);
  for (int i = 0; i < 3; ++i) {
    subscribers.push_back(std::make_unique<HttpClient>(port_));
    const std::string request = "GET /sub/" + client_key_ + " HTTP/1.1\r\nHost: x\r\n\r\n";
    asio::write(subscribers.back()->socket(), asio::buffer(request));
    ASSERT_TRUE(read_until(subscribers.back()->socket(), seen[i],
                           [](const std::string& s) { return sse_payloads(s).size() == 1; },
                           std::chrono::seconds(5)));
    EXPECT_NE(seen[i].find("Content-Type: text/event-stream"), std::string::npos) << seen[i];
    EXPECT_EQ(sse_payloads(seen[i])[0]["features"]["new_checkout"]["defaultValue"], false);
  }
  const auto flipped_at = std::chrono::steady_clock::now();
  ASSERT_EQ(call("PATCH", api("/flags/new_checkout"), R"({"default_value": true})", keys_["admin"])
                .status,
            200);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(read_until(subscribers[i]->socket(), seen[i],
                           [](const std::string& s) { return sse_payloads(s).size() == 2; },
                           std::chrono::seconds(2)));
    EXPECT_EQ(sse_payloads(seen[i])[1]["features"]["new_checkout"]["defaultValue"], true);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - flipped_at, std::chrono::seconds(2));

  // A change written by another process (straight into the store) is noticed by polling.
  ASSERT_TRUE(flags::set_flag_killed(*store_, clock_, "new_checkout", true, "other").is_ok());
  ASSERT_TRUE(read_until(subscribers[0]->socket(), seen[0],
                         [](const std::string& s) { return sse_payloads(s).size() == 3; },
                         std::chrono::seconds(3)));
  EXPECT_EQ(sse_payloads(seen[0])[2]["features"]["new_checkout"], json::parse(R"({"defaultValue": false})"));
}

TEST_F(SdkRoutesTest, ShutdownClosesOpenStreams) {
  HttpClient subscriber(port_);
  const std::string request = "GET /sub/" + client_key_ + " HTTP/1.1\r\nHost: x\r\n\r\n";
  asio::write(subscriber.socket(), asio::buffer(request));
  std::string seen;
  ASSERT_TRUE(read_until(subscriber.socket(), seen,
                         [](const std::string& s) { return sse_payloads(s).size() == 1; },
                         std::chrono::seconds(5)));
  const auto start = std::chrono::steady_clock::now();
  server_->shutdown();
  server_->wait();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST_F(SdkRoutesTest, RemoteEvalAndOfrepAgreeWithAssignAndRecordExposures) {
  const std::string test_id = start_test();
  ASSERT_EQ(call("POST", api("/flags"), kFlag, keys_["admin"]).status, 201);
  int split = 0;
  std::map<std::string, int> after_first_call;
  auto exposures_of_user = [&](const std::string& test, const std::string& user) {
    int count = 0;
    EXPECT_TRUE(store_
                    ->scan_exposures(test, [&](const ExposureEvent& e) { count += e.user_id == user; })
                    .is_ok());
    return count;
  };
  for (int i = 0; i < 60; ++i) {
    const std::string user = "user-" + std::to_string(i);
    const std::string country = i % 3 == 0 ? "US" : "GB";
    // The three paths in a rotating order: whichever comes first records the exposure, the
    // other two find it stored (one exposure per user, variant and test).
    HttpReply assigned, single, remote;
    std::function<void()> paths[3] = {
        [&] {
          assigned = call(
              "POST", api("/ab-tests/" + test_id + "/assign"),
              json{{"user_id", user}, {"attributes", {{"id", user}, {"country", country}}}}.dump(),
              keys_["service"]);
        },
        [&] {
          single = ofrep("/ofrep/v1/evaluate/flags/checkout_colour",
                         json{{"context", {{"targetingKey", user}, {"country", country}}}}.dump());
        },
        [&] {
          remote = call("POST", "/api/eval/" + client_key_,
                        json{{"attributes", {{"id", user}, {"country", country}}}}.dump());
        }};
    paths[i % 3]();
    after_first_call[user] = exposures_of_user(test_id, user);
    paths[(i + 1) % 3]();
    paths[(i + 2) % 3]();
    ASSERT_EQ(assigned.status, 200) << assigned.body;
    const json decision = assigned.json();
    ASSERT_EQ(single.status, 200) << single.body;
    const json result = single.json();
    ASSERT_EQ(remote.status, 200) << remote.body;
    const json remote_feature = remote.json()["features"]["checkout_colour"];
    if (decision["in_experiment"]) {
      ++split;
      EXPECT_EQ(result["reason"], "SPLIT");
      EXPECT_EQ(result["variant"], decision["variant"]);
      EXPECT_EQ(result["value"], decision["config"]);
      EXPECT_EQ(remote_feature["defaultValue"], decision["config"]);
      EXPECT_EQ(remote_feature["rules"][0]["tracks"][0]["result"]["key"], decision["variant"]);
    } else {
      EXPECT_NE(result["reason"], "SPLIT");
      EXPECT_FALSE(result.contains("value"));  // null default: the app's code default
      EXPECT_TRUE(remote_feature["defaultValue"].is_null());
    }
  }
  ASSERT_GT(split, 10);
  // Each evaluation path records the exposure (each came first for a third of the users),
  // and repeating it through the others stores nothing more: one exposure per user in the
  // test, which the analysis counts once.
  std::map<std::string, int> per_user;
  ASSERT_TRUE(store_->scan_exposures(test_id, [&](const ExposureEvent& e) { ++per_user[e.user_id]; }).is_ok());
  EXPECT_EQ(static_cast<int>(per_user.size()), split);
  for (const auto& [user, count] : per_user) {
    EXPECT_EQ(count, 1) << user;
    EXPECT_EQ(after_first_call[user], 1) << user << ": the first path did not record it";
  }
  auto counts = store_->exposure_counts(test_id);
  ASSERT_TRUE(counts.is_ok());
  std::int64_t counted = 0;
  for (const auto& [variant, users] : *counts) counted += users;
  EXPECT_EQ(counted, split);

  HttpReply staff = ofrep("/ofrep/v1/evaluate/flags/new_checkout",
                          R"({"context": {"targetingKey": "u1", "segment": "staff"}})");
  EXPECT_EQ(staff.json()["reason"], "TARGETING_MATCH");
  EXPECT_EQ(staff.json()["value"], true);
  HttpReply other = ofrep("/ofrep/v1/evaluate/flags/new_checkout",
                          R"({"context": {"targetingKey": "u1"}})");
  EXPECT_EQ(other.json()["reason"], "DEFAULT");
  EXPECT_EQ(other.json()["value"], false);
}

// A seed-preserving coverage change reaches /assign, the SDK payload, remote evaluation and
// OFREP at once, and they keep agreeing: users still inside keep their variant.
TEST_F(SdkRoutesTest, CoverageChangeIsSeenByEveryPathAndKeepsVariants) {
  const std::string test_id = start_test();
  auto evaluate = [&](const std::string& user) {
    const json attributes = {{"id", user}, {"country", "GB"}};
    HttpReply assigned = call("POST", api("/ab-tests/" + test_id + "/assign"),
                              json{{"user_id", user}, {"attributes", attributes}}.dump(),
                              keys_["service"]);
    HttpReply single = ofrep("/ofrep/v1/evaluate/flags/checkout_colour",
                             json{{"context", {{"targetingKey", user}, {"country", "GB"}}}}.dump());
    HttpReply remote =
        call("POST", "/api/eval/" + client_key_, json{{"attributes", attributes}}.dump());
    EXPECT_EQ(assigned.status, 200) << assigned.body;
    const json decision = assigned.json();
    const json remote_feature = remote.json()["features"]["checkout_colour"];
    std::string variant;
    if (decision["in_experiment"]) {
      variant = decision["variant"].get<std::string>();
      EXPECT_EQ(single.json()["reason"], "SPLIT") << user;
      EXPECT_EQ(single.json()["variant"], variant) << user;
      EXPECT_EQ(remote_feature["rules"][0]["tracks"][0]["result"]["key"], variant) << user;
    } else {
      EXPECT_NE(single.json()["reason"], "SPLIT") << user;
      EXPECT_TRUE(remote_feature["defaultValue"].is_null()) << user;
    }
    return variant;
  };
  std::map<std::string, std::string> before;
  for (int i = 0; i < 40; ++i) before["cov-" + std::to_string(i)] = evaluate("cov-" + std::to_string(i));

  for (const char* bad : {R"({"coverage": 0})", R"({"coverage": 1.5})", R"({"coverage": "half"})",
                          R"({})"}) {
    HttpReply refused = call("PUT", api("/ab-tests/" + test_id + "/coverage"), bad, keys_["admin"]);
    EXPECT_EQ(refused.status, 422) << bad;
    EXPECT_EQ(refused.json()["field"], "coverage") << bad;
  }
  HttpReply lowered = call("PUT", api("/ab-tests/" + test_id + "/coverage"),
                           R"({"coverage": 0.3})", keys_["admin"]);
  ASSERT_EQ(lowered.status, 200) << lowered.body;
  EXPECT_DOUBLE_EQ(lowered.json()["coverage"].get<double>(), 0.3);
  EXPECT_EQ(lowered.json()["hash_seed"], test_id);
  const json payload = call("GET", "/api/features/" + client_key_).json();
  EXPECT_DOUBLE_EQ(payload["features"]["checkout_colour"]["rules"][0]["coverage"].get<double>(), 0.3);

  int inside = 0, was_inside = 0;
  for (const auto& [user, variant] : before) {
    const std::string now = evaluate(user);
    was_inside += !variant.empty();
    if (now.empty()) continue;
    ++inside;
    EXPECT_EQ(now, variant) << user << " moved to another variant";
  }
  EXPECT_LT(inside, was_inside);  // 80% -> 30%: users left, none joined or moved
  EXPECT_GT(inside, 0);
  bool audited = false;
  ASSERT_TRUE(store_->scan_audit([&](const AuditEntry& entry) {
    if (entry.action == "experiment.coverage") {
      audited = true;
      EXPECT_EQ(entry.outcome, "ok: coverage 0.8 -> 0.3");
      EXPECT_EQ(entry.target, test_id);
      EXPECT_FALSE(entry.actor.empty());
    }
  }).is_ok());
  EXPECT_TRUE(audited);
  EXPECT_TRUE(verify_audit_chain(*store_, server_->audit_key())->intact);
}

TEST_F(SdkRoutesTest, OfrepErrorsUseTheSpecCodesAndNameTheField) {
  ASSERT_EQ(call("POST", api("/flags"), kFlag, keys_["admin"]).status, 201);
  const std::string path = "/ofrep/v1/evaluate/flags/new_checkout";
  HttpReply no_context = ofrep(path, R"({"ctx": {}})");
  EXPECT_EQ(no_context.status, 400);
  EXPECT_EQ(no_context.json()["errorCode"], "INVALID_CONTEXT");
  EXPECT_EQ(no_context.json()["field"], "context");
  EXPECT_EQ(no_context.json()["key"], "new_checkout");
  HttpReply no_key = ofrep(path, R"({"context": {"country": "GB"}})");
  EXPECT_EQ(no_key.status, 400);
  EXPECT_EQ(no_key.json()["errorCode"], "TARGETING_KEY_MISSING");
  EXPECT_EQ(no_key.json()["field"], "context.targetingKey");
  HttpReply garbage = ofrep(path, "{not json");
  EXPECT_EQ(garbage.status, 400);
  EXPECT_EQ(garbage.json()["errorCode"], "PARSE_ERROR");
  // A nesting bomb inside the context: refused by the bounded parse, naming where, and the
  // server keeps serving (an unbounded parse copied it recursively).
  HttpReply bomb = ofrep(path, R"({"context": {"targetingKey": "u", "x": )" +
                                   std::string(80'000, '[') + "}}");
  EXPECT_EQ(bomb.status, 400) << bomb.body.substr(0, 300);
  EXPECT_EQ(bomb.json()["errorCode"], "PARSE_ERROR");
  EXPECT_TRUE(bomb.json()["field"].get<std::string>().starts_with("context.x")) << bomb.body;
  EXPECT_NE(bomb.json()["errorDetails"].get<std::string>().find("nesting deeper"),
            std::string::npos);
  EXPECT_EQ(call("GET", "/healthz").status, 200);
  HttpReply missing = ofrep("/ofrep/v1/evaluate/flags/nope", R"({"context": {"targetingKey": "u"}})");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.json()["errorCode"], "FLAG_NOT_FOUND");
  EXPECT_EQ(missing.json()["field"], "key");
  HttpReply bulk_bad = ofrep("/ofrep/v1/evaluate/flags", "{}");
  EXPECT_EQ(bulk_bad.status, 400);
  EXPECT_EQ(bulk_bad.json()["errorCode"], "INVALID_CONTEXT");

  HttpReply bulk = ofrep("/ofrep/v1/evaluate/flags", R"({"context": {"targetingKey": "u1"}})");
  ASSERT_EQ(bulk.status, 200) << bulk.body;
  ASSERT_EQ(bulk.json()["flags"].size(), 1u);
  EXPECT_EQ(bulk.json()["flags"][0]["key"], "new_checkout");
  const std::string etag = bulk.header("etag");
  ASSERT_FALSE(etag.empty());
  EXPECT_EQ(ofrep("/ofrep/v1/evaluate/flags", R"({"context": {"targetingKey": "u1"}})", etag).status,
            304);
  EXPECT_EQ(ofrep("/ofrep/v1/evaluate/flags", R"({"context": {"targetingKey": "u2"}})", etag).status,
            200);
  HttpReply no_bearer = call("POST", path, R"({"context": {"targetingKey": "u"}})");
  EXPECT_EQ(no_bearer.status, 401);
}

}  // namespace
}  // namespace fulcrum::api::testing

#endif
