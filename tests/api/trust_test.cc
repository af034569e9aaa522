// Secrets, revocation, the audit anchor and the logs over real HTTP (issue 18's trust half):
// token revocation and key rotation through the admin routes, GET /audit/head signed and
// verifiable, server-written checkpoints, request ids, and the JSON access and error logs
// (never a secret or a token in them).
#include <sodium.h>

#include <cstring>
#include <fstream>

#include "api/audit.h"
#include "api/keyring.h"
#include "api/logs.h"
#include "core/ids.h"
#include "api_test_support.h"

namespace fulcrum::api::testing {
namespace {

std::vector<nlohmann::json> read_json_lines(const std::filesystem::path& path) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    lines.push_back(nlohmann::json::parse(line, nullptr, false));
    EXPECT_TRUE(lines.back().is_object()) << line;
  }
  return lines;
}

class TrustTest : public ApiServerTest {
 protected:
  void configure(ServerOptions& options) override {
    keyring_ = Keyring::ephemeral(KeySet::generate(clock_.now()));
    options.keyring = keyring_;
    options.access_log = (dir_ / "access.log").string();
    options.error_log = (dir_ / "error.log").string();
    options.audit_checkpoint_file = (dir_ / "f.audit-checkpoints").string();
  }
  void add_routes(Router& router) override {
    router.add(Route("GET", api("/test/explode"), {Role::kAdmin},
                     [](const Request&, const AuthContext&) -> Response {
                       throw std::runtime_error("boom");
                     }));
  }
  std::string mint(const std::string& user_id) {
    HttpReply minted = call("POST", api("/auth/user-token"),
                            nlohmann::json{{"user_id", user_id}}.dump(), keys_["service"]);
    EXPECT_EQ(minted.status, 201) << minted.body;
    return minted.json().value("token", "");
  }
  // Any route a user token may call for itself: answers something other than 401 when the
  // token is accepted.
  int read_own(const std::string& user_id, const std::string& token) {
    return call("GET", api("/feature-recommendations/" + user_id), "", token).status;
  }
  std::shared_ptr<Keyring> keyring_;
};

TEST_F(TrustTest, RevokedUsersTokensAre401AndANewTokenWorks) {
  const std::string token = mint("u-rev");
  ASSERT_NE(read_own("u-rev", token), 401);
  const std::string other = mint("u-other");
  EXPECT_EQ(call("POST", api("/users/u-rev/revoke-tokens"), "", keys_["analyst"]).status, 403);
  HttpReply revoked = call("POST", api("/users/u-rev/revoke-tokens"), "", keys_["service"]);
  ASSERT_EQ(revoked.status, 200) << revoked.body;
  EXPECT_EQ(revoked.json()["user_id"], "u-rev");
  HttpReply refused = call("GET", api("/feature-recommendations/u-rev"), "", token);
  EXPECT_EQ(refused.status, 401);
  EXPECT_NE(refused.json()["detail"].get<std::string>().find("revoked"), std::string::npos);
  EXPECT_NE(read_own("u-other", other), 401);  // only that user
  EXPECT_NE(read_own("u-rev", mint("u-rev")), 401);
  EXPECT_EQ(call("POST", api("/users/bad%20id/revoke-tokens"), "", keys_["admin"]).status, 422);
}

TEST_F(TrustTest, TokenKeysRotateAndRetireThroughTheAdminRoutes) {
  const std::string before = mint("u-rot");
  HttpReply listed = call("GET", api("/token-keys"), "", keys_["admin"]);
  ASSERT_EQ(listed.status, 200) << listed.body;
  ASSERT_EQ(listed.json()["token_keys"].size(), 1u);
  EXPECT_FALSE(listed.json()["token_keys"][0].contains("secret"));
  EXPECT_EQ(listed.body.find(to_hex(keyring_->keys()->token_keys[0].secret)), std::string::npos);
  EXPECT_EQ(call("POST", api("/token-keys/rotate"), "", keys_["service"]).status, 403);
  HttpReply rotated = call("POST", api("/token-keys/rotate"), "", keys_["admin"]);
  ASSERT_EQ(rotated.status, 201) << rotated.body;
  EXPECT_EQ(rotated.json()["kid"], "t2");
  const std::string after = mint("u-rot");
  EXPECT_EQ(after.rfind("fut2.t2.", 0), 0u);
  EXPECT_NE(read_own("u-rot", before), 401);  // the old key verifies until retired
  ASSERT_EQ(call("POST", api("/token-keys/t1/retire"), "", keys_["admin"]).status, 200);
  EXPECT_EQ(read_own("u-rot", before), 401);
  EXPECT_NE(read_own("u-rot", after), 401);
  EXPECT_EQ(call("POST", api("/token-keys/t2/retire"), "", keys_["admin"]).status, 409);
  EXPECT_EQ(call("POST", api("/token-keys/t9/retire"), "", keys_["admin"]).status, 404);
}

// The forged-token attack of the issue, over HTTP: nothing secret is in the store any more,
// a token forged with a guessed or old secret fails, and even one signed with the real key
// but expiring in 2100 is refused by the lifetime cap.
TEST_F(TrustTest, ForgedTokenAttackFails) {
  auto stored = store_->get_document("server_secret", "user_token_key");
  ASSERT_TRUE(stored.is_ok());
  EXPECT_FALSE(stored->has_value());
  auto forge = [](const std::string& kid, const std::string& payload, const std::string& secret) {
    std::string b64(sodium_base64_encoded_len(payload.size(),
                                              sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                    '\0');
    sodium_bin2base64(b64.data(), b64.size(), reinterpret_cast<const unsigned char*>(payload.data()),
                      payload.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    b64.resize(std::strlen(b64.c_str()));
    const std::string signed_part = "fut2." + kid + "." + b64;
    unsigned char mac[crypto_auth_BYTES];
    crypto_auth(mac, reinterpret_cast<const unsigned char*>(signed_part.data()),
                signed_part.size(), reinterpret_cast<const unsigned char*>(secret.data()));
    std::string mac64(sodium_base64_encoded_len(sizeof mac,
                                                sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                      '\0');
    sodium_bin2base64(mac64.data(), mac64.size(), mac, sizeof mac,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    mac64.resize(std::strlen(mac64.c_str()));
    return signed_part + "." + mac64;
  };
  const std::string now = std::to_string(clock_.now());
  const std::string real_key = keyring_->keys()->signing_key()->secret;
  EXPECT_EQ(read_own("victim", forge("t1", "victim\n" + now + "\n4102444800\n", real_key)), 401);
  EXPECT_EQ(read_own("victim", forge("t1", "victim\n" + now + "\n" + now + "9\n",
                                     std::string(32, 'x'))),
            401);
  EXPECT_NE(read_own("victim", forge("t1", "victim\n" + now + "\n" +
                                               std::to_string(clock_.now() + 600) + "\n",
                                     real_key)),
            401);  // the control: a well-formed token with the real key passes
}

TEST_F(TrustTest, AuditHeadIsSignedAndCheckpointsAreWrittenOutsideTheStore) {
  ASSERT_EQ(call("POST", api("/users/u1/revoke-tokens"), "", keys_["admin"]).status, 200);
  EXPECT_EQ(call("GET", api("/audit/head"), "", keys_["analyst"]).status, 403);
  HttpReply head = call("GET", api("/audit/head"), "", keys_["admin"]);
  ASSERT_EQ(head.status, 200) << head.body;
  const nlohmann::json body = head.json();
  auto stored_head = store_->audit_head();
  ASSERT_TRUE(stored_head.is_ok() && stored_head->has_value());
  EXPECT_EQ(body["sequence"], (*stored_head)->sequence);
  EXPECT_EQ(body["hash"], (*stored_head)->hash);
  EXPECT_EQ(body["public_key"], server_->audit_key().public_key_hex());
  AuditCheckpoint checkpoint;
  checkpoint.sequence = body["sequence"];
  checkpoint.hash = body["hash"];
  checkpoint.at = body["at"];
  checkpoint.signature = body["signature"];
  EXPECT_TRUE(server_->audit_key().signature_valid(checkpoint));
  checkpoint.sequence -= 1;
  EXPECT_FALSE(server_->audit_key().signature_valid(checkpoint));
  // At shutdown the server appends a checkpoint of the head it leaves.
  server_->shutdown();
  server_->wait();
  auto lines = read_checkpoint_file((dir_ / "f.audit-checkpoints").string());
  ASSERT_TRUE(lines.is_ok());
  ASSERT_FALSE(lines->empty());
  EXPECT_EQ(lines->back().checkpoint->hash, (*store_->audit_head())->hash);
  EXPECT_EQ(std::filesystem::status(dir_ / "f.audit-checkpoints").permissions() &
                std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  auto verified = verify_audit_chain(*store_, server_->audit_key(), *lines);
  ASSERT_TRUE(verified.is_ok());
  EXPECT_TRUE(verified->intact);
}

TEST_F(TrustTest, RequestIdsAreEchoedAndNamedInProblems) {
  HttpClient client(port_);
  HttpReply given = client.request("GET", "/healthz", "", "", "application/json", true,
                                   {{"X-Request-Id", "trace-42.a_b:c"}});
  EXPECT_EQ(given.header("x-request-id"), "trace-42.a_b:c");
  HttpReply insane = client.request("GET", "/healthz", "", "", "application/json", true,
                                    {{"X-Request-Id", "has space\"quote"}});
  EXPECT_EQ(insane.header("x-request-id").size(), 16u) << insane.header("x-request-id");
  HttpReply generated = client.request("GET", api("/ab-tests"), "", "fk_wrong");
  ASSERT_EQ(generated.status, 401);
  const std::string id = generated.header("x-request-id");
  EXPECT_EQ(id.size(), 16u);
  EXPECT_EQ(generated.json()["request_id"], id);
}

// logrotate without copytruncate: the files are moved, then SIGHUP makes the server reopen
// them (ServerLogs::reopen); later lines go to the new files, earlier ones stay in the moved.
TEST(ServerLogsTest, ReopenAfterTheFilesWereMovedWritesToNewFiles) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("fulcrum_logs_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string access = (dir / "access.log").string();
  const std::string error = (dir / "error.log").string();
  ServerLogs logs;
  ASSERT_TRUE(logs.open(access, error).is_ok());
  const int crash_fd = logs.error_fd();
  AccessLogLine line;
  line.request_id = "before";
  logs.access(line);
  logs.error("info", "test", "before");
  std::filesystem::rename(access, access + ".1");
  std::filesystem::rename(error, error + ".1");
  ASSERT_TRUE(logs.reopen().is_ok());
  line.request_id = "after";
  logs.access(line);
  logs.error("info", "test", "after");
  EXPECT_EQ(logs.error_fd(), crash_fd) << "the crash handler's descriptor follows the file";

  auto read = [](const std::string& path) {
    std::ifstream in(path);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  for (const std::string& path : {access, error}) {
    EXPECT_NE(read(path).find("after"), std::string::npos) << path;
    EXPECT_EQ(read(path).find("before"), std::string::npos) << path;
    EXPECT_NE(read(path + ".1").find("before"), std::string::npos) << path;
    EXPECT_EQ(read(path + ".1").find("after"), std::string::npos) << path;
    EXPECT_EQ(std::filesystem::status(path).permissions() & std::filesystem::perms::all,
              std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  }
  std::filesystem::remove_all(dir);
}

TEST_F(TrustTest, AccessAndErrorLogsAreJsonLinesWithoutSecrets) {
  const std::string token = mint("u-log");
  read_own("u-log", token);
  call("GET", api("/ab-tests/some_test_id"), "", keys_["analyst"]);
  for (int i = 0; i < 3; ++i) call("GET", api("/ab-tests"), "", "fk_wrong_" + std::to_string(i));
  HttpReply exploded = call("GET", api("/test/explode"), "", keys_["admin"]);
  ASSERT_EQ(exploded.status, 500);
  const std::string failed_id = exploded.header("x-request-id");
  server_->shutdown();
  server_->wait();

  const auto access = read_json_lines(dir_ / "access.log");
  ASSERT_GE(access.size(), 7u);
  bool saw_pattern = false, saw_user_token = false;
  for (const nlohmann::json& line : access) {
    for (const char* field : {"time", "request_id", "method", "route", "status", "duration_ms",
                              "caller", "caller_label", "client", "bytes_in", "bytes_out"}) {
      EXPECT_TRUE(line.contains(field)) << field << " in " << line.dump();
    }
    if (line["route"] == api("/ab-tests/{test_id}")) {
      saw_pattern = true;
      EXPECT_EQ(line["caller"], key_ids_["analyst"]);
      EXPECT_EQ(line["caller_label"], "test analyst");
    }
    if (line["caller"] == "user-token") {
      saw_user_token = true;
      EXPECT_EQ(line["caller_label"], key_ids_["service"]);  // the minting key, not the user
    }
  }
  EXPECT_TRUE(saw_pattern);
  EXPECT_TRUE(saw_user_token);
  std::ifstream raw(dir_ / "access.log");
  const std::string text((std::istreambuf_iterator<char>(raw)), std::istreambuf_iterator<char>());
  for (const auto& [role, secret] : keys_) EXPECT_EQ(text.find(secret), std::string::npos) << role;
  EXPECT_EQ(text.find("fk_wrong"), std::string::npos);
  EXPECT_EQ(text.find(token.substr(0, 20)), std::string::npos);
  EXPECT_EQ(text.find("some_test_id"), std::string::npos) << "patterns, not paths";
  EXPECT_EQ(text.find("u-log"), std::string::npos) << "no user ids";
  EXPECT_EQ(std::filesystem::status(dir_ / "access.log").permissions() &
                std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);

  const auto errors = read_json_lines(dir_ / "error.log");
  bool saw_failure = false, saw_logins = false;
  for (const nlohmann::json& line : errors) {
    if (line.value("request_id", "") == failed_id &&
        line.value("message", "").find("boom") != std::string::npos) {
      saw_failure = true;
    }
    if (line.value("event", "") == "failed_logins") {
      saw_logins = true;
      EXPECT_EQ(line["failures"], "3");
      EXPECT_EQ(line["top_address"], "127.0.0.1");
    }
  }
  EXPECT_TRUE(saw_failure) << "the 500's request id and cause are in the error log";
  EXPECT_TRUE(saw_logins) << "failed logins are aggregated into one line";
}

}  // namespace
}  // namespace fulcrum::api::testing
