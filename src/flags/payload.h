// The GrowthBook SDK payload (types-growthbook.ts FeatureApiResponse) built from flags and
// A/B tests, so the official GrowthBook SDKs (given apiHost + clientKey) evaluate locally
// exactly what POST /ab-tests/{id}/assign decides.
//
// Flags: archived flags are left out (SDKs fall back to their code default); a killed flag
// is {"defaultValue": off value} with no rules, and no test runs on it; otherwise
// defaultValue plus the enabled rules in order (force rules with "force", and "coverage",
// "hashAttribute", "seed", "hashVersion": 2 when they are rollouts; experiment rules with
// key, variations, weights, coverage, namespace, meta[i].key = variation name).
//
// A/B tests appear on the feature named by their feature_name (a feature with
// defaultValue null is created when no flag has that name), ahead of the flag's own rules
// so that a flag rule can never take users the test would assign:
//   active     -> experiment rule: key = test_id, variations = the groups' configs in
//                 assignment order, weights, coverage, hashAttribute "id", hashVersion 2,
//                 seed = the test's hash seed (test_id, or test_id:phase<N>), phase, name,
//                 namespace [id, start, end], condition = targeting, meta[i].key = group name
//                 (so the SDK's experimentResult.key is the `variant` /assign returns);
//                 a bandit test serves its current weights and "bucketVersion": phase, so
//                 SDKs with sticky bucketing keep users in their arm as /assign does
//   completed  -> force rule with the winner's config (control when there is no winner),
//                 for everyone, as /assign answers "completed"
//   draft, paused, cancelled -> nothing (/assign answers "not_active": the app's default)
//
// Holdouts (experiments/holdout.h): a feature with a test or an enabled flag rule that opted
// into a running holdout gets, right before the first such rule (first of all for a test),
// the holdout's experiment rule: {"id": "holdout:<id>", "key": <id>, "hashAttribute",
// "seed", "hashVersion": 2, "variations": [off, off], "ranges": [[0, p], [p, 1]],
// "meta": [{"key": "holdoutcontrol", ...}, {"key": "holdouttreatment", ..., "passthrough":
// true}], "name"} with p = percent / 100 and off = the flag's default value (null for a
// feature without a flag). Held-out users get off and no later rule; the others pass through
// to the next rules. A stopped holdout emits nothing (its users are released).
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "experiments/experiment.h"
#include "experiments/holdout.h"
#include "flags/flag.h"

namespace fulcrum::flags {

struct TestOnFeature {
  std::string test_id;
  std::string status;  // "active" or "completed"
  friend bool operator==(const TestOnFeature&, const TestOnFeature&) = default;
};

struct SdkPayload {
  nlohmann::json features = nlohmann::json::object();  // GrowthBook FeatureDefinitions
  // experiment key -> experiment_id written on exposures (test_id, or test_id:phase<N>).
  std::map<std::string, std::string> exposure_keys;
  // payload rule id -> variant name, for force rules that stand for a group (a completed
  // test's winner) or a named flag rule; OFREP reports it as `variant`.
  std::map<std::string, std::string> rule_variants;
  std::map<std::string, std::vector<TestOnFeature>> tests_by_feature;
  std::vector<std::string> killed_features;  // sorted
  // Active bandit tests: experiment key -> bucketVersion (the phase). Server-side
  // evaluation keeps their users sticky (api: the first stored exposure of the phase).
  std::map<std::string, int> bandit_bucket_versions;
  UnixSeconds last_change = 0;               // newest updated_at of the inputs
};

// `flags` may include archived ones (they are skipped); `tests` in any order (they are
// applied oldest first, ties by test_id, so the output does not depend on input order).
SdkPayload build_payload(const std::vector<Flag>& flags,
                         const std::vector<experiments::Experiment>& tests,
                         const std::vector<experiments::Holdout>& holdouts = {});

// The document an SDK fetches: {"features", "experiments": [], "dateUpdated", "status": 200},
// or with `encryption_key` {"encryptedFeatures": "<iv>.<ciphertext>", "experiments": [],
// "dateUpdated", "status": 200}. `date_updated` is ISO-8601 with milliseconds.
Result<nlohmann::json> payload_document(const SdkPayload& payload, const std::string& date_updated,
                                        const std::optional<std::string>& encryption_key = {});

// ISO-8601 UTC with milliseconds ("2026-12-01T21:30:00.123Z"), GrowthBook's dateUpdated.
std::string format_iso8601_millis(std::int64_t unix_millis);

}  // namespace fulcrum::flags
