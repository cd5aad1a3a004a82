#pragma once

// Reading result files: the JSON that `alb stress`, `alb scenario`, `alb
// spike` and `alb benchmark` write, validated into the runs and benchmark
// entries the charts draw. Extra fields are ignored, so producers may add
// some.

#include "report/visualize/format.hpp"

#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace alb::report::viz {

/// Reads and parses the result file at `path` (NaN/Infinity read as null).
/// Throws visualize_error.
json load_json(const fs::path& path);

/// Returns `j` as a finite number (numbers, or strings holding one).
std::optional<double> as_number(const json& j);

/// Numeric fields of a result by name.
using metric_map = std::map<std::string, double>;

/// Returns metric `key` of `m`, if present.
std::optional<double> metric(const metric_map& m, const char* key);

/// A load spike of a spike run.
struct spike_info {
  /// When it happened.
  time_interval when;
  /// Tests it submitted, if the file says.
  std::optional<double> tests;
};

/// A stress, scenario or spike run.
struct run_data {
  /// The run's configuration object.
  json configuration = json::object();
  /// Its numeric metrics.
  metric_map metrics;
  /// Its time series (seconds, value).
  series throughput, latency, queue_depth, workers;
  /// Whether the file has those series at all (an empty one is "no data").
  bool has_queue_depth = false, has_workers = false;
  /// Load spikes.
  std::vector<spike_info> spikes;
  /// True when `spikes` came from the file, false when detected.
  bool spikes_given = false;
  /// Workers at the start and at the end, if the file says.
  std::optional<double> initial_workers, final_workers;
};

/// One benchmark configuration run with one strategy.
struct bench_entry {
  /// Workers of the configuration.
  double workers = 0;
  /// Tests of the configuration.
  double tests = 0;
  /// The strategy.
  std::string strategy;
  /// Its numeric metrics.
  metric_map metrics;
};

/// A benchmark result.
struct bench_data {
  /// The benchmark's configuration object.
  json configuration = json::object();
  /// Every entry, in file order.
  std::vector<bench_entry> entries;
};

/// Returns the first of `keys` that `obj` holds, or null.
const json* find_any(const json& obj, std::initializer_list<const char*> keys);

/// Validates a stress, scenario or spike result. Throws visualize_error.
run_data parse_run(const json& j, result_kind kind, const std::string& file);

/// Validates a benchmark result. Throws visualize_error.
bench_data parse_bench(const json& j, const std::string& file);

/// Returns the kind of result `j` holds. Throws visualize_error when it is
/// none.
result_kind detect_kind(const json& j, const std::string& file);

} // namespace alb::report::viz
