#include "report/monitor/text.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <utility>

#include <unistd.h>

namespace alb::report::detail {

std::string format(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  auto n = std::vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  if (n < 0)
    return {};
  return std::string(
    buf, std::min<std::size_t>(static_cast<std::size_t>(n), sizeof(buf) - 1));
}

double monotonic_seconds() {
  return std::chrono::duration<double>(
           std::chrono::steady_clock::now().time_since_epoch())
    .count();
}

// Code points in a UTF-8 string: every glyph used here is one column wide.
std::size_t columns(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80)
      ++n;
  return n;
}

std::string clip(std::string s, std::size_t width) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) == 0x80)
      continue;
    if (n == width) {
      s.resize(i);
      return s;
    }
    ++n;
  }
  return s;
}

std::string pad(std::string s, std::size_t width) {
  auto n = columns(s);
  if (n < width)
    s.append(width - n, ' ');
  return s;
}

std::string repeat(std::string_view glyph, std::size_t n) {
  std::string result;
  result.reserve(glyph.size() * n);
  for (std::size_t i = 0; i < n; ++i)
    result += glyph;
  return result;
}

std::string count_text(double v) {
  if (std::isnan(v))
    return "-";
  return format("%.0f", v);
}

std::string rate_text(double v) {
  if (std::isnan(v))
    return "-";
  return format(v >= 100 ? "%.0f" : "%.1f", v);
}

std::string percent_text(double v) {
  if (std::isnan(v))
    return "-";
  return format("%.1f%%", v);
}

std::string seconds_text(std::optional<double> v, bool unicode) {
  if (!v || std::isnan(*v))
    return "-";
  auto s = *v;
  if (s < 1e-3)
    return format("%.0f %ss", s * 1e6, unicode ? "\u00b5" : "u");
  if (s < 1)
    return format(s < 0.01 ? "%.1f ms" : "%.0f ms", s * 1e3);
  if (s < 100)
    return format("%.2f s", s);
  return format("%.0f s", s);
}

namespace {

// The unit a bucket bound of `v` seconds reads best in.
std::pair<double, const char*> bound_unit(double v, bool unicode) {
  if (v < 1e-3)
    return {1e6, unicode ? "\u00b5s" : "us"};
  if (v < 1)
    return {1e3, "ms"};
  return {1, "s"};
}

// A bucket bound as the histogram states it: as few digits as it has.
std::string bound_text(double v, bool unicode) {
  auto [scale, name] = bound_unit(v, unicode);
  return format("%g %s", v * scale, name);
}

} // namespace

std::string quantile_text(const std::optional<quantile_bucket>& q,
                          bool unicode) {
  if (!q || std::isnan(q->upper) || std::isnan(q->lower))
    return "-";
  if (std::isinf(q->upper))
    return "> " + bound_text(q->lower, unicode);
  if (!(q->lower > 0))
    return (unicode ? "\u2264 " : "<= ") + bound_text(q->upper, unicode);
  // Both ends in the upper bound's unit.
  auto [scale, name] = bound_unit(q->upper, unicode);
  return format("%g%s%g %s", q->lower * scale, unicode ? "\u2013" : "-",
                q->upper * scale, name);
}

std::string uptime_text(double s) {
  if (std::isnan(s) || s < 0)
    return "-";
  auto t = static_cast<long long>(s);
  if (t < 60)
    return format("%llds", t);
  if (t < 3600)
    return format("%lldm%02llds", t / 60, t % 60);
  return format("%lldh%02lldm", t / 3600, (t / 60) % 60);
}

std::string interval_text(double s) {
  return format("%g", s);
}

std::string local_clock() {
  auto now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char buf[16];
  std::strftime(buf, sizeof(buf), "%H:%M:%S", &tm);
  return buf;
}

std::string lower(std::string s) {
  for (auto& c : s)
    if (c >= 'A' && c <= 'Z')
      c = static_cast<char>(c - 'A' + 'a');
  return s;
}

std::string errno_text(int err) {
  return lower(std::strerror(err));
}

void write_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    auto n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return;
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

} // namespace alb::report::detail
