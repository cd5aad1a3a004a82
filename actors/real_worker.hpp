#pragma once

// A worker that runs real commands: the one worker actor (actors/worker.cpp:
// local queue, join, revokes, cancels, reports) with the process executor.
// A placement with a `command` runs as a child process (runtime/process) in
// its own process group, with the placement's environment additions and
// working directory, stdin from /dev/null and stdout+stderr captured for the
// report's tail; its end is learned when it happens (pidfd), and the group
// is killed on timeout or cancellation. A placement without a command is
// simulated: it "runs" for its expected duration and passes. The worker
// joins either a scheduler directly (in-process) or a coordinator with a
// join token (a node process); either way it answers revokes, so
// rebalancing moves tests it has not started.

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "actors/messages.hpp"
#include "runtime/run_observer.hpp"

namespace alb {

/// Settings of a real worker.
struct real_worker_options {
  /// What it offers; `max_concurrent_tests` (else `cpu_cores`, at least 1)
  /// is how many commands it runs at once.
  worker_capabilities caps;
  /// Join through this coordinator (with `token` and `node`); when null the
  /// worker joins the scheduler it was spawned with directly.
  coordinator_actor coordinator;
  /// Join token presented to the coordinator.
  std::string token;
  /// Name of the node process hosting the worker.
  std::string node;
  /// The node's uplink (with `coordinator` only; may be null): placements
  /// arrive and reports leave through it, gathered with the other workers'.
  node_uplink_actor uplink;
  /// Seconds between load reports.
  double report_interval = 1.0;
  /// Bytes of combined stdout/stderr kept for the report.
  size_t tail_bytes = 2048;
  /// Called once with the slot when the worker joined (may be empty).
  std::function<void(uint32_t)> on_joined;
  /// Told of every run's start and end (null = nobody; the node's
  /// /metrics).
  std::shared_ptr<run_observer> observer;
};

/// Spawns a real worker. With `opts.coordinator` set, `scheduler` may be
/// null: the coordinator's reply names the scheduler to report to. A
/// refused join ends the worker with the refusal as its exit reason.
worker_actor spawn_real_worker(caf::actor_system& sys,
                               scheduler_actor scheduler,
                               real_worker_options opts);

} // namespace alb
