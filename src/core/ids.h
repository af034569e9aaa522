// Identifiers: random ids for new entities, and hex/hash helpers.
#pragma once

#include <string>
#include <string_view>

namespace fulcrum {

// A new random identifier: prefix + '_' + 16 lowercase hex characters from a CSPRNG,
// e.g. "test_3f9a0c1b2d4e5f60".
std::string new_id(std::string_view prefix);
// Lowercase hex SHA-256 of the bytes.
std::string sha256_hex(std::string_view bytes);
// Lowercase hex of arbitrary bytes.
std::string to_hex(std::string_view bytes);
// True when text is a usable external id: 1..128 chars of [A-Za-z0-9_.:@-].
bool is_valid_external_id(std::string_view text);

}  // namespace fulcrum
