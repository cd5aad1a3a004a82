#include "actors/coordinator_routes.hpp"

#include <algorithm>

#include <caf/send.hpp>

namespace alb::coord {

void route_table::remove(caf::actor_id proxy) {
  std::lock_guard<std::mutex> g{mtx_};
  auto i = routes_.find(proxy);
  if (i == routes_.end())
    return;
  auto* box = i->second.box;
  routes_.erase(i);
  if (--box->routes == 0) {
    // Its placements were for workers that are all gone: the scheduler
    // requeued them.
    dirty_.erase(std::remove(dirty_.begin(), dirty_.end(), box), dirty_.end());
    nodes_.erase(box->uplink.address());
  }
}

void route_table::flush() {
  // Taken out under the lock, sent after it: a send may block on a full
  // connection's buffer for a moment.
  ready_.clear();
  {
    std::lock_guard<std::mutex> g{mtx_};
    for (auto* box : dirty_) {
      ready_.emplace_back(box->uplink, std::move(box->work));
      box->work.workers.clear();
      box->work.batches.clear();
    }
    dirty_.clear();
  }
  for (auto& [uplink, work] : ready_)
    caf::anon_send(uplink, std::move(work));
  messages_.fetch_add(ready_.size(), std::memory_order_relaxed);
  ready_.clear();
}

} // namespace alb::coord
