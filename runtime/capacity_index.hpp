#pragma once

// An index over worker slots answering "which worker can hold this test?" in
// O(log n) for the common case: a segment tree whose nodes keep, for their
// subtree, the largest free memory, free accelerators per type, free test
// slots and total capacities, and the smallest load score. Queries prune whole
// subtrees that cannot fit a test, so no decision scans every worker.

#include <array>
#include <cstdint>
#include <limits>
#include <set>
#include <utility>
#include <vector>

namespace alb {

/// Number of distinct accelerator types a cluster may use.
constexpr int max_accel_types = 4;

/// Accelerator counts indexed by interned accelerator type.
using accel_counts = std::array<int16_t, max_accel_types>;

/// What a test needs from a worker, in index units.
struct capacity_need {
  /// Memory in GB.
  float memory = 0;
  /// Accelerators per interned type.
  accel_counts accel{};
};

/// Capacity of one worker slot as the index sees it.
struct capacity_leaf {
  /// Free memory in GB.
  float free_memory = -1;
  /// Total memory in GB.
  float total_memory = -1;
  /// Load score in [0, 1]; lower is less loaded.
  float load = std::numeric_limits<float>::infinity();
  /// Further tests the worker may take now.
  int16_t free_slots = -1;
  /// Free accelerators per type.
  accel_counts free_accel{-1, -1, -1, -1};
  /// Total accelerators per type.
  accel_counts total_accel{-1, -1, -1, -1};
};

/// Segment tree over worker slots.
class capacity_index {
public:
  /// Sentinel for "no worker".
  static constexpr uint32_t npos = std::numeric_limits<uint32_t>::max();

  /// Makes room for at least `n` worker slots.
  void reserve(uint32_t n);

  /// Sets slot `i` (growing the index when needed) and updates its ancestors.
  void set(uint32_t i, const capacity_leaf& leaf);

  /// Marks slot `i` empty (no worker).
  void clear(uint32_t i) { set(i, capacity_leaf{}); }

  /// Returns the leaf of slot `i`.
  const capacity_leaf& leaf(uint32_t i) const { return nodes_[base_ + i]; }

  /// Number of slots the tree can address.
  uint32_t size() const { return base_; }

  /// Returns whether any slot has room for one more test.
  bool any_free_slot() const { return base_ > 0 && nodes_[1].free_slots >= 1; }

  /// The lowest load score of any slot (infinity when empty).
  float min_load() const {
    return base_ > 0 ? nodes_[1].load : std::numeric_limits<float>::infinity();
  }

  /// Cheap necessary condition for any slot taking `n` now (the root's
  /// maxima); false means no slot can.
  bool may_fit_now(const capacity_need& n) const {
    return base_ > 0 && fits_free(nodes_[1], n);
  }

  /// Returns whether slot `i` can take a test needing `n` now.
  bool fits_now(uint32_t i, const capacity_need& n) const {
    return i < base_ && fits_free(nodes_[base_ + i], n);
  }

  /// Least loaded slot that fits `n` now and satisfies `pred(slot)`, or npos.
  template<class Pred>
  uint32_t least_loaded(const capacity_need& n, Pred&& pred) const {
    float best = std::numeric_limits<float>::infinity();
    uint32_t best_slot = npos;
    if (base_ > 0)
      least_rec(1, n, pred, best, best_slot);
    return best_slot;
  }

  /// First slot at or after `start` (wrapping around) that fits `n` now and
  /// satisfies `pred(slot)`, or npos.
  template<class Pred>
  uint32_t first_from(uint32_t start, const capacity_need& n,
                      Pred&& pred) const {
    if (base_ == 0)
      return npos;
    if (start >= base_)
      start = 0;
    auto r = first_rec(1, 0, base_, start, n, pred);
    if (r == npos && start > 0)
      r = first_rec(1, 0, base_, 0, n, pred);
    return r;
  }

  /// Slot fitting `n` now with the least free memory left after placing it
  /// (best fit; ties to the lowest slot), or npos. Walks the slots with a
  /// free test slot (and, for a test that needs accelerators, a free one
  /// of the scarcest type it needs) in order of free memory from
  /// `n.memory` up: O(log n) to the first candidate, and the first that
  /// also has the accelerators and satisfies `pred` is the answer. Past
  /// `best_fit_walk` candidates that fail those it searches the tree
  /// instead (same answer).
  template<class Pred>
  uint32_t best_fit(const capacity_need& n, Pred&& pred) const {
    if (base_ == 0)
      return npos;
    // Walking only the slots with the accelerator keeps a GPU test from
    // stepping over every CPU-only slot with less memory (a fleet whose GPU
    // machines are the big ones), which sent the walk to the tree search,
    // O(GPU workers) per decision.
    const auto* list = &by_free_memory_[0];
    for (int k = 0; k < max_accel_types; ++k)
      if (n.accel[k] > 0 && by_free_memory_[1 + k].size() < list->size())
        list = &by_free_memory_[1 + k];
    auto it = list->lower_bound({n.memory, 0});
    for (int i = 0; i < best_fit_walk && it != list->end(); ++i, ++it) {
      auto slot = it->second;
      if (fits_free(nodes_[base_ + slot], n) && pred(slot))
        return slot;
    }
    if (it == list->end())
      return npos;
    float best = std::numeric_limits<float>::infinity();
    uint32_t best_slot = npos;
    best_fit_rec(1, n, pred, best, best_slot);
    return best_slot;
  }

  /// Candidates `best_fit` walks in free-memory order before it searches
  /// the tree.
  static constexpr int best_fit_walk = 64;

  /// Returns whether any slot could hold `n` when empty (total capacity).
  bool any_could_fit(const capacity_need& n) const {
    return base_ > 0 && could_rec(1, n);
  }

  /// Returns whether any slot satisfying `pred(slot)` could hold `n` when
  /// empty (total capacity). Prunes subtrees too small for `n`.
  template<class Pred>
  bool any_could_fit_if(const capacity_need& n, Pred&& pred) const {
    return base_ > 0 && could_if_rec(1, n, pred);
  }

private:
  static bool fits_free(const capacity_leaf& x, const capacity_need& n) {
    if (x.free_slots < 1 || x.free_memory < n.memory)
      return false;
    for (int i = 0; i < max_accel_types; ++i)
      if (x.free_accel[i] < n.accel[i])
        return false;
    return true;
  }

  static bool fits_total(const capacity_leaf& x, const capacity_need& n) {
    if (x.total_memory < n.memory)
      return false;
    for (int i = 0; i < max_accel_types; ++i)
      if (x.total_accel[i] < n.accel[i])
        return false;
    return true;
  }

  /// Recomputes inner node `node` from its children; false if it stayed
  /// as it was (then so do its ancestors).
  bool pull(uint32_t node);

  /// Whether leaves `a` and `b` belong to the same lists under the same key.
  static bool same_lists(const capacity_leaf& a, const capacity_leaf& b);

  /// Adds (`add`) or removes slot `i` with leaf `x` to or from the lists
  /// of `by_free_memory_` it belongs to.
  void list(uint32_t i, const capacity_leaf& x, bool add);

  template<class Pred>
  void least_rec(uint32_t node, const capacity_need& n, Pred& pred, float& best,
                 uint32_t& best_slot) const {
    const auto& x = nodes_[node];
    if (x.load >= best || !fits_free(x, n))
      return;
    if (node >= base_) {
      auto slot = node - base_;
      if (pred(slot)) {
        best = x.load;
        best_slot = slot;
      }
      return;
    }
    auto l = 2 * node;
    auto r = l + 1;
    // Visit the child with the lower bound first so the other is usually
    // pruned; ties go left, which keeps choices deterministic.
    if (nodes_[r].load < nodes_[l].load)
      std::swap(l, r);
    least_rec(l, n, pred, best, best_slot);
    least_rec(r, n, pred, best, best_slot);
  }

  template<class Pred>
  uint32_t first_rec(uint32_t node, uint32_t lo, uint32_t hi, uint32_t start,
                     const capacity_need& n, Pred& pred) const {
    if (hi <= start || !fits_free(nodes_[node], n))
      return npos;
    if (node >= base_)
      return pred(lo) ? lo : npos;
    auto mid = lo + (hi - lo) / 2;
    auto r = first_rec(2 * node, lo, mid, start, n, pred);
    return r != npos ? r : first_rec(2 * node + 1, mid, hi, start, n, pred);
  }

  template<class Pred>
  void best_fit_rec(uint32_t node, const capacity_need& n, Pred& pred,
                    float& best, uint32_t& best_slot) const {
    const auto& x = nodes_[node];
    if (!fits_free(x, n))
      return;
    if (node >= base_) {
      auto slack = x.free_memory - n.memory;
      auto slot = node - base_;
      if (slack < best && pred(slot)) {
        best = slack;
        best_slot = slot;
      }
      return;
    }
    best_fit_rec(2 * node, n, pred, best, best_slot);
    if (best > 0)
      best_fit_rec(2 * node + 1, n, pred, best, best_slot);
  }

  template<class Pred>
  bool could_if_rec(uint32_t node, const capacity_need& n, Pred& pred) const {
    if (!fits_total(nodes_[node], n))
      return false;
    if (node >= base_)
      return pred(node - base_);
    return could_if_rec(2 * node, n, pred)
           || could_if_rec(2 * node + 1, n, pred);
  }

  bool could_rec(uint32_t node, const capacity_need& n) const {
    if (!fits_total(nodes_[node], n))
      return false;
    if (node >= base_)
      return true;
    return could_rec(2 * node, n) || could_rec(2 * node + 1, n);
  }

  uint32_t base_ = 0;
  std::vector<capacity_leaf> nodes_;
  /// For best_fit, (free memory, slot) of every slot with a free test slot
  /// ([0]) and of those that also have a free accelerator of type k
  /// ([1 + k]).
  std::array<std::set<std::pair<float, uint32_t>>, 1 + max_accel_types>
    by_free_memory_;
};

} // namespace alb
