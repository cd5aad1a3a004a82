#pragma once

// What runs a worker's tests (private to actors/worker.cpp and
// actors/real_worker.cpp): the worker actor keeps the local queue, joins,
// answers revokes and cancels and sends reports; an executor only starts,
// stops and ends runs. Two exist: the simulation (actors/worker.cpp) and
// real processes (actors/real_worker.cpp).

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <caf/fwd.hpp>

#include "actors/messages.hpp"

namespace alb {

/// What an executor may ask of the worker hosting it.
class executor_host {
public:
  virtual ~executor_host() = default;
  /// Real seconds since the worker started (the actor clock).
  virtual double now() const = 0;
  /// Calls the executor's `on_timer(seq)` after `seconds` of real time.
  virtual void timer(double seconds, uint64_t seq) = 0;
  /// Calls the executor's `on_deadline(seq)` after `seconds` of real time.
  virtual void deadline(double seconds, uint64_t seq) = 0;
  /// A thread-safe callable that makes the worker call `on_exit(seq)`; it
  /// may outlive the worker (it then does nothing).
  virtual std::function<void()> exit_notifier(uint64_t seq) = 0;
};

/// Starts, stops and ends runs; the worker fills `ref`, `gen` and
/// `queued_seconds` of every report.
class executor {
public:
  virtual ~executor() = default;
  /// Starts `item` as run `seq`. True: it runs (its end arrives through one
  /// of the callbacks below); false: it already ended and `done` is its
  /// report.
  virtual bool start(executor_host& host, uint64_t seq, const work_item& item,
                     work_report& done)
    = 0;
  /// A `timer` of run `seq` fired; true when the run ended (`done` filled).
  virtual bool on_timer(executor_host& host, uint64_t seq,
                        const work_item& item, work_report& done)
    = 0;
  /// A `deadline` of run `seq` passed: stop it; its end follows through
  /// `on_exit` (or, when it returns true, right now in `done`).
  virtual bool on_deadline(executor_host& host, uint64_t seq,
                           const work_item& item, work_report& done)
    = 0;
  /// The exit notifier of run `seq` fired; true when the run ended.
  virtual bool on_exit(executor_host& host, uint64_t seq, const work_item& item,
                       work_report& done)
    = 0;
  /// Run `seq` was withdrawn: stop it, no report.
  virtual void stop(uint64_t seq) = 0;
  /// Adds what it knows to the worker's load (asked only when
  /// `reports_load()`, as a report leaves).
  virtual void fill_load(executor_host& host, worker_load& l) = 0;
  /// Whether it sees load beyond the worker's own tests (`fill_load`); the
  /// worker's own counts the scheduler already knows, so without it no load
  /// is ever sent.
  virtual bool reports_load() const { return false; }
};

/// Settings of the one worker actor, whatever its executor.
struct worker_core_options {
  /// What it offers; `max_concurrent_tests` (else `cpu_cores`, at least 1)
  /// is how many tests it runs at once.
  worker_capabilities caps;
  /// Join through this coordinator (with `token` and `node`); when null the
  /// worker joins the scheduler it was spawned with directly.
  coordinator_actor coordinator;
  /// Join token presented to the coordinator.
  std::string token;
  /// Name of the node process hosting the worker.
  std::string node;
  /// The node's uplink (with `coordinator` only; may be null).
  node_uplink_actor uplink;
  /// Least real seconds between two looks at the executor's load
  /// (`executor::fill_load`). Nothing is sent on a timer: the load rides on
  /// the worker's next report when it changed.
  double report_interval = 1.0;
  /// Seconds the worker's clock counts per real second (queue times are
  /// reported in these units).
  double time_scale = 1;
  /// Called once with the slot when the worker joined (may be empty).
  std::function<void(uint32_t)> on_joined;
  /// A refused or lost join ends the worker with the error (else quietly).
  bool quit_with_error = true;
};

/// Spawns the worker actor with `exec` running its tests.
worker_actor spawn_worker_with(caf::actor_system& sys,
                               scheduler_actor scheduler,
                               worker_core_options opts,
                               std::unique_ptr<executor> exec);

} // namespace alb
