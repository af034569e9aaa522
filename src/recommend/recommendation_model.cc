#include "recommend/recommendation_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/ids.h"
#include "recommend/ranking_metrics.h"

namespace fulcrum {
namespace {

// Thresholds in PM terms; see the header for what each type means.
constexpr double kDeclineRatio = 0.5;          // "less than before": under half the last window
constexpr float kMinPreviousUses = 2;          // ... of at least this many uses
constexpr double kPersonalizationShare = 0.3;  // a feature with >= 30% of the user's usage
constexpr float kMinPersonalizationUses = 3;
constexpr float kMinActivityForRisk = 4;  // at risk: activity halved from at least 4
constexpr double kMinRetentionLift = 1.05;
constexpr double kPaywallWeight = 0.2;  // paywall hits raise upgrade_promotion score
constexpr double kPopularityTieBreak = 1e-6;

// One user's snapshot row; counts read as floats (how thresholds and reasons use them).
struct UserView {
  Tier tier = Tier::kFree;
  const std::uint8_t* used_flags = nullptr;
  const std::uint16_t* recent_counts = nullptr;
  const std::uint16_t* previous_counts = nullptr;
  const std::uint16_t* paywall_counts = nullptr;
  float activity_recent = 0, activity_previous = 0;

  bool used(int f) const { return used_flags[f] != 0; }
  float recent(int f) const { return recent_counts[f]; }
  float previous(int f) const { return previous_counts[f]; }
  float paywall(int f) const { return paywall_counts[f]; }
};

void add_saturating(std::uint16_t& cell, std::uint64_t amount) {
  cell = static_cast<std::uint16_t>(
      std::min<std::uint64_t>(cell + amount, UsageSnapshot::kMaxCount));
}

struct Candidate {
  int feature = 0;
  RecommendationType type = RecommendationType::kFeatureDiscovery;
  double score = 0;
  bool below_peers = false;  // usage_optimization: below peers rather than below own past
};

UserView view_of(const UsageSnapshot& s, int u) {
  UserView v;
  v.tier = s.tiers[u];
  v.used_flags = s.used.row(u).data();
  v.recent_counts = s.recent.row(u).data();
  v.previous_counts = s.previous.row(u).data();
  v.paywall_counts = s.paywall_recent.row(u).data();
  v.activity_recent = s.activity_recent[u];
  v.activity_previous = s.activity_previous[u];
  return v;
}

bool at_risk(const UserView& v) {
  return v.activity_previous >= kMinActivityForRisk &&
         v.activity_recent <= kDeclineRatio * v.activity_previous;
}

Eigen::RowVectorXd ease_scores(const Eigen::MatrixXd& weights,
                               const std::vector<double>& popularity, const std::uint8_t* used) {
  const auto n = weights.rows();
  Eigen::RowVectorXd x(n);
  for (Eigen::Index f = 0; f < n; ++f) x[f] = used[f] != 0 ? 1.0 : 0.0;
  Eigen::RowVectorXd scores = x * weights;
  for (Eigen::Index f = 0; f < n; ++f) scores[f] += kPopularityTieBreak * popularity[f];
  return scores;
}

Eigen::RowVectorXd ease_scores(const RecommendationModel::Core& core, const std::uint8_t* used) {
  return ease_scores(core.weights, core.popularity, used);
}

void collect_candidates(const RecommendationModel::Core& core, const std::vector<Feature>& features,
                        const UserView& v, std::vector<Candidate>& out) {
  const int n = static_cast<int>(features.size());
  Eigen::RowVectorXd scores = ease_scores(core, v.used_flags);
  bool risk = at_risk(v);
  double recent_total = 0;
  int top_feature = -1;
  for (int f = 0; f < n; ++f) {
    recent_total += v.recent(f);
    if (v.recent(f) > 0 && (top_feature < 0 || v.recent(f) > v.recent(top_feature)))
      top_feature = f;
  }
  for (int f = 0; f < n; ++f) {
    const Feature& feature = features[f];
    bool used = v.used(f);
    bool within_tier = feature.required_tier <= v.tier;
    if (!used && within_tier) {
      out.push_back({f, RecommendationType::kFeatureDiscovery, scores[f], false});
      if (risk && core.retention_lift[f] >= kMinRetentionLift) {
        out.push_back({f, RecommendationType::kRetention,
                       scores[f] + std::log(core.retention_lift[f]), false});
      }
    }
    if (!used && !within_tier) {
      out.push_back({f, RecommendationType::kUpgradePromotion,
                     scores[f] + kPaywallWeight * std::log1p(v.paywall(f)), false});
    }
    if (used) {
      if (v.previous(f) >= kMinPreviousUses && v.recent(f) < kDeclineRatio * v.previous(f)) {
        out.push_back(
            {f, RecommendationType::kUsageOptimization, 1.0 - v.recent(f) / v.previous(f), false});
      } else if (v.recent(f) > 0 && core.peer_median[f] >= 2 && v.recent(f) < core.peer_low[f]) {
        out.push_back({f, RecommendationType::kUsageOptimization,
                       1.0 - v.recent(f) / core.peer_median[f], true});
      }
    }
  }
  if (top_feature >= 0 && v.recent(top_feature) >= kMinPersonalizationUses &&
      v.recent(top_feature) >= kPersonalizationShare * recent_total) {
    out.push_back({top_feature, RecommendationType::kPersonalization,
                   v.recent(top_feature) / recent_total, false});
  }
}

// Outcome of a candidate in the following window (`next` = snapshot one window later).
double outcome(const Candidate& c, const UsageSnapshot& now_snapshot, const UsageSnapshot& next,
               int u) {
  const std::uint16_t next_count = next.recent(u, c.feature);
  switch (c.type) {
    case RecommendationType::kUsageOptimization:
      return next_count > now_snapshot.recent(u, c.feature) ? 1.0 : 0.0;
    default:  // adopted, or (personalization) kept using
      return next_count > 0 ? 1.0 : 0.0;
  }
}

float quantile(std::vector<float>& values, double q) {
  if (values.empty()) return 0;
  auto k = static_cast<std::size_t>(q * static_cast<double>(values.size() - 1));
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(k), values.end());
  return values[k];
}

// Share of users who used each feature (the popularity ranker and EASE's tie-break).
std::vector<double> column_shares(const UsageSnapshot::Flags& used) {
  const auto users = used.rows(), features = used.cols();
  std::vector<double> shares(static_cast<std::size_t>(features), 0.0);
  for (Eigen::Index u = 0; u < users; ++u) {
    const std::uint8_t* row = used.row(u).data();
    for (Eigen::Index f = 0; f < features; ++f) shares[f] += row[f] != 0 ? 1.0 : 0.0;
  }
  for (double& share : shares) share = users > 0 ? share / static_cast<double>(users) : 0.0;
  return shares;
}

// A window as the snapshots hold it: whole days.
UnixSeconds whole_days(UnixSeconds window) {
  return (window + kSecondsPerDay - 1) / kSecondsPerDay * kSecondsPerDay;
}

std::string percent(double p) { return fmt::format("{:.0f}%", 100.0 * p); }

// Names up to two used features that point most strongly at `f` in the EASE weights.
std::vector<std::string> co_used_features(const RecommendationModel::Core& core,
                                          const std::vector<Feature>& features, const UserView& v,
                                          int f) {
  std::vector<std::pair<double, int>> sources;
  for (int i = 0; i < static_cast<int>(features.size()); ++i) {
    if (v.used(i) && core.weights(i, f) > 0) sources.push_back({core.weights(i, f), i});
  }
  std::sort(sources.rbegin(), sources.rend());
  std::vector<std::string> names;
  for (std::size_t k = 0; k < sources.size() && k < 2; ++k) {
    names.push_back(features[sources[k].second].name);
  }
  return names;
}

std::vector<std::string> explain(const RecommendationModel::Core& core,
                                 const std::vector<Feature>& features, const UserView& v,
                                 const Candidate& c, double probability,
                                 const MonotoneCalibration& calibration, UnixSeconds window,
                                 const User& user) {
  const Feature& feature = features[c.feature];
  const int days = static_cast<int>(window / kSecondsPerDay);
  std::vector<std::string> reasons;
  auto co_used = co_used_features(core, features, v, c.feature);
  std::string co_used_text;
  if (!co_used.empty()) {
    co_used_text = co_used.size() == 1 ? co_used[0] : co_used[0] + " and " + co_used[1];
  }
  switch (c.type) {
    case RecommendationType::kFeatureDiscovery:
      reasons.push_back(
          fmt::format("Not used yet, and included in the {} plan", tier_name(v.tier)));
      if (!co_used_text.empty()) {
        reasons.push_back(
            fmt::format("Users who use {} often also use {}", co_used_text, feature.name));
      } else {
        reasons.push_back(
            fmt::format("Used by {} of all users", percent(core.popularity[c.feature])));
      }
      break;
    case RecommendationType::kUpgradePromotion:
      reasons.push_back(fmt::format("Needs the {} plan; the user is on {}",
                                    tier_name(feature.required_tier), tier_name(v.tier)));
      if (v.paywall(c.feature) > 0) {
        reasons.push_back(fmt::format("Hit the paywall on {} {} times in the last {} days",
                                      feature.name, v.paywall(c.feature), days));
      }
      if (!co_used_text.empty()) {
        reasons.push_back(
            fmt::format("Users who use {} often also use {}", co_used_text, feature.name));
      }
      break;
    case RecommendationType::kUsageOptimization:
      if (c.below_peers) {
        reasons.push_back(
            fmt::format("Used {} {} times in the last {} days; a typical user of it: {}",
                        feature.name, v.recent(c.feature), days, core.peer_median[c.feature]));
      } else {
        reasons.push_back(fmt::format("Used {} {} times in the last {} days, down from {}",
                                      feature.name, v.recent(c.feature), days,
                                      v.previous(c.feature)));
      }
      break;
    case RecommendationType::kPersonalization: {
      reasons.push_back(fmt::format("{} is {} of the user's feature use in the last {} days",
                                    feature.name, percent(c.score), days));
      if (!feature.category.empty()) {
        reasons.push_back(
            fmt::format("Behaviour segment: {}-focused user; pin {} on the home screen",
                        feature.category, feature.name));
      }
      auto segment = user.attributes.find("segment");
      if (segment != user.attributes.end()) {
        reasons.push_back(fmt::format("Customer segment: {}", segment->second));
      }
      break;
    }
    case RecommendationType::kRetention:
      reasons.push_back(
          fmt::format("Activity fell from {} to {} events between the last two {}-day "
                      "periods (at risk of churning)",
                      v.activity_previous, v.activity_recent, days));
      reasons.push_back(fmt::format("Users of {} stayed active {:.1f}x as often as average",
                                    feature.name, core.retention_lift[c.feature]));
      if (!co_used_text.empty()) {
        reasons.push_back(fmt::format("It fits the user's use of {}", co_used_text));
      }
      break;
  }
  reasons.push_back(fmt::format("{} of {} similar past cases acted on it within {} days",
                                percent(probability), calibration.sample_size(), days));
  if (feature.monthly_revenue_value_minor > 0) {
    reasons.push_back(
        fmt::format("Worth {} a month per adopting user",
                    Money::from_minor(feature.monthly_revenue_value_minor).to_string()));
  }
  return reasons;
}

}  // namespace

const char* recommendation_type_name(RecommendationType type) {
  switch (type) {
    case RecommendationType::kFeatureDiscovery:
      return "feature_discovery";
    case RecommendationType::kUpgradePromotion:
      return "upgrade_promotion";
    case RecommendationType::kUsageOptimization:
      return "usage_optimization";
    case RecommendationType::kPersonalization:
      return "personalization";
    case RecommendationType::kRetention:
      return "retention";
  }
  return "unknown";
}

nlohmann::json FeatureRecommendation::to_json() const {
  return nlohmann::json{
      {"recommendation_id", recommendation_id},
      {"user_id", user_id},
      {"feature_name", feature_name},
      {"recommendation_type", recommendation_type_name(recommendation_type)},
      {"confidence_score", std::round(confidence_score * 10000.0) / 10000.0},
      {"expected_value", expected_value.as_major()},
      {"priority", priority},
      {"reasoning", reasoning},
  };
}

UsageSnapshot UsageSnapshot::empty(const UsageHistory& history, UnixSeconds at,
                                   UnixSeconds window) {
  const auto users = static_cast<Eigen::Index>(history.user_count());
  const auto features = static_cast<Eigen::Index>(history.features().size());
  const UsageDay end = analysis_end_day(at);
  const auto window_days = static_cast<UsageDay>((window + kSecondsPerDay - 1) / kSecondsPerDay);
  UsageSnapshot s;
  s.at = usage_day_start(end);
  s.window = static_cast<UnixSeconds>(window_days) * kSecondsPerDay;
  s.used.setZero(users, features);
  s.recent.setZero(users, features);
  s.previous.setZero(users, features);
  s.paywall_recent.setZero(users, features);
  s.used_before_recent.setZero(users, features);
  s.activity_recent.assign(users, 0);
  s.activity_previous.assign(users, 0);
  s.tiers.resize(users);
  for (Eigen::Index u = 0; u < users; ++u) {
    s.tiers[u] = history.tier_at(static_cast<int>(u), s.at);
  }
  return s;
}

void UsageSnapshot::fill(const UsageHistory& history, int user) {
  const auto features = used.cols();
  const UsageDay end = analysis_end_day(at);
  const auto window_days = static_cast<UsageDay>(window / kSecondsPerDay);
  const UsageDay recent_start = end - window_days, previous_start = end - 2 * window_days;
  const auto u = static_cast<Eigen::Index>(user);
  for (const auto& d :
       history.feature_days_between(user, std::numeric_limits<UsageDay>::min(), end)) {
    if (d.feature >= features) continue;  // not in the catalog
    if (d.day >= recent_start) add_saturating(paywall_recent(u, d.feature), d.paywall_hits);
    if (d.usage_events == 0) continue;  // paywall hits only
    used(u, d.feature) = 1;
    if (d.day < recent_start) used_before_recent(u, d.feature) = 1;
    if (d.day >= recent_start) {
      add_saturating(recent(u, d.feature), d.uses);
      activity_recent[u] += static_cast<float>(d.uses);
    } else if (d.day >= previous_start) {
      add_saturating(previous(u, d.feature), d.uses);
      activity_previous[u] += static_cast<float>(d.uses);
    }
  }
  for (const auto& d : history.days_between(user, previous_start, end)) {
    (d.day >= recent_start ? activity_recent : activity_previous)[u] +=
        static_cast<float>(d.sessions);
  }
}

UsageSnapshot UsageSnapshot::build(const UsageHistory& history, UnixSeconds at,
                                   UnixSeconds window) {
  UsageSnapshot s = empty(history, at, window);
  (void)history.for_each_slice([&](std::span<const int> users) {
    for (int user : users) s.fill(history, user);
    return Status::ok();
  });
  return s;
}

void AdoptionTargets::sort_by_user() {
  std::vector<std::size_t> order(users.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return users[a] < users[b]; });
  AdoptionTargets sorted;
  sorted.users.reserve(users.size());
  sorted.relevant.reserve(users.size());
  for (std::size_t i : order) sorted.add(users[i], relevant[i]);
  *this = std::move(sorted);
}

Result<RecommendationModel::Core> build_model_core(const UsageHistory& history, UnixSeconds at,
                                                   const RecommendOptions& options,
                                                   double ease_lambda) {
  return build_model_core(UsageSnapshot::build(history, at, options.window_seconds), ease_lambda);
}

Result<RecommendationModel::Core> build_model_core(UsageSnapshot snapshot, double ease_lambda) {
  RecommendationModel::Core core;
  core.snapshot = std::move(snapshot);
  const auto& s = core.snapshot;
  const int n = static_cast<int>(s.used.cols());
  auto weights = fit_ease_from_usage(s.used, ease_lambda);
  if (!weights.is_ok()) return weights.status();
  core.weights = std::move(weights).value();
  const auto users = s.used.rows();
  core.popularity = column_shares(s.used);
  core.peer_median.assign(n, 0);
  core.peer_low.assign(n, 0);
  core.retention_lift.assign(n, 1.0);
  for (int f = 0; f < n; ++f) {
    std::vector<float> counts;
    for (Eigen::Index u = 0; u < users; ++u) {
      if (s.recent(u, f) > 0) counts.push_back(static_cast<float>(s.recent(u, f)));
    }
    core.peer_median[f] = quantile(counts, 0.5);
    core.peer_low[f] = quantile(counts, 0.25);
  }
  // Retention lift: among users active in the previous window, how often users who had
  // adopted f before it kept at least half their activity, relative to everyone (with a
  // +1/+2 Laplace prior so rare features do not get extreme lifts).
  double base_kept = 0, base_n = 0;
  std::vector<double> kept(n, 0), total(n, 0);
  for (Eigen::Index u = 0; u < users; ++u) {
    if (s.activity_previous[u] <= 0) continue;
    double stayed = s.activity_recent[u] > kDeclineRatio * s.activity_previous[u] ? 1.0 : 0.0;
    base_kept += stayed;
    base_n += 1;
    for (int f = 0; f < n; ++f) {
      if (s.used_before_recent(u, f) != 0) {
        kept[f] += stayed;
        total[f] += 1;
      }
    }
  }
  double base_rate = (base_kept + 1) / (base_n + 2);
  for (int f = 0; f < n; ++f) core.retention_lift[f] = ((kept[f] + 1) / (total[f] + 2)) / base_rate;
  return core;
}

Eigen::MatrixXd usage_gram(const UsageSnapshot::Flags& used) {
  constexpr Eigen::Index kBlockRows = 4096;
  Eigen::MatrixXd gram = Eigen::MatrixXd::Zero(used.cols(), used.cols());
  Eigen::MatrixXd block;
  for (Eigen::Index first = 0; first < used.rows(); first += kBlockRows) {
    const Eigen::Index rows = std::min(kBlockRows, used.rows() - first);
    block = used.middleRows(first, rows).cast<double>();
    gram.noalias() += block.transpose() * block;
  }
  return gram;
}

Result<Eigen::MatrixXd> fit_ease_from_usage(const UsageSnapshot::Flags& used, double lambda) {
  return fit_ease(usage_gram(used), lambda);
}

std::vector<int> rank_unused_features(const Eigen::MatrixXd& weights,
                                      const std::vector<double>& popularity,
                                      const std::uint8_t* used) {
  Eigen::RowVectorXd scores = ease_scores(weights, popularity, used);
  std::vector<int> ranked;
  for (int f = 0; f < scores.size(); ++f) {
    if (used[f] == 0) ranked.push_back(f);
  }
  std::stable_sort(ranked.begin(), ranked.end(),
                   [&](int a, int b) { return scores[a] > scores[b]; });
  return ranked;
}

std::vector<int> rank_unused_features(const RecommendationModel::Core& core, int user) {
  return rank_unused_features(core.weights, core.popularity, core.snapshot.used.row(user).data());
}

bool new_adoptions(const UsageHistory& history, const UsageSnapshot& before, int user,
                   UnixSeconds to, std::vector<bool>& adopted) {
  const auto n = before.used.cols();
  adopted.assign(static_cast<std::size_t>(n), false);
  bool any = false;
  for (const auto& d :
       history.feature_days_between(user, analysis_end_day(before.at), analysis_end_day(to))) {
    if (d.feature >= n || d.usage_events == 0 || d.uses == 0) continue;
    if (before.used(user, d.feature) != 0) continue;
    adopted[d.feature] = true;
    any = true;
  }
  return any;
}

nlohmann::json EaseLambdaValidation::to_json() const {
  nlohmann::json points = nlohmann::json::array();
  for (const auto& p : grid) points.push_back({{"lambda", p.lambda}, {"ndcg", p.ndcg}});
  return nlohmann::json{{"chosen", chosen},
                        {"validated", validated},
                        {"train_until", format_iso8601(train_until)},
                        {"validate_until", format_iso8601(validate_until)},
                        {"k", k},
                        {"users_validated", users_validated},
                        {"grid", std::move(points)}};
}

Result<EaseLambdaValidation> choose_ease_lambda(const UsageHistory& history,
                                                const UsageSnapshot& train,
                                                UnixSeconds validate_until,
                                                const RecommendOptions& options) {
  // Targets: features first used in the validation window (usage before it is in `train`).
  AdoptionTargets targets;
  if (!options.ease_lambda) {
    std::vector<bool> adopted;
    FULCRUM_RETURN_IF_ERROR(history.for_each_slice([&](std::span<const int> users) {
      for (int u : users) {
        if (u >= train.used.rows() || history.signup_at(u) >= train.at) continue;
        if (new_adoptions(history, train, u, validate_until, adopted)) targets.add(u, adopted);
      }
      return Status::ok();
    }));
    targets.sort_by_user();
  }
  return choose_ease_lambda(train, validate_until, targets, options);
}

Result<EaseLambdaValidation> choose_ease_lambda(const UsageSnapshot& train,
                                                UnixSeconds validate_until,
                                                const AdoptionTargets& targets,
                                                const RecommendOptions& options) {
  EaseLambdaValidation validation;
  validation.k = options.validation_k;
  validation.train_until = train.at;
  validation.validate_until = analysis_end(validate_until);
  if (options.ease_lambda) {
    if (!(*options.ease_lambda > 0) || !std::isfinite(*options.ease_lambda)) {
      return invalid_argument("lambda must be a positive number", "lambda");
    }
    validation.chosen = *options.ease_lambda;
    return validation;
  }
  if (options.ease_lambda_grid.empty()) {
    return invalid_argument("the lambda grid is empty", "ease_lambda_grid");
  }
  if (options.validation_k < 1) return invalid_argument("must be >= 1", "validation_k");
  std::vector<double> grid = options.ease_lambda_grid;
  for (double lambda : grid) {
    if (!(lambda > 0) || !std::isfinite(lambda)) {
      return invalid_argument("every lambda must be a positive number", "ease_lambda_grid");
    }
  }
  std::sort(grid.begin(), grid.end());
  grid.erase(std::unique(grid.begin(), grid.end()), grid.end());

  const std::vector<int>& users = targets.users;
  const std::vector<std::vector<bool>>& relevant = targets.relevant;
  validation.users_validated = users.size();
  if (users.empty()) return validation;  // nothing to validate on: the fixed value

  const Eigen::MatrixXd gram = usage_gram(train.used);
  const std::vector<double> popularity = column_shares(train.used);
  double best = -1;
  for (double lambda : grid) {
    auto weights = fit_ease(gram, lambda);
    if (!weights.is_ok()) return weights.status();
    double ndcg = 0;
    for (std::size_t i = 0; i < users.size(); ++i) {
      auto ranked = rank_unused_features(*weights, popularity, train.used.row(users[i]).data());
      ndcg += score_ranking(ranked, relevant[i], options.validation_k).ndcg;
    }
    ndcg /= static_cast<double>(users.size());
    validation.grid.push_back({lambda, ndcg});
    if (ndcg > best) {
      best = ndcg;
      validation.chosen = lambda;
    }
  }
  validation.validated = true;
  return validation;
}

std::vector<int> rank_unused_by_popularity(const RecommendationModel::Core& core, int user) {
  const auto& s = core.snapshot;
  std::vector<int> ranked;
  for (int f = 0; f < static_cast<int>(core.popularity.size()); ++f) {
    if (s.used(user, f) == 0) ranked.push_back(f);
  }
  std::stable_sort(ranked.begin(), ranked.end(),
                   [&](int a, int b) { return core.popularity[a] > core.popularity[b]; });
  return ranked;
}

Result<RecommendationModel> RecommendationModel::train(const UsageHistory& history, UnixSeconds now,
                                                       const RecommendOptions& options) {
  if (!(options.window_seconds > 0)) {
    return invalid_argument("window_seconds must be positive", "window_seconds");
  }
  if (options.max_per_type < 1) return invalid_argument("must be >= 1", "max_per_type");
  if (options.max_total < 1) return invalid_argument("must be >= 1", "max_total");
  if (history.features().empty()) return failed_precondition("no features to recommend");
  // One window before the (midnight-aligned) snapshot at `now`: lambda is validated on the
  // adoptions of [holdout_start, now) by a model trained before it, and the same split
  // calibrates the confidences below.
  const UnixSeconds holdout_start = analysis_end(now) - whole_days(options.window_seconds);
  // One walk over the history's slices fills both snapshots and the validation targets.
  UsageSnapshot holdout_snapshot =
      UsageSnapshot::empty(history, holdout_start, options.window_seconds);
  UsageSnapshot current_snapshot = UsageSnapshot::empty(history, now, options.window_seconds);
  AdoptionTargets targets;
  std::vector<bool> adopted;
  FULCRUM_RETURN_IF_ERROR(history.for_each_slice([&](std::span<const int> users) {
    for (int u : users) {
      holdout_snapshot.fill(history, u);
      current_snapshot.fill(history, u);
      if (history.signup_at(u) < holdout_snapshot.at &&
          new_adoptions(history, holdout_snapshot, u, now, adopted)) {
        targets.add(u, adopted);
      }
    }
    return Status::ok();
  }));
  targets.sort_by_user();
  auto validation = choose_ease_lambda(holdout_snapshot, now, targets, options);
  if (!validation.is_ok()) return validation.status();
  targets = {};
  auto past = build_model_core(std::move(holdout_snapshot), validation->chosen);
  if (!past.is_ok()) return past.status();
  auto current = build_model_core(std::move(current_snapshot), validation->chosen);
  if (!current.is_ok()) return current.status();

  RecommendationModel model;
  model.trained_at_ = now;
  model.options_ = options;
  model.features_ = history.features();
  model.core_ = std::move(current).value();
  model.lambda_validation_ = std::move(validation).value();

  // Calibration on the time split: the same candidates one window ago, and whether their
  // outcome happened in the window since.
  std::array<std::vector<std::pair<double, double>>, kRecommendationTypeCount> points;
  std::vector<Candidate> candidates;
  const auto& past_snapshot = past->snapshot;
  for (int u = 0; u < history.user_count(); ++u) {
    if (history.signup_at(u) >= holdout_start) continue;  // did not exist yet
    candidates.clear();
    UserView v = view_of(past_snapshot, static_cast<int>(u));
    collect_candidates(past.value(), model.features_, v, candidates);
    for (const auto& c : candidates) {
      int t = static_cast<int>(c.type);
      points[t].emplace_back(
          c.score, outcome(c, past_snapshot, model.core_.snapshot, static_cast<int>(u)));
    }
  }
  for (int t = 0; t < kRecommendationTypeCount; ++t) {
    model.calibrations_[t] = MonotoneCalibration::fit_points(std::move(points[t]));
  }

  model.user_ids_.reserve(static_cast<std::size_t>(history.user_count()));
  for (int u = 0; u < history.user_count(); ++u) model.user_ids_.push_back(history.user_id(u));
  model.index_users();
  return model;
}

void RecommendationModel::index_users() {
  users_by_id_.resize(user_ids_.size());
  for (std::size_t i = 0; i < users_by_id_.size(); ++i) users_by_id_[i] = static_cast<int>(i);
  std::sort(users_by_id_.begin(), users_by_id_.end(),
            [&](int a, int b) { return user_ids_[a] < user_ids_[b]; });
}

int RecommendationModel::find_user(std::string_view user_id) const {
  auto it = std::lower_bound(users_by_id_.begin(), users_by_id_.end(), user_id,
                             [&](int u, std::string_view id) { return user_ids_[u] < id; });
  return it != users_by_id_.end() && user_ids_[*it] == user_id ? *it : -1;
}


Result<std::vector<FeatureRecommendation>> RecommendationModel::recommend(
    const std::string& user_id) const {
  const int user = find_user(user_id);
  if (user < 0) return not_found("unknown user: " + user_id);
  User record;  // what a history keeps of a user: the tier is the snapshot's
  record.user_id = user_ids_[user];
  record.tier = core_.snapshot.tiers[user];
  return serve(user, record);
}

std::vector<FeatureRecommendation> RecommendationModel::recommend_cold_start(
    const User& user) const {
  return serve(-1, user);
}

std::vector<FeatureRecommendation> RecommendationModel::serve(int user,
                                                              const User& user_record) const {
  const int n = static_cast<int>(features_.size());
  std::vector<std::uint8_t> no_use(user >= 0 ? 0 : n, 0);
  std::vector<std::uint16_t> no_counts(user >= 0 ? 0 : n, 0);
  UserView v;
  if (user >= 0) {
    v = view_of(core_.snapshot, user);
  } else {
    v.tier = user_record.tier;
    v.used_flags = no_use.data();
    v.recent_counts = v.previous_counts = v.paywall_counts = no_counts.data();
  }
  std::vector<Candidate> candidates;
  collect_candidates(core_, features_, v, candidates);

  struct Scored {
    Candidate candidate;
    double probability;
    double expected_minor;
  };
  std::vector<Scored> scored;
  scored.reserve(candidates.size());
  for (const auto& c : candidates) {
    double p = calibrations_[static_cast<int>(c.type)](c.score);
    double value = static_cast<double>(features_[c.feature].monthly_revenue_value_minor);
    scored.push_back({c, p, p * value});
  }
  auto better = [](const Scored& a, const Scored& b) {
    if (a.expected_minor != b.expected_minor) return a.expected_minor > b.expected_minor;
    if (a.probability != b.probability) return a.probability > b.probability;
    return a.candidate.feature < b.candidate.feature;
  };
  std::sort(scored.begin(), scored.end(), better);
  // Best first: at most max_per_type per type, one recommendation per feature.
  std::array<int, kRecommendationTypeCount> per_type{};
  std::vector<bool> feature_taken(n, false);
  std::vector<FeatureRecommendation> result;
  for (const auto& s : scored) {
    if (static_cast<int>(result.size()) >= options_.max_total) break;
    int t = static_cast<int>(s.candidate.type);
    if (per_type[t] >= options_.max_per_type || feature_taken[s.candidate.feature]) continue;
    per_type[t] += 1;
    feature_taken[s.candidate.feature] = true;
    FeatureRecommendation r;
    r.user_id = user_record.user_id;
    r.feature_name = features_[s.candidate.feature].name;
    r.recommendation_type = s.candidate.type;
    r.confidence_score = s.probability;
    r.expected_value = Money::from_minor(static_cast<std::int64_t>(std::llround(s.expected_minor)));
    r.priority = static_cast<int>(result.size()) + 1;
    r.recommendation_id =
        "rec_" +
        sha256_hex(fmt::format("{}|{}|{}|{}", r.user_id, r.feature_name,
                               recommendation_type_name(r.recommendation_type), trained_at_))
            .substr(0, 16);
    r.reasoning = explain(core_, features_, v, s.candidate, s.probability, calibrations_[t],
                          options_.window_seconds, user_record);
    result.push_back(std::move(r));
  }
  return result;
}

}  // namespace fulcrum
