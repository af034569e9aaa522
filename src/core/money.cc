#include "core/money.h"

#include <cmath>
#include <cstdlib>

namespace fulcrum {

Money Money::from_major(double major) {
  return Money{static_cast<std::int64_t>(std::llround(major * 100.0))};
}

std::string Money::to_string() const {
  const std::int64_t magnitude = minor_units < 0 ? -minor_units : minor_units;
  std::string cents = std::to_string(magnitude % 100);
  if (cents.size() < 2) cents.insert(0, "0");
  return (minor_units < 0 ? "-" : "") + std::to_string(magnitude / 100) + "." + cents;
}

std::optional<Money> parse_money(std::string_view text) {
  bool negative = false;
  std::size_t pos = 0;
  if (pos < text.size() && text[pos] == '-') {
    negative = true;
    ++pos;
  }
  std::int64_t whole = 0;
  const std::size_t whole_start = pos;
  while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
    if (whole > 90'000'000'000'000'000LL / 10) return std::nullopt;
    whole = whole * 10 + (text[pos++] - '0');
  }
  if (pos == whole_start) return std::nullopt;
  std::int64_t cents = 0;
  if (pos < text.size()) {
    if (text[pos] != '.') return std::nullopt;
    ++pos;
    const std::size_t decimals = text.size() - pos;
    if (decimals == 0 || decimals > 2) return std::nullopt;
    for (; pos < text.size(); ++pos) {
      if (text[pos] < '0' || text[pos] > '9') return std::nullopt;
      cents = cents * 10 + (text[pos] - '0');
    }
    if (decimals == 1) cents *= 10;
  }
  const std::int64_t minor = whole * 100 + cents;
  return Money{negative ? -minor : minor};
}

}  // namespace fulcrum
