#pragma once

// What the dashboard knows across refreshes, and its layout as lines of
// text for a terminal of a given size (or one summary line for a pipe).

#include "report/monitor/figures.hpp"

#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <vector>

namespace alb::report {

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

} // namespace alb::report
