#include "api/http_framing.h"

#include <string>

namespace fulcrum::api {

namespace {

// RFC 9110 section 5.6.2: tchar.
bool is_token_char(char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-':
    case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

char lower_char(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower_char(a[i]) != lower_char(b[i])) return false;
  }
  return true;
}

std::string_view trim_ows(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

Status bad(std::string message, std::string field) {
  return invalid_argument(std::move(message), std::move(field));
}

// Calls `visit` with each trimmed element of a comma-separated list (RFC 9110 section 5.6.1:
// empty elements are ignored). Stops early when `visit` returns a non-OK status.
template <typename Visit>
Status for_each_element(std::string_view list, Visit&& visit) {
  while (true) {
    const std::size_t comma = list.find(',');
    std::string_view element = trim_ows(list.substr(0, comma));
    if (!element.empty()) {
      Status status = visit(element);
      if (!status.is_ok()) return status;
    }
    if (comma == std::string_view::npos) return Status::ok();
    list.remove_prefix(comma + 1);
  }
}

}  // namespace

std::size_t find_request_head_end(std::string_view bytes) {
  const std::size_t end = bytes.find("\r\n\r\n");
  return end == std::string_view::npos ? end : end + 4;
}

Status check_request_framing(std::string_view head) {
  if (head.size() < 4 || head.substr(head.size() - 4) != "\r\n\r\n") {
    return bad("the request head must end with an empty line (CRLF CRLF)", "request line");
  }
  head.remove_suffix(2);  // every line, the last one included, now ends with CRLF
  // A CR or LF that is not part of a CRLF pair makes lines ambiguous between parsers.
  for (std::size_t i = 0; i < head.size(); ++i) {
    if (head[i] == '\r' && (i + 1 >= head.size() || head[i + 1] != '\n')) {
      return bad("bare CR in the request head", "header line");
    }
    if (head[i] == '\n' && (i == 0 || head[i - 1] != '\r')) {
      return bad("bare LF in the request head (lines must end with CRLF)", "header line");
    }
    if (head[i] == '\0') return bad("NUL byte in the request head", "header line");
  }

  // Request line: method SP request-target SP HTTP-version (RFC 9112 section 3).
  std::size_t line_end = head.find("\r\n");
  const std::string_view request_line = head.substr(0, line_end);
  head.remove_prefix(line_end + 2);
  const std::size_t first_space = request_line.find(' ');
  const std::size_t last_space = request_line.rfind(' ');
  if (first_space == std::string_view::npos || first_space == 0 || last_space == first_space ||
      request_line.substr(first_space + 1, last_space - first_space - 1).find(' ') !=
          std::string_view::npos) {
    return bad("the request line must be 'METHOD target HTTP/1.1'", "request line");
  }
  for (char c : request_line.substr(0, first_space)) {
    if (!is_token_char(c)) return bad("the method is not a token", "request line");
  }
  if (last_space == first_space + 1) return bad("the request target is empty", "request line");
  const std::string_view version = request_line.substr(last_space + 1);
  const bool http11 = version == "HTTP/1.1";
  if (!http11 && version != "HTTP/1.0") {
    return bad("unsupported HTTP version (HTTP/1.0 or HTTP/1.1 expected)", "request line");
  }

  int host_fields = 0;
  bool has_transfer_encoding = false;
  bool chunked_last = false;
  bool has_content_length = false;
  std::string_view content_length;
  while (!head.empty()) {
    line_end = head.find("\r\n");
    const std::string_view line = head.substr(0, line_end);
    head.remove_prefix(line_end + 2);
    if (line.empty()) return bad("empty header line before the end of the head", "header line");
    if (line.front() == ' ' || line.front() == '\t') {
      // RFC 9112 section 5.2: a server MUST reject obs-fold (or replace it); we reject.
      return bad("obsolete line folding (a header line starting with a space or tab)",
                 "header line");
    }
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return bad("a header line without a field name and colon", "header line");
    }
    const std::string_view name = line.substr(0, colon);
    for (char c : name) {
      if (!is_token_char(c)) {
        // Includes whitespace before the colon (RFC 9112 section 5.1: MUST reject).
        return bad("invalid character in header field name", "header line");
      }
    }
    const std::string_view value = trim_ows(line.substr(colon + 1));
    for (char c : value) {
      const auto byte = static_cast<unsigned char>(c);
      if ((byte < 0x20 && c != '\t') || byte == 0x7f) {
        return bad("control character in a header field value", std::string(name));
      }
    }
    if (iequals(name, "host")) {
      ++host_fields;
    } else if (iequals(name, "content-length")) {
      // Several fields or a list are allowed only when every value is the same number
      // (RFC 9110 section 8.6); anything else is unrecoverable framing.
      bool field_has_value = false;
      Status status = for_each_element(value, [&](std::string_view element) -> Status {
        field_has_value = true;
        if (element.size() > 18) return bad("Content-Length is too large", "Content-Length");
        for (char c : element) {
          if (c < '0' || c > '9') return bad("Content-Length is not a number", "Content-Length");
        }
        if (has_content_length && element != content_length) {
          return bad("conflicting Content-Length values", "Content-Length");
        }
        has_content_length = true;
        content_length = element;
        return Status::ok();
      });
      if (!status.is_ok()) return status;
      if (!field_has_value) {
        return bad("Content-Length is empty", "Content-Length");
      }
    } else if (iequals(name, "transfer-encoding")) {
      has_transfer_encoding = true;
      Status status = for_each_element(value, [&](std::string_view element) -> Status {
        // Parameters (";q=...") are not part of chunked; anything else we cannot decode.
        if (chunked_last) {
          return bad("chunked must be the final transfer coding, applied once",
                     "Transfer-Encoding");
        }
        if (!iequals(element, "chunked")) {
          return bad("unsupported transfer coding '" + std::string(element.substr(0, 64)) +
                         "' (only chunked is accepted, and it must be final)",
                     "Transfer-Encoding");
        }
        chunked_last = true;
        return Status::ok();
      });
      if (!status.is_ok()) return status;
    }
  }
  if (has_transfer_encoding) {
    if (!http11) return bad("Transfer-Encoding in an HTTP/1.0 request", "Transfer-Encoding");
    if (!chunked_last) {
      return bad("the final transfer coding must be chunked", "Transfer-Encoding");
    }
    if (has_content_length) {
      return bad("Transfer-Encoding together with Content-Length", "Transfer-Encoding");
    }
  }
  if (host_fields > 1) return bad("more than one Host header field", "Host");
  if (http11 && host_fields == 0) return bad("an HTTP/1.1 request without Host", "Host");
  return Status::ok();
}

}  // namespace fulcrum::api
