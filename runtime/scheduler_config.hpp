#pragma once

// The `[scheduler]` section: every knob of the scheduling core, with its
// default. The configuration loader fills it; `validate()` names a bad key.

#include <map>
#include <memory>
#include <string>

namespace alb {

class execution_history;

/// Settings of the scheduling core.
struct scheduler_config {
  /// Placement strategy by name (see `strategy_names()`). `adaptive` by
  /// default: on `alb benchmark`'s heterogeneous fleets it had the shortest
  /// makespans (README, "`alb benchmark`").
  std::string strategy = "adaptive";
  /// Tests a worker may hold beyond its concurrent slots (its local queue).
  int prefetch = 2;
  /// Seconds a test that fits no worker waits before it fails.
  double wait_limit = 120;
  /// Seconds of waiting that raise a test's priority by one step.
  double aging_interval = 10;
  /// Priority bands are strict (the default): no test starts ahead of its
  /// band. False is "makespan first", for a strategy that takes the
  /// longest test first (`adaptive`): the queue offers the longest
  /// expected test of any band first (by size class, a half-octave of
  /// expected duration); priority orders tests of one size class, and
  /// every `aging_interval` a test waits lifts it one size class, so a
  /// stream of long tests cannot starve short ones forever. For batches
  /// submitted at once (as `alb benchmark`'s workload), where the end of
  /// the whole set is what counts; under a stream, long low-priority tests
  /// start ahead of short urgent ones.
  bool strict_priority = true;
  /// Seconds between the scheduler's periodic ticks (aging, wait limits,
  /// rebalancing, time series).
  double tick_interval = 0.1;
  /// Parked (unplaceable) tests re-examined per dispatch pass.
  int parked_scan_limit = 64;
  /// Pull dispatch: a worker reporting completions takes queued tests
  /// straight away (one batch message instead of a search per test) while
  /// its load is within this much of the least loaded worker's; 0 turns
  /// pulling off. Strategies that do not rank by load never pull.
  double pull_slack = 0.5;
  /// Seed for randomized strategies.
  unsigned long long seed = 1;
  /// Strategy per test type (`[scheduler.strategy_by_type]`: test_type ->
  /// strategy name); types not listed use `strategy`.
  std::map<std::string, std::string> strategy_by_type;
  /// Trust workers' advertised speed where the history knows nothing yet
  /// (`speed_hints`); false makes learned strategies start from nominal
  /// speed and learn every worker's pace, as with real workers.
  bool speed_hints = true;
  /// Learned execution times for `performance_based` and `adaptive`, loaded
  /// and saved by the command from `--db-path` (not read from a file; null =
  /// learned in memory for the run only). Shared, not copied, with every
  /// copy of this configuration.
  std::shared_ptr<execution_history> history;

  /// Speculative execution: while nothing waits, a test running far
  /// longer than its learned duration says it still needs gets a copy on
  /// an idle worker expected to finish it sooner; the first result wins
  /// and the other copy is stopped. Never for tests with `speculate =
  /// false`, tests with a concurrency key, or onto a worker without room.
  bool speculate = true;

  // -- rebalancing -----------------------------------------------------------

  /// Move tests queued on a worker but not started yet from overloaded
  /// workers to idle ones (migration, on the rebalance timer) and let idle
  /// workers take them from the busiest (stealing, when they report).
  bool rebalance = true;
  /// Seconds between rebalancing cycles (checked on every tick).
  double rebalance_interval = 1.0;
  /// A worker whose load score is above this is overloaded (a source).
  double overload_threshold = 0.8;
  /// A worker whose load score is below this is idle (a target or thief).
  double idle_threshold = 0.3;
  /// Moves (migrations and steals together) started per cycle at most.
  int max_moves_per_cycle = 4;
  /// Seconds after a move during which the source takes no test and the
  /// target gives none away, so tests do not bounce back and forth.
  double rebalance_cooldown = 2.0;

  /// Returns "" when valid, otherwise "scheduler.<key>: <what is wrong>".
  std::string validate() const;
};

} // namespace alb
