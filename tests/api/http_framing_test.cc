// check_request_framing on raw request heads (RFC 9112 sections 2.2, 3, 5, 6.1, 6.3).
#include "api/http_framing.h"

#include "api/http.h"

#include <gtest/gtest.h>

namespace fulcrum::api {
namespace {

Status check(const std::string& head) { return check_request_framing(head); }

TEST(HttpFramingTest, FindsTheEndOfTheHead) {
  EXPECT_EQ(find_request_head_end("GET / HTTP/1.1\r\nHost: x\r\n"), std::string_view::npos);
  EXPECT_EQ(find_request_head_end("GET / HTTP/1.1\r\nHost: x\r\n\r\nbody"), 27u);
}

TEST(HttpFramingTest, AcceptsOrdinaryRequests) {
  EXPECT_TRUE(check("GET / HTTP/1.1\r\nHost: x\r\n\r\n").is_ok());
  EXPECT_TRUE(check("GET / HTTP/1.0\r\n\r\n").is_ok());
  EXPECT_TRUE(check("POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n").is_ok());
  EXPECT_TRUE(check("POST /e HTTP/1.1\r\nhost: x\r\ntransfer-encoding: Chunked\r\n\r\n").is_ok());
  EXPECT_TRUE(check("POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n").is_ok());
  EXPECT_TRUE(check("GET / HTTP/1.1\r\nHost: x\r\nX-Empty:\r\nX-Tab:\ta\tb\r\n\r\n").is_ok());
}

TEST(HttpFramingTest, RefusesTransferEncodingThatDoesNotEndInChunked) {
  for (const char* coding : {"xchunked", "chunked, identity", "identity", "gzip", "gzip, chunked",
                             "chunked, chunked", "", "chunked;x=1"}) {
    Status status =
        check(std::string("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ") + coding +
              "\r\n\r\n");
    EXPECT_FALSE(status.is_ok()) << coding;
    EXPECT_EQ(status.field(), "Transfer-Encoding") << coding;
  }
  EXPECT_FALSE(check("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                     "Transfer-Encoding: identity\r\n\r\n")
                   .is_ok());
}

TEST(HttpFramingTest, RefusesTransferEncodingWithContentLengthOrOnHttp10) {
  EXPECT_EQ(check("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n")
                .field(),
            "Transfer-Encoding");
  EXPECT_EQ(check("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n").field(),
            "Transfer-Encoding");
}

TEST(HttpFramingTest, RefusesConflictingOrMalformedContentLength) {
  for (const char* value : {"5, 6", "-1", "1e3", "", " ", "0x10", "99999999999999999999"}) {
    Status status = check(std::string("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ") + value +
                          "\r\n\r\n");
    EXPECT_EQ(status.field(), "Content-Length") << "'" << value << "'";
  }
  EXPECT_EQ(check("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n")
                .field(),
            "Content-Length");
}

TEST(HttpFramingTest, RefusesMissingOrRepeatedHost) {
  EXPECT_EQ(check("GET / HTTP/1.1\r\n\r\n").field(), "Host");
  EXPECT_EQ(check("GET / HTTP/1.1\r\nHost: a\r\nHOST: a\r\n\r\n").field(), "Host");
  EXPECT_EQ(check("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n").field(), "Host");
}

TEST(HttpFramingTest, RefusesObsFoldWhitespaceBeforeColonAndBareLineBreaks) {
  EXPECT_EQ(check("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n").field(), "header line");
  EXPECT_EQ(check("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n").field(), "header line");
  EXPECT_EQ(check("GET / HTTP/1.1\r\nHost : x\r\n\r\n").field(), "header line");
  EXPECT_EQ(check("GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n").field(), "header line");
  EXPECT_EQ(check("GET / HTTP/1.1\r\nHost: x\rX: y\r\n\r\n").field(), "header line");
  EXPECT_EQ(check("GET / HTTP/1.1\r\nNoColon\r\n\r\n").field(), "header line");
  EXPECT_EQ(check(std::string("GET / HTTP/1.1\r\nHost: x\0y\r\n\r\n", 29)).field(), "header line");
}

TEST(HttpFramingTest, RefusesMalformedRequestLines) {
  for (const char* line : {"GET /  HTTP/1.1", "GET / HTTP/2.0", "GET /", "G(T / HTTP/1.1",
                           " GET / HTTP/1.1", "GET  HTTP/1.1", "GET / x HTTP/1.1"}) {
    EXPECT_EQ(check(std::string(line) + "\r\nHost: x\r\n\r\n").field(), "request line") << line;
  }
  EXPECT_FALSE(check("GET / HTTP/1.1\r\nHost: x\r\n").is_ok());  // no end of head
  EXPECT_FALSE(check("").is_ok());
}

// The response head the server writes itself (no Beast serializer on the hot path).
TEST(ResponseHeadTest, StatusLineFieldsLengthAndConnection) {
  Response ok = Response::text(200, "{\"a\":1}", "application/json");
  ok.headers.emplace_back("ETag", "\"v1\"");
  EXPECT_EQ(response_head(ok, 11, true, "req1", false),
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            "X-Content-Type-Options: nosniff\r\nX-Request-Id: req1\r\nETag: \"v1\"\r\n"
            "Content-Length: 7\r\n\r\n");
  EXPECT_EQ(response_head(ok, 11, false, "", true),
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            "X-Content-Type-Options: nosniff\r\n"
            "Strict-Transport-Security: max-age=31536000\r\nETag: \"v1\"\r\n"
            "Content-Length: 7\r\nConnection: close\r\n\r\n");
  EXPECT_NE(response_head(ok, 10, true, "", false).find("HTTP/1.0 200 OK\r\n"),
            std::string::npos);
  EXPECT_NE(response_head(ok, 10, true, "", false).find("Connection: keep-alive\r\n"),
            std::string::npos);
}

TEST(ResponseHeadTest, NoLengthWithoutBodyAndHandlersCannotFrameOrInject) {
  Response not_modified;
  not_modified.status = 304;
  not_modified.headers.emplace_back("content-type", "text/plain");  // replaces, any case
  not_modified.headers.emplace_back("Content-Length", "99");        // framing is the server's
  not_modified.headers.emplace_back("X-Note", "a\r\nSet-Cookie: x=1");
  const std::string head = response_head(not_modified, 11, true, "", false);
  EXPECT_EQ(head,
            "HTTP/1.1 304 Not Modified\r\nContent-Type: text/plain\r\n"
            "X-Content-Type-Options: nosniff\r\nX-Note: aSet-Cookie: x=1\r\n\r\n");
  EXPECT_TRUE(status_has_no_body(204));
  EXPECT_TRUE(status_has_no_body(101));
  EXPECT_FALSE(status_has_no_body(200));
}

}  // namespace
}  // namespace fulcrum::api
