// GET /feature-recommendations/{user_id}: admin, or the user themself with a user token.
// One RecommendationService per server keeps the trained model in memory (retrained daily).
#include "api/routes.h"

#ifdef FULCRUM_HAVE_RECOMMEND
#include "recommend/recommendations.h"
#endif
#ifdef FULCRUM_HAVE_LIFECYCLE
#include "lifecycle/upgrade_timing.h"
#endif

namespace fulcrum::api {

#ifdef FULCRUM_HAVE_RECOMMEND

void register_recommend_routes(Router& router, ApiContext& context) {
  auto service = std::make_shared<RecommendationService>();
  router.add(Route("GET", api_path("/feature-recommendations/{user_id}"),
                   {Role::kAdmin, Role::kUser},
                   [&context, service](const Request& request, const AuthContext&) {
                     const std::string& user_id = request.params.at("user_id");
                     auto recommendations = service->for_user(context.store, context.clock, user_id);
                     if (!recommendations.is_ok()) return problem(recommendations.status());
                     Response response = Response::json(
                         200, {{"user_id", user_id},
                               {"recommendations", recommendations_to_json(*recommendations)}});
                     response.audit_target = "user:" + user_id;
                     return response;
                   })
                 .self_only("user_id")
                 .audit_admin_reads());
#ifdef FULCRUM_HAVE_LIFECYCLE
  // GET /upgrade-timing/{user_id}: same access rule; the propensity model is trained once
  // and kept in memory by the service.
  auto timing_service = std::make_shared<UpgradeTimingService>();
  router.add(Route("GET", api_path("/upgrade-timing/{user_id}"), {Role::kAdmin, Role::kUser},
                   [&context, timing_service](const Request& request, const AuthContext&) {
                     const std::string& user_id = request.params.at("user_id");
                     auto timing = timing_service->for_user(context.store, context.clock, user_id);
                     if (!timing.is_ok()) return problem(timing.status());
                     Response response = Response::json(200, timing->to_json());
                     response.audit_target = "user:" + user_id;
                     return response;
                   })
                 .self_only("user_id")
                 .audit_admin_reads());
#endif
}

#else

void register_recommend_routes(Router&, ApiContext&) {}

#endif

}  // namespace fulcrum::api
