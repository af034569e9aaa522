// Schema migrations for the PostgreSQL backend: an ordered list of SQL scripts (the same
// tables and indexes as the SQLite backend, in PostgreSQL types); the schema_version table
// records how many have been applied. Migrations run under an advisory lock so replicas
// starting together apply each script once.
#pragma once

#include <string_view>
#include <vector>

namespace fulcrum::postgres {

const std::vector<std::string_view>& migrations();

}  // namespace fulcrum::postgres
