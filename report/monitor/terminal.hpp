#pragma once

// Drawing on a VT100/xterm terminal, and the `--live` view of a run.

#include "report/monitor/screen.hpp"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace alb::report {

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

} // namespace alb::report
