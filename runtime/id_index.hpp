#pragma once

// Test id -> record index, as an open-addressing hash table: one probe into a
// flat array of (hash, ref) pairs in the common case, where a node-based map
// costs several cache misses per lookup. The scheduler does three lookups per
// test (duplicate check, insert, erase), so this is on the hot path.

#include <cstdint>
#include <string_view>
#include <vector>

#include "runtime/huge_pages.hpp"

namespace alb {

/// Open-addressing map from test ids to record indexes. The ids themselves
/// live in the records; `KeyOf(ref)` returns the id of record `ref`.
class id_index {
public:
  /// Returned by `find` when the id is absent.
  static constexpr uint32_t npos = UINT32_MAX;

  /// Returns the record holding `id`, or npos.
  template<class KeyOf>
  uint32_t find(std::string_view id, KeyOf&& key_of) const {
    if (slots_.empty())
      return npos;
    auto h = hash(id);
    for (auto i = h & mask_;; i = (i + 1) & mask_) {
      auto& s = slots_[i];
      if (s.ref == empty_ref)
        return npos;
      if (s.ref != tomb_ref && s.hash == h && key_of(s.ref) == id)
        return s.ref;
    }
  }

  /// Adds `id` -> `ref`; `id` must be absent.
  template<class KeyOf>
  void insert(std::string_view id, uint32_t ref, KeyOf&& key_of) {
    if ((used_ + 1) * 2 > slots_.size())
      grow(key_of);
    place(hash(id), ref);
    ++used_;
    ++live_;
  }

  /// Removes `id` (held by `ref`) if present.
  template<class KeyOf>
  void erase(std::string_view id, uint32_t ref, KeyOf&& key_of) {
    if (slots_.empty())
      return;
    auto h = hash(id);
    for (auto i = h & mask_;; i = (i + 1) & mask_) {
      auto& s = slots_[i];
      if (s.ref == empty_ref)
        return;
      if (s.ref == ref && s.hash == h) {
        s.ref = tomb_ref;
        --live_;
        return;
      }
    }
    (void)key_of;
  }

  /// Number of ids held.
  size_t size() const { return live_; }

private:
  static constexpr uint32_t empty_ref = UINT32_MAX;
  static constexpr uint32_t tomb_ref = UINT32_MAX - 1;

  struct slot {
    uint64_t hash = 0;
    uint32_t ref = empty_ref;
  };

  static uint64_t hash(std::string_view s) {
    // FNV-1a, then a final mix so that ids differing only in their last
    // digits spread over the whole table.
    uint64_t h = 1469598103934665603ULL;
    for (unsigned char c : s)
      h = (h ^ c) * 1099511628211ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
  }

  void place(uint64_t h, uint32_t ref) {
    for (auto i = h & mask_;; i = (i + 1) & mask_) {
      auto& s = slots_[i];
      if (s.ref == empty_ref || s.ref == tomb_ref) {
        if (s.ref == tomb_ref)
          --used_; // reusing a tombstone: insert() counts it again
        s.hash = h;
        s.ref = ref;
        return;
      }
    }
  }

  template<class KeyOf>
  void grow(KeyOf&) {
    // Rebuild without tombstones; double only when live ids need it.
    auto cap = slots_.empty() ? size_t{64} : slots_.size();
    while ((live_ + 1) * 2 > cap)
      cap *= 2;
    if (cap == slots_.size() && used_ > live_ * 2)
      ; // same size, just dropping tombstones
    else if (cap == slots_.size())
      cap *= 2;
    std::vector<slot, huge_allocator<slot>> old;
    old.swap(slots_);
    slots_.assign(cap, slot{});
    mask_ = cap - 1;
    used_ = live_;
    for (auto& s : old)
      if (s.ref != empty_ref && s.ref != tomb_ref)
        place(s.hash, s.ref);
  }

  std::vector<slot, huge_allocator<slot>> slots_;
  size_t mask_ = 0;
  size_t used_ = 0; // live + tombstones
  size_t live_ = 0;
};

} // namespace alb
