#pragma once

// The submitter actor: submits tests drawn from a profile according to a plan
// of waves (steady or bursts), in batches, then tells the scheduler how many
// it submitted in all. `end_atom` stops it early (an interrupted run): it
// reports what it submitted so far and submits nothing more.

#include "actors/messages.hpp"
#include "runtime/profiles.hpp"
#include "runtime/simulation.hpp"

namespace alb {

/// Interface of a submitter: its own timer, and `end_atom` to stop early.
using submitter_actor
  = caf::typed_actor<caf::reacts_to<submit_atom>, caf::reacts_to<end_atom>>;

/// Settings of a submitter.
struct submitter_options {
  /// What tests look like.
  test_profile profile;
  /// When to submit how many.
  std::vector<submission_wave> plan;
  /// Simulated seconds per real second.
  double time_scale = 1;
  /// Seed of its random draws.
  uint64_t seed = 1;
  /// Test ids are prefix + sequence number.
  std::string id_prefix = "t";
  /// Largest batch per message.
  size_t batch_size = 1024;
};

/// Spawns a submitter feeding `scheduler`.
submitter_actor spawn_submitter(caf::actor_system& sys,
                                scheduler_actor scheduler,
                                submitter_options opts);

} // namespace alb
