// Messages of the configuration loader: one-line errors and the did-you-mean
// guess for misspelled keys and names.

#include "runtime/config.hpp"
#include "runtime/config/text.hpp"

#include <algorithm>
#include <vector>

namespace alb {

using config_detail::lower;

// -- errors -------------------------------------------------------------------

std::string one_line(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      static constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[u >> 4];
      out += hex[u & 0xf];
    } else {
      out += c;
    }
  }
  return out;
}

config_error::config_error(const std::string& what)
  : std::runtime_error(one_line(what)) {
  // nop
}

// -- did you mean -------------------------------------------------------------

namespace {

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t subst = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, subst});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

} // namespace

std::string did_you_mean(std::string_view word,
                         const std::vector<std::string>& candidates) {
  auto w = lower(word);
  // Short words tolerate one typo, longer ones two; anything further apart
  // is more likely a different word than a misspelling.
  size_t limit = w.size() < 5 ? 1 : 2;
  std::string best;
  size_t best_distance = limit + 1;
  for (auto& c : candidates) {
    auto d = edit_distance(w, lower(c));
    if (d < best_distance && d < std::max<size_t>(w.size(), 1)) {
      best = c;
      best_distance = d;
    }
  }
  return best;
}

} // namespace alb
