#include "automation/webhooks.h"

#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <functional>

#include "core/ids.h"

namespace fulcrum::automation {

using nlohmann::json;

const std::vector<std::string>& event_types() {
  static const std::vector<std::string> kTypes = {
      "campaign.created",  "test.state_changed", "test.decided",
      "health.alert",      "sunset.recommendation_changed", "job.failed"};
  return kTypes;
}

bool is_event_type(std::string_view type) {
  const auto& types = event_types();
  return std::find(types.begin(), types.end(), type) != types.end();
}

json Endpoint::to_json(bool with_secret) const {
  json out = {{"endpoint_id", endpoint_id},
              {"url", url},
              {"event_types", event_types},
              {"format", format},
              {"key_id", key_id},
              {"enabled", enabled},
              {"allow_insecure_http", allow_insecure_http},
              {"description", description},
              {"created_at", format_iso8601(created_at)}};
  if (with_secret) out["secret"] = secret;
  if (!previous_key_id.empty()) {
    out["previous_key_id"] = previous_key_id;
    out["previous_valid_until"] = format_iso8601(previous_valid_until);
    if (with_secret) out["previous_secret"] = previous_secret;
  }
  return out;
}

std::string_view Endpoint::previous_secret_at(UnixSeconds now) const {
  return !previous_secret.empty() && now < previous_valid_until ? std::string_view(previous_secret)
                                                                : std::string_view();
}

Result<Endpoint> Endpoint::from_json(const json& body) {
  Endpoint e;
  try {
    e.endpoint_id = body.at("endpoint_id").get<std::string>();
    e.url = body.at("url").get<std::string>();
    e.event_types = body.at("event_types").get<std::vector<std::string>>();
    e.format = body.value("format", "json");
    e.key_id = body.at("key_id").get<std::string>();
    e.secret = body.at("secret").get<std::string>();
    e.previous_key_id = body.value("previous_key_id", "");
    e.previous_secret = body.value("previous_secret", "");
    e.previous_valid_until = parse_iso8601(body.value("previous_valid_until", "")).value_or(0);
    e.enabled = body.value("enabled", true);
    e.allow_insecure_http = body.value("allow_insecure_http", false);
    e.description = body.value("description", "");
    e.created_at = parse_iso8601(body.value("created_at", "")).value_or(0);
  } catch (const json::exception& error) {
    return internal_error(std::string("stored webhook endpoint is damaged: ") + error.what());
  }
  return e;
}

bool Endpoint::subscribed(std::string_view type) const {
  return std::find(event_types.begin(), event_types.end(), type) != event_types.end();
}

Result<ParsedUrl> parse_url(std::string_view url, const std::string& field) {
  ParsedUrl parsed;
  if (url.size() > 2048) return invalid_argument("url is too long", field);
  const std::size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) {
    return invalid_argument("url must be absolute (https://host/path)", field);
  }
  parsed.scheme = std::string(url.substr(0, scheme_end));
  std::transform(parsed.scheme.begin(), parsed.scheme.end(), parsed.scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (parsed.scheme != "http" && parsed.scheme != "https") {
    return invalid_argument("url scheme must be https (or http)", field);
  }
  std::string_view rest = url.substr(scheme_end + 3);
  const std::size_t path_start = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, path_start);
  parsed.target = path_start == std::string_view::npos ? "/" : std::string(rest.substr(path_start));
  if (const std::size_t hash = parsed.target.find('#'); hash != std::string::npos) {
    parsed.target.erase(hash);
  }
  if (parsed.target.empty() || parsed.target[0] != '/') parsed.target = "/" + parsed.target;
  if (authority.find('@') != std::string_view::npos) {
    return invalid_argument("url must not carry credentials", field);
  }
  std::string_view host = authority, port;
  if (!authority.empty() && authority[0] == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return invalid_argument("url has a bad IPv6 host", field);
    host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return invalid_argument("url has a bad port", field);
      port = authority.substr(close + 2);
    }
  } else if (const std::size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return invalid_argument("url needs a host", field);
  for (char c : host) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' ||
          c == '_')) {
      return invalid_argument("url host has invalid characters", field);
    }
  }
  if (!port.empty()) {
    if (port.size() > 5 || !std::all_of(port.begin(), port.end(), ::isdigit) ||
        std::stoi(std::string(port)) < 1 || std::stoi(std::string(port)) > 65535) {
      return invalid_argument("url has a bad port", field);
    }
  }
  parsed.host = std::string(host);
  std::transform(parsed.host.begin(), parsed.host.end(), parsed.host.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  parsed.port = port.empty() ? (parsed.scheme == "https" ? "443" : "80") : std::string(port);
  return parsed;
}

bool is_loopback_host(std::string_view host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

Result<Endpoint> parse_endpoint_request(const json& request) {
  if (!request.is_object()) return invalid_argument("body must be a JSON object", "body");
  static const std::vector<std::string> kKnown = {"url", "event_types", "format", "description",
                                                  "allow_insecure_http", "enabled"};
  for (const auto& [key, value] : request.items()) {
    if (std::find(kKnown.begin(), kKnown.end(), key) == kKnown.end()) {
      return invalid_argument("unknown field", key);
    }
  }
  Endpoint e;
  if (!request.contains("url") || !request["url"].is_string()) {
    return invalid_argument("url is required (a string)", "url");
  }
  e.url = request["url"].get<std::string>();
  if (request.contains("allow_insecure_http")) {
    if (!request["allow_insecure_http"].is_boolean()) {
      return invalid_argument("allow_insecure_http must be a boolean", "allow_insecure_http");
    }
    e.allow_insecure_http = request["allow_insecure_http"].get<bool>();
  }
  auto url = parse_url(e.url);
  if (!url.is_ok()) return url.status();
  if (url->scheme != "https" && !is_loopback_host(url->host) && !e.allow_insecure_http) {
    return invalid_argument(
        "url must use https (plain http only to a loopback host, or with allow_insecure_http)",
        "url");
  }
  if (!request.contains("event_types") || !request["event_types"].is_array() ||
      request["event_types"].empty()) {
    return invalid_argument("event_types is required: a non-empty array of event types",
                            "event_types");
  }
  const json& types = request["event_types"];
  for (std::size_t i = 0; i < types.size(); ++i) {
    const std::string field = "event_types[" + std::to_string(i) + "]";
    if (!types[i].is_string() || !is_event_type(types[i].get<std::string>())) {
      std::string known;
      for (const auto& type : event_types()) known += (known.empty() ? "" : ", ") + type;
      return invalid_argument("unknown event type (known: " + known + ")", field);
    }
    if (!e.subscribed(types[i].get<std::string>())) {
      e.event_types.push_back(types[i].get<std::string>());
    }
  }
  if (request.contains("format")) {
    if (!request["format"].is_string() ||
        (request["format"] != "json" && request["format"] != "slack")) {
      return invalid_argument("format must be json or slack", "format");
    }
    e.format = request["format"].get<std::string>();
  }
  if (request.contains("description")) {
    if (!request["description"].is_string() || request["description"].get<std::string>().size() > 500) {
      return invalid_argument("description must be a string of at most 500 bytes", "description");
    }
    e.description = request["description"].get<std::string>();
  }
  if (request.contains("enabled")) {
    if (!request["enabled"].is_boolean()) return invalid_argument("enabled must be a boolean", "enabled");
    e.enabled = request["enabled"].get<bool>();
  }
  return e;
}

namespace {

json parse_body(const std::string& text) {
  json body = json::parse(text, nullptr, false);
  return body.is_discarded() ? json::object() : body;
}

}  // namespace

std::vector<Event> events_for_change(const DocumentChange& change) {
  std::vector<Event> events;
  const bool created = change.previous_status.empty() && change.version == 1;
  if (change.kind == "campaign" && created) {
    json body = parse_body(change.body);
    json data = {{"campaign_id", change.id},
                 {"campaign_name", body.value("campaign_name", "")},
                 {"trigger_type", body.value("trigger_type", "")},
                 {"campaign_type", body.value("campaign_type", "")},
                 {"campaign_message", body.value("campaign_message", "")},
                 {"campaign_status", change.status},
                 {"target_user_count", body.value("target_users", json::array()).size()},
                 {"holdout_user_count", body.value("holdout_users", json::array()).size()},
                 {"target_users_url", "/api/automated-optimization/retention-campaigns/" +
                                          change.id + "/target-users"}};
    events.push_back({"campaign.created", change.id, std::move(data)});
  } else if (change.kind == "experiment" && !change.previous_status.empty() &&
             change.status != change.previous_status) {
    json body = parse_body(change.body);
    const std::string test_name =
        body.contains("config") && body["config"].is_object()
            ? body["config"].value("test_name", "")
            : body.value("test_name", "");
    json data = {{"test_id", change.id},
                 {"test_name", test_name},
                 {"from", change.previous_status},
                 {"to", change.status}};
    events.push_back({"test.state_changed", change.id, data});
    if (change.status == "completed") {
      json decided = {{"test_id", change.id},
                      {"test_name", test_name},
                      {"winner", body.contains("winner") ? body["winner"] : json(nullptr)},
                      {"winner_forced", body.value("winner_forced", false)}};
      events.push_back({"test.decided", change.id, std::move(decided)});
    }
  } else if (change.kind == kEventKind && created) {
    json body = parse_body(change.body);
    const std::string type = body.value("event_type", "");
    if (is_event_type(type)) {
      json data = body.value("data", json::object());
      data["summary"] = body.value("summary", "");
      events.push_back({type, body.value("subject", change.id), std::move(data)});
    }
  } else if (change.kind == "sunset_review") {
    json body = parse_body(change.body);
    json data = body;
    data["feature"] = change.id;
    events.push_back({"sunset.recommendation_changed", change.id, std::move(data)});
  }
  return events;
}

namespace {

std::string slack_text(const Event& event) {
  const json& d = event.data;
  auto text = [&](const char* key) {
    return d.contains(key) && d[key].is_string() ? d[key].get<std::string>() : std::string();
  };
  if (event.type == "health.alert" || event.type == "job.failed") {
    return std::string(event.type == "job.failed" ? ":x: " : ":warning: ") + text("summary");
  }
  if (event.type == "test.state_changed") {
    return "A/B test " + text("test_name") + " (" + event.subject + "): " + text("from") +
           " -> " + text("to");
  }
  if (event.type == "test.decided") {
    return "A/B test " + text("test_name") + " (" + event.subject + ") completed, winner: " +
           (d.contains("winner") && d["winner"].is_string() ? d["winner"].get<std::string>()
                                                             : std::string("none"));
  }
  if (event.type == "campaign.created") {
    return "Retention campaign " + text("campaign_name") + " created for " +
           std::to_string(d.value("target_user_count", 0)) + " users";
  }
  if (event.type == "sunset.recommendation_changed") {
    return "Feature " + event.subject + ": sunset recommendation is now " + text("recommendation");
  }
  return event.type + " " + event.subject;
}

}  // namespace

std::string delivery_payload(const Endpoint& endpoint, const std::string& delivery_id,
                             const std::string& event_id, const Event& event, UnixSeconds at) {
  if (endpoint.format == "slack") {
    const std::string text = slack_text(event);
    return json{{"text", text},
                {"blocks", json::array({{{"type", "section"},
                                         {"text", {{"type", "mrkdwn"}, {"text", text}}}}})}}
        .dump();
  }
  return json{{"id", delivery_id},
              {"event_id", event_id},
              {"type", event.type},
              {"created_at", format_iso8601(at)},
              {"subject", event.subject},
              {"data", event.data}}
      .dump();
}

std::vector<WebhookDelivery> fan_out(
    const std::vector<DocumentChange>& changes, const std::vector<Endpoint>& endpoints,
    const std::function<std::vector<Store::CampaignMember>(const std::string&)>& members,
    UnixSeconds now) {
  std::vector<WebhookDelivery> deliveries;
  for (const DocumentChange& change : changes) {
    for (Event& event : events_for_change(change)) {
      std::vector<const Endpoint*> targets;
      for (const Endpoint& endpoint : endpoints) {
        if (endpoint.enabled && endpoint.subscribed(event.type)) targets.push_back(&endpoint);
      }
      if (targets.empty()) continue;
      // Pages of target users for campaign.created (JSON endpoints only; a Slack message
      // gets the summary).
      std::vector<json> pages;
      if (event.type == "campaign.created") {
        std::vector<Store::CampaignMember> all = members(change.id);
        for (std::size_t first = 0; first < all.size(); first += kCampaignUsersPerPage) {
          json users = json::array();
          for (std::size_t i = first; i < std::min(all.size(), first + kCampaignUsersPerPage); ++i) {
            users.push_back({{"user_id", all[i].user_id}, {"holdout", all[i].holdout}});
          }
          pages.push_back(std::move(users));
        }
      }
      const std::string event_key = std::to_string(change.sequence) + "." + event.type;
      for (const Endpoint* endpoint : targets) {
        const std::size_t page_count =
            endpoint->format == "json" && !pages.empty() ? pages.size() : 1;
        for (std::size_t page = 0; page < page_count; ++page) {
          Event paged = event;
          if (endpoint->format == "json" && !pages.empty()) {
            paged.data["target_users"] = pages[page];
            paged.data["page"] = {{"number", page + 1}, {"count", page_count}};
          }
          WebhookDelivery d;
          d.event_id = event_key + (page_count > 1 || !pages.empty() ? "." + std::to_string(page + 1) : "");
          d.delivery_id = "dlv_" + std::to_string(change.sequence) + "_" + event.type + "_" +
                          endpoint->endpoint_id + "_" + std::to_string(page + 1);
          d.endpoint_id = endpoint->endpoint_id;
          d.event_type = event.type;
          d.payload = delivery_payload(*endpoint, d.delivery_id, d.event_id, paged, change.at);
          d.status = "pending";
          d.next_attempt_at = now;
          d.created_at = now;
          deliveries.push_back(std::move(d));
        }
      }
    }
  }
  return deliveries;
}

json to_json(const WebhookDelivery& d, bool with_payload) {
  json out = {{"delivery_id", d.delivery_id},
              {"endpoint_id", d.endpoint_id},
              {"event_type", d.event_type},
              {"event_id", d.event_id},
              {"status", d.status},
              {"attempts", d.attempts},
              {"next_attempt_at", d.status == "pending" ? json(format_iso8601(d.next_attempt_at))
                                                        : json(nullptr)},
              {"last_status_code", d.last_status_code ? json(d.last_status_code) : json(nullptr)},
              {"last_error", d.last_error},
              {"created_at", format_iso8601(d.created_at)},
              {"delivered_at", d.delivered_at ? json(format_iso8601(d.delivered_at)) : json(nullptr)}};
  if (with_payload) {
    json payload = json::parse(d.payload, nullptr, false);
    out["payload"] = payload.is_discarded() ? json(d.payload) : payload;
  }
  return out;
}

UnixSeconds retry_delay(const RetryPolicy& policy, int failures, double unit_random) {
  const int exponent = std::clamp(failures - 1, 0, 30);
  const double full = std::min(static_cast<double>(policy.cap_seconds),
                               static_cast<double>(policy.base_seconds) * std::ldexp(1.0, exponent));
  const double half = full / 2;
  return std::max<UnixSeconds>(1, static_cast<UnixSeconds>(std::llround(half + half * unit_random)));
}

Result<std::vector<Endpoint>> list_endpoints(Store& store) {
  auto documents = store.list_documents(kEndpointKind);
  if (!documents.is_ok()) return documents.status();
  std::vector<Endpoint> endpoints;
  for (const Document& doc : *documents) {
    if (doc.status == "removed") continue;
    json body = json::parse(doc.body, nullptr, false);
    auto endpoint = Endpoint::from_json(body);
    if (!endpoint.is_ok()) return endpoint.status();
    endpoint->version = doc.version;
    endpoints.push_back(std::move(endpoint).value());
  }
  std::sort(endpoints.begin(), endpoints.end(),
            [](const Endpoint& a, const Endpoint& b) { return a.endpoint_id < b.endpoint_id; });
  return endpoints;
}

Result<Endpoint> get_endpoint(Store& store, const std::string& endpoint_id) {
  auto doc = store.get_document(kEndpointKind, endpoint_id);
  if (!doc.is_ok()) return doc.status();
  if (!*doc || (*doc)->status == "removed") return not_found("no webhook endpoint " + endpoint_id);
  auto endpoint = Endpoint::from_json(json::parse((*doc)->body, nullptr, false));
  if (!endpoint.is_ok()) return endpoint.status();
  endpoint->version = (*doc)->version;
  return endpoint;
}

namespace {

Result<std::string> new_secret() {
  unsigned char secret[32];
  if (RAND_bytes(secret, sizeof secret) != 1) return internal_error("no randomness for a secret");
  return to_hex(std::string_view(reinterpret_cast<const char*>(secret), sizeof secret));
}

// Stores a changed endpoint over its current document version (a concurrent change makes
// this fail instead of being overwritten).
Result<Endpoint> put_endpoint(Store& store, const Clock& clock, Endpoint endpoint,
                              const std::string& status) {
  auto doc = store.get_document(kEndpointKind, endpoint.endpoint_id);
  if (!doc.is_ok()) return doc.status();
  if (!doc->has_value()) return not_found("no webhook endpoint " + endpoint.endpoint_id);
  Document updated = **doc;
  updated.status = status;
  updated.body = endpoint.to_json(true).dump();
  updated.updated_at = clock.now();
  auto version = store.put_document(updated);
  if (!version.is_ok()) return version.status();
  endpoint.version = *version;
  return endpoint;
}

}  // namespace

Result<Endpoint> rotate_endpoint_secret(Store& store, const Clock& clock,
                                        const std::string& endpoint_id, UnixSeconds grace_seconds) {
  if (grace_seconds < 0 || grace_seconds > kMaxSecretGraceSeconds) {
    return invalid_argument("grace_seconds must be from 0 to " +
                                std::to_string(kMaxSecretGraceSeconds) + " (7 days)",
                            "grace_seconds");
  }
  auto endpoint = get_endpoint(store, endpoint_id);
  if (!endpoint.is_ok()) return endpoint.status();
  if (!endpoint->enabled) {
    return failed_precondition("webhook endpoint " + endpoint_id + " is removed");
  }
  auto secret = new_secret();
  if (!secret.is_ok()) return secret.status();
  const UnixSeconds now = clock.now();
  endpoint->previous_key_id = endpoint->key_id;
  endpoint->previous_secret = grace_seconds > 0 ? endpoint->secret : std::string();
  endpoint->previous_valid_until = now + grace_seconds;
  endpoint->secret = std::move(secret).value();
  endpoint->key_id = new_id("key");
  return put_endpoint(store, clock, std::move(endpoint).value(), "enabled");
}

Result<Endpoint> create_endpoint(Store& store, const Clock& clock, const json& request) {
  auto endpoint = parse_endpoint_request(request);
  if (!endpoint.is_ok()) return endpoint.status();
  auto existing = list_endpoints(store);
  if (!existing.is_ok()) return existing.status();
  if (existing->size() >= kMaxEndpoints) {
    return failed_precondition("at most " + std::to_string(kMaxEndpoints) +
                               " webhook endpoints; remove one first");
  }
  auto secret = new_secret();
  if (!secret.is_ok()) return secret.status();
  endpoint->secret = std::move(secret).value();
  endpoint->endpoint_id = new_id("whk");
  endpoint->key_id = new_id("key");
  endpoint->created_at = clock.now();
  Document doc;
  doc.kind = kEndpointKind;
  doc.id = endpoint->endpoint_id;
  doc.status = endpoint->enabled ? "enabled" : "disabled";
  doc.body = endpoint->to_json(true).dump();
  doc.created_at = doc.updated_at = endpoint->created_at;
  auto version = store.put_document(doc);
  if (!version.is_ok()) return version.status();
  endpoint->version = *version;
  return endpoint;
}

Result<Endpoint> remove_endpoint(Store& store, const Clock& clock, const std::string& endpoint_id) {
  auto endpoint = get_endpoint(store, endpoint_id);
  if (!endpoint.is_ok()) return endpoint.status();
  endpoint->enabled = false;
  return put_endpoint(store, clock, std::move(endpoint).value(), "removed");
}

}  // namespace fulcrum::automation
