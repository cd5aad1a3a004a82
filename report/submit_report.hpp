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

/// The outcomes as the `results` array of the result JSON.
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

/// The whole result JSON document `--output` writes.
nlohmann::json result_document(const submission_summary& s,
                               const std::vector<cluster_outcome>& rows);

} // namespace alb::report
