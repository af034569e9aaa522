#include "store/store.h"

#include "store/change_feed.h"

#include "store/postgres/postgres_store.h"
#include "store/sqlite/sqlite_store.h"

namespace fulcrum {

Result<std::unique_ptr<Store>> open_store(const std::string& location) {
  if (location.rfind("postgres://", 0) == 0 || location.rfind("postgresql://", 0) == 0) {
    auto store = PostgresStore::open(location);
    if (!store.is_ok()) return store.status();
    return std::unique_ptr<Store>(std::move(store).value());
  }
  if (location.empty()) return invalid_argument("store location is empty", "store");
  auto store = SqliteStore::open(location);
  if (!store.is_ok()) return store.status();
  return std::unique_ptr<Store>(std::move(store).value());
}


Result<std::int64_t> prune_document_changes(Store& store, UnixSeconds before, std::size_t limit) {
  if (auto* sqlite = dynamic_cast<SqliteStore*>(&store)) {
    return sqlite->prune_document_changes(before, limit);
  }
  if (auto* postgres = dynamic_cast<PostgresStore*>(&store)) {
    return postgres->prune_document_changes(before, limit);
  }
  return internal_error("prune_document_changes: unknown store backend");
}

}  // namespace fulcrum

