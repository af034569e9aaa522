// Keys and the audit log's anchor:
//   POST /users/{user_id}/revoke-tokens   every token of the user issued so far fails (401)
//   GET  /token-keys                      the key file's token keys (ids and dates only)
//   POST /token-keys/rotate               a new signing key; older ones verify until retired
//   POST /token-keys/{kid}/retire         tokens signed with it fail from now on
//   GET  /audit/head                      a signed checkpoint of the audit log's head
#include "api/keyring.h"
#include "api/routes.h"
#include "core/limits.h"

namespace fulcrum::api {

namespace {

nlohmann::json token_keys_json(const KeySet& keys) {
  nlohmann::json items = nlohmann::json::array();
  const TokenKey* signing = keys.signing_key();
  for (const TokenKey& key : keys.token_keys) {
    items.push_back({{"kid", key.kid},
                     {"created_at", format_iso8601(key.created_at)},
                     {"retired_at", key.retired_at ? nlohmann::json(format_iso8601(*key.retired_at))
                                                   : nlohmann::json(nullptr)},
                     {"signing", signing == &key}});
  }
  return items;
}

}  // namespace

void register_trust_routes(Router& router, ApiContext& context) {
  router.add(Route("POST", api_path("/users/{user_id}/revoke-tokens"),
                   {Role::kAdmin, Role::kService},
                   [&context](const Request& request, const AuthContext&) {
                     const std::string& user_id = request.params.at("user_id");
                     if (Status valid = limits::check_id(user_id, "user_id"); !valid.is_ok()) {
                       return problem(valid);
                     }
                     Status revoked = context.auth.revoke_user_tokens(user_id);
                     if (!revoked.is_ok()) return problem(revoked);
                     Response response = Response::json(
                         200, {{"user_id", user_id},
                               {"revoked_at", format_iso8601(context.clock.now())}});
                     response.audit_target = "user:" + user_id;
                     return response;
                   })
                 .audited());

  router.add(Route("GET", api_path("/token-keys"), {Role::kAdmin},
                   [&context](const Request&, const AuthContext&) {
                     auto keys = context.auth.keyring().keys();
                     return Response::json(200, {{"token_keys", token_keys_json(*keys)},
                                                 {"key_file", context.auth.keyring().path()}});
                   }));

  router.add(Route("POST", api_path("/token-keys/rotate"), {Role::kAdmin},
                   [&context](const Request&, const AuthContext&) {
                     auto rotated = context.auth.keyring().rotate_token_key(context.clock);
                     if (!rotated.is_ok()) return problem(rotated.status());
                     Response response = Response::json(
                         201, {{"kid", rotated->kid},
                               {"created_at", format_iso8601(rotated->created_at)},
                               {"token_keys", token_keys_json(*context.auth.keyring().keys())}});
                     response.audit_target = "token-key:" + rotated->kid;
                     return response;
                   })
                 .audited());

  router.add(Route("POST", api_path("/token-keys/{kid}/retire"), {Role::kAdmin},
                   [&context](const Request& request, const AuthContext&) {
                     const std::string& kid = request.params.at("kid");
                     Status retired = context.auth.keyring().retire_token_key(kid, context.clock);
                     if (!retired.is_ok()) return problem(retired);
                     Response response = Response::json(
                         200, {{"kid", kid},
                               {"token_keys", token_keys_json(*context.auth.keyring().keys())}});
                     response.audit_target = "token-key:" + kid;
                     return response;
                   })
                 .audited());

  router.add(Route("GET", api_path("/audit/head"), {Role::kAdmin},
                   [&context](const Request&, const AuthContext&) {
                     auto checkpoint =
                         checkpoint_head(context.store, *context.audit_key, context.clock);
                     if (!checkpoint.is_ok()) return problem(checkpoint.status());
                     return Response::json(
                         200, {{"sequence", checkpoint->sequence},
                               {"hash", checkpoint->hash},
                               {"at", checkpoint->at},
                               {"time", format_iso8601(checkpoint->at)},
                               {"key_id", checkpoint->key_id},
                               {"signature", checkpoint->signature},
                               {"signed_text", checkpoint->signed_text()},
                               {"public_key", context.audit_key->public_key_hex()},
                               {"algorithm", "Ed25519"}});
                   }));
}

}  // namespace fulcrum::api
