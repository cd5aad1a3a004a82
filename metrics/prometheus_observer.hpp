#pragma once

// The scheduler observer that feeds the Prometheus families of a `registry`.
// Every hook is an atomic update on a handle cached at construction (or, for
// per-worker series, when the worker joins): no map lookup and no allocation
// per event, so metrics cost the scheduler almost nothing.

#include "runtime/observer.hpp"

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace prometheus {
class Counter;
class Gauge;
} // namespace prometheus

namespace alb::metrics {

class registry;

namespace detail {
struct families;
} // namespace detail

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
/// shards each get their own observer over one shared `registry`.
class prometheus_observer : public scheduler_observer {
public:
  /// Feeds the families of `reg`, which must outlive the observer.
  explicit prometheus_observer(registry& reg, observer_options opts = {});

  ~prometheus_observer() override;

  prometheus_observer(const prometheus_observer&) = delete;
  prometheus_observer& operator=(const prometheus_observer&) = delete;

  // -- scheduler_observer ---------------------------------------------------

  /// Counts `alb_tests_submitted_total{priority}`.
  void on_submitted(int priority) override;
  /// Counts the assignment (total, by strategy, per worker) and observes the
  /// wait in `alb_assignment_wait_seconds`.
  void on_assigned(std::size_t worker, int priority, std::string_view strategy,
                   double wait_seconds) override;
  /// Counts the completion and observes `alb_test_duration_seconds`.
  void on_completed(std::size_t worker, int priority,
                    double exec_seconds) override;
  /// Counts `alb_tests_failed_total{reason}`.
  void on_failed(int priority, failure_kind why) override;
  /// Counts `alb_tests_retried_total{priority}`.
  void on_retried(int priority) override;
  /// Counts `alb_tests_requeued_total{priority}`.
  void on_requeued(int priority) override;
  /// Counts `alb_tests_migrated_total`.
  void on_migrated() override;
  /// Counts `alb_tests_stolen_total`.
  void on_stolen() override;
  /// Counts `alb_adaptive_choices_total{strategy}`.
  void on_strategy_choice(std::string_view chosen) override;
  /// Counts the join and creates the worker's series if under the limit.
  void on_worker_joined(std::size_t worker, std::string_view id) override;
  /// Counts the departure and removes the worker's series.
  void on_worker_left(std::size_t worker, bool lost) override;
  /// Sets `alb_worker_load` and `alb_worker_active_tests` of the worker.
  void on_worker_load(std::size_t worker, double load,
                      int active_tests) override;
  /// Sets the queue, parked, in-flight, workers-by-state and mean-load gauges.
  void on_snapshot(const cluster_snapshot& snap) override;

  // -- hooks of the actor layer ---------------------------------------------

  /// Records one placement decision that took `seconds` (measured by the
  /// scheduler actor around the strategy call); `placed` says whether it
  /// found a worker or deferred the test.
  void observe_decision(double seconds, bool placed = true);

  /// Sets `alb_nodes_connected`.
  void set_nodes(std::size_t n);

  /// Returns whether worker `worker` currently has per-worker series.
  bool tracks_worker(std::size_t worker) const;

private:
  struct worker_slot {
    bool present = false;
    prometheus::Gauge* load = nullptr;
    prometheus::Gauge* active = nullptr;
    prometheus::Counter* assignments = nullptr;
    prometheus::Counter* completions = nullptr;
  };

  /// Per-observer cache in front of a shared strategy table, so the hot path
  /// is one string compare once warm.
  struct strategy_cache {
    std::array<std::string, 16> names;
    std::array<prometheus::Counter*, 16> counters{};
    std::size_t size = 0;
    std::size_t last = 0;
  };

  prometheus::Counter& strategy_counter(strategy_cache& cache, bool adaptive,
                                        std::string_view name);

  void release(worker_slot& slot);

  detail::families& fams_;
  observer_options opts_;
  std::vector<worker_slot> workers_;
  strategy_cache placements_;
  strategy_cache choices_;
};

} // namespace alb::metrics
