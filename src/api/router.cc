#include "api/router.h"

#include <algorithm>

#include "core/limits.h"
#include "core/untrusted_json.h"

namespace fulcrum::api {

namespace {

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> segments;
  std::size_t start = 0;
  if (!path.empty() && path.front() == '/') start = 1;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    segments.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return segments;
}

bool is_param(std::string_view segment) {
  return segment.size() >= 2 && segment.front() == '{' && segment.back() == '}';
}

// Path parameters are ids (test ids, user ids, campaign ids): valid UTF-8 and at most
// kMaxIdBytes, so a handler never sees, stores or echoes anything else. Query values must be
// valid UTF-8 too.
Handler with_checked_parameters(Handler handler) {
  return [handler = std::move(handler)](const Request& request, const AuthContext& auth) {
    for (const auto& [name, value] : request.params) {
      Status valid = limits::check_id(value, name);
      if (!valid.is_ok()) {
        return problem(400, "path parameter " + name + " " + valid.message(), name);
      }
    }
    for (const auto& [name, value] : request.query) {
      if (!is_valid_utf8(name) || !is_valid_utf8(value)) {
        const std::string field = is_valid_utf8(name) ? name : "query";
        return problem(400, "query parameter " + field + " is not valid UTF-8", field);
      }
    }
    return handler(request, auth);
  };
}

}  // namespace

void Router::add(Route route) {
  route.handler = with_checked_parameters(std::move(route.handler));
  Compiled compiled;
  for (std::string_view segment : split_path(route.pattern)) compiled.segments.emplace_back(segment);
  routes_.push_back(std::move(route));
  compiled_.push_back(std::move(compiled));
}

Router::Match Router::match(std::string_view method, std::string_view path) const {
  Match result;
  const std::vector<std::string_view> segments = split_path(path);
  for (std::size_t i = 0; i < routes_.size(); ++i) {
    const Compiled& compiled = compiled_[i];
    if (compiled.segments.size() != segments.size()) continue;
    std::map<std::string, std::string> params;
    bool matched = true;
    for (std::size_t s = 0; s < segments.size() && matched; ++s) {
      const std::string& pattern = compiled.segments[s];
      if (is_param(pattern)) {
        if (segments[s].empty()) {
          matched = false;
          break;
        }
        std::optional<std::string> value = percent_decode(segments[s], false);
        if (!value) {
          matched = false;
          break;
        }
        params[pattern.substr(1, pattern.size() - 2)] = std::move(*value);
      } else if (pattern != segments[s]) {
        matched = false;
      }
    }
    if (!matched) continue;
    if (routes_[i].method == method) {
      result.route = &routes_[i];
      result.params = std::move(params);
      return result;
    }
    result.path_matched = true;
    if (!result.allowed_methods.empty()) result.allowed_methods += ", ";
    result.allowed_methods += routes_[i].method;
  }
  return result;
}

bool role_allowed(const Route& route, const AuthContext& auth,
                  const std::map<std::string, std::string>& params) {
  if (route.roles.empty()) return true;
  if (!auth.authenticated) return false;
  if (std::find(route.roles.begin(), route.roles.end(), auth.role) == route.roles.end()) {
    return false;
  }
  if (auth.role == Role::kUser && !route.self_param.empty()) {
    auto it = params.find(route.self_param);
    return it != params.end() && it->second == auth.user_id;
  }
  return true;
}

std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      int high = hex(text[i + 1]), low = hex(text[i + 2]);
      if (high < 0 || low < 0) return std::nullopt;
      out.push_back(static_cast<char>(high * 16 + low));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace fulcrum::api
