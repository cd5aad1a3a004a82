#pragma once

// Placements for workers behind a node's uplink, gathered per node during
// a scheduler turn and sent as one message per node (part of the
// coordinator; see actors/coordinator_internal.hpp).

#include <atomic>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "actors/coordinator_proxy.hpp"
#include "actors/messages.hpp"

namespace alb::coord {

/// Placements of one node's workers gathered during a scheduler turn.
struct node_outbox {
  /// The node's uplink.
  node_uplink_actor uplink;
  /// What goes to it at the end of the turn.
  node_work work;
  /// Proxies routed through it.
  size_t routes = 0;
};

/// Which proxies' placements go through a node's uplink, and what is
/// gathered for each node. Written by the coordinator (joins, leaves) and
/// used by the scheduler's route and flush hooks on the scheduler's thread.
class route_table {
public:
  /// Routes the proxy `proxy` (an actor id in this process) through
  /// `uplink` to the worker with actor id `worker` on the node.
  void add(caf::actor_id proxy, const node_uplink_actor& uplink,
           uint64_t worker) {
    std::lock_guard<std::mutex> g{mtx_};
    auto& box = nodes_[uplink.address()];
    if (!box.uplink)
      box.uplink = uplink;
    ++box.routes;
    routes_[proxy] = route{worker, &box};
  }

  /// Forgets the proxy's route (and its node's outbox with the last one).
  void remove(caf::actor_id proxy);

  /// The scheduler's route hook: gathers the batch for its node when the
  /// proxy has a route.
  bool gather(const worker_actor& proxy, work_batch& b) {
    std::lock_guard<std::mutex> g{mtx_};
    auto i = routes_.find(proxy.id());
    if (i == routes_.end())
      return false;
    auto* box = i->second.box;
    auto& w = box->work;
    if (w.batches.empty())
      dirty_.push_back(box);
    w.workers.push_back(i->second.worker);
    w.batches.push_back(std::move(b));
    batches_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  /// Worker batches sent through uplinks so far.
  uint64_t batches() const { return batches_.load(std::memory_order_relaxed); }

  /// Messages that carried them.
  uint64_t messages() const {
    return messages_.load(std::memory_order_relaxed);
  }

  /// Sends what was gathered, one message per node.
  void flush();

private:
  struct route {
    uint64_t worker;
    node_outbox* box;
  };
  std::mutex mtx_;
  std::unordered_map<caf::actor_id, route> routes_;
  /// Stable addresses: routes point into it.
  std::map<caf::actor_addr, node_outbox> nodes_;
  /// Nodes with placements gathered since the last flush (a flush visits
  /// only these, however many nodes there are).
  std::vector<node_outbox*> dirty_;
  /// Scheduler thread only.
  std::vector<std::pair<node_uplink_actor, node_work>> ready_;
  std::atomic<uint64_t> batches_{0};
  std::atomic<uint64_t> messages_{0};
};

} // namespace alb::coord
