// Money as integer minor units (cents). Doubles appear only in statistics.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fulcrum {

struct Money {
  std::int64_t minor_units = 0;

  static Money from_minor(std::int64_t minor) { return Money{minor}; }
  // Rounds half away from zero to the nearest minor unit.
  static Money from_major(double major);
  double as_major() const { return static_cast<double>(minor_units) / 100.0; }
  // "12.34", "-0.05"
  std::string to_string() const;

  friend Money operator+(Money a, Money b) { return Money{a.minor_units + b.minor_units}; }
  friend Money operator-(Money a, Money b) { return Money{a.minor_units - b.minor_units}; }
  friend bool operator==(Money a, Money b) = default;
  friend auto operator<=>(Money a, Money b) = default;
};

// Parses "12", "12.3", "12.34", "-1.05"; rejects more than two decimals or junk.
std::optional<Money> parse_money(std::string_view text);

}  // namespace fulcrum
