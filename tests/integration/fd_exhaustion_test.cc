// A real `fulcrum serve` whose file-descriptor limit (RLIMIT_NOFILE) is lowered in the child
// before exec, then flooded with more connections than it may open. accept() fails with
// EMFILE while the connections wait in the backlog; the accept loop must back off instead
// of retrying at once (before the fix it spun at 100% CPU), and serve again once
// descriptors are free.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

const std::string kFulcrum = std::string(FULCRUM_BINARY_DIR) + "/src/cli/fulcrum";

int connect_loopback(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  timeval timeout{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  return fd;
}

int healthz_status(int port) {
  const int fd = connect_loopback(port);
  if (fd < 0) return 0;
  const std::string request = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  char buffer[256] = {};
  const ssize_t n = ::recv(fd, buffer, sizeof buffer - 1, 0);
  ::close(fd);
  return n >= 12 ? std::atoi(buffer + 9) : 0;
}

// User plus system CPU time of `pid`, in seconds (/proc/<pid>/stat fields 14 and 15).
double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string field;
  long ticks = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stol(field);
  }
  return static_cast<double>(ticks) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

TEST(FdExhaustionTest, AcceptLoopBacksOffWhenOutOfDescriptorsAndRecovers) {
  std::random_device random;
  const auto dir = std::filesystem::temp_directory_path() /
                   ("fulcrum_fd_" + std::to_string(random()) + std::to_string(random()));
  std::filesystem::create_directories(dir);
  const std::string store = (dir / "f.db").string();
  int out[2];
  ASSERT_EQ(::pipe(out), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    rlimit limit{64, 64};
    ::setrlimit(RLIMIT_NOFILE, &limit);
    ::dup2(out[1], STDOUT_FILENO);
    ::close(out[0]);
    ::close(out[1]);
    ::execl(kFulcrum.c_str(), kFulcrum.c_str(), "--store", store.c_str(), "serve", "--port", "0",
            "--web-dir", "", static_cast<char*>(nullptr));
    std::_Exit(127);
  }
  ::close(out[1]);
  std::string line;
  char c;
  while (line.find('\n') == std::string::npos && ::read(out[0], &c, 1) == 1) line += c;
  const std::size_t colon = line.rfind(':', line.find(" (store"));
  ASSERT_NE(line.find("serving on"), std::string::npos) << line;
  const int port = std::atoi(line.c_str() + colon + 1);
  ASSERT_EQ(healthz_status(port), 200);

  // Far more connections than 64 descriptors: the rest wait in the listen backlog.
  std::vector<int> clients;
  for (int i = 0; i < 200; ++i) {
    const int fd = connect_loopback(port);
    if (fd >= 0) clients.push_back(fd);
  }
  ASSERT_GT(clients.size(), 100u);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const double cpu_before = cpu_seconds(pid);
  const auto wall_before = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const double cpu_used = cpu_seconds(pid) - cpu_before;
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                                    wall_before).count();
  EXPECT_LT(cpu_used / wall, 0.15) << "the accept loop spins: " << cpu_used << " s CPU in "
                                   << wall << " s";

  for (int fd : clients) ::close(fd);
  int status = 0;
  for (int attempt = 0; attempt < 100 && status != 200; ++attempt) {
    status = healthz_status(port);
    if (status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(status, 200) << "serves again once descriptors are free";

  ::kill(pid, SIGTERM);
  int wait_status = 0;
  ::waitpid(pid, &wait_status, 0);
  ::close(out[0]);
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}

}  // namespace
