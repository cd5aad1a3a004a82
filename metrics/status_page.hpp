#pragma once

// The status page a coordinator serves next to /metrics (metrics/server.hpp):
// plain HTML and a little JavaScript that polls /api/status and renders the
// nodes, the queue with the waiting reasons, the running tests and the recent
// failures with their output tails. Kept as metrics/status_page.html and
// metrics/status_page.js (installed in share/alb/status) and compiled into
// the binary from them, so a running coordinator needs no files.

#include <string>

namespace alb::metrics {

/// The page (`/`).
const std::string& status_page_html();

/// Its script (`/status.js`).
const std::string& status_page_js();

} // namespace alb::metrics
