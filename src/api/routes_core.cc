// Liveness, metrics and user-token minting.
#include "api/routes.h"
#include "core/limits.h"

namespace fulcrum::api {

void register_core_routes(Router& router, ApiContext& context) {
  router.add(Route("GET", "/healthz", {},
                   [](const Request&, const AuthContext&) {
                     return Response::text(200, R"({"status":"ok"})", "application/json");
                   })
                 .run_inline());

  // Public by default (a scraper on a private network); --metrics-auth requires an admin or
  // analyst key. Every label is from a closed set (metrics.h), so rendering is bounded.
  std::vector<Role> metrics_readers;
  if (context.options.metrics_auth) metrics_readers = {Role::kAdmin, Role::kAnalyst};
  router.add(Route("GET", "/metrics", metrics_readers,
                   [&context](const Request&, const AuthContext&) {
                     return Response::text(200, context.metrics.render() + context.extra_metrics(),
                                           "text/plain; version=0.0.4; charset=utf-8");
                   })
                 .run_inline());

  // An admin or a trusted backend (service key) mints a short-lived token the app hands to
  // one end user; with it the user may read only their own personal results. The token
  // names the key that minted it (personal-data reads with it are attributed to that key).
  router.add(Route(
      "POST", api_path("/auth/user-token"), {Role::kAdmin, Role::kService},
      [&context](const Request& request, const AuthContext& caller) {
        Result<nlohmann::json> body = parse_json_object(request.body);
        if (!body.is_ok()) return problem(body.status(), 400);
        Status known = reject_unknown_fields(*body, {"user_id", "ttl_seconds"});
        if (!known.is_ok()) return problem(known, 400);
        if (!body->contains("user_id") || !(*body)["user_id"].is_string()) {
          return problem(422, "user_id is required and must be a string", "user_id");
        }
        UnixSeconds ttl = 3600;
        if (body->contains("ttl_seconds")) {
          if (!(*body)["ttl_seconds"].is_number_integer()) {
            return problem(422, "ttl_seconds must be an integer number of seconds", "ttl_seconds");
          }
          ttl = (*body)["ttl_seconds"].is_number_unsigned() &&
                        (*body)["ttl_seconds"].get<std::uint64_t>() >
                            static_cast<std::uint64_t>(context.options.max_user_token_ttl)
                    ? context.options.max_user_token_ttl + 1
                    : (*body)["ttl_seconds"].get<UnixSeconds>();
          if (ttl <= 0) return problem(422, "ttl_seconds must be positive", "ttl_seconds");
          if (ttl > context.options.max_user_token_ttl) {
            return problem(
                422,
                "ttl_seconds may be at most " + std::to_string(context.options.max_user_token_ttl),
                "ttl_seconds");
          }
        }
        const std::string user_id = (*body)["user_id"].get<std::string>();
        if (Status valid = limits::check_id(user_id, "user_id"); !valid.is_ok()) {
          return problem(valid);
        }
        UnixSeconds expires_at = 0;
        Result<std::string> token =
            context.auth.mint_user_token(user_id, ttl, caller.actor, &expires_at);
        if (!token.is_ok()) return problem(token.status());
        Response response = Response::json(
            201,
            {{"token", *token}, {"user_id", user_id}, {"expires_at", format_iso8601(expires_at)}});
        response.audit_target = "user:" + user_id;
        return response;
      })
                 // A token lets its holder read one user's data: counted with those reads.
                 .personal_data());
}

}  // namespace fulcrum::api
