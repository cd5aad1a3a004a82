#include "runtime/huge_pages.hpp"

#include <cstdint>
#include <malloc.h>
#include <sys/mman.h>

namespace alb {

namespace {

constexpr std::size_t huge_page = std::size_t{2} << 20;
constexpr std::size_t threshold = std::size_t{1} << 20;

std::size_t round_up(std::size_t n) {
  return (n + huge_page - 1) & ~(huge_page - 1);
}

} // namespace

void* huge_alloc(std::size_t bytes) {
  if (bytes < threshold)
    return ::operator new(bytes);
  auto size = round_up(bytes);
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
}

void huge_free(void* p, std::size_t bytes) noexcept {
  if (!p)
    return;
  if (bytes < threshold) {
    ::operator delete(p);
    return;
  }
  ::munmap(p, round_up(bytes));
}

} // namespace alb
