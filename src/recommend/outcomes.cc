#include "recommend/outcomes.h"

#include <algorithm>

#include "core/time.h"

namespace fulcrum {
namespace {

nlohmann::json tally_json(const RecommendationOutcomes::Tally& tally) {
  return {{"recommendations", tally.recommendations},
          {"acted_on", tally.acted_on},
          {"acted_on_rate", tally.recommendations > 0 ? static_cast<double>(tally.acted_on) /
                                                            static_cast<double>(tally.recommendations)
                                                      : 0.0},
          {"mean_confidence", tally.mean_confidence}};
}

void add(RecommendationOutcomes::Tally& tally, double confidence, bool acted) {
  ++tally.recommendations;
  tally.acted_on += acted ? 1 : 0;
  tally.mean_confidence += confidence;  // a sum until finish()
}

void finish(RecommendationOutcomes::Tally& tally) {
  if (tally.recommendations > 0) tally.mean_confidence /= static_cast<double>(tally.recommendations);
}

}  // namespace

nlohmann::json RecommendationOutcomes::to_json() const {
  nlohmann::json types = nlohmann::json::object();
  for (int t = 0; t < kRecommendationTypeCount; ++t) {
    types[recommendation_type_name(static_cast<RecommendationType>(t))] = tally_json(by_type[t]);
  }
  nlohmann::json bins = nlohmann::json::array();
  for (const Bin& bin : calibration) {
    bins.push_back({{"confidence_from", bin.lower},
                    {"confidence_to", bin.upper},
                    {"recommendations", bin.recommendations},
                    {"acted_on", bin.acted_on},
                    {"mean_confidence", bin.mean_confidence},
                    {"observed_rate", bin.recommendations > 0
                                          ? static_cast<double>(bin.acted_on) /
                                                static_cast<double>(bin.recommendations)
                                          : 0.0}});
  }
  return {{"recommended_at", format_iso8601(recommended_at)},
          {"observed_until", format_iso8601(observed_until)},
          {"by_type", std::move(types)},
          {"overall", tally_json(overall)},
          {"calibration", std::move(bins)}};
}

Result<RecommendationOutcomes> measure_recommendation_outcomes(const UsageHistory& history,
                                                               UnixSeconds now,
                                                               const RecommendOptions& options) {
  const UnixSeconds then = now - options.window_seconds;
  auto past_model = RecommendationModel::train(history, then, options);
  if (!past_model.is_ok()) return past_model.status();
  // The snapshot the past model was trained on is the one at `then`; the one at `now` is
  // read a slice at a time, each user's recommendations scored while their rows are loaded.
  const UsageSnapshot& at_then = past_model->snapshot();
  UsageSnapshot at_now = UsageSnapshot::empty(history, now, options.window_seconds);

  RecommendationOutcomes out;
  out.recommended_at = then;
  out.observed_until = now;
  out.calibration.resize(RecommendationOutcomes::kBins);
  for (int b = 0; b < RecommendationOutcomes::kBins; ++b) {
    out.calibration[b].lower = static_cast<double>(b) / RecommendationOutcomes::kBins;
    out.calibration[b].upper = static_cast<double>(b + 1) / RecommendationOutcomes::kBins;
  }
  FULCRUM_RETURN_IF_ERROR(history.for_each_slice([&](std::span<const int> users) {
    for (int u : users) at_now.fill(history, u);
    return Status::ok();
  }));
  for (int u = 0; u < history.user_count(); ++u) {
    if (history.signup_at(u) >= then) continue;  // did not exist when the recommendations were made
    auto recommendations = past_model->recommend(history.user_id(u));
    if (!recommendations.is_ok()) continue;
    for (const FeatureRecommendation& r : *recommendations) {
      const int f = history.find_feature(r.feature_name);
      if (f < 0 || f >= static_cast<int>(history.features().size())) continue;  // not in the catalog
      const float after = at_now.recent(static_cast<Eigen::Index>(u), f);
      const bool acted = r.recommendation_type == RecommendationType::kUsageOptimization
                             ? after > at_then.recent(static_cast<Eigen::Index>(u), f)
                             : after > 0;
      add(out.by_type[static_cast<int>(r.recommendation_type)], r.confidence_score, acted);
      add(out.overall, r.confidence_score, acted);
      const int bin = std::clamp(static_cast<int>(r.confidence_score * RecommendationOutcomes::kBins),
                                 0, RecommendationOutcomes::kBins - 1);
      RecommendationOutcomes::Bin& slot = out.calibration[bin];
      ++slot.recommendations;
      slot.acted_on += acted ? 1 : 0;
      slot.mean_confidence += r.confidence_score;
    }
  }
  for (auto& tally : out.by_type) finish(tally);
  finish(out.overall);
  for (auto& bin : out.calibration) {
    if (bin.recommendations > 0) bin.mean_confidence /= static_cast<double>(bin.recommendations);
  }
  return out;
}

}  // namespace fulcrum
