// GET /users?query=&tier=&limit=: the dashboard's user search (admin; user records are
// personal data, so the read is audited). query matches a substring of the user id,
// case-insensitively; results are in user-id order.
#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "api/routes.h"

namespace fulcrum::api {

namespace {

constexpr int kMaxLimit = 200;

std::string lowercase(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

}  // namespace

void register_user_routes(Router& router, ApiContext& context) {
  router.add(Route("GET", api_path("/users"), {Role::kAdmin},
                   [&context](const Request& request, const AuthContext&) {
                     const std::string query = lowercase(request.query_value("query"));
                     if (query.size() > 128) return problem(400, "at most 128 characters", "query");
                     const std::string tier_text = request.query_value("tier");
                     std::optional<Tier> tier;
                     if (!tier_text.empty()) {
                       tier = parse_tier(tier_text);
                       if (!tier) return problem(400, "tier must be free, plus or premium", "tier");
                     }
                     int limit = 50;
                     const std::string limit_text = request.query_value("limit");
                     if (!limit_text.empty()) {
                       char* end = nullptr;
                       const long parsed = std::strtol(limit_text.c_str(), &end, 10);
                       if (*end != '\0' || parsed < 1 || parsed > kMaxLimit) {
                         return problem(400, "limit must be an integer from 1 to 200", "limit");
                       }
                       limit = static_cast<int>(parsed);
                     }
                     std::vector<User> matched;
                     std::int64_t total = 0;
                     Status scanned = context.store.scan_users([&](const User& user) {
                       if (tier && user.tier != *tier) return;
                       if (!query.empty() &&
                           lowercase(user.user_id).find(query) == std::string::npos) {
                         return;
                       }
                       ++total;
                       matched.push_back(user);
                     });
                     if (!scanned.is_ok()) return problem(scanned);
                     std::sort(matched.begin(), matched.end(),
                               [](const User& a, const User& b) { return a.user_id < b.user_id; });
                     if (matched.size() > static_cast<std::size_t>(limit)) matched.resize(limit);
                     nlohmann::json users = nlohmann::json::array();
                     for (const User& user : matched) {
                       users.push_back({{"user_id", user.user_id},
                                        {"tier", tier_name(user.tier)},
                                        {"signup_at", format_iso8601(user.signup_at)},
                                        {"country", user.country},
                                        {"app_version", user.app_version}});
                     }
                     Response response = Response::json(
                         200, {{"users", users}, {"count", users.size()}, {"matched", total}});
                     response.audit_target = "users";
                     return response;
                   })
                 .personal_data());
}

}  // namespace fulcrum::api
