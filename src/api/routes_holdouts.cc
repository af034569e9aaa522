// Global holdouts (src/experiments/holdout.h), under the API prefix. Admins write (audited),
// analysts read:
//   GET /holdouts, POST /holdouts, GET|PATCH /holdouts/{holdout_id},
//   POST /holdouts/{holdout_id}/stop, GET /holdouts/{holdout_id}/impact[?alpha=]
// A write changes which users the SDK payload holds out, so it is pushed to SDKs at once.
#include <charconv>

#include "api/routes.h"

#ifdef FULCRUM_HAVE_EXPERIMENTS
#include "experiments/holdout.h"
#endif
#ifdef FULCRUM_HAVE_FLAGS
#include "flags/service.h"
#endif

namespace fulcrum::api {

#ifdef FULCRUM_HAVE_EXPERIMENTS

namespace {

namespace ex = experiments;
using json = nlohmann::json;

Response holdout_response(int status, const Result<ex::Holdout>& holdout) {
  if (!holdout.is_ok()) return problem(holdout.status());
  Response response = Response::json(status, ex::to_json(*holdout));
  response.audit_target = holdout->holdout_id;
  return response;
}

// The flags with a rule that opted into the holdout, and what those rules serve.
Result<json> opted_in_flags(Store& store, const std::string& holdout_id) {
  json out = json::array();
#ifdef FULCRUM_HAVE_FLAGS
  auto flags = flags::list_flags(store, /*include_archived=*/true);
  if (!flags) return flags.status();
  for (const flags::Flag& flag : *flags) {
    json rules = json::array();
    for (const flags::Rule& rule : flag.rules) {
      if (rule.holdout_id != holdout_id) continue;
      json entry = {{"id", rule.id},
                    {"type", rule.kind == flags::Rule::Kind::kForce ? "force" : "experiment"},
                    {"enabled", rule.enabled}};
      if (rule.kind == flags::Rule::Kind::kForce) {
        entry["value"] = rule.value;
        if (rule.coverage) entry["coverage"] = *rule.coverage;
      }
      rules.push_back(entry);
    }
    if (rules.empty()) continue;
    const char* state = flag.archived ? "archived" : flag.killed ? "killed" : "active";
    out.push_back({{"key", flag.key},
                   {"status", state},
                   {"default_value", flag.default_value},
                   {"rules", rules}});
  }
#else
  (void)store;
  (void)holdout_id;
#endif
  return out;
}

}  // namespace

void register_holdout_routes(Router& router, ApiContext& context) {
  const std::vector<Role> admin = {Role::kAdmin};
  const std::vector<Role> readers = {Role::kAdmin, Role::kAnalyst};

  router.add(
      Route("GET", api_path("/holdouts"), readers, [&context](const Request&, const AuthContext&) {
        auto holdouts = ex::list_holdouts(context.store);
        if (!holdouts.is_ok()) return problem(holdouts.status());
        json items = json::array();
        for (const ex::Holdout& h : *holdouts) items.push_back(ex::to_json(h));
        return Response::json(200, {{"holdouts", items}, {"count", items.size()}});
      }));

  router.add(Route("POST", api_path("/holdouts"), admin,
                   [&context](const Request& request, const AuthContext& caller) {
                     Result<json> body = parse_json_object(request.body);
                     if (!body.is_ok()) return problem(body.status(), 400);
                     auto created = ex::create_holdout(context.store, context.clock, *body,
                                                       caller.caller_name());
                     if (created.is_ok()) context.documents_changed();
                     Response response = holdout_response(201, created);
                     if (response.status == 201) {
                       response.headers.emplace_back(
                           "Location", api_path("/holdouts/" + response.audit_target));
                     }
                     return response;
                   })
                 .audited());

  router.add(Route("GET", api_path("/holdouts/{holdout_id}"), readers,
                   [&context](const Request& request, const AuthContext&) {
                     return holdout_response(
                         200, ex::get_holdout(context.store, request.params.at("holdout_id")));
                   }));

  router.add(Route("PATCH", api_path("/holdouts/{holdout_id}"), admin,
                   [&context](const Request& request, const AuthContext& caller) {
                     Result<json> body = parse_json_object(request.body);
                     if (!body.is_ok()) return problem(body.status(), 400);
                     auto updated = ex::update_holdout(context.store, context.clock,
                                                       request.params.at("holdout_id"), *body,
                                                       caller.caller_name());
                     if (updated.is_ok()) context.documents_changed();
                     return holdout_response(200, updated);
                   })
                 .audited());

  router.add(Route("POST", api_path("/holdouts/{holdout_id}/stop"), admin,
                   [&context](const Request& request, const AuthContext& caller) {
                     auto stopped =
                         ex::stop_holdout(context.store, context.clock,
                                          request.params.at("holdout_id"), caller.caller_name());
                     if (stopped.is_ok()) context.documents_changed();
                     return holdout_response(200, stopped);
                   })
                 .audited());

  router.add(
      Route("GET", api_path("/holdouts/{holdout_id}/impact"), readers,
            [&context](const Request& request, const AuthContext&) {
              double alpha = 0.05;
              const std::string alpha_text = request.query_value("alpha");
              if (!alpha_text.empty()) {
                const char* end = alpha_text.data() + alpha_text.size();
                auto parsed = std::from_chars(alpha_text.data(), end, alpha);
                if (parsed.ec != std::errc() || parsed.ptr != end || !(alpha > 0) || !(alpha < 1)) {
                  return problem(422, "alpha must be a number in (0, 1)", "alpha");
                }
              }
              const std::string& holdout_id = request.params.at("holdout_id");
              auto impact = ex::holdout_impact(context.store, context.clock, holdout_id, alpha);
              if (!impact.is_ok()) return problem(impact.status());
              auto flags = opted_in_flags(context.store, holdout_id);
              if (!flags.is_ok()) return problem(flags.status());
              (*impact)["flags"] = std::move(*flags);
              Response response = Response::json(200, *impact);
              response.audit_target = holdout_id;
              return response;
            }));
}

#else

void register_holdout_routes(Router&, ApiContext&) {}

#endif

}  // namespace fulcrum::api
