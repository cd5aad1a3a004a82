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
  auto& old = nodes_[node];
  // Most changes (a slot taken or freed by a test that needs no memory)
  // leave the key and the lists as they were: taking the key out and
  // putting it back would cost two tree walks and a node allocation.
  if (!same_lists(old, x)) {
    list(i, old, false);
    list(i, x, true);
  }
  old = x;
  // An inner node holds its subtree's best: once one is unchanged, every
  // one above it is too.
  for (node /= 2; node >= 1; node /= 2)
    if (!pull(node))
      break;
}

bool capacity_index::same_lists(const capacity_leaf& a,
                                const capacity_leaf& b) {
  auto listed = [](const capacity_leaf& x) { return x.free_slots >= 1; };
  if (listed(a) != listed(b))
    return false;
  if (!listed(a))
    return true;
  if (a.free_memory != b.free_memory)
    return false;
  for (int k = 0; k < max_accel_types; ++k)
    if ((a.free_accel[k] >= 1) != (b.free_accel[k] >= 1))
      return false;
  return true;
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

bool capacity_index::pull(uint32_t node) {
  // Runs up the tree on every placement and end (a load changes each
  // time): computed without a branch per field, and written back only
  // when something changed, so an unchanged node stops the walk.
  const auto& l = nodes_[2 * node];
  const auto& r = nodes_[2 * node + 1];
  auto& x = nodes_[node];
  capacity_leaf y;
  y.free_memory = std::max(l.free_memory, r.free_memory);
  y.total_memory = std::max(l.total_memory, r.total_memory);
  y.load = std::min(l.load, r.load);
  y.free_slots = std::max(l.free_slots, r.free_slots);
  unsigned changed = (y.free_memory != x.free_memory)
                     | (y.total_memory != x.total_memory) | (y.load != x.load)
                     | (y.free_slots != x.free_slots);
  for (int k = 0; k < max_accel_types; ++k) {
    y.free_accel[k] = std::max(l.free_accel[k], r.free_accel[k]);
    y.total_accel[k] = std::max(l.total_accel[k], r.total_accel[k]);
    changed |= static_cast<unsigned>(y.free_accel[k] != x.free_accel[k])
               | static_cast<unsigned>(y.total_accel[k] != x.total_accel[k]);
  }
  if (changed)
    x = y;
  return changed != 0;
}

} // namespace alb
