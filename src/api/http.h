// Plain request/response values the router hands to route handlers, the caller's identity
// (AuthContext) and RFC 9457 problem responses. Handlers are ordinary functions
// `Response(const Request&, const AuthContext&)`, so they know nothing of Beast or sockets.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "core/untrusted_json.h"
#include "store/model.h"

namespace fulcrum::api {

class EventStream;  // api/event_stream.h

// Roles of API keys (admin, analyst, service, sdk) plus end users holding a signed user
// token. An sdk key belongs to an app's feature-flag SDK: it may only read the SDK payload,
// stream it, and evaluate flags remotely (GrowthBook remote eval, OFREP).
enum class Role { kAdmin, kAnalyst, kService, kUser, kSdk };
const char* role_name(Role role);
// Parses an API-key role: "admin", "analyst", "service" or "sdk" (user tokens are not keys).
std::optional<Role> parse_key_role(std::string_view name);

struct AuthContext {
  bool authenticated = false;
  Role role = Role::kUser;
  std::string actor;    // API key id, or "user:<id>" for user tokens, "anonymous" when none
  std::string user_id;  // set for user tokens only
  std::string label;    // the API key's label (`keys create --label`); empty for user tokens
  std::string minted_by;  // user tokens: the API key id that minted the token (may be empty)

  // Who the caller is in words, for fields like created_by: the key's label when it has
  // one, else the key id; the user id for user tokens.
  std::string caller_name() const {
    if (!user_id.empty()) return user_id;
    return label.empty() ? actor : label;
  }
};

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string path;    // decoded path without the query string
  std::map<std::string, std::string> params;  // {name} segments of the route pattern
  std::map<std::string, std::string> query;   // decoded query parameters
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string request_id;  // X-Request-Id (the client's when sane, else generated)

  std::string header(const std::string& lower_case_name) const;
  std::string query_value(const std::string& name, std::string fallback = {}) const;
  // A boolean query parameter ("true" or "false"; `fallback` when absent), else
  // kInvalidArgument naming it.
  Result<bool> query_bool(const std::string& name, bool fallback) const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // The entity the call touched, recorded in the audit log (e.g. a created test_id); when
  // empty the audit target is the route's first path parameter.
  std::string audit_target;
  // Exposures the call must store before it is answered. The server writes them in the same
  // transaction as the call's audit entry, together with concurrent calls' (group commit),
  // and answers only after that commit; if it fails the answer becomes a 5xx problem.
  std::vector<ExposureEvent> exposures_to_commit;
  // A long-lived Server-Sent Events response (see api/event_stream.h): the server writes
  // status and headers, then streams the events `event_stream` produces until the client
  // goes away or the server shuts down. `body` is ignored.
  std::shared_ptr<EventStream> event_stream;

  static Response json(int status, const nlohmann::json& document);
  static Response text(int status, std::string body, std::string content_type);
};

// An RFC 9457 problem (application/problem+json) with `field` naming the offending input.
Response problem(int status, std::string_view detail, std::string_view field = {});
// Maps a Status to its HTTP status (kInvalidArgument -> `invalid_argument_status`, usually
// 422 for semantically invalid input and 400 for malformed requests; kNotFound 404,
// kAlreadyExists / kFailedPrecondition 409, kPermissionDenied 403, kUnauthenticated 401,
// kUnavailable 503 and kResourceExhausted 507, both with Retry-After, otherwise 500) and builds
// the problem response.
Response problem(const Status& status, int invalid_argument_status = 422);
// CORS for the SDK routes, which browsers call from any origin (the client key in the path,
// not a cookie, is the credential): also on their errors, or a browser hides the problem.
void add_sdk_cors(Response& response);

// The status line and header fields of `response` (RFC 9112 sections 4 and 5), to be written
// in front of its body in one gathered write. Fields the server sets first (Content-Type,
// X-Content-Type-Options, X-Request-Id, HSTS on TLS) are replaced by a handler's field of
// the same name, and a repeated name keeps its last value. Content-Length is the body's size,
// none for 1xx, 204 and 304 (which have no body); `Connection: close` or `keep-alive` as
// HTTP/1.1 and 1.0 need. CR and LF never reach the wire from a field.
std::string response_head(const Response& response, unsigned version, bool keep_alive,
                          std::string_view request_id, bool hsts);
// Whether a response of this status carries no body (1xx, 204, 304).
bool status_has_no_body(int status);
int http_status_for(const Status& status, int invalid_argument_status = 422);

// Parses a JSON request body into an object with parse_untrusted_json's size and depth
// limits, or kInvalidArgument (the route answers 400) naming the field where it broke.
Result<nlohmann::json> parse_json_object(std::string_view body, const JsonLimits& limits = {});
// Rejects members of `object` not in `known` with kInvalidArgument naming the field
// (prefix + name), so typos in create requests fail loudly instead of being ignored.
Status reject_unknown_fields(const nlohmann::json& object,
                             std::initializer_list<std::string_view> known,
                             std::string_view prefix = {});

// Paginated list routes (`?limit=&cursor=`): lists are ordered newest first (created_at
// descending, then id), and a cursor is an opaque token for the last item of a page, so a
// page boundary stays put when newer items are added.
struct PageRequest {
  std::size_t limit = 0;
  bool has_cursor = false;
  UnixSeconds after_created_at = 0;  // the last item of the previous page
  std::string after_id;
};
// limit defaults to limits::kDefaultPageSize and may be 1..limits::kMaxPageSize; a bad limit
// or cursor is kInvalidArgument naming "limit" or "cursor" (the route answers 400).
Result<PageRequest> parse_page_request(const Request& request);
std::string encode_page_cursor(UnixSeconds created_at, std::string_view id);

// The page of `items` (sorted newest first) that `page` asks for, and the cursor of the next
// page (empty on the last page). `key` returns an item's (created_at, id).
template <typename T, typename KeyFn>
std::pair<std::vector<const T*>, std::string> page_of(const std::vector<T>& items,
                                                      const PageRequest& page, KeyFn key) {
  std::size_t first = 0;
  if (page.has_cursor) {
    while (first < items.size()) {
      const auto [created_at, id] = key(items[first]);
      if (created_at < page.after_created_at ||
          (created_at == page.after_created_at && id > page.after_id)) {
        break;
      }
      ++first;
    }
  }
  std::vector<const T*> out;
  for (std::size_t i = first; i < items.size() && out.size() < page.limit; ++i) {
    out.push_back(&items[i]);
  }
  std::string next;
  if (first + out.size() < items.size() && !out.empty()) {
    const auto [created_at, id] = key(*out.back());
    next = encode_page_cursor(created_at, id);
  }
  return {std::move(out), std::move(next)};
}

}  // namespace fulcrum::api
