#include "report/visualize/bench_common.hpp"

namespace alb::report::viz {

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

std::string values_text(const std::vector<double>& v) {
  std::string s;
  for (std::size_t i = 0; i < v.size(); ++i)
    s += (i ? ", " : "") + pretty(v[i]);
  return s;
}

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

std::string bench_title(const bench_context& c, const std::string& what,
                        const std::string& extra) {
  return gp_lines({what + " (benchmark, " + c.file + ")", c.subtitle, extra});
}

} // namespace alb::report::viz
