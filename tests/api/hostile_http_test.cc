// Hostile clients over real loopback connections (issue 12): authentication before the body
// is read, aggregated security events instead of one audit row per denied call, connection
// limits, per-route body limits, the priority pool for hot routes, closed metric labels,
// /metrics auth, the failed-authentication rate limit and RFC 9112 framing.
#include <poll.h>
#include <sys/socket.h>

#include <future>
#include <random>
#include <regex>
#include <thread>

#include "api/audit.h"
#include "api/security_events.h"
#include "api_test_support.h"

namespace fulcrum::api::testing {
namespace {

using Millis = std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

// A raw TCP connection: for requests the Beast client would refuse to send, and to watch
// what the server does (answers, closes) with a deadline.
class Raw {
 public:
  explicit Raw(std::uint16_t port, const std::string& from = "127.0.0.1") : socket_(io_) {
    socket_.open(asio::ip::tcp::v4());
    socket_.bind({asio::ip::make_address(from), 0});
    socket_.connect({asio::ip::make_address("127.0.0.1"), port});
  }
  void send(const std::string& bytes) {
    boost::system::error_code ec;
    asio::write(socket_, asio::buffer(bytes), ec);
  }
  // Everything until the peer closes or `timeout` passes; `closed` tells which.
  std::string read_all(Millis timeout, bool* closed = nullptr) {
    std::string out;
    const auto deadline = SteadyClock::now() + timeout;
    if (closed) *closed = false;
    while (SteadyClock::now() < deadline) {
      pollfd fd{socket_.native_handle(), POLLIN, 0};
      const int left = static_cast<int>(
          std::chrono::duration_cast<Millis>(deadline - SteadyClock::now()).count());
      if (::poll(&fd, 1, std::max(1, left)) <= 0) continue;
      char buffer[4096];
      const ssize_t n = ::recv(socket_.native_handle(), buffer, sizeof buffer, 0);
      if (n <= 0) {
        if (closed) *closed = true;
        break;
      }
      out.append(buffer, static_cast<std::size_t>(n));
    }
    return out;
  }
  // Reads until one whole response head has arrived (or `timeout`).
  std::string read_head(Millis timeout) {
    std::string out;
    const auto deadline = SteadyClock::now() + timeout;
    while (out.find("\r\n\r\n") == std::string::npos && SteadyClock::now() < deadline) {
      pollfd fd{socket_.native_handle(), POLLIN, 0};
      if (::poll(&fd, 1, 20) <= 0) continue;
      char byte;
      if (::recv(socket_.native_handle(), &byte, 1, 0) <= 0) break;
      out += byte;
    }
    return out;
  }
  asio::ip::tcp::socket& socket() { return socket_; }

 private:
  asio::io_context io_;
  asio::ip::tcp::socket socket_;
};

int status_of(const std::string& response) {
  return response.size() >= 12 && response.rfind("HTTP/1.", 0) == 0
             ? std::atoi(response.substr(9, 3).c_str())
             : 0;
}

int count_of(const std::string& text, const std::string& needle) {
  int count = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos;
       at = text.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

class HostileTest : public ApiServerTest {
 protected:
  void configure(ServerOptions& options) override {
    options.read_timeout = Millis(4000);
    options.body_limit_bytes = 1024;
    options.bulk_body_limit_bytes = 64 * 1024;
  }
};

// --- authentication before the body ---------------------------------------------------

// Before: the whole body (here announced as 10 MB and never sent) was awaited before routing,
// so the server said nothing until the read timeout.
TEST_F(HostileTest, AnonymousCallIsRefusedFromTheHeadWithoutReadingTheBody) {
  Raw raw(port_);
  const auto start = SteadyClock::now();
  raw.send("POST " + api("/events") +
           " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           "Content-Length: 10000000\r\n\r\n");
  bool closed = false;
  const std::string answer = raw.read_all(Millis(3000), &closed);
  EXPECT_EQ(status_of(answer), 401) << answer;
  EXPECT_LT(SteadyClock::now() - start, Millis(2500));
  EXPECT_TRUE(closed) << "the unread body makes the connection unusable: it must be closed";
}

TEST_F(HostileTest, ExpectContinueIsSentOnlyToCallersAllowedToSendABody) {
  const std::string head_tail = " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                "Expect: 100-continue\r\nContent-Length: 500\r\n";
  {
    Raw raw(port_);  // anonymous: 401, no 100
    raw.send("POST " + api("/events") + head_tail + "\r\n");
    const std::string head = raw.read_head(Millis(2000));
    EXPECT_EQ(status_of(head), 401) << head;
  }
  {
    Raw raw(port_);  // analyst may not ingest: 403, no 100
    raw.send("POST " + api("/events") + head_tail + "Authorization: Bearer " +
             keys_["analyst"] + "\r\n\r\n");
    const std::string head = raw.read_head(Millis(2000));
    EXPECT_EQ(status_of(head), 403) << head;
  }
  {
    Raw raw(port_);  // a wrong key: 401, no 100
    raw.send("POST " + api("/events") + head_tail + "Authorization: Bearer fk_00\r\n\r\n");
    EXPECT_EQ(status_of(raw.read_head(Millis(2000))), 401);
  }
  {
    Raw raw(port_);  // the service key: 100, then the answer to the body
    raw.send("POST " + api("/events") + head_tail + "Authorization: Bearer " +
             keys_["service"] + "\r\n\r\n");
    EXPECT_EQ(status_of(raw.read_head(Millis(2000))), 100);
    std::string body = R"({"events": [)" + std::string(480, ' ') + "]}";
    body.resize(500, ' ');
    raw.send(body);
    EXPECT_EQ(status_of(raw.read_head(Millis(2000))), 422);  // an empty batch
  }
}

// Before: each of these appended and committed one audit row (target: the path parameter),
// so anonymous traffic grew the store at request rate.
TEST_F(HostileTest, AnonymousFloodOfAnAuditedRouteLeavesTheAuditLogBounded) {
  const std::string long_id(4000, 'x');
  const auto size_of = [this] {
    std::uintmax_t total = 0;
    for (const char* suffix : {"", "-wal"}) {
      std::error_code ec;
      const auto size = std::filesystem::file_size(db_path_ + suffix, ec);
      if (!ec) total += size;
    }
    return total;
  };
  const std::uintmax_t size_before = size_of();
  for (int i = 0; i < 1000; ++i) {
    HttpClient client(port_);
    const HttpReply reply = i % 2 == 0
        ? client.request("POST", api("/ab-tests"), R"({"name": "x"})")
        : client.request("POST", api("/ab-tests/" + long_id + std::to_string(i) + "/start"),
                         "{}", "fk_wrong");
    ASSERT_EQ(reply.status, 401) << i;
  }
  EXPECT_EQ(audit_entries().size(), 0u) << "nothing is written per request";
  server_->shutdown();
  server_->wait();  // flushes the aggregates
  const std::vector<AuditEntry> entries = audit_entries();
  // One entry per (caller, route, status, minute): at most 2 minutes x 2 keys.
  EXPECT_GE(entries.size(), 2u);
  EXPECT_LE(entries.size(), 4u);
  std::map<std::string, long> counted;
  const std::regex count_re("^denied: 401; count=([0-9]+); minute=");
  for (const AuditEntry& entry : entries) {
    std::smatch match;
    ASSERT_TRUE(std::regex_search(entry.outcome, match, count_re)) << entry.outcome;
    counted[entry.actor + " " + entry.action] += std::stol(match[1]);
    EXPECT_LE(entry.target.size(), kMaxSecurityTargetBytes + 3) << entry.target.size();
  }
  EXPECT_EQ(counted["anonymous POST /ab-tests"], 500);
  EXPECT_EQ(counted["invalid-credential POST /ab-tests/{test_id}/start"], 500);
  EXPECT_LT(size_of() - size_before, 64u * 1024) << "store grew by " << size_of() - size_before;
  auto verified = verify_audit_chain(*store_, server_->audit_key());
  ASSERT_TRUE(verified.is_ok());
  EXPECT_TRUE(verified->intact);
}

// --- per-route body limits ---------------------------------------------------------------

TEST_F(HostileTest, IngestionKeepsTheBulkBodyLimitOtherRoutesTheSmallOne) {
  // 4 KiB: over body_limit_bytes (1 KiB), under bulk_body_limit_bytes (64 KiB).
  std::string events = R"({"events": [)";
  while (events.size() < 4096) {
    events += R"({"type": "session", "user_id": "u1", "at": 1704290400, )"
              R"("duration_seconds": 30},)";
  }
  events.back() = ']';
  events += '}';
  HttpReply ingested = call("POST", api("/events"), events, keys_["service"]);
  EXPECT_NE(ingested.status, 413) << ingested.body;
  HttpReply created = call("POST", api("/ab-tests"), std::string(4096, ' '), keys_["admin"]);
  EXPECT_EQ(created.status, 413);
  EXPECT_EQ(created.json()["field"], "body");
  HttpReply too_big = call("POST", api("/events"), std::string(70 * 1024, ' '), keys_["service"]);
  EXPECT_EQ(too_big.status, 413);
}

// Chunked bodies have no Content-Length to refuse up front: the limit applies while reading.
TEST_F(HostileTest, ChunkedBodyOverTheRouteLimitIs413) {
  Raw raw(port_);
  std::string chunk(2000, ' ');
  raw.send("POST " + api("/ab-tests") + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
           keys_["admin"] + "\r\nTransfer-Encoding: chunked\r\n\r\n7d0\r\n" + chunk +
           "\r\n0\r\n\r\n");
  EXPECT_EQ(status_of(raw.read_head(Millis(2000))), 413);
}

// --- RFC 9112 framing ----------------------------------------------------------------------

// Each of these must get exactly one 400 and a closed connection: nothing after the head
// may run as a second request.
TEST_F(HostileTest, AmbiguousFramingIsRefusedAndTheConnectionClosed) {
  const std::string smuggled = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::vector<std::string> heads = {
      "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n",
      "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
      "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
      "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
      "Transfer-Encoding: chunked\r\n\r\n",
      "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
      "Content-Length: " + std::to_string(smuggled.size()) + "\r\n\r\n",
      "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n",
      "GET /healthz HTTP/1.1\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n  b\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Space : a\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nHost: x\nX-Bare-LF: a\r\n\r\n",
  };
  for (const std::string& head : heads) {
    Raw raw(port_);
    raw.send(head + smuggled);
    bool closed = false;
    const std::string answer = raw.read_all(Millis(2000), &closed);
    EXPECT_EQ(status_of(answer), 400) << head << "\n" << answer;
    EXPECT_EQ(count_of(answer, "HTTP/1.1 200"), 0) << "the smuggled request ran: " << head;
    EXPECT_TRUE(closed) << head;
  }
  EXPECT_NE(call("GET", "/metrics").body.find("fulcrum_http_framing_errors_total"),
            std::string::npos);
}

TEST_F(HostileTest, WellFramedRequestsStillWork) {
  Raw raw(port_);
  // HTTP/1.0 without Host, then chunked on HTTP/1.1 with an empty line before it.
  raw.send("GET /healthz HTTP/1.0\r\n\r\n");
  EXPECT_EQ(status_of(raw.read_head(Millis(2000))), 200);
  Raw chunked(port_);
  chunked.send("\r\nPOST " + api("/events") + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
               keys_["service"] + "\r\nTransfer-Encoding: chunked\r\n\r\n" +
               "e\r\n{\"events\": []}\r\n0\r\n\r\n");
  EXPECT_EQ(status_of(chunked.read_head(Millis(2000))), 422);
}

TEST_F(HostileTest, OversizedHeadIs431AndClosed) {
  Raw raw(port_);
  raw.send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20'000, 'a') +
           "\r\n\r\n");
  bool closed = false;
  const std::string answer = raw.read_all(Millis(2000), &closed);
  EXPECT_EQ(status_of(answer), 431) << answer.substr(0, 200);
  EXPECT_TRUE(closed);
}

// --- metrics -----------------------------------------------------------------------------

// Before: every method name became a label value (87 MB of /metrics after 1,000 of them).
TEST_F(HostileTest, MetricLabelsComeFromAClosedSet) {
  std::mt19937 random(7);
  for (int i = 0; i < 200; ++i) {
    Raw raw(port_);
    std::string method(200, 'A');
    for (char& c : method) c = static_cast<char>('A' + random() % 26);
    raw.send(method + " /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    raw.read_all(Millis(1000));
    Raw unmatched(port_);
    unmatched.send("GET " + api("/nothing/" + std::to_string(i)) +
                   " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    unmatched.read_all(Millis(1000));
  }
  const HttpReply metrics = call("GET", "/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_LT(metrics.body.size(), 64u * 1024) << metrics.body.size();
  EXPECT_NE(metrics.body.find(R"(fulcrum_http_requests_total{method="other",route="other",)"
                              R"(status="405"} 200)"),
            std::string::npos)
      << metrics.body;
  EXPECT_NE(metrics.body.find(
                R"(fulcrum_http_requests_total{method="GET",route="other",status="404"} 200)"),
            std::string::npos);
  EXPECT_EQ(metrics.body.find("/nothing/"), std::string::npos);
}

class MetricsAuthTest : public HostileTest {
 protected:
  void configure(ServerOptions& options) override {
    HostileTest::configure(options);
    options.metrics_auth = true;
  }
};

TEST_F(MetricsAuthTest, MetricsNeedAnAdminOrAnalystKeyWhenConfigured) {
  EXPECT_EQ(call("GET", "/metrics").status, 401);
  EXPECT_EQ(call("GET", "/metrics", "", keys_["service"]).status, 403);
  EXPECT_EQ(call("GET", "/metrics", "", keys_["analyst"]).status, 200);
  EXPECT_EQ(call("GET", "/metrics", "", keys_["admin"]).status, 200);
  EXPECT_EQ(call("GET", "/healthz").status, 200);
}

// --- failed-authentication rate limit ------------------------------------------------------

class AuthThrottleTest : public HostileTest {
 protected:
  void configure(ServerOptions& options) override {
    HostileTest::configure(options);
    options.auth_failure_burst = 5;
    options.auth_failures_per_minute = 6;  // one more every 10 s
    options.key_cache = std::chrono::seconds(60);
  }
};

// Before: 3,000 wrong keys in 25 s were all answered 401, uncounted and unlogged.
TEST_F(AuthThrottleTest, FailedAuthenticationsAreRateLimitedPerAddressAndCounted) {
  HttpClient good(port_);
  ASSERT_EQ(good.request("GET", api("/ab-tests"), "", keys_["analyst"]).status, 200);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(call("GET", api("/ab-tests"), "", "fk_guess" + std::to_string(i)).status, 401);
  }
  HttpReply limited = call("GET", api("/ab-tests"), "", "fk_guess_more");
  EXPECT_EQ(limited.status, 429);
  const int retry_after = std::atoi(limited.header("retry-after").c_str());
  EXPECT_GE(retry_after, 1);
  EXPECT_LE(retry_after, 10);
  // Even a valid key never seen from here waits (no feedback for guesses) ...
  EXPECT_EQ(call("GET", api("/ab-tests"), "", keys_["admin"]).status, 429);
  // ... but a key that authenticated before keeps working, and so do public routes.
  EXPECT_EQ(good.request("GET", api("/ab-tests"), "", keys_["analyst"]).status, 200);
  EXPECT_EQ(call("GET", "/healthz").status, 200);
  // Another address has its own budget.
  Raw other(port_, "127.0.0.2");
  other.send("GET " + api("/ab-tests") +
             " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer fk_other\r\n\r\n");
  EXPECT_EQ(status_of(other.read_head(Millis(2000))), 401);
  const std::string metrics = call("GET", "/metrics").body;
  EXPECT_NE(metrics.find("fulcrum_http_auth_failures_total 6"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find(R"(fulcrum_http_rate_limited_total{reason="auth_failures"} 2)"),
            std::string::npos)
      << metrics;
}

// Before: unknown SDK client keys in /api/features/{clientKey} were answered 401 without
// limit, uncounted: a client key could be guessed at line rate.
TEST_F(AuthThrottleTest, GuessedClientKeysCountAgainstTheAddressBudget) {
  ASSERT_FALSE(client_key_.empty());
  for (int i = 0; i < 5; ++i) {
    const std::string guess = "sdk_" + std::string(31, 'a') + std::to_string(i);
    HttpReply refused = call("GET", "/api/features/" + guess);
    EXPECT_EQ(refused.status, 401) << refused.body;
    EXPECT_NE(refused.body.find("clientKey"), std::string::npos) << refused.body;
  }
  HttpReply limited = call("POST", "/api/eval/sdk_" + std::string(32, 'b'), R"({"attributes": {}})");
  EXPECT_EQ(limited.status, 429) << limited.body;
  EXPECT_GE(std::atoi(limited.header("retry-after").c_str()), 1);
  // Wrong API keys from the same address now wait too: one budget per address.
  EXPECT_EQ(call("GET", api("/ab-tests"), "", "fk_guess").status, 429);
  // A client key is public (shipped inside apps): a real one keeps being served, so SDKs
  // behind the same address as a guesser still work.
  EXPECT_EQ(call("GET", "/api/features/" + client_key_).status, 200);
  const std::string metrics = call("GET", "/metrics").body;
  EXPECT_NE(metrics.find("fulcrum_http_auth_failures_total 5"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find(R"(fulcrum_http_rate_limited_total{reason="auth_failures"} 2)"),
            std::string::npos)
      << metrics;
}

// --- connection limits ---------------------------------------------------------------------

class ConnectionLimitTest : public HostileTest {
 protected:
  void configure(ServerOptions& options) override {
    HostileTest::configure(options);
    options.max_connections = 6;
    options.max_connections_per_address = 4;
  }
};

// Before: no cap (60 anonymous connections took the server to 914 MiB).
TEST_F(ConnectionLimitTest, ConnectionsOverTheLimitsGet503AndAreClosed) {
  std::vector<std::unique_ptr<HttpClient>> held;
  for (int i = 0; i < 4; ++i) {
    held.push_back(std::make_unique<HttpClient>(port_));
    ASSERT_EQ(held.back()->request("GET", "/healthz").status, 200);
  }
  {
    Raw fifth(port_);  // fifth from 127.0.0.1
    bool closed = false;
    const std::string answer = fifth.read_all(Millis(2000), &closed);
    EXPECT_EQ(status_of(answer), 503) << answer;
    EXPECT_TRUE(closed);
  }
  std::vector<std::unique_ptr<Raw>> others;
  for (int i = 0; i < 2; ++i) {
    others.push_back(std::make_unique<Raw>(port_, "127.0.0.2"));
    others.back()->send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(status_of(others.back()->read_head(Millis(2000))), 200);
  }
  {
    Raw seventh(port_, "127.0.0.3");  // over the global limit
    EXPECT_EQ(status_of(seventh.read_all(Millis(2000))), 503);
  }
  held.pop_back();  // one closes: a new connection from 127.0.0.1 is served again
  bool served = false;
  for (int attempt = 0; attempt < 50 && !served; ++attempt) {
    Raw again(port_);
    again.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    const std::string answer = again.read_all(Millis(300));
    if (status_of(answer) == 200) {
      served = true;
      EXPECT_NE(answer.find(R"(fulcrum_http_refused_connections_total{reason="address_limit"} 1)"),
                std::string::npos);
      EXPECT_NE(answer.find(R"(fulcrum_http_refused_connections_total{reason="global_limit"})"),
                std::string::npos);
    }
  }
  EXPECT_TRUE(served);
}

// --- fair scheduling -----------------------------------------------------------------------

class PriorityPoolTest : public HostileTest {
 protected:
  void configure(ServerOptions& options) override {
    HostileTest::configure(options);
    options.worker_threads = 2;
    options.priority_worker_threads = 1;
  }
  // Stands in for a slow analytic read (GET /ab-tests over huge tests, /dashboard).
  void add_routes(Router& router) override {
    router.add(Route("GET", api("/test/slow-read"), {Role::kAdmin, Role::kAnalyst},
                     [this](const Request&, const AuthContext&) {
                       ++slow_started_;
                       std::this_thread::sleep_for(Millis(1500));
                       return Response::json(200, {{"slow", true}});
                     }));
  }
  std::atomic<int> slow_started_{0};
};

// Before: the 2-thread pool was shared, and an ingestion call waited for the slow reads.
TEST_F(PriorityPoolTest, IngestionCompletesWhileSlowReadsOccupyTheNormalPool) {
  std::vector<std::future<int>> slow;
  for (int i = 0; i < 4; ++i) {
    slow.push_back(std::async(std::launch::async, [this] {
      return call("GET", api("/test/slow-read"), "", keys_["analyst"]).status;
    }));
  }
  while (slow_started_ < 2) std::this_thread::sleep_for(Millis(5));
  const auto start = SteadyClock::now();
  HttpReply ingested = call("POST", api("/events"),
                            R"({"events": [{"type": "user", "user_id": "u1", "tier": "free", )"
                            R"("signup_at": "2024-01-01T00:00:00Z"}]})",
                            keys_["service"]);
  const auto took = SteadyClock::now() - start;
  EXPECT_EQ(ingested.status, 200) << ingested.body;
  EXPECT_LT(took, Millis(700)) << "ingestion waited behind slow reads";
  for (auto& future : slow) EXPECT_EQ(future.get(), 200);
}

}  // namespace
}  // namespace fulcrum::api::testing
