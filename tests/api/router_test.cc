#include "api/router.h"

#include <gtest/gtest.h>

namespace fulcrum::api {
namespace {

Handler named(std::string name) {
  return [name](const Request&, const AuthContext&) { return Response::text(200, name, "text/plain"); };
}

TEST(RouterTest, MatchesLiteralAndParameterSegments) {
  Router router;
  router.add(Route("GET", "/ab-tests", {Role::kAdmin}, named("list")));
  router.add(Route("GET", "/ab-tests/{test_id}", {Role::kAdmin}, named("get")));
  router.add(Route("POST", "/ab-tests/{test_id}/start", {Role::kAdmin}, named("start")));

  auto list = router.match("GET", "/ab-tests");
  ASSERT_NE(list.route, nullptr);
  EXPECT_EQ(list.route->handler({}, {}).body, "list");

  auto get = router.match("GET", "/ab-tests/test_1%3Ax");
  ASSERT_NE(get.route, nullptr);
  EXPECT_EQ(get.route->handler({}, {}).body, "get");
  EXPECT_EQ(get.params.at("test_id"), "test_1:x");

  auto start = router.match("POST", "/ab-tests/t9/start");
  ASSERT_NE(start.route, nullptr);
  EXPECT_EQ(start.params.at("test_id"), "t9");

  EXPECT_EQ(router.match("GET", "/ab-tests/t9/start/extra").route, nullptr);
  EXPECT_EQ(router.match("GET", "/ab-tests//start").route, nullptr);
}

TEST(RouterTest, ReportsOtherMethodsOfAKnownPath) {
  Router router;
  router.add(Route("GET", "/x/{id}", {}, named("get")));
  router.add(Route("DELETE", "/x/{id}", {}, named("delete")));
  auto match = router.match("PUT", "/x/1");
  EXPECT_EQ(match.route, nullptr);
  EXPECT_TRUE(match.path_matched);
  EXPECT_EQ(match.allowed_methods, "GET, DELETE");
  EXPECT_FALSE(router.match("PUT", "/y/1").path_matched);
}

TEST(RouterTest, RoleRulesIncludingSelfOnlyUserTokens) {
  Route route =
      Route("GET", "/recs/{user_id}", {Role::kAdmin, Role::kUser}, named("recs")).self_only("user_id");
  std::map<std::string, std::string> params = {{"user_id", "u1"}};
  AuthContext nobody;
  EXPECT_FALSE(role_allowed(route, nobody, params));
  AuthContext admin{true, Role::kAdmin, "key_1", "", "", ""};
  EXPECT_TRUE(role_allowed(route, admin, params));
  AuthContext analyst{true, Role::kAnalyst, "key_2", "", "", ""};
  EXPECT_FALSE(role_allowed(route, analyst, params));
  AuthContext self{true, Role::kUser, "user:u1", "u1", "", ""};
  EXPECT_TRUE(role_allowed(route, self, params));
  AuthContext other{true, Role::kUser, "user:u2", "u2", "", ""};
  EXPECT_FALSE(role_allowed(route, other, params));
  Route open("GET", "/healthz", {}, named("ok"));
  EXPECT_TRUE(role_allowed(open, nobody, {}));
}

TEST(RouterTest, PercentDecoding) {
  EXPECT_EQ(percent_decode("a%20b+c", true).value(), "a b c");
  EXPECT_EQ(percent_decode("a+c", false).value(), "a+c");
  EXPECT_FALSE(percent_decode("bad%2", false).has_value());
  EXPECT_FALSE(percent_decode("bad%zz", false).has_value());
}

}  // namespace
}  // namespace fulcrum::api
