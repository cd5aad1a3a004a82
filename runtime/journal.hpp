#pragma once

// The submission journal of a coordinator: every test it accepted, with how
// to run it, and how each one ended, in its SQLite database (`--db-path`,
// next to the execution history). A coordinator that is killed and started
// again on the same database resumes the tests that had not ended and still
// knows the outcomes no client has collected yet.
//
// A test id names one live record at a time:
//
// - open: accepted, no outcome yet (a restarted coordinator runs it again);
// - ended: its outcome is recorded and answers a client that submits the
//   same test again (the client that lost its coordinator mid-run);
// - retired: collected by a client that then left cleanly, or superseded by
//   a new submission of the id. Retired rows stay in the table as history
//   but no longer answer anything.
//
// Writes are batched: one transaction per call (a submission, a batch of
// outcomes, a batch of retirements), each synced to disk before the call
// returns. The journal keeps its live records in memory as well, so look-ups
// never touch the disk. No clocks, no actors: the coordinator decides when
// to call it.
//
// Usage:
//
//     auto j = alb::submission_journal::open("alb.db"); // throws journal_error
//     for (auto& t : j.open_tests()) resubmit(t);        // resume
//     j.accept(tests);                                    // before replying
//     j.record(outcomes);                                 // before reporting
//     j.retire(ids);                                      // collected

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/cluster_types.hpp"
#include "runtime/id_map.hpp"
#include "runtime/model.hpp"

struct sqlite3;

namespace alb {

/// The journal cannot be read or written. `what()` is one line naming the
/// file and the reason.
class journal_error : public std::runtime_error {
public:
  /// Stores the one-line message.
  using std::runtime_error::runtime_error;
};

/// A submitted test as the journal keeps it: what it needs and how to run
/// it, exactly as the client submitted it.
using journaled_test = cluster_test;

/// How a journaled test ended: what its client is told.
using journaled_outcome = cluster_outcome;

/// A live (open or ended) record.
struct journal_record {
  /// Order of acceptance (increasing over the database's life).
  int64_t seq = 0;
  /// Canonical encoding of the test as accepted (see
  /// `submission_journal::definition_of`; `open_tests` decodes it).
  std::string definition;
  /// Whether its outcome is recorded.
  bool ended = false;
  /// The outcome (when `ended`).
  journaled_outcome outcome;
  /// Digest of the key of the client that submitted it ("" = unknown).
  std::string owner;
  /// The submission (run) it was accepted in ("" = none named).
  std::string run_id;
};

/// Who submitted tests, and as which run (one `alb submit`).
struct journal_run {
  /// The run's id (chosen by the client, unique per database).
  std::string run_id;
  /// Digest of the submitting client's key.
  std::string owner;
  /// What the client named the run after (its test file), may be "".
  std::string label;
  /// Wall-clock time of its first submission, seconds since the epoch
  /// (given by the caller: the journal reads no clock).
  double submitted_at = 0;
};

/// A run and how its tests stand, as `alb results` lists it.
struct journal_run_summary {
  /// The run.
  journal_run run;
  /// Tests accepted in it.
  uint64_t tests = 0;
  /// Of those, not ended yet.
  uint64_t open = 0;
  /// Ended completed.
  uint64_t completed = 0;
  /// Ended failed (timed out included).
  uint64_t failed = 0;
  /// Of the failed, stopped by their timeout.
  uint64_t timed_out = 0;
  /// Ended cancelled.
  uint64_t cancelled = 0;
};

/// One test of a run as the journal holds it (live or retired).
struct journal_run_test {
  /// Whether it has ended (`outcome` is then set).
  bool ended = false;
  /// The outcome (`test_id` is always set).
  journaled_outcome outcome;
};

/// The journal of one database file. Not thread-safe: the coordinator owns
/// it. Move-only; closes its connection when destroyed.
class submission_journal {
public:
  /// Name of the table of submitted tests.
  static constexpr const char* tests_table = "journal_tests";
  /// Name of the table of submissions (runs).
  static constexpr const char* runs_table = "journal_runs";
  /// Name of the table of node names seen.
  static constexpr const char* nodes_table = "journal_nodes";

  /// Opens (creating the file and tables if missing) the journal in the
  /// SQLite database at `path` and loads its live records. Throws
  /// journal_error naming `path` when the file cannot be opened, is not a
  /// database or holds malformed journal tables.
  static submission_journal open(const std::string& path);

  /// Moves the connection and records.
  submission_journal(submission_journal&&) noexcept;
  /// Moves the connection and records.
  submission_journal& operator=(submission_journal&&) noexcept;
  /// Closes the connection.
  ~submission_journal();

  /// The live record of `test_id` (null = none). Valid until the next
  /// write.
  const journal_record* find(const std::string& test_id) const;

  /// Open tests in the order they were accepted (what a restarted
  /// coordinator resumes).
  std::vector<journaled_test> open_tests() const;

  /// Records `tests` as open, in one transaction. An ended record of the
  /// same id is retired in that transaction (superseded by the new
  /// submission). Throws journal_error (nothing written) when an id is
  /// open already, appears twice, is empty, a number is not finite, or the
  /// write fails.
  void accept(const std::vector<journaled_test>& tests);

  /// The same for tests held elsewhere (no copy of the list).
  void accept(const std::vector<const journaled_test*>& tests);

  /// The same as part of `run` (recorded with its first tests; a run id
  /// that exists already must have the same owner). Throws journal_error
  /// (nothing written) as above, or when the run belongs to another owner.
  void accept(const std::vector<const journaled_test*>& tests,
              const journal_run& run);

  /// The owner of run `run_id` ("" = no such run).
  std::string run_owner(const std::string& run_id) const;

  /// The runs of `owner` ("" = every owner's), oldest first, with counts
  /// of how their tests ended. Throws journal_error.
  std::vector<journal_run_summary> runs(const std::string& owner) const;

  /// Every test accepted in run `run_id`, in the order accepted. Throws
  /// journal_error.
  std::vector<journal_run_test> run_tests(const std::string& run_id) const;

  /// Records how open tests ended, in one transaction. Outcomes of ids that
  /// are not open are ignored. Throws journal_error (nothing written).
  void record(const std::vector<journaled_outcome>& outcomes);

  /// Retires the ended records of `test_ids`, in one transaction; open or
  /// unknown ids are left alone. Throws journal_error (nothing written).
  void retire(const std::vector<std::string>& test_ids);

  /// Remembers a node name; returns whether it was new. Throws
  /// journal_error.
  bool note_node(const std::string& name);

  /// Node names seen so far (in any run on this database).
  std::vector<std::string> known_nodes() const;

  /// Open records.
  size_t open_count() const { return open_; }

  /// Ended records not retired yet.
  size_t ended_count() const { return live_.size() - open_; }

  /// Canonical encoding of a test's definition (requirements, command,
  /// environment, working directory; exact for any bytes): equal encodings
  /// mean the same test.
  static std::string definition_of(const journaled_test& t);

  /// A 64-bit digest of `definition_of(t)` (this process only; not
  /// stored): different digests mean different tests, and two different
  /// tests share one with a chance of about 2^-64.
  static uint64_t digest_of(const journaled_test& t);

private:
  submission_journal() = default;

  void begin();
  void commit();
  void rollback() noexcept;

  std::string path_;
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> db_{nullptr, nullptr};
  id_map<journal_record> live_;
  std::set<std::string> nodes_;
  /// Owners of the runs seen, by run id.
  std::map<std::string, std::string> run_owners_;
  size_t open_ = 0;
};

} // namespace alb
