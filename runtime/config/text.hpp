#pragma once

// Small text helpers shared by the configuration sources (internal).

#include <cctype>
#include <string>
#include <string_view>
#include <vector>

namespace alb::config_detail {

/// Returns `s` in lower case (ASCII).
inline std::string lower(std::string_view s) {
  std::string out{s};
  for (auto& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

/// Returns `xs` separated by ", ".
inline std::string join(const std::vector<std::string>& xs) {
  std::string out;
  for (auto& x : xs) {
    if (!out.empty())
      out += ", ";
    out += x;
  }
  return out;
}

/// Returns the keys of a map, in its order.
template<class Map>
std::vector<std::string> keys_of(const Map& m) {
  std::vector<std::string> out;
  for (auto& kv : m)
    out.push_back(kv.first);
  return out;
}

} // namespace alb::config_detail
