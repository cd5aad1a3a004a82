#include "runtime/log_limiter.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

namespace alb {

log_limiter::log_limiter(int per_window, double window, std::string what)
  : per_window_(per_window), window_(window), what_(std::move(what)) {
  // nop
}

void log_limiter::roll(double now,
                       const std::function<void(const std::string&)>& summary) {
  if (!started_) {
    started_ = true;
    window_start_ = now;
  } else if (now - window_start_ >= window_) {
    if (hidden_ > 0 && summary)
      summary(std::to_string(hidden_) + " more " + what_ + " in the last "
              + std::to_string(static_cast<long long>(std::lround(window_)))
              + " s (not shown one by one)");
    window_start_ = now;
    shown_ = 0;
    hidden_ = 0;
    kinds_.clear();
  }
}

void log_limiter::finish(
  double now, const std::function<void(const std::string&)>& summary) {
  if (hidden_ > 0 && summary)
    summary(std::to_string(hidden_) + " more " + what_ + " in the last "
            + std::to_string(static_cast<long long>(
              std::ceil(std::max(0.0, now - window_start_))))
            + " s (not shown one by one)");
  window_start_ = now;
  started_ = true;
  shown_ = 0;
  hidden_ = 0;
  kinds_.clear();
}

bool log_limiter::admit(
  const std::string& kind, double now,
  const std::function<void(const std::string&)>& summary) {
  roll(now, summary);
  // A flood must not turn into a flood of log lines: each kind once per
  // window, and only so many lines in all.
  if (shown_ >= per_window_ || !kinds_.insert(kind).second) {
    ++hidden_;
    return false;
  }
  ++shown_;
  return true;
}

} // namespace alb
