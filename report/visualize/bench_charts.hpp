#pragma once

// The charts of a benchmark: strategies compared over workers and test counts.

#include "report/visualize/chart.hpp"
#include "report/visualize/results.hpp"

#include <string>
#include <vector>

namespace alb::report::viz {

/// Returns the charts of benchmark `b`; `file` names the input in titles.
std::vector<chart_spec> bench_charts(const bench_data& b,
                                     const std::string& file);

} // namespace alb::report::viz
