// Event ingestion: a JSON batch ({"events": [...]}) or an NDJSON / CSV body, decoded by the
// store's event codec (one record format for every path) and stored in one transaction.
#include "api/routes.h"
#include "store/event_codec.h"

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

// `where` turns a codec line number into the client's coordinates (array index or line);
// for JSON batches the location is also a path prefix of the offending field.
Response store_decoded(ApiContext& context, const DecodedChunk& chunk, InvalidRecordPolicy policy,
                       const std::function<std::string(std::int64_t)>& where,
                       bool location_is_json_path) {
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
    response.body = body.dump();
    response.audit_target = "events";
    return response;
  }
  Result<std::int64_t> stored = ingest_chunk(context.store, chunk, policy);
  if (!stored.is_ok()) return problem(stored.status());
  Response response = Response::json(200, {{"stored", *stored},
                                           {"records", chunk.records},
                                           {"invalid_records", chunk.invalid_records},
                                           {"errors", errors}});
  response.audit_target = "events:" + std::to_string(*stored);
  return response;
}

Response ingest_text(ApiContext& context, const Request& request, EventFormat format) {
  Result<InvalidRecordPolicy> policy = policy_of(request);
  if (!policy.is_ok()) return problem(policy.status(), 400);
  Result<DecodedChunk> chunk = decode_events(request.body, format);
  if (!chunk.is_ok()) return problem(chunk.status(), 400);
  if (chunk->records == 0) return problem(422, "the body holds no event records", "body");
  return store_decoded(context, *chunk, *policy,
                       [](std::int64_t line) { return "line " + std::to_string(line); }, false);
}

}  // namespace

void register_ingest_routes(Router& router, ApiContext& context) {
  const std::vector<Role> writers = {Role::kAdmin, Role::kService};

  router.add(Route("POST", api_path("/events"), writers,
                   [&context](const Request& request, const AuthContext&) {
                Result<InvalidRecordPolicy> policy = policy_of(request);
                if (!policy.is_ok()) return problem(policy.status(), 400);
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
                  lines += event.dump();
                  lines += '\n';
                }
                Result<DecodedChunk> chunk = decode_events(lines, EventFormat::kNdjson);
                if (!chunk.is_ok()) return problem(chunk.status(), 400);
                return store_decoded(context, *chunk, *policy, [](std::int64_t line) {
                  return "events[" + std::to_string(line - 1) + "]";
                }, true);
              }).audited().bulk_body().priority());

  router.add(Route("POST", api_path("/events/ndjson"), writers,
                   [&context](const Request& request, const AuthContext&) {
                     return ingest_text(context, request, EventFormat::kNdjson);
                   })
                 .audited()
                 .bulk_body()
                 .priority());

  router.add(Route("POST", api_path("/events/csv"), writers,
                   [&context](const Request& request, const AuthContext&) {
                     return ingest_text(context, request, EventFormat::kCsv);
                   })
                 .audited()
                 .bulk_body()
                 .priority());
}

}  // namespace fulcrum::api
