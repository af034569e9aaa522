// Automation (src/automation, docs/automation.md): the scheduler's jobs, webhook endpoints
// and deliveries, per-test policies, and campaign target users as a paged API and CSV for
// CRMs that pull. The Automation runtime lives as long as the route table; its background
// threads start with the server (when ServerOptions::automation) and stop with it.
#include "api/routes.h"

#ifdef FULCRUM_HAVE_AUTOMATION
#include <algorithm>
#include <charconv>

#include "api/audit.h"
#include "automation/runtime.h"
#include "core/ids.h"
#include "experiments/service.h"
#include "optimization/automated_optimization.h"
#endif

namespace fulcrum::api {

#ifdef FULCRUM_HAVE_AUTOMATION

namespace {

using nlohmann::json;
namespace au = automation;

std::string csv_field(const std::string& value) {
  std::string text = value;
  // A leading formula character would run as a formula in a spreadsheet (CSV injection).
  if (!text.empty() && (text[0] == '=' || text[0] == '+' || text[0] == '-' || text[0] == '@')) {
    text = "'" + text;
  }
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

std::optional<std::string> decode_hex_text(const std::string& hex) {
  if (hex.size() % 2 != 0 || hex.size() > 512) return std::nullopt;
  std::string out;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    int value = 0;
    for (int k = 0; k < 2; ++k) {
      const char c = hex[i + k];
      const int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (digit < 0) return std::nullopt;
      value = value * 16 + digit;
    }
    out.push_back(static_cast<char>(value));
  }
  return out;
}

Result<std::size_t> parse_limit(const Request& request, std::size_t fallback, std::size_t max) {
  const std::string text = request.query_value("limit");
  if (text.empty()) return fallback;
  std::size_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < 1 || value > max) {
    return invalid_argument("limit must be an integer in [1, " + std::to_string(max) + "]",
                            "limit");
  }
  return value;
}

}  // namespace

void register_automation_routes(Router& router, ApiContext& context) {
  if (!context.optimization) return;
  au::AutomationOptions options;
  options.run_scheduler = context.options.automation_scheduler;
  options.scheduler_interval = context.options.scheduler_interval;
  options.dispatch_interval = context.options.webhook_dispatch_interval;
  options.retry.base_seconds = context.options.webhook_retry_base_seconds;
  options.retry.cap_seconds = context.options.webhook_retry_cap_seconds;
  options.retry.max_attempts = context.options.webhook_max_attempts;
  options.webhook_timeout = context.options.webhook_timeout;
  Store& store = context.store;
  // The chain's key is read at call time: the server sets it up alongside the routes.
  au::AuditSink audit = [&context](AuditEntry entry) {
    return append_audit(context.store, *context.audit_key, std::move(entry)).status();
  };
  auto runtime = std::make_shared<au::Automation>(
      context.store, context.clock,
      au::builtin_jobs({context.store, context.clock, *context.optimization, audit,
                        context.options.change_feed_retention}),
      options);
  const bool run_background = context.options.automation;
  context.start_background = [previous = context.start_background, runtime, run_background] {
    previous();
    if (run_background) runtime->start();
  };
  context.stop_background = [previous = context.stop_background, runtime] {
    runtime->stop();
    previous();
  };
  context.extra_metrics = [previous = context.extra_metrics, runtime] {
    return previous() + runtime->render_metrics();
  };

  // --- jobs ------------------------------------------------------------------------------
  router.add(Route("GET", api_path("/automation/jobs"), {Role::kAdmin, Role::kAnalyst},
                   [runtime](const Request&, const AuthContext&) {
                     auto jobs = runtime->scheduler().list();
                     if (!jobs.is_ok()) return problem(jobs.status());
                     json items = json::array();
                     for (const auto& job : *jobs) items.push_back(au::to_json(job));
                     return Response::json(
                         200, {{"jobs", items}, {"runner", runtime->scheduler().holder()}});
                   }));
  router.add(Route("PUT", api_path("/automation/jobs/{job_name}"), {Role::kAdmin},
                   [runtime](const Request& request, const AuthContext&) {
                     auto body = parse_json_object(request.body);
                     if (!body.is_ok()) return problem(body.status(), 400);
                     auto config =
                         runtime->scheduler().configure(request.params.at("job_name"), *body);
                     if (!config.is_ok()) return problem(config.status());
                     return Response::json(200, config->to_json());
                   })
                 .audited());
  router.add(Route("POST", api_path("/automation/jobs/{job_name}/run"), {Role::kAdmin},
                   [runtime](const Request& request, const AuthContext&) {
                     auto run = runtime->scheduler().run_now(request.params.at("job_name"));
                     if (!run.is_ok()) return problem(run.status());
                     runtime->poke();
                     return Response::json(200, au::to_json(*run));
                   })
                 .audited());
  router.add(Route("GET", api_path("/automation/jobs/{job_name}/runs"),
                   {Role::kAdmin, Role::kAnalyst},
                   [runtime, &store](const Request& request, const AuthContext&) {
                     const std::string& name = request.params.at("job_name");
                     auto config = runtime->scheduler().config(name);
                     if (!config.is_ok()) return problem(config.status());
                     auto limit = parse_limit(request, 50, 500);
                     if (!limit.is_ok()) return problem(limit.status(), 400);
                     auto runs = store.list_job_runs(name, *limit);
                     if (!runs.is_ok()) return problem(runs.status());
                     json items = json::array();
                     for (const auto& run : *runs) items.push_back(au::to_json(run));
                     return Response::json(200, {{"job", name}, {"runs", items}});
                   }));

  // --- webhooks ----------------------------------------------------------------------------
  router.add(Route("GET", api_path("/webhooks"), {Role::kAdmin},
                   [&store](const Request&, const AuthContext&) {
                     auto endpoints = au::list_endpoints(store);
                     if (!endpoints.is_ok()) return problem(endpoints.status());
                     json items = json::array();
                     for (const auto& e : *endpoints) items.push_back(e.to_json(false));
                     return Response::json(
                         200, {{"endpoints", items}, {"event_types", au::event_types()}});
                   }));
  router.add(Route("POST", api_path("/webhooks"), {Role::kAdmin},
                   [&context](const Request& request, const AuthContext&) {
                     auto body = parse_json_object(request.body);
                     if (!body.is_ok()) return problem(body.status(), 400);
                     auto endpoint = au::create_endpoint(context.store, context.clock, *body);
                     if (!endpoint.is_ok()) return problem(endpoint.status());
                     // The secret is shown once, here.
                     Response response = Response::json(201, endpoint->to_json(true));
                     response.audit_target = endpoint->endpoint_id;
                     return response;
                   })
                 .audited());
  router.add(Route("POST", api_path("/webhooks/{endpoint_id}/rotate-secret"), {Role::kAdmin},
                   [&context](const Request& request, const AuthContext&) {
                     auto body = parse_json_object(request.body.empty() ? "{}" : request.body);
                     if (!body.is_ok()) return problem(body.status(), 400);
                     if (auto unknown = reject_unknown_fields(*body, {"grace_seconds"});
                         !unknown.is_ok()) {
                       return problem(unknown, 422);
                     }
                     UnixSeconds grace = au::kDefaultSecretGraceSeconds;
                     if (auto g = body->find("grace_seconds"); g != body->end()) {
                       if (!g->is_number_integer()) {
                         return problem(422, "grace_seconds must be an integer", "grace_seconds");
                       }
                       grace = g->get<UnixSeconds>();
                     }
                     auto rotated = au::rotate_endpoint_secret(
                         context.store, context.clock, request.params.at("endpoint_id"), grace);
                     if (!rotated.is_ok()) return problem(rotated.status());
                     // The new secret is shown once, here; the previous one is never shown.
                     json out = rotated->to_json(false);
                     out["secret"] = rotated->secret;
                     Response response = Response::json(200, out);
                     response.audit_target = rotated->endpoint_id;
                     return response;
                   })
                 .audited());
  router.add(Route("DELETE", api_path("/webhooks/{endpoint_id}"), {Role::kAdmin},
                   [&context](const Request& request, const AuthContext&) {
                     auto removed = au::remove_endpoint(context.store, context.clock,
                                                        request.params.at("endpoint_id"));
                     if (!removed.is_ok()) return problem(removed.status());
                     return Response::json(200, removed->to_json(false));
                   })
                 .audited());
  router.add(Route("GET", api_path("/webhooks/deliveries"), {Role::kAdmin},
                   [&store](const Request& request, const AuthContext&) {
                     WebhookDeliveryFilter filter;
                     filter.endpoint_id = request.query_value("endpoint_id");
                     filter.status = request.query_value("status");
                     if (!filter.status.empty() && filter.status != "pending" &&
                         filter.status != "delivered" && filter.status != "dead") {
                       return problem(400, "status must be pending, delivered or dead", "status");
                     }
                     auto limit = parse_limit(request, 100, 1000);
                     if (!limit.is_ok()) return problem(limit.status(), 400);
                     filter.limit = *limit;
                     auto deliveries = store.list_webhook_deliveries(filter);
                     if (!deliveries.is_ok()) return problem(deliveries.status());
                     const bool with_payload = request.query_value("payload") == "true";
                     json items = json::array();
                     for (const auto& d : *deliveries) items.push_back(au::to_json(d, with_payload));
                     return Response::json(200, {{"deliveries", items}, {"count", items.size()}});
                   }));
  router.add(Route("POST", api_path("/webhooks/deliveries/{delivery_id}/redeliver"),
                   {Role::kAdmin},
                   [runtime](const Request& request, const AuthContext&) {
                     auto delivery =
                         runtime->dispatcher().redeliver(request.params.at("delivery_id"));
                     if (!delivery.is_ok()) return problem(delivery.status());
                     runtime->poke();
                     return Response::json(202, au::to_json(*delivery, false));
                   })
                 .audited());

  // --- experiment policies ---------------------------------------------------------------
  router.add(Route("GET", api_path("/ab-tests/{test_id}/policy"), {Role::kAdmin, Role::kAnalyst},
                   [&store](const Request& request, const AuthContext&) {
                     auto policy = au::get_policy(store, request.params.at("test_id"));
                     if (!policy.is_ok()) return problem(policy.status());
                     return Response::json(200, policy->to_json());
                   }));
  router.add(Route("PUT", api_path("/ab-tests/{test_id}/policy"), {Role::kAdmin},
                   [&context](const Request& request, const AuthContext&) {
                     auto body = parse_json_object(request.body);
                     if (!body.is_ok()) return problem(body.status(), 400);
                     auto policy = au::put_policy(context.store, context.clock,
                                                  request.params.at("test_id"), *body);
                     if (!policy.is_ok()) return problem(policy.status());
                     return Response::json(200, policy->to_json());
                   })
                 .audited());
  router.add(Route("POST", api_path("/ab-tests/{test_id}/policy/override"), {Role::kAdmin},
                   [&context](const Request& request, const AuthContext&) {
                     auto body = parse_json_object(request.body);
                     if (!body.is_ok()) return problem(body.status(), 400);
                     Status known = reject_unknown_fields(*body, {"check", "resume"});
                     if (!known.is_ok()) return problem(known, 400);
                     if (!body->contains("check") || !(*body)["check"].is_string()) {
                       return problem(422, "check is required (a health check name)", "check");
                     }
                     const bool resume = body->value("resume", false);
                     auto policy = au::override_policy(context.store, context.clock,
                                                       request.params.at("test_id"),
                                                       (*body)["check"].get<std::string>(), resume);
                     if (!policy.is_ok()) return problem(policy.status());
                     context.documents_changed();
                     if (context.optimization) {
                       context.optimization->dashboard_changed(DashboardSection::kAbTests);
                     }
                     return Response::json(200, policy->to_json());
                   })
                 .audited());

  // --- campaign target users (CRM pull) ---------------------------------------------------
  auto members_page = [&store](const Request& request, bool csv) -> Response {
    const std::string& campaign_id = request.params.at("campaign_id");
    auto campaign = get_campaign(store, campaign_id);
    if (!campaign.is_ok()) return problem(campaign.status());
    auto members = store.campaign_members(campaign_id);
    if (!members.is_ok()) return problem(members.status());
    std::sort(members->begin(), members->end(),
              [](const auto& a, const auto& b) { return a.user_id < b.user_id; });
    if (csv) {
      std::string out = "user_id,holdout,targeted_at\n";
      for (const auto& m : *members) {
        out += csv_field(m.user_id) + (m.holdout ? ",true," : ",false,") +
               format_iso8601(m.targeted_at) + "\n";
      }
      Response response = Response::text(200, std::move(out), "text/csv; charset=utf-8");
      response.headers.emplace_back("Content-Disposition",
                                    "attachment; filename=\"" + campaign_id + "-target-users.csv\"");
      response.audit_target = campaign_id;
      return response;
    }
    auto limit = parse_limit(request, 500, 5000);
    if (!limit.is_ok()) return problem(limit.status(), 400);
    std::string after;
    if (const std::string cursor = request.query_value("cursor"); !cursor.empty()) {
      auto decoded = decode_hex_text(cursor);
      if (!decoded) return problem(400, "cursor is not one this API returned", "cursor");
      after = *decoded;
    }
    auto first = std::upper_bound(members->begin(), members->end(), after,
                                  [](const std::string& key, const auto& m) {
                                    return key < m.user_id;
                                  });
    if (after.empty()) first = members->begin();
    json users = json::array();
    auto it = first;
    for (; it != members->end() && users.size() < *limit; ++it) {
      users.push_back({{"user_id", it->user_id},
                       {"holdout", it->holdout},
                       {"targeted_at", format_iso8601(it->targeted_at)}});
    }
    const bool more = it != members->end();
    Response response = Response::json(
        200, {{"campaign_id", campaign_id},
              {"users", users},
              {"count", users.size()},
              {"total", members->size()},
              {"next_cursor", more ? json(to_hex(users.back()["user_id"].get<std::string>()))
                                   : json(nullptr)}});
    response.audit_target = campaign_id;
    return response;
  };
  router.add(Route("GET", api_path("/retention-campaigns/{campaign_id}/target-users"),
                   {Role::kAdmin, Role::kService},
                   [members_page](const Request& request, const AuthContext&) {
                     return members_page(request, false);
                   })
                 .personal_data());
  router.add(Route("GET", api_path("/retention-campaigns/{campaign_id}/target-users.csv"),
                   {Role::kAdmin, Role::kService},
                   [members_page](const Request& request, const AuthContext&) {
                     return members_page(request, true);
                   })
                 .personal_data());
}

#else

void register_automation_routes(Router&, ApiContext&) {}

#endif

}  // namespace fulcrum::api
