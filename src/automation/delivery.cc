#include "automation/delivery.h"

// <utility> first: Boost 1.74's asio headers use std::exchange without including it.
#include <utility>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/ssl.h>

#include "automation/signature.h"

namespace fulcrum::automation {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;

namespace {

template <typename Stream>
HttpPostResult exchange(asio::io_context& io, Stream& stream, http::request<http::string_body>& request,
                        std::chrono::milliseconds timeout) {
  HttpPostResult result;
  beast::get_lowest_layer(stream).expires_after(timeout);
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  beast::error_code failure;
  http::async_write(stream, request, [&](beast::error_code ec, std::size_t) {
    if (ec) {
      failure = ec;
      return;
    }
    beast::get_lowest_layer(stream).expires_after(timeout);
    http::async_read(stream, buffer, response,
                     [&](beast::error_code read_ec, std::size_t) { failure = read_ec; });
  });
  io.restart();
  io.run();
  if (failure) {
    result.error = failure.message();
    return result;
  }
  result.status_code = static_cast<int>(response.result_int());
  return result;
}

}  // namespace

HttpPostResult http_post(const std::string& url,
                         const std::vector<std::pair<std::string, std::string>>& headers,
                         const std::string& body, std::chrono::milliseconds timeout) {
  HttpPostResult result;
  auto parsed = parse_url(url);
  if (!parsed.is_ok()) {
    result.error = parsed.status().message();
    return result;
  }
  try {
    asio::io_context io;
    asio::ip::tcp::resolver resolver(io);
    beast::error_code ec;
    auto endpoints = resolver.resolve(parsed->host, parsed->port, ec);
    if (ec) {
      result.error = "resolve: " + ec.message();
      return result;
    }
    http::request<http::string_body> request{http::verb::post, parsed->target, 11};
    request.set(http::field::host, parsed->host);
    request.set(http::field::user_agent, "fulcrum-webhooks/1");
    request.set(http::field::content_type, "application/json");
    for (const auto& [name, value] : headers) request.set(name, value);
    request.body() = body;
    request.prepare_payload();

    if (parsed->scheme == "https") {
      ssl::context tls(ssl::context::tls_client);
      tls.set_default_verify_paths();
      tls.set_verify_mode(ssl::verify_peer);
      beast::ssl_stream<beast::tcp_stream> stream(io, tls);
      if (!SSL_set_tlsext_host_name(stream.native_handle(), parsed->host.c_str())) {
        result.error = "tls: cannot set the server name";
        return result;
      }
      stream.set_verify_callback(ssl::host_name_verification(parsed->host));
      beast::error_code failure;
      beast::get_lowest_layer(stream).expires_after(timeout);
      beast::get_lowest_layer(stream).async_connect(
          endpoints, [&](beast::error_code connect_ec, const asio::ip::tcp::endpoint&) {
            if (connect_ec) {
              failure = connect_ec;
              return;
            }
            stream.async_handshake(ssl::stream_base::client,
                                   [&](beast::error_code handshake_ec) { failure = handshake_ec; });
          });
      io.run();
      if (failure) {
        result.error = "connect: " + failure.message();
        return result;
      }
      return exchange(io, stream, request, timeout);
    }
    beast::tcp_stream stream(io);
    beast::error_code failure;
    stream.expires_after(timeout);
    stream.async_connect(endpoints, [&](beast::error_code connect_ec,
                                        const asio::ip::tcp::endpoint&) { failure = connect_ec; });
    io.run();
    if (failure) {
      result.error = "connect: " + failure.message();
      return result;
    }
    return exchange(io, stream, request, timeout);
  } catch (const std::exception& error) {
    result.error = error.what();
    return result;
  }
}

WebhookDispatcher::WebhookDispatcher(Store& store, const Clock& clock, RetryPolicy policy,
                                     std::chrono::milliseconds timeout, Random random)
    : store_(store), clock_(clock), policy_(policy), timeout_(timeout), random_(std::move(random)) {
  if (!random_) {
    random_ = [generator = std::make_shared<std::mt19937_64>(std::random_device{}())] {
      return std::uniform_real_distribution<double>(0.0, 1.0)(*generator);
    };
  }
}

Result<std::size_t> WebhookDispatcher::fan_out_pending(std::size_t limit) {
  auto changes = store_.pending_document_changes(limit);
  if (!changes.is_ok()) return changes.status();
  if (changes->empty()) return std::size_t{0};
  auto endpoints = list_endpoints(store_);
  if (!endpoints.is_ok()) return endpoints.status();
  Status member_error;
  auto members = [&](const std::string& campaign_id) {
    auto found = store_.campaign_members(campaign_id);
    if (!found.is_ok()) {
      member_error = found.status();
      return std::vector<Store::CampaignMember>{};
    }
    return std::move(found).value();
  };
  std::vector<WebhookDelivery> deliveries = fan_out(*changes, *endpoints, members, clock_.now());
  FULCRUM_RETURN_IF_ERROR(member_error);
  std::vector<std::int64_t> sequences;
  for (const DocumentChange& change : *changes) sequences.push_back(change.sequence);
  FULCRUM_RETURN_IF_ERROR(store_.fan_out_document_changes(sequences, deliveries));
  return deliveries.size();
}

Status WebhookDispatcher::attempt(WebhookDelivery& delivery, const Endpoint& endpoint) {
  const UnixSeconds now = clock_.now();
  std::vector<std::pair<std::string, std::string>> headers = {
      {std::string(kSignatureHeader),
       signature_header(endpoint.secret, endpoint.key_id, now, delivery.payload,
                        endpoint.previous_secret_at(now))},
      {"Fulcrum-Delivery-Id", delivery.delivery_id},
      {"Idempotency-Key", delivery.delivery_id},
      {"Fulcrum-Event-Type", delivery.event_type}};
  HttpPostResult answer = http_post(endpoint.url, headers, delivery.payload, timeout_);
  delivery.attempts += 1;
  delivery.last_status_code = answer.status_code;
  delivery.claimed_until = 0;
  const UnixSeconds after = clock_.now();
  std::lock_guard lock(mutex_);
  EndpointCounters& counters = counters_[endpoint.endpoint_id];
  if (answer.status_code >= 200 && answer.status_code < 300) {
    delivery.status = "delivered";
    delivery.delivered_at = after;
    delivery.last_error.clear();
    ++counters.delivered;
  } else {
    delivery.last_error = answer.status_code ? "HTTP " + std::to_string(answer.status_code)
                                             : answer.error.substr(0, 300);
    ++counters.failed_attempts;
    if (delivery.attempts >= policy_.max_attempts) {
      delivery.status = "dead";
      ++counters.dead;
    } else {
      delivery.next_attempt_at = after + retry_delay(policy_, delivery.attempts, random_());
    }
  }
  return Status::ok();
}

Result<std::size_t> WebhookDispatcher::send_due(std::size_t limit) {
  const UnixSeconds now = clock_.now();
  // A claim outlives one attempt (timeout) comfortably; a sender killed mid-attempt leaves
  // the delivery to be retried once the claim expires.
  const UnixSeconds claim_seconds =
      2 + 3 * std::max<UnixSeconds>(
                  1, std::chrono::duration_cast<std::chrono::seconds>(timeout_).count());
  auto due = store_.claim_webhook_deliveries(now, now + claim_seconds, limit);
  if (!due.is_ok()) return due.status();
  if (due->empty()) return std::size_t{0};
  auto endpoints = list_endpoints(store_);
  if (!endpoints.is_ok()) return endpoints.status();
  for (WebhookDelivery& delivery : *due) {
    const Endpoint* endpoint = nullptr;
    for (const Endpoint& e : *endpoints) {
      if (e.endpoint_id == delivery.endpoint_id) endpoint = &e;
    }
    if (!endpoint || !endpoint->enabled) {
      delivery.status = "dead";
      delivery.claimed_until = 0;
      delivery.last_error = "endpoint removed or disabled";
    } else {
      FULCRUM_RETURN_IF_ERROR(attempt(delivery, *endpoint));
    }
    FULCRUM_RETURN_IF_ERROR(store_.update_webhook_delivery(delivery));
  }
  return due->size();
}

Result<WebhookDelivery> WebhookDispatcher::redeliver(const std::string& delivery_id) {
  auto found = store_.get_webhook_delivery(delivery_id);
  if (!found.is_ok()) return found.status();
  if (!*found) return not_found("no webhook delivery " + delivery_id);
  WebhookDelivery delivery = **found;
  if (delivery.status == "pending") {
    return failed_precondition("delivery " + delivery_id + " is still pending");
  }
  delivery.status = "pending";
  delivery.attempts = 0;
  delivery.next_attempt_at = clock_.now();
  delivery.claimed_until = 0;
  delivery.last_error = "redelivery requested";
  FULCRUM_RETURN_IF_ERROR(store_.update_webhook_delivery(delivery));
  return delivery;
}

std::map<std::string, EndpointCounters> WebhookDispatcher::counters() const {
  std::lock_guard lock(mutex_);
  return counters_;
}

}  // namespace fulcrum::automation
