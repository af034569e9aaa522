#include "assign/hash.h"

#include <charconv>
#include <string>

namespace fulcrum::assign {
namespace {

inline std::uint32_t step(std::uint32_t state, std::uint32_t code_unit) {
  return (state ^ code_unit) * kFnvPrime;
}

// Decodes UTF-8 from `i` and feeds UTF-16 code units, as JavaScript strings hold them.
// Malformed sequences become U+FFFD, like TextDecoder does.
std::uint32_t append_utf16(std::uint32_t state, std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  while (i < s.size()) {
    std::uint32_t c = byte(i);
    std::size_t len = 1;
    std::uint32_t cp = 0xFFFD;
    if (c < 0x80) {
      cp = c;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      len = 0;  // stray continuation byte or invalid lead
    }
    if (len == 0 || i + len > s.size()) {
      state = step(state, 0xFFFD);
      ++i;
      continue;
    }
    bool ok = true;
    for (std::size_t k = 1; k < len; ++k) {
      if ((byte(i + k) & 0xC0) != 0x80) ok = false;
      cp = (cp << 6) | (byte(i + k) & 0x3F);
    }
    if (!ok) {
      state = step(state, 0xFFFD);
      ++i;
      continue;
    }
    if (cp >= 0x10000) {
      cp -= 0x10000;
      state = step(state, 0xD800 + (cp >> 10));
      state = step(state, 0xDC00 + (cp & 0x3FF));
    } else {
      state = step(state, cp);
    }
    i += len;
  }
  return state;
}

}  // namespace

std::uint32_t fnv1a32_append(std::uint32_t state, std::string_view utf8) {
  for (std::size_t i = 0; i < utf8.size(); ++i) {
    const auto c = static_cast<unsigned char>(utf8[i]);
    if (c >= 0x80) return append_utf16(state, utf8, i);
    state = step(state, c);
  }
  return state;
}

double hash_v2_finish(std::uint32_t first_round) {
  char digits[16];
  const auto end = std::to_chars(digits, digits + sizeof digits, first_round).ptr;
  std::uint32_t second = kFnvOffsetBasis;
  for (const char* p = digits; p != end; ++p) second = step(second, static_cast<unsigned char>(*p));
  return static_cast<double>(second % 10000u) / 10000.0;
}

std::optional<double> hash(std::string_view seed, std::string_view value, int version) {
  if (version == 2) return hash_v2_finish(fnv1a32_append(fnv1a32(seed), value));
  if (version == 1) {
    return static_cast<double>(fnv1a32_append(fnv1a32(value), seed) % 1000u) / 1000.0;
  }
  return std::nullopt;
}

SeededHash::SeededHash(std::string_view seed, int version)
    : seed_(seed), seed_state_(fnv1a32(seed)), version_(version) {}

std::optional<double> SeededHash::operator()(std::string_view value) const {
  if (version_ == 2) return hash_v2_finish(fnv1a32_append(seed_state_, value));
  if (version_ == 1) {
    return static_cast<double>(fnv1a32_append(fnv1a32(value), seed_) % 1000u) / 1000.0;
  }
  return std::nullopt;
}

}  // namespace fulcrum::assign
