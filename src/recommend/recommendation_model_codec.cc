// RecommendationModel's serialised form. Binary rather than JSON: the model is mostly dense
// matrices (users x features, five of them, of bytes and 16-bit counts), which JSON would make several times larger
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

// The snapshot's five users x features matrices, sparsely: a user uses a few of the
// catalog's features, so most cells are zero in all five. Per user the number of cells with
// any nonzero value, then per such cell (by user, ascending feature) its feature, flags
// (bit 0 used, bit 1 used before the recent window) and three counts, each as one column.
// At a million users this is a third of the dense form.
constexpr std::uint8_t kUsedFlag = 1, kUsedBeforeRecentFlag = 2;

void write_snapshot_cells(ByteWriter& out, const UsageSnapshot& s) {
  const auto rows = s.used.rows(), cols = s.used.cols();
  std::vector<std::uint16_t> row_cells(static_cast<std::size_t>(rows), 0);
  std::vector<std::uint16_t> features, recent, previous, paywall;
  std::vector<std::uint8_t> flags;
  for (Eigen::Index u = 0; u < rows; ++u) {
    for (Eigen::Index f = 0; f < cols; ++f) {
      const std::uint8_t cell_flags =
          (s.used(u, f) != 0 ? kUsedFlag : 0) |
          (s.used_before_recent(u, f) != 0 ? kUsedBeforeRecentFlag : 0);
      if (cell_flags == 0 && s.recent(u, f) == 0 && s.previous(u, f) == 0 &&
          s.paywall_recent(u, f) == 0) {
        continue;
      }
      ++row_cells[static_cast<std::size_t>(u)];
      features.push_back(static_cast<std::uint16_t>(f));  // history features are 16-bit
      flags.push_back(cell_flags);
      recent.push_back(s.recent(u, f));
      previous.push_back(s.previous(u, f));
      paywall.push_back(s.paywall_recent(u, f));
    }
  }
  out.u16_array(row_cells.data(), row_cells.size());
  out.u16_array(features.data(), features.size());
  out.u8_array(flags.data(), flags.size());
  out.u16_array(recent.data(), recent.size());
  out.u16_array(previous.data(), previous.size());
  out.u16_array(paywall.data(), paywall.size());
}

// Fails the reader on cells out of order or out of range, or unknown flags.
void read_snapshot_cells(ByteReader& in, Eigen::Index rows, Eigen::Index cols,
                         UsageSnapshot& s) {
  const auto row_cells = in.u16_vector(static_cast<std::size_t>(rows));
  std::size_t cells = 0;
  for (std::uint16_t n : row_cells) cells += n;
  const auto features = in.u16_vector(cells);
  const auto flags = in.u8_vector(cells);
  const auto recent = in.u16_vector(cells);
  const auto previous = in.u16_vector(cells);
  const auto paywall = in.u16_vector(cells);
  if (!in.ok()) return;  // allocate only what the input really holds
  s.used.setZero(rows, cols);
  s.used_before_recent.setZero(rows, cols);
  s.recent.setZero(rows, cols);
  s.previous.setZero(rows, cols);
  s.paywall_recent.setZero(rows, cols);
  std::size_t cell = 0;
  for (Eigen::Index u = 0; u < rows; ++u) {
    int last = -1;
    for (std::uint16_t i = 0; i < row_cells[static_cast<std::size_t>(u)]; ++i, ++cell) {
      const int f = features[cell];
      if (f <= last || f >= cols || flags[cell] > (kUsedFlag | kUsedBeforeRecentFlag)) {
        in.fail("bad snapshot cell");
        return;
      }
      last = f;
      s.used(u, f) = (flags[cell] & kUsedFlag) != 0 ? 1 : 0;
      s.used_before_recent(u, f) = (flags[cell] & kUsedBeforeRecentFlag) != 0 ? 1 : 0;
      s.recent(u, f) = recent[cell];
      s.previous(u, f) = previous[cell];
      s.paywall_recent(u, f) = paywall[cell];
    }
  }
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
  out.u32(static_cast<std::uint32_t>(user_ids_.size()));
  for (const auto& user_id : user_ids_) out.str(user_id);

  const UsageSnapshot& snapshot = core_.snapshot;
  out.i64(snapshot.at);
  out.i64(snapshot.window);
  write_matrix_shape(out, snapshot.used);
  write_snapshot_cells(out, snapshot);
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
  for (std::uint32_t u = 0; u < users && in.ok(); ++u) model.user_ids_.push_back(in.str());

  UsageSnapshot& snapshot = model.core_.snapshot;
  snapshot.at = in.i64();
  snapshot.window = in.i64();
  const auto [rows, cols] = read_shape(in);
  if (in.ok() &&
      (rows != static_cast<Eigen::Index>(users) || cols != static_cast<Eigen::Index>(features))) {
    in.fail("snapshot shape disagrees with the users and features");
  }
  read_snapshot_cells(in, rows, cols, snapshot);
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

  model.index_users();
  return model;
}

}  // namespace fulcrum
