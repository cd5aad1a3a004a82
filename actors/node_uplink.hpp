#pragma once

// The uplink of a node process: one per connection to a coordinator. The
// node's workers report through it and the coordinator sends their
// placements through it, so each direction crosses the wire once per turn
// per node (a `node_work` or a `report_bundle`) instead of once per worker.
// It forwards in order: a worker's reports and then its leave; placements
// and then a cancel of one of them.

#include <memory>
#include <string>

#include "actors/messages.hpp"

namespace alb {
class test_log_store;
} // namespace alb

namespace alb {

/// Spawns an uplink. Workers announce themselves to it (`join_atom`)
/// before they ask the coordinator to join, and monitor it: if it goes,
/// they go, and the coordinator requeues what they held. It ends when the
/// last worker that announced itself is gone. `node` names the node
/// process (it is what the coordinator knows it by). It answers the
/// coordinator's requests for pieces of the tests' logs from `logs` (the
/// store the node's workers write; null = it keeps none).
node_uplink_actor
spawn_node_uplink(caf::actor_system& sys, const std::string& node,
                  std::shared_ptr<test_log_store> logs = nullptr);

} // namespace alb
