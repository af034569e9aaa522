#include "core/untrusted_json.h"

#include <cstring>
#include <vector>

namespace fulcrum {
namespace {

using json = nlohmann::json;

// Builds the DOM with nlohmann's own SAX DOM builder (an explicit stack, no recursion)
// while tracking the path of the value being parsed, and stops at the first value deeper
// than the limit.
class LimitedDomBuilder {
 public:
  LimitedDomBuilder(json& result, std::size_t max_depth)
      : dom_(result, false), max_depth_(max_depth) {}

  bool null() { return dom_.null() && done(); }
  bool boolean(bool value) { return dom_.boolean(value) && done(); }
  bool number_integer(json::number_integer_t value) { return dom_.number_integer(value) && done(); }
  bool number_unsigned(json::number_unsigned_t value) {
    return dom_.number_unsigned(value) && done();
  }
  bool number_float(json::number_float_t value, const json::string_t& text) {
    return dom_.number_float(value, text) && done();
  }
  bool string(json::string_t& value) { return dom_.string(value) && done(); }
  bool binary(json::binary_t& value) { return dom_.binary(value) && done(); }
  bool start_object(std::size_t elements) { return open(false) && dom_.start_object(elements); }
  bool key(json::string_t& value) {
    frames_.back().key = value;
    frames_.back().has_key = true;
    return dom_.key(value);
  }
  bool end_object() { return close() && dom_.end_object(); }
  bool start_array(std::size_t elements) { return open(true) && dom_.start_array(elements); }
  bool end_array() { return close() && dom_.end_array(); }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& ex) {
    error_byte_ = position;
    if (ex.id == 406) {
      error_ = "number does not fit a double";
    } else if (std::strstr(ex.what(), "UTF-8") != nullptr) {
      error_ = "invalid UTF-8 in a string";
    } else {
      error_ = "invalid JSON syntax";
    }
    return false;
  }

  bool too_deep() const { return too_deep_; }
  const std::string& error() const { return error_; }
  std::size_t error_byte() const { return error_byte_; }

  // The JSON path of the value being parsed when the parse stopped ("events[3].at").
  std::string path() const {
    std::string out;
    for (const Frame& frame : frames_) {
      if (frame.is_array) {
        out += "[" + std::to_string(frame.count) + "]";
      } else if (frame.has_key) {
        if (!out.empty()) out += '.';
        out += shorten_for_message(frame.key, 64);
      }
    }
    return out;
  }

 private:
  struct Frame {
    bool is_array = false;
    bool has_key = false;
    std::size_t count = 0;  // elements of an array completed so far
    std::string key;        // member of an object being parsed
  };

  // A completed value advances its parent array's index.
  bool done() {
    if (frames_.empty()) return true;
    if (frames_.back().is_array) {
      ++frames_.back().count;
    } else {
      frames_.back().has_key = false;  // the next error is about the next member
    }
    return true;
  }
  bool open(bool is_array) {
    if (frames_.size() >= max_depth_) {
      too_deep_ = true;
      return false;
    }
    frames_.push_back(Frame{is_array, false, 0, {}});
    return true;
  }
  bool close() {
    frames_.pop_back();
    return done();
  }

  nlohmann::detail::json_sax_dom_parser<json> dom_;
  std::size_t max_depth_;
  std::vector<Frame> frames_;
  bool too_deep_ = false;
  std::string error_;
  std::size_t error_byte_ = 0;
};

bool is_blank(std::string_view text) {
  return text.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

}  // namespace

Result<json> parse_untrusted_json(std::string_view text, std::string_view what,
                                  const JsonLimits& limits) {
  const std::string name(what);
  if (text.size() > limits.max_bytes) {
    return invalid_argument(name + " is " + std::to_string(text.size()) +
                                " bytes of JSON, more than the limit of " +
                                std::to_string(limits.max_bytes),
                            name);
  }
  if (is_blank(text)) return invalid_argument(name + " is empty: expected a JSON document", name);
  json result;
  LimitedDomBuilder builder(result, limits.max_depth);
  const bool parsed = json::sax_parse(text.begin(), text.end(), &builder);
  if (parsed) return result;
  std::string path = builder.path();
  const std::string where = path.empty() ? name : path;
  if (builder.too_deep()) {
    return invalid_argument(
        "JSON nesting deeper than " + std::to_string(limits.max_depth) + " levels at " + where,
        where);
  }
  return invalid_argument(name + " is not valid JSON: " + builder.error() + " at byte " +
                              std::to_string(builder.error_byte()) +
                              (path.empty() ? std::string() : " (in " + path + ")"),
                          where);
}

Result<json> parse_untrusted_json_object(std::string_view text, std::string_view what,
                                         const JsonLimits& limits) {
  auto document = parse_untrusted_json(text, what, limits);
  if (!document.is_ok()) return document;
  if (!document->is_object()) {
    return invalid_argument(std::string(what) + " must be a JSON object", std::string(what));
  }
  return document;
}

bool json_depth_exceeds(const json& value, std::size_t max_depth) {
  std::vector<std::pair<const json*, std::size_t>> pending = {{&value, 1}};
  while (!pending.empty()) {
    auto [node, depth] = pending.back();
    pending.pop_back();
    if (!node->is_structured()) continue;
    if (depth > max_depth) return true;
    for (const json& child : *node) {
      if (child.is_structured()) pending.emplace_back(&child, depth + 1);
    }
  }
  return false;
}

std::string dump_json(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

bool is_valid_utf8(std::string_view text) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t size = text.size();
  std::size_t i = 0;
  while (i < size) {
    const unsigned char lead = bytes[i];
    if (lead < 0x80) {
      ++i;
      continue;
    }
    std::size_t length = 0;
    unsigned char low = 0x80, high = 0xBF;  // allowed range of the second byte
    if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead == 0xE0) {
      length = 3, low = 0xA0;
    } else if ((lead >= 0xE1 && lead <= 0xEC) || lead == 0xEE || lead == 0xEF) {
      length = 3;
    } else if (lead == 0xED) {
      length = 3, high = 0x9F;  // no UTF-16 surrogates
    } else if (lead == 0xF0) {
      length = 4, low = 0x90;
    } else if (lead >= 0xF1 && lead <= 0xF3) {
      length = 4;
    } else if (lead == 0xF4) {
      length = 4, high = 0x8F;
    } else {
      return false;
    }
    if (size - i < length) return false;
    if (bytes[i + 1] < low || bytes[i + 1] > high) return false;
    for (std::size_t k = 2; k < length; ++k) {
      if ((bytes[i + k] & 0xC0) != 0x80) return false;
    }
    i += length;
  }
  return true;
}

std::string shorten_for_message(std::string_view text, std::size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  std::size_t cut = max_bytes;
  // Back up to the start of a UTF-8 sequence (continuation bytes are 10xxxxxx).
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return std::string(text.substr(0, cut)) + "...";
}

}  // namespace fulcrum
