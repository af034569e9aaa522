// Feature-flag operations over a Store, for the HTTP handlers and the CLI. Flags are
// documents of kind "flag" with id = key and status "active" | "killed" | "archived";
// every write goes through put_document with the version read, so two concurrent edits
// cannot silently overwrite each other (kFailedPrecondition -> HTTP 409). Errors are
// kInvalidArgument naming the field, kNotFound for unknown keys, kAlreadyExists for a
// taken key. Auditing is the caller's job (the server audits the route; the CLI appends).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/time.h"
#include "flags/flag.h"
#include "store/store.h"

namespace fulcrum::flags {

inline constexpr const char* kFlagDocumentKind = "flag";

Result<Flag> create_flag(Store& store, const Clock& clock, const nlohmann::json& request,
                         const std::string& actor);
Result<Flag> get_flag(Store& store, const std::string& key);
// All flags sorted by key; archived ones only when asked for.
Result<std::vector<Flag>> list_flags(Store& store, bool include_archived = false);

// Top-level fields of `patch` replace the stored ones ("key" cannot change). When `patch`
// has "version", the write happens only if the stored version still equals it.
Result<Flag> update_flag(Store& store, const Clock& clock, const std::string& key,
                         const nlohmann::json& patch, const std::string& actor);
// Kill switch on/off, archive/unarchive (same concurrency rules as update_flag).
Result<Flag> set_flag_killed(Store& store, const Clock& clock, const std::string& key,
                             bool killed, const std::string& actor);
Result<Flag> set_flag_archived(Store& store, const Clock& clock, const std::string& key,
                               bool archived, const std::string& actor);

// Per-SDK-key delivery settings, a document of kind "sdk_connection" with id = the key id.
// With an encryption key the payload for that SDK key is sent as encryptedFeatures.
inline constexpr const char* kSdkConnectionKind = "sdk_connection";
struct SdkConnection {
  std::string key_id;
  std::optional<std::string> encryption_key;  // base64 of 16 bytes
  std::int64_t version = 0;
};
// Creates or replaces the settings of an SDK key (kInvalidArgument for a bad key).
Status put_sdk_connection(Store& store, const Clock& clock, const SdkConnection& connection);
Result<std::vector<SdkConnection>> list_sdk_connections(Store& store);

}  // namespace fulcrum::flags
