#pragma once

// Prometheus text exposition, parsed: what `alb monitor` scrapes and what
// `--live` takes from the run's own registry.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace alb::report {

/// One sample line of the exposition format: `name{labels} value`.
struct metric_sample {
  /// Metric name, e.g. `alb_queue_depth` or
  /// `alb_assignment_wait_seconds_bucket`.
  std::string name;
  /// Label pairs in the order they appeared.
  std::vector<std::pair<std::string, std::string>> labels;
  /// The sample value (may be NaN or infinite).
  double value = 0;

  /// Returns the value of label `key`, or null when the sample lacks it.
  const std::string* label(std::string_view key) const;
};

/// Label constraints: every pair must be present with that value.
using label_match = std::vector<std::pair<std::string, std::string>>;

/// One parsed scrape.
struct metrics_snapshot {
  /// When it was taken, in seconds on any monotonic clock: rates divide by
  /// differences of this.
  double time = 0;
  /// Every sample, in exposition order.
  std::vector<metric_sample> samples;
  /// Lines that were neither comments nor valid samples (skipped).
  std::size_t malformed_lines = 0;

  /// Returns the sum of the samples called `name` that carry every label in
  /// `match` (0 when there are none).
  double sum(std::string_view name, const label_match& match = {}) const;

  /// Returns the (upper bound, cumulative count) pairs of the histogram
  /// buckets called `name` (e.g. "alb_assignment_wait_seconds_bucket"),
  /// sorted by bound.
  std::vector<std::pair<double, double>> buckets(std::string_view name) const;

  /// Returns whether a sample called `name` exists.
  bool has(std::string_view name) const;

  /// Returns whether any sample belongs to alb (name starts with "alb_").
  bool has_alb_metrics() const;
};

/// Parses Prometheus text exposition (version 0.0.4). Comments, blank lines
/// and optional timestamps are ignored; malformed lines are counted, not
/// fatal, so a partly odd target still shows what it can.
metrics_snapshot parse_exposition(std::string_view text, double time = 0);

/// Where a quantile lies, as far as histogram buckets tell: somewhere in
/// (lower, upper]. Buckets say nothing about where inside, so this is all a
/// display may claim.
struct quantile_bucket {
  /// The bucket's lower edge: the previous bound, 0 for the first bucket
  /// (-Inf if its bound is not positive).
  double lower = 0;
  /// The bucket's upper bound (`le`); +Inf when the rank lies above every
  /// finite bound.
  double upper = 0;
};

/// Returns the bucket that holds quantile `q` (0..1) of cumulative histogram
/// buckets given as (upper bound, cumulative count) pairs in any order: the
/// first whose count reaches rank q * total. Returns nothing when the count
/// is 0.
std::optional<quantile_bucket>
histogram_quantile_bucket(double q,
                          std::vector<std::pair<double, double>> buckets);

} // namespace alb::report
