// The transactional outbox across a crash: `fulcrum serve` (SQLite) with a webhook endpoint
// whose receiver is down (answers 503); an A/B test is started through the API; the server
// is killed with SIGKILL after the change committed and before any delivery succeeded; the
// receiver recovers and a restarted server delivers the event. The receiver, de-duplicating
// on the idempotency id, processes it exactly once.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>

#include "../automation/webhook_receiver.h"
#include "integration_support.h"

namespace {

using json = nlohmann::json;
namespace http = boost::beast::http;

using fulcrum::integration::kFulcrum;
const std::string kApi = "/api/automated-optimization";

struct Reply {
  int status = 0;
  json body;
};

Reply call(int port, const std::string& method, const std::string& target, const std::string& key,
           const std::string& body = {}) {
  Reply reply;
  try {
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket socket(io);
    socket.connect({boost::asio::ip::make_address("127.0.0.1"), static_cast<std::uint16_t>(port)});
    http::request<http::string_body> request{http::string_to_verb(method), target, 11};
    request.set(http::field::host, "127.0.0.1");
    request.set(http::field::authorization, "Bearer " + key);
    request.set(http::field::content_type, "application/json");
    request.body() = body;
    request.keep_alive(false);
    request.prepare_payload();
    http::write(socket, request);
    boost::beast::flat_buffer buffer;
    http::response<http::string_body> response;
    http::read(socket, buffer, response);
    reply.status = static_cast<int>(response.result_int());
    reply.body = json::parse(response.body(), nullptr, false);
  } catch (const std::exception&) {
  }
  return reply;
}

// `fulcrum serve` on a free port with fast webhook retries.
class Server : public fulcrum::integration::ServerProcess {
 public:
  explicit Server(const std::string& store)
      : ServerProcess(store, {"--no-scheduler", "--webhook-dispatch-interval-ms", "50",
                              "--webhook-retry-base-seconds", "1", "--webhook-timeout-ms",
                              "1000"}) {}
};

template <typename Predicate>
bool wait_until(Predicate done, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
}

TEST(WebhookRestartTest, AKilledServerStillDeliversAfterRestartAndOnlyOnce) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("fulcrum_webhook_restart_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string store = (dir / "fulcrum.db").string();
  const std::string key = fulcrum::integration::create_key(store, "admin");
  ASSERT_FALSE(key.empty());

  fulcrum::automation::testing::WebhookReceiver receiver;
  std::atomic<int> answer{503};
  receiver.set_answer([&](const auto&, int) { return answer.load(); });
  std::string test_id;
  {
    Server first(store);
    ASSERT_GT(first.port(), 0);
    Reply endpoint = call(first.port(), "POST", kApi + "/webhooks", key,
                          json{{"url", receiver.url()}, {"event_types", {"test.state_changed"}}}
                              .dump());
    ASSERT_EQ(endpoint.status, 201) << endpoint.body.dump();
    Reply test = call(first.port(), "POST", kApi + "/ab-tests", key,
                      R"({"test_name":"Crash","feature_name":"f",
                          "success_metrics":["conversion_rate"],
                          "test_groups":{"control":{},"variant":{}},
                          "traffic_allocation":{"control":0.5,"variant":0.5}})");
    ASSERT_EQ(test.status, 201) << test.body.dump();
    test_id = test.body["test_id"];
    ASSERT_EQ(call(first.port(), "POST", kApi + "/ab-tests/" + test_id + "/start", key).status, 200);
    // The receiver is down: the first attempt fails. Then the server dies without a chance
    // to clean up.
    ASSERT_TRUE(wait_until([&] { return !receiver.requests().empty(); }, std::chrono::seconds(10)));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    first.stop(SIGKILL);
  }
  ASSERT_TRUE(receiver.processed().empty());
  answer = 200;
  Server second(store);
  ASSERT_GT(second.port(), 0);
  ASSERT_TRUE(wait_until([&] { return !receiver.processed().empty(); }, std::chrono::seconds(15)));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto requests = receiver.requests();
  const auto processed = receiver.processed();
  ASSERT_EQ(processed.size(), 1u);
  EXPECT_GE(requests.size(), 2u);
  for (const auto& r : requests) {
    EXPECT_EQ(r.headers.at("idempotency-key"), processed[0].headers.at("idempotency-key"));
  }
  json event = json::parse(processed[0].body);
  EXPECT_EQ(event["type"], "test.state_changed");
  EXPECT_EQ(event["subject"], test_id);
  EXPECT_EQ(event["data"]["to"], "active");
  second.stop(SIGTERM);
  std::filesystem::remove_all(dir);
}

}  // namespace
