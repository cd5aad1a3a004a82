// The benchmark charts that compare strategies over configurations: the
// utilization heatmap and the makespan/throughput comparison.

#include "report/visualize/bench_common.hpp"

#include <algorithm>
#include <map>
#include <utility>

namespace alb::report::viz {

chart_spec bench_heatmap_chart(const bench_context& c) {
  chart_spec ch;
  ch.name = "heatmap";
  ch.title = "Utilization heatmap";
  ch.description = "Worker utilization for every combination of workers and "
                   "tests, one panel per strategy.";
  // The strategies shown: all when they fit a 3x3 sheet, else the nine with
  // the highest mean throughput over the configurations all of them ran.
  std::vector<std::string> shown = c.strategies;
  std::string note;
  if (shown.size() > 9) {
    std::stable_sort(
      shown.begin(), shown.end(),
      [&](const std::string& a, const std::string& b) {
        return mean_of(c.compared, a, entry_throughput).value_or(0)
               > mean_of(c.compared, b, entry_throughput).value_or(0);
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
                   "each strategy over the configurations every strategy "
                   "ran.";
  std::string note;
  // Compare like with like: only the configurations every strategy ran,
  // and say how many those are (not the size of the workers x tests grid).
  if (c.common > 1 || c.common < c.configurations) {
    note = "mean over the "
           + count_of(static_cast<double>(c.common), "configuration",
                      "configurations")
           + (c.strategies.size() > 1 ? " every strategy ran" : "");
    if (c.common < c.configurations)
      note += " (" + std::to_string(c.configurations - c.common)
              + " run by only some left out)";
  }
  std::string title = bench_title(c,
                                  "Strategy comparison: makespan and "
                                  "throughput",
                                  note);
  std::string rows;
  double hi_m = 0, hi_t = 0;
  bool any_m = false, any_t = false, any_lb = false;
  std::vector<std::string> value_rows;
  const auto& compared = c.compared;
  for (std::size_t i = 0; i < c.strategies.size(); ++i) {
    auto m = mean_of(compared, c.strategies[i], [](const bench_entry& e) {
      return metric(e.metrics, "makespan");
    });
    auto t = mean_of(compared, c.strategies[i], entry_throughput);
    auto lb = mean_of(compared, c.strategies[i], [](const bench_entry& e) {
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
    ch.body = no_data_panel(
      title, c.bench.entries.empty() ? "the file has no benchmark results"
             : c.common == 0         ? "no configuration was run by every "
                                       "strategy"
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

} // namespace alb::report::viz
