#include "api/static_files.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "api/router.h"

namespace fulcrum::api {

namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

const char* mime_type(const std::filesystem::path& path) {
  const std::string ext = lower(path.extension().string());
  if (ext == ".html" || ext == ".htm") return "text/html; charset=utf-8";
  if (ext == ".js" || ext == ".mjs") return "text/javascript; charset=utf-8";
  if (ext == ".css") return "text/css; charset=utf-8";
  if (ext == ".json") return "application/json";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".png") return "image/png";
  if (ext == ".ico") return "image/x-icon";
  if (ext == ".woff2") return "font/woff2";
  if (ext == ".txt") return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

Response not_found() {
  Response response = problem(404, "no such file", "path");
  add_dashboard_headers(response);
  return response;
}

}  // namespace

bool is_dashboard_file(std::string_view path) {
  if (path == "/" || path == "/index.html" || path == "/app.css") return true;
  if (!path.starts_with("/src/") && !path.starts_with("/vendor/")) return false;
  // Every segment must be a plain name: no "", ".", "..", hidden files or backslashes.
  std::string_view rest = path.substr(1);
  while (!rest.empty()) {
    const std::size_t slash = rest.find('/');
    const std::string_view segment = rest.substr(0, slash);
    if (segment.empty() || segment.front() == '.' ||
        segment.find_first_of(std::string_view("\\\0", 2)) != std::string_view::npos) {
      return false;
    }
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
    if (rest.empty()) return false;  // a trailing slash names a directory
  }
  return true;
}

void add_dashboard_headers(Response& response) {
  response.headers.emplace_back("Content-Security-Policy",
                                std::string(kDashboardContentSecurityPolicy));
  response.headers.emplace_back("X-Frame-Options", "DENY");
  response.headers.emplace_back("Referrer-Policy", "no-referrer");
}

Response serve_dashboard_file(const std::string& web_dir, std::string_view raw_path) {
  std::optional<std::string> path = percent_decode(raw_path, false);
  if (!path || !is_dashboard_file(*path)) return not_found();
  const std::string relative = *path == "/" ? "index.html" : path->substr(1);
  const std::filesystem::path file = std::filesystem::path(web_dir) / relative;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) return not_found();
  // A symlink inside src/ or vendor/ could point anywhere: the file must resolve inside.
  const auto root = std::filesystem::canonical(web_dir, ec);
  const auto resolved = std::filesystem::canonical(file, ec);
  if (ec || std::mismatch(root.begin(), root.end(), resolved.begin(), resolved.end()).first !=
                root.end()) {
    return not_found();
  }
  std::ifstream in(file, std::ios::binary);
  std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Response response = Response::text(200, std::move(body), mime_type(file));
  response.headers.emplace_back("Cache-Control", "no-cache");
  add_dashboard_headers(response);
  return response;
}

}  // namespace fulcrum::api
