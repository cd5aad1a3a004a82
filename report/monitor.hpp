#pragma once

// The terminal dashboard: `alb monitor` and the `--live` view of a run.
//
// Both read the Prometheus text exposition that alb serves on /metrics:
// `alb monitor` fetches it over http:// or https:// (libcurl) from any alb
// process, `--live` takes it
// from the run's own registry (`metrics::registry::scrape()`), so one parser,
// one set of figures and one screen serve both. The pieces, bottom up:
//
// - `parse_exposition` turns exposition text into a `metrics_snapshot`;
// - `compute_figures` derives the dashboard's numbers from the latest
//   snapshot and the one before it (rates need two);
// - `evaluate_alerts` applies the alert rules to the figures (figures.hpp);
// - `monitor_state` keeps the history (throughput graph, peak) across
//   refreshes; `render_screen` lays it out for a terminal of a given size and
//   `summary_line` condenses it to one line for logs and pipes (screen.hpp);
// - `fetch_metrics` GETs a URL (fetch.hpp);
// - `terminal_screen` draws frames on a VT100/xterm terminal (alternate
//   screen, no curses library needed), `live_view` wraps it for a run
//   (terminal.hpp), and `run_monitor` (here) is the whole `alb monitor` loop.
//
// Usage:
//
//     alb::report::monitor_state state;
//     state.update(alb::report::parse_exposition(reg.scrape(), t));
//     for (auto& line : alb::report::render_screen(state, {}))
//       std::cout << line.text << "\n";

#include "report/monitor/exposition.hpp"
#include "report/monitor/fetch.hpp"
#include "report/monitor/figures.hpp"
#include "report/monitor/screen.hpp"
#include "report/monitor/terminal.hpp"

#include <cstdint>
#include <string>

namespace alb::report {

/// Options of `alb monitor`.
struct monitor_options {
  /// Where /metrics is.
  metrics_url url;
  /// PEM CA file for https:// ("" = the system's trust store).
  std::string ca_file;
  /// Seconds between refreshes.
  double interval = 1;
  /// Stop after this many refreshes (0 = until `q` or Ctrl-C).
  uint64_t count = 0;
};

/// Runs `alb monitor`: a full-screen dashboard refreshed every interval when
/// stdout is a terminal (`q` quits), else one summary line per interval on
/// stdout. An unreachable target is shown and retried. Ends on `q`, SIGINT,
/// SIGTERM or after `count` refreshes. Returns 0, or 1 when the target was
/// never reached.
int run_monitor(const monitor_options& opts);

} // namespace alb::report
