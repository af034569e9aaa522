// Internal: the few distribution functions the stats library needs, wrapped so
// that Boost.Math never throws out of it (inputs are validated by callers; a
// policy turns domain errors into NaN). Tails are computed via complements for
// accuracy.
#pragma once

namespace fulcrum::stats::detail {

double normal_cdf(double x);
double normal_sf(double x);  // 1 - cdf, accurate in the upper tail
double normal_pdf(double x);
double normal_quantile(double p);  // inverse cdf
// Student t upper tail; df = +inf falls back to the normal.
double student_t_sf(double t, double df);
double student_t_quantile(double p, double df);
double chi_squared_sf(double x, double df);

}  // namespace fulcrum::stats::detail
