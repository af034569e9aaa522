// GET /feature-recommendations/{user_id}: admin, or the user themself with a user token.
// One RecommendationService per server keeps the trained model in memory (retrained daily).
#include "api/routes.h"

#ifdef FULCRUM_HAVE_RECOMMEND
#include "recommend/recommendations.h"
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
}

#else

void register_recommend_routes(Router&, ApiContext&) {}

#endif

}  // namespace fulcrum::api
