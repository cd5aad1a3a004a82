#pragma once

// Fetching /metrics for `alb monitor`: URL parsing and one GET over http://
// or https:// with libcurl.
//
// Usage:
//
//     auto url = alb::report::parse_metrics_url("https://host:9464/metrics");
//     auto got = alb::report::fetch_metrics(url, {2.0});
//     if (!got.ok)
//       std::cerr << alb::report::unreachable_message(url.text, got.error, 1);

#include <cstdint>
#include <string>
#include <string_view>

namespace alb::report {

/// A parsed http:// or https:// URL.
struct metrics_url {
  /// "http" or "https" (lower case).
  std::string scheme = "http";
  /// Host name or address (IPv6 without the brackets).
  std::string host;
  /// TCP port (80 or 443 by scheme when the URL has none).
  uint16_t port = 80;
  /// Path and query, "/metrics" when the URL has no path.
  std::string path;
  /// The URL as given, for messages.
  std::string text;

  /// Returns the normalized URL that is fetched:
  /// `scheme://host:port/path`, IPv6 hosts in brackets.
  std::string full() const;
};

/// Parses `[http|https]://HOST[:PORT][/PATH]` (no scheme means http). Throws
/// std::invalid_argument with a one-line reason (other schemes, empty host,
/// bad port, user information, spaces).
metrics_url parse_metrics_url(std::string_view url);

/// How to fetch.
struct fetch_options {
  /// Give up after this many seconds in total (connect, TLS and transfer).
  double timeout_seconds = 2;
  /// PEM file of the CA(s) an https:// server's certificate must chain to
  /// ("" = the system's trust store).
  std::string ca_file;
};

/// The outcome of one GET.
struct fetch_result {
  /// Whether a 200 response arrived completely.
  bool ok = false;
  /// The response body when ok.
  std::string body;
  /// Why not, in lower case: "connection refused", "timed out after 2 s",
  /// "HTTP 404 Not Found", "cannot resolve host 'h'", "TLS: ...".
  std::string error;
};

/// GETs `url` with libcurl (http or https only, no redirects, at most
/// 64 MiB). Never throws.
fetch_result fetch_metrics(const metrics_url& url, const fetch_options& opts);

/// "cannot reach URL: ERROR — retrying every S s" (an ASCII dash unless
/// `unicode`).
std::string unreachable_message(const std::string& url,
                                const std::string& error, double interval,
                                bool unicode = true);

} // namespace alb::report
