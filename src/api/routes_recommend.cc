// GET /feature-recommendations/{user_id} and GET /upgrade-timing/{user_id}: admin, or the
// user themself with a user token. The trained models live in AutomatedOptimization
// (retrained daily), shared with the dashboard.
#include "api/routes.h"

#ifdef FULCRUM_HAVE_OPTIMIZATION
#include "optimization/automated_optimization.h"
#endif

namespace fulcrum::api {

#ifdef FULCRUM_HAVE_OPTIMIZATION

void register_recommend_routes(Router& router, ApiContext& context) {
  // Which model each replica serves (core/stored_model.h).
  context.extra_metrics = [previous = context.extra_metrics, &context] {
    return previous() + render_served_model_metrics(context.optimization->served_models());
  };
  router.add(Route("GET", api_path("/feature-recommendations/{user_id}"),
                   {Role::kAdmin, Role::kUser},
                   [&context](const Request& request, const AuthContext&) {
                     const std::string& user_id = request.params.at("user_id");
                     auto recommendations =
                         context.optimization->generate_feature_recommendations(user_id);
                     if (!recommendations.is_ok()) return problem(recommendations.status());
                     Response response = Response::json(
                         200, {{"user_id", user_id},
                               {"recommendations", recommendations_to_json(*recommendations)}});
                     response.audit_target = "user:" + user_id;
                     return response;
                   })
                 .self_only("user_id")
                 .personal_data());
  router.add(Route("GET", api_path("/upgrade-timing/{user_id}"), {Role::kAdmin, Role::kUser},
                   [&context](const Request& request, const AuthContext&) {
                     const std::string& user_id = request.params.at("user_id");
                     auto timing = context.optimization->optimize_upgrade_timing(user_id);
                     if (!timing.is_ok()) return problem(timing.status());
                     Response response = Response::json(200, timing->to_json());
                     response.audit_target = "user:" + user_id;
                     return response;
                   })
                 .self_only("user_id")
                 .personal_data());
}

#else

void register_recommend_routes(Router&, ApiContext&) {}

#endif

}  // namespace fulcrum::api
