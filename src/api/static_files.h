// The dashboard's static files. Only the dashboard's own files are served, from an
// allow-list: "/" and "/index.html", "/app.css", and anything under "/src/" or "/vendor/"
// (never package.json, lock files, README.md, tests/, node_modules/ or scripts/, which sit
// in the same directory). Every answer, 404s included, carries the browser hardening
// headers below; the Content-Security-Policy allows scripts, styles and fetches from the
// dashboard's own origin only (no inline script or style), and no framing.
#pragma once

#include <string>
#include <string_view>

#include "api/http.h"

namespace fulcrum::api {

inline constexpr std::string_view kDashboardContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'";

// True when the decoded path (e.g. "/src/main.js") is one of the dashboard's own files.
bool is_dashboard_file(std::string_view decoded_path);

// Serves `raw_path` (still percent-encoded) from `web_dir` when it is on the allow-list,
// else a 404 problem; with the hardening headers either way.
Response serve_dashboard_file(const std::string& web_dir, std::string_view raw_path);

// Adds Content-Security-Policy, X-Frame-Options DENY, Referrer-Policy no-referrer (and
// nosniff, which the server adds to every response anyway).
void add_dashboard_headers(Response& response);

}  // namespace fulcrum::api
