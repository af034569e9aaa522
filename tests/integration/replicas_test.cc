// Two `fulcrum serve` replicas on one PostgreSQL database, as behind a load balancer
// (docs/postgres.md): an experiment created on one and started on the other, users and
// events ingested through both at once, every user assigned through both. The replicas must
// agree on every assignment, and the results (from either replica) must count every exposed
// user and every conversion exactly once. The audit chain written by both must verify.
// Needs FULCRUM_TEST_PG_URL (scripts/pg-test-server.sh); fails in CI without it.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using json = nlohmann::json;

const std::string kFulcrum = std::string(FULCRUM_BINARY_DIR) + "/src/cli/fulcrum";
const std::string kApi = "/api/automated-optimization";
// Every replica must sign user tokens with the same secret (docs/postgres.md).

struct Reply {
  int status = 0;
  std::string body;
  json parsed() const { return json::parse(body, nullptr, false); }
};

// One request per connection (Connection: close), enough for a test and free of
// dependencies on the server's own HTTP stack.
Reply http(int port, const std::string& method, const std::string& target,
           const std::string& bearer, const std::string& body = {}) {
  Reply reply;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return reply;
  }
  std::string request = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
                        "Connection: close\r\nAuthorization: Bearer " + bearer + "\r\n";
  if (method == "POST") {
    request +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  request += "\r\n" + body;
  for (std::size_t sent = 0; sent < request.size();) {
    const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  std::string raw;
  char buffer[65536];
  for (ssize_t n; (n = ::recv(fd, buffer, sizeof buffer, 0)) > 0;) raw.append(buffer, n);
  ::close(fd);
  const std::size_t head_end = raw.find("\r\n\r\n");
  if (raw.size() < 12 || head_end == std::string::npos) return reply;
  reply.status = std::atoi(raw.substr(9, 3).c_str());
  std::string head = raw.substr(0, head_end);
  std::string payload = raw.substr(head_end + 4);
  for (char& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (head.find("transfer-encoding: chunked") != std::string::npos) {
    std::string decoded;
    std::size_t at = 0;
    for (;;) {
      const std::size_t line_end = payload.find("\r\n", at);
      if (line_end == std::string::npos) break;
      const std::size_t size = std::stoul(payload.substr(at, line_end - at), nullptr, 16);
      if (size == 0) break;
      decoded += payload.substr(line_end + 2, size);
      at = line_end + 2 + size + 2;
    }
    payload = decoded;
  }
  reply.body = payload;
  return reply;
}

// Runs `fulcrum` to completion and returns its stdout (exit code in `exit_code`).
std::string run_cli(const std::string& arguments, int& exit_code) {
  FILE* pipe = ::popen((kFulcrum + " " + arguments + " 2>&1").c_str(), "r");
  std::string output;
  char buffer[4096];
  while (pipe && std::fgets(buffer, sizeof buffer, pipe)) output += buffer;
  const int status = pipe ? ::pclose(pipe) : -1;
  exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return output;
}

// A `fulcrum serve` child process on a port it picks itself (--port 0), which it prints.
class Replica {
 public:
  explicit Replica(const std::string& store) {
    int out[2];
    if (::pipe(out) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], STDOUT_FILENO);
      ::close(out[0]);
      ::close(out[1]);
      ::execl(kFulcrum.c_str(), kFulcrum.c_str(), "--store", store.c_str(), "serve", "--port", "0",
              "--web-dir", "", "--workers", "4", static_cast<char*>(nullptr));
      std::_Exit(127);
    }
    ::close(out[1]);
    // "fulcrum serving on http://127.0.0.1:PORT (store ...)"
    std::string line;
    char c;
    while (line.find('\n') == std::string::npos && ::read(out[0], &c, 1) == 1) line += c;
    output_fd_ = out[0];
    const std::size_t colon = line.rfind(':', line.find(" (store"));
    if (line.find("serving on") != std::string::npos && colon != std::string::npos) {
      port_ = std::atoi(line.c_str() + colon + 1);
    }
  }
  ~Replica() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    if (output_fd_ >= 0) ::close(output_fd_);
  }
  int port() const { return port_; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  int output_fd_ = -1;
};

class ReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* url = std::getenv("FULCRUM_TEST_PG_URL");
    if (url == nullptr || *url == '\0') {
      const char* ci = std::getenv("CI");
      if (ci != nullptr && std::string(ci) == "true") {
        FAIL() << "FULCRUM_TEST_PG_URL is not set: CI must run the replicas test";
      }
      GTEST_SKIP() << "FULCRUM_TEST_PG_URL not set";
    }
    url_ = url;
    schema_ = "fulcrum_replicas_" + std::to_string(::getpid()) + "_" +
              std::to_string(std::random_device{}() % 1000000);
    admin_ = PQconnectdb(url_.c_str());
    ASSERT_EQ(PQstatus(admin_), CONNECTION_OK) << PQerrorMessage(admin_);
    PQclear(PQexec(admin_, ("CREATE SCHEMA " + schema_).c_str()));
    const char separator = url_.find('?') == std::string::npos ? '?' : '&';
    store_ = url_ + separator + "options=-csearch_path%3D" + schema_;
    // One key file for the CLI and both replicas (a PostgreSQL store has no default one);
    // children inherit the environment.
    key_file_ = (std::filesystem::temp_directory_path() / (schema_ + ".keys")).string();
    ::setenv("FULCRUM_KEY_FILE", key_file_.c_str(), 1);
  }
  void TearDown() override {
    if (admin_ != nullptr) {
      PQclear(PQexec(admin_, ("SET client_min_messages = warning; DROP SCHEMA IF EXISTS " +
                              schema_ + " CASCADE")
                                 .c_str()));
      PQfinish(admin_);
    }
    ::unsetenv("FULCRUM_KEY_FILE");
    if (!key_file_.empty()) {
      std::error_code ignored;
      for (const char* suffix : {"", ".lock"}) std::filesystem::remove(key_file_ + suffix, ignored);
      std::filesystem::remove(
          key_file_.substr(0, key_file_.size() - 5) + ".audit-checkpoints", ignored);
    }
  }

  std::string url_, schema_, store_, key_file_;
  PGconn* admin_ = nullptr;
};

TEST_F(ReplicasTest, TwoReplicasAgreeOnAssignmentsAndCountEveryEvent) {
  int exit_code = 0;
  const std::string created =
      run_cli("--store '" + store_ + "' keys create --role admin", exit_code);
  ASSERT_EQ(exit_code, 0) << created;
  const std::size_t at = created.find("secret: ");
  ASSERT_NE(at, std::string::npos) << created;
  const std::string key = created.substr(at + 8, created.find('\n', at) - at - 8);

  Replica a(store_), b(store_);
  ASSERT_GT(a.port(), 0) << "replica a did not start";
  ASSERT_GT(b.port(), 0) << "replica b did not start";
  const int ports[2] = {a.port(), b.port()};

  // Created on one replica, started on the other.
  const json test = {{"test_name", "Replica test"},
                     {"feature_name", "account_linking"},
                     {"description", "two replicas"},
                     {"hypothesis", "none"},
                     {"success_metrics", {"conversion_rate"}},
                     {"test_groups", {{"control", {{"ui", "old"}}}, {"variant", {{"ui", "new"}}}}},
                     {"traffic_allocation", {{"control", 0.5}, {"variant", 0.5}}}};
  Reply create = http(ports[0], "POST", kApi + "/ab-tests", key, test.dump());
  ASSERT_EQ(create.status, 201) << create.body;
  const std::string test_id = create.parsed().value("test_id", "");
  ASSERT_FALSE(test_id.empty()) << create.body;
  Reply start = http(ports[1], "POST", kApi + "/ab-tests/" + test_id + "/start", key);
  ASSERT_EQ(start.status, 200) << start.body;

  constexpr int kUsers = 160, kChunk = 20;
  auto user_id = [](int i) { return "user-" + std::to_string(i); };

  // Users ingested through both replicas at once, in small batches.
  std::vector<std::thread> writers;
  for (int r = 0; r < 2; ++r) {
    writers.emplace_back([&, r] {
      for (int first = r * kChunk; first < kUsers; first += 2 * kChunk) {
        json events = json::array();
        for (int i = first; i < first + kChunk; ++i) {
          events.push_back({{"type", "user"},
                            {"user_id", user_id(i)},
                            {"tier", "free"},
                            {"signup_at", "2024-01-01T00:00:00Z"}});
        }
        Reply stored =
            http(ports[r], "POST", kApi + "/events", key, json{{"events", events}}.dump());
        EXPECT_EQ(stored.status, 200) << stored.body;
      }
    });
  }
  for (auto& t : writers) t.join();
  writers.clear();

  // Every user assigned through both replicas, concurrently.
  std::vector<std::map<std::string, std::string>> seen(2);
  for (int r = 0; r < 2; ++r) {
    writers.emplace_back([&, r] {
      for (int i = 0; i < kUsers; ++i) {
        const int u = r == 0 ? i : kUsers - 1 - i;  // opposite orders
        Reply assigned = http(ports[r], "POST", kApi + "/ab-tests/" + test_id + "/assign", key,
                              json{{"user_id", user_id(u)}}.dump());
        EXPECT_EQ(assigned.status, 200) << assigned.body;
        json body = assigned.parsed();
        if (body.is_object() && body["variant"].is_string()) {
          seen[r][user_id(u)] = body["variant"].get<std::string>();
        }
      }
    });
  }
  for (auto& t : writers) t.join();
  writers.clear();
  ASSERT_EQ(seen[0].size(), static_cast<std::size_t>(kUsers));
  EXPECT_EQ(seen[0], seen[1]) << "replicas disagree on assignments";

  // Conversions for every third user, sent through alternating replicas at once. Their time
  // is now, at or after every exposure.
  const long now = static_cast<long>(std::time(nullptr));
  std::map<std::string, int> users_per_variant, converters_per_variant;
  for (const auto& [user, variant] : seen[0]) ++users_per_variant[variant];
  for (int r = 0; r < 2; ++r) {
    writers.emplace_back([&, r] {
      json events = json::array();
      for (int i = r * 3; i < kUsers; i += 6) {
        events.push_back({{"type", "metric"},
                          {"user_id", user_id(i)},
                          {"metric", "conversion_rate"},
                          {"value", 1},
                          {"at", now}});
      }
      Reply stored = http(ports[r], "POST", kApi + "/events", key, json{{"events", events}}.dump());
      EXPECT_EQ(stored.status, 200) << stored.body;
    });
  }
  for (auto& t : writers) t.join();
  for (int i = 0; i < kUsers; i += 3) ++converters_per_variant[seen[0][user_id(i)]];

  // Both replicas report the same, complete counts.
  for (int r = 0; r < 2; ++r) {
    Reply results = http(ports[r], "GET", kApi + "/ab-tests/" + test_id + "/results", key);
    ASSERT_EQ(results.status, 200) << results.body;
    json body = results.parsed();
    ASSERT_TRUE(body.is_object()) << results.body;
    int total = 0;
    for (const auto& [group, users] : users_per_variant) {
      const json& analysis = body["group_analysis"][group];
      ASSERT_TRUE(analysis.is_object()) << "no group " << group << " in " << results.body;
      EXPECT_EQ(analysis["sample_size"].get<int>(), users) << group << " via replica " << r;
      const double rate = analysis["conversion_rate"].get<double>();
      EXPECT_NEAR(rate * users, converters_per_variant[group], 1e-6)
          << group << " via replica " << r;
      total += analysis["sample_size"].get<int>();
    }
    EXPECT_EQ(total, kUsers);
    if (body.contains("multi_variant_users")) {
      EXPECT_EQ(body["multi_variant_users"], 0);
    }
  }

  // Audit entries appended by both replicas (and the CLI) form one valid chain.
  const std::string verified = run_cli("--store '" + store_ + "' audit verify", exit_code);
  EXPECT_EQ(exit_code, 0) << verified;
}

}  // namespace
