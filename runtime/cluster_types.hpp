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
  /// Whether it got a speculative copy on another node's worker.
  bool speculated = false;
  /// Whether this outcome is that copy's (the original run was stopped).
  bool speculation_won = false;
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

/// Bytes of a test's log one message carries at most: a 64 MiB log is
/// fetched in many pieces, never as one message.
constexpr uint64_t max_log_chunk = 256u << 10;

/// A client's (and then the coordinator's, to the node) request for a
/// piece of one test's stdout or stderr log.
struct log_request {
  /// The test.
  std::string test_id;
  /// 0 = its stdout, 1 = its stderr.
  int32_t stream = 0;
  /// First byte wanted.
  uint64_t offset = 0;
  /// Bytes wanted at most (capped at `max_log_chunk`; 0 = that much).
  uint64_t max = 0;
  /// Milliseconds the node may hold the request while the test is still
  /// writing and nothing past `offset` is there yet (0 = answer at once).
  uint32_t wait_ms = 0;
};

/// Why a log piece carries no bytes (`log_chunk::state`).
enum class log_state : int32_t {
  /// The bytes from the offset are in `data` (none yet is fine while the
  /// test runs).
  ok = 0,
  /// The test is open but has not started on a node yet.
  not_started = 1,
  /// The test ended, but its node no longer keeps the log (or it never
  /// ran on a node).
  not_kept = 2,
  /// The node that has the log is not connected.
  node_gone = 3,
};

/// A piece of a test's log, as the node (and then the coordinator)
/// answers a `log_request`.
struct log_chunk {
  /// A `log_state`.
  int32_t state = 0;
  /// One line saying why when `state` is not ok.
  std::string why;
  /// The node that ran (or runs) the test ("" = none).
  std::string node;
  /// Whether the test has not ended (more may come).
  bool open = false;
  /// Whether the node is still writing the log.
  bool writing = false;
  /// Offset of `data` in the log.
  uint64_t offset = 0;
  /// Size of the log when read, bytes.
  uint64_t size = 0;
  /// The bytes.
  std::string data;
};

} // namespace alb
