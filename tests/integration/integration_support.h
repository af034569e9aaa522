// What the integration tests share: plain HTTP/1.1 over loopback (one request per
// connection, no dependency on the server's own HTTP stack), running the `fulcrum` CLI, and
// `fulcrum serve` as a child process on a port it picks itself.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace fulcrum::integration {

inline const std::string kFulcrum = std::string(FULCRUM_BINARY_DIR) + "/src/cli/fulcrum";
inline const std::string kApi = "/api/automated-optimization";

struct Reply {
  int status = 0;  // 0: no answer (connection refused or closed before a response)
  std::string head;  // lower-case status line and headers
  std::string body;
  nlohmann::json parsed() const { return nlohmann::json::parse(body, nullptr, false); }
  bool has_header(const std::string& lower_case_line) const {
    return head.find(lower_case_line) != std::string::npos;
  }
};

using Headers = std::vector<std::pair<std::string, std::string>>;

// One request per connection (Connection: close); waits at most `timeout_seconds` for data.
inline Reply http(int port, const std::string& method, const std::string& target,
                  const std::string& bearer, const std::string& body = {},
                  const Headers& headers = {}, int timeout_seconds = 20) {
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
  timeval timeout{timeout_seconds, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::string request = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
                        "Connection: close\r\n";
  if (!bearer.empty()) request += "Authorization: Bearer " + bearer + "\r\n";
  for (const auto& [name, value] : headers) request += name + ": " + value + "\r\n";
  if (method == "POST" || method == "PATCH") {
    bool has_type = false;
    for (const auto& [name, value] : headers) has_type |= name == "Content-Type";
    if (!has_type) request += "Content-Type: application/json\r\n";
    request += "Content-Length: " + std::to_string(body.size()) + "\r\n";
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
  reply.head = raw.substr(0, head_end);
  std::string payload = raw.substr(head_end + 4);
  for (char& c : reply.head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (reply.head.find("transfer-encoding: chunked") != std::string::npos) {
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

// Runs `fulcrum` to completion and returns its output (exit code in `exit_code`).
inline std::string run_cli(const std::string& arguments, int& exit_code) {
  FILE* pipe = ::popen((kFulcrum + " " + arguments + " 2>&1").c_str(), "r");
  std::string output;
  char buffer[4096];
  while (pipe && std::fgets(buffer, sizeof buffer, pipe)) output += buffer;
  const int status = pipe ? ::pclose(pipe) : -1;
  exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return output;
}

// The value after "<label>: " on its own line of CLI output ("secret: ...").
inline std::string cli_value(const std::string& output, const std::string& label) {
  const std::size_t at = output.find(label + ": ");
  if (at == std::string::npos) return {};
  const std::size_t begin = at + label.size() + 2;
  return output.substr(begin, output.find('\n', begin) - begin);
}

// A new API key of `role` in the store (its secret; `client_key` set for sdk keys).
inline std::string create_key(const std::string& store, const std::string& role,
                              std::string* client_key = nullptr) {
  int exit_code = 0;
  const std::string created =
      run_cli("--store '" + store + "' keys create --role " + role, exit_code);
  if (exit_code != 0) return {};
  if (client_key) *client_key = cli_value(created, "client_key");
  return cli_value(created, "secret");
}

// `fulcrum serve` in a child process. `before_exec` runs in the child (e.g. setrlimit).
class ServerProcess {
 public:
  explicit ServerProcess(const std::string& store, std::vector<std::string> extra_args = {},
                         std::vector<std::pair<std::string, std::string>> environment = {},
                         const std::function<void()>& before_exec = {}) {
    std::vector<std::string> args = {kFulcrum, "--store", store, "serve", "--port", "0",
                                     "--web-dir", ""};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    int out[2];
    if (::pipe(out) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], STDOUT_FILENO);
      ::close(out[0]);
      ::close(out[1]);
      for (const auto& [name, value] : environment) ::setenv(name.c_str(), value.c_str(), 1);
      if (before_exec) before_exec();
      std::vector<char*> argv;
      for (std::string& arg : args) argv.push_back(arg.data());
      argv.push_back(nullptr);
      ::execv(kFulcrum.c_str(), argv.data());
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
  ~ServerProcess() { stop(SIGTERM); }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  // Sends `signal` and reaps the child; returns its wait status (-1 when not running).
  int stop(int signal) {
    int status = -1;
    if (pid_ > 0) {
      ::kill(pid_, signal);
      ::waitpid(pid_, &status, 0);
      pid_ = -1;
    }
    if (output_fd_ >= 0) {
      ::close(output_fd_);
      output_fd_ = -1;
    }
    return status;
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  int output_fd_ = -1;
};

}  // namespace fulcrum::integration
