// `serve --tls-cert/--tls-key` over loopback with self-signed certificates made by the
// openssl CLI: HTTPS answers with HSTS, TLS 1.1 is refused, SIGHUP swaps the certificate
// without closing the listener (or open connections), and the head-first admission still
// refuses an anonymous body before reading it.
#include <signal.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <fstream>
#include <thread>

#include "api_test_support.h"

namespace fulcrum::api::testing {
namespace {

namespace ssl = asio::ssl;

// Makes a self-signed EC certificate with common name `cn` in `dir`.
void make_certificate(const std::filesystem::path& dir, const std::string& name,
                      const std::string& cn) {
  const std::string command =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
      "-subj /CN=" + cn + " -keyout '" + (dir / (name + ".key")).string() + "' -out '" +
      (dir / (name + ".crt")).string() + "' 2>/dev/null";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
}

struct TlsReply {
  bool handshake_ok = false;
  std::string handshake_error;
  std::string peer_cn;
  HttpReply reply;
};

// One HTTPS request on a fresh connection; `max_version` caps the client's protocol.
TlsReply https_get(std::uint16_t port, const std::string& target,
                   int max_version = TLS1_3_VERSION, const std::string& bearer = {}) {
  asio::io_context io;
  ssl::context context(ssl::context::tls_client);
  context.set_verify_mode(ssl::verify_none);  // self-signed; the CN is checked below
  // Allow the client to offer old protocols, so a refusal is the server's doing.
  SSL_CTX_set_min_proto_version(context.native_handle(), TLS1_VERSION);
  SSL_CTX_set_max_proto_version(context.native_handle(), max_version);
  SSL_CTX_set_cipher_list(context.native_handle(), "DEFAULT:@SECLEVEL=0");
  beast::ssl_stream<beast::tcp_stream> stream(io, context);
  beast::get_lowest_layer(stream).connect({asio::ip::make_address("127.0.0.1"), port});
  beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(5));
  TlsReply out;
  boost::system::error_code ec;
  stream.handshake(ssl::stream_base::client, ec);
  if (ec) {
    out.handshake_error = ec.message();
    return out;
  }
  out.handshake_ok = true;
  if (X509* peer = SSL_get1_peer_certificate(stream.native_handle())) {
    char cn[256] = {0};
    X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof cn);
    out.peer_cn = cn;
    X509_free(peer);
  }
  http::request<http::string_body> request{http::verb::get, target, 11};
  request.set(http::field::host, "localhost");
  if (!bearer.empty()) request.set(http::field::authorization, "Bearer " + bearer);
  http::write(stream, request);
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  http::read(stream, buffer, response);
  out.reply.status = static_cast<int>(response.result_int());
  out.reply.body = response.body();
  for (const auto& field : response) {
    std::string name(field.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.reply.headers[name] = std::string(field.value());
  }
  return out;
}

class TlsTest : public ApiServerTest {
 protected:
  void configure(ServerOptions& options) override {
    make_certificate(dir_, "one", "fulcrum-one");
    make_certificate(dir_, "two", "fulcrum-two");
    // The server reads these paths on start and on every SIGHUP.
    std::filesystem::copy_file(dir_ / "one.crt", dir_ / "server.crt");
    std::filesystem::copy_file(dir_ / "one.key", dir_ / "server.key");
    options.tls_cert_file = (dir_ / "server.crt").string();
    options.tls_key_file = (dir_ / "server.key").string();
    options.handle_signals = true;  // SIGHUP reloads
    options.error_log = (dir_ / "error.log").string();
  }
};

TEST_F(TlsTest, ServesHttpsWithHstsAndRefusesTls11) {
  TlsReply ok = https_get(port_, "/healthz");
  ASSERT_TRUE(ok.handshake_ok) << ok.handshake_error;
  EXPECT_EQ(ok.peer_cn, "fulcrum-one");
  EXPECT_EQ(ok.reply.status, 200);
  EXPECT_EQ(ok.reply.header("strict-transport-security"), "max-age=31536000");
  EXPECT_EQ(ok.reply.header("x-request-id").size(), 16u);
  TlsReply tls12 = https_get(port_, "/healthz", TLS1_2_VERSION);
  ASSERT_TRUE(tls12.handshake_ok) << tls12.handshake_error;
  EXPECT_EQ(tls12.reply.status, 200);
  TlsReply tls11 = https_get(port_, "/healthz", TLS1_1_VERSION);
  EXPECT_FALSE(tls11.handshake_ok) << "a TLS 1.1 handshake must fail";
  // Plain HTTP on the TLS port gets no answer and does not hurt the server.
  {
    HttpClient plain(port_);
    EXPECT_ANY_THROW(plain.request("GET", "/healthz"));
  }
  // Authentication and roles work as on plain HTTP.
  EXPECT_EQ(https_get(port_, api("/ab-tests")).reply.status, 401);
  EXPECT_EQ(https_get(port_, api("/ab-tests"), TLS1_3_VERSION, keys_["analyst"]).reply.status,
            200);
}

TEST_F(TlsTest, SighupReloadsTheCertificateWithoutClosingTheListener) {
  // A keep-alive connection opened before the reload.
  asio::io_context io;
  ssl::context client(ssl::context::tls_client);
  client.set_verify_mode(ssl::verify_none);
  beast::ssl_stream<beast::tcp_stream> before(io, client);
  beast::get_lowest_layer(before).connect({asio::ip::make_address("127.0.0.1"), port_});
  before.handshake(ssl::stream_base::client);
  auto get = [&](beast::ssl_stream<beast::tcp_stream>& stream) {
    http::request<http::string_body> request{http::verb::get, "/healthz", 11};
    request.set(http::field::host, "localhost");
    http::write(stream, request);
    beast::flat_buffer buffer;
    http::response<http::string_body> response;
    http::read(stream, buffer, response);
    return static_cast<int>(response.result_int());
  };
  ASSERT_EQ(get(before), 200);

  std::filesystem::copy_file(dir_ / "two.crt", dir_ / "server.crt",
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(dir_ / "two.key", dir_ / "server.key",
                             std::filesystem::copy_options::overwrite_existing);
  ASSERT_EQ(::raise(SIGHUP), 0);
  std::string cn;
  for (int i = 0; i < 100 && cn != "fulcrum-two"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    cn = https_get(port_, "/healthz").peer_cn;
  }
  EXPECT_EQ(cn, "fulcrum-two") << "new connections get the new certificate";
  EXPECT_EQ(get(before), 200) << "open connections survive the reload";

  // A broken pair is refused and the current one kept.
  std::filesystem::copy_file(dir_ / "one.key", dir_ / "server.key",
                             std::filesystem::copy_options::overwrite_existing);
  ASSERT_EQ(::raise(SIGHUP), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  TlsReply still = https_get(port_, "/healthz");
  ASSERT_TRUE(still.handshake_ok) << still.handshake_error;
  EXPECT_EQ(still.peer_cn, "fulcrum-two");
  std::ifstream log(dir_ / "error.log");
  const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("TLS certificate reloaded"), std::string::npos) << text;
  EXPECT_NE(text.find("TLS certificate not reloaded"), std::string::npos) << text;
}

// The head-first protections hold on TLS: an anonymous 10 MB POST is refused from its head,
// before any of the body is read.
TEST_F(TlsTest, AnonymousBodyIsRefusedFromTheHeadOnTls) {
  asio::io_context io;
  ssl::context client(ssl::context::tls_client);
  client.set_verify_mode(ssl::verify_none);
  beast::ssl_stream<beast::tcp_stream> stream(io, client);
  beast::get_lowest_layer(stream).connect({asio::ip::make_address("127.0.0.1"), port_});
  beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(5));
  stream.handshake(ssl::stream_base::client);
  const std::string head = "POST " + api("/events") +
                           " HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                           "Content-Length: 10000000\r\n\r\n";
  asio::write(stream, asio::buffer(head));
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  http::read(stream, buffer, response);  // answered without sending a byte of the body
  EXPECT_EQ(static_cast<int>(response.result_int()), 401);
  EXPECT_EQ(response[http::field::connection], "close");
}

}  // namespace
}  // namespace fulcrum::api::testing
