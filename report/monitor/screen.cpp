#include "report/monitor/screen.hpp"

#include "report/monitor/text.hpp"

#include <algorithm>
#include <cmath>

namespace alb::report {

using namespace detail;

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
    add("Wait        p50 " + quantile_text(f.wait_p50, u) + "   p99 "
          + quantile_text(f.wait_p99, u)
          + (f.wait_window
               ? format("   (tests placed in the last %.1f s)", f.interval)
               : "   (whole run)"),
        st);
    add("Success     " + percent_text(f.success_rate) + " of ended tests   "
          + count_text(f.completed) + " completed, " + count_text(f.failed)
          + " failed, "
          + (f.cancelled > 0 ? count_text(f.cancelled) + " cancelled, " : "")
          + count_text(f.submitted) + " submitted",
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
  s += " | wait p50 " + quantile_text(f.wait_p50, unicode) + " p99 "
       + quantile_text(f.wait_p99, unicode);
  s += " | success " + percent_text(f.success_rate) + " ("
       + count_text(f.completed) + " completed, " + count_text(f.failed)
       + " failed"
       + (f.cancelled > 0 ? ", " + count_text(f.cancelled) + " cancelled" : "")
       + ")";
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

} // namespace alb::report
