#include "runtime/capacity_index.hpp"

#include <algorithm>

namespace alb {

void capacity_index::reserve(uint32_t n) {
  if (n <= base_)
    return;
  uint32_t new_base = base_ == 0 ? 16 : base_;
  while (new_base < n)
    new_base *= 2;
  std::vector<capacity_leaf> nodes(2 * static_cast<size_t>(new_base));
  for (uint32_t i = 0; i < base_; ++i)
    nodes[new_base + i] = nodes_[base_ + i];
  nodes_.swap(nodes);
  base_ = new_base;
  for (uint32_t node = base_ - 1; node >= 1; --node)
    pull(node);
}

void capacity_index::set(uint32_t i, const capacity_leaf& x) {
  if (i >= base_)
    reserve(i + 1);
  auto node = base_ + i;
  list(i, nodes_[node], false);
  list(i, x, true);
  nodes_[node] = x;
  for (node /= 2; node >= 1; node /= 2)
    pull(node);
}

void capacity_index::list(uint32_t i, const capacity_leaf& x, bool add) {
  if (x.free_slots < 1)
    return;
  auto key = std::make_pair(x.free_memory, i);
  auto put = [&](std::set<std::pair<float, uint32_t>>& s) {
    if (add)
      s.insert(key);
    else
      s.erase(key);
  };
  put(by_free_memory_[0]);
  for (int k = 0; k < max_accel_types; ++k)
    if (x.free_accel[k] >= 1)
      put(by_free_memory_[1 + k]);
}

void capacity_index::pull(uint32_t node) {
  const auto& l = nodes_[2 * node];
  const auto& r = nodes_[2 * node + 1];
  auto& x = nodes_[node];
  x.free_memory = std::max(l.free_memory, r.free_memory);
  x.total_memory = std::max(l.total_memory, r.total_memory);
  x.load = std::min(l.load, r.load);
  x.free_slots = std::max(l.free_slots, r.free_slots);
  for (int k = 0; k < max_accel_types; ++k) {
    x.free_accel[k] = std::max(l.free_accel[k], r.free_accel[k]);
    x.total_accel[k] = std::max(l.total_accel[k], r.total_accel[k]);
  }
}

} // namespace alb
