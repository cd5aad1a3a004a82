#pragma once

// The local proxy of a remote worker (part of the coordinator; see
// actors/coordinator_internal.hpp): the scheduler places tests on it; it
// adds how to run them (the spec store) and passes them on, and it dies
// with the remote worker so the scheduler requeues what that worker held.

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <caf/fwd.hpp>

#include "actors/messages.hpp"

namespace alb::coord {

/// How to run a test, kept in the coordinator's process while the test is
/// open; the proxies read it when the scheduler places the test.
struct run_spec {
  std::vector<std::string> command;
  std::map<std::string, std::string> env;
  std::string cwd;
  uint64_t max_output = 0;
};

/// Shared between the coordinator (writes) and the proxies (read), which
/// may run on different scheduler threads.
struct spec_store {
  std::mutex mtx;
  std::unordered_map<std::string, run_spec> by_id;

  void put(const std::string& id, run_spec s) {
    std::lock_guard<std::mutex> g{mtx};
    by_id[id] = std::move(s);
  }

  void erase(const std::string& id) {
    std::lock_guard<std::mutex> g{mtx};
    by_id.erase(id);
  }

  void fill(work_batch& b) {
    std::lock_guard<std::mutex> g{mtx};
    if (by_id.empty())
      return;
    for (auto& item : b.items) {
      if (!item.command.empty())
        continue; // the scheduler already carries it
      auto i = by_id.find(item.test_id);
      if (i == by_id.end())
        continue;
      item.command = i->second.command;
      item.env = i->second.env;
      item.cwd = i->second.cwd;
      item.max_output = i->second.max_output;
    }
  }
};

/// Spawns the proxy of `remote` (placements go through `uplink` when the
/// node has one, else to the worker itself).
revocable_worker_actor spawn_worker_proxy(caf::actor_system& sys,
                                          worker_actor remote,
                                          node_uplink_actor uplink,
                                          std::shared_ptr<spec_store> specs);

} // namespace alb::coord
