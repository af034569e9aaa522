// The automatic SRM and guardrail-harm checks are looked at every period, so they must stay
// valid under peeking. A seeded simulation of A/A tests (no true difference: 50/50 allocation
// honoured, the same conversion rate in both groups), each looked at 50 times as users
// arrive: the old rules (the results' fixed-horizon chi-square p < 0.001, and the one-sided
// harm test against the 1% margin at alpha = 0.05, at every look) stop far more tests than
// their level; the new ones (health_findings: sequential Dirichlet-multinomial SRM and the
// always-valid confidence sequence) stay within alpha plus Monte Carlo slack.
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>
#include <random>

#include "automation/policy.h"
#include "stats/decision.h"
#include "stats/hypothesis.h"
#include "stats/srm.h"

namespace fulcrum::automation {
namespace {

using nlohmann::json;

constexpr double kAlpha = 0.05;
constexpr double kMargin = 0.01;

// A results document (experiments/results.cc's shape, the fields health_findings reads) for
// control and treatment counts, with the fixed-horizon verdicts the results carry.
json results_for(const std::int64_t users[2], const std::int64_t converted[2]) {
  stats::SampleStats control{users[0], static_cast<double>(converted[0]),
                             static_cast<double>(converted[0])};
  stats::SampleStats treatment{users[1], static_cast<double>(converted[1]),
                               static_cast<double>(converted[1])};
  auto comparison = stats::compare_proportions(control, treatment, kAlpha);
  auto srm = stats::sample_ratio_mismatch({users[0], users[1]}, {1, 1});
  json group = {{"sample_size", users[1]}};
  json guardrail = json::object();
  if (comparison.is_ok() && comparison->relative) {
    const auto& relative = *comparison->relative;
    group["relative"] = {{"estimate", relative.estimate},
                         {"standard_error", relative.standard_error},
                         {"ci", {relative.ci.lower, relative.ci.upper}}};
    auto check = stats::check_guardrail("errors_avoided", relative, true, kMargin, kAlpha);
    if (check.is_ok()) guardrail = {{"margin", kMargin}, {"harmed", check->harmed}};
  }
  group["guardrail"] = guardrail.empty() ? json{{"margin", kMargin}, {"harmed", false}} : guardrail;
  return {{"control", "control"},
          {"alpha", kAlpha},
          {"srm",
           {{"mismatch", srm.is_ok() && srm->mismatch},
            {"p_value", srm.is_ok() ? srm->p_value : 1.0},
            {"observed", {{"control", users[0]}, {"treatment", users[1]}}},
            {"expected",
             {{"control", srm->expected.empty() ? 0 : srm->expected[0]},
              {"treatment", srm->expected.empty() ? 0 : srm->expected[1]}}}}},
          {"metrics",
           {{{"name", "errors_avoided"},
             {"role", "guardrail"},
             {"higher_is_better", true},
             {"groups", {{"control", {{"sample_size", users[0]}}}, {"treatment", group}}}}}}};
}

bool has(const std::vector<HealthFinding>& findings, const std::string& check) {
  for (const auto& finding : findings) {
    if (finding.check == check) return true;
  }
  return false;
}

TEST(PeekingTest, AaTestsLookedAtFiftyTimesStopAtMostAlphaWithTheSequentialChecks) {
  constexpr int kTests = 200, kLooks = 50, kUsersPerLook = 200;
  int old_srm = 0, old_harm = 0, new_srm = 0, new_harm = 0, early_harm = 0;
  for (int t = 0; t < kTests; ++t) {
    std::mt19937_64 random(20261202 + t);
    std::bernoulli_distribution arm(0.5), converts(0.1);
    std::int64_t users[2] = {0, 0}, converted[2] = {0, 0};
    bool stopped_old_srm = false, stopped_old_harm = false, stopped_new_srm = false,
         stopped_new_harm = false;
    for (int look = 0; look < kLooks; ++look) {
      for (int u = 0; u < kUsersPerLook; ++u) {
        const int g = arm(random) ? 1 : 0;
        ++users[g];
        if (converts(random)) ++converted[g];
      }
      const json results = results_for(users, converted);
      stopped_old_srm = stopped_old_srm || results["srm"]["mismatch"].get<bool>();
      stopped_old_harm =
          stopped_old_harm ||
          results["metrics"][0]["groups"]["treatment"]["guardrail"]["harmed"].get<bool>();
      const auto findings = health_findings(results, {}, 0);
      stopped_new_srm = stopped_new_srm || has(findings, "srm");
      const bool harm = has(findings, "guardrail_harm");
      stopped_new_harm = stopped_new_harm || harm;
      if (harm &&
          (users[0] < kMinUsersForAutomaticChecks || users[1] < kMinUsersForAutomaticChecks)) {
        ++early_harm;
      }
    }
    old_srm += stopped_old_srm;
    old_harm += stopped_old_harm;
    new_srm += stopped_new_srm;
    new_harm += stopped_new_harm;
  }
  const double n = kTests;
  std::cout << "A/A false-stop rate over " << kTests << " tests x " << kLooks
            << " looks: SRM fixed-horizon chi-square (p < 0.001 at every look) " << old_srm / n
            << ", sequential " << new_srm / n << "; guardrail harm fixed-horizon (alpha " << kAlpha
            << ") " << old_harm / n << ", confidence sequence " << new_harm / n << "\n";
  // Three binomial standard errors of a rate of alpha over kTests tests.
  auto slack = [&](double level) { return 3 * std::sqrt(level * (1 - level) / n); };
  EXPECT_LE(new_srm / n, stats::kSrmThreshold + slack(stats::kSrmThreshold));
  EXPECT_LE(new_harm / n, kAlpha + slack(kAlpha));
  EXPECT_EQ(early_harm, 0);
  // The old rules really were unsafe here (else this simulation proves nothing).
  EXPECT_GT(old_harm / n, kAlpha + slack(kAlpha));
  EXPECT_GT(old_srm, new_srm);
}

// Power is not thrown away: a real SRM and a real harm are still caught within the looks.
TEST(PeekingTest, ARealMismatchAndARealHarmAreStillFound) {
  std::mt19937_64 random(7);
  std::bernoulli_distribution arm(0.53);  // 53/47 instead of 50/50
  std::bernoulli_distribution control_converts(0.10), treatment_converts(0.085);  // 15% worse
  std::int64_t users[2] = {0, 0}, converted[2] = {0, 0};
  int srm_at = -1, harm_at = -1;
  for (int look = 0; look < 50 && (srm_at < 0 || harm_at < 0); ++look) {
    for (int u = 0; u < 400; ++u) {
      const int g = arm(random) ? 1 : 0;
      ++users[g];
      if (g == 0 ? control_converts(random) : treatment_converts(random)) ++converted[g];
    }
    const auto findings = health_findings(results_for(users, converted), {}, 0);
    if (srm_at < 0 && has(findings, "srm")) srm_at = look;
    if (harm_at < 0 && has(findings, "guardrail_harm")) harm_at = look;
  }
  EXPECT_GE(srm_at, 0) << "a 53/47 split of 20,000 users went unnoticed";
  EXPECT_GE(harm_at, 0) << "a 15% drop of 20,000 users went unnoticed";
}

}  // namespace
}  // namespace fulcrum::automation
