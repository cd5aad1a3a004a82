#pragma once

// Pieces the strategy sources share; not part of the public interface.

#include "runtime/capacity_index.hpp"
#include "runtime/cluster_state.hpp"
#include "runtime/strategy.hpp"

#include <memory>
#include <string_view>

namespace alb::detail {

/// Candidate predicate for index queries: the non-capacity requirements of
/// a test (backend, software, tags, not the slot its last attempt failed
/// on).
struct eligible_for {
  /// The test.
  const test_record& t;
  /// The cluster.
  const cluster_state& c;
  /// Whether the test has no such requirements (then every slot passes).
  bool simple;

  /// Captures `t` and `c`.
  eligible_for(const test_record& t, const cluster_state& c)
    : t(t), c(c), simple(t.excluded == capacity_index::npos
                         && t.req.required_backend.empty() && t.cons.empty()) {
    // nop
  }

  /// Whether `slot` meets the non-capacity requirements.
  bool operator()(uint32_t slot) const { return simple || c.eligible(slot, t); }
};

/// Makes one of the load-only strategies (round_robin, least_loaded,
/// power_of_two, best_fit), or returns null for any other name.
std::unique_ptr<strategy> make_basic_strategy(std::string_view name,
                                              uint64_t seed);

/// Makes one of the learned and combined strategies (weighted_round_robin,
/// performance_based, priority_based, affinity_based, adaptive, composite),
/// or returns null for any other name.
std::unique_ptr<strategy> make_adaptive_strategy(std::string_view name,
                                                 const strategy_context& ctx);

/// Wraps `fallback` so that tests whose `test_type` is a key of `by_type`
/// go to that strategy instead.
std::unique_ptr<strategy>
make_by_type_strategy(std::unique_ptr<strategy> fallback,
                      const std::map<std::string, std::string>& by_type,
                      const strategy_context& ctx);

} // namespace alb::detail
