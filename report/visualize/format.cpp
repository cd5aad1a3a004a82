#include "report/visualize/format.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace alb::report::viz {

std::string num(double v, int precision) {
  if (!std::isfinite(v))
    return "0";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v,
                           std::chars_format::general, precision);
  return std::string(buf, res.ptr);
}

std::string fixed(double v, int decimals) {
  if (!std::isfinite(v))
    return "n/a";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::fixed,
                           decimals);
  return std::string(buf, res.ptr);
}

std::string pretty(double v) {
  double a = std::fabs(v);
  if (a >= 100 || (a == std::floor(a) && a < 1e15))
    return fixed(v, 0);
  if (a >= 10)
    return fixed(v, 1);
  if (a >= 0.1)
    return fixed(v, 2);
  return num(v, 2);
}

std::string count_of(double n, const char* singular, const char* plural) {
  return pretty(n) + " " + (n == 1 ? singular : plural);
}

std::string printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7f) ? ' ' : c;
  }
  return out;
}

std::string gp_str(std::string_view s) {
  std::string out = "'";
  for (char c : printable(s)) {
    if (c == '\'')
      out += "''";
    else
      out += c;
  }
  out += '\'';
  return out;
}

std::string gp_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) {
    if (l.empty())
      continue;
    if (!out.empty())
      out += ".\"\\n\".";
    out += gp_str(l);
  }
  return out.empty() ? "''" : out;
}

std::string dat_str(std::string_view s) {
  std::string out = "\"";
  for (char c : printable(s))
    out += (c == '"' || c == '\\' || c == '#') ? '_' : c;
  out += '"';
  return out;
}

std::string html(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string json_type(const json& j) {
  if (j.is_array())
    return "a list";
  if (j.is_object())
    return "an object";
  if (j.is_string())
    return "a string";
  if (j.is_number())
    return "a number";
  if (j.is_boolean())
    return "a boolean";
  return "null";
}

[[noreturn]] void fail(visualize_ec code, const std::string& what) {
  throw visualize_error(code, what);
}

double as_percent(double v) {
  return v >= 0 && v <= 1.0 ? v * 100 : v;
}

} // namespace alb::report::viz
