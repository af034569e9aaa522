// A real webhook receiver for tests: an HTTP server on a loopback port that records every
// request, answers with a scripted status and de-duplicates on the idempotency id as a
// receiver's application should. Header-only, Boost.Beast; used by tests/automation and by
// tests/integration (which drives the `fulcrum` binary).
#pragma once

#include <utility>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace fulcrum::automation::testing {

struct ReceivedRequest {
  std::string target;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  int answered = 0;
};

class WebhookReceiver {
 public:
  // `answer` picks the status of each request (default 200).
  WebhookReceiver() : acceptor_(io_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    thread_ = std::thread([this] { serve(); });
  }
  ~WebhookReceiver() {
    stopping_ = true;
    boost::system::error_code ignored;
    // Wake the blocking accept.
    boost::asio::ip::tcp::socket poke(io_);
    poke.connect(acceptor_.local_endpoint(), ignored);
    thread_.join();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  std::string url(const std::string& path = "/hooks") const {
    return "http://127.0.0.1:" + std::to_string(port()) + path;
  }
  void set_answer(std::function<int(const ReceivedRequest&, int index)> answer) {
    std::lock_guard lock(mutex_);
    answer_ = std::move(answer);
  }
  std::vector<ReceivedRequest> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  // Bodies of the requests answered 2xx, first per idempotency id: what the receiver's
  // application processed after its own de-duplication.
  std::vector<ReceivedRequest> processed() const {
    std::lock_guard lock(mutex_);
    std::vector<ReceivedRequest> out;
    std::set<std::string> seen;
    for (const auto& r : requests_) {
      if (r.answered < 200 || r.answered >= 300) continue;
      auto id = r.headers.find("idempotency-key");
      const std::string key = id == r.headers.end() ? "" : id->second;
      if (seen.insert(key).second) out.push_back(r);
    }
    return out;
  }

 private:
  void serve() {
    namespace http = boost::beast::http;
    while (!stopping_) {
      boost::asio::ip::tcp::socket socket(io_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec || stopping_) break;
      boost::beast::flat_buffer buffer;
      http::request<http::string_body> request;
      http::read(socket, buffer, request, ec);
      if (ec) continue;
      ReceivedRequest received;
      received.target = std::string(request.target());
      received.body = request.body();
      for (const auto& field : request) {
        std::string name(field.name_string());
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        received.headers[name] = std::string(field.value());
      }
      int status = 200;
      {
        std::lock_guard lock(mutex_);
        if (answer_) status = answer_(received, static_cast<int>(requests_.size()));
        received.answered = status;
        requests_.push_back(received);
      }
      http::response<http::string_body> response{static_cast<http::status>(status), 11};
      response.body() = "{}";
      response.keep_alive(false);
      response.prepare_payload();
      http::write(socket, response, ec);
      socket.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
    }
  }

  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mutex_;
  std::function<int(const ReceivedRequest&, int)> answer_;
  std::vector<ReceivedRequest> requests_;
};

}  // namespace fulcrum::automation::testing
