#include "runtime/log_format.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace alb {

const char* to_string(log_level l) {
  switch (l) {
    case log_level::debug:
      return "DEBUG";
    case log_level::info:
      return "INFO";
    case log_level::warning:
      return "WARNING";
    case log_level::error:
      return "ERROR";
  }
  return "INFO";
}

log_level log_level_of(std::string_view name) {
  if (name == "DEBUG")
    return log_level::debug;
  if (name == "WARNING")
    return log_level::warning;
  if (name == "ERROR")
    return log_level::error;
  return log_level::info;
}

log_format parse_log_format(std::string_view name, std::string_view where) {
  if (name == "text")
    return log_format::text;
  if (name == "json")
    return log_format::json;
  throw std::invalid_argument(std::string{where} + ": '" + std::string{name}
                              + "' is not a log format (text or json)");
}

std::string iso8601(double unix_seconds, int utc_offset) {
  // Milliseconds rounded once, so 59.9996 s becomes the next second rather
  // than ".1000".
  auto ms = static_cast<int64_t>(std::llround(unix_seconds * 1000.0))
            + static_cast<int64_t>(utc_offset) * 1000;
  auto secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
  auto frac = static_cast<int>(ms - secs * 1000);
  auto t = static_cast<std::time_t>(secs);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char date[32];
  std::strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
  auto off = utc_offset < 0 ? -utc_offset : utc_offset;
  char out[64];
  std::snprintf(out, sizeof(out), "%s.%03d%c%02d:%02d", date, frac,
                utc_offset < 0 ? '-' : '+', off / 3600, (off % 3600) / 60);
  return out;
}

std::string iso8601_local(double unix_seconds) {
  if (!(unix_seconds > 0))
    return {};
  auto t = static_cast<std::time_t>(std::floor(unix_seconds));
  std::tm tm{};
  ::localtime_r(&t, &tm);
  return iso8601(unix_seconds, static_cast<int>(tm.tm_gmtoff));
}

double unix_now() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

namespace {

// Control characters would break the one-line-per-event promise (a newline)
// or a terminal (escape sequences): written as C escapes instead.
std::string one_line(std::string_view msg) {
  std::string out;
  out.reserve(msg.size());
  for (unsigned char c : msg) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

} // namespace

std::string format_log_line(log_format fmt, double unix_seconds, int utc_offset,
                            log_level level, std::string_view component,
                            std::string_view msg) {
  auto ts = iso8601(unix_seconds, utc_offset);
  if (fmt == log_format::json) {
    nlohmann::json j = {{"ts", ts},
                        {"level", to_string(level)},
                        {"component", std::string{component}},
                        {"msg", std::string{msg}}};
    // Messages may carry bytes from outside (a peer's name, a command's
    // output): invalid UTF-8 is replaced rather than failing the line.
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  std::string out = ts;
  out += ' ';
  out += to_string(level);
  out += ' ';
  out += component;
  out += ": ";
  out += one_line(msg);
  return out;
}

} // namespace alb
