#pragma once

// The charts of one stress, scenario or spike run.

#include "report/visualize/chart.hpp"
#include "report/visualize/results.hpp"

#include <string>
#include <vector>

namespace alb::report::viz {

/// Returns the charts of run `r` of kind `kind`; `file` names the input.
std::vector<chart_spec> run_charts(const run_data& r, result_kind kind,
                                   const std::string& file);

} // namespace alb::report::viz
