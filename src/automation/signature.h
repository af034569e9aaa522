// Webhook signatures, in the scheme Stripe documents for its webhooks: the header
//   Fulcrum-Signature: t=<unix seconds>,kid=<key id>,v1=<hex HMAC-SHA256>
// where the HMAC (RFC 2104, SHA-256) is over "<t>.<raw body>" with the endpoint's secret.
// A receiver recomputes it, compares in constant time and rejects timestamps outside its
// tolerance (replays). Pure functions; the verifier is what tests and receivers call.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"
#include "core/time.h"

namespace fulcrum::automation {

inline constexpr std::string_view kSignatureHeader = "Fulcrum-Signature";

// Lower-case hex HMAC-SHA256(secret, message).
std::string hmac_sha256_hex(std::string_view secret, std::string_view message);

// The header value for one delivery attempt. While a rotated-out secret is still valid
// (`previous_secret` not empty) the header carries a second v1 signature made with it, so a
// receiver that has not switched to the new secret yet still verifies (as Stripe does during
// a secret roll); verify_signature accepts any v1 that matches.
std::string signature_header(std::string_view secret, std::string_view key_id, UnixSeconds t,
                             std::string_view body, std::string_view previous_secret = {});

// OK when `header` carries a v1 signature of `body` by `secret` whose timestamp is within
// `tolerance_seconds` of `now`; kPermissionDenied (or kInvalidArgument for a malformed
// header) otherwise.
Status verify_signature(std::string_view header, std::string_view secret, std::string_view body,
                        UnixSeconds now, UnixSeconds tolerance_seconds = 300);

}  // namespace fulcrum::automation
