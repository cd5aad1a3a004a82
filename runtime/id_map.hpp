#pragma once

// A map from test ids to values for hot paths that insert and erase
// hundreds of thousands of ids a second: entries live in a chunked store
// (stable addresses, one allocation per chunk, reused through a free list)
// and an open-addressing id_index finds them. Compared with
// std::unordered_map<std::string, T> it allocates no node per entry and a
// lookup touches two cache lines instead of three or four.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runtime/chunked_store.hpp"
#include "runtime/id_index.hpp"

namespace alb {

/// Test id -> T, with stable references to the values.
template<class T>
class id_map {
public:
  /// Returned by `find` when the id is absent.
  static constexpr uint32_t npos = id_index::npos;

  /// The entry of `id`, added (value-initialized) when absent; second is
  /// whether it was added.
  std::pair<uint32_t, bool> try_emplace(std::string_view id) {
    if (auto ref = find(id); ref != npos)
      return {ref, false};
    uint32_t ref;
    if (!free_.empty()) {
      ref = free_.back();
      free_.pop_back();
    } else {
      ref = static_cast<uint32_t>(store_.size());
      store_.emplace_back();
    }
    auto& e = store_[ref];
    e.id.assign(id.data(), id.size());
    e.live = true;
    index_.insert(id, ref, key_of());
    return {ref, true};
  }

  /// The entry of `id`, or npos.
  uint32_t find(std::string_view id) const { return index_.find(id, key_of()); }

  /// The value of entry `ref` (which must be live).
  T& operator[](uint32_t ref) { return store_[ref].value; }

  /// The value of entry `ref` (which must be live).
  const T& operator[](uint32_t ref) const { return store_[ref].value; }

  /// The id of entry `ref`.
  const std::string& key(uint32_t ref) const { return store_[ref].id; }

  /// Removes entry `ref` (which must be live); its value is reset.
  void erase(uint32_t ref) {
    auto& e = store_[ref];
    index_.erase(e.id, ref, key_of());
    e.live = false;
    e.value = T{};
    free_.push_back(ref);
  }

  /// Removes `id` if present.
  void erase(std::string_view id) {
    if (auto ref = find(id); ref != npos)
      erase(ref);
  }

  /// Number of entries.
  size_t size() const { return index_.size(); }

  /// Calls `f(id, value)` for every entry, in no particular order.
  template<class F>
  void for_each(F&& f) const {
    for (auto& e : store_)
      if (e.live)
        f(e.id, e.value);
  }

private:
  struct entry {
    std::string id;
    T value{};
    bool live = false;
  };

  auto key_of() const {
    return [this](uint32_t ref) -> std::string_view { return store_[ref].id; };
  }

  chunked_store<entry> store_;
  std::vector<uint32_t> free_;
  id_index index_;
};

} // namespace alb
