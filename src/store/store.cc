#include "store/store.h"

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

}  // namespace fulcrum

