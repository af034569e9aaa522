// UpgradeTimingModel's serialised form: binary like the recommendation model's
// (recommend/recommendation_model_codec.cc), doubles copied bit for bit.
#include <nlohmann/json.hpp>

#include "core/binary_codec.h"
#include "core/ids.h"
#include "lifecycle/upgrade_timing.h"

namespace fulcrum {
namespace {

constexpr char kMagic[] = "fulcrum.upgrade_timing";

void write_vector(ByteWriter& out, const Eigen::VectorXd& values) {
  out.f64_array(values.data(), static_cast<std::size_t>(values.size()));
}

Eigen::VectorXd read_vector(ByteReader& in, std::size_t expected) {
  auto values = in.f64_vector(expected);
  if (!in.ok()) return {};
  return Eigen::Map<Eigen::VectorXd>(values.data(), static_cast<Eigen::Index>(values.size()));
}

}  // namespace

std::string upgrade_timing_options_fingerprint(const UpgradeTimingOptions& options) {
  nlohmann::json fields = {{"model", "upgrade_timing"},
                           {"horizon", options.propensity.horizon},
                           {"snapshots", options.propensity.snapshots},
                           {"holdout_snapshots", options.propensity.holdout_snapshots},
                           {"l2", options.propensity.l2},
                           {"lookahead_days", options.lookahead_days},
                           {"near_peak_share", options.near_peak_share}};
  return sha256_hex(fields.dump()).substr(0, 16);
}

std::string UpgradeTimingModel::serialize() const {
  ByteWriter out;
  out.str(kMagic);
  out.i64(trained_at_);
  out.i64(options_.propensity.horizon);
  out.i64(options_.propensity.snapshots);
  out.i64(options_.propensity.holdout_snapshots);
  out.f64(options_.propensity.l2);
  out.i64(options_.lookahead_days);
  out.f64(options_.near_peak_share);

  const LogisticModel& logistic = propensity_->logistic;
  write_vector(out, logistic.mean);
  write_vector(out, logistic.scale);
  write_vector(out, logistic.coefficients);
  out.f64(logistic.intercept);
  out.i64(logistic.iterations);
  out.u8(logistic.converged ? 1 : 0);
  write_calibration(out, propensity_->calibration);

  const UpgradeEvaluation& e = propensity_->evaluation;
  out.i64(e.train_until);
  out.i64(e.holdout_from);
  out.i64(e.holdout_until);
  out.i64(e.train_rows);
  out.i64(e.holdout_rows);
  for (double value : {e.train_upgrade_rate, e.holdout_upgrade_rate, e.model_auc, e.model_brier,
                       e.paywall_auc, e.paywall_brier, e.base_rate_auc, e.base_rate_brier}) {
    out.f64(value);
  }
  out.u32(static_cast<std::uint32_t>(e.coefficients.size()));
  for (const auto& [name, value] : e.coefficients) {
    out.str(name);
    out.f64(value);
  }
  return out.take();
}

Result<UpgradeTimingModel> UpgradeTimingModel::deserialize(std::string_view payload) {
  ByteReader in(payload);
  if (in.str() != kMagic) return invalid_argument("not a serialised upgrade-timing model");
  UpgradeTimingModel model;
  model.trained_at_ = in.i64();
  model.options_.propensity.horizon = in.i64();
  model.options_.propensity.snapshots = static_cast<int>(in.i64());
  model.options_.propensity.holdout_snapshots = static_cast<int>(in.i64());
  model.options_.propensity.l2 = in.f64();
  model.options_.lookahead_days = static_cast<int>(in.i64());
  model.options_.near_peak_share = in.f64();

  UpgradePropensityModel propensity;
  const auto features = static_cast<std::size_t>(kUpgradeFeatureCount);
  propensity.logistic.mean = read_vector(in, features);
  propensity.logistic.scale = read_vector(in, features);
  propensity.logistic.coefficients = read_vector(in, features);
  propensity.logistic.intercept = in.f64();
  propensity.logistic.iterations = static_cast<int>(in.i64());
  propensity.logistic.converged = in.u8() != 0;
  propensity.calibration = read_calibration(in);

  UpgradeEvaluation& e = propensity.evaluation;
  e.train_until = in.i64();
  e.holdout_from = in.i64();
  e.holdout_until = in.i64();
  e.train_rows = static_cast<int>(in.i64());
  e.holdout_rows = static_cast<int>(in.i64());
  for (double* value :
       {&e.train_upgrade_rate, &e.holdout_upgrade_rate, &e.model_auc, &e.model_brier,
        &e.paywall_auc, &e.paywall_brier, &e.base_rate_auc, &e.base_rate_brier}) {
    *value = in.f64();
  }
  const std::uint32_t coefficients = in.u32();
  for (std::uint32_t i = 0; i < coefficients && in.ok(); ++i) {
    std::string name = in.str();
    e.coefficients.emplace_back(std::move(name), in.f64());
  }
  FULCRUM_RETURN_IF_ERROR(in.finish());
  model.propensity_ = std::make_shared<const UpgradePropensityModel>(std::move(propensity));
  return model;
}

}  // namespace fulcrum
