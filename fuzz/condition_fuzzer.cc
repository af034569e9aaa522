// Targeting conditions: the input is "<condition JSON>\n<attributes JSON>", parsed with the
// limits every request body gets; validate_condition runs on the condition and
// eval_condition on both, whether or not the condition is valid (stored or hand-built
// conditions reach eval without validation).
#include <cstddef>
#include <cstdint>

#include "assign/condition.h"
#include "core/untrusted_json.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::size_t newline = text.find('\n');
  auto condition = fulcrum::parse_untrusted_json(text.substr(0, newline));
  if (!condition.is_ok()) return 0;
  (void)fulcrum::assign::validate_condition(*condition);
  nlohmann::json attributes = nlohmann::json::object();
  if (newline != std::string_view::npos) {
    auto parsed = fulcrum::parse_untrusted_json(text.substr(newline + 1));
    if (parsed.is_ok()) attributes = std::move(*parsed);
  }
  (void)fulcrum::assign::eval_condition(attributes, *condition);
  return 0;
}
