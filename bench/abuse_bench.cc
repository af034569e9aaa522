// Abuse benchmark (issue 12), loopback only, stops by itself. A real `fulcrum serve`
// process over a fresh SQLite store is put under: 500 slow connections trickling header
// bytes (reconnecting when the server drops them), 2,000 idle connections, and a flood of
// failed logins (wrong API keys, back to back on keep-alive connections). Meanwhile one
// client measures GET /healthz and POST /ab-tests/{id}/assign latency (a new user per call,
// an exposure written and audited before the answer). The same measurement runs first on
// a quiet server: that is the baseline. Reports p50/p99/max per route, the failed-login
// answers by status, and the server's peak RSS (VmHWM from /proc/<pid>/status). Exits 1
// when under abuse p99 >= 50 ms for either route or the peak RSS >= 256 MB.
//
//   build/bench/abuse_bench [path/to/fulcrum] [seconds under abuse, default 20]
//
// The abusive connections come from 127.0.0.10-17 (idle), 127.0.0.20-21 (slow) and
// 127.0.0.30 (failed logins), the measurement from 127.0.0.1: the whole of 127/8 is
// loopback, and the server's per-address limit (256) applies to each address.
#include <utility>

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
const std::string kApi = "/api/automated-optimization";

std::string run(const std::string& command) {
  std::string output;
  FILE* pipe = ::popen(command.c_str(), "r");
  char buffer[512];
  while (pipe && std::fgets(buffer, sizeof buffer, pipe)) output += buffer;
  if (pipe) ::pclose(pipe);
  return output;
}

std::string status_field(pid_t pid, const std::string& name) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name + ":", 0) == 0) {
      std::string value = line.substr(name.size() + 1);
      value.erase(0, value.find_first_not_of(" \t"));
      return value;
    }
  }
  return "?";
}

long kib_of(const std::string& value) { return std::atol(value.c_str()); }

// One blocking keep-alive client from 127.0.0.1 (the measurement side).
class Client {
 public:
  explicit Client(int port) : stream_(io_), port_(port) { connect(); }
  void connect() {
    boost::system::error_code ec;
    stream_.socket().close(ec);
    stream_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                                  static_cast<std::uint16_t>(port_)));
    buffer_.clear();
  }
  // Status of one call (0: transport error, after which the client reconnects).
  int call(http::verb method, const std::string& target, const std::string& bearer,
           const std::string& body, std::string* out = nullptr) {
    http::request<http::string_body> request{method, target, 11};
    request.set(http::field::host, "127.0.0.1");
    if (!bearer.empty()) request.set(http::field::authorization, "Bearer " + bearer);
    if (!body.empty() || method == http::verb::post) {
      request.set(http::field::content_type, "application/json");
      request.body() = body;
    }
    request.keep_alive(true);
    request.prepare_payload();
    boost::system::error_code ec;
    http::write(stream_, request, ec);
    http::response<http::string_body> response;
    if (!ec) http::read(stream_, buffer_, response, ec);
    if (ec) {
      connect();
      return 0;
    }
    if (out) *out = response.body();
    if (!response.keep_alive()) connect();
    return static_cast<int>(response.result_int());
  }

 private:
  asio::io_context io_;
  beast::tcp_stream stream_;
  int port_;
  beast::flat_buffer buffer_;
};

struct Latencies {
  std::vector<double> millis;
  int failures = 0;
  double percentile(double p) const {
    if (millis.empty()) return 0;
    std::vector<double> sorted = millis;
    std::sort(sorted.begin(), sorted.end());
    const std::size_t index =
        std::min(sorted.size() - 1, static_cast<std::size_t>(p * static_cast<double>(sorted.size())));
    return sorted[index];
  }
  std::string summary() const {
    char text[200];
    std::snprintf(text, sizeof text, "n=%zu p50=%.2f ms p99=%.2f ms max=%.2f ms failures=%d",
                  millis.size(), percentile(0.5), percentile(0.99),
                  millis.empty() ? 0.0 : *std::max_element(millis.begin(), millis.end()),
                  failures);
    return text;
  }
};

// Alternates /healthz and assign (a new user each) for `seconds`, one call every 10 ms.
void measure(int port, const std::string& key, const std::string& test_id, double seconds,
             Latencies& healthz, Latencies& assign, int& user_counter) {
  Client client(port);
  const auto end = SteadyClock::now() + std::chrono::duration<double>(seconds);
  while (SteadyClock::now() < end) {
    auto start = SteadyClock::now();
    int status = client.call(http::verb::get, "/healthz", "", "");
    double took = std::chrono::duration<double, std::milli>(SteadyClock::now() - start).count();
    if (status == 200) healthz.millis.push_back(took); else ++healthz.failures;
    const std::string body =
        R"({"user_id": "bench_user_)" + std::to_string(++user_counter) + R"("})";
    start = SteadyClock::now();
    status = client.call(http::verb::post, kApi + "/ab-tests/" + test_id + "/assign", key, body);
    took = std::chrono::duration<double, std::milli>(SteadyClock::now() - start).count();
    if (status == 200) assign.millis.push_back(took); else ++assign.failures;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// --- the abusers: one io_context thread, plain callbacks --------------------------------

struct Abuse {
  asio::io_context io;
  tcp::endpoint server;
  std::atomic<bool> stop{false};
  std::vector<std::unique_ptr<tcp::socket>> idle;
  std::atomic<long> idle_open{0}, slow_open{0}, slow_reconnects{0};
  std::map<int, long> login_answers;  // status -> count (touched on the io thread only)
  std::mutex login_mutex;

  tcp::socket bound_socket(const std::string& from) {
    tcp::socket socket(io);
    socket.open(tcp::v4());
    socket.bind({asio::ip::make_address(from), 0});
    return socket;
  }

  void start_idle(int count) {
    for (int i = 0; i < count; ++i) {
      auto socket = std::make_unique<tcp::socket>(bound_socket("127.0.0." + std::to_string(10 + i / 250)));
      tcp::socket* raw = socket.get();
      idle.push_back(std::move(socket));
      raw->async_connect(server, [this](const boost::system::error_code& ec) {
        if (!ec) ++idle_open;
      });
    }
  }

  // One slow client: connects, sends one header byte every 500 ms, never finishes the head;
  // reconnects when the server closes it (read timeout).
  struct Slow : std::enable_shared_from_this<Slow> {
    Abuse& abuse;
    tcp::socket socket;
    asio::steady_timer timer;
    std::string from;
    std::size_t sent = 0;
    char sink[512];
    Slow(Abuse& a, std::string address)
        : abuse(a), socket(a.io), timer(a.io), from(std::move(address)) {}
    void begin() {
      boost::system::error_code ec;
      socket.close(ec);
      socket = abuse.bound_socket(from);
      sent = 0;
      auto self = shared_from_this();
      socket.async_connect(abuse.server, [self](const boost::system::error_code& error) {
        if (error) return self->retry();
        ++self->abuse.slow_open;
        self->watch();
        self->tick();
      });
    }
    void retry() {
      if (abuse.stop) return;
      auto self = shared_from_this();
      timer.expires_after(std::chrono::milliseconds(200));
      timer.async_wait([self](const boost::system::error_code&) { self->begin(); });
    }
    void watch() {  // the server's answer or close ends this connection
      auto self = shared_from_this();
      socket.async_read_some(asio::buffer(sink), [self](const boost::system::error_code& error,
                                                        std::size_t) {
        if (!error) return self->watch();
        --self->abuse.slow_open;
        ++self->abuse.slow_reconnects;
        self->timer.cancel();
        if (!self->abuse.stop) self->begin();
      });
    }
    void tick() {
      if (abuse.stop) return;
      static const std::string kHead =
          "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + std::string(8000, 'a');
      auto self = shared_from_this();
      const char* byte = kHead.data() + (sent++ % kHead.size());
      asio::async_write(socket, asio::buffer(byte, 1),
                        [self](const boost::system::error_code& error, std::size_t) {
                          if (error) return;
                          self->timer.expires_after(std::chrono::milliseconds(500));
                          self->timer.async_wait([self](const boost::system::error_code& e) {
                            if (!e) self->tick();
                          });
                        });
    }
  };
  std::vector<std::shared_ptr<Slow>> slow;

  void start_slow(int count) {
    for (int i = 0; i < count; ++i) {
      slow.push_back(std::make_shared<Slow>(*this, "127.0.0." + std::to_string(20 + i / 250)));
      slow.back()->begin();
    }
  }

  // Failed logins: wrong keys, back to back, on keep-alive connections from 127.0.0.30.
  struct Guesser : std::enable_shared_from_this<Guesser> {
    Abuse& abuse;
    tcp::socket socket;
    beast::flat_buffer buffer;
    http::request<http::empty_body> request;
    http::response<http::string_body> response;
    std::mt19937_64 random{std::random_device{}()};
    explicit Guesser(Abuse& a) : abuse(a), socket(a.io) {}
    void begin() {
      if (abuse.stop) return;
      boost::system::error_code ec;
      socket.close(ec);
      socket = abuse.bound_socket("127.0.0.30");
      buffer.clear();
      auto self = shared_from_this();
      socket.async_connect(abuse.server, [self](const boost::system::error_code& error) {
        if (error) return;
        self->next();
      });
    }
    void next() {
      if (abuse.stop) return;
      char guess[64];
      std::snprintf(guess, sizeof guess, "Bearer fk_%016llx%016llx",
                    static_cast<unsigned long long>(random()),
                    static_cast<unsigned long long>(random()));
      request = {http::verb::get, kApi + "/ab-tests", 11};
      request.set(http::field::host, "127.0.0.1");
      request.set(http::field::authorization, guess);
      request.keep_alive(true);
      auto self = shared_from_this();
      http::async_write(socket, request, [self](const boost::system::error_code& error,
                                                std::size_t) {
        if (error) return self->begin();
        self->response = {};
        http::async_read(self->socket, self->buffer, self->response,
                         [self](const boost::system::error_code& read_error, std::size_t) {
                           if (read_error) return self->begin();
                           {
                             std::lock_guard lock(self->abuse.login_mutex);
                             ++self->abuse.login_answers[self->response.result_int()];
                           }
                           if (!self->response.keep_alive()) return self->begin();
                           self->next();
                         });
      });
    }
  };
  std::vector<std::shared_ptr<Guesser>> guessers;

  void start_guessers(int count) {
    for (int i = 0; i < count; ++i) {
      guessers.push_back(std::make_shared<Guesser>(*this));
      guessers.back()->begin();
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  const std::string fulcrum =
      argc > 1 ? argv[1] : std::string(FULCRUM_BINARY_DIR) + "/src/cli/fulcrum";
  const double abuse_seconds = argc > 2 ? std::atof(argv[2]) : 20.0;
  // 2,500+ sockets here and as many in the server: raise our own descriptor limit.
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = limit.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &limit);

  std::random_device random;
  const auto dir = std::filesystem::temp_directory_path() /
                   ("fulcrum_abuse_" + std::to_string(random()) + std::to_string(random()));
  std::filesystem::create_directories(dir);
  const std::string store = (dir / "abuse.db").string();
  const std::string keys = run(fulcrum + " --store " + store + " keys create --role admin");
  const std::size_t at = keys.find("secret: ");
  if (at == std::string::npos) {
    std::cerr << "cannot create a key: " << keys << "\n";
    return 2;
  }
  const std::string key = keys.substr(at + 8, keys.find('\n', at) - at - 8);

  int out[2];
  if (::pipe(out) != 0) return 2;
  const pid_t pid = ::fork();
  if (pid == 0) {
    rlimit server_limit{8192, 8192};
    if (limit.rlim_max < 8192) server_limit = {limit.rlim_max, limit.rlim_max};
    ::setrlimit(RLIMIT_NOFILE, &server_limit);
    ::dup2(out[1], STDOUT_FILENO);
    ::close(out[0]);
    ::close(out[1]);
    ::execl(fulcrum.c_str(), fulcrum.c_str(), "--store", store.c_str(), "serve", "--port", "0",
            "--web-dir", "", static_cast<char*>(nullptr));
    std::_Exit(127);
  }
  ::close(out[1]);
  std::string line;
  char c;
  while (line.find('\n') == std::string::npos && ::read(out[0], &c, 1) == 1) line += c;
  const std::size_t colon = line.rfind(':', line.find(" (store"));
  if (line.find("serving on") == std::string::npos) {
    std::cerr << "server did not start: " << line << "\n";
    return 2;
  }
  const int port = std::atoi(line.c_str() + colon + 1);

  // One running A/B test to assign users to.
  Client setup(port);
  std::string created;
  setup.call(http::verb::post, kApi + "/ab-tests", key,
             R"({"test_name": "Abuse", "feature_name": "account_linking",
                 "success_metrics": ["conversion_rate"],
                 "test_groups": {"control": {"ui": "old"}, "variant": {"ui": "new"}},
                 "traffic_allocation": {"control": 0.5, "variant": 0.5}})",
             &created);
  const std::string test_id = nlohmann::json::parse(created, nullptr, false).value("test_id", "");
  if (test_id.empty() ||
      setup.call(http::verb::post, kApi + "/ab-tests/" + test_id + "/start", key, "") != 200) {
    std::cerr << "cannot create and start a test: " << created << "\n";
    return 2;
  }

  int users = 0;
  Latencies quiet_healthz, quiet_assign;
  measure(port, key, test_id, 5.0, quiet_healthz, quiet_assign, users);
  const long quiet_rss = kib_of(status_field(pid, "VmRSS"));

  Abuse abuse;
  abuse.server = {asio::ip::make_address("127.0.0.1"), static_cast<std::uint16_t>(port)};
  abuse.start_idle(2000);
  abuse.start_slow(500);
  abuse.start_guessers(8);
  std::thread abuser([&abuse] {
    auto guard = asio::make_work_guard(abuse.io);
    while (!abuse.stop) abuse.io.run_for(std::chrono::milliseconds(100));
  });
  std::this_thread::sleep_for(std::chrono::seconds(3));  // let the connections pile up
  Latencies abused_healthz, abused_assign;
  measure(port, key, test_id, abuse_seconds, abused_healthz, abused_assign, users);
  std::string metrics;
  Client(port).call(http::verb::get, "/metrics", "", "", &metrics);
  const std::string hwm = status_field(pid, "VmHWM");
  const std::string rss = status_field(pid, "VmRSS");
  const long idle_open = abuse.idle_open, slow_open = abuse.slow_open;
  abuse.stop = true;
  abuser.join();

  ::kill(pid, SIGTERM);
  int wait_status = 0;
  ::waitpid(pid, &wait_status, 0);
  ::close(out[0]);
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);

  auto metric = [&metrics](const std::string& prefix) {
    std::istringstream lines(metrics);
    std::string found;
    for (std::string l; std::getline(lines, l);) {
      if (l.rfind(prefix, 0) == 0) found += "  " + l + "\n";
    }
    return found;
  };
  std::cout << "quiet server (baseline), 5 s:\n"
            << "  GET /healthz  " << quiet_healthz.summary() << "\n"
            << "  POST assign   " << quiet_assign.summary() << "\n"
            << "  VmRSS " << quiet_rss << " kB\n"
            << "under abuse, " << abuse_seconds << " s (2000 idle, 500 slow, 8 failed-login "
            << "connections):\n"
            << "  GET /healthz  " << abused_healthz.summary() << "\n"
            << "  POST assign   " << abused_assign.summary() << "\n"
            << "  idle connections open " << idle_open << ", slow open " << slow_open
            << ", slow reconnects " << abuse.slow_reconnects << "\n"
            << "  failed-login answers:";
  for (const auto& [status, count] : abuse.login_answers) std::cout << " " << status << "x" << count;
  std::cout << "\n  server VmHWM " << hwm << ", VmRSS " << rss << "\n"
            << metric("fulcrum_http_open_connections") << metric("fulcrum_http_auth_failures")
            << metric("fulcrum_http_rate_limited") << metric("fulcrum_http_refused_connections");
  const bool ok = abused_healthz.percentile(0.99) < 50 && abused_assign.percentile(0.99) < 50 &&
                  abused_healthz.failures == 0 && abused_assign.failures == 0 &&
                  kib_of(hwm) < 256 * 1024;
  std::cout << (ok ? "PASS" : "FAIL") << ": p99 < 50 ms for both routes and peak RSS < 256 MB\n";
  return ok ? 0 : 1;
}
