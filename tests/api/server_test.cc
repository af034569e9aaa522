// The HTTP framework over real loopback connections: health, metrics, static files, errors,
// body limit, slow clients, keep-alive and graceful shutdown.
#include <csignal>
#include <fstream>
#include <future>
#include <thread>

#include "api_test_support.h"

namespace fulcrum::api::testing {
namespace {

class ServerTest : public ApiServerTest {
 protected:
  void configure(ServerOptions& options) override {
    for (const char* sub : {"src", "vendor/lib", "tests", "node_modules/pkg", "scripts"}) {
      std::filesystem::create_directories(dir_ / "web" / sub);
    }
    std::ofstream(dir_ / "web" / "index.html") << "<html>fulcrum dashboard</html>";
    std::ofstream(dir_ / "web" / "app.css") << "body{}";
    std::ofstream(dir_ / "web" / "src" / "app.js") << "console.log(1);";
    std::ofstream(dir_ / "web" / "vendor" / "lib" / "lib.js") << "export default 1;";
    // Files that live beside the dashboard but are not part of it.
    for (const char* other : {"package.json", "package-lock.json", "README.md", "tests/e2e.mjs",
                              "node_modules/pkg/index.js", "scripts/vendor.mjs"}) {
      std::ofstream(dir_ / "web" / other) << "not for browsers";
    }
    std::ofstream(dir_ / "secret.txt") << "outside web dir";
    options.web_dir = (dir_ / "web").string();
    options.body_limit_bytes = 1024;
    options.read_timeout = std::chrono::milliseconds(300);
    options.shutdown_grace = std::chrono::milliseconds(5000);
  }
  // A route that takes a while, to hold a request in flight across shutdown.
  void add_routes(Router& router) override {
    router.add(Route("POST", "/test/slow", {},
                     [this](const Request& request, const AuthContext&) {
                       slow_started_.set_value();
                       std::this_thread::sleep_for(std::chrono::milliseconds(400));
                       return Response::json(200, {{"echo", request.body}});
                     }));
  }
  std::promise<void> slow_started_;
};

TEST_F(ServerTest, HealthzNeedsNoCredentialsAndAnswersJson) {
  HttpReply reply = call("GET", "/healthz");
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.json()["status"], "ok");
  // Any credential (even a user token) may call it too.
  EXPECT_EQ(call("GET", "/healthz", "", keys_["analyst"]).status, 200);
}

TEST_F(ServerTest, MetricsCountRequestsByRouteAndStatus) {
  call("GET", "/healthz");
  call("GET", "/healthz");
  call("GET", api("/no-such-route"));
  HttpReply reply = call("GET", "/metrics");
  ASSERT_EQ(reply.status, 200);
  EXPECT_NE(reply.header("content-type").find("text/plain"), std::string::npos);
  EXPECT_NE(reply.body.find(
                R"(fulcrum_http_requests_total{method="GET",route="/healthz",status="200"} 2)"),
            std::string::npos)
      << reply.body;
  EXPECT_NE(reply.body.find(R"(route="other",status="404")"), std::string::npos);
  EXPECT_NE(reply.body.find("fulcrum_http_request_duration_seconds_bucket{"), std::string::npos);
}

TEST_F(ServerTest, ServesDashboardFilesAndIndexAtRoot) {
  HttpReply index = call("GET", "/");
  EXPECT_EQ(index.status, 200);
  EXPECT_EQ(index.body, "<html>fulcrum dashboard</html>");
  EXPECT_NE(index.header("content-type").find("text/html"), std::string::npos);
  HttpReply script = call("GET", "/src/app.js");
  EXPECT_EQ(script.status, 200);
  EXPECT_NE(script.header("content-type").find("javascript"), std::string::npos);
  EXPECT_EQ(call("GET", "/missing.css").status, 404);
  EXPECT_EQ(call("GET", "/../secret.txt").status, 404);
  EXPECT_EQ(call("GET", "/%2e%2e/secret.txt").status, 404);
  EXPECT_EQ(call("GET", "/src/%2e%2e/%2e%2e/secret.txt").status, 404);
  EXPECT_EQ(call("GET", "/app.css").status, 200);
  EXPECT_EQ(call("GET", "/vendor/lib/lib.js").status, 200);
}

// Only the dashboard's own files: the package manifest, lock file, README, tests, scripts
// and node_modules sit in the same directory and must not be served.
TEST_F(ServerTest, ServesOnlyTheDashboardsOwnFiles) {
  for (const char* path : {"/package.json", "/package-lock.json", "/README.md", "/tests/e2e.mjs",
                           "/node_modules/pkg/index.js", "/scripts/vendor.mjs", "/src/",
                           "/src", "/vendor"}) {
    HttpReply reply = call("GET", path);
    EXPECT_EQ(reply.status, 404) << path;
    EXPECT_EQ(reply.body.find("not for browsers"), std::string::npos) << path;
  }
}

TEST_F(ServerTest, DashboardResponsesCarryBrowserHardeningHeaders) {
  for (const char* path : {"/", "/src/app.js", "/app.css", "/package.json"}) {
    HttpReply reply = call("GET", path);
    const std::string csp = reply.header("content-security-policy");
    EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << path << ": " << csp;
    EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << path;
    EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos) << path;
    EXPECT_EQ(reply.header("x-frame-options"), "DENY") << path;
    EXPECT_EQ(reply.header("x-content-type-options"), "nosniff") << path;
    EXPECT_EQ(reply.header("referrer-policy"), "no-referrer") << path;
  }
  // API answers are not rendered by browsers, but must not be sniffed either.
  EXPECT_EQ(call("GET", "/healthz").header("x-content-type-options"), "nosniff");
  EXPECT_EQ(call("GET", api("/ab-tests")).header("x-content-type-options"), "nosniff");
}

TEST_F(ServerTest, UnknownRoutesAndMethodsGetProblemJson) {
  HttpReply missing = call("GET", api("/nothing-here"), "", keys_["admin"]);
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.header("content-type"), "application/problem+json");
  EXPECT_EQ(missing.json()["status"], 404);
  HttpReply wrong_method = call("DELETE", "/healthz");
  EXPECT_EQ(wrong_method.status, 405);
  EXPECT_EQ(wrong_method.header("allow"), "GET");
}

TEST_F(ServerTest, BodyOverTheLimitIs413) {
  HttpReply reply = call("POST", "/test/slow", std::string(4096, 'x'));
  EXPECT_EQ(reply.status, 413);
  EXPECT_EQ(reply.header("content-type"), "application/problem+json");
  EXPECT_EQ(reply.json()["field"], "body");
}

TEST_F(ServerTest, KeepAliveServesManyRequestsOnOneConnection) {
  HttpClient client(port_);
  for (int i = 0; i < 20; ++i) {
    HttpReply reply = client.request("GET", "/healthz");
    ASSERT_EQ(reply.status, 200);
    EXPECT_TRUE(reply.keep_alive);
  }
  HttpReply last = client.request("GET", "/healthz", "", "", "", /*keep_alive=*/false);
  EXPECT_FALSE(last.keep_alive);
}

TEST_F(ServerTest, SlowClientIsDisconnectedAfterReadTimeout) {
  HttpClient client(port_);
  // Half a request line, then silence.
  asio::write(client.socket(), asio::buffer(std::string("GET /heal")));
  const auto start = std::chrono::steady_clock::now();
  char byte;
  boost::system::error_code ec;
  client.socket().read_some(asio::buffer(&byte, 1), ec);
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
  EXPECT_LT(waited, std::chrono::seconds(3));
}

TEST_F(ServerTest, GracefulShutdownFinishesInFlightRequestAndRefusesNewOnes) {
  HttpClient idle(port_);
  ASSERT_EQ(idle.request("GET", "/healthz").status, 200);  // now idle on keep-alive
  auto in_flight = std::async(std::launch::async, [this] {
    HttpClient client(port_);
    return client.request("POST", "/test/slow", "payload", "", "text/plain");
  });
  slow_started_.get_future().wait();
  server_->shutdown();
  HttpReply reply = in_flight.get();
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.json()["echo"], "payload");
  EXPECT_FALSE(reply.keep_alive);  // told to go away after this answer
  server_->wait();
  // The idle keep-alive connection was closed, and nobody listens any more.
  char byte;
  boost::system::error_code ec;
  idle.socket().read_some(asio::buffer(&byte, 1), ec);
  EXPECT_TRUE(ec) << "idle connection still open";
  asio::io_context io;
  asio::ip::tcp::socket socket(io);
  socket.connect({asio::ip::make_address("127.0.0.1"), port_}, ec);
  EXPECT_TRUE(ec) << "server still accepting";
}

// Reads from `socket` until a blank line ends an HTTP head (or the peer closes).
std::string read_head(asio::ip::tcp::socket& socket) {
  std::string head;
  char byte;
  boost::system::error_code ec;
  while (head.find("\r\n\r\n") == std::string::npos && !ec) {
    if (socket.read_some(asio::buffer(&byte, 1), ec) == 1) head += byte;
  }
  return head;
}

// curl and others send "Expect: 100-continue" before a large body and wait up to a second
// for the interim answer: the server must give it, then read the body; a body that is too
// large is refused at once, before the client sends it.
TEST_F(ServerTest, AnswersExpect100ContinueBeforeTheBodyArrives) {
  asio::io_context io;
  asio::ip::tcp::socket socket(io);
  socket.connect({asio::ip::make_address("127.0.0.1"), port_});
  const std::string body = "continued";
  asio::write(socket, asio::buffer("POST /test/slow HTTP/1.1\r\nHost: x\r\n"
                                   "Content-Type: text/plain\r\nExpect: 100-continue\r\n"
                                   "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n"));
  EXPECT_EQ(read_head(socket).rfind("HTTP/1.1 100 Continue\r\n", 0), 0u);
  asio::write(socket, asio::buffer(body));
  const std::string final_head = read_head(socket);
  EXPECT_EQ(final_head.rfind("HTTP/1.1 200", 0), 0u) << final_head;

  asio::ip::tcp::socket large(io);
  large.connect({asio::ip::make_address("127.0.0.1"), port_});
  asio::write(large, asio::buffer(std::string("POST /test/slow HTTP/1.1\r\nHost: x\r\n"
                                              "Expect: 100-continue\r\n"
                                              "Content-Length: 4096\r\n\r\n")));
  const std::string refused = read_head(large);
  EXPECT_EQ(refused.rfind("HTTP/1.1 413", 0), 0u) << refused;
}

class SignalTest : public ServerTest {
 protected:
  void configure(ServerOptions& options) override {
    ServerTest::configure(options);
    options.handle_signals = true;
  }
};

TEST_F(SignalTest, SigtermDrainsInFlightRequestsThenStops) {
  auto in_flight = std::async(std::launch::async, [this] {
    HttpClient client(port_);
    return client.request("POST", "/test/slow", "sigterm", "", "text/plain");
  });
  slow_started_.get_future().wait();
  ASSERT_EQ(::kill(::getpid(), SIGTERM), 0);
  HttpReply reply = in_flight.get();
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.json()["echo"], "sigterm");
  server_->wait();  // returns: the signal shut the server down
}

}  // namespace
}  // namespace fulcrum::api::testing
