#pragma once

// One rate limiter for every log line an outsider (or a failing disk) can
// cause: per window, each kind of line once and at most `per_window` lines
// in all; the rest are counted and reported in one summary line when the
// window rolls over. CAF-free and clock-free: callers pass the time.

#include <cstddef>
#include <functional>
#include <set>
#include <string>

namespace alb {

/// Rate-limits log lines by kind (see the header comment). Not
/// thread-safe: callers serialise access.
class log_limiter {
public:
  /// Shows at most `per_window` lines per `window` seconds; `what` names
  /// the suppressed lines in the summary ("connections refused").
  log_limiter(int per_window, double window, std::string what);

  /// Whether a line of kind `kind` at time `now` (seconds, any origin,
  /// never decreasing) is to be shown. When the window rolled over and
  /// lines were suppressed in it, `summary` is called first with one line
  /// saying how many ("12 more connections refused in the last 10 s (not
  /// shown one by one)").
  bool admit(const std::string& kind, double now,
             const std::function<void(const std::string&)>& summary);

  /// Rolls the window over when it is over (calling `summary` as admit()
  /// does), so a summary is not held back until the next line comes.
  void roll(double now, const std::function<void(const std::string&)>& summary);

  /// Ends the current window at `now` (a stop): when lines were
  /// suppressed in it, `summary` gets the line saying how many, naming the
  /// seconds the window lasted so far.
  void finish(double now,
              const std::function<void(const std::string&)>& summary);

  /// Lines suppressed in the current window so far.
  size_t hidden() const { return hidden_; }

private:
  int per_window_;
  double window_;
  std::string what_;
  bool started_ = false;
  double window_start_ = 0;
  int shown_ = 0;
  size_t hidden_ = 0;
  std::set<std::string> kinds_;
};

} // namespace alb
