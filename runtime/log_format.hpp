#pragma once

// How alb's long-running commands (coordinator, node, run, submit, the run
// commands) write a log line: ISO-8601 date, time and zone, level,
// component, message, as text
//
//     2026-12-01T11:20:00.123+00:00 INFO coordinator: node 'n1' joined
//
// or as one JSON object per line (`--log-format json`)
//
//     {"ts":"2026-12-01T11:20:00.123+00:00","level":"INFO",
//      "component":"coordinator","msg":"node 'n1' joined"}
//
// Clock-free: callers pass the time (Unix seconds) and its zone offset, so
// the formatter is a plain function unit tests call with fixed values.

#include <cstdint>
#include <string>
#include <string_view>

namespace alb {

/// Severity of a log line, in increasing order.
enum class log_level {
  /// Detail for finding a problem (connections, placement summaries).
  debug,
  /// Normal operation (joins, leaves, starts and stops).
  info,
  /// Something is wrong but work goes on (refusals, unsafe files).
  warning,
  /// Something failed.
  error,
};

/// The level's name as written in logs and taken by --log-level: DEBUG,
/// INFO, WARNING, ERROR.
const char* to_string(log_level l);

/// The level named by DEBUG, INFO, WARNING or ERROR (as normalize_log_level
/// returns them); anything else is INFO.
log_level log_level_of(std::string_view name);

/// How log lines are written.
enum class log_format {
  /// `TS LEVEL component: message`.
  text,
  /// One JSON object per line with ts, level, component and msg.
  json,
};

/// The format named "text" or "json"; throws std::invalid_argument naming
/// `where` (e.g. "--log-format") and the value otherwise.
log_format parse_log_format(std::string_view name, std::string_view where);

/// `unix_seconds` as ISO-8601 with milliseconds and the zone as an offset
/// from UTC: "2026-12-01T12:20:00.123+01:00" for `utc_offset` 3600.
std::string iso8601(double unix_seconds, int utc_offset);

/// `unix_seconds` as ISO-8601 in this process's local zone (TZ), offset
/// included; "" for a time <= 0 (unknown).
std::string iso8601_local(double unix_seconds);

/// The current time in Unix seconds (with fractions).
double unix_now();

/// One log line, without the newline. Newlines and other control
/// characters in `msg` are escaped (`\n`), so one event is always one
/// line.
std::string format_log_line(log_format fmt, double unix_seconds, int utc_offset,
                            log_level level, std::string_view component,
                            std::string_view msg);

} // namespace alb
