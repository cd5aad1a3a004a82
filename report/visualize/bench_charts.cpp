#include "report/visualize/bench_charts.hpp"

#include "report/visualize/bench_common.hpp"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>
#include <map>
#include <numeric>
#include <set>
#include <tuple>

namespace alb::report::viz {

namespace {

/// Panels side by side: columns and rows for `n` panels.
std::pair<int, int> panel_grid(std::size_t n) {
  int cols = n <= 1 ? 1 : n <= 4 ? 2 : 3;
  return {cols, static_cast<int>((n + cols - 1) / cols)};
}

/// Sizes `ch` for `n` panels and returns the multiplot opening (or "" for
/// one panel, which then carries `title` itself).
std::string open_panels(chart_spec& ch, std::size_t n,
                        const std::string& title) {
  if (n <= 1)
    return "";
  auto [cols, rows] = panel_grid(n);
  ch.width = cols == 1 ? 1200 : cols * 600;
  ch.height = 130 + rows * 430;
  return "set multiplot layout " + std::to_string(rows) + ","
         + std::to_string(cols) + " title " + title + " font ',13'\n";
}

/// One metric drawn as a line per strategy.
struct line_metric {
  /// Name in block comments ("p50"); "" for the only one.
  std::string name;
  /// Its value in an entry.
  std::optional<double> (*get)(const bench_entry&);
  /// Point type and dash type of its lines.
  int pt = 7, dt = 1;
  /// Whether its lines carry the strategy in the key.
  bool titled = true;
};

/// Lines against one dimension (workers, or tests with `x_tests`), one panel
/// per value of the other, so each point is one configuration (repeats of
/// it averaged) and no line mixes configurations of different sizes.
/// `scale` multiplies values; `extra` are plot items added to every panel.
/// Returns the body, or "" when no panel has data.
std::string line_panels(chart_spec& ch, const bench_context& c,
                        const std::string& title, bool x_tests,
                        const std::vector<line_metric>& metrics, double scale,
                        const std::string& ylabel, const std::string& value,
                        const std::vector<std::string>& extra) {
  const auto& fixed = x_tests ? c.workers : c.tests;
  const char* fixed_name = x_tests ? "workers" : "tests";
  const char* x_name = x_tests ? "tests" : "workers";
  std::string s = open_panels(ch, fixed.size(), title);
  std::string fixed_key = fixed.size() > 1
                            ? "set key inside left top vertical\n"
                            : "set key outside right top vertical\n";
  bool any = false;
  for (double f : fixed) {
    std::string panel_title
      = gp_str(count_of(f, x_tests ? "worker" : "test", fixed_name));
    std::vector<std::string> items;
    double hi = 0;
    for (std::size_t i = 0; i < c.strategies.size(); ++i)
      for (const auto& m : metrics) {
        std::map<double, std::pair<double, int>> acc;
        for (const auto& e : c.bench.entries)
          if (e.strategy == c.strategies[i]
              && (x_tests ? e.workers : e.tests) == f)
            if (auto v = m.get(e)) {
              auto& a = acc[x_tests ? e.tests : e.workers];
              a.first += *v * scale;
              a.second += 1;
            }
        if (acc.empty())
          continue;
        std::string rows;
        for (const auto& [x, a] : acc) {
          rows += num(x) + " " + num(a.first / a.second) + "\n";
          hi = std::max(hi, a.first / a.second);
        }
        auto who = c.strategies[i] + (m.name.empty() ? "" : " " + m.name);
        int b = ch.data.add(who + " at " + pretty(f) + " " + fixed_name + ": "
                              + x_name + " " + value,
                            rows);
        items.push_back("data index " + std::to_string(b) + " using 1:2 with "
                        + series_style(acc.size(), false, m.pt) + " lt "
                        + std::to_string(i % palette_size + 1) + " dt "
                        + std::to_string(m.dt) + " title "
                        + (m.titled ? gp_str(c.strategies[i]) : "''"));
      }
    // One panel carries the chart title, with the size it holds.
    auto this_title
      = fixed.size() <= 1 ? title + ".\"\\n\"." + panel_title : panel_title;
    if (items.empty()) {
      s += no_data_panel(this_title, "no such metric at this size");
      continue;
    }
    any = true;
    for (const auto& x : extra)
      items.push_back(x);
    s += panel_reset();
    s += "set title " + this_title + "\n";
    s += numeric_x_axis(x_tests ? c.tests : c.workers,
                        x_tests ? "Tests submitted" : "Workers");
    s += "set ylabel " + gp_str(ylabel) + "\n";
    s += range("yrange", value_axis(0, hi));
    // Several panels: the key inside each, so the plots keep their width.
    s += fixed_key;
    s += "plot ";
    for (std::size_t i = 0; i < items.size(); ++i)
      s += (i ? ", \\\n     " : "") + items[i];
    s += "\n";
  }
  if (!any)
    return "";
  if (fixed.size() > 1)
    s += "unset multiplot\n";
  return s;
}

chart_spec bench_throughput_chart(const bench_context& c) {
  chart_spec ch;
  ch.name = "throughput";
  ch.title = "Throughput vs workers";
  ch.description = "Average throughput of each strategy as the number of "
                   "workers grows, one panel per test count: every point is "
                   "one configuration.";
  std::string title = bench_title(c, "Throughput vs workers per strategy");
  auto body
    = line_panels(ch, c, title, false, {{"", entry_throughput, 7, 1, true}}, 1,
                  "Throughput (tests/s)", "tests_per_second", {});
  ch.body = !body.empty()
              ? body
              : no_data_panel(title, c.bench.entries.empty()
                                       ? "the file has no benchmark results"
                                       : "no throughput in the results");
  return ch;
}

std::optional<double> p50_of(const bench_entry& e) {
  return metric(e.metrics, "p50_latency");
}
std::optional<double> p99_of(const bench_entry& e) {
  return metric(e.metrics, "p99_latency");
}
std::optional<double> avg_latency_of(const bench_entry& e) {
  return metric(e.metrics, "avg_latency");
}
std::optional<double> max_latency_of(const bench_entry& e) {
  return metric(e.metrics, "max_latency");
}

chart_spec bench_latency_chart(const bench_context& c) {
  chart_spec ch;
  ch.name = "latency";
  ch.title = "Latency scaling";
  // Scale against the test count when the benchmark varies it, else workers.
  bool vs_tests = c.tests.size() > 1;
  ch.description
    = std::string("Median and tail latency of each strategy as "
                  "the number of ")
      + (vs_tests ? "tests grows, one panel per worker count" : "workers grows")
      + ": every point is one configuration.";
  bool have_p50 = false, have_p99 = false;
  for (const auto& e : c.bench.entries) {
    have_p50 = have_p50 || p50_of(e).has_value();
    have_p99 = have_p99 || p99_of(e).has_value();
  }
  std::string n_low = have_p50 ? "p50" : "average";
  std::string n_high = have_p99 ? "p99" : "max";
  auto low = have_p50 ? p50_of : avg_latency_of;
  auto high = have_p99 ? p99_of : max_latency_of;
  double top = 0;
  for (const auto& e : c.bench.entries)
    for (auto get : {low, high})
      if (auto v = get(e))
        top = std::max(top, *v);
  unit u = latency_unit(top);
  std::string title
    = bench_title(c, "Latency scaling: " + n_low + " and " + n_high + " vs "
                       + (vs_tests ? "tests" : "workers"));
  std::vector<std::string> keys{
    "keyentry with linespoints lc rgb '#404040' lw 2 dt 1 pt 7 title "
      + gp_str(n_low + " (solid)"),
    "keyentry with linespoints lc rgb '#404040' lw 2 dt 2 pt 6 title "
      + gp_str(n_high + " (dashed)")};
  auto body
    = line_panels(ch, c, title, vs_tests,
                  {{n_low, low, 7, 1, true}, {n_high, high, 6, 2, false}},
                  u.scale, std::string("Latency (") + u.name + ")",
                  std::string("latency_") + u.name, keys);
  ch.body = !body.empty()
              ? body
              : no_data_panel(title, c.bench.entries.empty()
                                       ? "the file has no benchmark results"
                                       : "no latency metrics in the results");
  return ch;
}

chart_spec bench_efficiency_chart(const bench_context& c) {
  chart_spec ch;
  ch.name = "efficiency";
  ch.title = "Worker efficiency";
  ch.description = "Worker utilization of each strategy, one bar per worker "
                   "count, one panel per test count: every bar is one "
                   "configuration.";
  std::string title = bench_title(c, "Worker efficiency: utilization per "
                                     "strategy");
  const std::size_t groups = c.strategies.size();
  const std::size_t per = std::max<std::size_t>(c.workers.size(), 1);
  const double slot = 0.8 / static_cast<double>(per);
  bool labels = groups * per <= 36;
  std::string s = open_panels(ch, c.tests.size(), title);
  std::string fixed_key = c.tests.size() > 1
                            ? "set key inside left top vertical\n"
                            : "set key outside right top vertical\n";
  bool any = false;
  for (double t : c.tests) {
    std::vector<std::string> items;
    for (std::size_t k = 0; k < c.workers.size(); ++k) {
      std::string rows;
      for (std::size_t i = 0; i < groups; ++i) {
        double sum = 0;
        int n = 0;
        for (const auto& e : c.bench.entries)
          if (e.strategy == c.strategies[i] && e.workers == c.workers[k]
              && e.tests == t)
            if (auto v = entry_utilization(e)) {
              sum += *v;
              ++n;
            }
        if (n == 0)
          continue;
        double x = static_cast<double>(i)
                   + (static_cast<double>(k) - (per - 1) / 2.0) * slot;
        rows += num(x) + " " + num(sum / n) + " " + dat_str(fixed(sum / n, 0))
                + "\n";
      }
      if (rows.empty())
        continue;
      int b = ch.data.add(pretty(c.workers[k]) + " workers at " + pretty(t)
                            + " tests: position utilization_percent label",
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
    auto panel_title = gp_str(count_of(t, "test", "tests"));
    if (c.tests.size() <= 1)
      panel_title = title + ".\"\\n\"." + panel_title;
    if (items.empty()) {
      s += no_data_panel(panel_title, "no worker_utilization at this size");
      continue;
    }
    any = true;
    s += panel_reset();
    s += "set title " + panel_title + "\n";
    s += "set ylabel 'Worker utilization (%)'\nset xlabel 'Strategy'\n";
    s += range("xrange", {-0.6, static_cast<double>(groups) - 0.4});
    s += range("yrange", {0, 115});
    s += "set ytics (0, 20, 40, 60, 80, 100)\n";
    s += category_tics(c.strategies,
                       (ch.width - 300) / panel_grid(c.tests.size()).first);
    s += "set xtics scale 0\n";
    s += "set boxwidth " + num(slot * 0.9) + " absolute\n";
    s += "set style fill solid 0.85 noborder\n";
    // Several panels: the key inside each, so the plots keep their width.
    s += fixed_key;
    s += "plot ";
    for (std::size_t i = 0; i < items.size(); ++i)
      s += (i ? ", \\\n     " : "") + items[i];
    s += "\n";
  }
  if (!any) {
    ch.width = 1200;
    ch.height = 700;
    ch.body = no_data_panel(title, c.bench.entries.empty()
                                     ? "the file has no benchmark results"
                                     : "no worker_utilization in the results");
    return ch;
  }
  if (c.tests.size() > 1)
    s += "unset multiplot\n";
  ch.body = s;
  return ch;
}

} // namespace

std::vector<chart_spec> bench_charts(const bench_data& b,
                                     const std::string& file) {
  bench_context c{b, file, "", {}, {}, {}, {}, 0, 0};
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
  std::set<std::pair<double, double>> all, common;
  for (const auto& e : b.entries)
    all.insert({e.workers, e.tests});
  for (const auto& cfg : all) {
    bool everyone = true;
    for (const auto& st : c.strategies)
      everyone = everyone
                 && std::any_of(b.entries.begin(), b.entries.end(),
                                [&](const bench_entry& e) {
                                  return e.strategy == st
                                         && e.workers == cfg.first
                                         && e.tests == cfg.second;
                                });
    if (everyone)
      common.insert(cfg);
  }
  for (const auto& e : b.entries)
    if (common.count({e.workers, e.tests}) > 0)
      c.compared.push_back(e);
  c.common = common.size();
  c.configurations = all.size();
  // Runs per (strategy, configuration): repeats (e.g. seeds) are averaged
  // into one point, and the subtitle says so.
  std::map<std::tuple<std::string, double, double>, int> runs;
  std::set<std::pair<double, double>> configurations;
  for (const auto& e : b.entries) {
    configurations.insert({e.workers, e.tests});
    ++runs[{e.strategy, e.workers, e.tests}];
  }
  int fewest = std::numeric_limits<int>::max(), most = 0;
  for (const auto& [key, n] : runs) {
    fewest = std::min(fewest, n);
    most = std::max(most, n);
  }
  c.subtitle
    = count_of(static_cast<double>(b.entries.size()), "result", "results")
      + (b.entries.empty()
           ? std::string{}
           : " in "
               + count_of(static_cast<double>(configurations.size()),
                          "configuration", "configurations"))
      + ", "
      + count_of(static_cast<double>(c.strategies.size()), "strategy",
                 "strategies");
  if (!c.workers.empty())
    c.subtitle += ", workers " + values_text(c.workers) + ", tests "
                  + values_text(c.tests);
  if (most > 1)
    c.subtitle += ", each point the mean of "
                  + (fewest == most
                       ? std::to_string(most)
                       : std::to_string(fewest) + "-" + std::to_string(most))
                  + " runs";
  if (auto ts = find_any(b.configuration, {"timestamp"}); ts && ts->is_string())
    c.subtitle += ", run " + printable(ts->get<std::string>()).substr(0, 19);
  return {bench_throughput_chart(c), bench_latency_chart(c),
          bench_efficiency_chart(c), bench_heatmap_chart(c),
          bench_strategy_chart(c)};
}

} // namespace alb::report::viz
