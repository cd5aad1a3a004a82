#pragma once

// A small, fast, seedable random generator (xoshiro256** seeded through
// splitmix64). Every random draw in a simulated run comes from one of these,
// so a run replays exactly from its seed.

#include <cstddef>
#include <cstdint>
#include <vector>

namespace alb {

/// Deterministic pseudo-random generator.
class rng {
public:
  /// Seeds the generator; equal seeds give equal sequences.
  explicit rng(uint64_t seed = 1) { reseed(seed); }

  /// Restarts the sequence from `seed`.
  void reseed(uint64_t seed) {
    for (auto& s : s_)
      s = splitmix(seed);
  }

  /// Next 64 random bits.
  uint64_t next() {
    auto result = rotl(s_[1] * 5, 7) * 9;
    auto t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  /// Uniform double in [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

  /// Uniform double in [lo, hi).
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

  /// Uniform integer in [0, n); n must be positive.
  uint64_t below(uint64_t n) {
    // Lemire's multiply-shift: unbiased enough for simulation, no division.
    return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * n)
                                 >> 64);
  }

  /// A uniformly chosen element of a non-empty list.
  template<class T>
  const T& pick(const std::vector<T>& xs) {
    return xs[below(xs.size())];
  }

  /// True with probability p.
  bool chance(double p) { return uniform() < p; }

  /// A new generator seeded from this one (independent stream per actor).
  rng fork() { return rng{next()}; }

private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

  static uint64_t splitmix(uint64_t& x) {
    uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  uint64_t s_[4];
};

} // namespace alb
