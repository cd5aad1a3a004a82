#include "runtime/huge_pages.hpp"

#include <cstdint>
#include <malloc.h>
#include <mutex>
#include <new>
#include <sys/mman.h>
#include <utility>
#include <vector>

namespace alb {

namespace {

constexpr std::size_t huge_page = std::size_t{2} << 20;
constexpr std::size_t threshold = std::size_t{1} << 20;

std::size_t round_up(std::size_t n) {
  return (n + huge_page - 1) & ~(huge_page - 1);
}

// Freed blocks kept for the next allocation of the same size, as the
// service's malloc keeps freed memory (`tune_allocator_for_service`): a
// scheduler that ends and a new one that starts (each run of `alb stress`
// in one process, each embedded simulation) would otherwise fault in and
// zero every record chunk anew; `perf` put 6-7% of a 1,000-worker run in
// the kernel's clear_page for them.
struct block_cache {
  std::mutex mtx;
  /// (block, bytes), the latest freed last.
  std::vector<std::pair<void*, std::size_t>> blocks;
  /// Bytes the blocks hold.
  std::size_t bytes = 0;
  /// Most bytes kept (0 = none).
  std::size_t limit = 0;
};

block_cache& cache() {
  // Never destroyed: a block freed during static destruction still finds
  // it.
  static auto* c = new block_cache;
  return *c;
}

void* take_cached(std::size_t size) {
  auto& c = cache();
  std::lock_guard<std::mutex> guard{c.mtx};
  for (auto i = c.blocks.size(); i-- > 0;)
    if (c.blocks[i].second == size) {
      auto* p = c.blocks[i].first;
      c.blocks.erase(c.blocks.begin() + static_cast<std::ptrdiff_t>(i));
      c.bytes -= size;
      return p;
    }
  return nullptr;
}

bool keep_cached(void* p, std::size_t size) {
  auto& c = cache();
  std::lock_guard<std::mutex> guard{c.mtx};
  if (c.bytes + size > c.limit)
    return false;
  try {
    c.blocks.emplace_back(p, size);
  } catch (const std::bad_alloc&) {
    return false; // unmapped instead: huge_free does not throw
  }
  c.bytes += size;
  return true;
}

} // namespace

void* huge_alloc(std::size_t bytes) {
  if (bytes < threshold)
    return ::operator new(bytes);
  auto size = round_up(bytes);
  if (auto* p = take_cached(size))
    return p;
  // Over-map by one huge page and trim both ends, so the block starts on
  // a 2 MiB boundary (mmap only promises 4 KiB).
  auto span = size + huge_page;
  void* raw = ::mmap(nullptr, span, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED)
    throw std::bad_alloc{};
  auto base = reinterpret_cast<std::uintptr_t>(raw);
  auto aligned = (base + huge_page - 1) & ~(huge_page - 1);
  if (aligned > base)
    ::munmap(raw, aligned - base);
  auto tail = base + span - (aligned + size);
  if (tail > 0)
    ::munmap(reinterpret_cast<void*>(aligned + size), tail);
  auto* p = reinterpret_cast<void*>(aligned);
#ifdef MADV_HUGEPAGE
  // Advice only: without transparent huge pages this is a no-op.
  ::madvise(p, size, MADV_HUGEPAGE);
#endif
  return p;
}

void tune_allocator_for_service() {
  // Setting either value also turns off glibc's sliding thresholds.
  ::mallopt(M_MMAP_THRESHOLD, 32 << 20);
  ::mallopt(M_TRIM_THRESHOLD, 256 << 20);
  set_huge_cache_limit(std::size_t{512} << 20);
}

void set_huge_cache_limit(std::size_t bytes) {
  std::vector<std::pair<void*, std::size_t>> drop;
  {
    auto& c = cache();
    std::lock_guard<std::mutex> guard{c.mtx};
    c.limit = bytes;
    while (c.bytes > c.limit) {
      drop.push_back(c.blocks.front());
      c.bytes -= c.blocks.front().second;
      c.blocks.erase(c.blocks.begin());
    }
  }
  for (auto [p, size] : drop)
    ::munmap(p, size);
}

std::size_t huge_cache_bytes() {
  auto& c = cache();
  std::lock_guard<std::mutex> guard{c.mtx};
  return c.bytes;
}

void huge_free(void* p, std::size_t bytes) noexcept {
  if (!p)
    return;
  if (bytes < threshold) {
    ::operator delete(p);
    return;
  }
  auto size = round_up(bytes);
  if (keep_cached(p, size))
    return;
  ::munmap(p, size);
}

} // namespace alb
