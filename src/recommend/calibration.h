// Monotone calibration: maps a model score to the observed rate of a binary outcome, fitted
// by pool-adjacent-violators isotonic regression (Zadrozny & Elkan 2002) on held-out
// (score, outcome) pairs. Used so a confidence_score means "the share of past cases with
// this score whose outcome happened".
#pragma once

#include <cstddef>
#include <optional>
#include <utility>
#include <vector>

#include "core/binary_codec.h"

namespace fulcrum {

class MonotoneCalibration {
 public:
  // Fits a step function of the score. The direction (increasing or decreasing) is the
  // one with the lower squared error. Each step's rate is shrunk toward the overall base
  // rate with `prior_weight` pseudo-observations so tiny steps do not report 0 or 1.
  // With no data every score maps to `fallback`.
  static MonotoneCalibration fit(const std::vector<double>& scores,
                                 const std::vector<double>& outcomes, double prior_weight = 2.0,
                                 double fallback = 0.0);
  // The same fit of (score, outcome) points, sorted in place: a model's calibration set is
  // millions of candidates at a million users, and this holds them once.
  static MonotoneCalibration fit_points(std::vector<std::pair<double, double>> points,
                                        double prior_weight = 2.0, double fallback = 0.0);

  // A calibration from its parts, as upper_bounds(), rates() and the rest returned them
  // (a stored model's); nullopt when there is no step or the two vectors differ in length.
  static std::optional<MonotoneCalibration> restore(std::vector<double> upper_bounds,
                                                    std::vector<double> rates, double base_rate,
                                                    std::size_t sample_size, bool increasing);

  // Calibrated rate in [0, 1] for a score.
  double operator()(double score) const;

  double base_rate() const { return base_rate_; }
  std::size_t sample_size() const { return sample_size_; }
  bool increasing() const { return increasing_; }
  // Step boundaries: step i covers scores up to upper_bounds()[i] (last one to +inf).
  const std::vector<double>& upper_bounds() const { return upper_bounds_; }
  const std::vector<double>& rates() const { return rates_; }

 private:
  std::vector<double> upper_bounds_;
  std::vector<double> rates_;
  double base_rate_ = 0.0;
  std::size_t sample_size_ = 0;
  bool increasing_ = true;
};

// A calibration in a serialised model (core/binary_codec.h), bit for bit. A malformed one
// fails the reader and reads as the empty-data calibration.
void write_calibration(ByteWriter& out, const MonotoneCalibration& calibration);
MonotoneCalibration read_calibration(ByteReader& in);

}  // namespace fulcrum
