#pragma once

// The churn actor: changes the set of workers during a run according to a
// script (`--dynamic`, scenario events). Removed workers leave cleanly (a
// random draw) or are killed outright (those holding the most tests at that
// moment, so a crash shows its requeue); either way the scheduler requeues
// what they held.

#include <vector>

#include "actors/messages.hpp"
#include "actors/worker.hpp"
#include "runtime/simulation.hpp"

namespace alb {

/// Interface of the churn actor (its own timer only).
/// (`churn_atom, n`: a kill of n workers polls their load again.)
using churn_actor = caf::typed_actor<caf::reacts_to<churn_atom>,
                                     caf::reacts_to<churn_atom, uint64_t>>;

/// Settings of the churn actor.
struct churn_options {
  /// The changes, in any order.
  std::vector<churn_event> script;
  /// Workers present at the start.
  std::vector<worker_actor> workers;
  /// Profile of workers it adds.
  worker_profile profile;
  /// Template for added workers (time scale, report interval).
  worker_options worker_template;
  /// Simulated seconds per real second.
  double time_scale = 1;
  /// Seed of its random draws.
  uint64_t seed = 1;
  /// Most workers present at once, counting those it adds (0 = no limit):
  /// an add that would pass it adds only up to it.
  uint64_t max_workers = 0;
};

/// Spawns the churn actor for `scheduler`.
churn_actor spawn_churn(caf::actor_system& sys, scheduler_actor scheduler,
                        churn_options opts);

} // namespace alb
