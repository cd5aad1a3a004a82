#include "runtime/scheduler_config.hpp"

#include <cmath>
#include <string_view>

namespace alb {

namespace {

// The strategies of DESIGN.md §4. Kept here so that a config can be checked
// without pulling in the strategy implementations.
constexpr std::string_view known_strategies[] = {
  "round_robin",    "weighted_round_robin",
  "least_loaded",   "performance_based",
  "priority_based", "affinity_based",
  "adaptive",       "composite",
  "power_of_two",   "best_fit",
};

bool is_known_strategy(const std::string& name) {
  for (auto s : known_strategies)
    if (s == name)
      return true;
  return false;
}

std::string strategy_list() {
  std::string out;
  for (auto s : known_strategies) {
    if (!out.empty())
      out += ", ";
    out += s;
  }
  return out;
}

// NaN compares false with everything, so every bound is written as "not
// inside" to make NaN fail as well.
bool positive(double x) {
  return std::isfinite(x) && x > 0;
}

} // namespace

std::string scheduler_config::validate() const {
  if (!is_known_strategy(strategy))
    return "scheduler.strategy: unknown strategy '" + strategy
           + "' (expected one of " + strategy_list() + ")";
  if (prefetch < 0)
    return "scheduler.prefetch: must be at least 0, got "
           + std::to_string(prefetch);
  if (!positive(wait_limit))
    return "scheduler.wait_limit: must be a positive number of seconds";
  if (!positive(aging_interval))
    return "scheduler.aging_interval: must be a positive number of seconds";
  // A tick longer than a minute would leave aging and wait limits unchecked
  // for most of a typical run.
  if (!positive(tick_interval) || tick_interval > 60)
    return "scheduler.tick_interval: must be in (0, 60] seconds";
  if (parked_scan_limit < 1)
    return "scheduler.parked_scan_limit: must be at least 1, got "
           + std::to_string(parked_scan_limit);
  return {};
}

} // namespace alb
