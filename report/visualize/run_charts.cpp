#include "report/visualize/run_charts.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <set>

namespace alb::report::viz {

namespace {

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
  // Each sample is the completions of one time bucket as a rate; the bucket
  // width varies with the run's length, so the axis names it.
  p.ylabel = "Throughput (tests/s)";
  if (r.throughput.size() >= 2) {
    std::vector<double> gaps;
    for (std::size_t i = 1; i < r.throughput.size(); ++i)
      gaps.push_back(r.throughput[i].first - r.throughput[i - 1].first);
    std::nth_element(gaps.begin(), gaps.begin() + gaps.size() / 2, gaps.end());
    if (auto gap = gaps[gaps.size() / 2]; gap > 0)
      p.ylabel = "Throughput (tests/s, per " + pretty(gap) + " s sample)";
  }
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

} // namespace

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

} // namespace alb::report::viz
