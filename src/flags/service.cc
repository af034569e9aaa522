#include "flags/service.h"

#include <algorithm>
#include <set>

#include "experiments/holdout.h"
#include "flags/encryption.h"

namespace fulcrum::flags {
namespace {

using json = nlohmann::json;

const char* document_status(const Flag& flag) {
  return flag.archived ? "archived" : flag.killed ? "killed" : "active";
}

Result<Flag> from_document(const Document& doc) {
  json body = json::parse(doc.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return internal_error("stored flag " + doc.id + " is not JSON");
  auto flag = flag_from_json(body);
  if (!flag) return internal_error("stored flag " + doc.id + ": " + flag.status().to_string());
  flag->version = doc.version;
  return flag;
}

Status save(Store& store, Flag& flag) {
  Document doc;
  doc.id = flag.key;
  doc.kind = kFlagDocumentKind;
  doc.status = document_status(flag);
  doc.created_at = flag.created_at;
  doc.updated_at = flag.updated_at;
  doc.version = flag.version;
  json body = to_json(flag);
  body.erase("version");  // the store owns the version
  doc.body = body.dump();
  auto version = store.put_document(doc);
  if (!version) {
    if (version.status().code() == StatusCode::kAlreadyExists) {
      return {StatusCode::kAlreadyExists, "a flag with key '" + flag.key + "' already exists",
              "key"};
    }
    if (version.status().code() == StatusCode::kFailedPrecondition) {
      return failed_precondition("flag '" + flag.key +
                                 "' was changed by someone else meanwhile; read it again");
    }
    return version.status();
  }
  flag.version = *version;
  return Status::ok();
}

Result<Flag> load(Store& store, const std::string& key) {
  auto doc = store.get_document(kFlagDocumentKind, key);
  if (!doc) return doc.status();
  if (!doc->has_value()) return not_found("no flag with key '" + key + "'");
  return from_document(**doc);
}

Status check_expected_version(const json& patch, const Flag& stored) {
  auto it = patch.find("version");
  if (it == patch.end() || it->is_null()) return Status::ok();
  if (!it->is_number_integer()) return invalid_argument("must be an integer", "version");
  if (it->get<std::int64_t>() != stored.version) {
    return failed_precondition("flag '" + stored.key + "' is at version " +
                               std::to_string(stored.version) + ", not " +
                               std::to_string(it->get<std::int64_t>()) + "; read it again");
  }
  return Status::ok();
}

// Every holdout a rule newly opts into (not named by a rule of the stored flag) must exist and
// be running (kInvalidArgument naming "rules[i].holdout_id").
Status check_rule_holdouts(Store& store, const Flag& before, const Flag& after) {
  std::set<std::string> known;
  for (const Rule& rule : before.rules) known.insert(rule.holdout_id);
  for (std::size_t i = 0; i < after.rules.size(); ++i) {
    const std::string& holdout_id = after.rules[i].holdout_id;
    if (holdout_id.empty() || known.count(holdout_id)) continue;
    FULCRUM_RETURN_IF_ERROR(experiments::check_holdout_opt_in(
        store, holdout_id, "rules[" + std::to_string(i) + "].holdout_id"));
  }
  return Status::ok();
}

}  // namespace

Result<Flag> create_flag(Store& store, const Clock& clock, const json& request,
                         const std::string& actor) {
  auto flag = parse_flag(request);
  if (!flag) return flag.status();
  FULCRUM_RETURN_IF_ERROR(check_rule_holdouts(store, Flag{}, *flag));
  flag->created_at = flag->updated_at = clock.now();
  flag->updated_by = actor;
  flag->version = 0;
  FULCRUM_RETURN_IF_ERROR(save(store, *flag));
  return flag;
}

Result<Flag> get_flag(Store& store, const std::string& key) { return load(store, key); }

Result<std::vector<Flag>> list_flags(Store& store, bool include_archived) {
  auto docs = store.list_documents(kFlagDocumentKind);
  if (!docs) return docs.status();
  std::vector<Flag> out;
  for (const Document& doc : *docs) {
    if (!include_archived && doc.status == "archived") continue;
    auto flag = from_document(doc);
    if (!flag) return flag.status();
    out.push_back(std::move(*flag));
  }
  std::sort(out.begin(), out.end(), [](const Flag& a, const Flag& b) { return a.key < b.key; });
  return out;
}

Result<Flag> update_flag(Store& store, const Clock& clock, const std::string& key,
                         const json& patch, const std::string& actor) {
  if (!patch.is_object()) return invalid_argument("request body must be a JSON object");
  auto stored = load(store, key);
  if (!stored) return stored.status();
  FULCRUM_RETURN_IF_ERROR(check_expected_version(patch, *stored));
  json merged = to_json(*stored);
  for (const char* read_only : {"version", "created_at", "updated_at", "updated_by"}) {
    merged.erase(read_only);
  }
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    if (it.key() == "version") continue;
    if (it.key() == "key" && it.value() != json(key)) {
      return invalid_argument("a flag's key cannot change (create a new flag)", "key");
    }
    merged[it.key()] = it.value();
  }
  auto updated = parse_flag(merged);
  if (!updated) return updated.status();
  FULCRUM_RETURN_IF_ERROR(check_rule_holdouts(store, *stored, *updated));
  updated->created_at = stored->created_at;
  updated->updated_at = clock.now();
  updated->updated_by = actor;
  updated->version = stored->version;
  FULCRUM_RETURN_IF_ERROR(save(store, *updated));
  return updated;
}

Result<Flag> set_flag_killed(Store& store, const Clock& clock, const std::string& key,
                             bool killed, const std::string& actor) {
  return update_flag(store, clock, key, json{{"killed", killed}}, actor);
}

Result<Flag> set_flag_archived(Store& store, const Clock& clock, const std::string& key,
                               bool archived, const std::string& actor) {
  return update_flag(store, clock, key, json{{"archived", archived}}, actor);
}

Status put_sdk_connection(Store& store, const Clock& clock, const SdkConnection& connection) {
  if (connection.encryption_key) {
    auto key = base64_decode(*connection.encryption_key);
    if (!key || key->size() != 16) {
      return invalid_argument("must be base64 of 16 bytes (AES-128)", "encryption_key");
    }
  }
  auto existing = store.get_document(kSdkConnectionKind, connection.key_id);
  if (!existing) return existing.status();
  Document doc;
  doc.id = connection.key_id;
  doc.kind = kSdkConnectionKind;
  doc.status = connection.encryption_key ? "encrypted" : "plain";
  doc.created_at = existing->has_value() ? (*existing)->created_at : clock.now();
  doc.updated_at = clock.now();
  doc.version = existing->has_value() ? (*existing)->version : 0;
  json body = {{"key_id", connection.key_id}};
  if (connection.encryption_key) body["encryption_key"] = *connection.encryption_key;
  doc.body = body.dump();
  auto version = store.put_document(doc);
  return version.is_ok() ? Status::ok() : version.status();
}

Result<std::vector<SdkConnection>> list_sdk_connections(Store& store) {
  auto docs = store.list_documents(kSdkConnectionKind);
  if (!docs) return docs.status();
  std::vector<SdkConnection> out;
  for (const Document& doc : *docs) {
    json body = json::parse(doc.body, nullptr, false);
    if (!body.is_object()) return internal_error("stored sdk connection " + doc.id + " is not JSON");
    SdkConnection connection;
    connection.key_id = doc.id;
    connection.version = doc.version;
    if (auto key = body.find("encryption_key"); key != body.end() && key->is_string()) {
      connection.encryption_key = key->get<std::string>();
    }
    out.push_back(std::move(connection));
  }
  return out;
}

}  // namespace fulcrum::flags
