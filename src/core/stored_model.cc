#include "core/stored_model.h"

#include <iostream>
#include <sstream>

#include "core/ids.h"

namespace fulcrum {

std::string refuse_stored_model(const StoredModel& stored, std::string_view name,
                                int format_version, std::string_view options_fingerprint,
                                UnixSeconds now, UnixSeconds max_age) {
  if (stored.name != name) return "it is named " + stored.name;
  if (stored.format_version != format_version) {
    return "format version " + std::to_string(stored.format_version) + ", this build reads " +
           std::to_string(format_version);
  }
  if (stored.options_fingerprint != options_fingerprint) {
    return "trained with other options (fingerprint " + stored.options_fingerprint + ")";
  }
  if (sha256_hex(stored.payload) != stored.content_sha256) {
    return "content hash mismatch: the payload is not the one recorded";
  }
  if (now - stored.trained_at > max_age) return "stale";
  return {};
}

StoredModel make_stored_model(std::string name, int format_version, std::string options_fingerprint,
                              UnixSeconds trained_at, std::string payload) {
  StoredModel stored;
  stored.name = std::move(name);
  stored.format_version = format_version;
  stored.options_fingerprint = std::move(options_fingerprint);
  stored.trained_at = trained_at;
  stored.content_sha256 = sha256_hex(payload);
  stored.payload = std::move(payload);
  return stored;
}

void log_model_line(std::string_view line) { std::cerr << "fulcrum models: " << line << "\n"; }

nlohmann::json to_json(const ServedModel& served) {
  return {{"model", served.name},
          {"content_sha256", served.content_sha256},
          {"format_version", served.format_version},
          {"options_fingerprint", served.options_fingerprint},
          {"trained_at", format_iso8601(served.trained_at)},
          {"source", served.source},
          {"store_version", served.store_version}};
}

std::string render_served_model_metrics(const std::vector<ServedModel>& served) {
  std::ostringstream out;
  out << "# HELP fulcrum_model_info The trained model this process serves (1), by model: its "
         "content hash, format version, options fingerprint and whether it was trained here or "
         "loaded from the store.\n# TYPE fulcrum_model_info gauge\n";
  for (const ServedModel& model : served) {
    out << "fulcrum_model_info{model=\"" << model.name << "\",sha256=\"" << model.content_sha256
        << "\",format_version=\"" << model.format_version << "\",options=\""
        << model.options_fingerprint << "\",source=\"" << model.source << "\"} 1\n";
  }
  out << "# HELP fulcrum_model_trained_timestamp_seconds When the served model was trained.\n"
         "# TYPE fulcrum_model_trained_timestamp_seconds gauge\n";
  for (const ServedModel& model : served) {
    out << "fulcrum_model_trained_timestamp_seconds{model=\"" << model.name << "\"} "
        << model.trained_at << "\n";
  }
  return out.str();
}

}  // namespace fulcrum
