// RFC 9112 message-framing checks on a raw HTTP/1.x request head, before any parser acts on
// it. A request whose length cannot be determined exactly the same way by every hop (two
// Content-Lengths, Transfer-Encoding whose final coding is not chunked, Transfer-Encoding
// together with Content-Length, HTTP/1.0 with Transfer-Encoding) is refused, so a body can
// never be read as a second request (request smuggling, RFC 9112 section 6.3 and 11.2).
// Obsolete line folding (section 5.2), whitespace before a field's colon (section 5.1), bare
// CR or LF and a missing or repeated Host (RFC 9110 section 7.2) are refused too. Pure
// functions over bytes: no I/O, no allocation beyond the returned Status, safe to fuzz.
#pragma once

#include <cstddef>
#include <string_view>

#include "core/status.h"

namespace fulcrum::api {

// Position just past the "\r\n\r\n" that ends the head at the start of `bytes`, or
// std::string_view::npos when the head is not complete yet.
std::size_t find_request_head_end(std::string_view bytes);

// Checks one complete request head: the request line, the header lines and the empty line
// that ends them ("...\r\n\r\n", as find_request_head_end delimits it). OK, or
// kInvalidArgument naming the offending part ("Transfer-Encoding", "Host", "header line",
// "request line", "Content-Length") for a 400 answer after which the connection is closed.
Status check_request_framing(std::string_view head);

}  // namespace fulcrum::api
