// Feature flags and SDK delivery.
//
// Under the API prefix (admin changes, audited; analysts read):
//   GET /flags, POST /flags, GET|PATCH /flags/{key}, POST /flags/{key}/kill,
//   POST /flags/{key}/archive, GET /sdk-connections
// At the server root, where the SDKs expect them:
//   GET  /api/features/{clientKey}   GrowthBook payload (ETag/304, CORS, x-sse-support)
//   GET  /sub/{clientKey}            Server-Sent Events: "features" with each new payload
//   POST /api/eval/{clientKey}       GrowthBook remote evaluation
//   POST /ofrep/v1/evaluate/flags/{key}, POST /ofrep/v1/evaluate/flags   OFREP v0.3 (Bearer sdk key)
// The clientKey in URLs is the sdk key's public client key (auth.h client_key_for), never
// its secret. Every evaluation goes through the one evaluator (assign/evaluator.h) over the
// payload the SDKs download, compiled once per version (sdk_hub.h); experiment evaluations
// record the exposure through the server's group commit, as POST .../assign does.
#include "api/routes.h"

#if defined(FULCRUM_HAVE_FLAGS) && defined(FULCRUM_HAVE_EXPERIMENTS)
#include <algorithm>
#include <iostream>
#include <set>
#include <variant>

#include "api/event_stream.h"
#include "api/sdk_hub.h"
#include "core/ids.h"
#include "flags/service.h"
#endif

namespace fulcrum::api {

#if defined(FULCRUM_HAVE_FLAGS) && defined(FULCRUM_HAVE_EXPERIMENTS)

namespace {

using json = nlohmann::json;

constexpr std::chrono::milliseconds kPollInterval{1000};

Response cors_preflight(const std::string& methods) {
  Response response;
  response.status = 204;
  response.content_type = "text/plain";
  add_sdk_cors(response);
  response.headers.emplace_back("Access-Control-Allow-Methods", methods);
  response.headers.emplace_back("Access-Control-Allow-Headers",
                                "Content-Type, Authorization, If-None-Match, Cache-Control");
  response.headers.emplace_back("Access-Control-Max-Age", "86400");
  return response;
}

// An SDK route's failure: a problem document, with CORS so browser SDKs can read it.
Response sdk_problem(const Status& status, int invalid_argument_status = 400) {
  Response response = problem(status, invalid_argument_status);
  add_sdk_cors(response);
  return response;
}

json tests_json(const std::vector<flags::TestOnFeature>* tests) {
  json out = json::array();
  if (tests) {
    for (const auto& test : *tests) out.push_back({{"test_id", test.test_id}, {"status", test.status}});
  }
  return out;
}

json flag_json(const flags::Flag& flag, const SdkHub& hub) {
  json out = flags::to_json(flag);
  auto snapshot = hub.snapshot();
  const std::vector<flags::TestOnFeature>* tests = nullptr;
  if (snapshot) {
    auto it = snapshot->payload.tests_by_feature.find(flag.key);
    if (it != snapshot->payload.tests_by_feature.end()) tests = &it->second;
  }
  out["tests"] = tests_json(tests);
  return out;
}

Response flag_response(int status, const Result<flags::Flag>& flag, const SdkHub& hub) {
  if (!flag.is_ok()) return problem(flag.status());
  Response response = Response::json(status, flag_json(*flag, hub));
  response.audit_target = flag->key;
  return response;
}

// Optional {"<name>": bool} body of the kill and archive routes (default true).
Result<bool> switch_body(const Request& request, const char* name) {
  if (request.body.empty()) return true;
  Result<json> body = parse_json_object(request.body);
  if (!body.is_ok()) return body.status();
  std::initializer_list<std::string_view> known = {name};
  FULCRUM_RETURN_IF_ERROR(reject_unknown_fields(*body, known));
  auto it = body->find(name);
  if (it == body->end()) return true;
  if (!it->is_boolean()) return invalid_argument("must be true or false", name);
  return it->get<bool>();
}

// --- evaluation -----------------------------------------------------------------------------

// Exposures of the experiments these results put the user in, once per experiment.
void collect_exposure(const SdkHub::Snapshot& snapshot, const assign::FeatureResult& result,
                      UnixSeconds now, std::set<std::string>& seen,
                      std::vector<ExposureEvent>& out) {
  if (!result.experiment_result || !result.experiment_result->should_track()) return;
  if (!result.experiment_key) return;
  const std::string& key = *result.experiment_key;
  if (!seen.insert(key).second) return;
  auto mapped = snapshot.payload.exposure_keys.find(key);
  ExposureEvent exposure;
  exposure.experiment_id = mapped == snapshot.payload.exposure_keys.end() ? key : mapped->second;
  const json& hash_value = result.experiment_result->hash_value;
  exposure.user_id = hash_value.is_string() ? hash_value.get<std::string>() : hash_value.dump();
  exposure.variant = result.experiment_result->key;
  exposure.at = now;
  if (!exposure.user_id.empty()) out.push_back(std::move(exposure));
}

// Sticky bucketing for bandit tests in server-side evaluation (remote eval, OFREP), as
// /assign does it: a user's bucket in a bandit test is the variant of their first stored
// exposure in the current phase, so a weights change does not move them. Read-only: the
// evaluation's own exposures are committed by the route. One store read per bandit test
// and user, memoised for the request.
class ExposureStickyBuckets final : public assign::StickyBucketStore {
 public:
  ExposureStickyBuckets(Store& store, const flags::SdkPayload& payload)
      : store_(store), payload_(payload) {}
  std::optional<assign::StickyAssignmentsDocument> get_assignments(
      std::string_view attribute_name, std::string_view attribute_value) const override {
    if (attribute_name != "id") return std::nullopt;
    const std::string user(attribute_value);
    if (auto cached = cache_.find(user); cached != cache_.end()) return cached->second;
    assign::StickyAssignmentsDocument doc;
    doc.attribute_name = "id";
    doc.attribute_value = user;
    for (const auto& [key, bucket_version] : payload_.bandit_bucket_versions) {
      auto exposure_key = payload_.exposure_keys.find(key);
      if (exposure_key == payload_.exposure_keys.end()) continue;
      auto variant = store_.first_exposure_variant(exposure_key->second, user);
      if (!variant.is_ok()) {
        std::cerr << "fulcrum api: sticky bucket read: " << variant.status().to_string() << "\n";
        continue;
      }
      if (variant->has_value()) {
        doc.assignments[key + "__" + std::to_string(bucket_version)] = **variant;
      }
    }
    std::optional<assign::StickyAssignmentsDocument> out;
    if (!doc.assignments.empty()) out = std::move(doc);
    cache_[user] = out;
    return out;
  }
  void save_assignments(const assign::StickyAssignmentsDocument&) override {}

 private:
  Store& store_;
  const flags::SdkPayload& payload_;
  mutable std::map<std::string, std::optional<assign::StickyAssignmentsDocument>> cache_;
};

bool is_killed(const SdkHub::Snapshot& snapshot, const std::string& key) {
  const auto& killed = snapshot.payload.killed_features;
  return std::binary_search(killed.begin(), killed.end(), key);
}

// One OFREP evaluationSuccess.
json ofrep_success(const SdkHub::Snapshot& snapshot, const std::string& key,
                   const assign::FeatureResult& result) {
  json out = {{"key", key}};
  std::string reason, variant;
  if (is_killed(snapshot, key)) {
    reason = "DISABLED";
    variant = "off";
  } else if (result.source == "experiment" && result.experiment_result &&
             result.experiment_result->in_experiment) {
    reason = "SPLIT";
    variant = result.experiment_result->key;
  } else if (result.source == "force") {
    reason = "TARGETING_MATCH";
    auto named = snapshot.payload.rule_variants.find(result.rule_id);
    variant = named != snapshot.payload.rule_variants.end() ? named->second : result.rule_id;
  } else {
    const json& feature = snapshot.payload.features[key];
    reason = feature.contains("rules") ? "DEFAULT" : "STATIC";
    variant = "default";
  }
  out["reason"] = reason;
  out["variant"] = variant;
  if (!result.value.is_null()) out["value"] = result.value;  // null: use the code default
  json metadata = {{"source", result.source}};
  if (!result.rule_id.empty()) metadata["ruleId"] = result.rule_id;
  if (result.experiment_key) metadata["experimentKey"] = *result.experiment_key;
  out["metadata"] = metadata;
  return out;
}

// An OFREP failure that is also an RFC 9457 problem naming the field.
Response ofrep_error(int status, const std::string& error_code, const std::string& details,
                     const std::string& field, const std::optional<std::string>& key) {
  Response response = problem(status, details, field);
  json body = json::parse(response.body);
  if (key) body["key"] = *key;
  body["errorCode"] = error_code;
  body["errorDetails"] = details;
  response.body = body.dump();
  add_sdk_cors(response);
  return response;
}

// The OFREP request's context as GrowthBook attributes (targetingKey -> "id"), or an error
// response.
std::variant<json, Response> ofrep_attributes(const Request& request,
                                              const std::optional<std::string>& key) {
  // The bounded parser: an SDK key is enough to reach this route, so a deeply nested context
  // must not reach a recursive walk.
  Result<json> parsed = parse_json_object(request.body);
  if (!parsed.is_ok()) {
    const std::string& field = parsed.status().field();
    return ofrep_error(400, "PARSE_ERROR", parsed.status().message(),
                       field.empty() ? "body" : field, key);
  }
  json body = std::move(parsed).value();
  auto context = body.find("context");
  if (context == body.end()) {
    return ofrep_error(400, "INVALID_CONTEXT", "request body has no context", "context", key);
  }
  if (!context->is_object()) {
    return ofrep_error(400, "INVALID_CONTEXT", "context must be an object", "context", key);
  }
  auto targeting_key = context->find("targetingKey");
  if (targeting_key == context->end() || targeting_key->is_null()) {
    return ofrep_error(400, "TARGETING_KEY_MISSING", "context.targetingKey is required",
                       "context.targetingKey", key);
  }
  if (!targeting_key->is_string() || targeting_key->get<std::string>().empty()) {
    return ofrep_error(400, "INVALID_CONTEXT", "context.targetingKey must be a non-empty string",
                       "context.targetingKey", key);
  }
  json id = std::move(*targeting_key);
  json attributes = std::move(*context);  // the body is ours: move, do not copy
  attributes.erase("targetingKey");
  attributes["id"] = std::move(id);
  return attributes;
}

std::shared_ptr<const SdkHub::Snapshot> ready_snapshot(const SdkHub& hub) {
  auto snapshot = hub.snapshot();
  if (!snapshot || !snapshot->features) return nullptr;
  return snapshot;
}

Response payload_unavailable() {
  Response response = problem(503, "the SDK payload is not available yet");
  add_sdk_cors(response);
  return response;
}

// The SSE subscriber of one SDK key: sends the key's payload whenever its ETag changes.
class PayloadStream final : public EventStream {
 public:
  PayloadStream(std::shared_ptr<SdkHub> hub, std::string key_id)
      : hub_(std::move(hub)), key_id_(std::move(key_id)) {}
  ~PayloadStream() override {
    if (subscription_) hub_->unsubscribe(subscription_);
  }
  void start(std::function<void()> wake) override { subscription_ = hub_->subscribe(std::move(wake)); }
  std::string poll() override {
    auto snapshot = hub_->snapshot();
    if (!snapshot) return {};
    const SdkHub::Serialized& current = snapshot->for_key(key_id_);
    if (current.etag == last_etag_) return {};
    last_etag_ = current.etag;
    return current.sse_event;
  }

 private:
  std::shared_ptr<SdkHub> hub_;
  std::string key_id_;
  std::string last_etag_;
  std::uint64_t subscription_ = 0;
};

// The experiment definition SDKs pass to trackingCallback for a remotely evaluated feature:
// the payload rule without its targeting.
json tracked_experiment(const SdkHub::Snapshot& snapshot, const std::string& feature,
                        const std::string& experiment_key) {
  const json& rules = snapshot.payload.features[feature]["rules"];
  for (const json& rule : rules) {
    if (rule.value("key", std::string()) != experiment_key) continue;
    json out = json::object();
    for (const char* field : {"key", "variations", "weights", "coverage", "hashAttribute",
                              "hashVersion", "seed", "name", "phase", "meta"}) {
      if (rule.contains(field)) out[field] = rule[field];
    }
    return out;
  }
  return {{"key", experiment_key}};
}

}  // namespace

void register_flag_routes(Router& router, ApiContext& context) {
  const std::vector<Role> admin = {Role::kAdmin};
  const std::vector<Role> readers = {Role::kAdmin, Role::kAnalyst};
  auto hub = std::make_shared<SdkHub>(context.store, kPollInterval);
  hub->start();
  context.stop_background = [weak = std::weak_ptr<SdkHub>(hub)] {
    if (auto alive = weak.lock()) alive->stop();
  };
  context.documents_changed = [hub] {
    Status refreshed = hub->refresh();
    if (!refreshed.is_ok()) {
      std::cerr << "fulcrum api: SDK payload refresh: " << refreshed.to_string() << "\n";
    }
  };

  // --- flags (admin API) -----------------------------------------------------------------
  router.add(Route("GET", api_path("/flags"), readers,
                   [&context, hub](const Request& request, const AuthContext&) {
                     auto archived = request.query_bool("archived", false);
                     if (!archived.is_ok()) return problem(archived.status(), 400);
                     auto list = flags::list_flags(context.store, *archived);
                     if (!list.is_ok()) return problem(list.status());
                     json items = json::array();
                     std::set<std::string> keys;
                     for (const flags::Flag& flag : *list) {
                       items.push_back(flag_json(flag, *hub));
                       keys.insert(flag.key);
                     }
                     json implicit = json::array();
                     if (auto snapshot = hub->snapshot()) {
                       for (const auto& [feature, tests] : snapshot->payload.tests_by_feature) {
                         if (keys.count(feature)) continue;
                         implicit.push_back({{"feature_name", feature}, {"tests", tests_json(&tests)}});
                       }
                     }
                     return Response::json(200, {{"flags", items},
                                                 {"count", items.size()},
                                                 {"implicit_features", implicit}});
                   }));

  router.add(Route("POST", api_path("/flags"), admin,
                   [&context, hub](const Request& request, const AuthContext& auth) {
                     Result<json> body = parse_json_object(request.body);
                     if (!body.is_ok()) return problem(body.status(), 400);
                     auto created =
                         flags::create_flag(context.store, context.clock, *body, auth.actor);
                     if (created.is_ok()) context.documents_changed();
                     Response response = flag_response(201, created, *hub);
                     if (response.status == 201) {
                       response.headers.emplace_back("Location",
                                                     api_path("/flags/" + response.audit_target));
                     }
                     return response;
                   })
                 .audited());

  router.add(Route("GET", api_path("/flags/{key}"), readers,
                   [&context, hub](const Request& request, const AuthContext&) {
                     return flag_response(
                         200, flags::get_flag(context.store, request.params.at("key")), *hub);
                   }));

  router.add(Route("PATCH", api_path("/flags/{key}"), admin,
                   [&context, hub](const Request& request, const AuthContext& auth) {
                     Result<json> body = parse_json_object(request.body);
                     if (!body.is_ok()) return problem(body.status(), 400);
                     auto updated = flags::update_flag(context.store, context.clock,
                                                       request.params.at("key"), *body, auth.actor);
                     if (updated.is_ok()) context.documents_changed();
                     return flag_response(200, updated, *hub);
                   })
                 .audited());

  router.add(Route("POST", api_path("/flags/{key}/kill"), admin,
                   [&context, hub](const Request& request, const AuthContext& auth) {
                     Result<bool> killed = switch_body(request, "killed");
                     if (!killed.is_ok()) return problem(killed.status(), 400);
                     auto updated = flags::set_flag_killed(context.store, context.clock,
                                                           request.params.at("key"), *killed,
                                                           auth.actor);
                     if (updated.is_ok()) context.documents_changed();
                     return flag_response(200, updated, *hub);
                   })
                 .audited());

  router.add(Route("POST", api_path("/flags/{key}/archive"), admin,
                   [&context, hub](const Request& request, const AuthContext& auth) {
                     Result<bool> archived = switch_body(request, "archived");
                     if (!archived.is_ok()) return problem(archived.status(), 400);
                     auto updated = flags::set_flag_archived(context.store, context.clock,
                                                             request.params.at("key"), *archived,
                                                             auth.actor);
                     if (updated.is_ok()) context.documents_changed();
                     return flag_response(200, updated, *hub);
                   })
                 .audited());

  // The SDK keys an app can be wired with (never their secrets), for the dashboard's
  // "SDK connection" panel.
  router.add(Route("GET", api_path("/sdk-connections"), admin,
                   [&context, hub](const Request&, const AuthContext&) {
                     auto keys = context.store.list_api_keys();
                     if (!keys.is_ok()) return problem(keys.status());
                     auto snapshot = hub->snapshot();
                     json items = json::array();
                     for (const ApiKeyRecord& key : *keys) {
                       if (key.role != "sdk") continue;
                       items.push_back(
                           {{"key_id", key.key_id},
                            {"label", key.label},
                            {"client_key", client_key_for(key)},
                            {"encrypted", snapshot && snapshot->encrypted.count(key.key_id) > 0},
                            {"created_at", format_iso8601(key.created_at)},
                            {"revoked_at", key.revoked_at ? json(format_iso8601(*key.revoked_at))
                                                          : json(nullptr)}});
                     }
                     return Response::json(200, {{"connections", items}});
                   }));

  // --- SDK delivery (server root) ----------------------------------------------------------
  // Inline: a cached snapshot and a key lookup; nothing is parsed or serialised per request.
  router.add(Route("GET", "/api/features/{clientKey}", {},
                   [&context, hub](const Request& request, const AuthContext&) {
                     auto key = context.auth.resolve_client_key(request.params.at("clientKey"));
                     if (!key.is_ok()) return sdk_problem(key.status());
                     auto snapshot = hub->snapshot();
                     if (!snapshot) return payload_unavailable();
                     const SdkHub::Serialized& payload = snapshot->for_key(key->key_id);
                     Response response;
                     if (request.header("if-none-match") == payload.etag) {
                       response.status = 304;
                       response.content_type = "application/json";
                     } else {
                       response = Response::text(200, payload.body, "application/json");
                     }
                     response.headers.emplace_back("ETag", payload.etag);
                     // Revalidate every time (a 304 is cheap), so a flip is seen at the next
                     // fetch; streaming SDKs get it pushed over /sub anyway.
                     response.headers.emplace_back("Cache-Control",
                                                   "public, max-age=0, must-revalidate");
                     response.headers.emplace_back("x-sse-support", "enabled");
                     add_sdk_cors(response);
                     return response;
                   })
                 .run_inline());

  router.add(Route("GET", "/sub/{clientKey}", {},
                   [&context, hub](const Request& request, const AuthContext&) {
                     auto key = context.auth.resolve_client_key(request.params.at("clientKey"));
                     if (!key.is_ok()) return sdk_problem(key.status());
                     Response response;
                     response.status = 200;
                     response.event_stream = std::make_shared<PayloadStream>(hub, key->key_id);
                     add_sdk_cors(response);
                     return response;
                   })
                 .run_inline());

  router.add(Route(
      "POST", "/api/eval/{clientKey}", {},
      [&context, hub](const Request& request, const AuthContext&) {
        auto key = context.auth.resolve_client_key(request.params.at("clientKey"));
        if (!key.is_ok()) return sdk_problem(key.status());
        Result<json> body = parse_json_object(request.body.empty() ? "{}" : request.body);
        if (!body.is_ok()) return sdk_problem(body.status());
        // Unknown members are ignored: newer SDKs may send more than these.
        const json empty = json::object();
        const json* attributes = &empty;
        if (auto it = body->find("attributes"); it != body->end() && !it->is_null()) {
          if (!it->is_object()) {
            return sdk_problem(invalid_argument("must be an object", "attributes"));
          }
          attributes = &*it;
        }
        const json* forced_variations = nullptr;
        if (auto it = body->find("forcedVariations"); it != body->end() && !it->is_null()) {
          if (!it->is_object()) {
            return sdk_problem(invalid_argument("must be an object", "forcedVariations"));
          }
          for (const auto& item : it->items()) {
            if (!item.value().is_number_integer()) {
              return sdk_problem(invalid_argument("must be a variation index",
                                                  "forcedVariations." + item.key()));
            }
          }
          forced_variations = &*it;
        }
        std::map<std::string, json> forced_features;
        if (auto it = body->find("forcedFeatures"); it != body->end() && !it->is_null()) {
          if (!it->is_array()) {
            return sdk_problem(invalid_argument("must be an array of [key, value] pairs",
                                                "forcedFeatures"));
          }
          for (std::size_t i = 0; i < it->size(); ++i) {
            const json& pair = (*it)[i];
            if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string()) {
              return sdk_problem(invalid_argument("must be a [key, value] pair",
                                                  "forcedFeatures[" + std::to_string(i) + "]"));
            }
            forced_features[pair[0].get<std::string>()] = pair[1];
          }
        }
        std::string url;
        if (auto it = body->find("url"); it != body->end() && !it->is_null()) {
          if (!it->is_string()) return sdk_problem(invalid_argument("must be a string", "url"));
          url = it->get<std::string>();
        }
        auto snapshot = ready_snapshot(*hub);
        if (!snapshot) return payload_unavailable();
        assign::EvalContext eval;
        eval.attributes = attributes;
        eval.forced_variations = forced_variations;
        eval.url = url;
        ExposureStickyBuckets sticky(context.store, snapshot->payload);
        if (!snapshot->payload.bandit_bucket_versions.empty()) eval.sticky_buckets = &sticky;
        json features = json::object();
        std::set<std::string> seen;
        std::vector<ExposureEvent> exposures;
        const UnixSeconds now = context.clock.now();
        for (const std::string& feature : snapshot->features->keys()) {
          if (auto forced = forced_features.find(feature); forced != forced_features.end()) {
            features[feature] = {{"defaultValue", forced->second}};
            continue;
          }
          assign::FeatureResult result = snapshot->features->evaluate(feature, eval);
          json evaluated = {{"defaultValue", result.value}};
          if (result.experiment_result && result.experiment_result->should_track() &&
              result.experiment_key) {
            evaluated["rules"] = json::array(
                {{{"force", result.value},
                  {"tracks", json::array({{{"experiment", tracked_experiment(*snapshot, feature,
                                                                             *result.experiment_key)},
                                           {"result", assign::to_json(*result.experiment_result)}}})}}});
          }
          collect_exposure(*snapshot, result, now, seen, exposures);
          features[feature] = std::move(evaluated);
        }
        Response response = Response::json(200, {{"features", features},
                                                 {"experiments", json::array()},
                                                 {"dateUpdated", snapshot->date_updated},
                                                 {"status", 200}});
        response.exposures_to_commit = std::move(exposures);
        response.headers.emplace_back("Cache-Control", "no-store");
        add_sdk_cors(response);
        return response;
      })
                 .run_inline()
                 .priority());

  router.add(Route("POST", "/ofrep/v1/evaluate/flags/{key}", {Role::kSdk},
                   [&context, hub](const Request& request, const AuthContext&) {
                     const std::string& key = request.params.at("key");
                     auto attributes = ofrep_attributes(request, key);
                     if (auto* error = std::get_if<Response>(&attributes)) return std::move(*error);
                     auto snapshot = ready_snapshot(*hub);
                     if (!snapshot) return payload_unavailable();
                     if (!snapshot->features->contains(key)) {
                       return ofrep_error(404, "FLAG_NOT_FOUND", "flag '" + key + "' was not found",
                                          "key", key);
                     }
                     assign::EvalContext eval;
                     eval.attributes = &std::get<json>(attributes);
                     ExposureStickyBuckets sticky(context.store, snapshot->payload);
                     if (!snapshot->payload.bandit_bucket_versions.empty()) {
                       eval.sticky_buckets = &sticky;
                     }
                     assign::FeatureResult result = snapshot->features->evaluate(key, eval);
                     Response response = Response::json(200, ofrep_success(*snapshot, key, result));
                     std::set<std::string> seen;
                     collect_exposure(*snapshot, result, context.clock.now(), seen,
                                      response.exposures_to_commit);
                     add_sdk_cors(response);
                     return response;
                   })
                 .run_inline()
                 .priority());

  router.add(Route("POST", "/ofrep/v1/evaluate/flags", {Role::kSdk},
                   [&context, hub](const Request& request, const AuthContext&) {
                     auto attributes = ofrep_attributes(request, std::nullopt);
                     if (auto* error = std::get_if<Response>(&attributes)) return std::move(*error);
                     auto snapshot = ready_snapshot(*hub);
                     if (!snapshot) return payload_unavailable();
                     const json& context_attributes = std::get<json>(attributes);
                     // Same flags and same context give the same answer: ETag over both.
                     const std::string etag =
                         "\"" +
                         sha256_hex(snapshot->plain.etag + "|" + context_attributes.dump())
                             .substr(0, 32) +
                         "\"";
                     Response response;
                     if (request.header("if-none-match") == etag) {
                       response.status = 304;
                     } else {
                       assign::EvalContext eval;
                       eval.attributes = &context_attributes;
                       ExposureStickyBuckets sticky(context.store, snapshot->payload);
                       if (!snapshot->payload.bandit_bucket_versions.empty()) {
                         eval.sticky_buckets = &sticky;
                       }
                       json results = json::array();
                       std::set<std::string> seen;
                       const UnixSeconds now = context.clock.now();
                       for (const std::string& key : snapshot->features->keys()) {
                         assign::FeatureResult result = snapshot->features->evaluate(key, eval);
                         results.push_back(ofrep_success(*snapshot, key, result));
                         collect_exposure(*snapshot, result, now, seen,
                                          response.exposures_to_commit);
                       }
                       std::vector<ExposureEvent> exposures = std::move(response.exposures_to_commit);
                       response = Response::json(
                           200, {{"flags", results},
                                 {"metadata", {{"version", snapshot->date_updated}}}});
                       response.exposures_to_commit = std::move(exposures);
                     }
                     response.headers.emplace_back("ETag", etag);
                     add_sdk_cors(response);
                     return response;
                   })
                 .run_inline()
                 .priority());

  for (const char* pattern : {"/api/features/{clientKey}", "/sub/{clientKey}",
                              "/api/eval/{clientKey}", "/ofrep/v1/evaluate/flags/{key}",
                              "/ofrep/v1/evaluate/flags"}) {
    const std::string methods =
        std::string(pattern).starts_with("/api/features") || std::string(pattern).starts_with("/sub")
            ? "GET, OPTIONS"
            : "POST, OPTIONS";
    router.add(Route("OPTIONS", pattern, {},
                     [methods](const Request&, const AuthContext&) { return cors_preflight(methods); })
                   .run_inline());
  }
}

#else

void register_flag_routes(Router&, ApiContext&) {}

#endif

}  // namespace fulcrum::api
