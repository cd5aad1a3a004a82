#pragma once

// The arithmetic behind a run's results: every field of the reference's output
// JSON, computed as its name says, from counters and fixed-size histograms so
// a million tests cost the same memory as a thousand.

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace alb {

/// Histogram with logarithmic buckets (2% wide) from 1 microsecond to about
/// 12 days; quantiles are exact to the bucket width, min/max/mean exactly.
class log_histogram {
public:
  /// Creates an empty histogram.
  log_histogram();

  /// Records one value (seconds; negative values count as 0).
  void add(double x);

  /// Number of values recorded.
  uint64_t count() const { return count_; }

  /// Sum of the values.
  double sum() const { return sum_; }

  /// Smallest value (0 when empty).
  double min() const { return count_ ? min_ : 0; }

  /// Largest value (0 when empty).
  double max() const { return count_ ? max_ : 0; }

  /// Mean (0 when empty).
  double mean() const {
    return count_ ? sum_ / static_cast<double>(count_) : 0;
  }

  /// Value below which a fraction `q` of the values lie (0 when empty).
  double quantile(double q) const;

private:
  std::vector<uint64_t> buckets_;
  uint64_t count_ = 0;
  double sum_ = 0;
  double min_ = 0;
  double max_ = 0;
};

/// What the run knows about one worker that ever joined.
struct worker_stats {
  /// Worker name.
  std::string worker_id;
  /// When it joined (seconds since the run started).
  double joined_at = 0;
  /// When it left, or negative while it is still there.
  double left_at = -1;
  /// Concurrent test slots.
  int slots = 1;
  /// Tests placed on it.
  uint64_t assignments = 0;
  /// Tests it completed successfully.
  uint64_t completed = 0;
  /// Slot-seconds spent running tests.
  double busy_seconds = 0;
};

/// Every figure of a finished (or running) run.
struct run_metrics {
  /// Tests submitted.
  uint64_t total_tests = 0;
  /// Completed / submitted, in percent.
  double success_rate = 0;
  /// Mean wait from submission to start on a worker, seconds.
  double avg_latency = 0;
  /// Longest such wait.
  double max_latency = 0;
  /// Shortest such wait.
  double min_latency = 0;
  /// Median wait.
  double p50_latency = 0;
  /// 95th percentile wait.
  double p95_latency = 0;
  /// 99th percentile wait.
  double p99_latency = 0;
  /// Most completions per second in any time-series bucket.
  double peak_throughput = 0;
  /// Completions per second over the run (first submission to last end).
  double avg_throughput = 0;
  /// Standard deviation of the number of tests placed per worker.
  double worker_assignment_stddev = 0;
  /// Most minus fewest tests placed on one worker.
  double worker_assignment_range = 0;
  /// Mean fraction of worker slot-time spent running tests (0-1).
  double worker_utilization = 0;
  /// Standard deviation of per-worker utilization, in percentage points.
  double utilization_stddev = 0;
  /// Placement tries per placed test (1 = every test placed at once).
  double avg_scheduling_attempts = 0;
  /// Workers registered at the end.
  uint64_t final_worker_count = 0;
  /// Tests never placed by the end.
  uint64_t pending_tests = 0;
  /// Tests placed on a worker at least once.
  uint64_t assigned_tests = 0;
  /// Tests that ended successfully.
  uint64_t completed_tests = 0;
  /// Tests that ended unsuccessfully (any reason but cancellation).
  uint64_t failed_tests = 0;
  /// Tests cancelled.
  uint64_t cancelled_tests = 0;
  /// Failed attempts that were tried again.
  uint64_t retried_tests = 0;
  /// Placements undone because a worker left or died.
  uint64_t requeued_tests = 0;
  /// Queued tests moved off overloaded workers.
  uint64_t migrated_tests = 0;
  /// Queued tests taken by idle workers.
  uint64_t stolen_tests = 0;
  /// Tests that exceeded their timeout.
  uint64_t timed_out_tests = 0;
  /// Tests that no worker could hold before their wait limit.
  uint64_t unplaceable_tests = 0;
  /// Seconds from the first submission to the last test's end.
  double makespan = 0;
  /// Mean test execution time, seconds.
  double avg_execution_time = 0;
  /// Mean turnaround (submission to end), seconds.
  double avg_turnaround = 0;
  /// Per priority 1-5: tests started, mean, p50 and p99 wait (seconds).
  struct priority_latency {
    /// Tests of this priority that started.
    uint64_t count = 0;
    /// Mean wait.
    double avg = 0;
    /// Median wait.
    double p50 = 0;
    /// 99th percentile wait.
    double p99 = 0;
  };
  /// Waits by priority (index 0 = priority 1).
  std::array<priority_latency, 5> latency_by_priority{};
  /// Placements per strategy chosen by a delegating strategy (adaptive).
  std::map<std::string, uint64_t> strategy_choices;
  /// Busiest memory reservation ever seen on a worker, as a fraction of its
  /// capacity (at most 1: never oversubscribed).
  double max_memory_reservation = 0;
  /// Busiest accelerator reservation ever seen, as a fraction (at most 1).
  double max_accelerator_reservation = 0;
};

/// Serializes `m` with the reference's field names.
void to_json(nlohmann::json& j, const run_metrics& m);

/// Accumulates a run's events; `metrics()` turns them into `run_metrics`.
class run_stats {
public:
  /// A test was submitted at `now`.
  void submitted(double now);
  /// A placement try happened (successful or not).
  void placement_try() { ++placement_tries_; }
  /// A test was placed for the first time.
  void first_assignment() { ++assigned_; }
  /// A test of priority `priority` (1-5) started after waiting `wait`
  /// seconds since submission.
  void started(double wait, int priority = 3) {
    latency_.add(wait);
    if (priority >= 1 && priority <= 5)
      latency_by_priority_[static_cast<size_t>(priority - 1)].add(wait);
  }
  /// A test ended successfully.
  void completed(double now, double exec, double turnaround);
  /// A test ended unsuccessfully; `timeout`/`unplaceable` say why.
  void failed(double now, bool timeout, bool unplaceable);
  /// A test was cancelled.
  void cancelled(double now);
  /// A failed attempt was retried.
  void retried() { ++retried_; }
  /// A placement was undone because its worker left.
  void requeued() { ++requeued_; }
  /// A queued test moved off an overloaded worker.
  void migrated() { ++migrated_; }
  /// A queued test was stolen by an idle worker.
  void stolen() { ++stolen_; }
  /// A delegating strategy (adaptive) chose `name` for a placement.
  void strategy_choice(std::string_view name);
  /// A worker's reservation reached these fractions of its capacity.
  void reservation(double memory_fraction, double accel_fraction);

  /// Registers a worker; returns its serial for the calls below.
  uint32_t worker_joined(std::string id, double now, int slots);
  /// The worker with `serial` left.
  void worker_left(uint32_t serial, double now);
  /// A test was placed on the worker.
  void worker_assigned(uint32_t serial) { ++workers_[serial].assignments; }
  /// The worker ran a test for `exec` seconds (successfully or not).
  void worker_ran(uint32_t serial, double exec, bool success);

  /// Sets the peak completions per second (from the recorder's buckets).
  void set_peak_throughput(double x) { peak_throughput_ = x; }

  /// Computes every figure as of `end`.
  run_metrics metrics(double end, uint64_t final_workers,
                      uint64_t pending) const;

  /// Per-worker figures.
  const std::vector<worker_stats>& workers() const { return workers_; }

  /// Tests that ended in any way.
  uint64_t ended() const { return completed_ + failed_ + cancelled_; }

  /// Tests submitted.
  uint64_t submitted_count() const { return submitted_; }

  /// Tests completed successfully.
  uint64_t completed_count() const { return completed_; }

  /// Latency histogram (submission to start).
  const log_histogram& latency() const { return latency_; }

private:
  uint64_t submitted_ = 0;
  uint64_t assigned_ = 0;
  uint64_t completed_ = 0;
  uint64_t failed_ = 0;
  uint64_t cancelled_ = 0;
  uint64_t retried_ = 0;
  uint64_t requeued_ = 0;
  uint64_t migrated_ = 0;
  uint64_t stolen_ = 0;
  uint64_t timed_out_ = 0;
  uint64_t unplaceable_ = 0;
  uint64_t placement_tries_ = 0;
  double first_submit_ = -1;
  double last_end_ = -1;
  double exec_sum_ = 0;
  double turnaround_sum_ = 0;
  double peak_throughput_ = 0;
  double max_mem_res_ = 0;
  double max_acc_res_ = 0;
  log_histogram latency_;
  std::array<log_histogram, 5> latency_by_priority_;
  std::map<std::string, uint64_t, std::less<>> choices_;
  std::vector<worker_stats> workers_;
};

/// Time series in fixed buckets: completions per second and mean latency per
/// bucket, plus sampled gauges (queue depth, workers). Memory grows with the
/// run's length, never with its number of tests.
class time_series {
public:
  /// Buckets of `width` seconds.
  explicit time_series(double width = 1.0) : width_(width) {}

  /// Bucket width in seconds.
  double width() const { return width_; }

  /// `n` tests completed at `now`.
  void add_completions(double now, uint64_t n);
  /// `n` tests started at `now` after waiting `latency_sum` seconds in all.
  void add_latency(double now, double latency_sum, uint64_t n);
  /// Samples the queue depth and worker count at `now`.
  void sample(double now, double queue_depth, double workers);

  /// Highest completions per second over all buckets.
  double peak_throughput() const;

  /// The series as [[t, v], ...] pairs keyed "throughput", "latency",
  /// "queue_depth" and "workers" (t = bucket start in seconds).
  nlohmann::json to_json() const;

private:
  struct bucket {
    uint64_t completions = 0;
    double latency_sum = 0;
    uint64_t latency_count = 0;
    double queue_depth = 0;
    double workers = 0;
    bool sampled = false;
  };

  bucket& at(double now);

  double width_;
  std::vector<bucket> buckets_;
};

} // namespace alb
