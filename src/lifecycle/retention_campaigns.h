// Retention campaigns: trigger_retention_campaigns runs the five triggers
// (retention_triggers.h) over one aggregated activity window and turns the matches into
// one campaign per trigger type, stored as Store documents of kind "campaign" with a
// draft -> active -> completed lifecycle. Each user is targeted at most once per run and
// not again within `cooldown_days` of any earlier campaign. A deterministic holdout
// (hash of campaign id + user id, `holdout_fraction` of targets) is kept out of the
// message so campaign_results can report the measured lift in retention (retained =
// active in the `retention_window_days` after targeting) of treated vs held-out users,
// with a two-proportion z-test and Wald interval (stats/hypothesis.h).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/time.h"
#include "lifecycle/retention_triggers.h"

namespace fulcrum {

class Clock;
class Store;

struct RetentionCampaignConfig {
  RetentionTriggerConfig triggers;
  int cooldown_days = 30;          // a targeted user is not targeted again for this long
  double holdout_fraction = 0.10;  // share of targets kept as the untreated control
  int retention_window_days = 28;  // retained = any activity in this many days after targeting
  std::string initial_status = "active";  // "draft" or "active"
  double alpha = 0.05;                    // two-sided, for the lift interval
  Status validate() const;
};

struct RetentionCampaign {
  std::string campaign_id;
  std::string campaign_name;
  TriggerType trigger_type = TriggerType::kUsageDrop;
  std::vector<std::string> target_users;   // treated: these receive the message
  std::vector<std::string> holdout_users;  // matched but deliberately not messaged
  std::string campaign_type;
  std::string campaign_message;
  std::vector<std::string> success_metrics;
  std::string campaign_status;  // draft, active, completed
  UnixSeconds created_at = 0;
  std::optional<UnixSeconds> activated_at;
  std::optional<UnixSeconds> completed_at;
  double holdout_fraction = 0;
  int retention_window_days = 28;
  nlohmann::json details = nlohmann::json::object();  // trigger specifics (e.g. features)
  std::int64_t version = 0;                           // store document version

  nlohmann::json to_json() const;
  static Result<RetentionCampaign> from_json(const nlohmann::json& json);
};

// True when the user is in the campaign's holdout: the first 8 bytes of
// SHA-256(campaign_id ":" user_id) as a fraction of 2^64 fall below `fraction`.
bool in_campaign_holdout(const std::string& campaign_id, const std::string& user_id,
                         double fraction);

// Pure part: campaigns (not yet stored) from trigger matches, skipping users in
// `cooling_down` (sorted user ids). Ids come from new_id("camp").
std::vector<RetentionCampaign> build_retention_campaigns(
    const UserActivity& activity, const TriggerMatches& matches,
    const std::vector<std::string>& cooling_down, UnixSeconds now,
    const RetentionCampaignConfig& config);

// Runs the triggers at clock.now() and stores the new campaigns and their members.
Result<std::vector<RetentionCampaign>> trigger_retention_campaigns(
    Store& store, const Clock& clock, const RetentionCampaignConfig& config);

// Stored campaigns, newest first; `status` filters when non-empty.
Result<std::vector<RetentionCampaign>> list_campaigns(Store& store, const std::string& status = "");
Result<RetentionCampaign> get_campaign(Store& store, const std::string& campaign_id);
// draft -> active, and active -> completed; anything else is kFailedPrecondition.
Result<RetentionCampaign> activate_campaign(Store& store, const Clock& clock,
                                            const std::string& campaign_id);
Result<RetentionCampaign> complete_campaign(Store& store, const Clock& clock,
                                            const std::string& campaign_id);

struct CampaignGroupOutcome {
  std::int64_t users = 0;
  std::int64_t retained = 0;
  double retention_rate = 0;
};

struct CampaignResults {
  std::string campaign_id;
  std::string campaign_name;
  std::string trigger_type;
  std::string campaign_status;
  int retention_window_days = 0;
  bool observation_complete = false;  // every member's window has ended
  CampaignGroupOutcome treated, holdout;
  // Treated minus holdout retention rate; absent when either group is empty.
  std::optional<double> lift, p_value, ci_lower, ci_upper;
  std::string summary;
  nlohmann::json to_json() const;
};

// Pure part: outcomes from membership and each member's retained flag (same order).
Result<CampaignResults> summarize_campaign_results(const RetentionCampaign& campaign,
                                                   const std::vector<bool>& holdout,
                                                   const std::vector<bool>& retained,
                                                   bool observation_complete, double alpha);

Result<CampaignResults> campaign_results(Store& store, const Clock& clock,
                                         const std::string& campaign_id, double alpha = 0.05);

}  // namespace fulcrum
