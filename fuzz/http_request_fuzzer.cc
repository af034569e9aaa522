// Raw bytes -> the server's RFC 9112 framing check (api/http_framing.h) -> Beast's HTTP/1.1
// request parser (the server's limits) -> api::Request ->
// the production router -> the matched route's handler (as an admin) over a real SQLite
// store. Every answer must pass FuzzApi::check (no 5xx, JSON problems, no library messages).
#include <boost/beast/http.hpp>
#include <cstddef>
#include <cstdint>

#include "api/http_framing.h"
#include "fuzz/fuzz_api.h"

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using fulcrum::api::percent_decode;

// As the server splits a query string: name=value pairs, percent-decoded, '+' as space.
std::map<std::string, std::string> parse_query(std::string_view query) {
  std::map<std::string, std::string> out;
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const std::size_t eq = pair.find('=');
    auto name = percent_decode(pair.substr(0, eq), true);
    auto value = percent_decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1), true);
    if (name && value && !name->empty()) out[*name] = *value;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static fulcrum::fuzz::FuzzApi api;
  api.next_input();
  // As the server does: a head that fails the framing check is answered 400 and never parsed.
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const std::size_t head_end = fulcrum::api::find_request_head_end(bytes);
  if (head_end == std::string_view::npos) return 0;
  if (!fulcrum::api::check_request_framing(bytes.substr(0, head_end)).is_ok()) return 0;
  http::request_parser<http::string_body> parser;
  parser.header_limit(16 * 1024);
  parser.body_limit(1 << 20);
  parser.eager(true);
  beast::error_code ec;
  std::size_t used = 0;
  while (used < size && !parser.is_done()) {
    const std::size_t n = parser.put(boost::asio::buffer(data + used, size - used), ec);
    if (ec == http::error::need_more) break;
    if (ec || n == 0) return 0;
    used += n;
  }
  if (!parser.is_done()) {
    parser.put_eof(ec);
    if (ec || !parser.is_done()) return 0;
  }
  http::request<http::string_body> message = parser.release();
  fulcrum::api::Request request;
  request.method = std::string(message.method_string());
  const std::string_view target(message.target().data(), message.target().size());
  const std::size_t question = target.find('?');
  request.path = std::string(target.substr(0, question));
  if (question != std::string_view::npos) request.query = parse_query(target.substr(question + 1));
  for (const auto& field : message) {
    std::string name(field.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    request.headers[name] = std::string(field.value());
  }
  request.body = std::move(message.body());
  api.call(std::move(request));
  return 0;
}
