#pragma once

// Small formatting helpers of the charts: numbers as labels show them, and
// text made safe for gnuplot strings, data files and HTML.

#include "report/visualize.hpp"
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace alb::report::viz {

namespace fs = std::filesystem;
/// A result file's JSON.
using json = nlohmann::json;
/// One (x, y) point of a series.
using point = std::pair<double, double>;
/// A series of points, sorted by x.
using series = std::vector<point>;

/// Formats `v` independent of the C locale (gnuplot reads '.' decimals).
std::string num(double v, int precision = 10);

/// Formats `v` with a fixed number of decimals, locale-independent.
std::string fixed(double v, int decimals);

/// A short human-readable rendering of a measured value.
std::string pretty(double v);

/// "1 worker", "20 workers", "strategy"/"strategies".
std::string count_of(double n, const char* singular, const char* plural);

/// Drops control characters so a string cannot break a line of a script,
/// data file or comment.
std::string printable(std::string_view s);

/// A gnuplot single-quoted string literal. Single quotes are the only quoting
/// in which gnuplot does no backquote (shell) substitution and no escape
/// processing, so data from the input file cannot run commands.
std::string gp_str(std::string_view s);

/// A gnuplot string expression of several lines.
std::string gp_lines(const std::vector<std::string>& lines);

/// A double-quoted string field for a gnuplot data file.
std::string dat_str(std::string_view s);

/// Returns `s` escaped for HTML text and attributes.
std::string html(std::string_view s);

/// Returns "a list", "an object", ... for the type of `j`, for messages.
std::string json_type(const json& j);

/// Throws a visualize_error with `code` and `what`.
[[noreturn]] void fail(visualize_ec code, const std::string& what);

/// Returns a fraction (<= 1) as percent; values above 1 are taken as
/// percent already.
double as_percent(double v);

} // namespace alb::report::viz
