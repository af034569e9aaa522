// `fulcrum keys create|list|revoke`: API keys for the HTTP API. The secret is printed once
// at creation; only its SHA-256 is stored. Every change is appended to the audit log.
// `keys token-keys|rotate-token-key|retire-token-key`: the user-token signing keys of the
// key file (running servers pick a change up within a second, or at once on SIGHUP);
// `keys revoke-user-tokens USER`: every token of that user issued so far fails.
// sdk keys also print their public client key (what GrowthBook SDKs put in URLs) and, with
// --encrypt, the AES key that SDK must be given to decrypt its payload.
#include <iostream>
#include <memory>

#include "api/audit.h"
#include "api/auth.h"
#include "cli/command_registry.h"
#include "cli/key_file.h"
#include "core/ids.h"
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

CommandRunner setup_keys(CLI::App& app, const GlobalOptions& global) {
  app.description("Manage API keys (roles: admin, analyst, service, sdk)");
  app.require_subcommand(1);

  struct Args {
    std::string role, label, key_id, kid, user_id;
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
  CLI::App* token_keys = app.add_subcommand("token-keys", "List the key file's user-token keys");
  CLI::App* rotate = app.add_subcommand(
      "rotate-token-key", "Add a new user-token signing key; older keys verify until retired");
  CLI::App* retire = app.add_subcommand(
      "retire-token-key", "Retire a user-token key: tokens signed with it fail from now on");
  retire->add_option("kid", args->kid, "Key id from `keys token-keys`")->required();
  CLI::App* revoke_user = app.add_subcommand(
      "revoke-user-tokens", "Revoke every user token of a user issued so far");
  revoke_user->add_option("user_id", args->user_id, "The user")->required();

  return [&global, args, create, list, revoke, token_keys, rotate, retire,
          revoke_user]() -> int {
    auto store = open_or_report(global.store);
    if (!store) return 1;
    SystemClock clock;
    std::optional<OpenedKeys> keys;
    if (!list->parsed()) {
      keys = open_key_file(global, *store, clock, /*create=*/true, "keys");
      if (!keys) return 1;
    }
    auto audit = [&](std::string action, std::string target, std::string outcome) {
      audit_cli_action(*store, *keys, clock, std::move(action), std::move(target),
                       std::move(outcome), "keys");
    };
    if (token_keys->parsed()) {
      auto current = keys->keyring->keys();
      const api::TokenKey* signing = current->signing_key();
      std::cout << "kid\tcreated_at\tretired_at\tsigning\n";
      for (const api::TokenKey& key : current->token_keys) {
        std::cout << key.kid << "\t" << format_iso8601(key.created_at) << "\t"
                  << (key.retired_at ? format_iso8601(*key.retired_at) : "-") << "\t"
                  << (signing == &key ? "yes" : "no") << "\n";
      }
      std::cout << "(key file " << keys->keyring->path() << ")\n";
      return 0;
    }
    if (rotate->parsed()) {
      auto rotated = keys->keyring->rotate_token_key(clock);
      audit("keys.rotate-token-key", rotated.is_ok() ? rotated->kid : "",
            rotated.is_ok() ? "ok" : "error: " + rotated.status().message());
      if (!rotated.is_ok()) {
        std::cerr << "fulcrum keys rotate-token-key: " << rotated.status().to_string() << "\n";
        return 1;
      }
      std::cout << "new signing key " << rotated->kid << " in " << keys->keyring->path()
                << "; tokens signed with older keys verify until you retire them "
                   "(keys retire-token-key KID)\n";
      return 0;
    }
    if (retire->parsed()) {
      Status retired = keys->keyring->retire_token_key(args->kid, clock);
      audit("keys.retire-token-key", args->kid,
            retired.is_ok() ? "ok" : "error: " + retired.message());
      if (!retired.is_ok()) {
        std::cerr << "fulcrum keys retire-token-key: " << retired.to_string() << "\n";
        return 1;
      }
      std::cout << "retired " << args->kid << "\n";
      return 0;
    }
    if (revoke_user->parsed()) {
      if (!is_valid_external_id(args->user_id)) {
        std::cerr << "fulcrum keys revoke-user-tokens: user_id must be 1..128 characters of "
                     "[A-Za-z0-9_.:@-]\n";
        return 1;
      }
      const UnixSeconds now = clock.now();
      Status revoked = store->revoke_user_tokens(args->user_id, now);
      audit("keys.revoke-user-tokens", "user:" + args->user_id,
            revoked.is_ok() ? "ok" : "error: " + revoked.message());
      if (!revoked.is_ok()) {
        std::cerr << "fulcrum keys revoke-user-tokens: " << revoked.to_string() << "\n";
        return 1;
      }
      std::cout << "revoked the tokens of " << args->user_id << " issued up to "
                << format_iso8601(now) << " (servers honour it within their key cache, 1 s by "
                << "default)\n";
      return 0;
    }
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
      audit("keys.create", created->record.key_id, "ok");
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
      audit("keys.revoke", args->key_id, revoked.is_ok() ? "ok" : "error: " + revoked.message());
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
