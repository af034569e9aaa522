#include "stats/distributions.h"

#include <boost/math/distributions/chi_squared.hpp>
#include <boost/math/distributions/normal.hpp>
#include <boost/math/distributions/students_t.hpp>
#include <cmath>
#include <limits>

namespace fulcrum::stats::detail {
namespace {

namespace bm = boost::math;
using Policy = bm::policies::policy<bm::policies::domain_error<bm::policies::ignore_error>,
                                    bm::policies::overflow_error<bm::policies::ignore_error>,
                                    bm::policies::evaluation_error<bm::policies::ignore_error>,
                                    bm::policies::pole_error<bm::policies::ignore_error>>;
using Normal = bm::normal_distribution<double, Policy>;
using StudentT = bm::students_t_distribution<double, Policy>;
using ChiSquared = bm::chi_squared_distribution<double, Policy>;

}  // namespace

double normal_cdf(double x) { return bm::cdf(Normal(), x); }
double normal_sf(double x) { return bm::cdf(bm::complement(Normal(), x)); }
double normal_pdf(double x) { return bm::pdf(Normal(), x); }
double normal_quantile(double p) {
  if (p <= 0) return -std::numeric_limits<double>::infinity();
  if (p >= 1) return std::numeric_limits<double>::infinity();
  return bm::quantile(Normal(), p);
}

double student_t_sf(double t, double df) {
  if (std::isinf(df)) return normal_sf(t);
  return bm::cdf(bm::complement(StudentT(df), t));
}

double student_t_quantile(double p, double df) {
  if (std::isinf(df)) return normal_quantile(p);
  if (p <= 0) return -std::numeric_limits<double>::infinity();
  if (p >= 1) return std::numeric_limits<double>::infinity();
  return bm::quantile(StudentT(df), p);
}

double chi_squared_sf(double x, double df) {
  if (x <= 0) return 1.0;
  return bm::cdf(bm::complement(ChiSquared(df), x));
}

}  // namespace fulcrum::stats::detail
