#pragma once

// An append-only array in fixed chunks: elements never move when it grows
// (handles into it stay valid) and it allocates once per chunk rather than
// once per element, as std::deque does for elements of a few hundred bytes.
// Chunks come from huge_alloc, so filling them costs few page faults.

#include <cstddef>
#include <new>
#include <utility>
#include <vector>

#include "runtime/huge_pages.hpp"

namespace alb {

/// Append-only, index-addressed storage with stable element addresses.
template<class T>
class chunked_store {
public:
  /// Elements per chunk: about 2 MiB worth, at least 64.
  static constexpr std::size_t per_chunk
    = (std::size_t{2} << 20) / sizeof(T) > 64
        ? (std::size_t{2} << 20) / sizeof(T)
        : 64;

  /// An empty store.
  chunked_store() = default;
  chunked_store(const chunked_store&) = delete;
  chunked_store& operator=(const chunked_store&) = delete;

  /// Takes over `o`'s chunks (elements keep their addresses); `o` is left
  /// empty.
  chunked_store(chunked_store&& o) noexcept
    : chunks_(std::move(o.chunks_)), size_(o.size_) {
    o.chunks_.clear();
    o.size_ = 0;
  }

  /// Frees this store's elements, then takes over `o`'s.
  chunked_store& operator=(chunked_store&& o) noexcept {
    if (this != &o) {
      clear();
      chunks_ = std::move(o.chunks_);
      size_ = o.size_;
      o.chunks_.clear();
      o.size_ = 0;
    }
    return *this;
  }

  ~chunked_store() { clear(); }

  /// Number of elements.
  std::size_t size() const { return size_; }

  /// Element `i` (no bounds check).
  T& operator[](std::size_t i) { return chunks_[i / per_chunk][i % per_chunk]; }

  /// Element `i` (no bounds check).
  const T& operator[](std::size_t i) const {
    return chunks_[i / per_chunk][i % per_chunk];
  }

  /// Read-only forward iterator over the elements in index order.
  class const_iterator {
  public:
    /// Points at element `i` of `s`.
    const_iterator(const chunked_store* s, std::size_t i) : s_(s), i_(i) {}
    /// The element.
    const T& operator*() const { return (*s_)[i_]; }
    /// Next element.
    const_iterator& operator++() {
      ++i_;
      return *this;
    }
    /// Whether both point at different elements.
    bool operator!=(const const_iterator& o) const { return i_ != o.i_; }

  private:
    const chunked_store* s_;
    std::size_t i_;
  };

  /// First element.
  const_iterator begin() const { return {this, 0}; }
  /// Past the last element.
  const_iterator end() const { return {this, size_}; }

  /// Appends a value-initialized element and returns it.
  T& emplace_back() {
    if (size_ == chunks_.size() * per_chunk)
      chunks_.push_back(static_cast<T*>(huge_alloc(per_chunk * sizeof(T))));
    T* p = chunks_[size_ / per_chunk] + size_ % per_chunk;
    new (p) T();
    ++size_;
    return *p;
  }

  /// Destroys every element and frees every chunk.
  void clear() {
    for (std::size_t i = 0; i < size_; ++i)
      (*this)[i].~T();
    for (auto* c : chunks_)
      huge_free(c, per_chunk * sizeof(T));
    chunks_.clear();
    size_ = 0;
  }

private:
  std::vector<T*> chunks_;
  std::size_t size_ = 0;
};

} // namespace alb
