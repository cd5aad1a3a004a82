#include "report/visualize.hpp"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <numeric>
#include <set>
#include <sstream>
#include <system_error>

extern char** environ;

namespace alb::report {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using point = std::pair<double, double>;
using series = std::vector<point>;

// -- small formatting helpers ------------------------------------------------

/// Formats `v` independent of the C locale (gnuplot reads '.' decimals).
std::string num(double v, int precision = 10) {
  if (!std::isfinite(v))
    return "0";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v,
                           std::chars_format::general, precision);
  return std::string(buf, res.ptr);
}

/// Formats `v` with a fixed number of decimals, locale-independent.
std::string fixed(double v, int decimals) {
  if (!std::isfinite(v))
    return "n/a";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::fixed,
                           decimals);
  return std::string(buf, res.ptr);
}

/// A short human-readable rendering of a measured value.
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

/// "1 worker", "20 workers", "strategy"/"strategies".
std::string count_of(double n, const char* singular, const char* plural) {
  return pretty(n) + " " + (n == 1 ? singular : plural);
}

/// Drops control characters so a string cannot break a line of a script,
/// data file or comment.
std::string printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7f) ? ' ' : c;
  }
  return out;
}

/// A gnuplot single-quoted string literal. Single quotes are the only quoting
/// in which gnuplot does no backquote (shell) substitution and no escape
/// processing, so data from the input file cannot run commands.
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

/// A gnuplot string expression of several lines.
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

/// A double-quoted string field for a gnuplot data file.
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

// -- reading the input -------------------------------------------------------

/// Python's json module writes NaN and Infinity for undefined metrics (the
/// original's files have them); read those tokens as null.
std::string nonfinite_to_null(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      out += c;
      if (c == '\\' && i + 1 < text.size())
        out += text[++i];
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
      out += c;
      continue;
    }
    auto at = [&](std::string_view tok) {
      return text.compare(i, tok.size(), tok) == 0;
    };
    if (at("NaN")) {
      out += "null";
      i += 2;
    } else if (at("-Infinity")) {
      out += "null";
      i += 8;
    } else if (at("Infinity")) {
      out += "null";
      i += 7;
    } else {
      out += c;
    }
  }
  return out;
}

json load_json(const fs::path& path) {
  const std::string name = path.string();
  std::error_code ec;
  auto st = fs::status(path, ec);
  if (ec || !fs::exists(st))
    fail(visualize_ec::input_unreadable, name + ": no such file");
  if (fs::is_directory(st))
    fail(visualize_ec::input_unreadable,
         name + ": is a directory, not a result file");
  std::ifstream in(path, std::ios::binary);
  if (!in)
    fail(visualize_ec::input_unreadable,
         name + ": cannot read: " + std::strerror(errno));
  std::string text{std::istreambuf_iterator<char>(in),
                   std::istreambuf_iterator<char>()};
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    auto repaired = nonfinite_to_null(text);
    if (repaired != text) {
      try {
        return json::parse(repaired);
      } catch (const json::parse_error&) {
        // report the original error below
      }
    }
    std::string msg = e.what();
    if (auto pos = msg.find("] ");
        msg.rfind("[json.exception", 0) == 0 && pos != std::string::npos)
      msg = msg.substr(pos + 2);
    fail(visualize_ec::malformed_json, name + ": malformed JSON: " + msg);
  }
}

std::optional<double> as_number(const json& j) {
  double v;
  if (j.is_number()) {
    v = j.get<double>();
  } else if (j.is_string()) {
    const auto& s = j.get_ref<const std::string&>();
    char* end = nullptr;
    v = std::strtod(s.c_str(), &end);
    if (s.empty() || end != s.c_str() + s.size())
      return std::nullopt;
  } else {
    return std::nullopt;
  }
  if (!std::isfinite(v))
    return std::nullopt;
  return v;
}

/// The first of `keys` that `obj` holds as a number.
std::optional<double> number_at(const json& obj,
                                std::initializer_list<const char*> keys) {
  if (!obj.is_object())
    return std::nullopt;
  for (auto key : keys)
    if (auto it = obj.find(key); it != obj.end())
      if (auto v = as_number(*it))
        return v;
  return std::nullopt;
}

using metric_map = std::map<std::string, double>;

metric_map numeric_fields(const json& obj) {
  metric_map out;
  for (auto it = obj.begin(); it != obj.end(); ++it)
    if (auto v = as_number(it.value()); v && !it.value().is_string())
      out.emplace(it.key(), *v);
  return out;
}

std::optional<double> metric(const metric_map& m, const char* key) {
  if (auto it = m.find(key); it != m.end())
    return it->second;
  return std::nullopt;
}

/// A load spike of a spike run.
struct spike_info {
  time_interval when;
  std::optional<double> tests;
};

/// A stress, scenario or spike run.
struct run_data {
  json configuration = json::object();
  metric_map metrics;
  series throughput, latency, queue_depth, workers;
  bool has_queue_depth = false, has_workers = false;
  std::vector<spike_info> spikes;
  /// True when `spikes` came from the file, false when detected.
  bool spikes_given = false;
  std::optional<double> initial_workers, final_workers;
};

/// One benchmark configuration run with one strategy.
struct bench_entry {
  double workers = 0;
  double tests = 0;
  std::string strategy;
  metric_map metrics;
};

/// A benchmark result.
struct bench_data {
  json configuration = json::object();
  std::vector<bench_entry> entries;
};

series parse_series(const json& j, const std::string& where,
                    const std::string& prefix) {
  series out;
  if (j.is_null())
    return out;
  if (!j.is_array())
    fail(visualize_ec::wrong_shape,
         prefix + "\"" + where + "\" is " + json_type(j)
           + ", expected a list of [seconds, value] pairs");
  for (const auto& e : j) {
    std::optional<double> t, v;
    if (e.is_array() && e.size() >= 2) {
      t = as_number(e[0]);
      v = as_number(e[1]);
    } else if (e.is_object()) {
      t = number_at(e, {"t", "time", "timestamp", "elapsed"});
      v = number_at(e, {"v", "value", "y"});
    }
    if (t && v)
      out.emplace_back(*t, *v);
  }
  std::stable_sort(out.begin(), out.end(), [](const point& a, const point& b) {
    return a.first < b.first;
  });
  return out;
}

const json* find_any(const json& obj, std::initializer_list<const char*> keys) {
  if (!obj.is_object())
    return nullptr;
  for (auto key : keys)
    if (auto it = obj.find(key); it != obj.end())
      return &*it;
  return nullptr;
}

run_data parse_run(const json& j, result_kind kind, const std::string& file) {
  const std::string prefix = file + ": not a " + to_string(kind) + " result: ";
  if (!j.is_object())
    fail(visualize_ec::wrong_shape,
         prefix + "expected a JSON object, found " + json_type(j));
  run_data r;
  auto m = j.find("metrics");
  if (m == j.end())
    fail(visualize_ec::wrong_shape, prefix + "missing \"metrics\"");
  if (!m->is_object())
    fail(visualize_ec::wrong_shape,
         prefix + "\"metrics\" is " + json_type(*m) + ", expected an object");
  r.metrics = numeric_fields(*m);
  if (auto c = j.find("configuration"); c != j.end() && c->is_object())
    r.configuration = *c;
  const json empty = json::object();
  const json* ts = &empty;
  if (auto it = j.find("time_series"); it != j.end() && !it->is_null()) {
    if (!it->is_object())
      fail(visualize_ec::wrong_shape, prefix + "\"time_series\" is "
                                        + json_type(*it)
                                        + ", expected an object");
    ts = &*it;
  }
  auto take = [&](std::initializer_list<const char*> keys, bool* present) {
    for (auto key : keys) {
      if (auto it = ts->find(key); it != ts->end()) {
        if (present)
          *present = true;
        return parse_series(*it, std::string("time_series.") + key, prefix);
      }
    }
    return series{};
  };
  r.throughput = take({"throughput"}, nullptr);
  r.latency = take({"latency"}, nullptr);
  r.queue_depth
    = take({"queue_depth", "queue_length", "pending"}, &r.has_queue_depth);
  r.workers
    = take({"workers", "worker_count", "active_workers"}, &r.has_workers);
  const json* spikes = find_any(j, {"spikes"});
  if (!spikes)
    spikes = find_any(*m, {"spikes"});
  if (spikes && !spikes->is_null()) {
    if (!spikes->is_array())
      fail(visualize_ec::wrong_shape, prefix + "\"spikes\" is "
                                        + json_type(*spikes)
                                        + ", expected a list");
    r.spikes_given = true;
    for (std::size_t i = 0; i < spikes->size(); ++i) {
      const auto& s = (*spikes)[i];
      auto where = "\"spikes[" + std::to_string(i) + "]\"";
      auto start = number_at(s, {"start", "start_time", "begin"});
      auto end = number_at(s, {"end", "end_time", "stop"});
      if (!start)
        fail(visualize_ec::wrong_shape,
             prefix + where + " has no numeric \"start\"");
      if (!end)
        fail(visualize_ec::wrong_shape,
             prefix + where + " has no numeric \"end\"");
      spike_info info;
      info.when = {std::min(*start, *end), std::max(*start, *end)};
      info.tests = number_at(s, {"tests", "test_count", "size"});
      r.spikes.push_back(info);
    }
  }
  for (const json* src : {static_cast<const json*>(&*m), &j,
                          static_cast<const json*>(&r.configuration)}) {
    if (!r.initial_workers)
      r.initial_workers = number_at(*src, {"initial_workers"});
    if (!r.final_workers)
      r.final_workers
        = number_at(*src, {"final_workers", "final_worker_count"});
  }
  // Absolute (epoch) timestamps: shift everything to seconds since start.
  double t0 = std::numeric_limits<double>::infinity();
  for (auto* s : {&r.throughput, &r.latency, &r.queue_depth, &r.workers})
    if (!s->empty())
      t0 = std::min(t0, s->front().first);
  if (std::isfinite(t0) && t0 > 1e8) {
    for (auto* s : {&r.throughput, &r.latency, &r.queue_depth, &r.workers})
      for (auto& p : *s)
        p.first -= t0;
    for (auto& s : r.spikes)
      if (s.when.start > 1e8) {
        s.when.start -= t0;
        s.when.end -= t0;
      }
  }
  if (kind == result_kind::spike && !r.spikes_given)
    for (auto& w : detect_spikes(r.throughput))
      r.spikes.push_back({w, std::nullopt});
  return r;
}

bench_data parse_bench(const json& j, const std::string& file) {
  const std::string prefix = file + ": not a benchmark result: ";
  bench_data b;
  const json* results = nullptr;
  if (j.is_array()) {
    results = &j;
  } else if (j.is_object()) {
    auto it = j.find("results");
    if (it == j.end())
      fail(visualize_ec::wrong_shape, prefix + "missing \"results\"");
    if (!it->is_array())
      fail(visualize_ec::wrong_shape,
           prefix + "\"results\" is " + json_type(*it) + ", expected a list");
    results = &*it;
    if (auto c = j.find("configuration"); c != j.end() && c->is_object())
      b.configuration = *c;
  } else {
    fail(visualize_ec::wrong_shape,
         prefix + "expected an object with \"results\" or a list, found "
           + json_type(j));
  }
  const std::string list = j.is_array() ? "entry" : "results";
  for (std::size_t i = 0; i < results->size(); ++i) {
    const auto& e = (*results)[i];
    auto where = "\"" + list + "[" + std::to_string(i) + "]\"";
    if (!e.is_object())
      fail(visualize_ec::wrong_shape,
           prefix + where + " is " + json_type(e) + ", expected an object");
    const json empty = json::object();
    const json& cfg = e.contains("configuration") ? e["configuration"] : empty;
    bench_entry be;
    auto field = [&](const char* key) {
      auto v = number_at(e, {key});
      if (!v)
        v = number_at(cfg, {key});
      if (!v)
        fail(visualize_ec::wrong_shape,
             prefix + where + " has no numeric \"" + key + "\"");
      return *v;
    };
    be.workers = field("workers");
    be.tests = field("tests");
    const json* strategy = find_any(e, {"strategy", "scheduler"});
    if (!strategy)
      strategy = find_any(cfg, {"strategy", "scheduler"});
    if (!strategy || !strategy->is_string())
      fail(visualize_ec::wrong_shape, prefix + where + " has no \"strategy\"");
    be.strategy = printable(strategy->get<std::string>());
    if (auto mt = e.find("metrics"); mt != e.end()) {
      if (!mt->is_object())
        fail(visualize_ec::wrong_shape, prefix + where + ".metrics is "
                                          + json_type(*mt)
                                          + ", expected an object");
      be.metrics = numeric_fields(*mt);
    } else {
      be.metrics = numeric_fields(e);
    }
    b.entries.push_back(std::move(be));
  }
  return b;
}

result_kind detect_kind(const json& j, const std::string& file) {
  if (j.is_array())
    return result_kind::benchmark;
  if (j.is_object()) {
    if (auto t = j.find("type"); t != j.end() && t->is_string())
      if (auto k = parse_result_kind(t->get<std::string>()))
        return *k;
    if (j.contains("results"))
      return result_kind::benchmark;
    if (j.contains("spikes"))
      return result_kind::spike;
    if (j.contains("metrics") || j.contains("time_series")
        || j.contains("configuration"))
      return result_kind::stress;
  }
  fail(visualize_ec::wrong_shape,
       file
         + ": cannot tell the result type: expected \"results\" "
           "(benchmark) or \"metrics\" and \"time_series\" (stress, "
           "spike); pass --type stress|benchmark|spike");
}

// -- chart building ----------------------------------------------------------

constexpr const char* palette[]
  = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
     "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
constexpr int palette_size = 10;
constexpr const char* spike_color = "#ff7f0e";

/// The data file of a chart: blocks separated by two blank lines, addressed
/// with `index N` in the script.
class data_file {
public:
  int add(const std::string& comment, const std::string& rows) {
    if (blocks_ > 0)
      text_ += "\n\n";
    text_ += "# index " + std::to_string(blocks_) + ": " + printable(comment)
             + "\n" + rows;
    return blocks_++;
  }

  const std::string& text() const { return text_; }

private:
  std::string text_;
  int blocks_ = 0;
};

struct chart_spec {
  std::string name;
  std::string title;
  std::string description;
  int width = 1200;
  int height = 700;
  data_file data;
  std::string body;
};

struct axis {
  double lo = 0;
  double hi = 1;
};

/// Settings every panel starts from (after `reset`).
std::string panel_reset() {
  return "reset\n"
         "set border 3 lw 1 lc rgb '#404040'\n"
         "set tics out nomirror\n"
         "set grid ytics lt 1 lw 1 lc rgb '#e4e4e4'\n"
         "set key noautotitle\n"
         "set title font ',12'\n";
}

std::string range(const char* name, axis a) {
  return std::string("set ") + name + " [" + num(a.lo) + ":" + num(a.hi)
         + "]\n";
}

/// A value axis starting at 0 (or below, for negative data) with headroom.
axis value_axis(double lo, double hi, double headroom = 1.12) {
  if (!std::isfinite(lo) || !std::isfinite(hi))
    return {0, 1};
  lo = std::min(lo, 0.0);
  if (hi <= lo)
    return {lo, lo + 1};
  return {lo < 0 ? lo * headroom : 0, hi > 0 ? hi * headroom : hi};
}

/// The time axis covering `lo..hi`; a single instant gets one second around it.
axis time_axis(double lo, double hi) {
  if (!std::isfinite(lo) || !std::isfinite(hi))
    return {0, 1};
  if (hi - lo < 1e-9) {
    // A single instant: centre it, without negative times where avoidable.
    double half = lo > 0 ? std::min(lo, 1.0) : 0.5;
    return {lo - half, lo + half};
  }
  return {lo, hi};
}

std::string no_data_panel(const std::string& title_expr,
                          const std::string& message) {
  std::string s = panel_reset();
  s += "set title " + title_expr
       + "\n"
         "set border 15 lw 1 lc rgb '#b0b0b0'\n"
         "unset tics\nunset grid\n"
         "set xrange [0:1]\nset yrange [0:1]\n"
         "set label 1 "
       + gp_str("No data: " + message)
       + " at graph 0.5, graph 0.5 center font ',13' tc rgb '#606060'\n"
         "plot NaN notitle\n";
  return s;
}

/// Which gnuplot style draws a series of `n` points: markers alone for one,
/// markers and lines for a few, plain lines for many.
std::string series_style(std::size_t n, bool steps, int pt = 7) {
  auto p = std::to_string(pt);
  if (n <= 1)
    return "points pt " + p + " ps 1.4";
  if (steps)
    return "steps lw 2";
  if (n <= 60)
    return "linespoints lw 2 pt " + p + " ps 0.6";
  return "lines lw 2";
}

/// Latency unit: milliseconds for sub-second latencies, else seconds.
struct unit {
  double scale;
  const char* name;
};

unit latency_unit(double max_seconds) {
  if (max_seconds > 0 && max_seconds < 1)
    return {1000, "ms"};
  return {1, "s"};
}

/// Data rows of a time series. Where samples are missing (a gap of more than
/// 1.5 sampling periods, e.g. buckets in which no test started) a blank line
/// breaks the plotted line instead of bridging the gap with a straight one.
std::string rows_of(const series& s, double scale = 1) {
  std::vector<double> gaps;
  for (std::size_t i = 1; i < s.size(); ++i)
    gaps.push_back(s[i].first - s[i - 1].first);
  double limit = std::numeric_limits<double>::infinity();
  if (gaps.size() >= 2) {
    std::nth_element(gaps.begin(), gaps.begin() + gaps.size() / 2, gaps.end());
    if (gaps[gaps.size() / 2] > 0)
      limit = gaps[gaps.size() / 2] * 1.5;
  }
  std::string rows;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i > 0 && s[i].first - s[i - 1].first > limit)
      rows += "\n";
    rows += num(s[i].first) + " " + num(s[i].second * scale) + "\n";
  }
  return rows;
}

/// A line of a time-series panel.
struct ts_line {
  int block;
  std::string title;
  int lt;
  std::size_t n;
  bool y2 = false;
  bool steps = false;
};

/// A horizontal reference line.
struct ts_hline {
  double y;
  std::string title;
  const char* color;
};

struct ts_panel {
  std::string title_expr;
  std::string ylabel;
  std::string y2label;
  axis x, y, y2;
  std::vector<ts_line> lines;
  std::vector<ts_hline> hlines;
  std::vector<spike_info> shade;
  /// Fixed left and right margins (characters) so stacked panels line up;
  /// negative means automatic.
  int margin = -1;
  /// The left and right axes count things (tests, workers): integer tics.
  bool y_counts = false;
  bool y2_counts = false;
};

/// Integer tics for a count axis whose range is too small for gnuplot's own
/// choice to stay integral.
std::string count_tics(const char* name, axis a) {
  if (a.hi - a.lo > 8)
    return "";
  return std::string("set ") + name + " 1\n";
}

std::string render_ts(const ts_panel& p) {
  std::string s = panel_reset();
  bool y2 = std::any_of(p.lines.begin(), p.lines.end(),
                        [](const ts_line& l) { return l.y2; });
  s += "set title " + p.title_expr + "\n";
  s += "set xlabel 'Time since start (s)'\n";
  s += "set ylabel " + gp_str(p.ylabel) + "\n";
  s += range("xrange", p.x) + range("yrange", p.y);
  if (y2) {
    s += "set border 11 lw 1 lc rgb '#404040'\n"
         "set y2tics out nomirror\nset ytics nomirror\n";
    s += "set y2label " + gp_str(p.y2label) + "\n" + range("y2range", p.y2);
    if (p.y2_counts)
      s += count_tics("y2tics", p.y2);
  }
  if (p.y_counts)
    s += count_tics("ytics", p.y);
  if (p.margin >= 0)
    s += "set lmargin " + std::to_string(p.margin) + "\nset rmargin "
         + std::to_string(p.margin) + "\n";
  if (p.lines.size() + p.hlines.size() + (p.shade.empty() ? 0 : 1) > 1)
    s += "set key below horizontal height 1.5\n";
  else
    s += "unset key\n";
  int obj = 1;
  for (const auto& sp : p.shade) {
    double a = sp.when.start, b = sp.when.end;
    if (b - a < (p.x.hi - p.x.lo) * 0.004) {
      double mid = (a + b) / 2, half = (p.x.hi - p.x.lo) * 0.002;
      a = mid - half;
      b = mid + half;
    }
    s += "set object " + std::to_string(obj) + " rect from " + num(a)
         + ", graph 0 to " + num(b) + ", graph 1 behind fc rgb '" + spike_color
         + "' fs transparent solid 0.18 noborder\n";
    if (p.shade.size() <= 8) {
      // Centred over the band, but kept inside the plot near its edges.
      double mid = (sp.when.start + sp.when.end) / 2;
      double frac = (mid - p.x.lo) / (p.x.hi - p.x.lo);
      std::string at = num(mid) + ", graph 0.97 center";
      if (frac < 0.04)
        at = "graph 0.005, graph 0.97 left";
      else if (frac > 0.96)
        at = "graph 0.995, graph 0.97 right";
      s += "set label " + std::to_string(obj) + " "
           + gp_str("spike " + std::to_string(obj)) + " at " + at
           + " front font ',9' tc rgb '#a04a00'\n";
    }
    ++obj;
  }
  std::vector<std::string> items;
  for (const auto& l : p.lines)
    items.push_back("data index " + std::to_string(l.block) + " using 1:2"
                    + (l.y2 ? " axes x1y2" : "") + " with "
                    + series_style(l.n, l.steps) + " lt " + std::to_string(l.lt)
                    + " title " + gp_str(l.title));
  for (const auto& h : p.hlines)
    items.push_back(num(h.y) + " with lines dt 2 lw 1.5 lc rgb '" + h.color
                    + "' title " + gp_str(h.title));
  if (!p.shade.empty())
    items.push_back(std::string("keyentry with boxes fc rgb '") + spike_color
                    + "' fs transparent solid 0.18 noborder title 'spike'");
  s += "plot ";
  for (std::size_t i = 0; i < items.size(); ++i)
    s += (i ? ", \\\n     " : "") + items[i];
  s += "\n";
  return s;
}

/// A bar of a bar panel.
struct bar {
  std::string label;
  double value;
  std::string text;
};

/// Category tic labels; rotated when they would not fit side by side in
/// `width_px` pixels.
std::string category_tics(const std::vector<std::string>& names,
                          double width_px, const char* axis_name = "xtics") {
  std::size_t chars = 0;
  for (const auto& n : names)
    chars += n.size() + 2;
  bool rotate = static_cast<double>(chars) * 7.5 > width_px;
  std::string s = std::string("set ") + axis_name + " (";
  for (std::size_t i = 0; i < names.size(); ++i)
    s += (i ? ", " : "") + gp_str(names[i]) + " " + std::to_string(i);
  s += ")";
  s += rotate ? " rotate by 30 right\n" : " norotate\n";
  return s;
}

std::string bar_panel(data_file& data, const std::string& title_expr,
                      const std::string& ylabel, const std::vector<bar>& bars,
                      double width_px, int first_color = 0) {
  if (bars.empty())
    return no_data_panel(title_expr, "no such metrics in the file");
  std::string rows;
  double lo = 0, hi = 0;
  for (std::size_t i = 0; i < bars.size(); ++i) {
    rows += std::to_string(i) + " " + num(bars[i].value) + " "
            + dat_str(bars[i].text) + " "
            + std::to_string((first_color + i) % palette_size + 1) + "\n";
    lo = std::min(lo, bars[i].value);
    hi = std::max(hi, bars[i].value);
  }
  int b = data.add(printable(ylabel) + ": position value label colour", rows);
  std::vector<std::string> names;
  for (const auto& x : bars)
    names.push_back(x.label);
  std::string s = panel_reset();
  s += "set title " + title_expr + "\n";
  s += "set ylabel " + gp_str(ylabel) + "\n";
  s += range("xrange", {-0.6, static_cast<double>(bars.size()) - 0.4});
  s += range("yrange", value_axis(lo, hi, 1.18));
  s += category_tics(names, width_px);
  s += "set xtics scale 0\n";
  s += "set boxwidth 0.6\nset style fill solid 0.85 noborder\n";
  s += "plot data index " + std::to_string(b)
       + " using 1:2:4 with boxes lc variable notitle, \\\n"
         "     data index "
       + std::to_string(b)
       + " using 1:2:3 with labels offset 0,0.8 font ',9' notitle\n";
  return s;
}

// -- stress and spike charts --------------------------------------------------

std::string config_text(const json& c, const json& fallback) {
  if (!c.is_object())
    return "";
  std::vector<std::string> parts;
  auto str = [&](const char* key) -> std::string {
    const json* v = find_any(c, {key});
    if (!v)
      v = find_any(fallback, {key});
    if (!v)
      return "";
    if (v->is_string())
      return printable(v->get<std::string>());
    if (auto n = as_number(*v))
      return pretty(*n);
    return "";
  };
  for (auto key : {"scenario", "name"})
    if (auto v = str(key); !v.empty()) {
      parts.push_back("scenario " + v);
      break;
    }
  if (auto v = str("workers"); !v.empty())
    parts.push_back(v + (v == "1" ? " worker" : " workers"));
  if (auto v = str("tests"); !v.empty())
    parts.push_back(v + (v == "1" ? " test" : " tests"));
  if (auto v = str("duration"); !v.empty())
    parts.push_back(v + " s");
  if (auto v = str("strategy"); !v.empty())
    parts.push_back(v);
  if (c.value("burst_mode", false))
    parts.push_back("burst");
  if (c.value("dynamic_workers", false))
    parts.push_back("dynamic workers");
  if (auto v = str("timestamp"); !v.empty())
    parts.push_back("run " + v.substr(0, 19));
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i)
    out += (i ? ", " : "") + parts[i];
  return out;
}

double max_value(const series& s) {
  double m = 0;
  for (const auto& p : s)
    m = std::max(m, p.second);
  return m;
}

double min_value(const series& s) {
  double m = 0;
  for (const auto& p : s)
    m = std::min(m, p.second);
  return m;
}

struct stress_context {
  const run_data& run;
  std::string file;
  std::string subtitle;
  unit lat;
};

unit run_latency_unit(const run_data& r) {
  double m = max_value(r.latency);
  for (auto key : {"max_latency", "p99_latency", "avg_latency"})
    if (auto v = metric(r.metrics, key))
      m = std::max(m, *v);
  return latency_unit(m);
}

/// The time axis shared by a run's panels, so panels line up.
axis run_time_axis(const run_data& r) {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -lo;
  for (auto* s : {&r.throughput, &r.latency, &r.queue_depth, &r.workers})
    if (!s->empty()) {
      lo = std::min(lo, s->front().first);
      hi = std::max(hi, s->back().first);
    }
  for (const auto& sp : r.spikes) {
    lo = std::min(lo, sp.when.start);
    hi = std::max(hi, sp.when.end);
  }
  return time_axis(lo, hi);
}

std::string latency_panel(data_file& data, const stress_context& c,
                          const std::string& title_expr, bool shade) {
  const auto& r = c.run;
  if (r.latency.empty())
    return no_data_panel(title_expr,
                         "the latency time series is empty or missing");
  ts_panel p;
  p.title_expr = title_expr;
  p.ylabel = std::string("Latency (") + c.lat.name + ")";
  p.x = run_time_axis(r);
  int b = data.add(std::string("latency: seconds latency_") + c.lat.name,
                   rows_of(r.latency, c.lat.scale));
  p.lines.push_back({b, "latency", 1, r.latency.size()});
  double hi = max_value(r.latency) * c.lat.scale;
  struct ref {
    const char* key;
    const char* label;
    const char* color;
  };
  for (auto [key, label, color] : {ref{"p50_latency", "p50", "#2ca02c"},
                                   ref{"p95_latency", "p95", "#ff7f0e"},
                                   ref{"p99_latency", "p99", "#d62728"}}) {
    if (auto v = metric(r.metrics, key)) {
      double y = *v * c.lat.scale;
      p.hlines.push_back(
        {y, std::string(label) + " " + pretty(y) + " " + c.lat.name, color});
      hi = std::max(hi, y);
    }
  }
  p.y = value_axis(min_value(r.latency) * c.lat.scale, hi);
  if (shade) {
    p.shade = r.spikes;
    p.margin = 11;
  }
  return render_ts(p);
}

std::string throughput_panel(data_file& data, const stress_context& c,
                             const std::string& title_expr, bool shade,
                             bool with_workers) {
  const auto& r = c.run;
  if (r.throughput.empty())
    return no_data_panel(title_expr,
                         "the throughput time series is empty or missing");
  ts_panel p;
  p.title_expr = title_expr;
  p.ylabel = "Throughput (tests/s)";
  p.x = run_time_axis(r);
  int b
    = data.add("throughput: seconds tests_per_second", rows_of(r.throughput));
  p.lines.push_back({b, "throughput", 1, r.throughput.size()});
  double hi = max_value(r.throughput);
  auto avg = metric(r.metrics, "avg_throughput");
  if (!avg) {
    double sum = 0;
    for (const auto& pt : r.throughput)
      sum += pt.second;
    avg = sum / static_cast<double>(r.throughput.size());
  }
  p.hlines.push_back({*avg, "average " + pretty(*avg) + " tests/s", "#7f7f7f"});
  hi = std::max(hi, *avg);
  p.y = value_axis(min_value(r.throughput), hi);
  if (with_workers && !r.workers.empty()) {
    int w = data.add("workers: seconds active_workers", rows_of(r.workers));
    p.lines.push_back(
      {w, "active workers (right axis)", 3, r.workers.size(), true, true});
    p.y2label = "Workers";
    p.y2_counts = true;
    p.y2 = value_axis(min_value(r.workers), max_value(r.workers), 1.25);
  }
  if (shade) {
    p.shade = r.spikes;
    p.margin = 11;
  }
  return render_ts(p);
}

std::string simple_ts_panel(data_file& data, const stress_context& c,
                            const series& s, const std::string& title_expr,
                            const std::string& what, const std::string& ylabel,
                            int lt, bool steps) {
  if (s.empty())
    return no_data_panel(title_expr, "the " + what + " time series is empty");
  ts_panel p;
  p.title_expr = title_expr;
  p.ylabel = ylabel;
  p.x = run_time_axis(c.run);
  int b = data.add(what + ": seconds value", rows_of(s));
  p.lines.push_back({b, what, lt, s.size(), false, steps});
  p.y_counts = true;
  p.y = value_axis(min_value(s), max_value(s), 1.2);
  return render_ts(p);
}

std::vector<bar> latency_bars(const stress_context& c) {
  std::vector<bar> out;
  struct item {
    const char* key;
    const char* label;
  };
  for (auto [key, label] :
       {item{"min_latency", "min"}, item{"avg_latency", "avg"},
        item{"p50_latency", "p50"}, item{"p95_latency", "p95"},
        item{"p99_latency", "p99"}, item{"max_latency", "max"}})
    if (auto v = metric(c.run.metrics, key))
      out.push_back(
        {label, *v * c.lat.scale, pretty(*v * c.lat.scale) + " " + c.lat.name});
  return out;
}

std::vector<bar> outcome_bars(const run_data& r) {
  std::vector<bar> out;
  struct item {
    const char* key;
    const char* label;
  };
  for (auto [key, label] :
       {item{"total_tests", "total"}, item{"completed_tests", "completed"},
        item{"failed_tests", "failed"}, item{"retried_tests", "retried"},
        item{"requeued_tests", "requeued"}, item{"migrated_tests", "migrated"},
        item{"pending_tests", "pending"}})
    if (auto v = metric(r.metrics, key))
      out.push_back({label, *v, pretty(*v)});
  return out;
}

double as_percent(double v) {
  return v >= 0 && v <= 1.0 ? v * 100 : v;
}

std::vector<bar> rate_bars(const run_data& r) {
  std::vector<bar> out;
  if (auto v = metric(r.metrics, "success_rate"))
    out.push_back({"success rate", *v, fixed(*v, 1) + " %"});
  if (auto v = metric(r.metrics, "worker_utilization")) {
    double pct = as_percent(*v);
    out.push_back({"worker utilization", pct, fixed(pct, 1) + " %"});
  }
  return out;
}

std::vector<bar> throughput_bars(const run_data& r) {
  std::vector<bar> out;
  if (auto v = metric(r.metrics, "avg_throughput"))
    out.push_back({"average", *v, pretty(*v) + " tests/s"});
  if (auto v = metric(r.metrics, "peak_throughput"))
    out.push_back({"peak", *v, pretty(*v) + " tests/s"});
  return out;
}

std::string extra_metrics_line(const run_data& r) {
  std::vector<std::string> parts;
  if (auto v = metric(r.metrics, "makespan"))
    parts.push_back("makespan " + pretty(*v) + " s");
  if (r.initial_workers && r.final_workers)
    parts.push_back("workers " + pretty(*r.initial_workers) + " -> "
                    + pretty(*r.final_workers));
  else if (auto v = metric(r.metrics, "final_worker_count"))
    parts.push_back("final workers " + pretty(*v));
  if (auto v = metric(r.metrics, "worker_assignment_stddev"))
    parts.push_back("assignment stddev " + pretty(*v));
  if (auto v = metric(r.metrics, "worker_assignment_range"))
    parts.push_back("assignment range " + pretty(*v));
  if (auto v = metric(r.metrics, "avg_scheduling_attempts"))
    parts.push_back("scheduling attempts " + pretty(*v));
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i)
    out += (i ? ", " : "") + parts[i];
  return out;
}

chart_spec summary_chart(const stress_context& c, const std::string& kind) {
  chart_spec ch;
  ch.name = "summary";
  ch.title = "Performance summary";
  ch.description = "Key metrics of the run: latency, throughput, test outcomes "
                   "and rates.";
  ch.width = 1400;
  ch.height = 950;
  const auto& r = c.run;
  ch.body
    = "set multiplot layout 2,2 title "
      + gp_lines({"Performance summary (" + kind + " run, " + c.file + ")",
                  c.subtitle, extra_metrics_line(r)})
      + " font ',13'\n";
  const double w = ch.width / 2.0 - 120;
  ch.body += bar_panel(ch.data, "'Latency'",
                       std::string("Latency (") + c.lat.name + ")",
                       latency_bars(c), w, 0);
  ch.body += bar_panel(ch.data, "'Throughput'", "Throughput (tests/s)",
                       throughput_bars(r), w, 2);
  ch.body
    += bar_panel(ch.data, "'Test outcomes'", "Tests", outcome_bars(r), w, 4);
  auto rates = rate_bars(r);
  std::string rates_panel
    = bar_panel(ch.data, "'Rates'", "Percent (%)", rates, w, 8);
  ch.body += rates_panel;
  ch.body += "unset multiplot\n";
  return ch;
}

chart_spec latency_chart(const stress_context& c, const std::string& kind) {
  chart_spec ch;
  ch.name = "latency";
  ch.title = "Latency over time";
  ch.description = "Scheduling latency (a test's wait from submission to "
                   "start, mean per time bucket) over the run, with the "
                   "p50/p95/p99 of the whole run as dashed lines.";
  ch.body = latency_panel(
    ch.data, c,
    gp_lines(
      {"Latency over time (" + kind + " run, " + c.file + ")", c.subtitle}),
    false);
  return ch;
}

chart_spec throughput_chart(const stress_context& c, const std::string& kind) {
  chart_spec ch;
  ch.name = "throughput";
  ch.title = "Throughput over time";
  ch.description = "Completed tests per second over the run, with the average "
                   "and (when recorded) the number of active workers.";
  ch.body = throughput_panel(
    ch.data, c,
    gp_lines(
      {"Throughput over time (" + kind + " run, " + c.file + ")", c.subtitle}),
    false, true);
  return ch;
}

chart_spec dashboard_chart(const stress_context& c) {
  chart_spec ch;
  ch.name = "dashboard";
  ch.title = "Dashboard";
  ch.description = "All of the run on one sheet: throughput, latency, queue "
                   "depth, workers and the key metrics.";
  const auto& r = c.run;
  int panels = 4 + (r.has_queue_depth ? 1 : 0) + (r.has_workers ? 1 : 0);
  int rows = (panels + 1) / 2;
  ch.width = 1600;
  ch.height = 120 + rows * 400;
  ch.body = "set multiplot layout " + std::to_string(rows) + ",2 title "
            + gp_lines({"Stress run dashboard (" + c.file + ")", c.subtitle,
                        extra_metrics_line(r)})
            + " font ',13'\n";
  ch.body += throughput_panel(ch.data, c, "'Throughput'", false, false);
  ch.body += latency_panel(ch.data, c, "'Latency'", false);
  if (r.has_queue_depth)
    ch.body += simple_ts_panel(ch.data, c, r.queue_depth, "'Queue depth'",
                               "queue depth", "Queued tests", 4, false);
  if (r.has_workers)
    ch.body += simple_ts_panel(ch.data, c, r.workers, "'Active workers'",
                               "workers", "Workers", 3, true);
  const double w = ch.width / 2.0 - 120;
  ch.body += bar_panel(ch.data, "'Latency summary'",
                       std::string("Latency (") + c.lat.name + ")",
                       latency_bars(c), w, 0);
  ch.body
    += bar_panel(ch.data, "'Test outcomes'", "Tests", outcome_bars(r), w, 4);
  ch.body += "unset multiplot\n";
  return ch;
}

chart_spec spike_timeline_chart(const stress_context& c) {
  chart_spec ch;
  ch.name = "timeline";
  ch.title = "Throughput and latency during spikes";
  ch.description = "Throughput (top) and latency (bottom) over the run; "
                   "shaded bands are the load spikes.";
  ch.width = 1400;
  ch.height = 1000;
  const auto& r = c.run;
  std::string how;
  if (r.spikes.empty())
    how = r.spikes_given ? "no spikes in the file"
                         : "no spikes detected (throughput never above mean "
                           "+ 2 sd)";
  else if (r.spikes_given)
    how = count_of(static_cast<double>(r.spikes.size()), "spike", "spikes")
          + " from the file";
  else
    how = count_of(static_cast<double>(r.spikes.size()), "spike", "spikes")
          + " detected: throughput above mean + 2 sd";
  std::string spikes_line;
  for (std::size_t i = 0; i < r.spikes.size() && i < 6; ++i) {
    const auto& sp = r.spikes[i];
    spikes_line += (i ? ", " : "") + std::string("spike ")
                   + std::to_string(i + 1) + ": "
                   + (sp.when.end > sp.when.start
                        ? pretty(sp.when.start) + "-" + pretty(sp.when.end)
                        : "at " + pretty(sp.when.start))
                   + " s";
    if (sp.tests)
      spikes_line += " (" + count_of(*sp.tests, "test", "tests") + ")";
  }
  if (r.spikes.size() > 6)
    spikes_line += ", ...";
  ch.body = "set multiplot layout 2,1 title "
            + gp_lines(
              {"Spike run: throughput and latency over time (" + c.file + ")",
               c.subtitle, how, spikes_line})
            + " font ',13'\n";
  ch.body += throughput_panel(ch.data, c, "'Throughput'", true, true);
  ch.body += latency_panel(ch.data, c, "'Latency'", true);
  ch.body += "unset multiplot\n";
  return ch;
}

bool in_spike(double t, const std::vector<spike_info>& spikes) {
  for (const auto& s : spikes)
    if (t >= s.when.start && t <= s.when.end)
      return true;
  return false;
}

chart_spec spike_correlation_chart(const stress_context& c) {
  chart_spec ch;
  ch.name = "correlation";
  ch.title = "Throughput vs latency";
  ch.description = "Each point pairs the throughput and latency sampled at the "
                   "same time; points inside spikes are highlighted.";
  const auto& r = c.run;
  // Pair samples by time: each throughput sample with the nearest latency
  // sample, within half the typical sampling period.
  std::vector<double> gaps;
  for (std::size_t i = 1; i < r.latency.size(); ++i)
    gaps.push_back(r.latency[i].first - r.latency[i - 1].first);
  double tol = 0.5;
  if (!gaps.empty()) {
    std::nth_element(gaps.begin(), gaps.begin() + gaps.size() / 2, gaps.end());
    tol = std::max(gaps[gaps.size() / 2] / 2, 1e-9);
  }
  struct pair_pt {
    double t, thr, lat;
  };
  std::vector<pair_pt> pairs;
  for (const auto& [t, thr] : r.throughput) {
    auto it
      = std::lower_bound(r.latency.begin(), r.latency.end(), t,
                         [](const point& p, double x) { return p.first < x; });
    const point* best = nullptr;
    if (it != r.latency.end())
      best = &*it;
    if (it != r.latency.begin()) {
      auto prev = std::prev(it);
      if (!best || t - prev->first < best->first - t)
        best = &*prev;
    }
    if (best && std::fabs(best->first - t) <= tol + 1e-9)
      pairs.push_back({t, thr, best->second * c.lat.scale});
  }
  std::string title = gp_lines(
    {"Throughput vs latency (spike run, " + c.file + ")", c.subtitle});
  if (pairs.empty()) {
    ch.body = no_data_panel(title, "no throughput and latency samples at the "
                                   "same times");
    return ch;
  }
  std::string base_rows, spike_rows;
  double xmax = 0, ymax = 0, xmin = 0, ymin = 0;
  for (const auto& p : pairs) {
    auto row = num(p.thr) + " " + num(p.lat) + " " + num(p.t) + "\n";
    (in_spike(p.t, r.spikes) ? spike_rows : base_rows) += row;
    xmax = std::max(xmax, p.thr);
    ymax = std::max(ymax, p.lat);
    xmin = std::min(xmin, p.thr);
    ymin = std::min(ymin, p.lat);
  }
  // Least-squares line and Pearson correlation.
  double n = static_cast<double>(pairs.size());
  double mx = 0, my = 0;
  for (const auto& p : pairs) {
    mx += p.thr / n;
    my += p.lat / n;
  }
  double sxx = 0, syy = 0, sxy = 0;
  for (const auto& p : pairs) {
    sxx += (p.thr - mx) * (p.thr - mx);
    syy += (p.lat - my) * (p.lat - my);
    sxy += (p.thr - mx) * (p.lat - my);
  }
  std::string s = panel_reset();
  std::string rtext = "correlation: n/a";
  bool fit = pairs.size() >= 3 && sxx > 0 && syy > 0;
  if (fit)
    rtext = "Pearson r = " + fixed(sxy / std::sqrt(sxx * syy), 2)
            + ", n = " + std::to_string(pairs.size());
  else
    rtext += " (n = " + std::to_string(pairs.size()) + ")";
  s += "set title "
       + gp_lines({"Throughput vs latency (spike run, " + c.file + ")",
                   c.subtitle, rtext})
       + "\n";
  s += "set xlabel 'Throughput (tests/s)'\n";
  s += std::string("set ylabel 'Latency (") + c.lat.name + ")'\n";
  axis xa = value_axis(xmin, xmax);
  axis ya = value_axis(ymin, ymax);
  s += range("xrange", xa) + range("yrange", ya);
  s += "set grid xtics ytics lt 1 lw 1 lc rgb '#e4e4e4'\n";
  s += "set key below horizontal height 1.5\n";
  std::vector<std::string> items;
  if (!base_rows.empty()) {
    int b = ch.data.add("outside spikes: tests_per_second latency seconds",
                        base_rows);
    items.push_back("data index " + std::to_string(b)
                    + " using 1:2 with points pt 7 ps 1.1 lc rgb '#1f77b4' "
                      "title 'outside spikes'");
  }
  if (!spike_rows.empty()) {
    int b = ch.data.add("inside spikes: tests_per_second latency seconds",
                        spike_rows);
    items.push_back("data index " + std::to_string(b)
                    + " using 1:2 with points pt 5 ps 1.2 lc rgb '"
                    + spike_color + "' title 'inside spikes'");
  }
  if (fit) {
    double slope = sxy / sxx;
    double icpt = my - slope * mx;
    items.push_back(num(slope) + "*x + " + num(icpt)
                    + " with lines dt 2 lw 1.5 lc rgb '#404040' title "
                      "'least-squares fit'");
  }
  s += "plot ";
  for (std::size_t i = 0; i < items.size(); ++i)
    s += (i ? ", \\\n     " : "") + items[i];
  s += "\n";
  ch.body = s;
  return ch;
}

std::vector<chart_spec> run_charts(const run_data& r, result_kind kind,
                                   const std::string& file) {
  stress_context c{r, file, config_text(r.configuration, json::object()),
                   run_latency_unit(r)};
  std::vector<chart_spec> out;
  if (kind == result_kind::spike) {
    out.push_back(spike_timeline_chart(c));
    out.push_back(spike_correlation_chart(c));
    out.push_back(summary_chart(c, "spike"));
  } else {
    out.push_back(summary_chart(c, "stress"));
    out.push_back(latency_chart(c, "stress"));
    out.push_back(throughput_chart(c, "stress"));
    out.push_back(dashboard_chart(c));
  }
  return out;
}

// -- benchmark charts ---------------------------------------------------------

std::optional<double> entry_throughput(const bench_entry& e) {
  if (auto v = metric(e.metrics, "avg_throughput"))
    return v;
  auto span = metric(e.metrics, "makespan");
  auto done = metric(e.metrics, "completed_tests");
  if (!done)
    done = metric(e.metrics, "total_tests");
  if (span && done && *span > 0)
    return *done / *span;
  return std::nullopt;
}

std::optional<double> entry_utilization(const bench_entry& e) {
  if (auto v = metric(e.metrics, "worker_utilization"))
    return as_percent(*v);
  return std::nullopt;
}

/// Mean of `get` over the entries of `strategy`, grouped by `key`.
template<class Key, class Get>
std::map<double, double> mean_by(const std::vector<bench_entry>& entries,
                                 const std::string& strategy, Key key,
                                 Get get) {
  std::map<double, std::pair<double, int>> acc;
  for (const auto& e : entries)
    if (e.strategy == strategy)
      if (auto v = get(e)) {
        auto& a = acc[key(e)];
        a.first += *v;
        a.second += 1;
      }
  std::map<double, double> out;
  for (const auto& [k, a] : acc)
    out[k] = a.first / a.second;
  return out;
}

template<class Get>
std::optional<double> mean_of(const std::vector<bench_entry>& entries,
                              const std::string& strategy, Get get) {
  double sum = 0;
  int n = 0;
  for (const auto& e : entries)
    if (e.strategy == strategy)
      if (auto v = get(e)) {
        sum += *v;
        ++n;
      }
  if (n == 0)
    return std::nullopt;
  return sum / n;
}

struct bench_context {
  const bench_data& bench;
  std::string file;
  std::string subtitle;
  std::vector<std::string> strategies; // in order of first appearance
  std::vector<double> workers;         // sorted distinct
  std::vector<double> tests;           // sorted distinct
};

std::string values_text(const std::vector<double>& v) {
  std::string s;
  for (std::size_t i = 0; i < v.size(); ++i)
    s += (i ? ", " : "") + pretty(v[i]);
  return s;
}

/// Numeric x axis over `values`: log scale when they span a decade or more,
/// tics at the values themselves when there are few.
std::string numeric_x_axis(const std::vector<double>& values,
                           const std::string& label) {
  std::string s = "set xlabel " + gp_str(label) + "\n";
  double lo = values.front(), hi = values.back();
  bool log = lo > 0 && hi / lo >= 10;
  if (log) {
    s += "set logscale x\n";
    s += range("xrange", {lo / 1.25, hi * 1.25});
  } else if (hi - lo < 1e-9) {
    s += range("xrange", {lo - 1, hi + 1});
  } else {
    double pad = (hi - lo) * 0.05;
    s += range("xrange", {lo - pad, hi + pad});
  }
  if (values.size() <= 12) {
    s += "set xtics (";
    for (std::size_t i = 0; i < values.size(); ++i)
      s += (i ? ", " : "") + num(values[i]);
    s += ")\n";
  }
  return s;
}

std::string strategy_style(std::size_t i) {
  return "lt " + std::to_string(i % palette_size + 1) + " dt "
         + std::to_string(i / palette_size % 5 + 1);
}

std::string bench_title(const bench_context& c, const std::string& what,
                        const std::string& extra = "") {
  return gp_lines({what + " (benchmark, " + c.file + ")", c.subtitle, extra});
}

std::string averaging_note(const bench_context& c, bool over_tests) {
  const auto& v = over_tests ? c.tests : c.workers;
  if (v.size() <= 1)
    return "";
  return std::string("mean over ")
         + (over_tests ? "test counts " : "worker counts ") + values_text(v);
}

chart_spec bench_throughput_chart(const bench_context& c) {
  chart_spec ch;
  ch.name = "throughput";
  ch.title = "Throughput vs workers";
  ch.description = "Average throughput of each strategy as the number of "
                   "workers grows.";
  std::string title = bench_title(c, "Throughput vs workers per strategy",
                                  averaging_note(c, true));
  std::string s = panel_reset();
  std::vector<std::string> items;
  double hi = 0;
  for (std::size_t i = 0; i < c.strategies.size(); ++i) {
    auto pts = mean_by(
      c.bench.entries, c.strategies[i],
      [](const bench_entry& e) { return e.workers; }, entry_throughput);
    if (pts.empty())
      continue;
    std::string rows;
    for (const auto& [w, v] : pts) {
      rows += num(w) + " " + num(v) + "\n";
      hi = std::max(hi, v);
    }
    int b = ch.data.add(c.strategies[i] + ": workers tests_per_second", rows);
    items.push_back("data index " + std::to_string(b) + " using 1:2 with "
                    + series_style(pts.size(), false) + " " + strategy_style(i)
                    + " title " + gp_str(c.strategies[i]));
  }
  if (items.empty()) {
    ch.body = no_data_panel(title, c.bench.entries.empty()
                                     ? "the file has no benchmark results"
                                     : "no throughput in the results");
    return ch;
  }
  s += "set title " + title + "\n";
  s += numeric_x_axis(c.workers, "Workers");
  s += "set ylabel 'Throughput (tests/s)'\n";
  s += range("yrange", value_axis(0, hi));
  s += "set key outside right top vertical\n";
  s += "plot ";
  for (std::size_t i = 0; i < items.size(); ++i)
    s += (i ? ", \\\n     " : "") + items[i];
  s += "\n";
  ch.body = s;
  return ch;
}

chart_spec bench_latency_chart(const bench_context& c) {
  chart_spec ch;
  ch.name = "latency";
  ch.title = "Latency scaling";
  // Scale against the test count when the benchmark varies it, else workers.
  bool vs_tests = c.tests.size() > 1;
  ch.description = std::string("Median and tail latency of each strategy as "
                               "the number of ")
                   + (vs_tests ? "tests" : "workers") + " grows.";
  bool have_p50 = false, have_p99 = false;
  for (const auto& e : c.bench.entries) {
    have_p50 = have_p50 || metric(e.metrics, "p50_latency").has_value();
    have_p99 = have_p99 || metric(e.metrics, "p99_latency").has_value();
  }
  const char* k_low = have_p50 ? "p50_latency" : "avg_latency";
  const char* k_high = have_p99 ? "p99_latency" : "max_latency";
  std::string n_low = have_p50 ? "p50" : "average";
  std::string n_high = have_p99 ? "p99" : "max";
  double top = 0;
  for (const auto& e : c.bench.entries)
    for (auto k : {k_low, k_high})
      if (auto v = metric(e.metrics, k))
        top = std::max(top, *v);
  unit u = latency_unit(top);
  std::string title = bench_title(c,
                                  "Latency scaling: " + n_low + " and " + n_high
                                    + " vs " + (vs_tests ? "tests" : "workers"),
                                  averaging_note(c, !vs_tests));
  std::vector<std::string> items;
  double hi = 0;
  auto key = [vs_tests](const bench_entry& e) {
    return vs_tests ? e.tests : e.workers;
  };
  for (std::size_t i = 0; i < c.strategies.size(); ++i) {
    for (int which = 0; which < 2; ++which) {
      const char* k = which == 0 ? k_low : k_high;
      auto pts
        = mean_by(c.bench.entries, c.strategies[i], key,
                  [k](const bench_entry& e) { return metric(e.metrics, k); });
      if (pts.empty())
        continue;
      std::string rows;
      for (const auto& [x, v] : pts) {
        rows += num(x) + " " + num(v * u.scale) + "\n";
        hi = std::max(hi, v * u.scale);
      }
      int b = ch.data.add(c.strategies[i] + " " + (which ? n_high : n_low)
                            + ": " + (vs_tests ? "tests" : "workers")
                            + " latency_" + u.name,
                          rows);
      items.push_back("data index " + std::to_string(b) + " using 1:2 with "
                      + series_style(pts.size(), false, which ? 6 : 7) + " lt "
                      + std::to_string(i % palette_size + 1) + " dt "
                      + (which ? "2" : "1") + " title "
                      + (which ? std::string("''") : gp_str(c.strategies[i])));
    }
  }
  if (items.empty()) {
    ch.body = no_data_panel(title, c.bench.entries.empty()
                                     ? "the file has no benchmark results"
                                     : "no latency metrics in the results");
    return ch;
  }
  items.push_back("keyentry with linespoints lc rgb '#404040' lw 2 dt 1 pt 7 "
                  "title "
                  + gp_str(n_low + " (solid)"));
  items.push_back("keyentry with linespoints lc rgb '#404040' lw 2 dt 2 pt 6 "
                  "title "
                  + gp_str(n_high + " (dashed)"));
  std::string s = panel_reset();
  s += "set title " + title + "\n";
  s += numeric_x_axis(vs_tests ? c.tests : c.workers,
                      vs_tests ? "Tests submitted" : "Workers");
  s += std::string("set ylabel 'Latency (") + u.name + ")'\n";
  s += range("yrange", value_axis(0, hi));
  s += "set key outside right top vertical\n";
  s += "plot ";
  for (std::size_t i = 0; i < items.size(); ++i)
    s += (i ? ", \\\n     " : "") + items[i];
  s += "\n";
  ch.body = s;
  return ch;
}

chart_spec bench_efficiency_chart(const bench_context& c) {
  chart_spec ch;
  ch.name = "efficiency";
  ch.title = "Worker efficiency";
  ch.description = "Worker utilization of each strategy, one bar per worker "
                   "count.";
  std::string title = bench_title(c,
                                  "Worker efficiency: utilization per "
                                  "strategy",
                                  averaging_note(c, true));
  const std::size_t groups = c.strategies.size();
  const std::size_t per = std::max<std::size_t>(c.workers.size(), 1);
  const double slot = 0.8 / static_cast<double>(per);
  std::vector<std::string> items;
  bool labels = groups * per <= 36;
  for (std::size_t k = 0; k < c.workers.size(); ++k) {
    std::string rows;
    for (std::size_t i = 0; i < groups; ++i) {
      auto pts = mean_by(
        c.bench.entries, c.strategies[i],
        [](const bench_entry& e) { return e.workers; }, entry_utilization);
      auto it = pts.find(c.workers[k]);
      if (it == pts.end())
        continue;
      double x = static_cast<double>(i)
                 + (static_cast<double>(k) - (per - 1) / 2.0) * slot;
      rows += num(x) + " " + num(it->second) + " "
              + dat_str(fixed(it->second, 0)) + "\n";
    }
    if (rows.empty())
      continue;
    int b = ch.data.add(pretty(c.workers[k])
                          + " workers: position utilization_percent label",
                        rows);
    items.push_back("data index " + std::to_string(b)
                    + " using 1:2 with boxes lt "
                    + std::to_string(k % palette_size + 1) + " title "
                    + gp_str(count_of(c.workers[k], "worker", "workers")));
    if (labels)
      items.push_back("data index " + std::to_string(b)
                      + " using 1:2:3 with labels offset 0,0.7 font ',8' "
                        "notitle");
  }
  if (items.empty()) {
    ch.body = no_data_panel(title, c.bench.entries.empty()
                                     ? "the file has no benchmark results"
                                     : "no worker_utilization in the results");
    return ch;
  }
  std::string s = panel_reset();
  s += "set title " + title + "\n";
  s += "set ylabel 'Worker utilization (%)'\nset xlabel 'Strategy'\n";
  s += range("xrange", {-0.6, static_cast<double>(groups) - 0.4});
  s += range("yrange", {0, 115});
  s += "set ytics (0, 20, 40, 60, 80, 100)\n";
  s += category_tics(c.strategies, ch.width - 300);
  s += "set xtics scale 0\n";
  s += "set boxwidth " + num(slot * 0.9) + " absolute\n";
  s += "set style fill solid 0.85 noborder\n";
  s += "set key outside right top vertical\n";
  s += "plot ";
  for (std::size_t i = 0; i < items.size(); ++i)
    s += (i ? ", \\\n     " : "") + items[i];
  s += "\n";
  ch.body = s;
  return ch;
}

chart_spec bench_heatmap_chart(const bench_context& c) {
  chart_spec ch;
  ch.name = "heatmap";
  ch.title = "Utilization heatmap";
  ch.description = "Worker utilization for every combination of workers and "
                   "tests, one panel per strategy.";
  // The strategies shown: all when they fit a 3x3 sheet, else the nine with
  // the highest mean throughput.
  std::vector<std::string> shown = c.strategies;
  std::string note;
  if (shown.size() > 9) {
    std::stable_sort(
      shown.begin(), shown.end(),
      [&](const std::string& a, const std::string& b) {
        return mean_of(c.bench.entries, a, entry_throughput).value_or(0)
               > mean_of(c.bench.entries, b, entry_throughput).value_or(0);
      });
    shown.resize(9);
    note = "the 9 strategies with the highest throughput";
  }
  std::string title
    = bench_title(c, "Utilization heatmap (workers x tests)", note);
  if (shown.empty()) {
    ch.body = no_data_panel(title, "the file has no benchmark results");
    return ch;
  }
  int cols = shown.size() <= 1 ? 1 : shown.size() <= 4 ? 2 : 3;
  int rows = static_cast<int>((shown.size() + cols - 1) / cols);
  ch.width = cols == 1 ? 1000 : cols * 560;
  ch.height = 130 + rows * 430;
  std::string s = "set multiplot layout " + std::to_string(rows) + ","
                  + std::to_string(cols) + " title " + title + " font ',13'\n";
  std::string xt = "set xtics (", yt = "set ytics (";
  for (std::size_t i = 0; i < c.workers.size(); ++i)
    xt += (i ? ", " : "") + gp_str(pretty(c.workers[i])) + " "
          + std::to_string(i);
  for (std::size_t i = 0; i < c.tests.size(); ++i)
    yt
      += (i ? ", " : "") + gp_str(pretty(c.tests[i])) + " " + std::to_string(i);
  xt += ")\n";
  yt += ")\n";
  bool cell_labels = c.workers.size() <= 10 && c.tests.size() <= 12;
  for (const auto& strategy : shown) {
    std::map<std::pair<double, double>, std::pair<double, int>> acc;
    for (const auto& e : c.bench.entries)
      if (e.strategy == strategy)
        if (auto u = entry_utilization(e)) {
          auto& a = acc[{e.workers, e.tests}];
          a.first += *u;
          a.second += 1;
        }
    std::string panel_title = gp_str(strategy);
    if (acc.empty()) {
      s += no_data_panel(panel_title, "no worker_utilization");
      continue;
    }
    std::string data_rows;
    for (const auto& [key, a] : acc) {
      auto xi = std::lower_bound(c.workers.begin(), c.workers.end(), key.first)
                - c.workers.begin();
      auto yi = std::lower_bound(c.tests.begin(), c.tests.end(), key.second)
                - c.tests.begin();
      double u = a.first / a.second;
      data_rows += std::to_string(xi) + " " + std::to_string(yi) + " " + num(u)
                   + " " + dat_str(fixed(u, 0) + "%") + "\n";
    }
    int b = ch.data.add(strategy
                          + ": worker_index test_index "
                            "utilization_percent label",
                        data_rows);
    s += panel_reset();
    s += "set title " + panel_title + "\n";
    s += "unset grid\nset border 15 lw 1 lc rgb '#404040'\n";
    s += "set xlabel 'Workers'\nset ylabel 'Tests'\n";
    s += range("xrange", {-0.5, static_cast<double>(c.workers.size()) - 0.5});
    s += range("yrange", {-0.5, static_cast<double>(c.tests.size()) - 0.5});
    s += xt + yt + "set tics scale 0\n";
    s += "set cbrange [0:100]\nset cblabel 'Utilization (%)'\n"
         "set cbtics 20\n"
         "set palette defined (0 '#d73027', 50 '#fee08b', 100 '#1a9850')\n";
    s += "set style fill solid 1.0 noborder\n";
    s += "plot data index " + std::to_string(b)
         + " using 1:2:(0.5):(0.5):3 with boxxyerror fc palette notitle";
    if (cell_labels)
      s += ", \\\n     data index " + std::to_string(b)
           + " using 1:2:4 with labels font ',9' notitle";
    s += "\n";
  }
  s += "unset multiplot\n";
  ch.body = s;
  return ch;
}

chart_spec bench_strategy_chart(const bench_context& c) {
  chart_spec ch;
  ch.name = "strategies";
  ch.title = "Strategy comparison";
  ch.description = "Mean makespan (left axis) and throughput (right axis) of "
                   "each strategy over all configurations.";
  std::string note;
  if (c.workers.size() * c.tests.size() > 1)
    note = "mean over " + std::to_string(c.workers.size() * c.tests.size())
           + " configurations";
  std::string title = bench_title(c,
                                  "Strategy comparison: makespan and "
                                  "throughput",
                                  note);
  std::string rows;
  double hi_m = 0, hi_t = 0;
  bool any_m = false, any_t = false, any_lb = false;
  std::vector<std::string> value_rows;
  for (std::size_t i = 0; i < c.strategies.size(); ++i) {
    auto m
      = mean_of(c.bench.entries, c.strategies[i], [](const bench_entry& e) {
          return metric(e.metrics, "makespan");
        });
    auto t = mean_of(c.bench.entries, c.strategies[i], entry_throughput);
    auto lb
      = mean_of(c.bench.entries, c.strategies[i], [](const bench_entry& e) {
          return metric(e.metrics, "lower_bound");
        });
    any_m = any_m || m;
    any_t = any_t || t;
    any_lb = any_lb || lb;
    hi_m = std::max({hi_m, m.value_or(0), lb.value_or(0)});
    hi_t = std::max(hi_t, t.value_or(0));
    // Missing values are written as "-" and skipped by gnuplot.
    rows += std::to_string(i) + " " + (m ? num(*m) : "-") + " "
            + (t ? num(*t) : "-") + " " + (lb ? num(*lb) : "-") + " "
            + dat_str(m ? pretty(*m) : "") + " " + dat_str(t ? pretty(*t) : "")
            + "\n";
  }
  if (!any_m && !any_t) {
    ch.body = no_data_panel(title, c.bench.entries.empty()
                                     ? "the file has no benchmark results"
                                     : "no makespan or throughput in the "
                                       "results");
    return ch;
  }
  int b = ch.data.add("position makespan_s tests_per_second lower_bound_s "
                      "makespan_label throughput_label",
                      rows);
  std::string d = "data index " + std::to_string(b);
  bool labels = c.strategies.size() <= 12;
  std::string s = panel_reset();
  s += "set title " + title + "\n";
  s += "set datafile missing '-'\n";
  s += "set border 11 lw 1 lc rgb '#404040'\n";
  s += "set ylabel 'Makespan (s)'\nset y2label 'Throughput (tests/s)'\n";
  s += "set ytics nomirror\nset y2tics out nomirror\n";
  s += "set xlabel 'Strategy'\n";
  s += range("xrange", {-0.6, static_cast<double>(c.strategies.size()) - 0.4});
  s += range("yrange", value_axis(0, hi_m, 1.2));
  s += range("y2range", value_axis(0, hi_t, 1.2));
  s += category_tics(c.strategies, ch.width - 250);
  s += "set xtics scale 0\n";
  s += "set boxwidth 0.36 absolute\nset style fill solid 0.85 noborder\n";
  s += "set key below horizontal height 1.5\n";
  std::vector<std::string> items;
  if (any_m) {
    items.push_back(d
                    + " using ($1-0.19):2 with boxes lt 1 title "
                      "'makespan (s, left axis)'");
    if (labels)
      items.push_back(d
                      + " using ($1-0.19):2:5 with labels offset 0,0.7 "
                        "font ',8' notitle");
  }
  if (any_t) {
    items.push_back(d
                    + " using ($1+0.19):3 axes x1y2 with boxes lt 2 title "
                      "'throughput (tests/s, right axis)'");
    if (labels)
      items.push_back(d
                      + " using ($1+0.19):3:6 axes x1y2 with labels offset "
                        "0,0.7 font ',8' notitle");
  }
  if (any_lb)
    items.push_back(d
                    + " using ($1-0.19):4:(0.18) with xerrorbars pt 0 lw 3 "
                      "lc rgb '#000000' title 'makespan lower bound'");
  s += "plot ";
  for (std::size_t i = 0; i < items.size(); ++i)
    s += (i ? ", \\\n     " : "") + items[i];
  s += "\n";
  ch.body = s;
  return ch;
}

std::vector<chart_spec> bench_charts(const bench_data& b,
                                     const std::string& file) {
  bench_context c{b, file, "", {}, {}, {}};
  std::set<double> w, t;
  for (const auto& e : b.entries) {
    if (std::find(c.strategies.begin(), c.strategies.end(), e.strategy)
        == c.strategies.end())
      c.strategies.push_back(e.strategy);
    w.insert(e.workers);
    t.insert(e.tests);
  }
  c.workers.assign(w.begin(), w.end());
  c.tests.assign(t.begin(), t.end());
  c.subtitle
    = count_of(static_cast<double>(b.entries.size()), "result", "results")
      + ", "
      + count_of(static_cast<double>(c.strategies.size()), "strategy",
                 "strategies");
  if (!c.workers.empty())
    c.subtitle += ", workers " + values_text(c.workers) + ", tests "
                  + values_text(c.tests);
  if (auto ts = find_any(b.configuration, {"timestamp"}); ts && ts->is_string())
    c.subtitle += ", run " + printable(ts->get<std::string>()).substr(0, 19);
  return {bench_throughput_chart(c), bench_latency_chart(c),
          bench_efficiency_chart(c), bench_heatmap_chart(c),
          bench_strategy_chart(c)};
}

// -- rendering
// ------------------------------------------------------------------

std::string script_text(const chart_spec& ch, const std::string& base,
                        const std::string& input) {
  std::string s;
  s += "# " + printable(ch.title) + ": generated by `alb visualize` from "
       + printable(input) + ".\n";
  s += "# Re-render the PNG and SVG after restyling: run `gnuplot " + base
       + ".gp` in this directory.\n";
  s += "# The data is in " + base + ".dat (blocks selected with `index N`).\n";
  s += "base = " + gp_str(base) + "\n";
  s += "data = " + gp_str(base + ".dat") + "\n";
  s += "font = 'DejaVu Sans,10'\n";
  s += "width = " + std::to_string(ch.width) + "\n";
  s += "height = " + std::to_string(ch.height) + "\n";
  s += "do for [fmt in 'png svg'] {\n";
  s += "if (fmt eq 'png') {\n"
       "  set terminal pngcairo size width,height noenhanced font font\n"
       "} else {\n"
       "  set terminal svg size width,height dynamic noenhanced font font "
       "background '#ffffff'\n"
       "}\n";
  s += "set output base.'.'.fmt\n";
  for (int i = 0; i < palette_size; ++i)
    s += "set linetype " + std::to_string(i + 1) + " lc rgb '" + palette[i]
         + "' lw 2 pt 7 ps 0.8\n";
  s += ch.body;
  s += "unset output\n";
  s += "}\n";
  return s;
}

std::optional<std::string> find_program(const std::string& name) {
  auto usable = [](const std::string& p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode)
           && ::access(p.c_str(), X_OK) == 0;
  };
  if (name.empty())
    return std::nullopt;
  if (name.find('/') != std::string::npos) {
    if (!usable(name))
      return std::nullopt;
    std::error_code ec;
    auto abs = fs::absolute(name, ec);
    return ec ? name : abs.string();
  }
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  std::size_t pos = 0;
  while (pos <= dirs.size()) {
    auto end = dirs.find(':', pos);
    if (end == std::string::npos)
      end = dirs.size();
    std::string dir = dirs.substr(pos, end - pos);
    if (dir.empty())
      dir = ".";
    std::string cand = dir + "/" + name;
    if (usable(cand)) {
      std::error_code ec;
      auto abs = fs::absolute(cand, ec);
      return ec ? cand : abs.string();
    }
    pos = end + 1;
  }
  return std::nullopt;
}

/// Runs `gnuplot SCRIPT` inside `dir` (no shell); returns its exit status and
/// its combined output.
std::pair<int, std::string> run_gnuplot(const std::string& program,
                                        const fs::path& dir,
                                        const std::string& script) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    return {-1, std::string("pipe: ") + std::strerror(errno)};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  posix_spawn_file_actions_addchdir_np(&fa, dir.c_str());
  std::string arg0 = program, arg1 = script;
  char* argv[] = {arg0.data(), arg1.data(), nullptr};
  pid_t pid = 0;
  int err = ::posix_spawn(&pid, program.c_str(), &fa, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(fds[1]);
  if (err != 0) {
    ::close(fds[0]);
    return {-1, "cannot start " + program + ": " + std::strerror(err)};
  }
  std::string out;
  char buf[4096];
  for (;;) {
    auto n = ::read(fds[0], buf, sizeof(buf));
    if (n > 0)
      out.append(buf, static_cast<std::size_t>(n));
    else if (n == 0 || errno != EINTR)
      break;
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    // retry
  }
  int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return {rc, out};
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out)
    fail(visualize_ec::output_failed, path.string() + ": cannot write");
}

std::string now_stamp() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%dT%H%M%S", &tm);
  return buf;
}

std::string index_html(const visualize_result& res, const std::string& input,
                       const std::string& stamp,
                       const std::vector<chart_spec>& specs) {
  std::string s;
  s += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta "
       "charset=\"utf-8\">\n";
  s += "<title>alb visualize: " + html(input) + "</title>\n";
  s += "<style>\n"
       "body{font-family:'DejaVu Sans',Arial,sans-serif;margin:2em;"
       "color:#222;background:#fafafa}\n"
       "h1{font-size:1.5em;margin-bottom:.2em}\n"
       ".meta{color:#555;margin-bottom:2em}\n"
       "figure{background:#fff;border:1px solid #ddd;border-radius:6px;"
       "padding:1em;margin:0 0 2em 0}\n"
       "figure img{max-width:100%;height:auto;display:block}\n"
       "figcaption{margin-top:.6em;color:#444}\n"
       "figcaption a{margin-right:1em}\n"
       "</style>\n</head>\n<body>\n";
  s += "<h1>"
       + html(std::string("alb visualize: ") + to_string(res.kind) + " result")
       + "</h1>\n";
  s += "<div class=\"meta\">Input <code>" + html(input) + "</code>, generated "
       + html(stamp) + ". Each chart links to its SVG, "
       + "its gnuplot script and its data; run <code>gnuplot NAME.gp</code> "
       + "in this directory to re-render after restyling.</div>\n";
  for (std::size_t i = 0; i < res.charts.size(); ++i) {
    const auto& c = res.charts[i];
    auto file = [](const fs::path& p) { return html(p.filename().string()); };
    s += "<figure id=\"" + html(c.name) + "\">\n";
    s += "<h2>" + html(c.title) + "</h2>\n";
    s += "<a href=\"" + file(c.svg) + "\"><img src=\"" + file(c.png)
         + "\" alt=\"" + html(c.title) + "\"></a>\n";
    s += "<figcaption>" + html(specs[i].description) + "<br>\n";
    s += "<a href=\"" + file(c.svg) + "\">SVG</a>";
    s += "<a href=\"" + file(c.png) + "\">PNG</a>";
    s += "<a href=\"" + file(c.script) + "\">gnuplot script</a>";
    s += "<a href=\"" + file(c.data) + "\">data</a>\n";
    s += "</figcaption>\n</figure>\n";
  }
  s += "</body>\n</html>\n";
  return s;
}

} // namespace

// -- public API
// -----------------------------------------------------------------

const char* to_string(result_kind x) {
  switch (x) {
    case result_kind::stress:
      return "stress";
    case result_kind::benchmark:
      return "benchmark";
    case result_kind::spike:
      return "spike";
  }
  return "stress";
}

std::optional<result_kind> parse_result_kind(std::string_view name) {
  if (name == "stress" || name == "scenario")
    return result_kind::stress;
  if (name == "benchmark")
    return result_kind::benchmark;
  if (name == "spike")
    return result_kind::spike;
  return std::nullopt;
}

const char* to_string(visualize_ec x) {
  switch (x) {
    case visualize_ec::input_unreadable:
      return "input_unreadable";
    case visualize_ec::malformed_json:
      return "malformed_json";
    case visualize_ec::wrong_shape:
      return "wrong_shape";
    case visualize_ec::gnuplot_missing:
      return "gnuplot_missing";
    case visualize_ec::gnuplot_failed:
      return "gnuplot_failed";
    case visualize_ec::output_failed:
      return "output_failed";
  }
  return "unknown";
}

visualize_error::visualize_error(visualize_ec code, const std::string& what)
  : std::runtime_error(what), code_(code) {
  // nop
}

int visualize_error::exit_status() const noexcept {
  switch (code_) {
    case visualize_ec::input_unreadable:
    case visualize_ec::malformed_json:
    case visualize_ec::wrong_shape:
      return 2;
    default:
      return 1;
  }
}

std::vector<time_interval>
detect_spikes(const std::vector<std::pair<double, double>>& s) {
  std::vector<time_interval> out;
  if (s.size() < 3)
    return out;
  double n = static_cast<double>(s.size());
  double mean = 0;
  for (const auto& p : s)
    mean += p.second / n;
  double var = 0;
  for (const auto& p : s)
    var += (p.second - mean) * (p.second - mean) / n;
  double sd = std::sqrt(var);
  if (!(sd > 0))
    return out;
  double limit = mean + 2 * sd;
  std::vector<double> gaps;
  for (std::size_t i = 1; i < s.size(); ++i)
    gaps.push_back(s[i].first - s[i - 1].first);
  std::nth_element(gaps.begin(), gaps.begin() + gaps.size() / 2, gaps.end());
  double half = std::max(gaps[gaps.size() / 2], 0.0) / 2;
  for (std::size_t i = 0; i < s.size();) {
    if (s[i].second <= limit) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j + 1 < s.size() && s[j + 1].second > limit)
      ++j;
    out.push_back({s[i].first - half, s[j].first + half});
    i = j + 1;
  }
  return out;
}

visualize_result visualize(const visualize_options& opts) {
  const std::string input = opts.input.string();
  // Read and validate everything before touching the output directory.
  json j = load_json(opts.input);
  result_kind kind = opts.kind ? *opts.kind : detect_kind(j, input);
  const std::string label = opts.input.filename().string();
  std::vector<chart_spec> specs;
  if (kind == result_kind::benchmark)
    specs = bench_charts(parse_bench(j, input), label);
  else
    specs = run_charts(parse_run(j, kind, input), kind, label);
  auto program = find_program(opts.gnuplot);
  if (!program)
    fail(visualize_ec::gnuplot_missing,
         "gnuplot not found (looked for '" + opts.gnuplot
           + "'); install it, e.g. apt-get install gnuplot-nox");
  std::string stamp;
  for (char c : opts.stamp.empty() ? now_stamp() : opts.stamp)
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')
      stamp += c;
  if (stamp.empty())
    stamp = now_stamp();
  std::error_code ec;
  fs::create_directories(opts.output_dir, ec);
  if (ec || !fs::is_directory(opts.output_dir))
    fail(visualize_ec::output_failed,
         opts.output_dir.string() + ": cannot create the output directory"
           + (ec ? ": " + ec.message() : std::string()));
  visualize_result res;
  res.kind = kind;
  for (const auto& spec : specs) {
    std::string base
      = std::string(to_string(kind)) + "_" + spec.name + "_" + stamp;
    chart_output out;
    out.name = spec.name;
    out.title = spec.title;
    out.png = opts.output_dir / (base + ".png");
    out.svg = opts.output_dir / (base + ".svg");
    out.script = opts.output_dir / (base + ".gp");
    out.data = opts.output_dir / (base + ".dat");
    write_file(out.data, spec.data.text().empty() ? "# no data for this chart\n"
                                                  : spec.data.text() + "\n");
    write_file(out.script, script_text(spec, base, input));
    for (const auto& p : {out.png, out.svg})
      fs::remove(p, ec);
    auto [rc, output] = run_gnuplot(*program, opts.output_dir, base + ".gp");
    bool rendered = true;
    for (const auto& p : {out.png, out.svg})
      rendered
        = rendered && fs::is_regular_file(p, ec) && fs::file_size(p, ec) > 0;
    if (rc != 0 || !rendered) {
      while (!output.empty() && (output.back() == '\n' || output.back() == ' '))
        output.pop_back();
      if (output.size() > 2000)
        output = "..." + output.substr(output.size() - 2000);
      fail(visualize_ec::gnuplot_failed,
           "gnuplot failed to render " + out.script.string() + " (exit status "
             + std::to_string(rc) + ")"
             + (output.empty() ? "" : ":\n" + output));
    }
    res.charts.push_back(std::move(out));
  }
  res.index_html = opts.output_dir / "index.html";
  write_file(res.index_html, index_html(res, input, stamp, specs));
  return res;
}

} // namespace alb::report
