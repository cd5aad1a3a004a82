#include "runtime/scheduler_config.hpp"

#include "runtime/strategy.hpp"

#include <algorithm>
#include <cmath>

namespace alb {

namespace {

bool is_known_strategy(const std::string& name) {
  auto& names = strategy_names();
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::string strategy_list() {
  std::string out;
  for (auto& s : strategy_names()) {
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
  if (!(pull_slack >= 0 && pull_slack <= 1))
    return "scheduler.pull_slack: must be between 0 and 1";
  if (!positive(rebalance_interval))
    return "scheduler.rebalance_interval: must be a positive number of seconds";
  if (!(overload_threshold > 0 && overload_threshold <= 1))
    return "scheduler.overload_threshold: must be in (0, 1]";
  // An idle worker must be distinguishable from an overloaded one, or a
  // test could be moved onto a worker as loaded as the one it left.
  if (!(idle_threshold >= 0 && idle_threshold < overload_threshold))
    return "scheduler.idle_threshold: must be at least 0 and below "
           "overload_threshold";
  if (max_moves_per_cycle < 0)
    return "scheduler.max_moves_per_cycle: must be at least 0, got "
           + std::to_string(max_moves_per_cycle);
  if (!(std::isfinite(rebalance_cooldown) && rebalance_cooldown >= 0))
    return "scheduler.rebalance_cooldown: must be a number of seconds >= 0";
  for (auto& [type, name] : strategy_by_type)
    if (!is_known_strategy(name))
      return "scheduler.strategy_by_type." + type + ": unknown strategy '"
             + name + "' (expected one of " + strategy_list() + ")";
  return {};
}

} // namespace alb
