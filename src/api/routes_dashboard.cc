// GET /dashboard: everything the dashboard shows, in one document: the five sections
// AutomatedOptimization assembles from the engines' cached results (optimization/dashboard.h).
#include "api/routes.h"

#ifdef FULCRUM_HAVE_OPTIMIZATION
#include "optimization/automated_optimization.h"
#endif

namespace fulcrum::api {

#ifdef FULCRUM_HAVE_OPTIMIZATION

void register_dashboard_routes(Router& router, ApiContext& context) {
  router.add(Route("GET", api_path("/dashboard"), {Role::kAdmin, Role::kAnalyst},
                   [&context](const Request&, const AuthContext&) {
                     auto document = context.optimization->dashboard();
                     if (!document.is_ok()) return problem(document.status());
                     return Response::json(200, *document);
                   }));
}

#else

void register_dashboard_routes(Router&, ApiContext&) {}

#endif

}  // namespace fulcrum::api
