// HTTP throughput and tail latency of the Fulcrum server over loopback: a small Beast/Asio
// client keeps several keep-alive connections busy (one request outstanding per connection)
// against an in-process server backed by a real SQLite file. Baseline in the same run: one
// connection that opens a new TCP connection for every request (no keep-alive).
//
// Counters: req_per_s (requests / wall seconds), p50_us and p99_us (per-request latency from
// write start to full response). Routes: GET /healthz, and with the experiments engine GET
// /ab-tests/{id} (a stored document as JSON) and POST /ab-tests/{id}/assign (assignment,
// exposure write and audit append, durable before the answer). Assign also runs with 32 and
// 64 connections: concurrent calls are what the server's group commit batches. The server
// runs 1 IO thread and 1 worker unless FULCRUM_BENCH_IO_THREADS / FULCRUM_BENCH_WORKERS say
// otherwise (the client's own thread shares the machine with them).
//
// With the flags engine: GET /api/features/{clientKey} (the GrowthBook SDK payload of 20
// flags plus the running test, served from the compiled snapshot) and POST
// /ofrep/v1/evaluate/flags/{key} (one OFREP evaluation of a flag with a targeting rule and a
// percentage rollout, Bearer sdk key), next to /healthz in the same run.
#include <utility>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <string_view>
#include <cstdlib>
#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "api/auth.h"
#include "api/server.h"
#include "store/store.h"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::awaitable;
using asio::use_awaitable;
using tcp = asio::ip::tcp;
using namespace fulcrum;

struct Target {
  http::verb method = http::verb::get;
  std::string path;
  std::string body;
  std::string bearer;
};

int env_int(const char* name, int fallback) {
  const char* value = std::getenv(name);
  return value && *value ? std::atoi(value) : fallback;
}

std::uint16_t g_port = 0;  // set once the server listens (no recursion into fixture())

// One server for the whole program: started on first use.
struct Fixture {
  std::filesystem::path dir;
  std::unique_ptr<Store> store;
  SystemClock clock;
  std::unique_ptr<api::Server> server;
  std::string admin_key, analyst_key, service_key, sdk_key, client_key;
  std::string test_id;

  Fixture() {
    std::random_device random;
    dir = std::filesystem::temp_directory_path() / ("fulcrum_http_bench_" + std::to_string(random()));
    std::filesystem::create_directories(dir);
    store = open_store((dir / "bench.db").string()).value();
    admin_key = api::create_api_key(*store, clock, "admin", "bench")->secret;
    analyst_key = api::create_api_key(*store, clock, "analyst", "bench")->secret;
    service_key = api::create_api_key(*store, clock, "service", "bench")->secret;
    auto sdk = api::create_api_key(*store, clock, "sdk", "bench");
    sdk_key = sdk->secret;
    client_key = api::client_key_for(sdk->record);
    api::ServerOptions options;
    options.port = 0;
    // FULCRUM_BENCH_IO_THREADS / FULCRUM_BENCH_WORKERS override the 1 + 1 default.
    options.io_threads = env_int("FULCRUM_BENCH_IO_THREADS", 1);
    options.worker_threads = env_int("FULCRUM_BENCH_WORKERS", 1);
    server = std::make_unique<api::Server>(*store, clock, options);
    if (!server->start().is_ok()) std::abort();
    g_port = server->port();
#ifdef FULCRUM_HAVE_EXPERIMENTS
    // Create and start one test through the API itself.
    test_id = create_test();
#endif
#ifdef FULCRUM_HAVE_FLAGS
    create_flags();
#endif
  }
  ~Fixture() {
    server.reset();
    store.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }

  std::string create_test();
  void create_flags();
};

Fixture& fixture() {
  static Fixture instance;
  return instance;
}

http::request<http::string_body> make_request(const Target& target, bool keep_alive) {
  http::request<http::string_body> request{target.method, target.path, 11};
  request.set(http::field::host, "127.0.0.1");
  if (!target.bearer.empty()) request.set(http::field::authorization, "Bearer " + target.bearer);
  if (!target.body.empty()) {
    request.set(http::field::content_type, "application/json");
    request.body() = target.body;
  }
  request.keep_alive(keep_alive);
  request.prepare_payload();
  return request;
}

std::string blocking_call(const Target& target) {
  asio::io_context io;
  beast::tcp_stream stream(io);
  stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), g_port));
  http::write(stream, make_request(target, false));
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  http::read(stream, buffer, response);
  return response.body();
}

std::string Fixture::create_test() {
  Target create{http::verb::post, std::string(api::kApiPrefix) + "/ab-tests",
                R"({"test_name": "Bench", "feature_name": "account_linking",
                    "success_metrics": ["conversion_rate"],
                    "test_groups": {"control": {"ui": "old"}, "variant": {"ui": "new"}},
                    "traffic_allocation": {"control": 0.5, "variant": 0.5}})",
                admin_key};
  auto created = nlohmann::json::parse(blocking_call(create));
  const std::string id = created.at("test_id");
  blocking_call({http::verb::post, std::string(api::kApiPrefix) + "/ab-tests/" + id + "/start",
                 "", admin_key});
  return id;
}

struct LoadResult {
  double seconds = 0;
  std::vector<double> latencies_us;
  std::int64_t failures = 0;
};

// The target with its body's "USER" placeholder replaced, so assignments are not all the
// same user.
Target for_user(const Target& target, const std::string& user) {
  Target personal = target;
  auto at = personal.body.find("USER");
  if (at != std::string::npos) personal.body.replace(at, 4, user);
  return personal;
}

// The load generator must cost far less than the server, or it measures itself: requests
// are written as raw bytes and responses read with a minimal parser (status line,
// Content-Length, body skipped), as wrk does, instead of building and parsing Beast messages.
std::string raw_request(const Target& target, bool keep_alive) {
  std::string out;
  out.reserve(256 + target.body.size());
  out.append(std::string(http::to_string(target.method))).append(" ").append(target.path);
  out.append(" HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  if (!target.bearer.empty()) out.append("Authorization: Bearer ").append(target.bearer).append("\r\n");
  if (!target.body.empty()) {
    out.append("Content-Type: application/json\r\nContent-Length: ")
        .append(std::to_string(target.body.size()))
        .append("\r\n");
  }
  if (!keep_alive) out.append("Connection: close\r\n");
  out.append("\r\n").append(target.body);
  return out;
}

// Content-Length of a response head (lines after the status line), 0 when absent.
std::size_t content_length(std::string_view head) {
  constexpr std::string_view kName = "content-length:";
  std::size_t line = head.find("\r\n");
  while (line != std::string_view::npos) {
    const std::size_t start = line + 2;
    line = head.find("\r\n", start);
    std::string_view header = head.substr(start, line == std::string_view::npos ? head.npos : line - start);
    if (header.size() > kName.size() &&
        std::equal(kName.begin(), kName.end(), header.begin(),
                   [](char a, char b) { return a == std::tolower(static_cast<unsigned char>(b)); })) {
      return static_cast<std::size_t>(std::strtoull(header.data() + kName.size(), nullptr, 10));
    }
  }
  return 0;
}

// Reads one whole response from `socket` (bytes beyond it stay in `pending`); its status.
awaitable<int> read_response(tcp::socket& socket, std::string& pending) {
  char chunk[64 * 1024];
  auto read_more = [&]() -> awaitable<void> {
    const std::size_t n = co_await socket.async_read_some(asio::buffer(chunk), use_awaitable);
    pending.append(chunk, n);
  };
  std::size_t head_end;
  while ((head_end = pending.find("\r\n\r\n")) == std::string::npos) co_await read_more();
  const int status = pending.size() > 12 ? std::atoi(pending.c_str() + 9) : 0;
  const std::size_t total = head_end + 4 + content_length(std::string_view(pending).substr(0, head_end));
  while (pending.size() < total) co_await read_more();
  pending.erase(0, total);
  co_return status;
}

// Writes `request`, reads the whole response, and records its latency since `start`.
awaitable<void> timed_exchange(tcp::socket& socket, std::string& pending, const std::string& request,
                               std::chrono::steady_clock::time_point start, LoadResult& result) {
  co_await asio::async_write(socket, asio::buffer(request), use_awaitable);
  const int status = co_await read_response(socket, pending);
  result.latencies_us.push_back(
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
          .count());
  if (status >= 400 || status == 0) ++result.failures;
}

awaitable<void> keep_alive_client(const Target& target, std::int64_t requests, LoadResult& result,
                                  int client_index) {
  auto executor = co_await asio::this_coro::executor;
  tcp::socket socket(executor);
  co_await socket.async_connect(
      tcp::endpoint(asio::ip::make_address("127.0.0.1"), g_port), use_awaitable);
  socket.set_option(tcp::no_delay(true));
  std::string pending;
  const bool per_user = target.body.find("USER") != std::string::npos;
  const std::string fixed = per_user ? std::string() : raw_request(target, true);
  for (std::int64_t i = 0; i < requests; ++i) {
    const auto start = std::chrono::steady_clock::now();
    if (per_user) {
      const std::string request = raw_request(
          for_user(target, "u" + std::to_string(client_index) + "_" + std::to_string(i)), true);
      co_await timed_exchange(socket, pending, request, start, result);
    } else {
      co_await timed_exchange(socket, pending, fixed, start, result);
    }
  }
}

// Latency here includes opening the connection, as a client without keep-alive sees it.
awaitable<void> new_connection_client(const Target& target, std::int64_t requests,
                                      LoadResult& result) {
  auto executor = co_await asio::this_coro::executor;
  for (std::int64_t i = 0; i < requests; ++i) {
    const std::string request = raw_request(for_user(target, "nc_" + std::to_string(i)), false);
    const auto start = std::chrono::steady_clock::now();
    tcp::socket socket(executor);
    co_await socket.async_connect(
        tcp::endpoint(asio::ip::make_address("127.0.0.1"), g_port), use_awaitable);
    std::string pending;
    co_await timed_exchange(socket, pending, request, start, result);
    boost::system::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_both, ignored);
  }
}

// connections == 0 means the baseline: one connection per request, sequential.
LoadResult run_load(const Target& target, int connections, std::int64_t total_requests) {
  asio::io_context io(1);
  LoadResult result;
  std::vector<LoadResult> per_client(std::max(1, connections));
  const auto start = std::chrono::steady_clock::now();
  if (connections == 0) {
    asio::co_spawn(io, new_connection_client(target, total_requests, per_client[0]),
                   asio::detached);
  } else {
    for (int c = 0; c < connections; ++c) {
      asio::co_spawn(io,
                     keep_alive_client(target, total_requests / connections, per_client[c], c),
                     asio::detached);
    }
  }
  io.run();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (auto& client : per_client) {
    result.latencies_us.insert(result.latencies_us.end(), client.latencies_us.begin(),
                               client.latencies_us.end());
    result.failures += client.failures;
  }
  return result;
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  const std::size_t index =
      std::min(values.size() - 1, static_cast<std::size_t>(p * static_cast<double>(values.size())));
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(index),
                   values.end());
  return values[index];
}

void run(benchmark::State& state, const Target& target) {
  fixture();  // start the server (sets g_port) before the first load
  const int connections = static_cast<int>(state.range(0));
  const std::int64_t requests = state.range(1);
  std::vector<double> latencies;
  double seconds = 0;
  std::int64_t served = 0, failures = 0;
  for (auto _ : state) {
    LoadResult result = run_load(target, connections, requests);
    state.SetIterationTime(result.seconds);
    seconds += result.seconds;
    served += static_cast<std::int64_t>(result.latencies_us.size());
    failures += result.failures;
    latencies.insert(latencies.end(), result.latencies_us.begin(), result.latencies_us.end());
  }
  state.counters["req_per_s"] = static_cast<double>(served) / seconds;
  state.counters["p50_us"] = percentile(latencies, 0.50);
  state.counters["p99_us"] = percentile(latencies, 0.99);
  state.counters["failures"] = static_cast<double>(failures);
  state.SetItemsProcessed(served);
}

void BM_Healthz(benchmark::State& state) { run(state, {http::verb::get, "/healthz", "", ""}); }

#ifdef FULCRUM_HAVE_FLAGS
// 20 flags like a bank app's: a targeting rule and a 30% rollout each, through the admin API.
void Fixture::create_flags() {
  for (int i = 0; i < 20; ++i) {
    const std::string key = "flag_" + std::to_string(i);
    Target create{http::verb::post, std::string(api::kApiPrefix) + "/flags",
                  R"({"key": ")" + key + R"(", "value_type": "boolean", "default_value": false,
                      "rules": [{"type": "force", "value": true,
                                 "condition": {"country": {"$in": ["GB", "IE"]},
                                               "app_version": {"$vgte": "5.2.0"}}},
                                {"type": "force", "value": true, "coverage": 0.3}]})",
                  admin_key};
    blocking_call(create);
  }
}

void BM_SdkPayload(benchmark::State& state) {
  run(state, {http::verb::get, "/api/features/" + fixture().client_key, "", ""});
}
void BM_OfrepFlag(benchmark::State& state) {
  run(state, {http::verb::post, "/ofrep/v1/evaluate/flags/flag_7",
              R"({"context": {"targetingKey": "USER", "country": "GB", "app_version": "5.1.0"}})",
              fixture().sdk_key});
}
#endif

#ifdef FULCRUM_HAVE_EXPERIMENTS
void BM_GetAbTest(benchmark::State& state) {
  run(state, {http::verb::get, std::string(api::kApiPrefix) + "/ab-tests/" + fixture().test_id,
              "", fixture().analyst_key});
}
void BM_Assign(benchmark::State& state) {
  run(state, {http::verb::post,
              std::string(api::kApiPrefix) + "/ab-tests/" + fixture().test_id + "/assign",
              R"({"user_id": "USER"})", fixture().service_key});
}
#endif

// Args: {connections (0 = baseline: new connection per request), requests per iteration}.
BENCHMARK(BM_Healthz)->Args({0, 2000})->Args({1, 20000})->Args({8, 40000})->UseManualTime()
    ->Unit(benchmark::kMillisecond)->Iterations(2);
#ifdef FULCRUM_HAVE_FLAGS
BENCHMARK(BM_SdkPayload)->Args({0, 2000})->Args({1, 20000})->Args({8, 40000})->UseManualTime()
    ->Unit(benchmark::kMillisecond)->Iterations(2);
BENCHMARK(BM_OfrepFlag)->Args({0, 2000})->Args({1, 20000})->Args({8, 40000})->UseManualTime()
    ->Unit(benchmark::kMillisecond)->Iterations(2);
#endif
#ifdef FULCRUM_HAVE_EXPERIMENTS
BENCHMARK(BM_GetAbTest)->Args({0, 2000})->Args({8, 40000})->UseManualTime()
    ->Unit(benchmark::kMillisecond)->Iterations(2);
// More connections for assign: concurrent calls are what a group commit can batch.
BENCHMARK(BM_Assign)->Args({0, 1000})->Args({1, 2000})->Args({8, 10000})->Args({32, 8000})
    ->Args({64, 16000})->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(2);
#endif

}  // namespace

BENCHMARK_MAIN();
