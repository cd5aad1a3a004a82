#pragma once

// A worker that runs real commands: the one worker actor (actors/worker.cpp:
// local queue, join, revokes, cancels, reports) with the process executor.
// A placement with a `command` runs as a child process (runtime/process) in
// its own process group, with the placement's environment additions and
// working directory, stdin from /dev/null; its stdout and stderr go through
// pipes into the node's per-test log files (runtime/test_logs.hpp) under a
// cap on their sum (runtime/output_capture.hpp): past the cap the test is
// killed and fails with "output limit exceeded". The report carries a tail
// of each. Its end is learned when it happens (pidfd), and its tree is
// killed on timeout, cancellation or the output limit: by its supervisor
// and, where the node has cgroups (`real_worker_options::cgroups`), by
// cgroup.kill of the test's own cgroup. A placement needing
// accelerators holds specific devices of the worker while it runs
// (runtime/devices: never two running tests on one device) and sees only
// those (CUDA_VISIBLE_DEVICES, HIP_/ROCR_VISIBLE_DEVICES, ALB_<TYPE>_DEVICES);
// on a worker with devices a test needing none sees none (the variables set
// to ""). A placement without a command is simulated: it "runs" for its
// expected duration and passes. The worker joins either a scheduler directly
// (in-process) or a coordinator with a
// join token (a node process); either way it answers revokes, so
// rebalancing moves tests it has not started.

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "actors/messages.hpp"
#include "runtime/byte_size.hpp"
#include "runtime/cgroup.hpp"
#include "runtime/devices.hpp"
#include "runtime/run_observer.hpp"
#include "runtime/test_logs.hpp"

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
  /// Bytes of stdout, and of stderr, kept for the report.
  size_t tail_bytes = 2048;
  /// Where the tests' logs go (shared by the node's workers; null = a
  /// private temporary directory, deleted with the worker).
  std::shared_ptr<test_log_store> logs;
  /// Cap on a test's stdout and stderr together, bytes, unless the test
  /// sets `max_output`.
  uint64_t max_output = default_max_output;
  /// Called once with the slot when the worker joined (may be empty).
  std::function<void(uint32_t)> on_joined;
  /// Told of every run's start and end (null = nobody; the node's
  /// /metrics).
  std::shared_ptr<run_observer> observer;
  /// The node's cgroups: each test runs in a cgroup of its own there,
  /// killed with cgroup.kill at its end (null = none: its supervisor
  /// alone contains it).
  std::shared_ptr<cgroup_set> cgroups;
};

/// The device indices a real worker offering `caps` hands out: per
/// accelerator type, `caps.accelerator_devices` when it names them, else
/// 0 .. count-1.
device_map worker_devices(const worker_capabilities& caps);

/// Spawns a real worker. With `opts.coordinator` set, `scheduler` may be
/// null: the coordinator's reply names the scheduler to report to. A
/// refused join ends the worker with the refusal as its exit reason.
worker_actor spawn_real_worker(caf::actor_system& sys,
                               scheduler_actor scheduler,
                               real_worker_options opts);

} // namespace alb
