// The one way to parse JSON that came from outside the process (request bodies, `fulcrum
// analyze` input, configuration files): a size limit, a nesting-depth limit and errors that
// name the place in the document, never a library's message. The parse itself is
// iterative (nlohmann's SAX parser with an explicit stack), so it cannot exhaust the call
// stack; the depth limit then keeps every later recursive walk over the document (dump(),
// copies, condition evaluation) shallow. Numbers that overflow a double (1e400) and
// invalid UTF-8 are errors naming the field.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace fulcrum {

struct JsonLimits {
  // Levels of arrays/objects: {"a": [1]} has depth 2. 64 is far above any document Fulcrum
  // accepts (a targeting condition or an event record needs fewer than 10).
  static constexpr std::size_t kDefaultMaxDepth = 64;
  static constexpr std::size_t kDefaultMaxBytes = 16u << 20;

  std::size_t max_depth = kDefaultMaxDepth;
  std::size_t max_bytes = kDefaultMaxBytes;
};

// Parses `text` as one JSON value. Errors are kInvalidArgument with `field` set to the JSON
// path of the offending value (e.g. "events[0].attributes.x"), or to `what` when the error
// is about the document as a whole (too large, empty, not JSON at byte N). Messages say what
// was wrong and where: "JSON nesting deeper than 64 levels at events[0]".
Result<nlohmann::json> parse_untrusted_json(std::string_view text, std::string_view what = "body",
                                            const JsonLimits& limits = {});

// The same, and the value must be an object.
Result<nlohmann::json> parse_untrusted_json_object(std::string_view text,
                                                   std::string_view what = "body",
                                                   const JsonLimits& limits = {});

// True when `value` nests arrays/objects deeper than `max_depth` levels. Iterative, so it is
// safe on documents built by code rather than by parse_untrusted_json.
bool json_depth_exceeds(const nlohmann::json& value, std::size_t max_depth);

// Serializes without throwing: invalid UTF-8 in strings (which only a caller's bytes can put
// there) becomes U+FFFD instead of a type_error.
std::string dump_json(const nlohmann::json& value);

// True when `text` is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, at
// most U+10FFFF).
bool is_valid_utf8(std::string_view text);

// Shortens `text` for an error message (at most `max_bytes`, never splitting a UTF-8
// sequence, "..." appended when cut).
std::string shorten_for_message(std::string_view text, std::size_t max_bytes = 64);

}  // namespace fulcrum
