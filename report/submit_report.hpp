#pragma once

// What `alb submit` (and `alb run` against a coordinator) shows and writes
// about a submission's outcomes: the per-test table, the summary line and
// the result JSON. Kept apart from bin/cmd_submit.cpp, which only parses,
// connects and waits, so the rendering can be unit tested and extended
// without touching the command.

#include <cstddef>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "runtime/cluster_types.hpp"

namespace alb::report {

/// Prints the per-test table (one row per outcome, in the order given) to
/// `out`.
void print_outcome_table(std::FILE* out,
                         const std::vector<cluster_outcome>& rows);

/// "SIGKILL" for 9 and the like ("signal N" for one without a name).
std::string signal_name(int sig);

/// The outcomes as the `results` array of the result JSON: per test its
/// id, status, success, timed_out, exit_code (null when a signal or the
/// timeout ended it), signal and signal_name (null when it exited),
/// execution_time and duration_seconds, attempts, worker_id, node,
/// submitted_at, started_at and ended_at (ISO-8601 with zone, null when
/// unknown), queued_seconds, error and output_tail.
nlohmann::json outcomes_json(const std::vector<cluster_outcome>& rows);

/// What a submission amounted to, for the summary and the result JSON.
struct submission_summary {
  /// Coordinator address as given.
  std::string coordinator;
  /// Tests submitted.
  size_t tests = 0;
  /// Tests that passed.
  size_t passed = 0;
  /// Tests without an outcome (lost coordinator or --timeout).
  size_t open = 0;
  /// Seconds from connecting to the last outcome.
  double wall_seconds = 0;
};

/// The one-line summary ("N tests: P passed, F failed, O without outcome
/// (S s)"), without a newline.
std::string summary_line(const submission_summary& s,
                         const std::vector<cluster_outcome>& rows);

/// One line for a test that just ended (the report when not on a
/// terminal): "[  3/200] passed  ID  1.23 s  on NODE (WORKER)", with the
/// exit status or signal and the error of one that did not pass.
/// `done` counts the ended tests including this one.
std::string finished_line(const cluster_outcome& o, size_t done, size_t total);

/// What the progress line shows.
struct progress_counts {
  /// Tests submitted.
  size_t total = 0;
  /// Ended and passed.
  size_t passed = 0;
  /// Ended and did not pass.
  size_t failed = 0;
  /// Running now (-1 = not known to this client).
  long running = -1;
  /// Waiting to be placed (-1 = not known).
  long waiting = -1;
  /// Why the waiting ones wait, in a few words ("" = nothing to say).
  std::string reasons;
};

/// The progress line (no newline, no terminal codes): "[  12.3s] 40/200
/// ended: 35 passed, 5 failed; 10 running, 150 waiting", or "; 160 open"
/// when running and waiting are not known.
std::string progress_line(const progress_counts& c, double elapsed);

/// "rebalanced before they started: M migrated, S stolen", or "" when no
/// test of `rows` was moved.
std::string moves_line(const std::vector<cluster_outcome>& rows);

/// The `stats` of the result JSON: outcomes by status (`completed`,
/// `failed`, `cancelled`), `timed_out`, `without_outcome` (`open`), and
/// how the rebalancer moved them: `migrated` and `stolen` (sums over the
/// outcomes), `tests_moved` (moved at least once), `tests_placed_again`
/// (attempts > 1), and `speculated_tests` / `speculation_wins` (outcomes
/// with `speculated` / `speculation_won`).
nlohmann::json outcome_stats(const std::vector<cluster_outcome>& rows,
                             size_t open);

/// The whole result JSON document `--output` writes.
nlohmann::json result_document(const submission_summary& s,
                               const std::vector<cluster_outcome>& rows);

} // namespace alb::report
