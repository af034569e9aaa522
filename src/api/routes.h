// Internal: what route handlers share, and the per-domain registration functions. Each
// routes_<domain>.cc adds its routes to the table; engines that are not built in simply
// register nothing.
#pragma once

#include <functional>

#include "api/audit.h"
#include "api/auth.h"
#include "api/metrics.h"
#include "api/router.h"
#include "api/server.h"

namespace fulcrum {
class AutomatedOptimization;
}

namespace fulcrum::api {

struct ApiContext {
  Store& store;
  const Clock& clock;
  Authenticator& auth;
  HttpMetrics& metrics;
  const ServerOptions& options;
  // Called after a route wrote flags or A/B tests through this server, so the SDK payload
  // is rebuilt and pushed to streaming SDKs at once (register_flag_routes sets it; writes
  // by other processes are noticed by polling).
  std::function<void()> documents_changed = [] {};
  // Called once when the server stops: routes with background threads stop them here, so
  // nothing touches the store after the server is gone (the server's Impl may outlive it).
  std::function<void()> stop_background = [] {};
  // Called once when the server has started listening (background threads begin here).
  std::function<void()> start_background = [] {};
  // Appended to GET /metrics (closed label sets, like HttpMetrics).
  std::function<std::string()> extra_metrics = [] { return std::string(); };
  // The engines' shared face (optimization/automated_optimization.h): the trained models and
  // the dashboard cache the engine routes use. Null when the engines are not built in.
  AutomatedOptimization* optimization = nullptr;
  // The audit chain's key (GET /audit/head signs the head with it).
  const AuditKey* audit_key = nullptr;
};

inline std::string api_path(std::string_view suffix) {
  return std::string(kApiPrefix) + std::string(suffix);
}

void register_core_routes(Router& router, ApiContext& context);
void register_ingest_routes(Router& router, ApiContext& context);
void register_experiment_routes(Router& router, ApiContext& context);
void register_dashboard_routes(Router& router, ApiContext& context);
void register_recommend_routes(Router& router, ApiContext& context);
void register_sunset_routes(Router& router, ApiContext& context);
void register_lifecycle_routes(Router& router, ApiContext& context);
// Feature flags (admin CRUD under the API prefix) and SDK delivery at the server root:
// GET /api/features/{clientKey}, GET /sub/{clientKey}, POST /api/eval/{clientKey}, OFREP.
void register_flag_routes(Router& router, ApiContext& context);
void register_user_routes(Router& router, ApiContext& context);
// Global holdouts: CRUD, stop and the cumulative-impact view (routes_holdouts.cc).
void register_holdout_routes(Router& router, ApiContext& context);
// Jobs, webhooks, experiment policies and campaign target users (src/automation).
void register_automation_routes(Router& router, ApiContext& context);
// Token revocation, token-key rotation and the audit head (routes_trust.cc).
void register_trust_routes(Router& router, ApiContext& context);

}  // namespace fulcrum::api
