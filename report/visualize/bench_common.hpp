#pragma once

// What the benchmark charts share (internal): the benchmark as the charts
// see it, values of an entry, and the title and axis helpers; plus the two
// charts that compare strategies over configurations (bench_comparisons.cpp).

#include "report/visualize/chart.hpp"

#include <optional>
#include <string>
#include <vector>

namespace alb::report::viz {

/// A benchmark as the charts see it.
struct bench_context {
  /// The benchmark.
  const bench_data& bench;
  /// The input's file name, for titles.
  std::string file;
  /// The second title line: results, configurations, strategies, sizes.
  std::string subtitle;
  /// Strategies in order of first appearance.
  std::vector<std::string> strategies;
  /// Worker counts, sorted and distinct.
  std::vector<double> workers;
  /// Test counts, sorted and distinct.
  std::vector<double> tests;
  /// The entries of the configurations every strategy ran: what means over
  /// configurations may compare.
  std::vector<bench_entry> compared;
  /// Configurations every strategy ran, and all that were run.
  std::size_t common = 0, configurations = 0;
};

/// Returns the throughput of `e`: avg_throughput, else completions over the
/// makespan.
std::optional<double> entry_throughput(const bench_entry& e);

/// Returns the worker utilization of `e` in percent.
std::optional<double> entry_utilization(const bench_entry& e);

/// Returns the mean of `get` over the entries of `strategy` that have it.
template<class Get>
inline std::optional<double> mean_of(const std::vector<bench_entry>& entries,
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

/// Returns `v` as "5, 10, 20".
std::string values_text(const std::vector<double>& v);

/// Numeric x axis over `values`: log scale when they span a decade or more,
/// tics at the values themselves when there are few.
std::string numeric_x_axis(const std::vector<double>& values,
                           const std::string& label);

/// Returns the title expression of a chart: `what`, the subtitle, `extra`.
std::string bench_title(const bench_context& c, const std::string& what,
                        const std::string& extra = "");

/// The utilization heatmap: workers x tests, one panel per strategy.
chart_spec bench_heatmap_chart(const bench_context& c);

/// Mean makespan and throughput per strategy over the configurations every
/// strategy ran.
chart_spec bench_strategy_chart(const bench_context& c);

} // namespace alb::report::viz
