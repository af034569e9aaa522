// Event ingestion: a JSON batch ({"events": [...]}) or an NDJSON / CSV body, decoded by the
// store's event codec (one record format for every path) and stored in one transaction.
// Records may carry an event_id (stored once per kind; repeats are reported as duplicates)
// and a call may carry an Idempotency-Key (a retry gets the first response).
#include "api/routes.h"
#include "core/ids.h"
#include "core/limits.h"
#include "store/event_codec.h"

#ifdef FULCRUM_HAVE_EXPERIMENTS
#include "experiments/service.h"
#endif

namespace fulcrum::api {

namespace {

// policy=skip_invalid stores the valid records and reports the rest; the default stores
// nothing when any record is invalid.
Result<InvalidRecordPolicy> policy_of(const Request& request) {
  const std::string policy = request.query_value("policy", "reject");
  if (policy == "reject") return InvalidRecordPolicy::kRejectChunk;
  if (policy == "skip_invalid") return InvalidRecordPolicy::kSkipInvalid;
  return invalid_argument("policy must be 'reject' or 'skip_invalid'", "policy");
}

// Plausible times around the server's clock, and exposures only for A/B tests that exist and
// variants that are their groups: an exposure nothing can analyse is an invalid record (the
// default policy stores nothing of the batch; skip_invalid counts and reports it).
DecodeOptions decode_options(ApiContext& context) {
  DecodeOptions options = DecodeOptions::plausible_times(context.clock.now());
#ifdef FULCRUM_HAVE_EXPERIMENTS
  // Groups per test id, looked up once per request (nullopt: no such test).
  auto groups_by_test =
      std::make_shared<std::map<std::string, std::optional<std::vector<std::string>>>>();
  Store* store = &context.store;
  options.check_exposure = [store, groups_by_test](const ExposureEvent& exposure)
      -> std::optional<std::pair<std::string, std::string>> {
    // Phase N > 0 exposures carry "<test_id>:phase<N>".
    std::string test_id = exposure.experiment_id;
    if (auto colon = test_id.rfind(":phase"); colon != std::string::npos) {
      test_id.resize(colon);
    }
    auto [it, inserted] = groups_by_test->try_emplace(test_id);
    if (inserted) {
      auto test = experiments::get_ab_test(*store, test_id);
      if (test.is_ok()) {
        std::vector<std::string> groups;
        for (const experiments::GroupSpec& group : test->config.groups) {
          groups.push_back(group.name);
        }
        it->second = std::move(groups);
      }
    }
    if (!it->second) return std::pair<std::string, std::string>{"experiment_id", "no such A/B test"};
    for (const std::string& group : *it->second) {
      if (group == exposure.variant) return std::nullopt;
    }
    return std::pair<std::string, std::string>{"variant", "is not a group of " + test_id};
  };
#endif
  return options;
}

// --- Idempotency-Key (draft-ietf-httpapi-idempotency-key-header) ---------------------------
// A client that retries a batch after a timeout sends the same key; the first response is
// remembered with the batch in one transaction and returned again for a retry, so the batch
// is stored once whatever happened to the first answer. Keys are scoped to the caller's API
// key; the same key with another request (method, path, policy, body) is refused.

// The header's key (a bare token or an sf-string "..."), or a 400 naming the header.
Result<std::string> idempotency_key_of(const std::string& header) {
  std::string_view key = header;
  while (!key.empty() && (key.front() == ' ' || key.front() == '\t')) key.remove_prefix(1);
  while (!key.empty() && (key.back() == ' ' || key.back() == '\t')) key.remove_suffix(1);
  if (key.size() >= 2 && key.front() == '"' && key.back() == '"') {
    key = key.substr(1, key.size() - 2);
  }
  if (key.empty()) return invalid_argument("must not be empty", "Idempotency-Key");
  if (key.size() > limits::kMaxIdempotencyKeyBytes) {
    return invalid_argument(
        "is longer than " + std::to_string(limits::kMaxIdempotencyKeyBytes) + " bytes",
        "Idempotency-Key");
  }
  for (char c : key) {
    if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') {
      return invalid_argument("must be printable ASCII without quotes or backslashes",
                              "Idempotency-Key");
    }
  }
  return std::string(key);
}

Response replay(const IdempotentResponse& earlier, const IdempotentRequest& request,
                const std::string& shown_key) {
  if (earlier.fingerprint != request.fingerprint) {
    return problem(422,
                   "Idempotency-Key '" + shown_key +
                       "' was already used for a different request (another body, path or "
                       "policy) in the last " +
                       std::to_string(limits::kIdempotencyKeyLifetimeSeconds / 3600) +
                       " hours; send a new key with a new request",
                   "Idempotency-Key");
  }
  Response response;
  response.status = earlier.status;
  response.body = earlier.body;
  response.headers.emplace_back("Idempotent-Replayed", "true");
  response.audit_target = "events:replayed";
  return response;
}

// What an ingestion call does about idempotency before it decodes anything: nothing (no
// header), answer at once (a bad header, a replay, a conflict, a store error), or claim the
// key in the ingest transaction.
struct Idempotency {
  std::optional<Response> answer;
  std::optional<IdempotentRequest> request;
  std::string shown_key;
};

Idempotency begin_idempotency(ApiContext& context, const Request& request,
                              const AuthContext& identity) {
  Idempotency out;
  const auto header = request.headers.find("idempotency-key");
  if (header == request.headers.end()) return out;
  Result<std::string> key = idempotency_key_of(header->second);
  if (!key.is_ok()) {
    out.answer = problem(key.status(), 400);
    return out;
  }
  out.shown_key = *key;
  IdempotentRequest claim;
  claim.key = identity.actor + " " + *key;
  claim.fingerprint = sha256_hex(request.method + " " + request.path + "\npolicy=" +
                                 request.query_value("policy", "reject") + "\n" + request.body);
  claim.now = context.clock.now();
  claim.expires_at = claim.now + limits::kIdempotencyKeyLifetimeSeconds;
  auto earlier = context.store.find_idempotent_response(claim.key, claim.now);
  if (!earlier.is_ok()) {
    out.answer = problem(earlier.status());
  } else if (*earlier) {
    out.answer = replay(**earlier, claim, out.shown_key);
  } else {
    out.request = std::move(claim);
  }
  return out;
}

// `where` turns a codec line number into the client's coordinates (array index or line);
// for JSON batches the location is also a path prefix of the offending field. Invalid
// batches are not remembered under an Idempotency-Key (nothing was stored; a corrected
// retry may reuse the key).
Response store_decoded(ApiContext& context, const DecodedChunk& chunk, InvalidRecordPolicy policy,
                       const std::function<std::string(std::int64_t)>& where,
                       bool location_is_json_path, Idempotency& idempotency) {
  nlohmann::json errors = nlohmann::json::array();
  for (const RecordError& error : chunk.errors) {
    errors.push_back({{"location", where(error.line)},
                      {"field", error.field},
                      {"reason", error.reason}});
  }
  if (!chunk.ok() && policy == InvalidRecordPolicy::kRejectChunk) {
    const RecordError& first = chunk.errors.front();
    const std::string location = where(first.line);
    std::string field = first.field;
    if (location_is_json_path) field = first.field.empty() ? location : location + "." + field;
    Response response = problem(
        422,
        std::to_string(chunk.invalid_records) + " of " + std::to_string(chunk.records) +
            " records are invalid, nothing was stored; first: " + location +
            (first.field.empty() ? "" : ": " + first.field) + ": " + first.reason,
        field.empty() ? std::string("body") : field);
    nlohmann::json body = nlohmann::json::parse(response.body);
    body["errors"] = errors;
    response.body = dump_json(body);
    response.audit_target = "events";
    return response;
  }
  auto summary = [&](const IngestReport& report) {
    return nlohmann::json{{"stored", report.stored},
                          {"duplicates", report.duplicates},
                          {"records", chunk.records},
                          {"invalid_records", chunk.invalid_records},
                          {"errors", errors}};
  };
  IngestOptions options;
  if (idempotency.request) {
    idempotency.request->respond = [&](const IngestReport& report) {
      return std::pair<int, std::string>(200, dump_json(summary(report)));
    };
    options.idempotency = &*idempotency.request;
  }
  Result<IngestReport> stored = ingest_chunk(context.store, chunk, policy, options);
  if (!stored.is_ok()) return problem(stored.status());
  // A concurrent request with the same key committed first.
  if (stored->replayed) return replay(*stored->replayed, *idempotency.request, idempotency.shown_key);
  Response response = Response::json(200, summary(*stored));
  response.audit_target = "events:" + std::to_string(stored->stored);
  return response;
}

Response ingest_text(ApiContext& context, const Request& request, const AuthContext& identity,
                     EventFormat format) {
  Result<InvalidRecordPolicy> policy = policy_of(request);
  if (!policy.is_ok()) return problem(policy.status(), 400);
  Idempotency idempotency = begin_idempotency(context, request, identity);
  if (idempotency.answer) return std::move(*idempotency.answer);
  Result<DecodedChunk> chunk = decode_events(request.body, format, decode_options(context));
  if (!chunk.is_ok()) return problem(chunk.status(), 400);
  if (chunk->records == 0) return problem(422, "the body holds no event records", "body");
  return store_decoded(
      context, *chunk, *policy, [](std::int64_t line) { return "line " + std::to_string(line); },
      false, idempotency);
}

}  // namespace

void register_ingest_routes(Router& router, ApiContext& context) {
  const std::vector<Role> writers = {Role::kAdmin, Role::kService};

  router.add(Route("POST", api_path("/events"), writers,
                   [&context](const Request& request, const AuthContext& identity) {
                Result<InvalidRecordPolicy> policy = policy_of(request);
                if (!policy.is_ok()) return problem(policy.status(), 400);
                Idempotency idempotency = begin_idempotency(context, request, identity);
                if (idempotency.answer) return std::move(*idempotency.answer);
                Result<nlohmann::json> body = parse_json_object(request.body);
                if (!body.is_ok()) return problem(body.status(), 400);
                Status known = reject_unknown_fields(*body, {"events"});
                if (!known.is_ok()) return problem(known, 400);
                if (!body->contains("events") || !(*body)["events"].is_array()) {
                  return problem(422, "events is required and must be an array of records",
                                 "events");
                }
                const nlohmann::json& events = (*body)["events"];
                if (events.empty()) return problem(422, "events is empty", "events");
                // Re-encode each element as one NDJSON line: element i is line i + 1.
                std::string lines;
                for (const nlohmann::json& event : events) {
                  lines += dump_json(event);
                  lines += '\n';
                }
                Result<DecodedChunk> chunk =
                    decode_events(lines, EventFormat::kNdjson, decode_options(context));
                if (!chunk.is_ok()) return problem(chunk.status(), 400);
                return store_decoded(
                    context, *chunk, *policy,
                    [](std::int64_t line) { return "events[" + std::to_string(line - 1) + "]"; },
                    true, idempotency);
              }).audited().bulk_body().priority());

  router.add(Route("POST", api_path("/events/ndjson"), writers,
                   [&context](const Request& request, const AuthContext& identity) {
                     return ingest_text(context, request, identity, EventFormat::kNdjson);
                   })
                 .audited()
                 .bulk_body()
                 .priority());

  router.add(Route("POST", api_path("/events/csv"), writers,
                   [&context](const Request& request, const AuthContext& identity) {
                     return ingest_text(context, request, identity, EventFormat::kCsv);
                   })
                 .audited()
                 .bulk_body()
                 .priority());
}

}  // namespace fulcrum::api
