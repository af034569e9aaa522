// A/B test routes over the experiments engine (src/experiments): create, list, get, the
// lifecycle actions, assignment and results. Validation lives in the engine; this file maps
// HTTP to calls and Status to problem responses.
#include <charconv>

#include "api/routes.h"
#include "core/limits.h"

#ifdef FULCRUM_HAVE_EXPERIMENTS
#include "experiments/bandit.h"
#include "experiments/experiment_cache.h"
#include "experiments/service.h"
#endif
#ifdef FULCRUM_HAVE_OPTIMIZATION
#include "optimization/automated_optimization.h"
#endif

namespace fulcrum::api {

#ifdef FULCRUM_HAVE_EXPERIMENTS

namespace {

namespace ex = experiments;

Response experiment_response(int status, const Result<ex::Experiment>& experiment) {
  if (!experiment.is_ok()) return problem(experiment.status());
  Response response = Response::json(status, ex::to_json(*experiment));
  response.audit_target = experiment->test_id;
  return response;
}

// Lifecycle actions take no body, except complete's optional {"winner": "<group>"}.
Response lifecycle_action(ApiContext& context, ex::ExperimentCache& cache, const Request& request,
                          ex::LifecycleAction action) {
  std::optional<std::string> forced_winner;
  if (!request.body.empty()) {
    Result<nlohmann::json> body = parse_json_object(request.body);
    if (!body.is_ok()) return problem(body.status(), 400);
    if (action == ex::LifecycleAction::kComplete) {
      Status known = reject_unknown_fields(*body, {"winner"});
      if (!known.is_ok()) return problem(known, 400);
      if (body->contains("winner") && !(*body)["winner"].is_null()) {
        if (!(*body)["winner"].is_string()) {
          return problem(422, "winner must be a group name (string)", "winner");
        }
        forced_winner = (*body)["winner"].get<std::string>();
      }
    } else {
      Status known = reject_unknown_fields(*body, {});
      if (!known.is_ok()) return problem(known, 400);
    }
  }
  const std::string& test_id = request.params.at("test_id");
  auto applied =
      ex::apply_lifecycle_action(context.store, context.clock, test_id, action, forced_winner);
  cache.invalidate(test_id);  // before answering: a read after this call sees the new version
  if (applied.is_ok()) context.documents_changed();
#ifdef FULCRUM_HAVE_OPTIMIZATION
  if (applied.is_ok()) context.optimization->dashboard_changed(DashboardSection::kAbTests);
#endif
  return experiment_response(200, applied);
}

// Shortest round-trip text of a share (0.05, not 0.050000).
std::string format_fraction(double value) { return nlohmann::json(value).dump(); }

}  // namespace

void register_experiment_routes(Router& router, ApiContext& context) {
  const std::vector<Role> admin = {Role::kAdmin};
  const std::vector<Role> readers = {Role::kAdmin, Role::kAnalyst};
  // Shared by the routes below (the router keeps them, and so the cache, alive).
  auto cache = std::make_shared<ex::ExperimentCache>(context.options.experiment_cache);

  router.add(Route("POST", api_path("/ab-tests"), admin,
                   [&context](const Request& request, const AuthContext& caller) {
                     Result<nlohmann::json> body = parse_json_object(request.body);
                     if (!body.is_ok()) return problem(body.status(), 400);
                     // created_by is who called: the key's label (else its id). A body may
                     // repeat it but not claim someone else.
                     const std::string creator = caller.caller_name();
                     if (body->contains("created_by") && !(*body)["created_by"].is_null() &&
                         (*body)["created_by"] != nlohmann::json(creator)) {
                       return problem(422,
                                      "created_by is the caller ('" + creator +
                                          "'); omit it or send that value",
                                      "created_by");
                     }
                     (*body)["created_by"] = creator;
                     Response response = experiment_response(
                         201, ex::create_ab_test(context.store, context.clock, *body));
#ifdef FULCRUM_HAVE_OPTIMIZATION
                     if (response.status == 201) {
                       context.optimization->dashboard_changed(DashboardSection::kAbTests);
                     }
#endif
                     if (response.status == 201) {
                       response.headers.emplace_back(
                           "Location", api_path("/ab-tests/" + response.audit_target));
                     }
                     return response;
                   })
                 .audited());

  router.add(Route("GET", api_path("/ab-tests"), readers,
                   [&context](const Request& request, const AuthContext&) {
                     std::optional<ex::ExperimentStatus> status;
                     const std::string status_text = request.query_value("status");
                     if (!status_text.empty()) {
                       status = ex::parse_status(status_text);
                       if (!status) {
                         return problem(400,
                                        "status must be draft, active, paused, completed or "
                                        "cancelled",
                                        "status");
                       }
                     }
                     Result<PageRequest> page = parse_page_request(request);
                     if (!page.is_ok()) return problem(page.status(), 400);
                     auto tests = ex::list_ab_tests(context.store, status);
                     if (!tests.is_ok()) return problem(tests.status());
                     auto [tests_in_page, next_cursor] =
                         page_of(*tests, *page, [](const ex::Experiment& test) {
                           return std::pair<UnixSeconds, const std::string&>(test.created_at,
                                                                             test.test_id);
                         });
                     nlohmann::json items = nlohmann::json::array();
                     for (const ex::Experiment* test : tests_in_page) {
                       items.push_back(ex::to_json(*test));
                     }
                     return Response::json(
                         200, {{"ab_tests", items},
                               {"count", items.size()},
                               {"total", tests->size()},
                               {"next_cursor", next_cursor.empty() ? nlohmann::json(nullptr)
                                                                   : nlohmann::json(next_cursor)}});
                   }));

  // Inline: a cache hit is a lookup and a copy; a miss is one point read.
  router.add(Route("GET", api_path("/ab-tests/{test_id}"), readers,
                   [&context, cache](const Request& request, const AuthContext&) {
                     const std::string& test_id = request.params.at("test_id");
                     auto entry = cache->get(context.store, test_id);
                     if (!entry.is_ok()) return problem(entry.status());
                     Response response = Response::text(200, (*entry)->json, "application/json");
                     response.audit_target = test_id;
                     return response;
                   })
                 .run_inline());

  for (ex::LifecycleAction action :
       {ex::LifecycleAction::kStart, ex::LifecycleAction::kPause, ex::LifecycleAction::kResume,
        ex::LifecycleAction::kComplete, ex::LifecycleAction::kCancel}) {
    router.add(Route("POST",
                     api_path(std::string("/ab-tests/{test_id}/") + ex::action_name(action)),
                     admin,
                     [&context, cache, action](const Request& request, const AuthContext&) {
                       return lifecycle_action(context, *cache, request, action);
                     })
                   .audited());
  }

  // A seed-preserving coverage change (experiments::set_coverage): included users keep their
  // variant. Besides the call's audit entry, an "experiment.coverage" entry records the old
  // and the new value.
  router.add(Route("PUT", api_path("/ab-tests/{test_id}/coverage"), admin,
                   [&context, cache](const Request& request, const AuthContext& caller) {
                     Result<nlohmann::json> body = parse_json_object(request.body);
                     if (!body.is_ok()) return problem(body.status(), 400);
                     Status known = reject_unknown_fields(*body, {"coverage"});
                     if (!known.is_ok()) return problem(known, 400);
                     if (!body->contains("coverage") || !(*body)["coverage"].is_number()) {
                       return problem(422, "coverage is required: a number in (0, 1]",
                                      "coverage");
                     }
                     const std::string& test_id = request.params.at("test_id");
                     auto updated = ex::set_coverage(context.store, context.clock, test_id,
                                                     (*body)["coverage"].get<double>(),
                                                     caller.caller_name());
                     cache->invalidate(test_id);
                     if (!updated.is_ok()) return problem(updated.status());
                     context.documents_changed();
#ifdef FULCRUM_HAVE_OPTIMIZATION
                     context.optimization->dashboard_changed(DashboardSection::kAbTests);
#endif
                     // The call's own audit entry says "ok"; this one says what changed.
                     AuditEntry change;
                     change.at = context.clock.now();
                     change.actor = caller.actor;
                     change.action = "experiment.coverage";
                     change.target = test_id;
                     change.outcome = "ok: coverage " +
                                      format_fraction(updated->previous_coverage) + " -> " +
                                      format_fraction(updated->experiment.config.coverage);
                     auto audited =
                         append_audit(context.store, *context.audit_key, std::move(change));
                     if (!audited.is_ok()) return problem(audited.status());
                     return experiment_response(200, updated->experiment);
                   })
                 .audited());

  // The app's backend asks which variant a user sees; an exposure is recorded when the
  // user is in the running test. Inline: the decision needs the cached test (and for
  // targeting without attributes, one point read of the user); the exposure is handed to the
  // server, which commits it with the audit entry (group commit) before answering.
  router.add(Route("POST", api_path("/ab-tests/{test_id}/assign"),
                   {Role::kAdmin, Role::kService},
                   [&context, cache](const Request& request, const AuthContext&) {
                     Result<nlohmann::json> body = parse_json_object(request.body);
                     if (!body.is_ok()) return problem(body.status(), 400);
                     Status known = reject_unknown_fields(*body, {"user_id", "attributes"});
                     if (!known.is_ok()) return problem(known, 400);
                     if (!body->contains("user_id") || !(*body)["user_id"].is_string()) {
                       return problem(422, "user_id is required and must be a string",
                                      "user_id");
                     }
                     const nlohmann::json* attributes = nullptr;
                     if (body->contains("attributes")) {
                       attributes = &(*body)["attributes"];
                       if (!attributes->is_object()) {
                         return problem(422, "attributes must be an object", "attributes");
                       }
                     }
                     const std::string user_id = (*body)["user_id"].get<std::string>();
                     const std::string& test_id = request.params.at("test_id");
                     if (Status valid = limits::check_id(user_id, "user_id"); !valid.is_ok()) {
                       return problem(valid);
                     }
                     if (attributes) {
                       if (attributes->size() > limits::kMaxAttributes) {
                         return problem(422,
                                        "more than " + std::to_string(limits::kMaxAttributes) +
                                            " attributes",
                                        "attributes");
                       }
                       if (dump_json(*attributes).size() > limits::kMaxAttributesBytes) {
                         return problem(422,
                                        "attributes larger than " +
                                            std::to_string(limits::kMaxAttributesBytes) +
                                            " bytes of JSON",
                                        "attributes");
                       }
                     }
                     auto entry = cache->get(context.store, test_id);
                     if (!entry.is_ok()) return problem(entry.status());
                     std::optional<ExposureEvent> exposure;
                     auto assignment =
                         ex::plan_assignment(context.store, (*entry)->experiment, user_id,
                                             attributes, context.clock.now(), exposure);
                     if (!assignment.is_ok()) return problem(assignment.status());
                     // Reported as recorded: the server answers only once it is committed.
                     if (exposure) assignment->exposure_recorded = true;
                     Response response = Response::json(200, ex::to_json(*assignment));
                     if (exposure) response.exposures_to_commit.push_back(std::move(*exposure));
                     response.audit_target = test_id + ":" + user_id;
                     return response;
                   })
                 .audited()
                 .run_inline()
                 .priority());

  router.add(Route("GET", api_path("/ab-tests/{test_id}/results"), readers,
                   [&context](const Request& request, const AuthContext&) {
                     // ?slice=<attribute>&slice_top=<n>: the primary metric per attribute value.
                     ex::ResultsOptions options;
                     if (auto slice = request.query.find("slice"); slice != request.query.end()) {
                       options.slice = slice->second;
                     }
                     if (auto top = request.query.find("slice_top"); top != request.query.end()) {
                       const std::string& text = top->second;
                       std::size_t parsed = 0;
                       auto [end, ec] =
                           std::from_chars(text.data(), text.data() + text.size(), parsed);
                       if (ec != std::errc() || end != text.data() + text.size()) parsed = 0;
                       options.slice_top = parsed;  // 0 is refused naming slice_top
                     }
                     auto stratify = request.query_bool("post_stratify", false);
                     if (!stratify.is_ok()) return problem(stratify.status(), 422);
                     options.post_stratify = *stratify;
                     auto cupac = request.query_bool("cupac", false);
                     if (!cupac.is_ok()) return problem(cupac.status(), 422);
                     options.cupac = *cupac;
                     auto results = ex::analyze_ab_test_results(
                         context.store, context.clock, request.params.at("test_id"), options);
                     if (!results.is_ok()) return problem(results.status());
                     return Response::json(200, *results);
                   }));

  // A bandit's current weights, probability best per arm and weights history.
  router.add(Route("GET", api_path("/ab-tests/{test_id}/bandit"), readers,
                   [&context](const Request& request, const AuthContext&) {
                     auto test = ex::get_ab_test(context.store, request.params.at("test_id"));
                     if (!test.is_ok()) return problem(test.status());
                     if (!test->config.bandit.enabled) {
                       return problem(failed_precondition(
                           "A/B test " + test->test_id + " is not a bandit (its config has no "
                           "\"bandit\": {\"enabled\": true})"));
                     }
                     auto summary = ex::bandit_summary(context.store, *test);
                     if (!summary.is_ok()) return problem(summary.status());
                     return Response::json(200, *summary);
                   }));
  // Recomputes now instead of at the next bandit_weights run: idempotent per period (a
  // second call in the same period changes nothing and says so).
  router.add(Route("POST", api_path("/ab-tests/{test_id}/bandit/recompute"), admin,
                   [&context, cache](const Request& request, const AuthContext&) {
                     const std::string& test_id = request.params.at("test_id");
                     auto test = ex::get_ab_test(context.store, test_id);
                     if (!test.is_ok()) return problem(test.status());
                     if (!test->config.bandit.enabled ||
                         test->status != ex::ExperimentStatus::kActive) {
                       return problem(failed_precondition(
                           "only an active bandit A/B test has weights to recompute"));
                     }
                     auto entry = ex::recompute_bandit_weights(context.store, context.clock,
                                                               test_id);
                     if (!entry.is_ok()) return problem(entry.status());
                     cache->invalidate(test_id);
                     if (entry->has_value()) context.documents_changed();  // SDK payload
                     auto reloaded = ex::get_ab_test(context.store, test_id);
                     if (!reloaded.is_ok()) return problem(reloaded.status());
                     auto summary = ex::bandit_summary(context.store, *reloaded);
                     if (!summary.is_ok()) return problem(summary.status());
                     (*summary)["recomputed"] = entry->has_value();
                     Response response = Response::json(200, *summary);
                     response.audit_target = test_id;
                     return response;
                   })
                 .audited());
}

#else

void register_experiment_routes(Router&, ApiContext&) {}

#endif

}  // namespace fulcrum::api
