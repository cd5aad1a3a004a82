#pragma once

// A worker actor: joins a scheduler, keeps a small local queue of placements,
// runs up to its slot count at once and reports each completion (batched per
// message it handles). This one simulates execution: a duration drawn from
// its profile, compressed by the run's time scale.

#include <functional>
#include <vector>

#include "actors/messages.hpp"
#include "runtime/profiles.hpp"

namespace alb {

/// Settings of a simulated worker.
struct worker_options {
  /// What it offers.
  worker_capabilities caps;
  /// Failure rate, warm-up and background load.
  worker_profile profile;
  /// Simulated seconds per real second.
  double time_scale = 1;
  /// Least seconds (simulated time) between two steps of its background
  /// load; a changed load rides on its next report, nothing is sent on a
  /// timer.
  double report_interval = 1.0;
  /// Seed of its random draws.
  uint64_t seed = 1;
  /// Seed of the run's per-test jitter (`simulated_jitter`), the same for
  /// every worker of a run so a test's duration does not depend on where it
  /// runs; 0 draws the jitter from the worker's own sequence.
  uint64_t jitter_seed = 0;
  /// Called once with its slot when it joined, on its own thread (may be
  /// empty).
  std::function<void(uint32_t)> on_joined;
  /// Called with a test's id as the worker starts it, on the worker's
  /// thread (benchmarks: when a test reached its worker). Not owned, may be
  /// null; a pointer so a large pool holds 8 bytes per worker for it, not a
  /// copy of the function each.
  const std::function<void(const std::string&)>* on_start = nullptr;
};

/// Spawns a simulated worker that joins `scheduler`.
worker_actor spawn_worker(caf::actor_system& sys, scheduler_actor scheduler,
                          worker_options opts);

/// Spawns one actor hosting the simulated workers `workers`, each joining
/// `scheduler` with its own slot, capabilities, profile and seed, as
/// `spawn_worker` would (one actor per worker costs ~1.7 KiB of CAF's own;
/// a pool shares one). Its workers take part in rebalancing; they leave
/// together (`leave_atom` to the pool) and are lost together when the pool
/// dies. `time_scale` and `report_interval` are the first worker's for all.
worker_actor spawn_worker_pool(caf::actor_system& sys,
                               scheduler_actor scheduler,
                               std::vector<worker_options> workers);

} // namespace alb
