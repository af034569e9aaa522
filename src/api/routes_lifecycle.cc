// Retention campaigns (src/lifecycle): list (admin; target_users is personal data, so the
// read is audited), trigger a run (admin), and a campaign's measured results (admin,
// analyst: aggregates only). Upgrade timing is wired here once its engine lands.
#include "api/routes.h"

#ifdef FULCRUM_HAVE_OPTIMIZATION
#include "optimization/automated_optimization.h"
#endif

namespace fulcrum::api {

#ifdef FULCRUM_HAVE_OPTIMIZATION

void register_lifecycle_routes(Router& router, ApiContext& context) {
  router.add(Route("GET", api_path("/retention-campaigns"), {Role::kAdmin},
                   [&context](const Request& request, const AuthContext&) {
                     const std::string status = request.query_value("status");
                     if (!status.empty() && status != "draft" && status != "active" &&
                         status != "completed") {
                       return problem(400, "status must be draft, active or completed", "status");
                     }
                     Result<PageRequest> page = parse_page_request(request);
                     if (!page.is_ok()) return problem(page.status(), 400);
                     auto campaigns = context.optimization->list_retention_campaigns(status);
                     if (!campaigns.is_ok()) return problem(campaigns.status());
                     auto [in_page, next_cursor] =
                         page_of(*campaigns, *page, [](const RetentionCampaign& campaign) {
                           return std::pair<UnixSeconds, const std::string&>(
                               campaign.created_at, campaign.campaign_id);
                         });
                     nlohmann::json items = nlohmann::json::array();
                     for (const RetentionCampaign* campaign : in_page) {
                       items.push_back(campaign->to_json());
                     }
                     Response response = Response::json(
                         200, {{"retention_campaigns", items},
                               {"count", items.size()},
                               {"total", campaigns->size()},
                               {"next_cursor", next_cursor.empty()
                                                   ? nlohmann::json(nullptr)
                                                   : nlohmann::json(next_cursor)}});
                     response.audit_target = "retention-campaigns";
                     return response;
                   })
                 .personal_data());

  router.add(Route("POST", api_path("/retention-campaigns/trigger"), {Role::kAdmin},
                   [&context](const Request& request, const AuthContext&) {
                     if (!request.body.empty()) {
                       Result<nlohmann::json> body = parse_json_object(request.body);
                       if (!body.is_ok()) return problem(body.status(), 400);
                       Status known = reject_unknown_fields(*body, {});
                       if (!known.is_ok()) return problem(known, 400);
                     }
                     auto created = context.optimization->trigger_retention_campaigns();
                     if (!created.is_ok()) return problem(created.status());
                     nlohmann::json items = nlohmann::json::array();
                     for (const RetentionCampaign& campaign : *created) {
                       items.push_back(campaign.to_json());
                     }
                     Response response = Response::json(
                         201, {{"retention_campaigns", items}, {"count", items.size()}});
                     response.audit_target = "campaigns:" + std::to_string(items.size());
                     return response;
                   })
                 .audited());

  router.add(Route("GET", api_path("/retention-campaigns/{campaign_id}/results"),
                   {Role::kAdmin, Role::kAnalyst},
                   [&context](const Request& request, const AuthContext&) {
                     auto results = campaign_results(context.store, context.clock,
                                                     request.params.at("campaign_id"));
                     if (!results.is_ok()) return problem(results.status());
                     return Response::json(200, results->to_json());
                   }));
}

#else

void register_lifecycle_routes(Router&, ApiContext&) {}

#endif

}  // namespace fulcrum::api
