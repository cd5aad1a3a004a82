#include "runtime/byte_size.hpp"

#include <cctype>

namespace alb {

std::optional<uint64_t> parse_byte_size(const std::string& text) {
  size_t i = 0;
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i])))
    ++i;
  uint64_t v = 0;
  size_t digits = 0;
  for (; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]));
       ++i, ++digits) {
    auto d = static_cast<uint64_t>(text[i] - '0');
    if (v > (UINT64_MAX - d) / 10)
      return std::nullopt;
    v = v * 10 + d;
  }
  if (digits == 0)
    return std::nullopt;
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i])))
    ++i;
  std::string unit;
  for (; i < text.size(); ++i)
    unit.push_back(
      static_cast<char>(std::tolower(static_cast<unsigned char>(text[i]))));
  while (!unit.empty() && std::isspace(static_cast<unsigned char>(unit.back())))
    unit.pop_back();
  int shift = -1;
  if (unit.empty() || unit == "b")
    shift = 0;
  for (auto [p, s] : {std::pair{'k', 10}, {'m', 20}, {'g', 30}, {'t', 40}})
    if (unit.size() >= 1 && unit[0] == p
        && (unit.size() == 1 || unit.substr(1) == "b"
            || unit.substr(1) == "ib"))
      shift = s;
  if (shift < 0)
    return std::nullopt;
  if (shift > 0 && v > (UINT64_MAX >> shift))
    return std::nullopt;
  return v << shift;
}

std::string format_bytes(uint64_t n) {
  static const char* const units[] = {"TiB", "GiB", "MiB", "KiB"};
  int shift = 40;
  for (auto* u : units) {
    auto one = uint64_t{1} << shift;
    if (n >= one && n % one == 0)
      return std::to_string(n >> shift) + " " + u;
    shift -= 10;
  }
  return std::to_string(n) + (n == 1 ? " byte" : " bytes");
}

std::string check_max_output(uint64_t n) {
  if (n < min_max_output || n > max_max_output)
    return format_bytes(n) + " is out of range (" + format_bytes(min_max_output)
           + " to " + format_bytes(max_max_output) + ")";
  return {};
}

std::string check_max_submission(uint64_t n) {
  if (n < min_max_submission || n > max_max_submission)
    return format_bytes(n) + " is out of range ("
           + format_bytes(min_max_submission) + " to "
           + format_bytes(max_max_submission) + ")";
  return {};
}

} // namespace alb
