#pragma once

// Who is overdue: the last time each node was heard from, and the deadline
// of each running test. CAF-free and clock-free: callers pass the current
// time in (seconds on any monotonic scale) and act on what comes back; the
// coordinator's actors own the clock and one periodic check.

#include <cstddef>
#include <cstdint>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

namespace alb {

/// Last heartbeat per node; a node silent for longer than the timeout is
/// reported once and then forgotten.
class node_watch {
public:
  /// Node `node` was heard from at `now` (a join counts). A time before the
  /// last one heard is ignored (out-of-order delivery cannot age a node).
  void heard(uint64_t node, double now);

  /// Stops watching `node` (it left, died or was declared lost).
  void forget(uint64_t node);

  /// Nodes not heard from for more than `timeout` seconds at `now`, most
  /// overdue first. They are forgotten: each is reported once.
  std::vector<uint64_t> lost(double now, double timeout);

  /// When `node` was last heard from (-1 when not watched).
  double last_heard(uint64_t node) const;

  /// Nodes watched.
  size_t size() const { return last_.size(); }

private:
  std::unordered_map<uint64_t, double> last_;
};

/// Deadlines of running tests: a test still armed when its deadline passes
/// is reported once. Ordered by deadline, so a check costs O(log n) per
/// test it reports, not a scan of every running test.
class test_deadlines {
public:
  /// Arms (or re-arms) `test` to expire at `deadline`.
  void arm(uint64_t test, double deadline);

  /// Disarms `test` (it ended or moved); unknown tests are ignored.
  void disarm(uint64_t test);

  /// Tests whose deadline is at or before `now`, earliest first; they are
  /// disarmed.
  std::vector<uint64_t> expired(double now);

  /// The deadline of `test` (-1 when not armed).
  double deadline_of(uint64_t test) const;

  /// Tests armed.
  size_t size() const { return by_test_.size(); }

private:
  std::unordered_map<uint64_t, double> by_test_;
  std::set<std::pair<double, uint64_t>> by_time_;
};

} // namespace alb
