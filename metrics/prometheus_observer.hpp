#pragma once

// The scheduler observer that feeds the Prometheus families of a `registry`.
//
// The hot path (a test submitted, assigned, completed; a decision timed) only
// bumps counters that this observer alone writes: a relaxed atomic load and
// store, no lock, no read-modify-write instruction, no lookup, no allocation.
// The registry moves those counts into the Prometheus families when it is
// scraped. Gauges are set directly; they change once per scheduler tick.

#include "runtime/observer.hpp"

#include <cstddef>
#include <memory>
#include <string_view>

namespace alb::metrics {

class registry;

/// Settings of a `prometheus_observer`.
struct observer_options {
  /// Most workers with per-worker series (`alb_worker_*{worker="id"}`) at
  /// once, over all observers of the registry; workers beyond it are counted
  /// in `alb_workers_untracked` only. Bounds the label cardinality.
  std::size_t max_worker_series = 100;
};

/// Implements `alb::scheduler_observer` with Prometheus metrics.
///
/// Call its hooks from one thread at a time (the scheduler's). Scheduler
/// shards each get their own observer over one shared `registry`, which must
/// outlive them. Scrapes may run concurrently from any thread.
class prometheus_observer : public scheduler_observer {
public:
  /// Feeds the families of `reg`.
  explicit prometheus_observer(registry& reg, observer_options opts = {});

  /// Flushes the remaining counts and removes this observer's worker series.
  ~prometheus_observer() override;

  prometheus_observer(const prometheus_observer&) = delete;
  prometheus_observer& operator=(const prometheus_observer&) = delete;

  // -- scheduler_observer ---------------------------------------------------

  /// Counts `alb_tests_submitted_total{priority}`.
  void on_submitted(int priority) override;
  /// Counts the assignment (by priority, by strategy, per worker) and
  /// observes the wait in `alb_assignment_wait_seconds`.
  void on_assigned(std::size_t worker, int priority, std::string_view strategy,
                   double wait_seconds) override;
  /// Counts the completion (by priority, per worker) and observes
  /// `alb_test_duration_seconds`.
  void on_completed(std::size_t worker, int priority,
                    double exec_seconds) override;
  /// Counts `alb_tests_failed_total{reason}`, or
  /// `alb_tests_cancelled_total{priority}` for a cancel.
  void on_failed(int priority, failure_kind why) override;
  /// Counts `alb_tests_retried_total{priority}`.
  void on_retried(int priority) override;
  /// Counts `alb_tests_requeued_total{priority}`.
  void on_requeued(int priority) override;
  /// Counts `alb_tests_migrated_total`.
  void on_migrated() override;
  /// Counts `alb_tests_stolen_total`.
  void on_stolen() override;
  /// Counts `alb_tests_speculated_total`.
  void on_speculated() override;
  /// Counts `alb_speculation_wins_total`.
  void on_speculation_win() override;
  /// Counts `alb_adaptive_choices_total{strategy}`.
  void on_strategy_choice(std::string_view chosen) override;
  /// Counts the join and creates the worker's series if under the limit.
  void on_worker_joined(std::size_t worker, std::string_view id) override;
  /// Counts the departure and removes the worker's series.
  void on_worker_left(std::size_t worker, bool lost) override;
  /// Sets `alb_worker_load_ratio` and `alb_worker_active_tests` of the worker.
  void on_worker_load(std::size_t worker, double load,
                      int active_tests) override;
  /// Sets the queue-by-priority-and-state, in-flight, workers-by-state and
  /// mean-load gauges.
  void on_snapshot(const cluster_snapshot& snap) override;

  // -- hooks of the actor layer ---------------------------------------------

  /// Records one placement decision that took `seconds` (measured by the
  /// scheduler actor around the strategy call) in
  /// `alb_scheduling_decision_seconds`, and counts it in
  /// `alb_scheduling_attempts_total{result}`: `placed` says whether it found
  /// a worker or deferred the test.
  void observe_decision(double seconds, bool placed = true);

  /// Records a dispatch pass's mean decision time (one sample per pass).
  void on_decision(double seconds, std::size_t placed) override {
    observe_decision(seconds, placed > 0);
  }

  /// Sets `alb_nodes_connected`.
  void set_nodes(std::size_t n);

  /// Counts `alb_connections_refused_total{reason}`; `reason` is one of
  /// the guard's labels (others are ignored). Any thread.
  void count_refused_connection(std::string_view reason);

  /// Counts a node declared lost for missing heartbeats in
  /// `alb_node_heartbeat_timeouts_total`.
  void count_node_timeout();

  /// Returns whether worker `worker` currently has per-worker series.
  bool tracks_worker(std::size_t worker) const;

private:
  struct state;
  std::unique_ptr<state> st_;
};

} // namespace alb::metrics
