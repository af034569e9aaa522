// GET /dashboard: everything the dashboard shows, in one document. Each engine that is built
// in contributes its section; sections of engines not yet wired are absent.
#include "api/routes.h"

#ifdef FULCRUM_HAVE_EXPERIMENTS
#include "experiments/service.h"
#endif

namespace fulcrum::api {

#ifdef FULCRUM_HAVE_EXPERIMENTS

namespace {

// Results are computed for at most this many running or completed tests (newest first), so
// the document stays cheap with a long history.
constexpr std::size_t kMaxTestsWithResults = 10;

nlohmann::json ab_test_section(ApiContext& context) {
  nlohmann::json section = {{"counts_by_status", nlohmann::json::object()},
                            {"tests", nlohmann::json::array()},
                            {"results", nlohmann::json::object()}};
  auto tests = experiments::list_ab_tests(context.store);
  if (!tests.is_ok()) return {{"error", tests.status().message()}};
  std::size_t with_results = 0;
  for (const experiments::Experiment& test : *tests) {
    const std::string status = experiments::status_name(test.status);
    section["counts_by_status"][status] = section["counts_by_status"].value(status, 0) + 1;
    section["tests"].push_back(experiments::to_json(test));
    const bool has_data = test.status == experiments::ExperimentStatus::kActive ||
                          test.status == experiments::ExperimentStatus::kPaused ||
                          test.status == experiments::ExperimentStatus::kCompleted;
    if (has_data && with_results < kMaxTestsWithResults) {
      ++with_results;
      auto results = experiments::analyze_ab_test_results(context.store, context.clock,
                                                          test.test_id);
      section["results"][test.test_id] =
          results.is_ok() ? *results : nlohmann::json{{"error", results.status().message()}};
    }
  }
  return section;
}

}  // namespace

void register_dashboard_routes(Router& router, ApiContext& context) {
  router.add(Route("GET", api_path("/dashboard"), {Role::kAdmin, Role::kAnalyst},
                   [&context](const Request&, const AuthContext&) {
                     nlohmann::json document = {
                         {"generated_at", format_iso8601(context.clock.now())},
                         {"ab_tests", ab_test_section(context)}};
                     return Response::json(200, document);
                   }));
}

#else

void register_dashboard_routes(Router&, ApiContext&) {}

#endif

}  // namespace fulcrum::api
