// `fulcrum keys create|list|revoke`: API keys for the HTTP API. The secret is printed once
// at creation; only its SHA-256 is stored. Every change is appended to the audit log.
// sdk keys also print their public client key (what GrowthBook SDKs put in URLs) and, with
// --encrypt, the AES key that SDK must be given to decrypt its payload.
#include <iostream>
#include <memory>

#include "api/audit.h"
#include "api/auth.h"
#include "cli/command_registry.h"
#include "core/time.h"
#include "flags/encryption.h"
#include "flags/service.h"
#include "store/store.h"

namespace fulcrum::cli {
namespace {

std::unique_ptr<Store> open_or_report(const std::string& location) {
  auto store = open_store(location);
  if (!store.is_ok()) {
    std::cerr << "fulcrum keys: cannot open store " << location << ": "
              << store.status().to_string() << "\n";
    return nullptr;
  }
  return std::move(*store);
}

void audit(Store& store, const Clock& clock, std::string action, std::string target,
           std::string outcome) {
  AuditEntry entry;
  entry.at = clock.now();
  entry.actor = "cli";
  entry.action = std::move(action);
  entry.target = std::move(target);
  entry.outcome = std::move(outcome);
  auto appended = api::append_audit(store, std::move(entry));
  if (!appended.is_ok()) {
    std::cerr << "fulcrum keys: warning: audit append failed: " << appended.status().to_string()
              << "\n";
  }
}

CommandRunner setup_keys(CLI::App& app, const GlobalOptions& global) {
  app.description("Manage API keys (roles: admin, analyst, service, sdk)");
  app.require_subcommand(1);

  struct Args {
    std::string role, label, key_id;
    bool encrypt = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* create = app.add_subcommand("create", "Create a key and print its secret once");
  create->add_option("--role", args->role, "admin, analyst, service or sdk")
      ->required()
      ->check(CLI::IsMember({"admin", "analyst", "service", "sdk"}));
  create->add_option("--label", args->label, "What the key is for (shown in `keys list`)");
  create->add_flag("--encrypt", args->encrypt,
                   "sdk keys: serve this key's payload encrypted (encryptedFeatures)");
  CLI::App* list = app.add_subcommand("list", "List keys (never their secrets)");
  CLI::App* revoke = app.add_subcommand("revoke", "Revoke a key by id");
  revoke->add_option("key_id", args->key_id, "Key id from `keys list`")->required();

  return [&global, args, create, list, revoke]() -> int {
    auto store = open_or_report(global.store);
    if (!store) return 1;
    SystemClock clock;
    if (create->parsed()) {
      if (args->encrypt && args->role != "sdk") {
        std::cerr << "fulcrum keys create: --encrypt is only for --role sdk\n";
        return 1;
      }
      auto created = api::create_api_key(*store, clock, args->role, args->label);
      if (!created.is_ok()) {
        std::cerr << "fulcrum keys create: " << created.status().to_string() << "\n";
        return 1;
      }
      std::string encryption_key;
      if (args->encrypt) {
        encryption_key = flags::generate_encryption_key();
        Status saved =
            flags::put_sdk_connection(*store, clock, {created->record.key_id, encryption_key});
        if (!saved.is_ok()) {
          std::cerr << "fulcrum keys create: " << saved.to_string() << "\n";
          return 1;
        }
      }
      audit(*store, clock, "keys.create", created->record.key_id, "ok");
      std::cout << "key_id: " << created->record.key_id << "\nrole:   " << created->record.role
                << "\nsecret: " << created->secret << "\n";
      if (created->record.role == "sdk") {
        std::cout << "client_key: " << api::client_key_for(created->record) << "\n";
        if (!encryption_key.empty()) std::cout << "decryption_key: " << encryption_key << "\n";
      }
      std::cout << "(store the secret now: it is not kept and cannot be shown again)\n";
      return 0;
    }
    if (list->parsed()) {
      auto keys = store->list_api_keys();
      if (!keys.is_ok()) {
        std::cerr << "fulcrum keys list: " << keys.status().to_string() << "\n";
        return 1;
      }
      std::cout << "key_id\trole\tcreated_at\trevoked_at\tlabel\tclient_key\n";
      for (const ApiKeyRecord& key : *keys) {
        std::cout << key.key_id << "\t" << key.role << "\t" << format_iso8601(key.created_at)
                  << "\t" << (key.revoked_at ? format_iso8601(*key.revoked_at) : "-") << "\t"
                  << key.label << "\t" << (key.role == "sdk" ? api::client_key_for(key) : "-")
                  << "\n";
      }
      return 0;
    }
    if (revoke->parsed()) {
      Status revoked = store->revoke_api_key(args->key_id, clock.now());
      audit(*store, clock, "keys.revoke", args->key_id,
            revoked.is_ok() ? "ok" : "error: " + revoked.message());
      if (!revoked.is_ok()) {
        std::cerr << "fulcrum keys revoke: " << revoked.to_string() << "\n";
        return 1;
      }
      std::cout << "revoked " << args->key_id << "\n";
      return 0;
    }
    return 2;
  };
}

const CommandRegistration kKeys("keys", setup_keys);

}  // namespace
}  // namespace fulcrum::cli
