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

}  // namespace
}  // namespace fulcrum::api::testing
