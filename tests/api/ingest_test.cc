// Event ingestion over HTTP: JSON batches and NDJSON bodies, all-or-nothing by default,
// errors located by array index or line and field.
#include "api_test_support.h"

namespace fulcrum::api::testing {
namespace {

class IngestTest : public ApiServerTest {
 protected:
  std::int64_t sessions_stored() {
    std::int64_t count = 0;
    EXPECT_TRUE(store_->scan_sessions({}, [&](const SessionEvent&) { ++count; }).is_ok());
    return count;
  }
};

TEST_F(IngestTest, JsonBatchIsStored) {
  HttpReply reply = call("POST", api("/events"), R"({"events": [
      {"type": "user", "user_id": "u1", "tier": "free", "signup_at": "2024-01-01T00:00:00Z"},
      {"type": "session", "user_id": "u1", "at": "2024-01-02T10:00:00Z", "duration_seconds": 30},
      {"type": "session", "user_id": "u1", "at": 1704290400, "duration_seconds": 45}]})",
                         keys_["service"]);
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.json()["stored"], 3);
  EXPECT_EQ(sessions_stored(), 2);
  auto user = store_->get_user("u1");
  ASSERT_TRUE(user.is_ok());
  EXPECT_TRUE(user->has_value());
  std::vector<AuditEntry> entries = audit_entries();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].action, "POST /events");
  EXPECT_EQ(entries[0].actor, key_ids_["service"]);
  EXPECT_EQ(entries[0].target, "events:3");
}

TEST_F(IngestTest, InvalidRecordRejectsTheWholeBatchNamingIndexAndField) {
  HttpReply reply = call("POST", api("/events"), R"({"events": [
      {"type": "session", "user_id": "u1", "at": 1704290400},
      {"type": "session", "user_id": "u1", "at": "yesterday"}]})",
                         keys_["service"]);
  ASSERT_EQ(reply.status, 422) << reply.body;
  EXPECT_EQ(reply.header("content-type"), "application/problem+json");
  EXPECT_EQ(reply.json()["field"], "events[1].at");
  EXPECT_EQ(reply.json()["errors"][0]["location"], "events[1]");
  EXPECT_EQ(sessions_stored(), 0);

  HttpReply skipped = call("POST", api("/events?policy=skip_invalid"), R"({"events": [
      {"type": "session", "user_id": "u1", "at": 1704290400},
      {"type": "session", "user_id": "u1", "at": "yesterday"}]})",
                           keys_["service"]);
  ASSERT_EQ(skipped.status, 200) << skipped.body;
  EXPECT_EQ(skipped.json()["stored"], 1);
  EXPECT_EQ(skipped.json()["invalid_records"], 1);
  EXPECT_EQ(sessions_stored(), 1);
}

TEST_F(IngestTest, MalformedBodiesAreNamed) {
  HttpReply not_json = call("POST", api("/events"), "{oops", keys_["service"]);
  EXPECT_EQ(not_json.status, 400);
  EXPECT_EQ(not_json.json()["field"], "body");
  HttpReply unknown = call("POST", api("/events"), R"({"evnts": []})", keys_["service"]);
  EXPECT_EQ(unknown.status, 400);
  EXPECT_EQ(unknown.json()["field"], "evnts");
  HttpReply unknown_in_record = call(
      "POST", api("/events"),
      R"({"events": [{"type": "session", "user_id": "u1", "at": 1, "color": "red"}]})",
      keys_["service"]);
  EXPECT_EQ(unknown_in_record.status, 422);
  EXPECT_EQ(unknown_in_record.json()["field"], "events[0].color") << unknown_in_record.body;
  HttpReply bad_policy = call("POST", api("/events?policy=maybe"), R"({"events": []})",
                              keys_["service"]);
  EXPECT_EQ(bad_policy.status, 400);
  EXPECT_EQ(bad_policy.json()["field"], "policy");
}

TEST_F(IngestTest, NdjsonBodyIsStoredAndErrorsGiveLineNumbers) {
  HttpReply ok = call("POST", api("/events/ndjson"),
                      "{\"type\": \"session\", \"user_id\": \"u1\", \"at\": 1704290400}\n"
                      "\n"
                      "{\"type\": \"session\", \"user_id\": \"u2\", \"at\": 1704290401}\n",
                      keys_["admin"]);
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.json()["stored"], 2);
  EXPECT_EQ(sessions_stored(), 2);

  HttpReply bad = call("POST", api("/events/ndjson"),
                       "{\"type\": \"session\", \"user_id\": \"u3\", \"at\": 1704290400}\n"
                       "{\"type\": \"session\", \"user_id\": \"u3\"}\n",
                       keys_["admin"]);
  ASSERT_EQ(bad.status, 422) << bad.body;
  EXPECT_EQ(bad.json()["field"], "at");
  EXPECT_EQ(bad.json()["errors"][0]["location"], "line 2");
  EXPECT_EQ(sessions_stored(), 2);
}

// --- event identity and Idempotency-Key (issue 18) ----------------------------------------

HttpReply post_with_headers(std::uint16_t port, const std::string& path, const std::string& body,
                            const std::string& key,
                            const std::vector<std::pair<std::string, std::string>>& headers,
                            const std::string& content_type = "application/json") {
  HttpClient client(port);
  return client.request("POST", path, body, key, content_type, true, headers);
}

TEST_F(IngestTest, RepeatedEventIdsAreReportedAsDuplicatesInEveryFormat) {
  const std::string batch = R"({"events": [
      {"type": "session", "user_id": "u1", "at": 1704290400, "event_id": "s-1"},
      {"type": "session", "user_id": "u1", "at": 1704290401, "event_id": "s-2"},
      {"type": "payment", "user_id": "u1", "at": 1704290401, "amount": "4.99", "event_id": "s-1"}]})";
  HttpReply first = call("POST", api("/events"), batch, keys_["service"]);
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.json()["stored"], 3);
  EXPECT_EQ(first.json()["duplicates"], 0);
  // The app retries after a timeout: nothing is stored twice, and it is told so.
  HttpReply retried = call("POST", api("/events"), batch, keys_["service"]);
  ASSERT_EQ(retried.status, 200) << retried.body;
  EXPECT_EQ(retried.json()["stored"], 0);
  EXPECT_EQ(retried.json()["duplicates"], 3);
  // The same ids through NDJSON and CSV (with a byte-order mark) are the same events.
  HttpReply ndjson = call("POST", api("/events/ndjson"),
                          "\xEF\xBB\xBF{\"type\":\"session\",\"user_id\":\"u1\",\"at\":1704290400,"
                          "\"event_id\":\"s-1\"}\n"
                          "{\"type\":\"session\",\"user_id\":\"u1\",\"at\":1704290402,"
                          "\"event_id\":\"s-3\"}\n",
                          keys_["service"]);
  ASSERT_EQ(ndjson.status, 200) << ndjson.body;
  EXPECT_EQ(ndjson.json()["stored"], 1);
  EXPECT_EQ(ndjson.json()["duplicates"], 1);
  HttpReply csv = post_with_headers(port_, api("/events/csv"),
                                    "\xEF\xBB\xBFtype,user_id,at,event_id\r\n"
                                    "session,u1,1704290400,s-2\r\n"
                                    "session,u1,1704290403,s-4\r\n",
                                    keys_["service"], {}, "text/csv");
  ASSERT_EQ(csv.status, 200) << csv.body;
  EXPECT_EQ(csv.json()["stored"], 1);
  EXPECT_EQ(csv.json()["duplicates"], 1);
  EXPECT_EQ(sessions_stored(), 4);
  std::int64_t rolled_up = 0;
  ASSERT_TRUE(
      store_->scan_user_days({}, [&](const UserDayRollup& r) { rolled_up += r.sessions; }).is_ok());
  EXPECT_EQ(rolled_up, 4);
}

TEST_F(IngestTest, ABadEventIdIsA422NamingTheField) {
  for (const std::string& bad : {std::string("17"), std::string("\"\""),
                                 "\"" + std::string(257, 'x') + "\"", std::string("[1]")}) {
    HttpReply reply =
        call("POST", api("/events"),
             R"({"events": [{"type": "session", "user_id": "u1", "at": 1704290400},
                            {"type": "session", "user_id": "u1", "at": 1704290400, "event_id": )" +
                 bad + "}]}",
             keys_["service"]);
    EXPECT_EQ(reply.status, 422) << bad << ": " << reply.body;
    EXPECT_EQ(reply.json()["field"], "events[1].event_id") << reply.body;
  }
  EXPECT_EQ(sessions_stored(), 0);
}

TEST_F(IngestTest, AnIdempotencyKeyReturnsTheFirstResponseToARetriedBatch) {
  // No event ids: the key alone makes the retry safe.
  const std::string batch = R"({"events": [
      {"type": "session", "user_id": "u1", "at": 1704290400},
      {"type": "session", "user_id": "u2", "at": 1704290401}]})";
  const std::vector<std::pair<std::string, std::string>> key = {
      {"Idempotency-Key", "\"8e03978e-40d5-43e8-bc93-6894a57f9324\""}};
  HttpReply first = post_with_headers(port_, api("/events"), batch, keys_["service"], key);
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.json()["stored"], 2);
  EXPECT_EQ(first.header("idempotent-replayed"), "");
  HttpReply retried = post_with_headers(port_, api("/events"), batch, keys_["service"], key);
  ASSERT_EQ(retried.status, 200) << retried.body;
  EXPECT_EQ(retried.body, first.body);
  EXPECT_EQ(retried.header("idempotent-replayed"), "true");
  // The bare token is the same key as the quoted sf-string.
  HttpReply bare = post_with_headers(port_, api("/events"), batch, keys_["service"],
                                     {{"Idempotency-Key", "8e03978e-40d5-43e8-bc93-6894a57f9324"}});
  EXPECT_EQ(bare.header("idempotent-replayed"), "true");
  EXPECT_EQ(sessions_stored(), 2);

  // The same key with another request is refused, naming the header; nothing is stored.
  const std::string other = R"({"events": [{"type": "session", "user_id": "u3", "at": 1704290400}]})";
  HttpReply misuse = post_with_headers(port_, api("/events"), other, keys_["service"], key);
  EXPECT_EQ(misuse.status, 422) << misuse.body;
  EXPECT_EQ(misuse.json()["field"], "Idempotency-Key");
  HttpReply other_route = post_with_headers(
      port_, api("/events/ndjson"), "{\"type\":\"session\",\"user_id\":\"u1\",\"at\":1704290400}\n",
      keys_["service"], key, "application/x-ndjson");
  EXPECT_EQ(other_route.status, 422) << other_route.body;
  EXPECT_EQ(sessions_stored(), 2);
  // Keys belong to the caller: another API key may use the same one for its own batch.
  HttpReply admin = post_with_headers(port_, api("/events"), other, keys_["admin"], key);
  ASSERT_EQ(admin.status, 200) << admin.body;
  EXPECT_EQ(admin.header("idempotent-replayed"), "");
  EXPECT_EQ(sessions_stored(), 3);
  // The replays are audited as such.
  std::size_t replays = 0;
  for (const AuditEntry& e : audit_entries()) replays += e.target == "events:replayed";
  EXPECT_EQ(replays, 2u);
}

TEST_F(IngestTest, AnInvalidBatchIsNotRememberedUnderItsIdempotencyKey) {
  const std::vector<std::pair<std::string, std::string>> key = {{"Idempotency-Key", "k-7"}};
  HttpReply bad = post_with_headers(
      port_, api("/events"),
      R"({"events": [{"type": "session", "user_id": "u1", "at": "yesterday"}]})",
      keys_["service"], key);
  ASSERT_EQ(bad.status, 422) << bad.body;
  // Corrected and sent again with the same key: stored (nothing was stored the first time).
  HttpReply fixed = post_with_headers(
      port_, api("/events"), R"({"events": [{"type": "session", "user_id": "u1", "at": 1704290400}]})",
      keys_["service"], key);
  ASSERT_EQ(fixed.status, 200) << fixed.body;
  EXPECT_EQ(fixed.header("idempotent-replayed"), "");
  EXPECT_EQ(sessions_stored(), 1);
}

TEST_F(IngestTest, ABadIdempotencyKeyIsA400NamingTheHeader) {
  const std::string batch = R"({"events": [{"type": "session", "user_id": "u1", "at": 1704290400}]})";
  for (const std::string& bad :
       {std::string(""), std::string("\"\""), std::string(257, 'k'), std::string("a\\b")}) {
    HttpReply reply =
        post_with_headers(port_, api("/events"), batch, keys_["service"], {{"Idempotency-Key", bad}});
    EXPECT_EQ(reply.status, 400) << "'" << bad << "': " << reply.body;
    EXPECT_EQ(reply.json()["field"], "Idempotency-Key") << reply.body;
  }
  EXPECT_EQ(sessions_stored(), 0);
}

}  // namespace
}  // namespace fulcrum::api::testing
