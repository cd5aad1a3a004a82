#pragma once

// What a cluster client and a coordinator exchange about tests, and what
// the coordinator's journal keeps of them: the test as submitted and how it
// ended. CAF-free so the client API (actors/coordinator_client.hpp) can hand
// them to programs that do not build against CAF and the journal
// (runtime/journal.hpp) can store them; their inspectors and type IDs are in
// actors/messages.hpp.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "runtime/model.hpp"

namespace alb {

/// A test as submitted to a coordinator: its requirements and how to run it.
struct cluster_test {
  /// What the test needs.
  test_requirements req;
  /// Command line (argv); empty = simulated from `req.expected_duration`.
  std::vector<std::string> command;
  /// Extra environment variables for the command.
  std::map<std::string, std::string> env;
  /// Working directory of the command ("" = the node's).
  std::string cwd;
  /// Cap on its stdout and stderr together, bytes (0 = the node's
  /// default, `alb node --max-output`).
  uint64_t max_output = 0;
};

/// How one submitted test ended, as the coordinator tells its client.
struct cluster_outcome {
  /// The test.
  std::string test_id;
  /// End state: completed, failed or cancelled.
  std::string status;
  /// Whether it passed.
  bool success = false;
  /// Whether its last attempt was stopped by its timeout.
  bool timed_out = false;
  /// Exit status of the last attempt's command (128 + `signal` when a
  /// signal ended it, as a shell reports it).
  int32_t exit_code = 0;
  /// Signal that ended the last attempt's command (0 = it exited, or never
  /// ran; a timeout's kill is `timed_out`, not a signal).
  int32_t signal = 0;
  /// Execution time of the last attempt in seconds.
  double exec_seconds = 0;
  /// Placements (requeues after a lost node and retries add one each).
  int32_t attempts = 0;
  /// Times it was migrated by the rebalancer before it started.
  int32_t migrated = 0;
  /// Times it was stolen by an idle worker before it started.
  int32_t stolen = 0;
  /// Worker that ran the last attempt.
  std::string worker_id;
  /// Why it failed.
  std::string error;
  /// Tail of the last attempt's stdout (JSON `stdout_tail`; `output_tail`
  /// there is this followed by `stderr_tail`).
  std::string output_tail;
  /// Node (`alb node --name`) whose worker ran the last attempt ("" when
  /// none did).
  std::string node;
  /// When the coordinator took the test on, Unix seconds (0 = unknown).
  double submitted_at = 0;
  /// When the last attempt started, Unix seconds: its end less its
  /// execution time as the node measured it (0 = it never ran).
  double started_at = 0;
  /// When the coordinator learned that the test ended, Unix seconds (0 =
  /// unknown).
  double ended_at = 0;
  /// Tail of the last attempt's stderr.
  std::string stderr_tail;
};

/// What a cancel did with the ids it was given.
struct cancel_result {
  /// Tests that are cancelled now (each gets one `cancelled` outcome).
  std::vector<std::string> cancelled;
  /// Tests that are another client's: left alone.
  std::vector<std::string> refused;
  /// Ids with no open test (unknown, or ended already).
  std::vector<std::string> unknown;
};

} // namespace alb
