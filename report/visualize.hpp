#pragma once

// Charts from result files: `alb visualize`. Reads a stress, spike or
// benchmark result (the JSON that `alb stress`, `alb scenario`, `alb spike`
// and `alb benchmark` write), writes one gnuplot script and data file per
// chart, runs gnuplot on each to render a PNG and an SVG, and writes an
// index.html that shows them all. The scripts and data files stay beside the
// charts so they can be restyled and re-rendered (`gnuplot NAME.gp` inside the
// output directory).
//
// Usage:
//
//     alb::report::visualize_options opts;
//     opts.input = "stress.json";
//     opts.output_dir = "viz";
//     auto res = alb::report::visualize(opts); // throws visualize_error
//     for (auto& c : res.charts)
//       std::cout << c.png << "\n";

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace alb::report {

/// What a result file holds, and so which charts it gets.
enum class result_kind {
  /// One stress or scenario run: metrics plus time series.
  stress,
  /// A benchmark: one entry per (workers, tests, strategy).
  benchmark,
  /// A stress run with load spikes.
  spike,
};

/// Returns the lower-case name of `x` ("stress", "benchmark", "spike").
const char* to_string(result_kind x);

/// Parses "stress", "benchmark" or "spike" (also "scenario", read as stress).
std::optional<result_kind> parse_result_kind(std::string_view name);

/// Why `visualize` failed.
enum class visualize_ec {
  /// The input file does not exist or cannot be read.
  input_unreadable,
  /// The input is not valid JSON.
  malformed_json,
  /// The JSON is not a result of the requested (or of any) kind.
  wrong_shape,
  /// gnuplot was not found.
  gnuplot_missing,
  /// gnuplot ran but did not render a chart.
  gnuplot_failed,
  /// The output directory or a file in it could not be written.
  output_failed,
};

/// Returns the snake_case name of `x`.
const char* to_string(visualize_ec x);

/// The one error `visualize` throws; `what()` is a complete, user-facing
/// sentence naming the file and what is wrong with it.
class visualize_error : public std::runtime_error {
public:
  /// Creates an error with code `code` and message `what`.
  visualize_error(visualize_ec code, const std::string& what);

  /// What went wrong.
  visualize_ec code() const noexcept { return code_; }

  /// The process exit status for this error: 2 for a bad or missing input
  /// (nothing was written), 1 for a failure while rendering.
  int exit_status() const noexcept;

private:
  visualize_ec code_;
};

/// What to visualize and where to put it.
struct visualize_options {
  /// The result JSON file.
  std::filesystem::path input;
  /// Directory for charts, scripts, data and index.html (created if needed).
  std::filesystem::path output_dir = "visualizations";
  /// The kind of result; detected from the file when empty.
  std::optional<result_kind> kind;
  /// The gnuplot program: a path, or a name looked up in PATH.
  std::string gnuplot = "gnuplot";
  /// Timestamp in file names (letters, digits, '-', '_' only); empty means
  /// the current local time as YYYYMMDDTHHMMSS.
  std::string stamp;
};

/// The files of one chart.
struct chart_output {
  /// Short name of the chart, e.g. "latency".
  std::string name;
  /// Human-readable title.
  std::string title;
  /// The rendered bitmap.
  std::filesystem::path png;
  /// The rendered vector image.
  std::filesystem::path svg;
  /// The gnuplot script that renders both.
  std::filesystem::path script;
  /// The data file the script reads.
  std::filesystem::path data;
};

/// What `visualize` wrote.
struct visualize_result {
  /// The kind of result the charts show.
  result_kind kind = result_kind::stress;
  /// Every chart, in display order.
  std::vector<chart_output> charts;
  /// The page that shows them all.
  std::filesystem::path index_html;
};

/// Reads `opts.input`, renders every chart of its kind and writes the index.
/// Validates the whole input before writing anything: a malformed or
/// wrong-shaped file leaves the output directory untouched.
/// @throws visualize_error
visualize_result visualize(const visualize_options& opts);

/// A closed time interval in seconds since the run started.
struct time_interval {
  /// First second of the interval.
  double start = 0;
  /// Last second of the interval.
  double end = 0;
};

/// Finds load spikes in a throughput series of (seconds, tests/s) points
/// sorted by time: maximal runs of samples above mean + 2 standard deviations,
/// widened by half a sample period on each side. Fewer than three samples, or
/// a constant series, have no spikes.
std::vector<time_interval>
detect_spikes(const std::vector<std::pair<double, double>>& series);

} // namespace alb::report
