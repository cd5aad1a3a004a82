#pragma once

// The `[scheduler]` section: every knob of the scheduling core, with its
// default. The configuration loader fills it; `validate()` names a bad key.

#include <string>

namespace alb {

/// Settings of the scheduling core.
struct scheduler_config {
  /// Placement strategy by name (see `strategy_names()`).
  std::string strategy = "least_loaded";
  /// Tests a worker may hold beyond its concurrent slots (its local queue).
  int prefetch = 2;
  /// Seconds a test that fits no worker waits before it fails.
  double wait_limit = 120;
  /// Seconds of waiting that raise a test's priority by one step.
  double aging_interval = 10;
  /// Seconds between the scheduler's periodic ticks (aging, wait limits,
  /// rebalancing, time series).
  double tick_interval = 0.1;
  /// Parked (unplaceable) tests re-examined per dispatch pass.
  int parked_scan_limit = 64;
  /// Seed for randomized strategies.
  unsigned long long seed = 1;

  /// Returns "" when valid, otherwise "scheduler.<key>: <what is wrong>".
  std::string validate() const;
};

} // namespace alb
