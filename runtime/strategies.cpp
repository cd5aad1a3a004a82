// The placement strategies. Each one leans on the capacity index, so a
// decision costs O(log n) in the common case and never scans every worker.

#include "runtime/cluster_state.hpp"
#include "runtime/rng.hpp"
#include "runtime/scheduler_config.hpp"
#include "runtime/strategies_internal.hpp"
#include "runtime/strategy.hpp"

#include <stdexcept>

namespace alb {

namespace {

constexpr auto npos = capacity_index::npos;

using detail::eligible_for;

/// Next fitting worker in slot order after the previous choice.
class round_robin final : public strategy {
public:
  std::string_view name() const override { return "round_robin"; }

  uint32_t pick(const test_record& t, const cluster_state& c) override {
    auto slot = c.index().first_from(next_, t.need, eligible_for{t, c});
    if (slot != npos)
      next_ = slot + 1;
    return slot;
  }

private:
  uint32_t next_ = 0;
};

/// The fitting worker with the lowest load score.
class least_loaded final : public strategy {
public:
  std::string_view name() const override { return "least_loaded"; }

  uint32_t pick(const test_record& t, const cluster_state& c) override {
    return c.index().least_loaded(t.need, eligible_for{t, c});
  }

  bool ranks_by_load() const override { return true; }
};

/// Samples two workers and takes the less loaded one that fits: O(1) for
/// huge pools. Falls back to the index when random samples keep missing
/// (a test only few workers can hold).
class power_of_two final : public strategy {
public:
  explicit power_of_two(uint64_t seed) : rng_(seed) {
    // nop
  }

  std::string_view name() const override { return "power_of_two"; }

  bool ranks_by_load() const override { return true; }

  uint32_t pick(const test_record& t, const cluster_state& c) override {
    auto& live = c.live_workers();
    if (live.size() >= 2) {
      for (int round = 0; round < 3; ++round) {
        // Two distinct workers: sampling with replacement would compare a
        // worker with itself a 1/n of the time.
        auto n = live.size();
        auto ia = rng_.below(n);
        auto ib = (ia + 1 + rng_.below(n - 1)) % n;
        auto a = live[ia];
        auto b = live[ib];
        bool fa = c.fits_now(a, t);
        bool fb = c.fits_now(b, t);
        if (fa && fb)
          return c.load_of(b) < c.load_of(a) ? b : a;
        if (fa)
          return a;
        if (fb)
          return b;
      }
    }
    return c.index().least_loaded(t.need, eligible_for{t, c});
  }

private:
  rng rng_;
};

/// Bin packing: the fitting worker left with the least free memory, so large
/// workers stay free for large tests.
class best_fit final : public strategy {
public:
  std::string_view name() const override { return "best_fit"; }

  uint32_t pick(const test_record& t, const cluster_state& c) override {
    return c.index().best_fit(t.need, eligible_for{t, c});
  }
};

} // namespace

const std::vector<std::string>& strategy_names() {
  static const std::vector<std::string> names{
    "round_robin",    "weighted_round_robin",
    "least_loaded",   "performance_based",
    "priority_based", "affinity_based",
    "adaptive",       "composite",
    "power_of_two",   "best_fit"};
  return names;
}

namespace detail {

std::unique_ptr<strategy> make_basic_strategy(std::string_view name,
                                              uint64_t seed) {
  if (name == "round_robin")
    return std::make_unique<round_robin>();
  if (name == "least_loaded")
    return std::make_unique<least_loaded>();
  if (name == "power_of_two")
    return std::make_unique<power_of_two>(seed);
  if (name == "best_fit")
    return std::make_unique<best_fit>();
  return nullptr;
}

} // namespace detail

std::unique_ptr<strategy> make_strategy(std::string_view name,
                                        const strategy_context& ctx) {
  if (auto s = detail::make_basic_strategy(name, ctx.seed))
    return s;
  if (auto s = detail::make_adaptive_strategy(name, ctx))
    return s;
  std::string valid;
  for (auto& n : strategy_names())
    valid += (valid.empty() ? "" : ", ") + n;
  throw std::invalid_argument("unknown strategy '" + std::string{name}
                              + "' (valid: " + valid + ")");
}

std::unique_ptr<strategy> make_strategy(std::string_view name, uint64_t seed) {
  strategy_context ctx;
  ctx.seed = seed;
  return make_strategy(name, ctx);
}

std::unique_ptr<strategy> make_strategy(const scheduler_config& cfg) {
  strategy_context ctx;
  ctx.seed = cfg.seed;
  ctx.history = cfg.history.get();
  ctx.speed_hints = cfg.speed_hints;
  auto s = make_strategy(cfg.strategy, ctx);
  if (cfg.strategy_by_type.empty())
    return s;
  return detail::make_by_type_strategy(std::move(s), cfg.strategy_by_type, ctx);
}

} // namespace alb
