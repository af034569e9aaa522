#include "api/http.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include <boost/beast/http/status.hpp>

#include "core/ids.h"
#include "core/limits.h"
#include "core/untrusted_json.h"

namespace fulcrum::api {

const char* role_name(Role role) {
  switch (role) {
    case Role::kAdmin:
      return "admin";
    case Role::kAnalyst:
      return "analyst";
    case Role::kService:
      return "service";
    case Role::kUser:
      return "user";
    case Role::kSdk:
      return "sdk";
  }
  return "unknown";
}

std::optional<Role> parse_key_role(std::string_view name) {
  if (name == "admin") return Role::kAdmin;
  if (name == "analyst") return Role::kAnalyst;
  if (name == "service") return Role::kService;
  if (name == "sdk") return Role::kSdk;
  return std::nullopt;
}

std::string Request::header(const std::string& lower_case_name) const {
  auto it = headers.find(lower_case_name);
  return it == headers.end() ? std::string() : it->second;
}

std::string Request::query_value(const std::string& name, std::string fallback) const {
  auto it = query.find(name);
  return it == query.end() ? fallback : it->second;
}

Result<bool> Request::query_bool(const std::string& name, bool fallback) const {
  auto it = query.find(name);
  if (it == query.end()) return fallback;
  if (it->second == "true") return true;
  if (it->second == "false") return false;
  return invalid_argument(name + " must be true or false", name);
}

Response Response::json(int status, const nlohmann::json& document) {
  Response response;
  response.status = status;
  response.body = dump_json(document);
  return response;
}

Response Response::text(int status, std::string body, std::string content_type) {
  Response response;
  response.status = status;
  response.body = std::move(body);
  response.content_type = std::move(content_type);
  return response;
}

namespace {

const char* reason_phrase(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 413:
      return "Content Too Large";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Content";
    case 503:
      return "Service Unavailable";
    case 507:
      return "Insufficient Storage";
    default:
      return status >= 500 ? "Internal Server Error" : "Error";
  }
}

}  // namespace

Response problem(int status, std::string_view detail, std::string_view field) {
  nlohmann::json body = {{"type", "about:blank"},
                         {"title", reason_phrase(status)},
                         {"status", status},
                         {"detail", std::string(detail)}};
  if (!field.empty()) body["field"] = std::string(field);
  Response response = Response::json(status, body);
  response.content_type = "application/problem+json";
  if (status == 401) response.headers.emplace_back("WWW-Authenticate", "Bearer");
  return response;
}

int http_status_for(const Status& status, int invalid_argument_status) {
  switch (status.code()) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
      return invalid_argument_status;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kAlreadyExists:
    case StatusCode::kFailedPrecondition:
      return 409;
    case StatusCode::kPermissionDenied:
      return 403;
    case StatusCode::kUnauthenticated:
      return 401;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kResourceExhausted:
      return 507;  // RFC 4918 Insufficient Storage
    case StatusCode::kInternal:
      return 500;
  }
  return 500;
}

Response problem(const Status& status, int invalid_argument_status) {
  Response response = problem(http_status_for(status, invalid_argument_status), status.message(),
                              status.field());
  // The store is down or full: nothing was stored, and the same request may succeed later.
  if (status.code() == StatusCode::kUnavailable) {
    response.headers.emplace_back("Retry-After", "1");
  } else if (status.code() == StatusCode::kResourceExhausted) {
    response.headers.emplace_back("Retry-After", "10");
  }
  return response;
}

void add_sdk_cors(Response& response) {
  response.headers.emplace_back("Access-Control-Allow-Origin", "*");
  response.headers.emplace_back("Access-Control-Expose-Headers", "ETag, x-sse-support");
}

Result<nlohmann::json> parse_json_object(std::string_view body, const JsonLimits& limits) {
  return parse_untrusted_json_object(body, "body", limits);
}

Status reject_unknown_fields(const nlohmann::json& object,
                             std::initializer_list<std::string_view> known,
                             std::string_view prefix) {
  for (const auto& item : object.items()) {
    if (std::find(known.begin(), known.end(), item.key()) == known.end()) {
      std::string allowed;
      for (std::string_view name : known) {
        if (!allowed.empty()) allowed += ", ";
        allowed += name;
      }
      // A caller's key may be huge: echo at most 256 bytes of it.
      const std::string field = std::string(prefix) + shorten_for_message(item.key(), 256);
      return invalid_argument("unknown field '" + field + "' (allowed: " + allowed + ")", field);
    }
  }
  return Status::ok();
}

bool status_has_no_body(int status) {
  return (status >= 100 && status < 200) || status == 204 || status == 304;
}

std::string response_head(const Response& response, unsigned version, bool keep_alive,
                          std::string_view request_id, bool hsts) {
  std::vector<std::pair<std::string_view, std::string_view>> fields;
  fields.reserve(response.headers.size() + 4);
  // Header names are ASCII tokens (RFC 9110 section 5.1): compare without the locale-aware
  // std::tolower, which costs a call per character on every response.
  auto same_name = [](std::string_view a, std::string_view b) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [&](char x, char y) {
             return lower(x) == lower(y);
           });
  };
  auto set = [&](std::string_view name, std::string_view value) {
    for (auto& field : fields) {
      if (same_name(field.first, name)) {
        field.second = value;
        return;
      }
    }
    fields.emplace_back(name, value);
  };
  set("Content-Type", response.content_type);
  set("X-Content-Type-Options", "nosniff");
  if (!request_id.empty()) set("X-Request-Id", request_id);
  // HSTS only where it is true: on a TLS connection (RFC 6797 section 7.2).
  if (hsts) set("Strict-Transport-Security", "max-age=31536000");
  for (const auto& [name, value] : response.headers) set(name, value);

  std::string head;
  head.reserve(160 + response.headers.size() * 48);
  head += version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  head += std::to_string(response.status);
  head += ' ';
  const auto reason =
      boost::beast::http::obsolete_reason(static_cast<boost::beast::http::status>(response.status));
  head.append(reason.data(), reason.size());
  head += "\r\n";
  auto append_clean = [&head](std::string_view text) {
    for (char c : text) {
      if (c != '\r' && c != '\n') head += c;
    }
  };
  for (const auto& [name, value] : fields) {
    if (same_name(name, "Content-Length") || same_name(name, "Connection") ||
        same_name(name, "Transfer-Encoding")) {
      continue;  // framing is the server's, never a handler's
    }
    append_clean(name);
    head += ": ";
    append_clean(value);
    head += "\r\n";
  }
  if (!status_has_no_body(response.status)) {
    head += "Content-Length: ";
    head += std::to_string(response.body.size());
    head += "\r\n";
  }
  if (version == 10 && keep_alive) head += "Connection: keep-alive\r\n";
  if (version != 10 && !keep_alive) head += "Connection: close\r\n";
  head += "\r\n";
  return head;
}

std::string encode_page_cursor(UnixSeconds created_at, std::string_view id) {
  return to_hex(std::to_string(created_at) + ":" + std::string(id));
}

namespace {

std::optional<std::string> from_hex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int high = digit(hex[i]), low = digit(hex[i + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    out.push_back(static_cast<char>(high * 16 + low));
  }
  return out;
}

}  // namespace

Result<PageRequest> parse_page_request(const Request& request) {
  PageRequest page;
  page.limit = limits::kDefaultPageSize;
  const std::string limit = request.query_value("limit");
  if (!limit.empty()) {
    std::size_t parsed = 0;
    auto [end, ec] = std::from_chars(limit.data(), limit.data() + limit.size(), parsed);
    if (ec != std::errc() || end != limit.data() + limit.size() || parsed < 1 ||
        parsed > limits::kMaxPageSize) {
      return invalid_argument(
          "limit must be an integer from 1 to " + std::to_string(limits::kMaxPageSize), "limit");
    }
    page.limit = parsed;
  }
  const std::string cursor = request.query_value("cursor");
  if (!cursor.empty()) {
    const auto decoded = cursor.size() <= 2 * (limits::kMaxIdBytes + 24)
                             ? from_hex(cursor)
                             : std::optional<std::string>();
    const std::size_t colon = decoded ? decoded->find(':') : std::string::npos;
    std::int64_t created_at = 0;
    bool valid = colon != std::string::npos;
    if (valid) {
      auto [end, ec] = std::from_chars(decoded->data(), decoded->data() + colon, created_at);
      valid = ec == std::errc() && end == decoded->data() + colon;
    }
    if (!valid) {
      return invalid_argument("cursor is not a cursor this list returned (use next_cursor)",
                              "cursor");
    }
    page.has_cursor = true;
    page.after_created_at = created_at;
    page.after_id = decoded->substr(colon + 1);
  }
  return page;
}

}  // namespace fulcrum::api
