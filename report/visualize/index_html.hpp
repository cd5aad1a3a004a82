#pragma once

// The index.html page that shows every chart of a result.

#include "report/visualize/chart.hpp"

#include <string>
#include <vector>

namespace alb::report::viz {

/// Returns the index.html page that shows every chart of `res`.
std::string index_html(const visualize_result& res, const std::string& input,
                       const std::string& stamp,
                       const std::vector<chart_spec>& specs);

} // namespace alb::report::viz
