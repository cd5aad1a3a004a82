#pragma once

// Hooks through which the scheduling core reports what it does. The core calls
// them synchronously on the scheduler's thread; the metrics layer implements
// them with cached Prometheus handles (no allocation per call). Every hook has
// a no-op default so an observer implements only what it needs.

#include <cstddef>
#include <string_view>

namespace alb {

/// Why a test ended unsuccessfully.
enum class failure_kind : unsigned char {
  /// The test ran and failed (after its retries).
  execution,
  /// The test exceeded its timeout.
  timeout,
  /// No worker could hold it before its wait limit passed.
  unplaceable,
  /// Cancelled by a user or at shutdown.
  cancelled,
};

/// Returns the lower-case name of `x` (a bounded metric label).
const char* to_string(failure_kind x);

/// A point-in-time view of the cluster, produced once per scheduler tick.
struct cluster_snapshot {
  /// Seconds since the run started.
  double now = 0;
  /// Tests in the priority queue, placeable once a slot frees, per priority
  /// (index 0 = priority 1).
  std::size_t queued_by_priority[5] = {0, 0, 0, 0, 0};
  /// Tests parked because no worker can hold them now, per priority. They
  /// wait for a worker as much as the queued ones do.
  std::size_t parked_by_priority[5] = {0, 0, 0, 0, 0};
  /// Tests waiting for their concurrency key, per priority.
  std::size_t key_waiting_by_priority[5] = {0, 0, 0, 0, 0};
  /// Tests parked, over all priorities.
  std::size_t parked = 0;
  /// Workers registered.
  std::size_t workers = 0;
  /// Workers with at least one test assigned.
  std::size_t busy_workers = 0;
  /// Tests assigned to workers (running or in their local queues).
  std::size_t assigned = 0;
  /// Mean worker load score in [0, 1].
  double mean_load = 0;
};

/// Receives the scheduling core's events.
class scheduler_observer {
public:
  virtual ~scheduler_observer() = default;

  /// A test entered the queue.
  virtual void on_submitted(int /*priority*/) {}
  /// A test was placed on worker `worker` (dense index) after waiting
  /// `wait_seconds` since submission, by strategy `strategy`.
  virtual void on_assigned(std::size_t /*worker*/, int /*priority*/,
                           std::string_view /*strategy*/,
                           double /*wait_seconds*/) {}
  /// A test completed successfully after running `exec_seconds`.
  virtual void on_completed(std::size_t /*worker*/, int /*priority*/,
                            double /*exec_seconds*/) {}
  /// A test ended unsuccessfully.
  virtual void on_failed(int /*priority*/, failure_kind /*why*/) {}
  /// A failed attempt was queued again for another try.
  virtual void on_retried(int /*priority*/) {}
  /// A test went back to the queue because its worker left.
  virtual void on_requeued(int /*priority*/) {}
  /// Rebalancing moved a queued test from an overloaded worker.
  virtual void on_migrated() {}
  /// An idle worker took a queued test from a busy one.
  virtual void on_stolen() {}
  /// A straggling test got a speculative copy on a faster worker.
  virtual void on_speculated() {}
  /// A speculative copy finished first; the original was stopped.
  virtual void on_speculation_win() {}
  /// The adaptive strategy delegated a decision to `chosen`.
  virtual void on_strategy_choice(std::string_view /*chosen*/) {}
  /// A worker joined (dense index `worker`, name `id`).
  virtual void on_worker_joined(std::size_t /*worker*/,
                                std::string_view /*id*/) {}
  /// A worker left; `lost` says whether it died rather than left cleanly.
  virtual void on_worker_left(std::size_t /*worker*/, bool /*lost*/) {}
  /// The worker's load score and tests held changed (sampled per tick).
  virtual void on_worker_load(std::size_t /*worker*/, double /*load*/,
                              int /*active_tests*/) {}
  /// A dispatch pass placed `placed` tests taking `seconds_per_decision`
  /// each on average (measured by the actor layer, which owns the clock).
  virtual void on_decision(double /*seconds_per_decision*/,
                           std::size_t /*placed*/) {}
  /// Periodic cluster view.
  virtual void on_snapshot(const cluster_snapshot& /*snap*/) {}
};

} // namespace alb
