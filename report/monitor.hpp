#pragma once

// The terminal dashboard: `alb monitor` and the `--live` view of a run.
//
// Both read the Prometheus text exposition that alb serves on /metrics:
// `alb monitor` fetches it over HTTP from any alb process, `--live` takes it
// from the run's own registry (`metrics::registry::scrape()`), so one parser,
// one set of figures and one screen serve both. The pieces, bottom up:
//
// - `parse_exposition` turns exposition text into a `metrics_snapshot`;
// - `compute_figures` derives the dashboard's numbers from the latest
//   snapshot and the one before it (rates need two);
// - `evaluate_alerts` applies the alert rules to the figures;
// - `monitor_state` keeps the history (throughput graph, peak) across
//   refreshes; `render_screen` lays it out for a terminal of a given size and
//   `summary_line` condenses it to one line for logs and pipes;
// - `terminal_screen` draws frames on a VT100/xterm terminal (alternate
//   screen, no curses library needed), `live_view` wraps it for a run, and
//   `run_monitor` is the whole `alb monitor` loop.
//
// Usage:
//
//     alb::report::monitor_state state;
//     state.update(alb::report::parse_exposition(reg.scrape(), t));
//     for (auto& line : alb::report::render_screen(state, {}))
//       std::cout << line.text << "\n";

#include <array>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace alb::report {

// -- parsing ------------------------------------------------------------------

/// One sample line of the exposition format: `name{labels} value`.
struct metric_sample {
  /// Metric name, e.g. `alb_queue_depth` or
  /// `alb_assignment_wait_seconds_bucket`.
  std::string name;
  /// Label pairs in the order they appeared.
  std::vector<std::pair<std::string, std::string>> labels;
  /// The sample value (may be NaN or infinite).
  double value = 0;

  /// Returns the value of label `key`, or null when the sample lacks it.
  const std::string* label(std::string_view key) const;
};

/// Label constraints: every pair must be present with that value.
using label_match = std::vector<std::pair<std::string, std::string>>;

/// One parsed scrape.
struct metrics_snapshot {
  /// When it was taken, in seconds on any monotonic clock: rates divide by
  /// differences of this.
  double time = 0;
  /// Every sample, in exposition order.
  std::vector<metric_sample> samples;
  /// Lines that were neither comments nor valid samples (skipped).
  std::size_t malformed_lines = 0;

  /// Returns the sum of the samples called `name` that carry every label in
  /// `match` (0 when there are none).
  double sum(std::string_view name, const label_match& match = {}) const;

  /// Returns whether a sample called `name` exists.
  bool has(std::string_view name) const;

  /// Returns whether any sample belongs to alb (name starts with "alb_").
  bool has_alb_metrics() const;
};

/// Parses Prometheus text exposition (version 0.0.4). Comments, blank lines
/// and optional timestamps are ignored; malformed lines are counted, not
/// fatal, so a partly odd target still shows what it can.
metrics_snapshot parse_exposition(std::string_view text, double time = 0);

/// Estimates quantile `q` (0..1) from cumulative histogram buckets given as
/// (upper bound, cumulative count) pairs, as PromQL's histogram_quantile does:
/// linear interpolation inside the bucket that holds the rank, the lower
/// edge of the first bucket taken as 0, and the highest finite bound when the
/// rank falls into the +Inf bucket. Returns nothing when the count is 0.
std::optional<double>
histogram_quantile(double q, std::vector<std::pair<double, double>> buckets);

// -- figures and alerts -------------------------------------------------------

/// One worker's line in the busiest-workers table.
struct worker_figures {
  /// The worker's id (the `worker` label).
  std::string id;
  /// Load score, 0 idle to 1 full.
  double load = 0;
  /// Tests the worker holds, running or queued locally.
  double active_tests = 0;
  /// Successful completions per second since the previous snapshot (NaN on
  /// the first snapshot).
  double completions_per_second = 0;
};

/// The dashboard's numbers, from one snapshot and optionally its
/// predecessor. Rates are NaN when there is no predecessor.
struct monitor_figures {
  /// Whether the snapshot holds any alb metric at all.
  bool has_alb_metrics = false;
  /// `mode` label of alb_run_info ("stress", "coordinator", ...; "" if none).
  std::string mode;
  /// `strategy` label of alb_run_info.
  std::string strategy;
  /// Process uptime in seconds (NaN when not served).
  double uptime = 0;
  /// Seconds between the two snapshots (0 without a predecessor).
  double interval = 0;

  /// Registered workers.
  double workers = 0;
  /// Workers holding at least one test.
  double busy_workers = 0;
  /// Workers holding none.
  double idle_workers = 0;
  /// Mean load score over the workers, 0..1.
  double mean_load = 0;
  /// Tests waiting in the queue per priority (index 0 = priority 1).
  std::array<double, 5> queue_by_priority{};
  /// Tests waiting in the queue, all priorities.
  double queue_depth = 0;
  /// Change of `queue_depth` plus `parked` since the predecessor (0 without
  /// one).
  double queue_change = 0;
  /// Tests parked because no worker can hold them now.
  double parked = 0;
  /// Tests on workers.
  double in_flight = 0;

  /// Tests submitted, completed, failed (any reason) so far.
  double submitted = 0, completed = 0, failed = 0;
  /// Completions per second: the throughput.
  double throughput = 0;
  /// Submissions per second.
  double submit_rate = 0;
  /// Failures per second.
  double failure_rate = 0;
  /// Completed / (completed + failed), percent; NaN before any test ended.
  double success_rate = 0;

  /// Assignment wait (submission to start on a worker) quantiles, seconds.
  std::optional<double> wait_p50, wait_p99;
  /// Whether the quantiles cover only the last interval (else the whole
  /// run, used when no test was placed during the interval).
  bool wait_window = false;

  /// Tests moved by rebalancing, and taken by idle workers, so far.
  double migrations = 0, steals = 0;
  /// Migrations plus steals per second.
  double move_rate = 0;
  /// Tests requeued because their worker left, and retried after failing.
  double requeued = 0, retried = 0;

  /// Workers with per-worker series, busiest (highest load) first.
  std::vector<worker_figures> workers_by_load;
  /// Workers without per-worker series (past the cardinality cap).
  double untracked_workers = 0;
};

/// Computes the figures of `cur`; rates and the queue change need `prev`
/// (a counter lower than in `prev` is taken as a restart of the target).
monitor_figures compute_figures(const metrics_snapshot& cur,
                                const metrics_snapshot* prev = nullptr);

/// Thresholds of the alerts.
struct alert_rules {
  /// Alert when the run's success rate (percent) falls below this...
  double min_success_rate = 80;
  /// ...once at least this many tests have ended (one early failure is no
  /// trend).
  double min_ended_tests = 10;
  /// Alert when a worker's load exceeds this (0..1).
  double max_worker_load = 0.9;
};

/// What an alert is about.
enum class alert_kind {
  /// The queue grew since the last refresh while some workers sat idle:
  /// tests wait that nobody takes (unplaceable, or the balancer stalls).
  queue_growing_with_idle_workers,
  /// Too few of the ended tests succeeded.
  low_success_rate,
  /// At least one worker is loaded above the threshold.
  worker_overloaded,
};

/// One raised alert.
struct alert {
  /// Which rule fired.
  alert_kind kind;
  /// One line for the screen, with the numbers that triggered it.
  std::string message;
};

/// Applies `rules` to `f`; returns the alerts raised, in rule order.
std::vector<alert> evaluate_alerts(const monitor_figures& f,
                                   const alert_rules& rules = {});

// -- dashboard state and rendering --------------------------------------------

/// What a dashboard knows across refreshes: the latest snapshot and figures,
/// throughput history and peak, alerts, and whether the target answered.
class monitor_state {
public:
  /// Keeps the throughput of the last `history` refreshes for the graph.
  explicit monitor_state(std::size_t history = 240, alert_rules rules = {});

  /// Takes a new snapshot: recomputes figures and alerts, extends history.
  void update(metrics_snapshot snap);

  /// Records a failed fetch; the previous figures stay, marked stale.
  /// `message` is the full line to show (see `unreachable_message`).
  void unreachable(std::string message);

  /// Whether any snapshot arrived yet.
  bool has_data() const { return snap_.has_value(); }

  /// Whether the last fetch failed.
  bool is_unreachable() const { return !error_.empty(); }

  /// The message of the last failed fetch ("" when it succeeded).
  const std::string& error() const { return error_; }

  /// Figures of the latest snapshot (defaults before the first).
  const monitor_figures& figures() const { return figures_; }

  /// Alerts of the latest snapshot.
  const std::vector<alert>& alerts() const { return alerts_; }

  /// Throughput per refresh, oldest first (only refreshes with a rate).
  const std::deque<double>& throughput_history() const { return history_; }

  /// Highest throughput seen (0 before any rate).
  double peak_throughput() const { return peak_; }

  /// Refreshes that produced a snapshot.
  std::size_t updates() const { return updates_; }

private:
  std::size_t capacity_;
  alert_rules rules_;
  std::optional<metrics_snapshot> snap_;
  monitor_figures figures_;
  std::vector<alert> alerts_;
  std::deque<double> history_;
  double peak_ = 0;
  std::size_t updates_ = 0;
  std::string error_;
};

/// How a screen line is drawn.
enum class line_style {
  /// Plain text.
  normal,
  /// The title bar (reverse video, full width).
  title,
  /// A section heading (bold).
  heading,
  /// An alert or the unreachable message (bold red).
  alert,
  /// Stale or secondary information (dim).
  dim,
  /// "No alerts" and other good news (green).
  good,
};

/// One line of a rendered screen: text without escape sequences.
struct screen_line {
  /// What to show; at most `width - 1` characters (UTF-8 code points).
  std::string text;
  /// How to show it.
  line_style style = line_style::normal;
};

/// Layout parameters of `render_screen`.
struct render_options {
  /// Terminal columns.
  int width = 80;
  /// Terminal rows; the screen never has more lines.
  int height = 24;
  /// Use Unicode block characters for graphs and bars (else ASCII).
  bool unicode = true;
  /// Left part of the title bar, e.g. "alb monitor  http://.../metrics".
  std::string title = "alb monitor";
  /// Right part of the title bar, e.g. "q quits".
  std::string hint;
  /// A status line under the title (e.g. "updated 12:00:01 · every 1 s",
  /// or the run's progress in a live view); "" for none.
  std::string status;
};

/// Lays out the dashboard of `state`: title, status or the unreachable
/// message, key figures, alerts, the throughput graph and the busiest
/// workers, shrinking the graph and the worker table to fit `opts.height`.
std::vector<screen_line> render_screen(const monitor_state& state,
                                       const render_options& opts);

/// The dashboard in one line, for a pipe or log: workers, queue, throughput
/// and peak, wait p50/p99, success rate, moves and alerts; or the
/// unreachable message. Has no trailing newline.
std::string summary_line(const monitor_state& state, bool unicode = false);

// -- fetching -----------------------------------------------------------------

/// A parsed http:// URL.
struct http_url {
  /// Host name or address (IPv6 without the brackets).
  std::string host;
  /// TCP port (80 when the URL has none).
  uint16_t port = 80;
  /// Path and query, "/metrics" when the URL has no path.
  std::string path;
  /// The URL as given, for messages.
  std::string text;
};

/// Parses `http://HOST[:PORT][/PATH]` (the scheme may be omitted). Throws
/// std::invalid_argument with a one-line reason (other schemes, empty host,
/// bad port, spaces).
http_url parse_http_url(std::string_view url);

/// The outcome of one GET.
struct fetch_result {
  /// Whether a 200 response arrived completely.
  bool ok = false;
  /// The response body when ok.
  std::string body;
  /// Why not, in lower case: "connection refused", "timed out after 2 s",
  /// "HTTP 404 Not Found", ...
  std::string error;
};

/// GETs `url` over HTTP/1.0 with plain POSIX sockets, giving up after
/// `timeout_seconds` in total. Never throws.
fetch_result http_get(const http_url& url, double timeout_seconds);

/// "cannot reach URL: ERROR — retrying every S s" (an ASCII dash unless
/// `unicode`).
std::string unreachable_message(const std::string& url,
                                const std::string& error, double interval,
                                bool unicode = true);

// -- terminal -----------------------------------------------------------------

/// Whether the C library's character set (after `setlocale(LC_CTYPE, "")`)
/// is UTF-8, i.e. block characters will show.
bool terminal_is_utf8();

/// Draws full-screen frames on a VT100/xterm-compatible terminal on stdout:
/// switches to the alternate screen and hides the cursor while alive and
/// restores both on destruction. With `read_keys` it also puts stdin (when a
/// terminal) into non-canonical, no-echo mode so single keys can be read, and
/// restores it. With `restore_on_signal` a SIGINT or SIGTERM first restores
/// the terminal and then takes its previous course (for a run that Ctrl-C
/// ends); without, the caller handles those signals. One at a time.
class terminal_screen {
public:
  /// Enters the alternate screen.
  terminal_screen(bool read_keys, bool restore_on_signal);

  /// Leaves it and restores the terminal.
  ~terminal_screen();

  terminal_screen(const terminal_screen&) = delete;
  terminal_screen& operator=(const terminal_screen&) = delete;

  /// Returns the terminal's (columns, rows), 80x24 when unknown.
  static std::pair<int, int> size();

  /// Replaces the screen with `lines` (styled, each clipped to the width).
  void draw(const std::vector<screen_line>& lines);
};

/// The `--live` view of a run in this process: a `terminal_screen` fed with
/// the run's own registry scrapes (no HTTP) about once per second.
class live_view {
public:
  /// Takes over the terminal; `title` names the run ("alb stress — live").
  explicit live_view(std::string title);

  ~live_view();

  live_view(const live_view&) = delete;
  live_view& operator=(const live_view&) = delete;

  /// Shows the run as of `scrape` (the registry's exposition text), taken
  /// `elapsed` seconds into the run; `status` is the progress line.
  void show(std::string_view scrape, double elapsed, std::string status);

private:
  std::string title_;
  bool unicode_;
  monitor_state state_;
  terminal_screen screen_;
};

/// Options of `alb monitor`.
struct monitor_options {
  /// Where /metrics is.
  http_url url;
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
