#pragma once

// Scenario expectations as data: each is a metric of the result document, a
// comparison and a bound (a number, or a factor times another metric). The
// checks are evaluated here, CAF-free, from the finished document, so a
// scenario's promise is exactly what configs/scenarios.toml says and a test
// can evaluate any document against it.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace alb {

/// How a measured value is compared with its bound.
enum class comparison {
  /// measured < bound
  less,
  /// measured <= bound
  less_equal,
  /// measured > bound
  greater,
  /// measured >= bound
  greater_equal,
  /// measured == bound (within 1e-9)
  equal,
};

/// "<", "<=", ">", ">=" or "==".
const char* to_string(comparison c);

/// Parses "<", "<=", ">", ">=" or "==".
std::optional<comparison> parse_comparison(std::string_view s);

/// One stated property of a scenario.
struct scenario_expectation {
  /// The promise in words, e.g. "assignments are spread evenly".
  std::string what;
  /// What is measured: a key of the result's `metrics` (dots descend, e.g.
  /// "latency_by_priority.1.p99_latency") or a derived figure (see
  /// `derived_metrics`).
  std::string metric;
  /// How the measured value relates to the bound.
  comparison op = comparison::less_equal;
  /// The bound; with `than` set, a factor applied to that metric.
  double threshold = 0;
  /// Optional metric the bound is relative to ("" = `threshold` itself).
  std::string than;
};

/// The outcome of one expectation on one result.
struct check_outcome {
  /// The expectation judged.
  scenario_expectation expectation;
  /// The measured value (0 when the metric is missing).
  double measured = 0;
  /// The bound it was compared with.
  double bound = 0;
  /// Whether the metric (and `than`) were found in the result.
  bool found = false;
  /// Whether the expectation holds (never when the metric is missing).
  bool passed = false;

  /// E.g. "assignment_cv = 0.21 (<= 0.35)".
  std::string detail() const;
};

/// The derived figures `measure` knows besides the result's own metrics,
/// with what each means.
const std::vector<std::pair<std::string, std::string>>& derived_metrics();

/// "" when `metric` names something `measure` can find in a result,
/// otherwise why not (names the metric and what is known).
std::string metric_problem(const std::string& metric);

/// The value of `metric` in the result document `doc`.
std::optional<double> measure(const nlohmann::json& doc,
                              const std::string& metric);

/// Evaluates every expectation on `doc`.
std::vector<check_outcome>
evaluate(const std::vector<scenario_expectation>& expectations,
         const nlohmann::json& doc);

/// What every scenario promises, whatever its file says: no test is lost
/// and no worker is oversubscribed.
const std::vector<scenario_expectation>& common_expectations();

} // namespace alb
