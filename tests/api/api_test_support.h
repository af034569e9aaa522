// Test support: a real server on an ephemeral loopback port over a real SQLite file in a
// temporary directory, one API key per role, and a small blocking Beast HTTP client.
#pragma once

#include <utility>

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>

#include "api/auth.h"
#include "api/server.h"
#include "store/store.h"

namespace fulcrum::api::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

struct HttpReply {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  bool keep_alive = false;
  nlohmann::json json() const {
    return nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  }
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// One keep-alive client connection.
class HttpClient {
 public:
  explicit HttpClient(std::uint16_t port) : socket_(io_) {
    socket_.connect({asio::ip::make_address("127.0.0.1"), port});
  }
  HttpReply request(const std::string& method, const std::string& target,
                    const std::string& body = {}, const std::string& bearer = {},
                    const std::string& content_type = "application/json", bool keep_alive = true,
                    const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, "127.0.0.1");
    for (const auto& [name, value] : headers) req.set(name, value);
    if (!bearer.empty()) req.set(http::field::authorization, "Bearer " + bearer);
    if (!body.empty() || method == "POST") {
      req.set(http::field::content_type, content_type);
      req.body() = body;
    }
    req.keep_alive(keep_alive);
    req.prepare_payload();
    http::write(socket_, req);
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    http::read(socket_, buffer_, parser);
    HttpReply reply;
    reply.status = static_cast<int>(parser.get().result_int());
    reply.body = parser.get().body();
    reply.keep_alive = parser.get().keep_alive();
    for (const auto& field : parser.get()) {
      std::string name(field.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      reply.headers[name] = std::string(field.value());
    }
    return reply;
  }
  asio::ip::tcp::socket& socket() { return socket_; }

 private:
  asio::io_context io_;
  asio::ip::tcp::socket socket_;
  beast::flat_buffer buffer_;
};

class ApiServerTest : public ::testing::Test {
 protected:
  // Override before SetUp() runs (in a derived constructor) to change server options.
  ServerOptions options_;

  void SetUp() override {
    std::random_device random;
    dir_ = std::filesystem::temp_directory_path() /
           ("fulcrum_api_test_" + std::to_string(random()) + std::to_string(random()));
    std::filesystem::create_directories(dir_);
    db_path_ = (dir_ / "fulcrum.db").string();
    auto opened = open_store(db_path_);
    ASSERT_TRUE(opened.is_ok()) << opened.status().to_string();
    store_ = std::move(*opened);
    for (const char* role : {"admin", "analyst", "service", "sdk"}) {
      auto created = create_api_key(*store_, clock_, role, std::string("test ") + role);
      ASSERT_TRUE(created.is_ok()) << created.status().to_string();
      keys_[role] = created->secret;
      key_ids_[role] = created->record.key_id;
      if (std::string(role) == "sdk") client_key_ = client_key_for(created->record);
    }
    options_.address = "127.0.0.1";
    options_.port = 0;
    options_.key_cache = std::chrono::milliseconds(0);
    // Suites send many deliberate bad credentials from 127.0.0.1; the failed-authentication
    // rate limit has its own tests (hostile_http_test.cc) and is off unless they enable it.
    options_.auth_failure_burst = 0;
    configure(options_);
    server_ = std::make_unique<Server>(*store_, clock_, options_);
    add_routes(server_->router());
    Status started = server_->start();
    ASSERT_TRUE(started.is_ok()) << started.to_string();
    port_ = server_->port();
  }

  void TearDown() override {
    server_.reset();
    store_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  virtual void configure(ServerOptions&) {}
  virtual void add_routes(Router&) {}

  std::string user_token(const std::string& user_id) {
    auto token = server_->authenticator().mint_user_token(user_id, 3600);
    EXPECT_TRUE(token.is_ok());
    return token.is_ok() ? *token : std::string();
  }

  HttpReply call(const std::string& method, const std::string& path, const std::string& body = {},
                 const std::string& bearer = {}) {
    HttpClient client(port_);
    return client.request(method, path, body, bearer);
  }
  static std::string api(const std::string& suffix) { return std::string(kApiPrefix) + suffix; }

  std::vector<AuditEntry> audit_entries() {
    std::vector<AuditEntry> entries;
    EXPECT_TRUE(store_->scan_audit([&](const AuditEntry& e) { entries.push_back(e); }).is_ok());
    return entries;
  }

  SystemClock clock_;
  std::filesystem::path dir_;
  std::string db_path_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Server> server_;
  std::uint16_t port_ = 0;
  std::map<std::string, std::string> keys_;     // role -> secret
  std::map<std::string, std::string> key_ids_;  // role -> key id
  std::string client_key_;                      // the sdk key's public client key
};

}  // namespace fulcrum::api::testing
