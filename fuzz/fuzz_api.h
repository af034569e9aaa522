// Shared by the HTTP and JSON-body fuzzers: the production route table (built by
// api::Server, never started) over a real SQLite store in a temporary directory, seeded with
// one running A/B test, and the checks every answer must pass. A finding is reported by
// abort(), which libFuzzer records as a crash with the input that caused it.
#pragma once

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "api/http.h"
#include "api/router.h"
#include "api/server.h"
#include "core/time.h"
#include "core/untrusted_json.h"
#include "store/store.h"

namespace fulcrum::fuzz {

class FuzzApi {
 public:
  FuzzApi() : clock_(1'704'067'200) {  // 2024-01-01T00:00:00Z
    dir_ = std::filesystem::temp_directory_path() /
           ("fulcrum_fuzz_" + std::to_string(static_cast<long>(::getpid())));
    reset();
  }
  ~FuzzApi() {
    server_.reset();
    store_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  // A fresh store now and then, so stored events and tests do not grow without bound.
  void next_input() {
    if (++inputs_ % 5000 == 0) reset();
  }

  const std::string& test_id() const { return test_id_; }

  // Routes `request` like the server does and runs its handler as an admin; nullopt when no
  // route matches.
  std::optional<api::Response> call(api::Request request) {
    api::Router::Match match = server_->router().match(request.method, request.path);
    if (!match.route) return std::nullopt;
    request.params = std::move(match.params);
    api::AuthContext admin;
    admin.authenticated = true;
    admin.role = api::Role::kAdmin;
    admin.actor = "fuzz";
    api::Response response = match.route->handler(request, admin);
    // What the caller sent, which a problem may echo: path, query, headers and body.
    std::string input = request.path + "\n" + request.body;
    for (const auto& [name, value] : request.query) input += "\n" + name + "=" + value;
    for (const auto& [name, value] : request.headers) input += "\n" + name + ":" + value;
    check(response, input);
    return response;
  }

  // A client's input never causes a 5xx (the store is local and healthy), and a problem
  // body is valid JSON that does not carry a library's message. A library's name that the
  // input itself contains may be echoed (e.g. an unknown CSV column the caller named so).
  static void check(const api::Response& response, std::string_view input) {
    if (response.status >= 500) {
      std::fprintf(stderr, "fuzz: status %d: %s\n", response.status, response.body.c_str());
      std::abort();
    }
    if (response.content_type.find("json") != std::string::npos) {
      JsonLimits limits;
      limits.max_bytes = SIZE_MAX;
      limits.max_depth = 1000;
      if (!parse_untrusted_json(response.body, "response", limits).is_ok()) {
        std::fprintf(stderr, "fuzz: response is not JSON: %s\n", response.body.c_str());
        std::abort();
      }
    }
    auto leaks = [&](std::string_view marker) {
      return response.body.find(marker) != std::string::npos &&
             input.find(marker) == std::string_view::npos;
    };
    if (leaks("json.exception") || leaks("simdjson")) {
      std::fprintf(stderr, "fuzz: library message in a response: %s\n", response.body.c_str());
      std::abort();
    }
  }

 private:
  void reset() {
    server_.reset();
    store_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
    std::filesystem::create_directories(dir_);
    auto opened = open_store((dir_ / "fuzz.db").string());
    if (!opened.is_ok()) {
      std::fprintf(stderr, "fuzz: cannot open store: %s\n", opened.status().to_string().c_str());
      std::abort();
    }
    store_ = std::move(*opened);
    api::ServerOptions options;
    options.port = 0;
    options.worker_threads = 1;
    options.experiment_cache = std::chrono::milliseconds(0);
    server_ = std::make_unique<api::Server>(*store_, clock_, options);
    // One running A/B test, so routes with {test_id} reach their logic.
    api::Request create;
    create.method = "POST";
    create.path = std::string(api::kApiPrefix) + "/ab-tests";
    create.body = R"({"test_name": "fuzz", "feature_name": "checkout",
      "success_metrics": ["conversion_rate", "revenue"],
      "test_groups": {"control": {}, "treatment": {"color": "green"}},
      "traffic_allocation": {"control": 0.5, "treatment": 0.5},
      "targeting": {"country": {"$in": ["GB", "IE"]}, "app_version": {"$vgte": "5.0.0"}}})";
    auto created = call(create);
    auto body = created ? parse_untrusted_json(created->body)
                        : Result<nlohmann::json>(internal_error("no route"));
    if (!body.is_ok() || !body->contains("test_id")) {
      std::fprintf(stderr, "fuzz: cannot create the seed A/B test\n");
      std::abort();
    }
    test_id_ = (*body)["test_id"].get<std::string>();
    api::Request start;
    start.method = "POST";
    start.path = std::string(api::kApiPrefix) + "/ab-tests/" + test_id_ + "/start";
    call(start);
  }

  ManualClock clock_;
  std::filesystem::path dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<api::Server> server_;
  std::string test_id_;
  std::size_t inputs_ = 0;
};

}  // namespace fulcrum::fuzz
