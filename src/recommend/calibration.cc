#include "recommend/calibration.h"

#include <algorithm>
#include <numeric>

namespace fulcrum {
namespace {

struct Block {
  double sum = 0;    // outcomes
  double count = 0;  // observations
  double max_score = 0;
};

// Pool-adjacent-violators on outcomes ordered by score; rates non-decreasing. `point(i)`
// is the i-th of `n` (score, outcome) pairs in ascending score order.
template <typename Point>
std::vector<Block> pool_adjacent_violators(std::size_t n, Point point) {
  std::vector<Block> blocks;
  std::size_t i = 0;
  while (i < n) {
    // Equal scores must share one step.
    Block block{0, 0, point(i).first};
    while (i < n && point(i).first == block.max_score) {
      block.sum += point(i).second;
      block.count += 1;
      ++i;
    }
    blocks.push_back(block);
    while (blocks.size() > 1) {
      Block& last = blocks.back();
      Block& prev = blocks[blocks.size() - 2];
      if (prev.sum / prev.count <= last.sum / last.count) break;
      prev.sum += last.sum;
      prev.count += last.count;
      prev.max_score = last.max_score;
      blocks.pop_back();
    }
  }
  return blocks;
}

double squared_error(const std::vector<Block>& blocks) {
  // sum over blocks of count * p(1-p) is the within-block squared error for 0/1 outcomes.
  double error = 0;
  for (const auto& b : blocks) {
    double p = b.sum / b.count;
    error += b.count * p * (1 - p);
  }
  return error;
}

}  // namespace

MonotoneCalibration MonotoneCalibration::fit(const std::vector<double>& scores,
                                             const std::vector<double>& outcomes,
                                             double prior_weight, double fallback) {
  std::vector<std::pair<double, double>> points(std::min(scores.size(), outcomes.size()));
  for (std::size_t i = 0; i < points.size(); ++i) points[i] = {scores[i], outcomes[i]};
  return fit_points(std::move(points), prior_weight, fallback);
}

MonotoneCalibration MonotoneCalibration::fit_points(std::vector<std::pair<double, double>> up,
                                                    double prior_weight, double fallback) {
  MonotoneCalibration calibration;
  const std::size_t n = up.size();
  calibration.sample_size_ = n;
  if (n == 0) {
    calibration.base_rate_ = fallback;
    calibration.rates_ = {fallback};
    calibration.upper_bounds_ = {0.0};
    return calibration;
  }
  std::sort(up.begin(), up.end());
  auto blocks_up = pool_adjacent_violators(n, [&](std::size_t i) { return up[i]; });
  // Decreasing fit = increasing fit on negated scores, read from the end (no second copy).
  auto blocks_down = pool_adjacent_violators(n, [&](std::size_t i) {
    const auto& p = up[n - 1 - i];
    return std::pair<double, double>(-p.first, p.second);
  });
  calibration.increasing_ = squared_error(blocks_up) <= squared_error(blocks_down);
  const auto& blocks = calibration.increasing_ ? blocks_up : blocks_down;

  double total = std::accumulate(up.begin(), up.end(), 0.0,
                                 [](double acc, const auto& p) { return acc + p.second; });
  calibration.base_rate_ = total / static_cast<double>(n);
  for (const auto& b : blocks) {
    calibration.upper_bounds_.push_back(b.max_score);
    calibration.rates_.push_back((b.sum + prior_weight * calibration.base_rate_) /
                                 (b.count + prior_weight));
  }
  // Shrinkage can undo the ordering between a big and a tiny step; restore it.
  for (std::size_t i = 1; i < calibration.rates_.size(); ++i) {
    calibration.rates_[i] = std::max(calibration.rates_[i], calibration.rates_[i - 1]);
  }
  return calibration;
}

double MonotoneCalibration::operator()(double score) const {
  double key = increasing_ ? score : -score;
  // First step whose upper bound is >= key; scores past the last step use the last one.
  auto it = std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), key);
  std::size_t step = it == upper_bounds_.end()
                         ? rates_.size() - 1
                         : static_cast<std::size_t>(it - upper_bounds_.begin());
  return std::clamp(rates_[step], 0.0, 1.0);
}

std::optional<MonotoneCalibration> MonotoneCalibration::restore(std::vector<double> upper_bounds,
                                                                std::vector<double> rates,
                                                                double base_rate,
                                                                std::size_t sample_size,
                                                                bool increasing) {
  if (rates.empty() || upper_bounds.size() != rates.size()) return std::nullopt;
  MonotoneCalibration calibration;
  calibration.upper_bounds_ = std::move(upper_bounds);
  calibration.rates_ = std::move(rates);
  calibration.base_rate_ = base_rate;
  calibration.sample_size_ = sample_size;
  calibration.increasing_ = increasing;
  return calibration;
}

void write_calibration(ByteWriter& out, const MonotoneCalibration& calibration) {
  out.f64_vector(calibration.upper_bounds());
  out.f64_vector(calibration.rates());
  out.f64(calibration.base_rate());
  out.i64(static_cast<std::int64_t>(calibration.sample_size()));
  out.u8(calibration.increasing() ? 1 : 0);
}

MonotoneCalibration read_calibration(ByteReader& in) {
  auto upper_bounds = in.f64_vector();
  auto rates = in.f64_vector();
  const double base_rate = in.f64();
  const std::int64_t sample_size = in.i64();
  const std::uint8_t increasing = in.u8();
  if (!in.ok()) return MonotoneCalibration::fit({}, {});
  auto restored = MonotoneCalibration::restore(std::move(upper_bounds), std::move(rates),
                                               base_rate, static_cast<std::size_t>(sample_size),
                                               increasing != 0);
  if (!restored || sample_size < 0 || increasing > 1) {
    in.fail("malformed calibration");
    return MonotoneCalibration::fit({}, {});
  }
  return *restored;
}

}  // namespace fulcrum
