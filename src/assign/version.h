// Semantic-version comparison for targeting (app_version >= "5.2.0"), using the GrowthBook
// SDKs' padded-string rule so results agree with them: strip a leading "v" and "+build",
// split on '.' and '-', append "~" to plain x.y.z (so 1.0.0 > 1.0.0-beta), left-pad numeric
// parts to 5 characters with spaces, join with '-', then compare as strings.
#pragma once

#include <string>
#include <string_view>

namespace fulcrum::assign {

std::string padded_version_string(std::string_view version);
// <0, 0, >0 like strcmp.
int compare_versions(std::string_view a, std::string_view b);

}  // namespace fulcrum::assign
