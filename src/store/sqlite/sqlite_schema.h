// Schema migrations for the SQLite backend: an ordered list of SQL scripts; the
// schema_version table records how many have been applied.
#pragma once

#include <string_view>
#include <vector>

namespace fulcrum::sqlite {

const std::vector<std::string_view>& migrations();

}  // namespace fulcrum::sqlite
