#pragma once

// The scheduler actor: a thin shell around `alb::cluster_state`. It turns
// messages into calls on the core, sends the core's placements to workers in
// one batch per worker, watches workers (down messages requeue their tests)
// and drives periodic work with a timer message to itself.

#include <functional>
#include <memory>
#include <string>

#include "actors/messages.hpp"
#include "runtime/cluster_state.hpp"

namespace alb {

/// Settings of a scheduler actor.
struct scheduler_options {
  /// Core settings (strategy, queue, timers).
  scheduler_config config;
  /// Simulated seconds per real second (1 = real time).
  double time_scale = 1;
  /// Where time-series samples go (may be null).
  recorder_actor recorder;
  /// Event hooks, e.g. Prometheus (not owned; may be null).
  scheduler_observer* observer = nullptr;
  /// Called for every test that ends.
  end_listener on_end;
  /// Simulation only: the workload's estimates are noisy, each test really
  /// takes `duration_noise_factor(id, noise_seed, duration_noise)` times its
  /// expected duration (what simulated workers are told to draw around; the
  /// core keeps planning with the estimate). 0 = estimates are exact.
  double duration_noise = 0;
  /// Seed of the noise factors.
  uint64_t noise_seed = 0;
  /// Delivers one worker's placements some other way than a message to
  /// its handle, when it returns true (the coordinator gathers them per
  /// node and sends them on from `on_flush`); called on the scheduler's
  /// thread. Empty = always to the handle.
  std::function<bool(const worker_actor&, work_batch&)> route;
  /// Called once after every message the scheduler handled, after the
  /// placements it made were sent: a listener that gathers `on_end` calls
  /// sends them on from here in one message instead of one per test.
  std::function<void()> on_flush;
  /// End the run (and stop the workers) once the submitters are done and
  /// every test ended; off for long-running services.
  bool finish_when_done = true;
  /// Check the core's invariants on every tick; violations are reported to
  /// `on_violation`.
  bool check_invariants = false;
  /// Receives invariant violations.
  std::function<void(const std::string&)> on_violation;
  /// Seconds past a test's timeout after which the scheduler stops waiting
  /// for a started placement its worker never reported (counted from the
  /// worker's start notice, `report_batch::started`): the attempt fails as
  /// timed out, the test is retried or fails as its retries say, and the
  /// worker is told to cancel it. < 0 = off (the workers' own timeouts are
  /// trusted). Checked on every tick.
  double timeout_grace = -1;
  /// Receives a line for each placement given up that way (may be empty).
  std::function<void(const std::string&)> log;
  /// Called on every tick with the core (progress display, tests).
  std::function<void(const cluster_state&, double now)> on_tick;
};

/// Spawns a scheduler.
scheduler_actor spawn_scheduler(caf::actor_system& sys, scheduler_options opts);

} // namespace alb
