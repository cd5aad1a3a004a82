#pragma once

// What a node's executor tells whoever counts the tests it runs (the
// node's own /metrics, metrics/node_metrics). No CAF; called from the
// worker actor's thread, so implementations must be thread-safe.

namespace alb {

/// How a test that started on a node ended there.
enum class run_end {
  /// It passed (exit status 0, or a simulated run).
  passed,
  /// It failed (non-zero exit, killed by a signal, could not start).
  failed,
  /// It was stopped by its timeout.
  timed_out,
  /// The scheduler withdrew it while it ran (cancel, the node leaving).
  withdrawn,
};

/// Returns the label of `x`: "passed", "failed", "timed_out", "withdrawn".
inline const char* to_string(run_end x) {
  switch (x) {
    case run_end::passed:
      return "passed";
    case run_end::failed:
      return "failed";
    case run_end::timed_out:
      return "timed_out";
    default:
      return "withdrawn";
  }
}

/// Receives the starts and ends of the tests a node runs.
class run_observer {
public:
  virtual ~run_observer() = default;
  /// A test started (it holds one of the node's slots until it ends).
  virtual void run_started() = 0;
  /// A started test ended `how` after `seconds`.
  virtual void run_ended(run_end how, double seconds) = 0;
};

} // namespace alb
