// Semantic-version comparison for targeting (app_version >= "5.2.0"), using the GrowthBook
// SDKs' padded-string rule so results agree with them: strip a leading "v" and "+build",
// split on '.' and '-', append "~" to plain x.y.z (so 1.0.0 > 1.0.0-beta), left-pad numeric
// parts to 5 characters with spaces, join with '-', then compare as strings.
#pragma once

#include <string>
#include <string_view>

namespace fulcrum::assign {

std::string padded_version_string(std::string_view version);
// Writes padded_version_string(version) into out[0, capacity) and returns its length, or
// std::string_view::npos when it does not fit (then use padded_version_string).
std::size_t padded_version_into(std::string_view version, char* out, std::size_t capacity);
// padded_version_string(version) compared with an already padded string; allocation free for
// versions whose padded form fits 128 characters. <0, 0, >0 like strcmp.
int compare_with_padded(std::string_view version, std::string_view padded);
// <0, 0, >0 like strcmp.
int compare_versions(std::string_view a, std::string_view b);

}  // namespace fulcrum::assign
