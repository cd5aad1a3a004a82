#include "report/monitor/exposition.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

namespace alb::report {

namespace {

// -- exposition parsing helpers -----------------------------------------------

bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'
         || c == ':';
}

bool is_name_char(char c) {
  return is_name_start(c) || (c >= '0' && c <= '9');
}

void skip_blanks(std::string_view s, std::size_t& i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t'))
    ++i;
}

std::optional<double> parse_number(std::string_view tok) {
  if (tok.empty())
    return std::nullopt;
  // from_chars takes no leading '+', but the format writes "+Inf".
  if (tok.front() == '+')
    tok.remove_prefix(1);
  double v = 0;
  auto [ptr, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), v);
  if (ec != std::errc{} || ptr != tok.data() + tok.size())
    return std::nullopt;
  return v;
}

// Parses one sample line; false when it is malformed.
bool parse_sample(std::string_view line, metric_sample& out) {
  std::size_t i = 0;
  skip_blanks(line, i);
  if (i >= line.size() || !is_name_start(line[i]))
    return false;
  auto start = i;
  while (i < line.size() && is_name_char(line[i]))
    ++i;
  out.name.assign(line.substr(start, i - start));
  out.labels.clear();
  if (i < line.size() && line[i] == '{') {
    ++i;
    for (;;) {
      skip_blanks(line, i);
      if (i < line.size() && line[i] == '}') {
        ++i;
        break;
      }
      auto ks = i;
      while (i < line.size() && is_name_char(line[i]))
        ++i;
      if (i == ks)
        return false;
      std::string key{line.substr(ks, i - ks)};
      skip_blanks(line, i);
      if (i >= line.size() || line[i] != '=')
        return false;
      ++i;
      skip_blanks(line, i);
      if (i >= line.size() || line[i] != '"')
        return false;
      ++i;
      std::string val;
      for (;;) {
        if (i >= line.size())
          return false;
        char c = line[i++];
        if (c == '"')
          break;
        if (c == '\\' && i < line.size()) {
          char e = line[i++];
          val += e == 'n' ? '\n' : e;
        } else {
          val += c;
        }
      }
      out.labels.emplace_back(std::move(key), std::move(val));
      skip_blanks(line, i);
      if (i < line.size() && line[i] == ',')
        ++i;
    }
  }
  if (i >= line.size() || (line[i] != ' ' && line[i] != '\t'))
    return false;
  skip_blanks(line, i);
  auto vs = i;
  while (i < line.size() && line[i] != ' ' && line[i] != '\t')
    ++i;
  auto v = parse_number(line.substr(vs, i - vs));
  if (!v)
    return false;
  out.value = *v;
  // An optional timestamp may follow; the dashboard has no use for it.
  skip_blanks(line, i);
  if (i < line.size()) {
    auto ts = line.substr(i);
    while (!ts.empty() && (ts.back() == ' ' || ts.back() == '\t'))
      ts.remove_suffix(1);
    if (!parse_number(ts))
      return false;
  }
  return true;
}

bool matches(const metric_sample& s, const label_match& match) {
  for (auto& [k, v] : match) {
    auto* have = s.label(k);
    if (!have || *have != v)
      return false;
  }
  return true;
}

} // namespace

const std::string* metric_sample::label(std::string_view key) const {
  for (auto& [k, v] : labels)
    if (k == key)
      return &v;
  return nullptr;
}

double metrics_snapshot::sum(std::string_view name,
                             const label_match& match) const {
  double total = 0;
  for (auto& s : samples)
    if (s.name == name && matches(s, match) && !std::isnan(s.value))
      total += s.value;
  return total;
}

std::vector<std::pair<double, double>>
metrics_snapshot::buckets(std::string_view name) const {
  std::vector<std::pair<double, double>> result;
  for (auto& x : samples) {
    if (x.name != name)
      continue;
    auto* le = x.label("le");
    if (!le)
      continue;
    if (auto bound = parse_number(*le))
      result.emplace_back(*bound, x.value);
  }
  std::sort(result.begin(), result.end());
  return result;
}

bool metrics_snapshot::has(std::string_view name) const {
  return std::any_of(samples.begin(), samples.end(),
                     [&](const metric_sample& s) { return s.name == name; });
}

bool metrics_snapshot::has_alb_metrics() const {
  return std::any_of(
    samples.begin(), samples.end(),
    [](const metric_sample& s) { return s.name.compare(0, 4, "alb_") == 0; });
}

metrics_snapshot parse_exposition(std::string_view text, double time) {
  metrics_snapshot result;
  result.time = time;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    auto nl = text.find('\n', pos);
    auto line
      = text.substr(pos, nl == std::string_view::npos ? text.npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
    if (!line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    std::size_t i = 0;
    skip_blanks(line, i);
    if (i == line.size() || line[i] == '#')
      continue;
    metric_sample s;
    if (parse_sample(line, s))
      result.samples.push_back(std::move(s));
    else
      ++result.malformed_lines;
  }
  return result;
}

std::optional<quantile_bucket>
histogram_quantile_bucket(double q,
                          std::vector<std::pair<double, double>> buckets) {
  if (buckets.empty() || std::isnan(q))
    return std::nullopt;
  std::sort(buckets.begin(), buckets.end());
  // Cumulative counts never fall; differences of two scrapes can, when a
  // bucket was scraped mid-update, so flatten them.
  for (std::size_t i = 1; i < buckets.size(); ++i)
    buckets[i].second = std::max(buckets[i].second, buckets[i - 1].second);
  auto total = buckets.back().second;
  if (!(total > 0))
    return std::nullopt;
  q = std::clamp(q, 0.0, 1.0);
  auto rank = q * total;
  std::size_t i = 0;
  // The first bucket whose cumulative count reaches the rank holds it
  // (a rank of 0 lies in the first non-empty bucket).
  while (i + 1 < buckets.size()
         && (buckets[i].second < rank || !(buckets[i].second > 0)))
    ++i;
  quantile_bucket result;
  result.upper = buckets[i].first;
  result.lower = i > 0 ? buckets[i - 1].first
                 : buckets[0].first > 0
                   ? 0.0
                   : -std::numeric_limits<double>::infinity();
  return result;
}

} // namespace alb::report
