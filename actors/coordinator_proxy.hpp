#pragma once

// The local proxy of a remote worker (part of the coordinator; see
// actors/coordinator_internal.hpp): the scheduler places tests on it (how
// to run each rides in the placement, from the scheduler's test record); it
// passes them on, and it dies with the remote worker so the scheduler
// requeues what that worker held.

#include <caf/fwd.hpp>

#include "actors/messages.hpp"

namespace alb::coord {

/// Spawns the proxy of `remote` (placements go through `uplink` when the
/// node has one, else to the worker itself).
revocable_worker_actor spawn_worker_proxy(caf::actor_system& sys,
                                          worker_actor remote,
                                          node_uplink_actor uplink);

} // namespace alb::coord
