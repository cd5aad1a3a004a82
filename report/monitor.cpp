#include "report/monitor.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <clocale>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <limits>
#include <map>
#include <stdexcept>

#include <fcntl.h>
#include <langinfo.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

namespace alb::report {

namespace {

constexpr double nan_v = std::numeric_limits<double>::quiet_NaN();

std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

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

// -- figures helpers ----------------------------------------------------------

// A counter's increase, taking a decrease as a restart of the target.
double increase(double cur, double prev) {
  return cur >= prev ? cur - prev : cur;
}

std::vector<std::pair<double, double>> buckets_of(const metrics_snapshot& s,
                                                  std::string_view name) {
  std::vector<std::pair<double, double>> result;
  for (auto& x : s.samples) {
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

// -- text helpers -------------------------------------------------------------

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

} // namespace

// -- parsing ------------------------------------------------------------------

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

std::optional<double>
histogram_quantile(double q, std::vector<std::pair<double, double>> buckets) {
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
  while (i + 1 < buckets.size() && buckets[i].second < rank)
    ++i;
  auto upper = buckets[i].first;
  if (std::isinf(upper)) {
    // The rank lies above every finite bound: the highest one is all we know.
    return i > 0 ? buckets[i - 1].first : std::optional<double>{};
  }
  if (i == 0 && upper <= 0)
    return upper;
  auto lower = i > 0 ? buckets[i - 1].first : 0.0;
  auto below = i > 0 ? buckets[i - 1].second : 0.0;
  auto in_bucket = buckets[i].second - below;
  if (!(in_bucket > 0))
    return upper;
  return lower + (upper - lower) * (rank - below) / in_bucket;
}

// -- figures and alerts -------------------------------------------------------

monitor_figures compute_figures(const metrics_snapshot& cur,
                                const metrics_snapshot* prev) {
  monitor_figures f;
  f.has_alb_metrics = cur.has_alb_metrics();
  for (auto& s : cur.samples) {
    if (s.name != "alb_run_info")
      continue;
    if (auto* m = s.label("mode"))
      f.mode = *m;
    if (auto* st = s.label("strategy"))
      f.strategy = *st;
  }
  f.uptime = cur.has("alb_process_uptime_seconds")
               ? cur.sum("alb_process_uptime_seconds")
               : nan_v;
  double dt = prev ? cur.time - prev->time : 0;
  bool rates = prev && dt > 0;
  f.interval = rates ? dt : 0;
  auto rate = [&](std::string_view name) {
    if (!rates)
      return nan_v;
    return increase(cur.sum(name), prev->sum(name)) / dt;
  };

  f.workers = cur.sum("alb_workers", {{"state", "registered"}});
  f.busy_workers = cur.sum("alb_workers", {{"state", "busy"}});
  f.idle_workers = cur.sum("alb_workers", {{"state", "idle"}});
  f.mean_load = cur.sum("alb_worker_load_mean");
  for (std::size_t p = 0; p < f.queue_by_priority.size(); ++p)
    f.queue_by_priority[p]
      = cur.sum("alb_queue_depth", {{"priority", std::to_string(p + 1)}});
  f.queue_depth = cur.sum("alb_queue_depth");
  f.parked = cur.sum("alb_tests_parked");
  // Parked tests wait as much as queued ones: both count as the queue grows.
  f.queue_change = prev
                     ? f.queue_depth + f.parked - prev->sum("alb_queue_depth")
                         - prev->sum("alb_tests_parked")
                     : 0;
  f.in_flight = cur.sum("alb_tests_in_flight");

  f.submitted = cur.sum("alb_tests_submitted_total");
  f.completed = cur.sum("alb_tests_completed_total");
  f.failed = cur.sum("alb_tests_failed_total");
  f.throughput = rate("alb_tests_completed_total");
  f.submit_rate = rate("alb_tests_submitted_total");
  f.failure_rate = rate("alb_tests_failed_total");
  auto ended = f.completed + f.failed;
  f.success_rate = ended > 0 ? 100.0 * f.completed / ended : nan_v;

  // Quantiles of the last interval when tests were placed in it (what the
  // balancer does now); otherwise of the whole run, labelled as such.
  auto wait = buckets_of(cur, "alb_assignment_wait_seconds_bucket");
  if (prev) {
    auto before = buckets_of(*prev, "alb_assignment_wait_seconds_bucket");
    if (before.size() == wait.size()) {
      auto delta = wait;
      bool same_bounds = true;
      for (std::size_t i = 0; i < delta.size(); ++i) {
        same_bounds = same_bounds && before[i].first == delta[i].first;
        delta[i].second = increase(wait[i].second, before[i].second);
      }
      if (same_bounds && !delta.empty() && delta.back().second > 0) {
        f.wait_window = true;
        f.wait_p50 = histogram_quantile(0.5, delta);
        f.wait_p99 = histogram_quantile(0.99, delta);
      }
    }
  }
  if (!f.wait_window) {
    f.wait_p50 = histogram_quantile(0.5, wait);
    f.wait_p99 = histogram_quantile(0.99, wait);
  }

  f.migrations = cur.sum("alb_tests_migrated_total");
  f.steals = cur.sum("alb_tests_stolen_total");
  f.move_rate
    = rates ? rate("alb_tests_migrated_total") + rate("alb_tests_stolen_total")
            : nan_v;
  f.requeued = cur.sum("alb_tests_requeued_total");
  f.retried = cur.sum("alb_tests_retried_total");

  std::map<std::string, worker_figures> by_id;
  for (auto& s : cur.samples) {
    auto* id = s.label("worker");
    if (!id)
      continue;
    if (s.name == "alb_worker_load") {
      auto& w = by_id[*id];
      w.id = *id;
      w.load = s.value;
    }
  }
  std::map<std::string, double> done_before;
  if (prev)
    for (auto& s : prev->samples)
      if (s.name == "alb_worker_completions_total")
        if (auto* id = s.label("worker"))
          done_before[*id] = s.value;
  for (auto& s : cur.samples) {
    auto* id = s.label("worker");
    if (!id)
      continue;
    auto it = by_id.find(*id);
    if (it == by_id.end())
      continue;
    if (s.name == "alb_worker_active_tests") {
      it->second.active_tests = s.value;
    } else if (s.name == "alb_worker_completions_total") {
      // A worker that joined since the previous scrape started from 0.
      auto b = done_before.find(*id);
      it->second.completions_per_second
        = rates ? increase(s.value, b == done_before.end() ? 0 : b->second) / dt
                : nan_v;
    }
  }
  for (auto& [id, w] : by_id)
    f.workers_by_load.push_back(std::move(w));
  std::sort(f.workers_by_load.begin(), f.workers_by_load.end(),
            [](const worker_figures& a, const worker_figures& b) {
              if (a.load != b.load)
                return a.load > b.load;
              if (a.active_tests != b.active_tests)
                return a.active_tests > b.active_tests;
              return a.id < b.id;
            });
  f.untracked_workers = cur.sum("alb_workers_untracked");
  return f;
}

std::vector<alert> evaluate_alerts(const monitor_figures& f,
                                   const alert_rules& rules) {
  std::vector<alert> result;
  if (f.interval > 0 && f.queue_change > 0 && f.idle_workers >= 1)
    result.push_back(
      {alert_kind::queue_growing_with_idle_workers,
       format("queue growing: +%.0f to %.0f waiting while %.0f "
              "worker%s idle",
              f.queue_change, f.queue_depth + f.parked, f.idle_workers,
              f.idle_workers == 1 ? " is" : "s are")});
  auto ended = f.completed + f.failed;
  if (ended >= rules.min_ended_tests && !std::isnan(f.success_rate)
      && f.success_rate < rules.min_success_rate)
    result.push_back(
      {alert_kind::low_success_rate,
       format("success rate %.1f%% is below %.0f%% (%.0f of %.0f ended "
              "tests failed)",
              f.success_rate, rules.min_success_rate, f.failed, ended)});
  std::vector<const worker_figures*> hot;
  for (auto& w : f.workers_by_load)
    if (w.load > rules.max_worker_load)
      hot.push_back(&w);
  if (hot.size() == 1) {
    result.push_back(
      {alert_kind::worker_overloaded,
       format("worker %s at %.0f%% load (over %.0f%%)", hot[0]->id.c_str(),
              hot[0]->load * 100, rules.max_worker_load * 100)});
  } else if (hot.size() > 1) {
    auto msg = format("%zu workers over %.0f%% load:", hot.size(),
                      rules.max_worker_load * 100);
    for (std::size_t i = 0; i < hot.size() && i < 4; ++i)
      msg += format("%s %s %.0f%%", i == 0 ? "" : ",", hot[i]->id.c_str(),
                    hot[i]->load * 100);
    if (hot.size() > 4)
      msg += ", ...";
    result.push_back({alert_kind::worker_overloaded, std::move(msg)});
  }
  return result;
}

// -- dashboard state ----------------------------------------------------------

monitor_state::monitor_state(std::size_t history, alert_rules rules)
  : capacity_(std::max<std::size_t>(history, 1)), rules_(rules) {
  // nop
}

void monitor_state::update(metrics_snapshot snap) {
  figures_ = compute_figures(snap, snap_ ? &*snap_ : nullptr);
  alerts_ = evaluate_alerts(figures_, rules_);
  if (!std::isnan(figures_.throughput) && figures_.interval > 0) {
    history_.push_back(figures_.throughput);
    while (history_.size() > capacity_)
      history_.pop_front();
    peak_ = std::max(peak_, figures_.throughput);
  }
  snap_ = std::move(snap);
  ++updates_;
  error_.clear();
}

void monitor_state::unreachable(std::string message) {
  error_ = std::move(message);
}

// -- rendering ----------------------------------------------------------------

namespace {

void graph_lines(std::vector<screen_line>& out, const std::deque<double>& hist,
                 std::size_t rows, std::size_t width, bool unicode) {
  static const char* blocks[]
    = {" ",      "\u2581", "\u2582", "\u2583", "\u2584",
       "\u2585", "\u2586", "\u2587", "\u2588"};
  constexpr std::size_t label_width = 9; // "%7.1f " plus the axis glyph
  auto cols = width > label_width + 2 ? width - label_width - 1 : 1;
  auto first = hist.size() > cols ? hist.size() - cols : 0;
  double scale = 0;
  for (auto i = first; i < hist.size(); ++i)
    scale = std::max(scale, hist[i]);
  if (!(scale > 0))
    scale = 1;
  auto shown = hist.size() - first;
  for (std::size_t r = 0; r < rows; ++r) {
    auto from_bottom = rows - 1 - r;
    std::string line;
    if (r == 0)
      line
        = format("%7s %s", rate_text(scale).c_str(), unicode ? "\u2524" : "+");
    else if (r + 1 == rows)
      line = format("%7s %s", "0", unicode ? "\u2524" : "+");
    else
      line = format("%7s %s", "", unicode ? "\u2502" : "|");
    line.append(cols - shown, ' ');
    for (auto i = first; i < hist.size(); ++i) {
      auto eighths = hist[i] / scale * static_cast<double>(rows * 8);
      // Any non-zero throughput shows, however small next to the peak.
      if (hist[i] > 0 && eighths < 1)
        eighths = 1;
      auto fill = std::clamp(static_cast<long>(std::lround(eighths))
                               - static_cast<long>(from_bottom * 8),
                             0L, 8L);
      if (unicode)
        line += blocks[fill];
      else
        line += fill >= 4 ? "#" : " ";
    }
    out.push_back({std::move(line), line_style::normal});
  }
}

std::string load_bar(double load, std::size_t width, bool unicode) {
  auto filled = static_cast<std::size_t>(
    std::clamp(std::lround(load * static_cast<double>(width)), 0L,
               static_cast<long>(width)));
  return repeat(unicode ? "\u2588" : "#", filled)
         + repeat(unicode ? "\u2591" : ".", width - filled);
}

} // namespace

std::vector<screen_line> render_screen(const monitor_state& state,
                                       const render_options& opts) {
  auto width = static_cast<std::size_t>(std::max(opts.width, 20));
  auto height = static_cast<std::size_t>(std::max(opts.height, 3));
  auto text_width = width - 1; // never the last column: no wrap, no scroll
  bool u = opts.unicode;
  std::vector<screen_line> out;
  auto add = [&](std::string text, line_style st = line_style::normal) {
    out.push_back({std::move(text), st});
  };

  auto title = opts.title;
  if (!opts.hint.empty()) {
    auto room = text_width > columns(title) + columns(opts.hint) + 2
                  ? text_width - columns(title) - columns(opts.hint)
                  : 2;
    title += std::string(room, ' ') + opts.hint;
  }
  add(std::move(title), line_style::title);
  if (state.is_unreachable())
    add(state.error(), line_style::alert);
  else if (!opts.status.empty())
    add(opts.status, line_style::dim);
  else
    add("");

  if (!state.has_data()) {
    if (!state.is_unreachable())
      add("waiting for the first scrape ...", line_style::dim);
  } else if (!state.figures().has_alb_metrics) {
    add("the target serves no alb_* metrics: is it an alb process?",
        line_style::alert);
  } else {
    auto& f = state.figures();
    auto st = state.is_unreachable() ? line_style::dim : line_style::normal;
    std::string run = f.mode.empty() ? "alb" : f.mode + " run";
    if (!f.strategy.empty())
      run += ", strategy " + f.strategy;
    run += ", up " + uptime_text(f.uptime);
    if (state.is_unreachable())
      run += "   (last values, stale)";
    add("Run         " + run, st);
    auto workers = format(
      "Workers     %s registered   %s busy   %s idle   "
      "mean load %.0f%%",
      count_text(f.workers).c_str(), count_text(f.busy_workers).c_str(),
      count_text(f.idle_workers).c_str(), f.mean_load * 100);
    if (f.untracked_workers > 0)
      workers += "   " + count_text(f.untracked_workers) + " untracked";
    add(std::move(workers), st);
    std::string queue
      = "Queue       " + count_text(f.queue_depth) + " waiting (";
    for (std::size_t p = 0; p < f.queue_by_priority.size(); ++p)
      queue += format("%sp%zu %s", p == 0 ? "" : " ", p + 1,
                      count_text(f.queue_by_priority[p]).c_str());
    queue += ")  parked " + count_text(f.parked) + "  in flight "
             + count_text(f.in_flight);
    add(std::move(queue), st);
    add("Throughput  " + rate_text(f.throughput) + " tests/s now   peak "
          + rate_text(state.peak_throughput()) + "/s   submitted "
          + rate_text(f.submit_rate) + "/s   failed "
          + rate_text(f.failure_rate) + "/s",
        st);
    add("Wait        p50 " + seconds_text(f.wait_p50, u) + "   p99 "
          + seconds_text(f.wait_p99, u)
          + (f.wait_window
               ? format("   (tests placed in the last %.1f s)", f.interval)
               : "   (whole run)"),
        st);
    add("Success     " + percent_text(f.success_rate) + " of ended tests   "
          + count_text(f.completed) + " completed, " + count_text(f.failed)
          + " failed, " + count_text(f.submitted) + " submitted",
        st);
    add("Moves       " + count_text(f.migrations) + " migrations, "
          + count_text(f.steals) + " steals (" + rate_text(f.move_rate)
          + "/s)   requeued " + count_text(f.requeued) + "   retried "
          + count_text(f.retried),
        st);
    if (state.alerts().empty()) {
      add("Alerts      none", line_style::good);
    } else {
      add("Alerts", line_style::heading);
      for (auto& a : state.alerts())
        add(std::string("  ") + (u ? "\u25b2 " : "! ") + a.message,
            line_style::alert);
    }

    // What is left goes to the graph (2-8 rows) and the worker table.
    auto used = out.size() + 1; // the blank line before the graph
    auto avail = height > used ? height - used : 0;
    auto n_workers = f.workers_by_load.size();
    auto want_table = 3 + std::clamp<std::size_t>(n_workers, 1, 10);
    if (avail >= 3) {
      std::size_t graph_rows = 8;
      if (avail < 1 + graph_rows + want_table)
        graph_rows = avail > 1 + want_table ? avail - 1 - want_table : 2;
      graph_rows = std::clamp<std::size_t>(graph_rows, 2, 8);
      graph_rows = std::min(graph_rows, avail - 1);
      add("");
      add(format("Throughput history (tests/s per refresh, newest right; "
                 "peak %s/s)",
                 rate_text(state.peak_throughput()).c_str()),
          line_style::heading);
      if (state.throughput_history().empty())
        add("  (rates need a second scrape)", line_style::dim);
      else
        graph_lines(out, state.throughput_history(), graph_rows, text_width, u);
      // The table: a blank line, heading, column header, then rows.
      if (height > out.size() + 4) {
        auto rows = std::min(n_workers, height - out.size() - 3);
        add("");
        add(format("Busiest workers (%zu of %zu with per-worker series)", rows,
                   n_workers),
            line_style::heading);
        if (n_workers == 0) {
          add("  (no per-worker series)", line_style::dim);
        } else {
          add("  " + pad("worker", 16) + pad("load", 27) + "active  done/s",
              line_style::dim);
          for (std::size_t i = 0; i < rows; ++i) {
            auto& w = f.workers_by_load[i];
            add("  " + pad(clip(w.id, 15), 16) + load_bar(w.load, 20, u)
                  + format(" %4.0f%%  %6.0f  %6s", w.load * 100, w.active_tests,
                           rate_text(w.completions_per_second).c_str()),
                st);
          }
        }
      }
    }
  }
  if (out.size() > height)
    out.resize(height);
  for (auto& l : out)
    l.text = l.style == line_style::title
               ? pad(clip(l.text, text_width), text_width)
               : clip(l.text, text_width);
  return out;
}

std::string summary_line(const monitor_state& state, bool unicode) {
  if (state.is_unreachable())
    return state.error();
  if (!state.has_data())
    return "waiting for the first scrape";
  auto& f = state.figures();
  if (!f.has_alb_metrics)
    return "the target serves no alb_* metrics: is it an alb process?";
  std::string s = format(
    "workers %s (%s busy, %s idle)", count_text(f.workers).c_str(),
    count_text(f.busy_workers).c_str(), count_text(f.idle_workers).c_str());
  s += " | queue " + count_text(f.queue_depth) + " (";
  for (std::size_t p = 0; p < f.queue_by_priority.size(); ++p)
    s += format("%sp%zu %s", p == 0 ? "" : " ", p + 1,
                count_text(f.queue_by_priority[p]).c_str());
  s += ") | throughput " + rate_text(f.throughput) + "/s peak "
       + rate_text(state.peak_throughput()) + "/s";
  s += " | wait p50 " + seconds_text(f.wait_p50, unicode) + " p99 "
       + seconds_text(f.wait_p99, unicode);
  s += " | success " + percent_text(f.success_rate) + " ("
       + count_text(f.completed) + " completed, " + count_text(f.failed)
       + " failed)";
  s += " | migrations " + count_text(f.migrations) + " steals "
       + count_text(f.steals);
  if (state.alerts().empty()) {
    s += " | alerts: none";
  } else {
    s += " | alerts: ";
    for (std::size_t i = 0; i < state.alerts().size(); ++i)
      s += (i == 0 ? "" : "; ") + state.alerts()[i].message;
  }
  return s;
}

// -- fetching -----------------------------------------------------------------

http_url parse_http_url(std::string_view url) {
  auto bad = [&](const std::string& why) {
    return std::invalid_argument("URL '" + std::string{url} + "' " + why);
  };
  if (url.empty())
    throw std::invalid_argument("URL is empty");
  for (unsigned char c : url)
    if (c <= ' ' || c == 0x7f)
      throw bad("contains spaces or control characters");
  http_url result;
  result.text = std::string{url};
  auto rest = url;
  if (auto sep = rest.find("://"); sep != rest.npos) {
    auto scheme = lower(std::string{rest.substr(0, sep)});
    if (scheme != "http")
      throw bad("has scheme '" + scheme + "'; only http:// is supported");
    rest.remove_prefix(sep + 3);
  }
  auto slash = rest.find_first_of("/?#");
  auto authority = rest.substr(0, slash);
  auto path = slash == rest.npos ? std::string_view{} : rest.substr(slash);
  if (auto hash = path.find('#'); hash != path.npos)
    path = path.substr(0, hash);
  if (authority.find('@') != authority.npos)
    throw bad("has user information, which is not supported");
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == authority.npos)
      throw bad("has an unclosed '[' in the host");
    result.host = std::string{authority.substr(1, close - 1)};
    auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':')
        throw bad("has junk after the host");
      port_text = after.substr(1);
      if (port_text.empty())
        throw bad("has an empty port");
    }
  } else {
    auto colon = authority.find(':');
    if (colon != authority.npos
        && authority.find(':', colon + 1) != authority.npos)
      throw bad("has an IPv6 host without brackets");
    result.host = std::string{authority.substr(0, colon)};
    if (colon != authority.npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty())
        throw bad("has an empty port");
    }
  }
  if (result.host.empty())
    throw bad("has no host");
  if (!port_text.empty()) {
    unsigned long port = 0;
    auto [ptr, ec] = std::from_chars(port_text.data(),
                                     port_text.data() + port_text.size(), port);
    if (ec != std::errc{} || ptr != port_text.data() + port_text.size()
        || port < 1 || port > 65535)
      throw bad("has a bad port '" + std::string{port_text}
                + "' (expected 1-65535)");
    result.port = static_cast<uint16_t>(port);
  }
  result.path = path.empty() || path == "/" ? "/metrics" : std::string{path};
  if (result.path.front() == '?')
    result.path.insert(0, "/metrics");
  return result;
}

namespace {

using clock_type = std::chrono::steady_clock;

int ms_left(clock_type::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - clock_type::now())
                .count();
  return static_cast<int>(std::clamp<long long>(left, 0, 60'000));
}

// Waits for `events` on `fd` until the deadline, resuming after signals.
// Returns false on timeout.
bool wait_fd(int fd, short events, clock_type::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    auto left = ms_left(deadline);
    auto n = ::poll(&p, 1, left);
    if (n > 0)
      return true;
    if (n == 0 || (n < 0 && errno != EINTR))
      return false;
  }
}

struct fd_guard {
  int fd = -1;
  ~fd_guard() {
    if (fd >= 0)
      ::close(fd);
  }
};

std::string timeout_text(double seconds) {
  return "timed out after " + interval_text(seconds) + " s";
}

// Decodes a chunked body; false when it is cut short.
bool dechunk(std::string_view in, std::string& out) {
  out.clear();
  std::size_t pos = 0;
  for (;;) {
    auto eol = in.find("\r\n", pos);
    if (eol == in.npos)
      return false;
    std::size_t size = 0;
    auto line = in.substr(pos, eol - pos);
    auto [ptr, ec]
      = std::from_chars(line.data(), line.data() + line.size(), size, 16);
    if (ec != std::errc{} || ptr == line.data())
      return false;
    pos = eol + 2;
    if (size == 0)
      return true;
    if (pos + size > in.size())
      return false;
    out.append(in.substr(pos, size));
    pos += size + 2;
  }
}

} // namespace

fetch_result http_get(const http_url& url, double timeout_seconds) {
  fetch_result result;
  auto deadline = clock_type::now()
                  + std::chrono::duration_cast<clock_type::duration>(
                    std::chrono::duration<double>(timeout_seconds));
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  auto port = std::to_string(url.port);
  if (auto rc = ::getaddrinfo(url.host.c_str(), port.c_str(), &hints, &found);
      rc != 0) {
    result.error
      = "cannot resolve host '" + url.host + "': " + lower(::gai_strerror(rc));
    return result;
  }
  fd_guard sock;
  std::string connect_error = "no address for host '" + url.host + "'";
  for (auto* ai = found; ai != nullptr; ai = ai->ai_next) {
    int fd
      = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                 ai->ai_protocol);
    if (fd < 0) {
      connect_error = errno_text(errno);
      continue;
    }
    fd_guard attempt{fd};
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        connect_error = errno_text(errno);
        continue;
      }
      if (!wait_fd(fd, POLLOUT, deadline)) {
        connect_error = timeout_text(timeout_seconds);
        continue;
      }
      int err = 0;
      socklen_t len = sizeof(err);
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        connect_error = errno_text(err);
        continue;
      }
    }
    sock.fd = attempt.fd;
    attempt.fd = -1;
    break;
  }
  ::freeaddrinfo(found);
  if (sock.fd < 0) {
    result.error = connect_error;
    return result;
  }
  auto host
    = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
  auto request = "GET " + url.path + " HTTP/1.0\r\nHost: " + host + ":" + port
                 + "\r\nUser-Agent: alb-monitor\r\nAccept: text/plain\r\n"
                   "Connection: close\r\n\r\n";
  std::size_t sent = 0;
  while (sent < request.size()) {
    if (!wait_fd(sock.fd, POLLOUT, deadline)) {
      result.error = timeout_text(timeout_seconds);
      return result;
    }
    auto n = ::send(sock.fd, request.data() + sent, request.size() - sent,
                    MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR)
        continue;
      result.error = errno_text(errno);
      return result;
    }
    sent += static_cast<std::size_t>(n);
  }
  // Far above any real scrape; stops a runaway target from eating memory.
  constexpr std::size_t max_response = 64 << 20;
  std::string response;
  char buf[16384];
  for (;;) {
    if (!wait_fd(sock.fd, POLLIN, deadline)) {
      result.error = timeout_text(timeout_seconds);
      return result;
    }
    auto n = ::recv(sock.fd, buf, sizeof(buf), 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR)
        continue;
      result.error = errno_text(errno);
      return result;
    }
    if (n == 0)
      break;
    response.append(buf, static_cast<std::size_t>(n));
    if (response.size() > max_response) {
      result.error = "response larger than 64 MiB";
      return result;
    }
  }
  auto header_end = response.find("\r\n\r\n");
  if (response.compare(0, 5, "HTTP/") != 0 || header_end == response.npos) {
    result.error = response.empty() ? "empty response" : "not an HTTP response";
    return result;
  }
  auto status_end = response.find("\r\n");
  auto status_line = response.substr(0, status_end);
  auto sp = status_line.find(' ');
  auto status
    = sp == std::string::npos ? std::string{} : status_line.substr(sp + 1);
  if (status.compare(0, 3, "200") != 0) {
    result.error = "HTTP " + (status.empty() ? status_line : status);
    return result;
  }
  auto headers = lower(response.substr(0, header_end));
  std::string_view body{response};
  body.remove_prefix(header_end + 4);
  if (headers.find("transfer-encoding: chunked") != std::string::npos) {
    if (!dechunk(body, result.body)) {
      result.error = "truncated chunked response";
      return result;
    }
  } else {
    result.body = std::string{body};
  }
  result.ok = true;
  return result;
}

std::string unreachable_message(const std::string& url,
                                const std::string& error, double interval,
                                bool unicode) {
  return "cannot reach " + url + ": " + error + (unicode ? " \u2014" : " -")
         + " retrying every " + interval_text(interval) + " s";
}

// -- terminal -----------------------------------------------------------------

namespace {

// State the signal handler needs: plain globals, read with async-signal-safe
// calls only.
struct termios saved_termios;
volatile std::sig_atomic_t termios_saved = 0;
volatile std::sig_atomic_t screen_active = 0;
struct sigaction previous_int, previous_term;
volatile std::sig_atomic_t handlers_installed = 0;

constexpr char enter_seq[] = "\033[?1049h\033[?25l\033[H\033[2J";
constexpr char leave_seq[] = "\033[0m\033[?25h\033[?1049l";

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

void restore_terminal() {
  if (screen_active) {
    write_all(STDOUT_FILENO, leave_seq, sizeof(leave_seq) - 1);
    screen_active = 0;
  }
  if (termios_saved) {
    ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios);
    termios_saved = 0;
  }
}

void restore_and_reraise(int sig) {
  restore_terminal();
  // Give the signal back to whoever had it (usually the default: terminate).
  ::sigaction(sig, sig == SIGINT ? &previous_int : &previous_term, nullptr);
  ::raise(sig);
}

const char* style_seq(line_style s) {
  switch (s) {
    case line_style::title:
      return "\033[1;7m";
    case line_style::heading:
      return "\033[1m";
    case line_style::alert:
      return "\033[1;31m";
    case line_style::dim:
      return "\033[2m";
    case line_style::good:
      return "\033[32m";
    default:
      return "";
  }
}

} // namespace

bool terminal_is_utf8() {
  std::setlocale(LC_CTYPE, "");
  auto* cs = ::nl_langinfo(CODESET);
  return cs != nullptr
         && (std::strcmp(cs, "UTF-8") == 0 || std::strcmp(cs, "utf8") == 0);
}

terminal_screen::terminal_screen(bool read_keys, bool restore_on_signal) {
  if (read_keys && ::isatty(STDIN_FILENO)
      && ::tcgetattr(STDIN_FILENO, &saved_termios) == 0) {
    auto raw = saved_termios;
    // Single keys without Enter and without echo; Ctrl-C still signals.
    raw.c_lflag &= static_cast<tcflag_t>(~(ICANON | ECHO));
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    termios_saved = 1;
    ::tcsetattr(STDIN_FILENO, TCSANOW, &raw);
  }
  if (restore_on_signal) {
    struct sigaction sa {};
    sa.sa_handler = restore_and_reraise;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, &previous_int);
    ::sigaction(SIGTERM, &sa, &previous_term);
    handlers_installed = 1;
  }
  write_all(STDOUT_FILENO, enter_seq, sizeof(enter_seq) - 1);
  screen_active = 1;
}

terminal_screen::~terminal_screen() {
  if (handlers_installed) {
    ::sigaction(SIGINT, &previous_int, nullptr);
    ::sigaction(SIGTERM, &previous_term, nullptr);
    handlers_installed = 0;
  }
  restore_terminal();
}

std::pair<int, int> terminal_screen::size() {
  winsize ws{};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0
      && ws.ws_row > 0)
    return {ws.ws_col, ws.ws_row};
  return {80, 24};
}

void terminal_screen::draw(const std::vector<screen_line>& lines) {
  std::string frame = "\033[H";
  for (std::size_t i = 0; i < lines.size(); ++i) {
    frame += style_seq(lines[i].style);
    frame += lines[i].text;
    frame += "\033[0m\033[K";
    if (i + 1 < lines.size())
      frame += "\r\n";
  }
  frame += "\033[J";
  write_all(STDOUT_FILENO, frame.data(), frame.size());
}

live_view::live_view(std::string title)
  : title_(std::move(title)), unicode_(terminal_is_utf8()),
    screen_(false, true) {
  auto [w, h] = terminal_screen::size();
  render_options opts;
  opts.width = w;
  opts.height = h;
  opts.unicode = unicode_;
  opts.title = title_;
  screen_.draw(render_screen(state_, opts));
}

live_view::~live_view() = default;

void live_view::show(std::string_view scrape, double elapsed,
                     std::string status) {
  state_.update(parse_exposition(scrape, elapsed));
  auto [w, h] = terminal_screen::size();
  render_options opts;
  opts.width = w;
  opts.height = h;
  opts.unicode = unicode_;
  opts.title = title_;
  opts.hint = "Ctrl-C stops the run";
  opts.status = std::move(status);
  screen_.draw(render_screen(state_, opts));
}

// -- alb monitor
// ----------------------------------------------------------------

namespace {

volatile std::sig_atomic_t stop_requested = 0;
volatile std::sig_atomic_t resized = 0;

void on_stop_signal(int) {
  stop_requested = 1;
}

void on_resize_signal(int) {
  resized = 1;
}

// Installs the monitor's handlers without SA_RESTART, so a signal cuts the
// wait between refreshes short; restores the previous ones when done.
struct monitor_signals {
  struct sigaction old_int, old_term, old_winch;

  monitor_signals() {
    stop_requested = 0;
    resized = 0;
    struct sigaction sa {};
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop_signal;
    ::sigaction(SIGINT, &sa, &old_int);
    ::sigaction(SIGTERM, &sa, &old_term);
    sa.sa_handler = on_resize_signal;
    ::sigaction(SIGWINCH, &sa, &old_winch);
  }

  ~monitor_signals() {
    ::sigaction(SIGINT, &old_int, nullptr);
    ::sigaction(SIGTERM, &old_term, nullptr);
    ::sigaction(SIGWINCH, &old_winch, nullptr);
  }
};

} // namespace

int run_monitor(const monitor_options& opts) {
  bool tty = ::isatty(STDOUT_FILENO) != 0;
  bool keys = tty && ::isatty(STDIN_FILENO) != 0;
  bool unicode = terminal_is_utf8();
  monitor_signals signals;
  monitor_state state;
  std::optional<terminal_screen> screen;
  if (tty)
    screen.emplace(keys, false);
  auto fetch_timeout = std::clamp(opts.interval, 0.5, 5.0);
  auto redraw = [&] {
    auto [w, h] = terminal_screen::size();
    render_options r;
    r.width = w;
    r.height = h;
    r.unicode = unicode;
    r.title = "alb monitor  " + opts.url.text;
    r.hint = "q quits";
    if (state.has_data())
      r.status = "updated " + local_clock() + (unicode ? " \u00b7 " : " - ")
                 + "every " + interval_text(opts.interval) + " s";
    screen->draw(render_screen(state, r));
  };
  uint64_t refreshes = 0;
  bool quit = false;
  while (!quit && !stop_requested) {
    auto started = clock_type::now();
    auto got = http_get(opts.url, fetch_timeout);
    if (got.ok)
      state.update(parse_exposition(got.body, monotonic_seconds()));
    else
      state.unreachable(
        unreachable_message(opts.url.text, got.error, opts.interval, unicode));
    ++refreshes;
    if (tty) {
      redraw();
    } else {
      auto line
        = "[" + local_clock() + "] " + summary_line(state, unicode) + "\n";
      write_all(STDOUT_FILENO, line.data(), line.size());
    }
    if (opts.count > 0 && refreshes >= opts.count)
      break;
    auto next = started
                + std::chrono::duration_cast<clock_type::duration>(
                  std::chrono::duration<double>(opts.interval));
    while (!quit && !stop_requested) {
      auto left = ms_left(next);
      if (left <= 0)
        break;
      pollfd p{STDIN_FILENO, POLLIN, 0};
      auto n = ::poll(&p, keys ? 1 : 0, left);
      if (n < 0 && errno == EINTR) {
        if (resized && tty) {
          resized = 0;
          redraw();
        }
        continue;
      }
      if (n > 0 && (p.revents & POLLIN)) {
        char c[64];
        auto got_keys = ::read(STDIN_FILENO, c, sizeof(c));
        for (ssize_t i = 0; i < got_keys; ++i)
          if (c[i] == 'q' || c[i] == 'Q')
            quit = true;
      } else if (n > 0) {
        // The terminal hung up: no more keys will come.
        keys = false;
      }
    }
  }
  if (screen) {
    screen.reset();
    // Leave the last view's gist in the scrollback.
    auto line = "alb monitor: " + summary_line(state, unicode) + "\n";
    write_all(STDOUT_FILENO, line.data(), line.size());
  }
  return state.updates() > 0 ? 0 : 1;
}

} // namespace alb::report
