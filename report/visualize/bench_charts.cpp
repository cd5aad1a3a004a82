#include "report/visualize/bench_charts.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <set>

namespace alb::report::viz {

namespace {

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

} // namespace

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

} // namespace alb::report::viz
