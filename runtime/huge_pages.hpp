#pragma once

// Memory for the scheduler's large, long-lived arrays (test records, the id
// index). Filling fresh memory costs one page fault per 4 KiB page, and in a
// virtual machine each fault is expensive: a profile of 200,000 submitted
// tests spent a quarter of the scheduler's time in them. Blocks of 1 MiB and
// more are therefore aligned to 2 MiB and marked for transparent huge pages,
// which turns 512 faults into one where the kernel allows it (and costs
// nothing where it does not).

#include <cstddef>
#include <new>

namespace alb {

/// Allocates `bytes` (huge-page backed when large); throws std::bad_alloc.
void* huge_alloc(std::size_t bytes);

/// Frees a block from huge_alloc of the same size.
void huge_free(void* p, std::size_t bytes) noexcept;

/// Sets the process's allocator up for a long-running scheduler: blocks up
/// to 32 MiB come from the heap rather than fresh mappings, and freed
/// memory up to 256 MiB stays in the process. Otherwise every large message
/// (a batch of thousands of tests) is a new mapping whose pages all fault
/// again, and a burst's memory is handed back only to be faulted in anew by
/// the next one. Call once, at start-up, before threads exist. Likewise
/// up to 512 MiB of freed huge_alloc blocks are kept for reuse
/// (`set_huge_cache_limit`): the records of a burst of 500,000 tests in
/// two shards take ~250 MiB, and their index more.
void tune_allocator_for_service();

/// Keeps up to `bytes` of freed huge_alloc blocks of 1 MiB and more for
/// later allocations of the same size instead of unmapping them (0, the
/// default, keeps none); a kept block comes back with its old contents.
/// Lowering the limit unmaps the oldest kept blocks over it.
void set_huge_cache_limit(std::size_t bytes);

/// Bytes of freed blocks kept for reuse now.
std::size_t huge_cache_bytes();

/// A standard allocator over huge_alloc, for vectors that grow large.
template<class T>
struct huge_allocator {
  /// Element type.
  using value_type = T;
  /// Stateless: every instance can free what another allocated.
  huge_allocator() = default;
  /// Rebinding constructor.
  template<class U>
  huge_allocator(const huge_allocator<U>&) noexcept {}
  /// Allocates room for `n` elements.
  T* allocate(std::size_t n) {
    return static_cast<T*>(huge_alloc(n * sizeof(T)));
  }
  /// Frees room for `n` elements.
  void deallocate(T* p, std::size_t n) noexcept { huge_free(p, n * sizeof(T)); }
  /// All instances are interchangeable.
  template<class U>
  bool operator==(const huge_allocator<U>&) const noexcept {
    return true;
  }
  /// All instances are interchangeable.
  template<class U>
  bool operator!=(const huge_allocator<U>&) const noexcept {
    return false;
  }
};

} // namespace alb
