#include "store/model_document_store.h"

#include <openssl/evp.h>

#include <nlohmann/json.hpp>

namespace fulcrum {

namespace {

constexpr char kLeasePeriod[] = "training";

std::string lease_job(const std::string& name) { return "model_training:" + name; }

// Appends the base64 of `bytes` to `out` in place (a model payload is tens of MB: no
// temporary copy of its text).
void append_base64(const std::string& bytes, std::string& out) {
  const std::size_t start = out.size();
  out.resize(start + 4 * ((bytes.size() + 2) / 3));
  const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data() + start),
                                      reinterpret_cast<const unsigned char*>(bytes.data()),
                                      static_cast<int>(bytes.size()));
  out.resize(start + static_cast<std::size_t>(written));
}

// Decodes padded base64 of exactly `expected_bytes` bytes (EVP_DecodeBlock counts padding
// as zero bytes, so the recorded size tells them apart).
std::optional<std::string> base64_decode(const std::string& text, std::size_t expected_bytes) {
  if (text.size() % 4 != 0 || text.size() / 4 * 3 < expected_bytes ||
      text.size() / 4 * 3 > expected_bytes + 2) {
    return std::nullopt;
  }
  std::string out(text.size() / 4 * 3, '\0');
  const int written = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                      reinterpret_cast<const unsigned char*>(text.data()),
                                      static_cast<int>(text.size()));
  if (written < 0 || static_cast<std::size_t>(written) != out.size()) return std::nullopt;
  out.resize(expected_bytes);
  return out;
}

}  // namespace

std::string stored_model_body(const StoredModel& model) {
  const nlohmann::json head = {{"name", model.name},
                               {"format_version", model.format_version},
                               {"options_fingerprint", model.options_fingerprint},
                               {"trained_at", model.trained_at},
                               {"content_sha256", model.content_sha256},
                               {"payload_bytes", model.payload.size()}};
  // The same JSON object with the payload's text written straight into the body.
  std::string body = head.dump();
  body.pop_back();  // the closing brace
  body.reserve(body.size() + 4 * ((model.payload.size() + 2) / 3) + 24);
  body += ",\"payload_base64\":\"";
  append_base64(model.payload, body);
  body += "\"}";
  return body;
}

Result<StoredModel> parse_stored_model_body(const std::string& body) {
  auto json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return invalid_argument("stored model body is not a JSON object");
  }
  auto field = [&](const char* key, auto check) -> const nlohmann::json* {
    auto it = json.find(key);
    if (it == json.end() || !check(*it)) return nullptr;
    return &*it;
  };
  auto is_string = [](const nlohmann::json& v) { return v.is_string(); };
  auto is_integer = [](const nlohmann::json& v) { return v.is_number_integer(); };
  const char* keys[] = {"name", "options_fingerprint", "content_sha256", "payload_base64"};
  for (const char* key : keys) {
    if (field(key, is_string) == nullptr) {
      return invalid_argument(std::string("stored model: ") + key + " missing or not a string",
                              key);
    }
  }
  const char* integers[] = {"format_version", "trained_at", "payload_bytes"};
  for (const char* key : integers) {
    if (field(key, is_integer) == nullptr) {
      return invalid_argument(std::string("stored model: ") + key + " missing or not an integer",
                              key);
    }
  }
  StoredModel model;
  model.name = json["name"].get<std::string>();
  model.format_version = json["format_version"].get<int>();
  model.options_fingerprint = json["options_fingerprint"].get<std::string>();
  model.trained_at = json["trained_at"].get<std::int64_t>();
  model.content_sha256 = json["content_sha256"].get<std::string>();
  const auto payload_bytes = json["payload_bytes"].get<std::int64_t>();
  if (payload_bytes < 0) return invalid_argument("stored model: negative payload_bytes");
  auto payload = base64_decode(json["payload_base64"].get_ref<const std::string&>(),
                               static_cast<std::size_t>(payload_bytes));
  if (!payload) return invalid_argument("stored model: payload_base64 is not valid base64");
  model.payload = std::move(*payload);
  return model;
}

Result<std::optional<StoredModel>> DocumentModelStore::load(const std::string& name) {
  auto doc = store_.get_document(kTrainedModelKind, name);
  if (!doc.is_ok()) return doc.status();
  if (!doc->has_value()) return std::optional<StoredModel>{};
  auto model = parse_stored_model_body((*doc)->body);
  if (!model.is_ok()) return model.status();
  model->store_version = (*doc)->version;
  model->store_updated_at = (*doc)->updated_at;
  return std::optional<StoredModel>(std::move(model).value());
}

Result<std::optional<StoredRecord>> DocumentModelStore::stored_record(const std::string& name) {
  auto head = store_.get_document_head(kTrainedModelKind, name);
  if (!head.is_ok()) return head.status();
  if (!head->has_value()) return std::optional<StoredRecord>{};
  return std::optional<StoredRecord>(StoredRecord{(*head)->version, (*head)->updated_at});
}

Result<std::int64_t> DocumentModelStore::save(const StoredModel& model, UnixSeconds now) {
  Document doc;
  doc.kind = kTrainedModelKind;
  doc.id = model.name;
  doc.status = "stored";
  doc.body = stored_model_body(model);
  doc.updated_at = now;
  // Tens of MB that no webhook announces: a copy per save in the change feed would grow the
  // store by a model a day until pruning.
  doc.to_change_feed = false;
  // Overwrite whatever is stored (a newer training replaces it; a corrupt record must go):
  // the version compare-and-set only orders this write after the one read just before.
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto existing = store_.get_document_head(kTrainedModelKind, model.name);
    if (!existing.is_ok()) return existing.status();
    doc.version = existing->has_value() ? (*existing)->version : 0;
    doc.created_at = existing->has_value() ? (*existing)->created_at : now;
    auto written = store_.put_document(doc);
    if (written.is_ok()) return written;
    const StatusCode code = written.status().code();
    if (code != StatusCode::kFailedPrecondition && code != StatusCode::kAlreadyExists) {
      return written.status();
    }
  }
  return failed_precondition("trained model " + model.name +
                             " kept being rewritten by another replica");
}

Result<bool> DocumentModelStore::acquire_training_lease(const std::string& name, UnixSeconds now,
                                                        UnixSeconds until) {
  auto outcome = store_.acquire_job_lease(lease_job(name), kLeasePeriod, holder_, now, until);
  if (!outcome.is_ok()) return outcome.status();
  return *outcome == JobLeaseOutcome::kAcquired;
}

Status DocumentModelStore::release_training_lease(const std::string& name) {
  return store_.finish_job_lease(lease_job(name), kLeasePeriod, holder_, /*done=*/false);
}

}  // namespace fulcrum
