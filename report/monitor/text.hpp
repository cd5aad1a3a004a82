#pragma once

// Formatting helpers of the monitor's figures and screen (internal).

#include <cstddef>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "report/monitor/exposition.hpp"

namespace alb::report::detail {

/// NaN, for figures that cannot be computed (no predecessor snapshot).
inline constexpr double nan_v = std::numeric_limits<double>::quiet_NaN();

/// printf into a std::string (at most 511 characters).
std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

/// Seconds on the steady clock.
double monotonic_seconds();

/// Code points in a UTF-8 string: every glyph used here is one column wide.
std::size_t columns(std::string_view s);

/// `s` cut to `width` code points.
std::string clip(std::string s, std::size_t width);

/// `s` padded with spaces to `width` code points.
std::string pad(std::string s, std::size_t width);

/// `glyph` `n` times.
std::string repeat(std::string_view glyph, std::size_t n);

/// A count ("-" for NaN).
std::string count_text(double v);

/// A rate with one decimal below 100 ("-" for NaN).
std::string rate_text(double v);

/// A percentage with one decimal ("-" for NaN).
std::string percent_text(double v);

/// A duration in µs, ms or s ("-" when unknown).
std::string seconds_text(std::optional<double> v, bool unicode);

/// Where a quantile lies, as its bucket allows: "<= 1 ms" for the first
/// bucket, "> 300 s" above the last bound, else the range "1-2.5 ms" (in the
/// unit of the upper bound); "-" when unknown. Unicode uses ≤ and an en dash.
std::string quantile_text(const std::optional<quantile_bucket>& q,
                          bool unicode);

/// An uptime as "42s", "3m07s" or "2h05m".
std::string uptime_text(double s);

/// An interval in seconds as given ("0.2", "1").
std::string interval_text(double s);

/// The local wall clock as HH:MM:SS.
std::string local_clock();

/// `s` in lower case (ASCII).
std::string lower(std::string s);

/// strerror(err) in lower case.
std::string errno_text(int err);

/// Writes all of `data` to `fd`, resuming after signals (async-signal-safe).
void write_all(int fd, const char* data, std::size_t size);

} // namespace alb::report::detail
