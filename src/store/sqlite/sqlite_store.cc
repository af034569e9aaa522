#include "store/sqlite/sqlite_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <unordered_map>
#include <nlohmann/json.hpp>

#include "store/event_identity.h"
#include "store/sqlite/sqlite_schema.h"
#include "store/sqlite/sqlite_statement.h"

namespace fulcrum {

namespace {

using sqlite::exec;
using sqlite::sqlite_error;
using sqlite::Statement;
using sqlite::Transaction;


std::string attributes_to_json(const std::map<std::string, std::string>& attributes) {
  return nlohmann::json(attributes).dump();
}

std::map<std::string, std::string> attributes_from_json(const std::string& text) {
  auto parsed = nlohmann::json::parse(text, nullptr, false);
  std::map<std::string, std::string> attributes;
  if (parsed.is_object()) {
    for (auto& [key, value] : parsed.items()) {
      attributes[key] = value.is_string() ? value.get<std::string>() : value.dump();
    }
  }
  return attributes;
}

User read_user(const Statement& row) {
  User user;
  user.user_id = row.text(0);
  user.tier = static_cast<Tier>(row.int64(1));
  user.signup_at = row.int64(2);
  user.country = row.text(3);
  user.app_version = row.text(4);
  user.attributes = attributes_from_json(row.text(5));
  return user;
}

// The database holds personal data and the audit log: owner-only, like a key file. A new
// file is created 0600 before SQLite opens it (SQLite then creates -wal and -shm with the
// database file's mode); an existing file, -wal or -shm readable by others is tightened.
Status restrict_file_modes(const std::string& path) {
  if (path.empty() || path.front() == ':' || path.starts_with("file:")) return Status::ok();
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    ::close(fd);
    return Status::ok();
  }
  for (const std::string& file : {path, path + "-wal", path + "-shm"}) {
    struct stat info {};
    if (::stat(file.c_str(), &info) != 0) continue;
    if ((info.st_mode & 077) != 0 && ::chmod(file.c_str(), info.st_mode & 0700) != 0) {
      return Status(StatusCode::kFailedPrecondition,
                    file + " is readable by other users and its mode cannot be changed to 0600");
    }
  }
  return Status::ok();
}

}  // namespace


SqliteStore::SqliteStore(std::string path) : path_(std::move(path)) {}

SqliteStore::~SqliteStore() {
  for (sqlite3* db : idle_readers_) sqlite3_close_v2(db);
  sqlite3_close_v2(writer_);
}

Result<sqlite3*> SqliteStore::open_connection() const {
  sqlite3* db = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(path_.c_str(), &db, flags, nullptr) != SQLITE_OK) {
    Status error = sqlite_error(db, "cannot open " + path_);
    sqlite3_close_v2(db);
    return error;
  }
  sqlite3_busy_timeout(db, 10000);
  // synchronous=FULL: a commit is on disk before ingest() returns, so an acknowledged batch
  // survives a crash of the process and of the machine. No memory map: each connection's
  // map of the file's first 256 MB counted in the server's resident memory (333 MB of its
  // 1.5 GB peak at 1M users) on top of the page cache, which alone bounds what a connection
  // holds (64 MB).
  Status status = exec(db,
                       "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
                       "PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY; "
                       "PRAGMA cache_size=-65536; PRAGMA mmap_size=0;");
  if (!status.is_ok()) {
    sqlite3_close_v2(db);
    return status;
  }
  return db;
}

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(const std::string& path) {
  FULCRUM_RETURN_IF_ERROR(restrict_file_modes(path));
  std::unique_ptr<SqliteStore> store(new SqliteStore(path));
  auto writer = store->open_connection();
  if (!writer.is_ok()) return writer.status();
  store->writer_ = *writer;
  sqlite3* db = store->writer_;
  FULCRUM_RETURN_IF_ERROR(exec(db, "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)"));
  Transaction transaction(db);
  FULCRUM_RETURN_IF_ERROR(transaction.status());
  std::int64_t version = 0;
  bool has_row = false;
  {
    Statement query(db, "SELECT version FROM schema_version");
    FULCRUM_RETURN_IF_ERROR(query.each_row([&](const Statement& row) {
      version = row.int64(0);
      has_row = true;
    }));
  }
  const auto& scripts = sqlite::migrations();
  if (version > static_cast<std::int64_t>(scripts.size())) {
    return Status(StatusCode::kFailedPrecondition,
                  "database schema version " + std::to_string(version) +
                      " is newer than this build supports (" + std::to_string(scripts.size()) + ")");
  }
  for (auto i = static_cast<std::size_t>(version); i < scripts.size(); ++i) {
    FULCRUM_RETURN_IF_ERROR(exec(db, std::string(scripts[i]).c_str()));
    if (i + 1 == 2 && version >= 1) {
      FULCRUM_RETURN_IF_ERROR(store->convert_legacy_events());
    }
    if (i + 1 == 4 && version >= 1) {
      FULCRUM_RETURN_IF_ERROR(store->write_rebuilt_rollups());
    }
  }
  FULCRUM_RETURN_IF_ERROR(exec(db, has_row ? "DELETE FROM schema_version" : "SELECT 1"));
  Statement record(db, "INSERT INTO schema_version(version) VALUES (?1)");
  FULCRUM_RETURN_IF_ERROR(record.bind(1, static_cast<std::int64_t>(scripts.size())).run());
  Status committed = transaction.commit();
  store->settle_user_keys(committed.is_ok());
  FULCRUM_RETURN_IF_ERROR(committed);
  return store;
}

Result<sqlite3*> SqliteStore::acquire_reader() {
  {
    std::lock_guard lock(pool_mutex_);
    if (!idle_readers_.empty()) {
      sqlite3* db = idle_readers_.back();
      idle_readers_.pop_back();
      return db;
    }
  }
  return open_connection();
}

void SqliteStore::release_reader(sqlite3* db) {
  std::lock_guard lock(pool_mutex_);
  idle_readers_.push_back(db);
}

Result<int> SqliteStore::schema_version() {
  FULCRUM_WITH_READER(reader);
  int version = 0;
  Statement query(reader.db(), "SELECT version FROM schema_version");
  FULCRUM_RETURN_IF_ERROR(query.each_row([&](const Statement& row) {
    version = static_cast<int>(row.int64(0));
  }));
  return version;
}

namespace {

// Claims the ids in event_ids; is_new[i] is false for an id stored before or earlier in the
// list. Inserted in (kind, id) order: neighbouring keys share b-tree pages, which matters
// for random ids (UUIDs) in a large table.
Result<std::vector<bool>> claim_event_ids(sqlite3* db,
                                          const std::vector<identity::EventId>& ids) {
  std::vector<bool> is_new(ids.size(), true);
  if (ids.empty()) return is_new;
  std::vector<std::uint32_t> order(ids.size());
  for (std::uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
    if (ids[a].kind != ids[b].kind) return ids[a].kind < ids[b].kind;
    return ids[a].id < ids[b].id;
  });
  Statement insert(db,
                   "INSERT INTO event_ids(kind, event_id) VALUES(?1, ?2) ON CONFLICT DO NOTHING");
  FULCRUM_RETURN_IF_ERROR(insert.status());
  for (std::uint32_t i : order) {
    FULCRUM_RETURN_IF_ERROR(
        insert.bind(1, static_cast<std::int64_t>(ids[i].kind)).bind(2, ids[i].id).run());
    is_new[i] = sqlite3_changes(db) == 1;
  }
  return is_new;
}

Result<std::optional<IdempotentResponse>> read_idempotent_response(sqlite3* db,
                                                                   const std::string& key,
                                                                   UnixSeconds now) {
  Statement query(db,
                  "SELECT fingerprint, status, body, created_at, expires_at FROM "
                  "idempotency_keys WHERE key = ?1 AND expires_at > ?2");
  query.bind(1, key).bind(2, now);
  std::optional<IdempotentResponse> found;
  FULCRUM_RETURN_IF_ERROR(query.each_row([&](const Statement& row) {
    found = IdempotentResponse{row.text(0), static_cast<int>(row.int64(1)), row.text(2),
                               row.int64(3), row.int64(4)};
  }));
  return found;
}

// Remembers the response and forgets expired ones (so the table holds one lifetime's keys).
Status write_idempotent_response(sqlite3* db, const IdempotentRequest& request,
                                 const IngestReport& report) {
  Statement expired(db, "DELETE FROM idempotency_keys WHERE expires_at <= ?1");
  FULCRUM_RETURN_IF_ERROR(expired.bind(1, request.now).run());
  const auto [status, body] = request.respond(report);
  Statement insert(db,
                   "INSERT OR REPLACE INTO idempotency_keys(key, fingerprint, status, body, "
                   "created_at, expires_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
  return insert.bind(1, request.key)
      .bind(2, request.fingerprint)
      .bind(3, static_cast<std::int64_t>(status))
      .bind(4, body)
      .bind(5, request.now)
      .bind(6, request.expires_at)
      .run();
}

}  // namespace

Result<IngestReport> SqliteStore::ingest(const EventBatch& input, const IngestOptions& options) {
  IngestReport report;
  if (input.size() == 0 && options.idempotency == nullptr) return report;
  std::lock_guard lock(write_mutex_);
  sqlite3* db = writer_;
  Transaction transaction(db);
  FULCRUM_RETURN_IF_ERROR(transaction.status());
  if (options.idempotency != nullptr) {
    auto earlier =
        read_idempotent_response(db, options.idempotency->key, options.idempotency->now);
    if (!earlier.is_ok()) return earlier.status();
    if (*earlier) {  // nothing written: the transaction rolls back
      report.replayed = std::move(**earlier);
      return report;
    }
  }
  auto claimed = claim_event_ids(db, identity::ids_of(input));
  if (!claimed.is_ok()) return claimed.status();
  const std::optional<EventBatch> kept =
      identity::without_duplicates(input, *claimed, report.duplicates);
  const EventBatch& batch = kept ? *kept : input;
  report.stored = static_cast<std::int64_t>(batch.size());
  Status written = write_batch(batch);
  if (written.is_ok() && options.idempotency != nullptr) {
    written = write_idempotent_response(db, *options.idempotency, report);
  }
  if (written.is_ok()) written = transaction.commit();
  settle_user_keys(written.is_ok());
  if (!written.is_ok()) return written;
  return report;
}

Status SqliteStore::write_batch(const EventBatch& batch) {
  if (batch.size() == 0) return Status::ok();
  sqlite3* db = writer_;
  if (!batch.users.empty()) {
    Statement insert(db,
                     "INSERT INTO users(user_id,tier,signup_at,country,app_version,attributes) "
                     "VALUES(?1,?2,?3,?4,?5,?6) ON CONFLICT(user_id) DO UPDATE SET "
                     "tier=excluded.tier, signup_at=excluded.signup_at, country=excluded.country,"
                     " app_version=excluded.app_version, attributes=excluded.attributes");
    FULCRUM_RETURN_IF_ERROR(insert.status());
    for (const User& user : batch.users) {
      const std::string attributes = attributes_to_json(user.attributes);
      FULCRUM_RETURN_IF_ERROR(insert.bind(1, user.user_id)
                                  .bind(2, static_cast<std::int64_t>(user.tier))
                                  .bind(3, user.signup_at)
                                  .bind(4, user.country)
                                  .bind(5, user.app_version)
                                  .bind(6, attributes)
                                  .run());
    }
  }
  if (!batch.features.empty()) {
    Statement insert(db,
                     "INSERT INTO features(name,required_tier,monthly_cost_minor,"
                     "monthly_value_minor,category) VALUES(?1,?2,?3,?4,?5) ON CONFLICT(name) DO "
                     "UPDATE SET required_tier=excluded.required_tier, monthly_cost_minor="
                     "excluded.monthly_cost_minor, monthly_value_minor=excluded.monthly_value_minor,"
                     " category=excluded.category");
    FULCRUM_RETURN_IF_ERROR(insert.status());
    for (const Feature& feature : batch.features) {
      FULCRUM_RETURN_IF_ERROR(insert.bind(1, feature.name)
                                  .bind(2, static_cast<std::int64_t>(feature.required_tier))
                                  .bind(3, feature.monthly_maintenance_cost_minor)
                                  .bind(4, feature.monthly_revenue_value_minor)
                                  .bind(5, feature.category)
                                  .run());
    }
  }
  return write_events(batch);
}

Result<std::optional<IdempotentResponse>> SqliteStore::find_idempotent_response(
    const std::string& key, UnixSeconds now) {
  FULCRUM_WITH_READER(reader);
  return read_idempotent_response(reader.db(), key, now);
}

Result<std::optional<User>> SqliteStore::get_user(const std::string& user_id) {
  FULCRUM_WITH_READER(reader);
  Statement query(reader.db(),
                  "SELECT user_id,tier,signup_at,country,app_version,attributes FROM users "
                  "WHERE user_id=?1");
  query.bind(1, user_id);
  std::optional<User> found;
  FULCRUM_RETURN_IF_ERROR(query.each_row([&](const Statement& row) { found = read_user(row); }));
  return found;
}

Status SqliteStore::scan_users(const std::function<void(const User&)>& visit) {
  FULCRUM_WITH_READER(reader);
  Statement query(reader.db(),
                  "SELECT user_id,tier,signup_at,country,app_version,attributes FROM users");
  return query.each_row([&](const Statement& row) { visit(read_user(row)); });
}

Status SqliteStore::scan_user_period_sums(
    const std::string& metric, const std::vector<UnixSeconds>& edges,
    const std::function<void(const User&, const double* sums)>& visit) {
  FULCRUM_RETURN_IF_ERROR(validate_period_edges(edges));
  FULCRUM_WITH_READER(reader);
  // One read transaction, so the sums and the users come from the same snapshot.
  FULCRUM_RETURN_IF_ERROR(exec(reader.db(), "BEGIN"));
  std::vector<double> sums;
  Status status = metric_period_sums(reader.db(), metric, edges, sums);
  if (status.is_ok()) {
    const std::size_t periods = edges.size() - 1;
    const std::vector<double> none(periods, 0.0);
    Statement query(reader.db(),
                    "SELECT u.user_id,u.tier,u.signup_at,u.country,u.app_version,u.attributes,"
                    "COALESCE(k.user_key, -1) FROM users u "
                    "LEFT JOIN user_keys k ON k.user_id = u.user_id");
    status = query.each_row([&](const Statement& row) {
      const std::int64_t key = row.int64(6);
      const std::size_t offset = static_cast<std::size_t>(key) * periods;
      const bool has_sums = key >= 0 && offset + periods <= sums.size();
      visit(read_user(row), has_sums ? sums.data() + offset : none.data());
    });
  }
  Status ended = exec(reader.db(), "COMMIT");
  return status.is_ok() ? ended : status;
}

Result<std::int64_t> SqliteStore::count_users() {
  FULCRUM_WITH_READER(reader);
  std::int64_t count = 0;
  Statement query(reader.db(), "SELECT COUNT(*) FROM users");
  FULCRUM_RETURN_IF_ERROR(query.each_row([&](const Statement& row) { count = row.int64(0); }));
  return count;
}

Result<std::vector<Feature>> SqliteStore::list_features() {
  FULCRUM_WITH_READER(reader);
  std::vector<Feature> features;
  Statement query(reader.db(),
                  "SELECT name,required_tier,monthly_cost_minor,monthly_value_minor,category "
                  "FROM features ORDER BY name");
  FULCRUM_RETURN_IF_ERROR(query.each_row([&](const Statement& row) {
    features.push_back(Feature{row.text(0), static_cast<Tier>(row.int64(1)), row.int64(2),
                               row.int64(3), row.text(4)});
  }));
  return features;
}

namespace {

// put_document's compare-and-set, inside the caller's write transaction.
Result<std::int64_t> write_document(sqlite3* db, const Document& doc) {
  std::optional<std::int64_t> stored_version;
  std::string previous_status;
  {
    Statement query(db, "SELECT version,status FROM documents WHERE kind=?1 AND id=?2");
    query.bind(1, doc.kind).bind(2, doc.id);
    FULCRUM_RETURN_IF_ERROR(query.each_row([&](const Statement& row) {
      stored_version = row.int64(0);
      previous_status = row.text(1);
    }));
  }
  if (doc.version == 0 && stored_version) {
    return Status(StatusCode::kAlreadyExists, doc.kind + " " + doc.id + " already exists");
  }
  if (stored_version.value_or(0) != doc.version) {
    return failed_precondition(doc.kind + " " + doc.id +
                               " was changed by someone else; reload and try again");
  }
  const std::int64_t new_version = doc.version + 1;
  Statement write(db,
                  "INSERT INTO documents(kind,id,status,body,created_at,updated_at,version) "
                  "VALUES(?1,?2,?3,?4,?5,?6,?7) ON CONFLICT(kind,id) DO UPDATE SET "
                  "status=excluded.status, body=excluded.body, updated_at=excluded.updated_at, "
                  "version=excluded.version");
  FULCRUM_RETURN_IF_ERROR(write.bind(1, doc.kind)
                              .bind(2, doc.id)
                              .bind(3, doc.status)
                              .bind(4, doc.body)
                              .bind(5, doc.created_at)
                              .bind(6, doc.updated_at)
                              .bind(7, new_version)
                              .run());
  if (!doc.to_change_feed) return new_version;
  // The change feed (store/automation.h), in the document's transaction.
  Statement change(db,
                   "INSERT INTO document_changes(kind,id,version,status,previous_status,body,at) "
                   "VALUES(?1,?2,?3,?4,?5,?6,?7)");
  FULCRUM_RETURN_IF_ERROR(change.bind(1, doc.kind)
                              .bind(2, doc.id)
                              .bind(3, new_version)
                              .bind(4, doc.status)
                              .bind(5, previous_status)
                              .bind(6, doc.body)
                              .bind(7, doc.updated_at)
                              .run());
  return new_version;
}

Status write_campaign_members(sqlite3* db, const std::vector<Store::CampaignMember>& members) {
  Statement insert(db,
                   "INSERT INTO campaign_members(campaign_id,user_id,holdout,targeted_at) "
                   "VALUES(?1,?2,?3,?4)");
  FULCRUM_RETURN_IF_ERROR(insert.status());
  for (const auto& member : members) {
    FULCRUM_RETURN_IF_ERROR(insert.bind(1, member.campaign_id)
                                .bind(2, member.user_id)
                                .bind(3, static_cast<std::int64_t>(member.holdout ? 1 : 0))
                                .bind(4, member.targeted_at)
                                .run());
  }
  return Status::ok();
}

}  // namespace

Result<std::int64_t> SqliteStore::put_document(const Document& doc) {
  return put_document_and_members(doc, {});
}

Result<std::int64_t> SqliteStore::put_document_and_members(
    const Document& doc, const std::vector<CampaignMember>& members) {
  std::lock_guard lock(write_mutex_);
  Transaction transaction(writer_);
  FULCRUM_RETURN_IF_ERROR(transaction.status());
  auto version = write_document(writer_, doc);
  if (!version.is_ok()) return version.status();
  FULCRUM_RETURN_IF_ERROR(write_campaign_members(writer_, members));
  FULCRUM_RETURN_IF_ERROR(transaction.commit());
  return version;
}

namespace {
Document read_document(const Statement& row) {
  return Document{row.text(0), row.text(1), row.text(2), row.text(3),
                  row.int64(4), row.int64(5), row.int64(6)};
}
}  // namespace

Result<std::optional<Document>> SqliteStore::find_document(const std::string& kind,
                                                           const std::string& id,
                                                           bool with_body) {
  FULCRUM_WITH_READER(reader);
  Statement query(reader.db(), with_body
                                   ? "SELECT id,kind,status,body,created_at,updated_at,version "
                                     "FROM documents WHERE kind=?1 AND id=?2"
                                   : "SELECT id,kind,status,'',created_at,updated_at,version "
                                     "FROM documents WHERE kind=?1 AND id=?2");
  query.bind(1, kind).bind(2, id);
  std::optional<Document> found;
  FULCRUM_RETURN_IF_ERROR(query.each_row([&](const Statement& row) { found = read_document(row); }));
  return found;
}

Result<std::optional<Document>> SqliteStore::get_document(const std::string& kind,
                                                          const std::string& id) {
  return find_document(kind, id, /*with_body=*/true);
}

Result<std::optional<Document>> SqliteStore::get_document_head(const std::string& kind,
                                                               const std::string& id) {
  return find_document(kind, id, /*with_body=*/false);
}

Result<std::vector<Document>> SqliteStore::list_documents(const std::string& kind) {
  FULCRUM_WITH_READER(reader);
  Statement query(reader.db(),
                  "SELECT id,kind,status,body,created_at,updated_at,version FROM documents "
                  "WHERE kind=?1 ORDER BY created_at, id");
  query.bind(1, kind);
  std::vector<Document> documents;
  FULCRUM_RETURN_IF_ERROR(
      query.each_row([&](const Statement& row) { documents.push_back(read_document(row)); }));
  return documents;
}

Status SqliteStore::erase_document(const std::string& kind, const std::string& id) {
  std::lock_guard lock(write_mutex_);
  // secure_delete zeroes the freed cells and pages; the TRUNCATE checkpoint then copies the
  // pages into the database file and empties the WAL, which held the old page images.
  FULCRUM_RETURN_IF_ERROR(exec(writer_, "PRAGMA secure_delete=ON"));
  Statement erase(writer_, "DELETE FROM documents WHERE kind=?1 AND id=?2");
  Status erased = erase.status();
  if (erased.is_ok()) erased = erase.bind(1, kind).bind(2, id).run();
  const bool deleted = erased.is_ok() && sqlite3_changes(writer_) > 0;
  // The change feed kept a copy of every version's body: erased means erased there too.
  if (erased.is_ok()) {
    Statement history(writer_, "DELETE FROM document_changes WHERE kind=?1 AND id=?2");
    erased = history.status();
    if (erased.is_ok()) erased = history.bind(1, kind).bind(2, id).run();
  }
  Status restored = exec(writer_, "PRAGMA secure_delete=OFF");
  FULCRUM_RETURN_IF_ERROR(erased);
  FULCRUM_RETURN_IF_ERROR(restored);
  if (!deleted) return not_found(kind + " " + id + " does not exist");
  return exec(writer_, "PRAGMA wal_checkpoint(TRUNCATE)");
}

Status SqliteStore::add_campaign_members(const std::vector<CampaignMember>& members) {
  std::lock_guard lock(write_mutex_);
  Transaction transaction(writer_);
  FULCRUM_RETURN_IF_ERROR(transaction.status());
  FULCRUM_RETURN_IF_ERROR(write_campaign_members(writer_, members));
  return transaction.commit();
}

Result<std::vector<Store::CampaignMember>> SqliteStore::campaign_members(
    const std::string& campaign_id) {
  FULCRUM_WITH_READER(reader);
  Statement query(reader.db(),
                  "SELECT campaign_id,user_id,holdout,targeted_at FROM campaign_members "
                  "WHERE campaign_id=?1 ORDER BY user_id");
  query.bind(1, campaign_id);
  std::vector<CampaignMember> members;
  FULCRUM_RETURN_IF_ERROR(query.each_row([&](const Statement& row) {
    members.push_back(CampaignMember{row.text(0), row.text(1), row.int64(2) != 0, row.int64(3)});
  }));
  return members;
}

Result<std::vector<std::pair<std::string, UnixSeconds>>> SqliteStore::last_targeted() {
  FULCRUM_WITH_READER(reader);
  Statement query(reader.db(),
                  "SELECT user_id, MAX(targeted_at) FROM campaign_members GROUP BY user_id");
  std::vector<std::pair<std::string, UnixSeconds>> rows;
  FULCRUM_RETURN_IF_ERROR(
      query.each_row([&](const Statement& row) { rows.emplace_back(row.text(0), row.int64(1)); }));
  return rows;
}

Status SqliteStore::put_api_key(const ApiKeyRecord& key) {
  std::lock_guard lock(write_mutex_);
  Statement insert(writer_,
                   "INSERT INTO api_keys(key_id,key_hash,role,label,created_at,revoked_at) "
                   "VALUES(?1,?2,?3,?4,?5,?6)");
  FULCRUM_RETURN_IF_ERROR(insert.status());
  insert.bind(1, key.key_id).bind(2, key.key_hash).bind(3, key.role).bind(4, key.label);
  insert.bind(5, key.created_at);
  if (key.revoked_at) {
    insert.bind(6, *key.revoked_at);
  } else {
    insert.bind_null(6);
  }
  return insert.run();
}

namespace {
ApiKeyRecord read_api_key(const Statement& row) {
  ApiKeyRecord key{row.text(0), row.text(1), row.text(2), row.text(3), row.int64(4), std::nullopt};
  if (!row.is_null(5)) key.revoked_at = row.int64(5);
  return key;
}
constexpr char kApiKeyColumns[] = "SELECT key_id,key_hash,role,label,created_at,revoked_at FROM api_keys";
}  // namespace

Result<std::optional<ApiKeyRecord>> SqliteStore::find_api_key_by_hash(const std::string& key_hash) {
  FULCRUM_WITH_READER(reader);
  const std::string sql = std::string(kApiKeyColumns) + " WHERE key_hash=?1";
  Statement query(reader.db(), sql.c_str());
  query.bind(1, key_hash);
  std::optional<ApiKeyRecord> found;
  FULCRUM_RETURN_IF_ERROR(query.each_row([&](const Statement& row) { found = read_api_key(row); }));
  return found;
}

Result<std::vector<ApiKeyRecord>> SqliteStore::list_api_keys() {
  FULCRUM_WITH_READER(reader);
  const std::string sql = std::string(kApiKeyColumns) + " ORDER BY created_at, key_id";
  Statement query(reader.db(), sql.c_str());
  std::vector<ApiKeyRecord> keys;
  FULCRUM_RETURN_IF_ERROR(
      query.each_row([&](const Statement& row) { keys.push_back(read_api_key(row)); }));
  return keys;
}

Status SqliteStore::revoke_api_key(const std::string& key_id, UnixSeconds at) {
  std::lock_guard lock(write_mutex_);
  Statement update(writer_, "UPDATE api_keys SET revoked_at=?2 WHERE key_id=?1 AND revoked_at IS NULL");
  FULCRUM_RETURN_IF_ERROR(update.status());
  FULCRUM_RETURN_IF_ERROR(update.bind(1, key_id).bind(2, at).run());
  if (sqlite3_changes(writer_) == 0) return not_found("no active API key " + key_id);
  return Status::ok();
}

Status SqliteStore::revoke_user_tokens(const std::string& user_id, UnixSeconds at) {
  std::lock_guard lock(write_mutex_);
  Statement upsert(writer_,
                   "INSERT INTO user_token_revocations(user_id,revoked_at) VALUES(?1,?2) "
                   "ON CONFLICT(user_id) DO UPDATE SET revoked_at=MAX(revoked_at,excluded.revoked_at)");
  FULCRUM_RETURN_IF_ERROR(upsert.status());
  return upsert.bind(1, user_id).bind(2, at).run();
}

Result<std::optional<UnixSeconds>> SqliteStore::user_tokens_revoked_at(const std::string& user_id) {
  FULCRUM_WITH_READER(reader);
  Statement query(reader.db(), "SELECT revoked_at FROM user_token_revocations WHERE user_id=?1");
  query.bind(1, user_id);
  std::optional<UnixSeconds> found;
  FULCRUM_RETURN_IF_ERROR(query.each_row([&](const Statement& row) { found = row.int64(0); }));
  return found;
}

namespace {

// Chains `entries` after the newest audit row, inside the caller's write transaction.
Status write_audit_entries(sqlite3* db, std::vector<AuditEntry>& entries,
                           const std::function<std::string(const AuditEntry&)>& compute_hash) {
  if (entries.empty()) return Status::ok();
  std::int64_t sequence = 0;
  std::string previous_hash;
  {
    Statement last(db, "SELECT sequence, hash FROM audit_log ORDER BY sequence DESC LIMIT 1");
    FULCRUM_RETURN_IF_ERROR(last.each_row([&](const Statement& row) {
      sequence = row.int64(0);
      previous_hash = row.text(1);
    }));
  }
  Statement insert(db,
                   "INSERT INTO audit_log(sequence,at,actor,action,target,outcome,"
                   "previous_hash,hash) VALUES(?1,?2,?3,?4,?5,?6,?7,?8)");
  FULCRUM_RETURN_IF_ERROR(insert.status());
  for (AuditEntry& entry : entries) {
    entry.sequence = ++sequence;
    entry.previous_hash = previous_hash;
    entry.hash = compute_hash(entry);
    previous_hash = entry.hash;
    FULCRUM_RETURN_IF_ERROR(insert.bind(1, entry.sequence)
                                .bind(2, entry.at)
                                .bind(3, entry.actor)
                                .bind(4, entry.action)
                                .bind(5, entry.target)
                                .bind(6, entry.outcome)
                                .bind(7, entry.previous_hash)
                                .bind(8, entry.hash)
                                .run());
  }
  return Status::ok();
}

}  // namespace

Result<AuditEntry> SqliteStore::append_audit(
    AuditEntry entry, const std::function<std::string(const AuditEntry&)>& compute_hash) {
  auto appended = append_exposures_and_audit({}, {std::move(entry)}, compute_hash);
  if (!appended.is_ok()) return appended.status();
  return std::move(appended->front());
}

Status SqliteStore::scan_audit(const std::function<void(const AuditEntry&)>& visit) {
  FULCRUM_WITH_READER(reader);
  Statement query(reader.db(),
                  "SELECT sequence,at,actor,action,target,outcome,previous_hash,hash FROM "
                  "audit_log ORDER BY sequence");
  return query.each_row([&](const Statement& row) {
    visit(AuditEntry{row.int64(0), row.int64(1), row.text(2), row.text(3), row.text(4),
                     row.text(5), row.text(6), row.text(7)});
  });
}

Result<std::optional<AuditEntry>> SqliteStore::audit_head() {
  FULCRUM_WITH_READER(reader);
  Statement query(reader.db(),
                  "SELECT sequence,at,actor,action,target,outcome,previous_hash,hash FROM "
                  "audit_log ORDER BY sequence DESC LIMIT 1");
  std::optional<AuditEntry> head;
  FULCRUM_RETURN_IF_ERROR(query.each_row([&](const Statement& row) {
    head = AuditEntry{row.int64(0), row.int64(1), row.text(2), row.text(3), row.text(4),
                      row.text(5), row.text(6), row.text(7)};
  }));
  return head;
}

// Group commit (the HTTP server's assign route): exposures and their audit entries in one
// transaction, so one fsync covers many calls. Placed apart from ingest() on purpose; the
// INSERT below must follow the exposures table of the current schema, like ingest()'s.
Result<std::vector<AuditEntry>> SqliteStore::append_exposures_and_audit(
    const std::vector<ExposureEvent>& exposures, std::vector<AuditEntry> entries,
    const std::function<std::string(const AuditEntry&)>& compute_hash) {
  if (exposures.empty() && entries.empty()) return entries;
  std::lock_guard lock(write_mutex_);
  Transaction transaction(writer_);
  FULCRUM_RETURN_IF_ERROR(transaction.status());
  Status written = Status::ok();
  if (!exposures.empty()) {
    // One exposure per (experiment, user, variant) unless the caller identified it.
    std::vector<std::string> derived(exposures.size());
    std::vector<identity::EventId> ids;
    ids.reserve(exposures.size());
    for (std::size_t i = 0; i < exposures.size(); ++i) {
      if (!exposures[i].event_id.empty()) {
        ids.push_back({identity::Kind::kExposure, exposures[i].event_id});
      } else {
        derived[i] = identity::assignment_id(exposures[i]);
        ids.push_back({identity::Kind::kAssignment, derived[i]});
      }
    }
    auto claimed = claim_event_ids(writer_, ids);
    written = claimed.status();
    if (written.is_ok()) {
      EventBatch batch;
      for (std::size_t i = 0; i < exposures.size(); ++i) {
        if ((*claimed)[i]) batch.exposures.push_back(exposures[i]);
      }
      if (!batch.exposures.empty()) written = write_events(batch);
    }
  }
  if (written.is_ok()) written = write_audit_entries(writer_, entries, compute_hash);
  if (written.is_ok()) written = transaction.commit();
  settle_user_keys(written.is_ok());
  if (!written.is_ok()) return written;
  return entries;
}

}  // namespace fulcrum
