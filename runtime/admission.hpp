#pragma once

// The coordinator's admission rules (DESIGN §9): what becomes of each test a
// client submits, who waits for each open test's outcome, who may cancel
// it, and what a client that leaves retires from the journal. CAF-free, no
// clocks, no I/O: the coordinator actor (actors/coordinator.cpp) asks, then
// writes the journal and sends the messages.
//
// The rules, per test of a submission, in this order:
//
// 1. Requirements no worker could ever satisfy (`validate_requirements`):
//    rejected.
// 2. An id named twice in one submission: the second mention is rejected.
// 3. An id that is open (queued or running): the client attaches to it and
//    gets its one outcome too, if the definition (command, environment,
//    working directory, requirements: `submission_journal::digest_of`) is
//    the same; rejected if it differs.
// 4. An id whose outcome the journal holds: answered from the journal,
//    unless the definition changed, `rerun` is asked, or this very client
//    already received that outcome: then it runs again.
// 5. Otherwise it runs.
//
// A client that leaves cleanly retires the journal records whose outcomes
// it received (only the very record it received, not a newer submission of
// the id), so the next submission of those ids runs afresh; a lost client
// retires nothing (the journal answers it when it comes back). A client
// cancels only the open tests its owner (the digest of its key) submitted,
// and none that a client of another owner attached to.
//
// Usage:
//
//     admission adm;
//     auto c = adm.add_client();
//     auto plan = adm.admit(c, owner, tests, rerun, &journal, now);
//     // journal plan.run, then:
//     adm.accept(plan);   // or adm.abandon(plan) if the journal refused
//     // run tests[i] for i in plan.run; send plan.answers to the client
//     auto closed = adm.end(id, seq);   // a test ended: who waited

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "runtime/cluster_types.hpp"
#include "runtime/id_map.hpp"
#include "runtime/journal.hpp"

namespace alb {

/// What admission reads from the journal: its live records (in memory,
/// never the disk). The coordinator adapts its `submission_journal`; tests
/// use a map.
class journal_view {
public:
  virtual ~journal_view() = default;

  /// The live (open or ended) record of `test_id`, null = none. Valid
  /// until the journal is next written.
  virtual const journal_record* find(const std::string& test_id) const = 0;
};

/// A client of the coordinator, as admission numbers them (the actor maps
/// them to its handles).
using client_id = uint64_t;

/// What admission made of one submitted test.
enum class admission_verdict : uint8_t {
  /// It runs (a new open test).
  run,
  /// It is open already with the same definition: the client waits for
  /// that test's outcome too.
  attach,
  /// Answered from the journal's recorded outcome.
  answer,
  /// Rejected: its id appears more than once in the submission.
  twice,
  /// Rejected: open already with a different definition.
  conflict,
  /// Rejected: requirements no worker could satisfy.
  invalid,
};

/// The verdict's name ("run", "attach", ...).
const char* to_string(admission_verdict v);

/// What `admission::admit` decided for one submission; given back to
/// `accept` or `abandon`.
struct admission_plan {
  /// One verdict per submitted test, in submission order.
  std::vector<admission_verdict> verdicts;
  /// Indices of the tests that run (verdict `run`), in order: to journal
  /// and hand to the scheduler.
  std::vector<size_t> run;
  /// Outcomes the client gets at once: rejections (failed, the reason in
  /// `error`, stamped `now`) and outcomes answered from the journal.
  std::vector<cluster_outcome> answers;
  /// Tests attached to an open test.
  size_t attached = 0;
  /// Tests answered from the journal.
  size_t answered = 0;
  /// Tests rejected.
  size_t rejected = 0;

  /// @private The client and owner it is for.
  client_id client_ = 0;
  /// @private
  std::string owner_;
  /// @private Open entries made for `run` (same order).
  std::vector<uint32_t> run_refs_;
  /// @private Open entries the client attaches to.
  std::vector<uint32_t> attach_refs_;
  /// @private Journal records answered: (test id, record seq).
  std::vector<std::pair<std::string, int64_t>> answered_seqs_;
};

/// What a cancel request may stop.
struct cancel_plan {
  /// Open tests of the owner, to ask the scheduler to cancel.
  std::vector<std::string> ask;
  /// Tests that are not the owner's to cancel, with why (for the log).
  std::vector<std::pair<std::string, std::string>> refused;
  /// Ids with no open test.
  std::vector<std::string> unknown;
};

/// Who waited for a test that ended.
struct closed_test {
  /// Clients waiting for its outcome, once per submission that named it
  /// (a client that submitted it twice gets it twice); clients that left
  /// are included: the caller skips those it has no handle for.
  std::vector<client_id> waiters;
  /// Digest of the key of the client that submitted it first (what
  /// `owner_of` said while it was open), moved out rather than looked up
  /// again.
  std::string owner;
};

/// The admission state of a coordinator: open tests and connected
/// clients. Single-threaded: the coordinator actor owns it.
class admission {
public:
  /// Registers a client; returns its id (never 0).
  client_id add_client();

  /// Whether `c` is connected.
  bool has_client(client_id c) const;

  /// Client `c` left (clean = it said goodbye; else its connection was
  /// lost or it expired). Returns the ids whose journal records are to be
  /// retired: after a clean leave, those whose outcome it received and
  /// whose record in `j` is still that very one; none otherwise.
  std::vector<std::string> remove_client(client_id c, bool clean,
                                         const journal_view* j);

  /// Decides what becomes of each of `tests` (the rules above), submitted
  /// by client `c` (0 = none: a submission whose outcomes go nowhere) for
  /// `owner`. Entries for the tests that run are made at once, so the
  /// plan must be given to `accept` or `abandon` before the next call.
  /// `now` stamps the rejections (Unix seconds).
  admission_plan admit(client_id c, const std::string& owner,
                       const std::vector<cluster_test>& tests, bool rerun,
                       const journal_view* j, double now);

  /// The plan's tests are taken on (journaled): the client waits for the
  /// ones that run and those it attached to, and is known to have
  /// received the answers.
  void accept(const admission_plan& p);

  /// The plan is dropped (the journal refused the submission): the
  /// entries made for its tests that run are removed.
  void abandon(const admission_plan& p);

  /// A test of the journal that had not ended (a restarted coordinator
  /// resumes it): open, owned by `owner`, nobody waiting yet.
  void resume(const cluster_test& t, const std::string& owner);

  /// Whether `test_id` is open.
  bool is_open(const std::string& test_id) const;

  /// Number of open tests.
  size_t open_count() const { return open_.size(); }

  /// The open test `test_id` ended (`journal_seq`: the journal's record of
  /// its outcome, if it recorded one): it is closed and its waiters
  /// returned; nullopt when it was not open (a late or repeated outcome,
  /// which the caller drops). Connected waiters are noted as having
  /// received that record.
  std::optional<closed_test> end(const std::string& test_id,
                                 std::optional<int64_t> journal_seq);

  /// Whether client `c` waits for the open test `test_id`.
  bool waits(const std::string& test_id, client_id c) const;

  /// Which of `ids` (or, with `all_mine`, which open tests) `owner` may
  /// cancel: those it submitted that no other owner attached to; with
  /// `any` (an operator) every named open test. Each id counts once.
  cancel_plan plan_cancel(const std::string& owner,
                          const std::vector<std::string>& ids, bool all_mine,
                          bool any = false) const;

  /// Digest of the key that submitted the open test `test_id`, null when
  /// it is not open.
  const std::string* owner_of(const std::string& test_id) const;

private:
  struct open_test {
    uint64_t digest = 0;
    std::vector<client_id> waiters;
    uint64_t named_in = 0;
    std::string owner;
    bool shared = false;
  };

  struct client_info {
    // Journal records (test id -> seq) whose outcomes it was sent.
    std::unordered_map<std::string, int64_t> delivered;
  };

  id_map<open_test> open_;
  std::unordered_map<client_id, client_info> clients_;
  client_id next_client_ = 0;
  uint64_t submissions_ = 0;
};

} // namespace alb
