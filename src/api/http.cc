#include "api/http.h"

#include <algorithm>

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

Response Response::json(int status, const nlohmann::json& document) {
  Response response;
  response.status = status;
  response.body = document.dump();
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
    case StatusCode::kInternal:
      return 500;
  }
  return 500;
}

Response problem(const Status& status, int invalid_argument_status) {
  return problem(http_status_for(status, invalid_argument_status), status.message(),
                 status.field());
}

Result<nlohmann::json> parse_json_object(std::string_view body) {
  nlohmann::json document;
  try {
    document = nlohmann::json::parse(body);
  } catch (const nlohmann::json::parse_error& error) {
    return invalid_argument("request body is not valid JSON: " + std::string(error.what()),
                            "body");
  }
  if (!document.is_object()) return invalid_argument("request body must be a JSON object", "body");
  return document;
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
      return invalid_argument("unknown field '" + std::string(prefix) + item.key() +
                                  "' (allowed: " + allowed + ")",
                              std::string(prefix) + item.key());
    }
  }
  return Status::ok();
}

}  // namespace fulcrum::api
