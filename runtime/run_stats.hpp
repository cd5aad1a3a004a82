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

/// Every recorded value (seconds), kept so quantiles are exact: a quantile
/// is the recorded value at its nearest rank, not an estimate. Costs 8 bytes
/// per value; min, max, sum and mean are kept as running figures.
class wait_samples {
public:
  /// Records one value (negative values count as 0).
  void add(double x);

  /// Adds every value of `other`.
  void merge(const wait_samples& other);

  /// Number of values recorded.
  uint64_t count() const { return values_.size(); }

  /// Sum of the values.
  double sum() const { return sum_; }

  /// Smallest value (0 when empty).
  double min() const { return values_.empty() ? 0 : min_; }

  /// Largest value (0 when empty).
  double max() const { return values_.empty() ? 0 : max_; }

  /// Mean (0 when empty).
  double mean() const {
    return values_.empty() ? 0 : sum_ / static_cast<double>(values_.size());
  }

  /// The recorded value of nearest rank ceil(q * count): at least a fraction
  /// `q` of the values are at or below it (0 when empty).
  double quantile(double q) const;

private:
  // Sorted lazily by quantile(); `sorted_` says whether it still is.
  mutable std::vector<double> values_;
  mutable bool sorted_ = true;
  double sum_ = 0;
  double min_ = 0;
  double max_ = 0;
};

/// The most events in any window of `width` seconds, over events fed in time
/// order: the one definition of `peak_throughput` (width 1 s) for every
/// producer. Exact: a window ending at each event counts the events in
/// (t - width, t]. Memory: the events of one window.
class sliding_peak {
public:
  /// Windows of `width` seconds.
  explicit sliding_peak(double width = 1.0) : width_(width) {}

  /// `n` events at time `t`; returns the events in the window ending at `t`.
  /// A time before the previous one counts as the previous one (clocks of
  /// one process only move forward; this keeps the window well defined).
  uint64_t add(double t, uint64_t n = 1);

  /// Most events seen in one window so far.
  uint64_t peak() const { return peak_; }

  /// Window width in seconds.
  double width() const { return width_; }

private:
  double width_;
  // (time, events at that time), oldest first; their sum is `in_window_`.
  std::vector<std::pair<double, uint64_t>> window_;
  size_t head_ = 0;
  uint64_t in_window_ = 0;
  uint64_t peak_ = 0;
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
  /// Most successful completions in any 1 s sliding window, per second.
  double peak_throughput = 0;
  /// Completions per second over the run (first submission to last end).
  double avg_throughput = 0;
  /// Mean number of tests placed per worker (every worker ever present).
  double worker_assignment_mean = 0;
  /// Standard deviation of the number of tests placed per worker.
  double worker_assignment_stddev = 0;
  /// Most minus fewest tests placed on one worker.
  double worker_assignment_range = 0;
  /// Mean fraction of worker slot-time spent running tests (0-1).
  double worker_utilization = 0;
  /// Population standard deviation of per-worker utilization, as a fraction
  /// (0-1) like `worker_utilization`.
  double utilization_stddev = 0;
  /// Placement tries per placed test (1 = every test placed at once).
  double avg_scheduling_attempts = 0;
  /// Workers registered at the end.
  uint64_t final_worker_count = 0;
  /// Most workers registered at once during the run.
  uint64_t peak_worker_count = 0;
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
  /// Straggling tests that got a speculative copy on a faster worker.
  uint64_t speculated_tests = 0;
  /// Of those, the tests whose copy finished first (the original stopped).
  uint64_t speculation_wins = 0;
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
    auto i = priority >= 1 && priority <= 5 ? static_cast<size_t>(priority - 1)
                                            : size_t{5};
    latency_by_priority_[i].add(wait);
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
  /// A queued test was handed to another scheduler of the run (a shard
  /// stealing): it no longer counts as submitted here.
  void handed_over() { ++handed_over_; }
  /// A straggling test got a speculative copy.
  void speculated() { ++speculated_; }
  /// A speculative copy finished first.
  void speculation_won() { ++speculation_wins_; }
  /// A delegating strategy (adaptive) chose `name` for a placement.
  void strategy_choice(std::string_view name);
  /// A worker's reservation reached these fractions of its capacity.
  void reservation(double memory_fraction, double accel_fraction);

  /// Makes room for `n` workers (a hint, see `cluster_state`).
  void reserve_workers(size_t n) { workers_.reserve(n); }

  /// Registers a worker; returns its serial for the calls below.
  uint32_t worker_joined(std::string id, double now, int slots);
  /// The worker with `serial` left.
  void worker_left(uint32_t serial, double now);
  /// A test was placed on the worker.
  void worker_assigned(uint32_t serial) { ++workers_[serial].assignments; }
  /// The worker ran a test for `exec` seconds (successfully or not).
  void worker_ran(uint32_t serial, double exec, bool success);

  /// Keeps every completion's time too (8 bytes each), so `merge` can
  /// compute the merged run's `peak_throughput` exactly. Call before any
  /// event.
  void keep_completion_times() { keep_times_ = true; }

  /// Adds the events of `other`, another part (shard) of the same run with
  /// the same clock: counts and samples add up, the first submission and
  /// last end are the earliest and latest, the workers are both sets. The
  /// peak throughput is exact when both kept their completion times; the
  /// peak worker count is the sum of both peaks (exact for a fleet that
  /// joins once and stays, the only kind a sharded run has).
  void merge(const run_stats& other);

  /// Computes every figure as of `end`.
  run_metrics metrics(double end, uint64_t final_workers,
                      uint64_t pending) const;

  /// Per-worker figures.
  const std::vector<worker_stats>& workers() const { return workers_; }

  /// Tests that ended in any way.
  uint64_t ended() const { return completed_ + failed_ + cancelled_; }

  /// Tests submitted (and not handed over).
  uint64_t submitted_count() const { return submitted_ - handed_over_; }

  /// Tests completed successfully.
  uint64_t completed_count() const { return completed_; }

  /// Every wait from submission to start, of all priorities.
  wait_samples latency() const;

private:
  uint64_t submitted_ = 0;
  uint64_t handed_over_ = 0;
  bool keep_times_ = false;
  std::vector<double> completion_times_;
  uint64_t assigned_ = 0;
  uint64_t completed_ = 0;
  uint64_t failed_ = 0;
  uint64_t cancelled_ = 0;
  uint64_t retried_ = 0;
  uint64_t requeued_ = 0;
  uint64_t migrated_ = 0;
  uint64_t stolen_ = 0;
  uint64_t speculated_ = 0;
  uint64_t speculation_wins_ = 0;
  uint64_t timed_out_ = 0;
  uint64_t unplaceable_ = 0;
  uint64_t placement_tries_ = 0;
  double first_submit_ = -1;
  double last_end_ = -1;
  double exec_sum_ = 0;
  double turnaround_sum_ = 0;
  sliding_peak peak_{1.0};
  double max_mem_res_ = 0;
  double max_acc_res_ = 0;
  // Waits by priority 1-5; index 5 holds any other priority.
  std::array<wait_samples, 6> latency_by_priority_;
  std::map<std::string, uint64_t, std::less<>> choices_;
  std::vector<worker_stats> workers_;
  uint64_t present_ = 0;
  uint64_t peak_present_ = 0;
};

/// Time series in fixed buckets: completions per second and mean latency per
/// bucket, the busiest 1 s window ending in each bucket, plus sampled gauges
/// (queue depth, workers). Memory grows with the
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

  /// Most completions in any 1 s sliding window (`sliding_peak`), per second.
  double peak_throughput() const;

  /// The series as [[t, v], ...] pairs keyed "throughput" (completions per
  /// second in the bucket), "throughput_1s" (most completions in a 1 s
  /// window ending in the bucket), "latency", "queue_depth" and "workers"
  /// (t = bucket start in seconds).
  nlohmann::json to_json() const;

private:
  struct bucket {
    uint64_t completions = 0;
    uint64_t window_peak = 0;
    double latency_sum = 0;
    uint64_t latency_count = 0;
    double queue_depth = 0;
    double workers = 0;
    bool sampled = false;
  };

  bucket& at(double now);

  double width_;
  std::vector<bucket> buckets_;
  sliding_peak window_{1.0};
};

} // namespace alb
