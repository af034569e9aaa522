// Faults survived (issue 18), each with real components and a real `fulcrum serve`:
// - the disk fills up during ingestion: SQLite on a small tmpfs the test mounts (or, where
//   mounting is not permitted, the server's RLIMIT_FSIZE) -> 507 problem, nothing of the
//   batch stored, and the server stores again once space returns;
// - PostgreSQL restarted (immediate stop, i.e. a crash) under a load of assigns and ingests
//   -> 503 while it is down, automatic reconnection, no acknowledged write lost, retries
//   (event ids, Idempotency-Key) counted once;
// - kill -9 during group-committed assigns over HTTP, OFREP and remote eval: every
//   acknowledged exposure is in the store after the crash, and the server starts again on it
//   (the store-level kill -9 test is tests/store/durability_test.cc).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "integration_support.h"
#include "store/store.h"

namespace fulcrum::integration {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

const std::string kPgScript = std::string(FULCRUM_SOURCE_DIR) + "/scripts/pg-test-server.sh";
const std::string kPgBin = "/usr/lib/postgresql/15/bin";

// A fresh directory the postgres user can reach too (the PostgreSQL test runs it as that
// user when the tests run as root).
std::filesystem::path fresh_directory(const std::string& prefix) {
  std::random_device random;
  auto dir = std::filesystem::temp_directory_path() /
             (prefix + std::to_string(random()) + std::to_string(random()));
  std::filesystem::create_directories(dir);
  std::filesystem::permissions(dir, std::filesystem::perms(0755));
  return dir;
}

const json kTest = {{"test_name", "Faults"},
                    {"feature_name", "checkout"},
                    {"success_metrics", {"conversion_rate"}},
                    {"test_groups", {{"control", {{"ui", "old"}}}, {"variant", {{"ui", "new"}}}}},
                    {"traffic_allocation", {{"control", 0.5}, {"variant", 0.5}}}};

std::string create_started_test(int port, const std::string& admin) {
  Reply created = http(port, "POST", kApi + "/ab-tests", admin, kTest.dump());
  EXPECT_EQ(created.status, 201) << created.body;
  const std::string id = created.parsed().value("test_id", "");
  Reply started = http(port, "POST", kApi + "/ab-tests/" + id + "/start", admin);
  EXPECT_EQ(started.status, 200) << started.body;
  return id;
}

// NDJSON: `count` metric events named `metric` (one batch, told apart by the name) and as
// many sessions of count/4 users over four days, for the rollups.
std::string ndjson_batch(const std::string& metric, int count, UnixSeconds day0) {
  std::string body;
  for (int i = 0; i < count; ++i) {
    const std::string user = "u" + std::to_string(i % (count / 4 + 1));
    const UnixSeconds at = day0 + (i % 4) * 86400 + i;
    body += R"({"type":"metric","user_id":")" + user + R"(","metric":")" + metric +
            R"(","at":)" + std::to_string(at) + "}\n";
    body += R"({"type":"session","user_id":")" + user + R"(","at":)" + std::to_string(at) +
            R"(,"duration_seconds":30})" + "\n";
  }
  return body;
}

std::map<std::string, int> metric_counts(Store& store) {
  std::map<std::string, int> counts;
  EXPECT_TRUE(store.scan_metric_events({}, [&](const MetricEvent& e) { ++counts[e.metric]; }).is_ok());
  return counts;
}

void expect_rollups_match_events(Store& store) {
  auto report = store.verify_rollups();
  ASSERT_TRUE(report.is_ok()) << report.status().to_string();
  EXPECT_TRUE(report->consistent()) << report->examples.front();
  std::int64_t rolled_up = 0, sessions = 0;
  ASSERT_TRUE(store.scan_user_days({}, [&](const UserDayRollup& r) { rolled_up += r.sessions; }).is_ok());
  ASSERT_TRUE(store.scan_sessions({}, [&](const SessionEvent&) { ++sessions; }).is_ok());
  EXPECT_EQ(rolled_up, sessions);
}

std::uintmax_t largest_file(const std::filesystem::path& dir) {
  std::uintmax_t largest = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.is_regular_file()) largest = std::max(largest, entry.file_size());
  }
  return largest;
}

TEST(FaultsTest, DiskFullDuringIngestionIs507StoresNothingPartialAndRecovers) {
  const auto dir = fresh_directory("fulcrum_disk_full_");
  const auto volume = dir / "volume";
  std::filesystem::create_directories(volume);
  const bool mounted = ::mount("tmpfs", volume.c_str(), "tmpfs", 0, "size=16m,mode=0755") == 0;
  const std::string limit =
      mounted ? std::string("a 16 MiB tmpfs mounted by the test")
              : "the server's RLIMIT_FSIZE (mounting was refused: " +
                    std::string(std::strerror(errno)) + ")";
  RecordProperty("disk_limit", limit);
  std::cout << "[ faults   ] disk limit: " << limit << std::endl;
  struct Cleanup {
    std::filesystem::path dir, volume;
    bool mounted;
    ~Cleanup() {
      if (mounted) ::umount2(volume.c_str(), MNT_DETACH);
      std::error_code ignored;
      std::filesystem::remove_all(dir, ignored);
    }
  } cleanup{dir, volume, mounted};

  const std::string store_path = (volume / "store.db").string();
  const std::string key = create_key(store_path, "service");
  ASSERT_FALSE(key.empty());
  std::function<void()> limit_file_size;
  if (!mounted) {
    // The server may grow no file past what exists now plus 128 KiB; SIGXFSZ ignored, so a
    // write beyond it fails with EFBIG as a full disk fails with ENOSPC.
    const rlim_t bytes = static_cast<rlim_t>(largest_file(volume) + (128u << 10));
    limit_file_size = [bytes] {
      ::signal(SIGXFSZ, SIG_IGN);
      rlimit file_size{bytes, RLIM_INFINITY};
      ::setrlimit(RLIMIT_FSIZE, &file_size);
    };
  }
  ServerProcess server(store_path, {}, {}, limit_file_size);
  ASSERT_GT(server.port(), 0) << "server did not start";
  const UnixSeconds day0 = 1767225600 - 10 * 86400;  // 2025-12-22, well before "now"
  Reply warm_up = http(server.port(), "POST", kApi + "/events/ndjson", key,
                       ndjson_batch("warm_up", 8, day0));
  ASSERT_EQ(warm_up.status, 200) << warm_up.body;

  // Fill the volume, then leave 64 KiB: room for small writes, not for the batch.
  const auto filler = volume / "filler";
  if (mounted) {
    std::ofstream out(filler, std::ios::binary);
    const std::string megabyte(1 << 20, 'x');
    while (out.write(megabyte.data(), megabyte.size())) {
    }
    out.close();
    const auto size = std::filesystem::file_size(filler);
    std::filesystem::resize_file(filler, size > (64u << 10) ? size - (64u << 10) : 0);
  }
  constexpr int kBatch = 6000;  // 12,000 records: far more than 64 (or 128) KiB of pages
  const std::string batch = ndjson_batch("refused_then_retried", kBatch, day0);
  Reply full = http(server.port(), "POST", kApi + "/events/ndjson", key, batch);
  EXPECT_EQ(full.status, 507) << full.body;
  EXPECT_TRUE(full.has_header("content-type: application/problem+json")) << full.head;
  EXPECT_TRUE(full.has_header("retry-after:")) << full.head;
  EXPECT_EQ(full.parsed().value("status", 0), 507) << full.body;
  // The server still answers, and refuses again while the disk is full.
  EXPECT_EQ(http(server.port(), "GET", "/healthz", "").status, 200);
  EXPECT_EQ(http(server.port(), "POST", kApi + "/events/ndjson", key, batch).status, 507);

  // Space returns: the same batch is stored, whole, and so is the next one.
  if (mounted) {
    std::filesystem::remove(filler);
  } else {
    rlimit unlimited{RLIM_INFINITY, RLIM_INFINITY};
    ASSERT_EQ(::prlimit(server.pid(), RLIMIT_FSIZE, &unlimited, nullptr), 0) << std::strerror(errno);
  }
  Reply retried = http(server.port(), "POST", kApi + "/events/ndjson", key, batch);
  ASSERT_EQ(retried.status, 200) << retried.body;
  EXPECT_EQ(retried.parsed().value("stored", 0), 2 * kBatch);
  Reply next = http(server.port(), "POST", kApi + "/events/ndjson", key,
                    ndjson_batch("after_recovery", 400, day0));
  ASSERT_EQ(next.status, 200) << next.body;
  server.stop(SIGTERM);

  auto store = open_store(store_path);
  ASSERT_TRUE(store.is_ok()) << store.status().to_string();
  const auto counts = metric_counts(**store);
  // Exactly one copy: neither refused attempt left any of its records behind.
  EXPECT_EQ(counts.at("refused_then_retried"), kBatch);
  EXPECT_EQ(counts.at("warm_up"), 8);
  EXPECT_EQ(counts.at("after_recovery"), 400);
  expect_rollups_match_events(**store);
}

// --- PostgreSQL restarted under load ------------------------------------------------------

// A private PostgreSQL in `dir` (scripts/pg-test-server.sh), stopped when this goes away.
class PrivatePostgres {
 public:
  explicit PrivatePostgres(const std::filesystem::path& dir) : dir_(dir) {
    int exit_code = 0;
    const std::string output = run("start '" + dir_.string() + "'", exit_code);
    const std::string marker = "export FULCRUM_TEST_PG_URL='";
    const std::size_t at = output.find(marker);
    if (exit_code != 0 || at == std::string::npos) {
      error_ = output;
      return;
    }
    url_ = output.substr(at + marker.size(), output.find('\'', at + marker.size()) -
                                                 at - marker.size());
  }
  ~PrivatePostgres() {
    int ignored = 0;
    if (!url_.empty()) run("stop '" + dir_.string() + "'", ignored);
  }
  const std::string& url() const { return url_; }
  const std::string& error() const { return error_; }
  bool halt() { return command("halt"); }
  bool resume() { return command("resume"); }

 private:
  static std::string run(const std::string& arguments, int& exit_code) {
    FILE* pipe = ::popen(("bash '" + kPgScript + "' " + arguments + " 2>&1").c_str(), "r");
    std::string output;
    char buffer[4096];
    while (pipe && std::fgets(buffer, sizeof buffer, pipe)) output += buffer;
    const int status = pipe ? ::pclose(pipe) : -1;
    exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return output;
  }
  bool command(const std::string& name) {
    int exit_code = 0;
    const std::string output = run(name + " '" + dir_.string() + "'", exit_code);
    if (exit_code != 0) ADD_FAILURE() << "pg-test-server.sh " << name << ": " << output;
    return exit_code == 0;
  }

  std::filesystem::path dir_;
  std::string url_, error_;
};

TEST(FaultsTest, PostgresRestartedUnderLoadIs503ThenReconnectsAndLosesNoAcknowledgedWrite) {
  if (!std::filesystem::exists(kPgBin + "/initdb")) {
    GTEST_SKIP() << "no PostgreSQL 15 tools at " << kPgBin << " (apt-get install postgresql)";
  }
  const auto dir = fresh_directory("fulcrum_pg_restart_");
  struct Cleanup {
    std::filesystem::path dir;
    ~Cleanup() {
      std::error_code ignored;
      std::filesystem::remove_all(dir, ignored);
    }
  } cleanup{dir};
  PrivatePostgres postgres(dir / "pg");
  ASSERT_FALSE(postgres.url().empty()) << postgres.error();
  // The test server runs with synchronous_commit=off for speed; Fulcrum's sessions here use
  // PostgreSQL's default (on), as a production server does, so a commit is durable on ack.
  const std::string store_url = postgres.url() + "?options=-csynchronous_commit%3Don";
  // A PostgreSQL store has no default key file: one for the CLI and the server (children
  // inherit the environment), removed with the directory.
  const std::string key_file = (dir / "fulcrum.keys").string();
  ::setenv("FULCRUM_KEY_FILE", key_file.c_str(), 1);
  struct UnsetKeyFile {
    ~UnsetKeyFile() { ::unsetenv("FULCRUM_KEY_FILE"); }
  } unset_key_file;
  const std::string admin = create_key(store_url, "admin");
  const std::string service = create_key(store_url, "service");
  ASSERT_FALSE(admin.empty());
  ASSERT_FALSE(service.empty());
  ServerProcess server(store_url, {"--workers", "4"});
  ASSERT_GT(server.port(), 0) << "server did not start";
  const std::string test_id = create_started_test(server.port(), admin);
  ASSERT_FALSE(test_id.empty());

  constexpr int kAssignThreads = 3, kUsersPerThread = 40, kBatches = 10, kPerBatch = 50;
  std::atomic<int> acknowledged{0}, unavailable{0}, unexpected{0};
  std::mutex mutex;
  std::map<std::string, std::string> assigned;  // acknowledged user -> variant
  std::string unexpected_example;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  auto note = [&](const Reply& reply) {
    if (reply.status == 503) {
      ++unavailable;
    } else {
      ++unexpected;
      std::lock_guard lock(mutex);
      unexpected_example = std::to_string(reply.status) + " " + reply.body;
    }
    std::this_thread::sleep_for(50ms);
  };
  std::vector<std::thread> load;
  for (int t = 0; t < kAssignThreads; ++t) {
    load.emplace_back([&, t] {
      for (int i = 0; i < kUsersPerThread && std::chrono::steady_clock::now() < deadline;) {
        const std::string user = "user-" + std::to_string(t) + "-" + std::to_string(i);
        Reply reply = http(server.port(), "POST", kApi + "/ab-tests/" + test_id + "/assign",
                           service, json{{"user_id", user}}.dump());
        if (reply.status != 200) {
          note(reply);
          continue;  // the same user again: the app retries
        }
        std::lock_guard lock(mutex);
        assigned[user] = reply.parsed().value("variant", "");
        ++acknowledged;
        ++i;
      }
    });
  }
  load.emplace_back([&] {
    for (int b = 0; b < kBatches && std::chrono::steady_clock::now() < deadline;) {
      json events = json::array();
      for (int i = 0; i < kPerBatch; ++i) {
        events.push_back({{"type", "metric"},
                          {"user_id", "user-" + std::to_string(i)},
                          {"metric", "batch_" + std::to_string(b)},
                          {"at", 1767225600 - 86400},
                          {"event_id", "b" + std::to_string(b) + "-" + std::to_string(i)}});
      }
      Reply reply = http(server.port(), "POST", kApi + "/events", service,
                         json{{"events", events}}.dump(),
                         {{"Idempotency-Key", "batch-" + std::to_string(b)}});
      if (reply.status != 200) {
        note(reply);
        continue;  // the same batch and key again
      }
      ++acknowledged;
      ++b;
    }
  });

  // Restart PostgreSQL in the middle of it: stopped at once (a crash), then started again.
  while (acknowledged < 20 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(postgres.halt());
  const auto halted_at = std::chrono::steady_clock::now();
  while (unavailable < 3 && std::chrono::steady_clock::now() < halted_at + 5s) {
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(postgres.resume());
  for (auto& thread : load) thread.join();

  EXPECT_GE(unavailable.load(), 3) << "no 503 while PostgreSQL was down";
  EXPECT_EQ(unexpected.load(), 0) << unexpected_example;
  ASSERT_EQ(acknowledged.load(), kAssignThreads * kUsersPerThread + kBatches)
      << "the server did not recover after PostgreSQL came back";
  // The server answers on fresh connections to the restarted server.
  EXPECT_EQ(http(server.port(), "GET", kApi + "/ab-tests/" + test_id, admin).status, 200);
  server.stop(SIGTERM);

  auto store = open_store(store_url);
  ASSERT_TRUE(store.is_ok()) << store.status().to_string();
  std::map<std::string, std::string> stored;
  ASSERT_TRUE((*store)
                  ->scan_exposures(test_id, [&](const ExposureEvent& e) { stored[e.user_id] = e.variant; })
                  .is_ok());
  for (const auto& [user, variant] : assigned) {
    auto found = stored.find(user);
    ASSERT_NE(found, stored.end()) << "acknowledged exposure of " << user << " lost";
    EXPECT_EQ(found->second, variant) << user;
  }
  // Retried batches (event ids and Idempotency-Key) are stored exactly once.
  const auto counts = metric_counts(**store);
  for (int b = 0; b < kBatches; ++b) {
    EXPECT_EQ(counts.at("batch_" + std::to_string(b)), kPerBatch) << "batch " << b;
  }
}

// --- kill -9 during group-committed assigns over HTTP and the flag routes -------------------

TEST(FaultsTest, Kill9DuringGroupCommitsOverHttpLosesNoAcknowledgedExposure) {
  const auto dir = fresh_directory("fulcrum_kill9_http_");
  struct Cleanup {
    std::filesystem::path dir;
    ~Cleanup() {
      std::error_code ignored;
      std::filesystem::remove_all(dir, ignored);
    }
  } cleanup{dir};
  const std::string store_path = (dir / "store.db").string();
  std::string client_key;
  const std::string admin = create_key(store_path, "admin");
  const std::string service = create_key(store_path, "service");
  const std::string sdk = create_key(store_path, "sdk", &client_key);
  ASSERT_FALSE(admin.empty());
  ASSERT_FALSE(sdk.empty());
  ASSERT_FALSE(client_key.empty());
  auto server = std::make_unique<ServerProcess>(store_path, std::vector<std::string>{"--workers", "4"});
  ASSERT_GT(server->port(), 0) << "server did not start";
  const int port = server->port();
  const std::string test_id = create_started_test(port, admin);
  ASSERT_FALSE(test_id.empty());
  // The A/B test is in the SDK payload (as an experiment rule of flag "checkout").
  for (int attempt = 0; attempt < 100; ++attempt) {
    if (http(port, "GET", "/api/features/" + client_key, "").parsed()["features"].contains("checkout")) {
      break;
    }
    std::this_thread::sleep_for(20ms);
  }

  // Assign, OFREP and remote eval in turn from 6 clients; an answer naming a variant was
  // committed (group commit) before it was sent.
  std::mutex mutex;
  std::map<std::string, std::string> acknowledged;  // user -> variant
  std::atomic<int> answers{0};
  std::atomic<bool> server_gone{false};
  std::vector<std::thread> clients;
  for (int t = 0; t < 6; ++t) {
    clients.emplace_back([&, t] {
      for (int i = 0; !server_gone; ++i) {
        const std::string user = "k" + std::to_string(t) + "-" + std::to_string(i);
        std::string variant;
        Reply reply;
        switch ((i + t) % 3) {
          case 0:
            reply = http(port, "POST", kApi + "/ab-tests/" + test_id + "/assign", service,
                         json{{"user_id", user}}.dump());
            if (reply.status == 200 && reply.parsed().value("in_experiment", false)) {
              variant = reply.parsed().value("variant", "");
            }
            break;
          case 1:
            reply = http(port, "POST", "/ofrep/v1/evaluate/flags/checkout", sdk,
                         json{{"context", {{"targetingKey", user}}}}.dump());
            if (reply.status == 200 && reply.parsed().value("reason", "") == "SPLIT") {
              variant = reply.parsed().value("variant", "");
            }
            break;
          default: {
            reply = http(port, "POST", "/api/eval/" + client_key, "",
                         json{{"attributes", {{"id", user}}}}.dump());
            const json tracks = reply.status == 200
                                    ? reply.parsed()["features"]["checkout"].value("rules", json::array())
                                    : json::array();
            if (!tracks.empty() && tracks[0].contains("tracks")) {
              variant = tracks[0]["tracks"][0]["result"].value("key", "");
            }
            break;
          }
        }
        if (reply.status == 0) {
          server_gone = true;
          break;
        }
        if (!variant.empty()) {
          std::lock_guard lock(mutex);
          acknowledged[user] = variant;
        }
        ++answers;
      }
    });
  }
  const auto deadline = std::chrono::steady_clock::now() + 8s;
  while (answers < 400 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  const int status = server->stop(SIGKILL);  // mid-way through whatever is in flight
  server_gone = true;
  for (auto& client : clients) client.join();
  ASSERT_TRUE(WIFSIGNALED(status));
  ASSERT_GT(acknowledged.size(), 50u) << "too few acknowledged exposures to test anything";

  {
    auto store = open_store(store_path);
    ASSERT_TRUE(store.is_ok()) << store.status().to_string();
    std::map<std::string, std::string> stored;
    ASSERT_TRUE((*store)
                    ->scan_exposures(test_id,
                                     [&](const ExposureEvent& e) { stored[e.user_id] = e.variant; })
                    .is_ok());
    std::size_t lost = 0;
    for (const auto& [user, variant] : acknowledged) {
      auto found = stored.find(user);
      if (found == stored.end() || found->second != variant) ++lost;
    }
    EXPECT_EQ(lost, 0u) << "of " << acknowledged.size() << " acknowledged exposures";
  }
  // The server starts again on the crashed store and gives the same answers.
  ServerProcess restarted(store_path);
  ASSERT_GT(restarted.port(), 0) << "server did not restart on the store";
  const auto& [user, variant] = *acknowledged.begin();
  Reply again = http(restarted.port(), "POST", kApi + "/ab-tests/" + test_id + "/assign", service,
                     json{{"user_id", user}}.dump());
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(again.parsed().value("variant", ""), variant);
}

}  // namespace
}  // namespace fulcrum::integration
