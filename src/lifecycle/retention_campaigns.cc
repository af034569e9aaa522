#include "lifecycle/retention_campaigns.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <unordered_map>

#include "core/ids.h"
#include "stats/hypothesis.h"
#include "store/store.h"
#include "usage/usage_history.h"

namespace fulcrum {

namespace {

constexpr const char* kCampaignKind = "campaign";

struct CampaignTemplate {
  const char* name;
  const char* type;
  const char* message;
  std::vector<std::string> success_metrics;
};

const CampaignTemplate& template_for(TriggerType type) {
  static const CampaignTemplate usage_drop{
      "Usage drop win-back",
      "re_engagement",
      "We have missed you this week. Your accounts, budgets and savings goals are one tap "
      "away - see what changed since your last visit.",
      {"retention_rate", "reactivation_rate", "weekly_active_days"}};
  static const CampaignTemplate engagement_decline{
      "Engagement boost",
      "engagement_nudge",
      "Get more from your account: three quick tips tailored to how you bank.",
      {"retention_rate", "weekly_activity_trend"}};
  static const CampaignTemplate payment_issue{
      "Payment recovery",
      "payment_recovery",
      "Your last payment did not go through. Update your payment method to keep your plan "
      "benefits without interruption.",
      {"payment_recovery_rate", "retention_rate"}};
  static const CampaignTemplate feature_abandonment{
      "Feature re-engagement",
      "feature_reengagement",
      "Pick up where you left off: the feature you used every week is still here, with a "
      "few improvements.",
      {"feature_return_rate", "retention_rate"}};
  static const CampaignTemplate churn_risk{
      "Churn-risk retention offer",
      "win_back_offer",
      "Thank you for banking with us. Here is a month of premium insights on us.",
      {"retention_rate", "churn_rate", "offer_redemption_rate"}};
  switch (type) {
    case TriggerType::kUsageDrop:
      return usage_drop;
    case TriggerType::kEngagementDecline:
      return engagement_decline;
    case TriggerType::kPaymentIssue:
      return payment_issue;
    case TriggerType::kFeatureAbandonment:
      return feature_abandonment;
    case TriggerType::kChurnRisk:
      return churn_risk;
  }
  return usage_drop;
}

nlohmann::json optional_time(const std::optional<UnixSeconds>& t) {
  return t ? nlohmann::json(format_iso8601(*t)) : nlohmann::json();
}

}  // namespace

Status RetentionCampaignConfig::validate() const {
  FULCRUM_RETURN_IF_ERROR(triggers.validate());
  if (cooldown_days < 0) return invalid_argument("must be >= 0", "cooldown_days");
  if (!(holdout_fraction >= 0 && holdout_fraction < 1)) {
    return invalid_argument("must be in [0, 1)", "holdout_fraction");
  }
  if (retention_window_days < 1) return invalid_argument("must be >= 1", "retention_window_days");
  if (initial_status != "draft" && initial_status != "active") {
    return invalid_argument("must be draft or active", "initial_status");
  }
  if (!(alpha > 0 && alpha < 1)) return invalid_argument("must be in (0, 1)", "alpha");
  return Status::ok();
}

nlohmann::json RetentionCampaign::to_json() const {
  return {{"campaign_id", campaign_id},
          {"campaign_name", campaign_name},
          {"trigger_type", trigger_type_name(trigger_type)},
          {"target_users", target_users},
          {"target_user_count", target_users.size()},
          {"holdout_users", holdout_users},
          {"campaign_type", campaign_type},
          {"campaign_message", campaign_message},
          {"success_metrics", success_metrics},
          {"campaign_status", campaign_status},
          {"created_at", format_iso8601(created_at)},
          {"activated_at", optional_time(activated_at)},
          {"completed_at", optional_time(completed_at)},
          {"holdout_fraction", holdout_fraction},
          {"retention_window_days", retention_window_days},
          {"details", details}};
}

Result<RetentionCampaign> RetentionCampaign::from_json(const nlohmann::json& json) {
  if (!json.is_object()) return invalid_argument("campaign must be a JSON object", "campaign");
  RetentionCampaign campaign;
  auto time_field = [&](const char* name) -> std::optional<UnixSeconds> {
    auto it = json.find(name);
    if (it == json.end() || !it->is_string()) return std::nullopt;
    return parse_iso8601(it->get<std::string>());
  };
  try {
    campaign.campaign_id = json.at("campaign_id").get<std::string>();
    campaign.campaign_name = json.at("campaign_name").get<std::string>();
    auto type = parse_trigger_type(json.at("trigger_type").get<std::string>());
    if (!type) return invalid_argument("unknown trigger type", "trigger_type");
    campaign.trigger_type = *type;
    campaign.target_users = json.at("target_users").get<std::vector<std::string>>();
    campaign.holdout_users = json.value("holdout_users", std::vector<std::string>{});
    campaign.campaign_type = json.at("campaign_type").get<std::string>();
    campaign.campaign_message = json.at("campaign_message").get<std::string>();
    campaign.success_metrics = json.at("success_metrics").get<std::vector<std::string>>();
    campaign.campaign_status = json.at("campaign_status").get<std::string>();
    campaign.holdout_fraction = json.value("holdout_fraction", 0.0);
    campaign.retention_window_days = json.value("retention_window_days", 28);
    campaign.details = json.value("details", nlohmann::json::object());
  } catch (const nlohmann::json::exception& error) {
    return invalid_argument(std::string("malformed campaign: ") + error.what(), "campaign");
  }
  campaign.created_at = time_field("created_at").value_or(0);
  campaign.activated_at = time_field("activated_at");
  campaign.completed_at = time_field("completed_at");
  return campaign;
}

bool in_campaign_holdout(const std::string& campaign_id, const std::string& user_id,
                         double fraction) {
  if (fraction <= 0) return false;
  std::string hex = sha256_hex(campaign_id + ":" + user_id).substr(0, 16);
  std::uint64_t value = std::stoull(hex, nullptr, 16);
  // value / 2^64 < fraction, computed in long double to keep the low bits meaningful.
  return static_cast<long double>(value) <
         static_cast<long double>(fraction) * 18446744073709551616.0L;
}

std::vector<RetentionCampaign> build_retention_campaigns(
    const UserActivity& activity, const TriggerMatches& matches,
    const std::vector<std::string>& cooling_down, UnixSeconds now,
    const RetentionCampaignConfig& config) {
  std::vector<bool> taken(static_cast<std::size_t>(activity.user_count()), false);
  for (int user = 0; user < activity.user_count(); ++user) {
    if (std::binary_search(cooling_down.begin(), cooling_down.end(), activity.user_id(user))) {
      taken[user] = true;
    }
  }
  std::vector<RetentionCampaign> campaigns;
  for (TriggerType type : all_trigger_types()) {  // priority order
    auto it = matches.find(type);
    if (it == matches.end()) continue;
    std::vector<const TriggerMatch*> chosen;
    for (const TriggerMatch& match : it->second) {
      if (taken[match.user]) continue;
      taken[match.user] = true;
      chosen.push_back(&match);
    }
    if (chosen.empty()) continue;
    const CampaignTemplate& text = template_for(type);
    RetentionCampaign campaign;
    campaign.campaign_id = new_id("camp");
    campaign.campaign_name = std::string(text.name) + " " + format_date(now);
    campaign.trigger_type = type;
    campaign.campaign_type = text.type;
    campaign.campaign_message = text.message;
    campaign.success_metrics = text.success_metrics;
    campaign.campaign_status = config.initial_status;
    campaign.created_at = now;
    if (config.initial_status == "active") campaign.activated_at = now;
    campaign.holdout_fraction = config.holdout_fraction;
    campaign.retention_window_days = config.retention_window_days;
    std::map<std::string, int> per_detail;
    for (const TriggerMatch* match : chosen) {
      const std::string& user_id = activity.user_id(match->user);
      if (in_campaign_holdout(campaign.campaign_id, user_id, config.holdout_fraction)) {
        campaign.holdout_users.push_back(user_id);
      } else {
        campaign.target_users.push_back(user_id);
      }
      if (!match->detail.empty() && type == TriggerType::kFeatureAbandonment) {
        ++per_detail[match->detail];
      }
    }
    campaign.details["matched_users"] = chosen.size();
    if (!per_detail.empty()) campaign.details["abandoned_features"] = per_detail;
    campaigns.push_back(std::move(campaign));
  }
  return campaigns;
}

namespace {

Status save_campaign(Store& store, RetentionCampaign& campaign, UnixSeconds now,
                     const std::vector<Store::CampaignMember>& new_members = {}) {
  Document doc;
  doc.id = campaign.campaign_id;
  doc.kind = kCampaignKind;
  doc.status = campaign.campaign_status;
  doc.body = campaign.to_json().dump();
  doc.created_at = campaign.created_at;
  doc.updated_at = now;
  doc.version = campaign.version;
  auto version = new_members.empty() ? store.put_document(doc)
                                     : store.put_document_and_members(doc, new_members);
  if (!version) return version.status();
  campaign.version = *version;
  return Status::ok();
}

Result<RetentionCampaign> from_document(const Document& doc) {
  nlohmann::json json = nlohmann::json::parse(doc.body, nullptr, false);
  if (json.is_discarded()) return internal_error("campaign " + doc.id + " holds invalid JSON");
  auto campaign = RetentionCampaign::from_json(json);
  if (!campaign) return campaign.status();
  campaign->campaign_status = doc.status;
  campaign->version = doc.version;
  return campaign;
}

Result<RetentionCampaign> transition(Store& store, const Clock& clock, const std::string& id,
                                     const std::string& from, const std::string& to) {
  auto campaign = get_campaign(store, id);
  if (!campaign) return campaign.status();
  if (campaign->campaign_status != from) {
    return failed_precondition("campaign " + id + " is " + campaign->campaign_status + "; only a " +
                               from + " campaign can become " + to);
  }
  const UnixSeconds now = clock.now();
  campaign->campaign_status = to;
  if (to == "active") campaign->activated_at = now;
  if (to == "completed") campaign->completed_at = now;
  FULCRUM_RETURN_IF_ERROR(save_campaign(store, *campaign, now));
  return campaign;
}

}  // namespace

Result<std::vector<RetentionCampaign>> trigger_retention_campaigns(
    Store& store, const Clock& clock, const RetentionCampaignConfig& config) {
  FULCRUM_RETURN_IF_ERROR(config.validate());
  const UnixSeconds now = clock.now();
  auto activity = UserActivity::open(store, now, config.triggers.history_days());
  if (!activity) return activity.status();
  auto matches = detect_retention_triggers(*activity, config.triggers);
  if (!matches) return matches.status();
  auto last = store.last_targeted();
  if (!last) return last.status();
  std::vector<std::string> cooling_down;
  const UnixSeconds cooldown = static_cast<UnixSeconds>(config.cooldown_days) * kSecondsPerDay;
  for (const auto& [user_id, at] : *last) {
    if (now - at < cooldown) cooling_down.push_back(user_id);
  }
  std::sort(cooling_down.begin(), cooling_down.end());
  auto campaigns = build_retention_campaigns(*activity, *matches, cooling_down, now, config);
  for (RetentionCampaign& campaign : campaigns) {
    std::vector<Store::CampaignMember> members;
    members.reserve(campaign.target_users.size() + campaign.holdout_users.size());
    for (const auto& user : campaign.target_users) {
      members.push_back({campaign.campaign_id, user, false, now});
    }
    for (const auto& user : campaign.holdout_users) {
      members.push_back({campaign.campaign_id, user, true, now});
    }
    // One transaction: a crash cannot leave a campaign without its members.
    FULCRUM_RETURN_IF_ERROR(save_campaign(store, campaign, now, members));
  }
  return campaigns;
}

Result<std::vector<RetentionCampaign>> list_campaigns(Store& store, const std::string& status) {
  auto docs = store.list_documents(kCampaignKind);
  if (!docs) return docs.status();
  std::vector<RetentionCampaign> campaigns;
  for (const Document& doc : *docs) {
    if (!status.empty() && doc.status != status) continue;
    auto campaign = from_document(doc);
    if (!campaign) return campaign.status();
    campaigns.push_back(std::move(*campaign));
  }
  std::stable_sort(campaigns.begin(), campaigns.end(),
                   [](const RetentionCampaign& a, const RetentionCampaign& b) {
                     if (a.created_at != b.created_at) return a.created_at > b.created_at;
                     return a.campaign_id < b.campaign_id;
                   });
  return campaigns;
}

Result<RetentionCampaign> get_campaign(Store& store, const std::string& campaign_id) {
  auto doc = store.get_document(kCampaignKind, campaign_id);
  if (!doc) return doc.status();
  if (!doc->has_value()) return not_found("no campaign " + campaign_id);
  return from_document(**doc);
}

Result<RetentionCampaign> activate_campaign(Store& store, const Clock& clock,
                                            const std::string& campaign_id) {
  return transition(store, clock, campaign_id, "draft", "active");
}

Result<RetentionCampaign> complete_campaign(Store& store, const Clock& clock,
                                            const std::string& campaign_id) {
  return transition(store, clock, campaign_id, "active", "completed");
}

nlohmann::json CampaignResults::to_json() const {
  auto group = [](const CampaignGroupOutcome& outcome) {
    return nlohmann::json{{"users", outcome.users},
                          {"retained", outcome.retained},
                          {"retention_rate", outcome.retention_rate}};
  };
  auto optional_number = [](const std::optional<double>& value) {
    return value ? nlohmann::json(*value) : nlohmann::json();
  };
  nlohmann::json lift_json;
  if (lift) {
    lift_json = {
        {"estimate", *lift}, {"ci", {*ci_lower, *ci_upper}}, {"p_value", optional_number(p_value)}};
  }
  return {{"campaign_id", campaign_id},
          {"campaign_name", campaign_name},
          {"trigger_type", trigger_type},
          {"campaign_status", campaign_status},
          {"retention_window_days", retention_window_days},
          {"observation_complete", observation_complete},
          {"treated", group(treated)},
          {"holdout", group(holdout)},
          {"lift", lift_json},
          {"p_value", optional_number(p_value)},
          {"confidence_interval", lift ? nlohmann::json{*ci_lower, *ci_upper} : nlohmann::json()},
          {"summary", summary}};
}

Result<CampaignResults> summarize_campaign_results(const RetentionCampaign& campaign,
                                                   const std::vector<bool>& holdout,
                                                   const std::vector<bool>& retained,
                                                   bool observation_complete, double alpha) {
  if (holdout.size() != retained.size()) {
    return invalid_argument("holdout and retained differ in length", "retained");
  }
  CampaignResults results;
  results.campaign_id = campaign.campaign_id;
  results.campaign_name = campaign.campaign_name;
  results.trigger_type = trigger_type_name(campaign.trigger_type);
  results.campaign_status = campaign.campaign_status;
  results.retention_window_days = campaign.retention_window_days;
  results.observation_complete = observation_complete;
  for (std::size_t i = 0; i < holdout.size(); ++i) {
    CampaignGroupOutcome& group = holdout[i] ? results.holdout : results.treated;
    ++group.users;
    group.retained += retained[i] ? 1 : 0;
  }
  for (CampaignGroupOutcome* group : {&results.treated, &results.holdout}) {
    group->retention_rate =
        group->users > 0 ? static_cast<double>(group->retained) / group->users : 0.0;
  }
  if (results.treated.users == 0 || results.holdout.users == 0) {
    results.summary = "no comparison: the campaign has no treated or no held-out users";
    return results;
  }
  stats::SampleStats control{results.holdout.users, static_cast<double>(results.holdout.retained),
                             static_cast<double>(results.holdout.retained)};
  stats::SampleStats treatment{results.treated.users, static_cast<double>(results.treated.retained),
                               static_cast<double>(results.treated.retained)};
  auto comparison = stats::compare_proportions(control, treatment, alpha);
  if (!comparison) return comparison.status();
  results.lift = comparison->absolute.estimate;
  results.p_value = comparison->absolute.p_value;
  results.ci_lower = comparison->absolute.ci.lower;
  results.ci_upper = comparison->absolute.ci.upper;
  char text[256];
  std::snprintf(text, sizeof(text),
                "%s: retention %.1f%% treated vs %.1f%% held out, lift %+.1f pp "
                "(%.0f%% CI %+.1f to %+.1f pp, p = %.3g)%s",
                *results.p_value < alpha ? "significant" : "not significant",
                100 * results.treated.retention_rate, 100 * results.holdout.retention_rate,
                100 * *results.lift, 100 * (1 - alpha), 100 * *results.ci_lower,
                100 * *results.ci_upper, *results.p_value,
                observation_complete ? "" : "; observation window still open");
  results.summary = text;
  return results;
}

Result<CampaignResults> campaign_results(Store& store, const Clock& clock,
                                         const std::string& campaign_id, double alpha) {
  auto campaign = get_campaign(store, campaign_id);
  if (!campaign) return campaign.status();
  auto members = store.campaign_members(campaign_id);
  if (!members) return members.status();
  const UnixSeconds now = clock.now();
  // Retained: active (a session or a feature use) on any of the retention_window_days whole
  // UTC days from the first midnight at or after targeting (usage rollups; a campaign
  // targeted mid-day does not count that day's earlier activity).
  const int window_days = campaign->retention_window_days;
  std::unordered_map<std::string, std::size_t> index;
  UsageDay from = std::numeric_limits<UsageDay>::max(), to = std::numeric_limits<UsageDay>::min();
  std::vector<UsageDay> first_day(members->size());
  for (std::size_t i = 0; i < members->size(); ++i) {
    const auto& member = (*members)[i];
    index.emplace(member.user_id, i);
    first_day[i] = usage_day_of(member.targeted_at - 1) + 1;  // first midnight >= targeted_at
    from = std::min(from, first_day[i]);
    to = std::max(to, first_day[i] + window_days);
  }
  std::vector<bool> holdout(members->size()), retained(members->size(), false);
  for (std::size_t i = 0; i < members->size(); ++i) holdout[i] = (*members)[i].holdout;
  const UsageDay today_end = analysis_end_day(now);
  const bool complete = members->empty() || today_end >= to;
  if (!members->empty()) {
    // Member keys, then one scan of the window's user-day rows.
    std::vector<std::int64_t> member_of_key;
    FULCRUM_RETURN_IF_ERROR(store.scan_user_keys([&](std::uint32_t key, const std::string& id) {
      auto it = index.find(id);
      if (it == index.end()) return;
      if (key >= member_of_key.size()) member_of_key.resize(static_cast<std::size_t>(key) + 1, -1);
      member_of_key[key] = static_cast<std::int64_t>(it->second);
    }));
    FULCRUM_RETURN_IF_ERROR(store.scan_user_days(
        RollupQuery{from, std::min(to, today_end), std::nullopt}, [&](const UserDayRollup& row) {
          if (row.user_key >= member_of_key.size() || member_of_key[row.user_key] < 0) return;
          const auto i = static_cast<std::size_t>(member_of_key[row.user_key]);
          if (row.sessions + row.usage_events == 0) return;
          if (row.day >= first_day[i] && row.day < first_day[i] + window_days) retained[i] = true;
        }));
  }
  return summarize_campaign_results(*campaign, holdout, retained, complete, alpha);
}

}  // namespace fulcrum
