#pragma once

// Test helpers that drain a cluster_state's outboxes into plain containers.

#include "runtime/cluster_state.hpp"

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

namespace alb::test_support {

/// Handles placed since the last drain, per slot.
inline std::map<uint32_t, std::vector<test_handle>>
drain_placed(cluster_state& c) {
  std::map<uint32_t, std::vector<test_handle>> out;
  c.drain_outbox(
    [&](uint32_t slot, std::vector<test_handle>& hs) { out[slot] = hs; });
  return out;
}

/// Placements the core asked to stop since the last drain, with their slot.
inline std::vector<std::pair<uint32_t, test_handle>>
drain_cancelled(cluster_state& c) {
  std::vector<std::pair<uint32_t, test_handle>> out;
  c.drain_cancels(
    [&](uint32_t slot, test_handle h) { out.emplace_back(slot, h); });
  return out;
}

} // namespace alb::test_support
