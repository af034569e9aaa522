// RecommendationModel's serialised form. Binary rather than JSON: the model is mostly dense
// matrices (users x features, five of them), which JSON would make several times larger
// and whose doubles it would have to print and parse exactly; a byte copy is exact by
// construction and loads at memory speed.
#include <nlohmann/json.hpp>

#include "core/binary_codec.h"
#include "core/ids.h"
#include "recommend/recommendation_model.h"

namespace fulcrum {
namespace {

constexpr char kMagic[] = "fulcrum.recommendations";

void write_feature(ByteWriter& out, const Feature& feature) {
  out.str(feature.name);
  out.u8(static_cast<std::uint8_t>(feature.required_tier));
  out.i64(feature.monthly_maintenance_cost_minor);
  out.i64(feature.monthly_revenue_value_minor);
  out.str(feature.category);
  out.str(feature.event_id);
}

Tier read_tier(ByteReader& in) {
  const std::uint8_t tier = in.u8();
  if (tier > static_cast<std::uint8_t>(Tier::kPremium)) in.fail("tier out of range");
  return static_cast<Tier>(tier);
}

Feature read_feature(ByteReader& in) {
  Feature feature;
  feature.name = in.str();
  feature.required_tier = read_tier(in);
  feature.monthly_maintenance_cost_minor = in.i64();
  feature.monthly_revenue_value_minor = in.i64();
  feature.category = in.str();
  feature.event_id = in.str();
  return feature;
}

void write_user(ByteWriter& out, const User& user) {
  out.str(user.user_id);
  out.u8(static_cast<std::uint8_t>(user.tier));
  out.i64(user.signup_at);
  out.str(user.country);
  out.str(user.app_version);
  out.u32(static_cast<std::uint32_t>(user.attributes.size()));
  for (const auto& [key, value] : user.attributes) {
    out.str(key);
    out.str(value);
  }
  out.str(user.event_id);
}

User read_user(ByteReader& in) {
  User user;
  user.user_id = in.str();
  user.tier = read_tier(in);
  user.signup_at = in.i64();
  user.country = in.str();
  user.app_version = in.str();
  const std::uint32_t attributes = in.u32();
  for (std::uint32_t i = 0; i < attributes && in.ok(); ++i) {
    std::string key = in.str();
    user.attributes[std::move(key)] = in.str();
  }
  user.event_id = in.str();
  return user;
}

template <typename Matrix>
void write_matrix_shape(ByteWriter& out, const Matrix& matrix) {
  out.i64(matrix.rows());
  out.i64(matrix.cols());
}

// Reads a rows x cols shape; fails the reader on a negative or overflowing one.
std::pair<Eigen::Index, Eigen::Index> read_shape(ByteReader& in) {
  const std::int64_t rows = in.i64(), cols = in.i64();
  if (rows < 0 || cols < 0 || (cols != 0 && rows > INT64_MAX / cols)) {
    in.fail("bad matrix shape");
    return {0, 0};
  }
  return {static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(cols)};
}

template <typename Matrix, typename Read>
Matrix read_matrix(ByteReader& in, Eigen::Index rows, Eigen::Index cols, Read read) {
  auto values = read(static_cast<std::size_t>(rows * cols));
  if (!in.ok()) return Matrix();  // allocate only what the input really holds
  Matrix matrix(rows, cols);
  std::copy(values.begin(), values.end(), matrix.data());
  return matrix;
}

}  // namespace

std::string recommend_options_fingerprint(const RecommendOptions& options) {
  nlohmann::json fields = {
      {"model", "recommendations"},
      {"ease_lambda", options.ease_lambda ? nlohmann::json(*options.ease_lambda) : nullptr},
      {"ease_lambda_grid", options.ease_lambda_grid},
      {"validation_k", options.validation_k},
      {"window_seconds", options.window_seconds},
      {"max_per_type", options.max_per_type},
      {"max_total", options.max_total}};
  return sha256_hex(fields.dump()).substr(0, 16);
}

std::string RecommendationModel::serialize() const {
  ByteWriter out;
  out.str(kMagic);
  out.i64(trained_at_);
  out.u8(options_.ease_lambda ? 1 : 0);
  out.f64(options_.ease_lambda.value_or(0));
  out.f64_vector(options_.ease_lambda_grid);
  out.i64(options_.validation_k);
  out.i64(options_.window_seconds);
  out.i64(options_.max_per_type);
  out.i64(options_.max_total);

  out.u32(static_cast<std::uint32_t>(features_.size()));
  for (const auto& feature : features_) write_feature(out, feature);
  out.u32(static_cast<std::uint32_t>(users_.size()));
  for (const auto& user : users_) write_user(out, user);

  const UsageSnapshot& snapshot = core_.snapshot;
  out.i64(snapshot.at);
  out.i64(snapshot.window);
  write_matrix_shape(out, snapshot.used);
  const auto cells = static_cast<std::size_t>(snapshot.used.size());
  // `used` holds 0 or 1: one byte a cell carries it exactly, an eighth of the doubles.
  std::vector<std::uint8_t> used(cells);
  bool binary = true;
  for (std::size_t i = 0; i < cells; ++i) {
    const double value = snapshot.used.data()[i];
    binary = binary && (value == 0.0 || value == 1.0);
    used[i] = value == 1.0 ? 1 : 0;
  }
  out.u8(binary ? 1 : 0);
  if (binary) {
    out.u8_array(used.data(), cells);
  } else {
    out.f64_array(snapshot.used.data(), cells);
  }
  out.f32_array(snapshot.recent.data(), static_cast<std::size_t>(snapshot.recent.size()));
  out.f32_array(snapshot.previous.data(), static_cast<std::size_t>(snapshot.previous.size()));
  out.f32_array(snapshot.paywall_recent.data(),
                static_cast<std::size_t>(snapshot.paywall_recent.size()));
  out.u8_array(snapshot.used_before_recent.data(),
               static_cast<std::size_t>(snapshot.used_before_recent.size()));
  out.f32_vector(snapshot.activity_recent);
  out.f32_vector(snapshot.activity_previous);
  std::vector<std::uint8_t> tiers;
  tiers.reserve(snapshot.tiers.size());
  for (Tier tier : snapshot.tiers) tiers.push_back(static_cast<std::uint8_t>(tier));
  out.u8_array(tiers.data(), tiers.size());

  write_matrix_shape(out, core_.weights);
  out.f64_array(core_.weights.data(), static_cast<std::size_t>(core_.weights.size()));
  out.f64_vector(core_.popularity);
  out.f32_vector(core_.peer_median);
  out.f32_vector(core_.peer_low);
  out.f64_vector(core_.retention_lift);

  out.f64(lambda_validation_.chosen);
  out.u8(lambda_validation_.validated ? 1 : 0);
  out.i64(lambda_validation_.train_until);
  out.i64(lambda_validation_.validate_until);
  out.i64(lambda_validation_.k);
  out.i64(static_cast<std::int64_t>(lambda_validation_.users_validated));
  out.u32(static_cast<std::uint32_t>(lambda_validation_.grid.size()));
  for (const auto& point : lambda_validation_.grid) {
    out.f64(point.lambda);
    out.f64(point.ndcg);
  }
  for (const auto& calibration : calibrations_) write_calibration(out, calibration);
  return out.take();
}

Result<RecommendationModel> RecommendationModel::deserialize(std::string_view payload) {
  ByteReader in(payload);
  if (in.str() != kMagic) return invalid_argument("not a serialised recommendation model");
  RecommendationModel model;
  model.trained_at_ = in.i64();
  const bool has_lambda = in.u8() != 0;
  const double lambda = in.f64();
  if (has_lambda) model.options_.ease_lambda = lambda;
  model.options_.ease_lambda_grid = in.f64_vector();
  model.options_.validation_k = static_cast<int>(in.i64());
  model.options_.window_seconds = in.i64();
  model.options_.max_per_type = static_cast<int>(in.i64());
  model.options_.max_total = static_cast<int>(in.i64());

  const std::uint32_t features = in.u32();
  for (std::uint32_t f = 0; f < features && in.ok(); ++f)
    model.features_.push_back(read_feature(in));
  const std::uint32_t users = in.u32();
  for (std::uint32_t u = 0; u < users && in.ok(); ++u) model.users_.push_back(read_user(in));

  UsageSnapshot& snapshot = model.core_.snapshot;
  snapshot.at = in.i64();
  snapshot.window = in.i64();
  const auto [rows, cols] = read_shape(in);
  if (in.ok() &&
      (rows != static_cast<Eigen::Index>(users) || cols != static_cast<Eigen::Index>(features))) {
    in.fail("snapshot shape disagrees with the users and features");
  }
  const auto cells = static_cast<std::size_t>(rows * cols);
  const bool binary = in.u8() != 0;
  if (binary) {
    auto used = in.u8_vector(cells);
    if (in.ok()) snapshot.used.resize(rows, cols);
    for (std::size_t i = 0; i < used.size(); ++i) snapshot.used.data()[i] = used[i];
  } else {
    snapshot.used = read_matrix<UsageSnapshot::RowMatrixD>(
        in, rows, cols, [&](std::size_t n) { return in.f64_vector(n); });
  }
  auto floats = [&](std::size_t n) { return in.f32_vector(n); };
  snapshot.recent = read_matrix<UsageSnapshot::RowMatrixF>(in, rows, cols, floats);
  snapshot.previous = read_matrix<UsageSnapshot::RowMatrixF>(in, rows, cols, floats);
  snapshot.paywall_recent = read_matrix<UsageSnapshot::RowMatrixF>(in, rows, cols, floats);
  snapshot.used_before_recent =
      read_matrix<Eigen::Matrix<std::uint8_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
          in, rows, cols, [&](std::size_t n) { return in.u8_vector(n); });
  snapshot.activity_recent = in.f32_vector(users);
  snapshot.activity_previous = in.f32_vector(users);
  for (std::uint8_t tier : in.u8_vector(users)) {
    if (tier > static_cast<std::uint8_t>(Tier::kPremium)) in.fail("tier out of range");
    snapshot.tiers.push_back(static_cast<Tier>(tier));
  }

  const auto [weight_rows, weight_cols] = read_shape(in);
  if (in.ok() && (weight_rows != cols || weight_cols != cols)) {
    in.fail("EASE weights are not features x features");
  }
  model.core_.weights = read_matrix<Eigen::MatrixXd>(
      in, weight_rows, weight_cols, [&](std::size_t n) { return in.f64_vector(n); });
  model.core_.popularity = in.f64_vector(features);
  model.core_.peer_median = in.f32_vector(features);
  model.core_.peer_low = in.f32_vector(features);
  model.core_.retention_lift = in.f64_vector(features);

  EaseLambdaValidation& validation = model.lambda_validation_;
  validation.chosen = in.f64();
  validation.validated = in.u8() != 0;
  validation.train_until = in.i64();
  validation.validate_until = in.i64();
  validation.k = static_cast<int>(in.i64());
  validation.users_validated = static_cast<std::size_t>(in.i64());
  const std::uint32_t points = in.u32();
  for (std::uint32_t p = 0; p < points && in.ok(); ++p) {
    EaseLambdaValidation::Point point;
    point.lambda = in.f64();
    point.ndcg = in.f64();
    validation.grid.push_back(point);
  }
  for (auto& calibration : model.calibrations_) calibration = read_calibration(in);
  FULCRUM_RETURN_IF_ERROR(in.finish());

  for (std::size_t u = 0; u < model.users_.size(); ++u) {
    model.user_ids_.push_back(model.users_[u].user_id);
    model.user_index_.emplace(model.users_[u].user_id, static_cast<int>(u));
  }
  return model;
}

}  // namespace fulcrum
