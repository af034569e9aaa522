// Webhook I/O: fans the change feed out into deliveries and sends due deliveries over HTTP
// (Boost.Beast; TLS with certificate and host name verification for https), signed
// (signature.h), retried with back-off (webhooks.h RetryPolicy) and dead-lettered after the
// last attempt. Safe to run on several replicas: fan-out is idempotent and a delivery is
// claimed atomically before it is sent (store/automation.h).
//
// Each request carries:
//   Content-Type: application/json
//   Fulcrum-Signature: t=...,kid=...,v1=...     (signature.h)
//   Fulcrum-Delivery-Id / Idempotency-Key: the delivery id (the same on every retry)
//   Fulcrum-Event-Type: the event type
// A 2xx answer delivers; anything else (or no answer within the timeout) is a failed attempt.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <string>

#include "automation/webhooks.h"
#include "core/status.h"
#include "core/time.h"
#include "store/store.h"

namespace fulcrum::automation {

struct HttpPostResult {
  int status_code = 0;  // 0: no HTTP answer
  std::string error;    // why, when there was no answer
};
// POSTs `body` to `url` with `headers`, within `timeout`. Never throws.
HttpPostResult http_post(const std::string& url,
                         const std::vector<std::pair<std::string, std::string>>& headers,
                         const std::string& body, std::chrono::milliseconds timeout);

// Per endpoint outcome counters for /metrics.
struct EndpointCounters {
  std::int64_t delivered = 0, failed_attempts = 0, dead = 0;
};

class WebhookDispatcher {
 public:
  using Random = std::function<double()>;  // uniform in [0, 1)
  WebhookDispatcher(Store& store, const Clock& clock, RetryPolicy policy = {},
                    std::chrono::milliseconds timeout = std::chrono::milliseconds(10'000),
                    Random random = {});

  // Turns pending change-feed rows into deliveries (up to `limit` changes). Returns how many
  // deliveries it stored.
  Result<std::size_t> fan_out_pending(std::size_t limit = 200);
  // Sends the due deliveries (up to `limit`), one attempt each. Returns how many it tried.
  Result<std::size_t> send_due(std::size_t limit = 50);
  // Sets a dead (or delivered) delivery back to pending, due now, with its attempts reset.
  Result<WebhookDelivery> redeliver(const std::string& delivery_id);

  std::map<std::string, EndpointCounters> counters() const;

 private:
  Status attempt(WebhookDelivery& delivery, const Endpoint& endpoint);

  Store& store_;
  const Clock& clock_;
  RetryPolicy policy_;
  std::chrono::milliseconds timeout_;
  Random random_;
  mutable std::mutex mutex_;
  std::map<std::string, EndpointCounters> counters_;
};

}  // namespace fulcrum::automation
