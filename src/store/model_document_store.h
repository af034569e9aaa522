// Trained models kept as store documents, so every replica of one store shares them
// (core/stored_model.h's ModelStore over the document API; both backends get it as is).
//
// A model is the document (kind "trained_model", id = the model's name) whose body is JSON:
// {"name", "format_version", "options_fingerprint", "trained_at", "content_sha256",
//  "payload_bytes", "payload_base64"}. The payload is the codec's binary form in base64
// (document bodies are text: PostgreSQL TEXT cannot hold a NUL byte), the rest readable
// metadata. The training lease is the job lease of ("model_training:<name>", "training"),
// released (deleted) after each training, so the job-lease compare-and-set decides which
// replica trains.
#pragma once

#include <string>

#include "core/stored_model.h"
#include "store/store.h"

namespace fulcrum {

inline constexpr char kTrainedModelKind[] = "trained_model";

class DocumentModelStore final : public ModelStore {
 public:
  // `holder`: this process's lease holder id (stable for the process's lifetime).
  DocumentModelStore(Store& store, std::string holder)
      : store_(store), holder_(std::move(holder)) {}

  Result<std::optional<StoredModel>> load(const std::string& name) override;
  Result<std::optional<StoredRecord>> stored_record(const std::string& name) override;
  Result<std::int64_t> save(const StoredModel& model, UnixSeconds now) override;
  Result<bool> acquire_training_lease(const std::string& name, UnixSeconds now,
                                      UnixSeconds until) override;
  Status release_training_lease(const std::string& name) override;

 private:
  Store& store_;
  std::string holder_;
};

// The document body of a stored model, and back (kInvalidArgument when the body is not a
// stored model's envelope: not JSON, a field missing or of the wrong type, bad base64).
std::string stored_model_body(const StoredModel& model);
Result<StoredModel> parse_stored_model_body(const std::string& body);

}  // namespace fulcrum
