// GET /feature-sunset: one analysis per feature (admin).
#include "api/routes.h"

#ifdef FULCRUM_HAVE_OPTIMIZATION
#include "optimization/automated_optimization.h"
#endif

namespace fulcrum::api {

#ifdef FULCRUM_HAVE_OPTIMIZATION

void register_sunset_routes(Router& router, ApiContext& context) {
  router.add(Route("GET", api_path("/feature-sunset"), {Role::kAdmin},
                   [&context](const Request&, const AuthContext&) {
                     auto analyses = context.optimization->analyze_feature_sunset();
                     if (!analyses.is_ok()) return problem(analyses.status());
                     return Response::json(200, sunset_analyses_to_json(*analyses));
                   }));
}

#else

void register_sunset_routes(Router&, ApiContext&) {}

#endif

}  // namespace fulcrum::api
