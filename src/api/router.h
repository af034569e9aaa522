// The route table: method + path pattern ("/ab-tests/{test_id}/start") -> handler, with the
// roles allowed to call it and its audit policy declared beside it, so access control is
// readable in one place and enforced by the server before any handler runs.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "api/http.h"

namespace fulcrum::api {

using Handler = std::function<Response(const Request&, const AuthContext&)>;

struct Route {
  Route(std::string method_in, std::string pattern_in, std::vector<Role> roles_in,
        Handler handler_in)
      : method(std::move(method_in)),
        pattern(std::move(pattern_in)),
        roles(std::move(roles_in)),
        handler(std::move(handler_in)) {}
  // Fluent setters so the route table reads as one declaration per route.
  Route&& audited() && { audit = true; return std::move(*this); }
  // Reads (or grants reads of) personal data: successful calls are counted in the hourly
  // personal-data aggregate of the audit log (personal_data_log.h), whoever the caller.
  Route&& personal_data() && { personal = true; return std::move(*this); }
  Route&& self_only(std::string param) && { self_param = std::move(param); return std::move(*this); }
  Route&& run_inline() && { offload = false; return std::move(*this); }
  // Bodies up to ServerOptions::bulk_body_limit_bytes (ingestion), not body_limit_bytes.
  Route&& bulk_body() && { bulk = true; return std::move(*this); }
  // A hot route (ingestion, assignment): runs, and commits, on the priority worker pool, so
  // slow analytic reads on the normal pool cannot hold it up.
  Route&& priority() && { hot = true; return std::move(*this); }

  std::string method;
  std::string pattern;      // full path, segments in braces are parameters
  std::vector<Role> roles;  // who may call; empty means public (no credentials needed)
  // When Role::kUser is allowed: a user token may call only if params[self_param] is its own
  // user id (e.g. "user_id"); other roles are not restricted by it.
  std::string self_param;
  bool audit = false;           // state-changing: every call is appended to the audit log
  bool personal = false;  // personal-data read, audited in hourly aggregates
  bool offload = true;  // run on the worker pool (anything touching the store or engines)
  bool bulk = false;    // large bodies allowed (see bulk_body())
  bool hot = false;     // priority pool (see priority())
  Handler handler;
};

class Router {
 public:
  void add(Route route);

  struct Match {
    const Route* route = nullptr;  // null when nothing matched
    std::map<std::string, std::string> params;
    bool path_matched = false;  // some route has this path but another method (-> 405)
    std::string allowed_methods;
  };
  Match match(std::string_view method, std::string_view path) const;
  const std::vector<Route>& routes() const { return routes_; }

 private:
  struct Compiled {
    std::vector<std::string> segments;  // "{name}" marks a parameter
  };
  std::vector<Route> routes_;
  std::vector<Compiled> compiled_;
};

// True when `auth` may call `route` with these path params: 401 vs 403 decided by caller.
bool role_allowed(const Route& route, const AuthContext& auth,
                  const std::map<std::string, std::string>& params);

// Percent-decodes a path segment or query component ('+' is a space only in queries).
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space);

}  // namespace fulcrum::api
