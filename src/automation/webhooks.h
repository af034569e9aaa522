// Webhook endpoints and the events Fulcrum announces, as pure data and functions: endpoint
// validation (HTTPS unless loopback or explicitly allowed), the change feed -> event mapping
// (store/automation.h), the deliveries one change fans out to, payload formats (Fulcrum JSON
// envelope, Slack-compatible message) and the retry back-off. The I/O lives in delivery.h.
//
// Endpoints are Store documents of kind "webhook_endpoint" (id "whk_..."), body:
//   {"endpoint_id", "url", "event_types": [...], "format": "json"|"slack", "key_id",
//    "secret" (hex, shown once on creation), "enabled", "allow_insecure_http",
//    "description", "created_at"}
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/time.h"
#include "store/automation.h"
#include "store/store.h"

namespace fulcrum::automation {

inline constexpr const char* kEndpointKind = "webhook_endpoint";
// Alerts and other events the automation layer raises itself are documents of this kind
// (body {"event_type", "subject", "summary", "data"}), so they share the change feed.
inline constexpr const char* kEventKind = "automation_event";
inline constexpr std::size_t kMaxEndpoints = 100;
// Campaign target users per delivery of a campaign.created event.
inline constexpr std::size_t kCampaignUsersPerPage = 500;

// The closed set of event types an endpoint may subscribe to.
const std::vector<std::string>& event_types();
bool is_event_type(std::string_view type);

struct Endpoint {
  std::string endpoint_id;
  std::string url;
  std::vector<std::string> event_types;
  std::string format = "json";  // "json" or "slack"
  std::string key_id;
  std::string secret;  // raw bytes' hex
  // After a rotation: the secret it replaced, still signing deliveries beside the new one
  // until previous_valid_until (then forgotten at the next rotation or read).
  std::string previous_key_id;
  std::string previous_secret;
  UnixSeconds previous_valid_until = 0;
  bool enabled = true;
  bool allow_insecure_http = false;
  std::string description;
  UnixSeconds created_at = 0;
  std::int64_t version = 0;

  nlohmann::json to_json(bool with_secret) const;
  static Result<Endpoint> from_json(const nlohmann::json& json);
  bool subscribed(std::string_view type) const;
  // The rotated-out secret while it is still valid at `now`, else empty.
  std::string_view previous_secret_at(UnixSeconds now) const;
};

struct ParsedUrl {
  std::string scheme;  // "http" or "https"
  std::string host;    // without brackets for IPv6
  std::string port;    // explicit or the scheme's default
  std::string target;  // path + query, at least "/"
};
// kInvalidArgument naming `field` for anything but an absolute http(s) URL without
// credentials.
Result<ParsedUrl> parse_url(std::string_view url, const std::string& field = "url");
bool is_loopback_host(std::string_view host);

// Validates a create request {url, event_types, format?, description?, allow_insecure_http?,
// enabled?} into an Endpoint without id/secret: unknown fields, a non-HTTPS URL to a
// non-loopback host (unless allow_insecure_http), an unknown event type (field
// "event_types[2]") are kInvalidArgument naming the field.
Result<Endpoint> parse_endpoint_request(const nlohmann::json& request);

// An event derived from one change-feed row.
struct Event {
  std::string type;
  std::string subject;  // what it is about: a test id, campaign id, feature...
  nlohmann::json data;
};
// The events a change announces (none for kinds nobody subscribes to).
std::vector<Event> events_for_change(const DocumentChange& change);

// The Fulcrum envelope every JSON delivery carries:
//   {"id": delivery id, "event_id", "type", "created_at", "subject", "data": {...},
//    "page"?: {"number", "count"}}
// and a Slack-compatible message ({"text", "blocks"}) for endpoints with format "slack".
std::string delivery_payload(const Endpoint& endpoint, const std::string& delivery_id,
                             const std::string& event_id, const Event& event, UnixSeconds at);

// Turns changes into deliveries for the enabled, subscribed endpoints. A campaign.created
// event is split into pages of kCampaignUsersPerPage target users (`members` gives them per
// campaign id); each page is its own delivery. Delivery ids are deterministic
// ("dlv_<sequence>_<endpoint>_<page>") so fanning out twice stores each once.
std::vector<WebhookDelivery> fan_out(
    const std::vector<DocumentChange>& changes, const std::vector<Endpoint>& endpoints,
    const std::function<std::vector<Store::CampaignMember>(const std::string&)>& members,
    UnixSeconds now);

// A delivery's JSON form for the admin API (payload included when asked).
nlohmann::json to_json(const WebhookDelivery& delivery, bool with_payload);

// Retry policy: attempt n (1-based, after n failures) waits base * 2^(n-1), capped, with
// "equal jitter" (half fixed, half uniform: AWS Architecture Blog, "Exponential Backoff And
// Jitter", 2015). `unit_random` in [0, 1). After max_attempts failures a delivery is dead.
struct RetryPolicy {
  UnixSeconds base_seconds = 10;
  UnixSeconds cap_seconds = 3600;
  int max_attempts = 8;
};
UnixSeconds retry_delay(const RetryPolicy& policy, int failures, double unit_random);

// Stored endpoints (sorted by id) and their CRUD through the Store.
Result<std::vector<Endpoint>> list_endpoints(Store& store);
Result<Endpoint> get_endpoint(Store& store, const std::string& endpoint_id);
// Creates an endpoint with a new id, key id and 32-byte random secret.
Result<Endpoint> create_endpoint(Store& store, const Clock& clock, const nlohmann::json& request);
// Replaces the endpoint's secret and key id with new random ones. The old secret keeps
// signing deliveries beside the new one for `grace_seconds` (0 to 7 days; 0 = at once), so a
// receiver can switch without losing a delivery. kNotFound when unknown, kInvalidArgument
// naming "grace_seconds". The answer carries the new secret; show it once.
inline constexpr UnixSeconds kMaxSecretGraceSeconds = 7 * 86400;
inline constexpr UnixSeconds kDefaultSecretGraceSeconds = 86400;
Result<Endpoint> rotate_endpoint_secret(Store& store, const Clock& clock,
                                        const std::string& endpoint_id,
                                        UnixSeconds grace_seconds = kDefaultSecretGraceSeconds);
// Disables it (kept so its deliveries stay readable); kNotFound when unknown.
Result<Endpoint> remove_endpoint(Store& store, const Clock& clock, const std::string& endpoint_id);

}  // namespace fulcrum::automation
