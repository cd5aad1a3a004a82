#pragma once

// The dashboard's figures, derived from the latest snapshot and the one
// before it, and the alert rules applied to them.

#include "report/monitor/exposition.hpp"

#include <array>
#include <optional>
#include <string>
#include <vector>

namespace alb::report {

/// One worker's line in the busiest-workers table.
struct worker_figures {
  /// The worker's id (the `worker` label).
  std::string id;
  /// Load score, 0 idle to 1 full.
  double load = 0;
  /// Tests the worker holds, running or queued locally.
  double active_tests = 0;
  /// Successful completions per second since the previous snapshot (NaN on
  /// the first snapshot).
  double completions_per_second = 0;
};

/// The dashboard's numbers, from one snapshot and optionally its
/// predecessor. Rates are NaN when there is no predecessor.
struct monitor_figures {
  /// Whether the snapshot holds any alb metric at all.
  bool has_alb_metrics = false;
  /// `mode` label of alb_run_info ("stress", "coordinator", ...; "" if none).
  std::string mode;
  /// `strategy` label of alb_run_info.
  std::string strategy;
  /// Process uptime in seconds (NaN when not served).
  double uptime = 0;
  /// Seconds between the two snapshots (0 without a predecessor).
  double interval = 0;

  /// Registered workers.
  double workers = 0;
  /// Workers holding at least one test.
  double busy_workers = 0;
  /// Workers holding none.
  double idle_workers = 0;
  /// Mean load score over the workers, 0..1.
  double mean_load = 0;
  /// Tests waiting in the queue per priority (index 0 = priority 1).
  std::array<double, 5> queue_by_priority{};
  /// Tests waiting in the queue, all priorities.
  double queue_depth = 0;
  /// Change of `queue_depth` plus `parked` since the predecessor (0 without
  /// one).
  double queue_change = 0;
  /// Tests parked because no worker can hold them now.
  double parked = 0;
  /// Tests on workers.
  double in_flight = 0;

  /// Tests submitted, completed, failed (execution, timeout, unplaceable)
  /// so far.
  double submitted = 0, completed = 0, failed = 0;
  /// Tests cancelled so far (by a user or at shutdown): ended, but neither
  /// a success nor a failure.
  double cancelled = 0;
  /// Completions per second: the throughput.
  double throughput = 0;
  /// Submissions per second.
  double submit_rate = 0;
  /// Failures per second.
  double failure_rate = 0;
  /// Completed / (completed + failed), percent, cancelled tests left out;
  /// NaN before any test ended.
  double success_rate = 0;

  /// Assignment wait (submission to start on a worker) quantiles: the
  /// histogram bucket (seconds) each lies in.
  std::optional<quantile_bucket> wait_p50, wait_p99;
  /// Whether the quantiles cover only the last interval (else the whole
  /// run, used when no test was placed during the interval).
  bool wait_window = false;

  /// Tests moved by rebalancing, and taken by idle workers, so far.
  double migrations = 0, steals = 0;
  /// Migrations plus steals per second.
  double move_rate = 0;
  /// Tests requeued because their worker left, and retried after failing.
  double requeued = 0, retried = 0;
  /// Workers lost (vanished without leaving) so far, and since the
  /// predecessor (0 without one).
  double workers_lost = 0, workers_lost_change = 0;

  /// Workers with per-worker series, busiest (highest load) first.
  std::vector<worker_figures> workers_by_load;
  /// Workers without per-worker series (past the cardinality cap).
  double untracked_workers = 0;
};

/// Computes the figures of `cur`; rates and the queue change need `prev`
/// (a counter lower than in `prev` is taken as a restart of the target).
monitor_figures compute_figures(const metrics_snapshot& cur,
                                const metrics_snapshot* prev = nullptr);

/// Thresholds of the alerts.
struct alert_rules {
  /// Alert when the run's success rate (percent) falls below this...
  double min_success_rate = 80;
  /// ...once at least this many tests have ended (one early failure is no
  /// trend).
  double min_ended_tests = 10;
  /// Alert when a worker's load exceeds this (0..1) while tests wait and
  /// other workers are idle.
  double max_worker_load = 0.9;
};

/// What an alert is about.
enum class alert_kind {
  /// Tests were already waiting (queued or parked) at the last refresh,
  /// more wait now, and some workers sit idle: tests wait that nobody
  /// takes (unplaceable, or the balancer stalls).
  queue_growing_with_idle_workers,
  /// Too few of the ended tests succeeded.
  low_success_rate,
  /// A hot spot: at least one worker is loaded above the threshold while
  /// tests wait and other workers sit idle. A full worker with nothing
  /// waiting is in use, not overloaded; tests waiting with no idle worker
  /// mean a full cluster, not an unbalanced one.
  worker_overloaded,
  /// Workers were lost (failed without leaving) since the last refresh.
  workers_lost,
};

/// One raised alert.
struct alert {
  /// Which rule fired.
  alert_kind kind;
  /// One line for the screen, with the numbers that triggered it.
  std::string message;
};

/// Applies `rules` to `f`; returns the alerts raised, in rule order.
std::vector<alert> evaluate_alerts(const monitor_figures& f,
                                   const alert_rules& rules = {});

} // namespace alb::report
