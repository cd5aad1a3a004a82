// The coordinator's admission rules (runtime/admission): duplicates within a
// submission, attaching to an open test, answers from the journal, digest
// comparison, who waits for an outcome, who may cancel, and what a client
// that leaves retires. No actors, no journal file: the journal is a map.

#define BOOST_TEST_MODULE admission
#include <boost/test/unit_test.hpp>

#include "runtime/admission.hpp"

#include <map>
#include <ostream>
#include <string>
#include <vector>

using namespace alb;

namespace alb {

std::ostream& boost_test_print_type(std::ostream& out, admission_verdict v) {
  return out << to_string(v);
}

} // namespace alb

namespace {

using verdicts = std::vector<admission_verdict>;
constexpr auto run = admission_verdict::run;
constexpr auto attach = admission_verdict::attach;
constexpr auto answer = admission_verdict::answer;
constexpr auto twice = admission_verdict::twice;
constexpr auto conflict = admission_verdict::conflict;
constexpr auto invalid = admission_verdict::invalid;

/// A journal held in memory: what the coordinator's submission_journal
/// shows admission.
struct fake_journal : journal_view {
  std::map<std::string, journal_record> live;
  int64_t seq = 0;

  const journal_record* find(const std::string& id) const override {
    auto i = live.find(id);
    return i == live.end() ? nullptr : &i->second;
  }

  /// Records `t` as accepted (open).
  void accepted(const cluster_test& t) {
    auto& r = live[t.req.test_id];
    r = journal_record{};
    r.seq = ++seq;
    r.definition = submission_journal::definition_of(t);
  }

  /// Records how `id` ended.
  void ended(const std::string& id, int exit_code) {
    auto& r = live.at(id);
    r.ended = true;
    r.outcome.test_id = id;
    r.outcome.status = exit_code == 0 ? "completed" : "failed";
    r.outcome.success = exit_code == 0;
    r.outcome.exit_code = exit_code;
  }
};

cluster_test shell(const std::string& id, const std::string& script = "true") {
  cluster_test t;
  t.req.test_id = id;
  t.command = {"sh", "-c", script};
  return t;
}

std::vector<cluster_test> tests(std::initializer_list<cluster_test> ts) {
  return ts;
}

/// Admits and accepts at once, journaling the tests that run.
admission_plan submit(admission& adm, client_id c, const std::string& owner,
                      const std::vector<cluster_test>& ts,
                      fake_journal* j = nullptr, bool rerun = false) {
  auto p = adm.admit(c, owner, ts, rerun, j, 100.0);
  if (j)
    for (auto k : p.run)
      j->accepted(ts[k]);
  adm.accept(p);
  return p;
}

/// Ends `id` with `exit_code` as the coordinator does: journal first, then
/// admission (with the journal's record).
closed_test finish(admission& adm, fake_journal* j, const std::string& id,
                   int exit_code = 0) {
  std::optional<int64_t> seq;
  if (j && j->find(id)) {
    j->ended(id, exit_code);
    seq = j->find(id)->seq;
  }
  auto c = adm.end(id, seq);
  BOOST_REQUIRE(c.has_value());
  return *c;
}

} // namespace

BOOST_AUTO_TEST_CASE(new_tests_run_and_their_client_waits) {
  admission adm;
  auto c = adm.add_client();
  auto p = submit(adm, c, "alice", tests({shell("a"), shell("b")}));
  BOOST_TEST(p.verdicts == (verdicts{run, run}),
             boost::test_tools::per_element());
  BOOST_TEST(p.run == (std::vector<size_t>{0, 1}),
             boost::test_tools::per_element());
  BOOST_TEST(p.answers.empty());
  BOOST_TEST(adm.open_count() == 2u);
  BOOST_TEST(adm.waits("a", c));
  BOOST_TEST(adm.waits("b", c));
  auto closed = finish(adm, nullptr, "a");
  BOOST_TEST(closed.waiters == (std::vector<client_id>{c}),
             boost::test_tools::per_element());
  BOOST_TEST(!adm.is_open("a"));
  BOOST_TEST(adm.is_open("b"));
}

BOOST_AUTO_TEST_CASE(an_id_twice_in_one_submission_is_rejected_once) {
  admission adm;
  auto c = adm.add_client();
  auto p = submit(adm, c, "alice", tests({shell("a"), shell("a"), shell("b")}));
  BOOST_TEST(p.verdicts == (verdicts{run, twice, run}),
             boost::test_tools::per_element());
  BOOST_REQUIRE(p.answers.size() == 1u);
  BOOST_TEST(p.answers[0].test_id == "a");
  BOOST_TEST(p.answers[0].status == "failed");
  BOOST_TEST(!p.answers[0].success);
  BOOST_TEST(p.answers[0].ended_at == 100.0);
  BOOST_TEST(p.rejected == 1u);
  // The first mention still runs, once.
  BOOST_TEST(finish(adm, nullptr, "a").waiters.size() == 1u);
}

BOOST_AUTO_TEST_CASE(an_id_twice_is_rejected_even_when_the_first_attached) {
  admission adm;
  auto c1 = adm.add_client();
  auto c2 = adm.add_client();
  submit(adm, c1, "alice", tests({shell("a")}));
  auto p = submit(adm, c2, "bob", tests({shell("a"), shell("a")}));
  BOOST_TEST(p.verdicts == (verdicts{attach, twice}),
             boost::test_tools::per_element());
  BOOST_TEST(finish(adm, nullptr, "a").waiters
               == (std::vector<client_id>{c1, c2}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(an_id_twice_is_rejected_even_when_the_first_was_answered) {
  admission adm;
  fake_journal j;
  auto c1 = adm.add_client();
  submit(adm, c1, "alice", tests({shell("a")}), &j);
  finish(adm, &j, "a");
  auto c2 = adm.add_client();
  auto p = submit(adm, c2, "alice", tests({shell("a"), shell("a")}), &j);
  BOOST_TEST(p.verdicts == (verdicts{answer, twice}),
             boost::test_tools::per_element());
  BOOST_TEST(!adm.is_open("a"));
}

BOOST_AUTO_TEST_CASE(the_same_open_test_submitted_again_attaches) {
  admission adm;
  auto c1 = adm.add_client();
  auto c2 = adm.add_client();
  submit(adm, c1, "alice", tests({shell("a")}));
  auto p = submit(adm, c2, "bob", tests({shell("a")}));
  BOOST_TEST(p.verdicts == (verdicts{attach}),
             boost::test_tools::per_element());
  BOOST_TEST(p.run.empty());
  BOOST_TEST(p.attached == 1u);
  BOOST_TEST(adm.waits("a", c2));
  // One test, one outcome, both clients get it.
  BOOST_TEST(adm.open_count() == 1u);
  BOOST_TEST(finish(adm, nullptr, "a").waiters
               == (std::vector<client_id>{c1, c2}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(the_same_client_attaching_again_gets_the_outcome_twice) {
  // Each submission expects its outcomes: a client that names an open test
  // in two submissions counts it in both.
  admission adm;
  auto c = adm.add_client();
  submit(adm, c, "alice", tests({shell("a")}));
  auto p = submit(adm, c, "alice", tests({shell("a")}));
  BOOST_TEST(p.verdicts == (verdicts{attach}),
             boost::test_tools::per_element());
  BOOST_TEST(finish(adm, nullptr, "a").waiters
               == (std::vector<client_id>{c, c}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_different_definition_under_an_open_id_is_rejected) {
  admission adm;
  auto c = adm.add_client();
  submit(adm, c, "alice", tests({shell("a", "true")}));
  auto other_env = shell("a", "true");
  other_env.env["X"] = "1";
  auto other_cwd = shell("a", "true");
  other_cwd.cwd = "/tmp";
  auto other_req = shell("a", "true");
  other_req.req.minimum_memory = 2;
  for (auto& t : {shell("a", "false"), other_env, other_cwd, other_req}) {
    auto p = submit(adm, c, "alice", {t});
    BOOST_TEST(p.verdicts == (verdicts{conflict}),
               boost::test_tools::per_element());
    BOOST_REQUIRE(p.answers.size() == 1u);
    BOOST_TEST(p.answers[0].error.find("different command")
               != std::string::npos);
  }
  // The open test keeps its one waiter.
  BOOST_TEST(finish(adm, nullptr, "a").waiters.size() == 1u);
}

BOOST_AUTO_TEST_CASE(impossible_requirements_are_rejected_and_not_opened) {
  admission adm;
  auto c = adm.add_client();
  auto bad = shell("a");
  bad.req.priority = 9;
  auto empty = shell("");
  auto p = submit(adm, c, "alice", tests({bad, empty, shell("b")}));
  BOOST_TEST(p.verdicts == (verdicts{invalid, invalid, run}),
             boost::test_tools::per_element());
  BOOST_TEST(p.answers[0].error.find("priority") != std::string::npos);
  BOOST_TEST(!adm.is_open("a"));
  BOOST_TEST(adm.open_count() == 1u);
}

BOOST_AUTO_TEST_CASE(an_ended_test_is_answered_from_the_journal) {
  admission adm;
  fake_journal j;
  auto c1 = adm.add_client();
  submit(adm, c1, "alice", tests({shell("a")}), &j);
  finish(adm, &j, "a", 3);
  // Another client (the first lost its coordinator mid-run) asks again.
  auto c2 = adm.add_client();
  auto p = submit(adm, c2, "alice", tests({shell("a")}), &j);
  BOOST_TEST(p.verdicts == (verdicts{answer}),
             boost::test_tools::per_element());
  BOOST_REQUIRE(p.answers.size() == 1u);
  BOOST_TEST(p.answers[0].exit_code == 3);
  BOOST_TEST(p.answered == 1u);
  BOOST_TEST(!adm.is_open("a"));
}

BOOST_AUTO_TEST_CASE(a_changed_definition_or_rerun_runs_again) {
  admission adm;
  fake_journal j;
  auto c1 = adm.add_client();
  submit(adm, c1, "alice", tests({shell("a")}), &j);
  finish(adm, &j, "a");
  auto c2 = adm.add_client();
  auto p = submit(adm, c2, "alice", tests({shell("a", "exit 1")}), &j);
  BOOST_TEST(p.verdicts == (verdicts{run}), boost::test_tools::per_element());
  finish(adm, &j, "a", 1);
  auto c3 = adm.add_client();
  auto q = submit(adm, c3, "alice", tests({shell("a", "exit 1")}), &j, true);
  BOOST_TEST(q.verdicts == (verdicts{run}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_client_that_received_an_outcome_runs_the_test_again) {
  admission adm;
  fake_journal j;
  auto c = adm.add_client();
  submit(adm, c, "alice", tests({shell("a")}), &j);
  finish(adm, &j, "a");
  // The same client asks again: it has that outcome, so this is a new run.
  auto p = submit(adm, c, "alice", tests({shell("a")}), &j);
  BOOST_TEST(p.verdicts == (verdicts{run}), boost::test_tools::per_element());
  // And once answered from the journal, the same holds.
  finish(adm, &j, "a");
  auto c2 = adm.add_client();
  BOOST_TEST(submit(adm, c2, "alice", tests({shell("a")}), &j).verdicts
               == (verdicts{answer}),
             boost::test_tools::per_element());
  BOOST_TEST(submit(adm, c2, "alice", tests({shell("a")}), &j).verdicts
               == (verdicts{run}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_clean_leave_retires_exactly_the_records_received) {
  admission adm;
  fake_journal j;
  auto c = adm.add_client();
  submit(adm, c, "alice", tests({shell("a"), shell("b"), shell("c")}), &j);
  finish(adm, &j, "a");
  finish(adm, &j, "b");
  // "c" is still open: nothing of it to retire.
  // "b" was submitted anew (another definition) by someone else since: its
  // record is no longer the one this client received.
  auto other = adm.add_client();
  auto p = submit(adm, other, "bob", tests({shell("b", "exit 2")}), &j);
  BOOST_TEST(p.verdicts == (verdicts{run}), boost::test_tools::per_element());
  auto retire = adm.remove_client(c, true, &j);
  BOOST_TEST(retire == (std::vector<std::string>{"a"}),
             boost::test_tools::per_element());
  BOOST_TEST(!adm.has_client(c));
}

BOOST_AUTO_TEST_CASE(a_lost_client_retires_nothing_and_is_answered_later) {
  admission adm;
  fake_journal j;
  auto c = adm.add_client();
  submit(adm, c, "alice", tests({shell("a")}), &j);
  finish(adm, &j, "a");
  BOOST_TEST(adm.remove_client(c, false, &j).empty());
  // The client comes back (a new connection) and is answered.
  auto again = adm.add_client();
  BOOST_TEST(submit(adm, again, "alice", tests({shell("a")}), &j).verdicts
               == (verdicts{answer}),
             boost::test_tools::per_element());
  // Having received it, its clean leave retires it.
  BOOST_TEST(adm.remove_client(again, true, &j)
               == (std::vector<std::string>{"a"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(an_outcome_of_a_test_that_is_not_open_is_dropped) {
  admission adm;
  auto c = adm.add_client();
  BOOST_TEST(!adm.end("nope", std::nullopt).has_value());
  submit(adm, c, "alice", tests({shell("a")}));
  BOOST_TEST(adm.end("a", std::nullopt).has_value());
  // A second outcome of the same test (a late report) does not count.
  BOOST_TEST(!adm.end("a", std::nullopt).has_value());
}

BOOST_AUTO_TEST_CASE(a_client_that_left_is_still_named_but_notes_nothing) {
  admission adm;
  fake_journal j;
  auto c = adm.add_client();
  submit(adm, c, "alice", tests({shell("a")}), &j);
  adm.remove_client(c, false, &j);
  auto closed = finish(adm, &j, "a");
  BOOST_TEST(closed.waiters == (std::vector<client_id>{c}),
             boost::test_tools::per_element());
  BOOST_TEST(!adm.has_client(c));
}

BOOST_AUTO_TEST_CASE(an_abandoned_plan_leaves_no_open_test) {
  admission adm;
  auto c = adm.add_client();
  submit(adm, c, "alice", tests({shell("a")}));
  auto p
    = adm.admit(c, "alice", tests({shell("a"), shell("b")}), false, nullptr, 1);
  BOOST_TEST(p.verdicts == (verdicts{attach, run}),
             boost::test_tools::per_element());
  adm.abandon(p);
  BOOST_TEST(!adm.is_open("b"));
  // The open test is untouched: still one waiter.
  BOOST_TEST(adm.is_open("a"));
  BOOST_TEST(finish(adm, nullptr, "a").waiters.size() == 1u);
  // And the id can be submitted again.
  BOOST_TEST(submit(adm, c, "alice", tests({shell("b")})).verdicts
               == (verdicts{run}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(resumed_tests_are_open_with_no_waiter_until_attached) {
  admission adm;
  adm.resume(shell("a"), "alice");
  auto sim = cluster_test{};
  sim.req.test_id = "s";
  adm.resume(sim, "alice");
  BOOST_TEST(adm.is_open("a"));
  auto c = adm.add_client();
  // The same definition attaches; another is a conflict.
  BOOST_TEST(submit(adm, c, "alice", tests({shell("a")})).verdicts
               == (verdicts{attach}),
             boost::test_tools::per_element());
  BOOST_TEST(submit(adm, c, "alice", tests({shell("a", "false")})).verdicts
               == (verdicts{conflict}),
             boost::test_tools::per_element());
  auto closed = finish(adm, nullptr, "a");
  BOOST_TEST(closed.waiters == (std::vector<client_id>{c}),
             boost::test_tools::per_element());
  BOOST_TEST(finish(adm, nullptr, "s").waiters.empty());
}

BOOST_AUTO_TEST_CASE(a_client_cancels_only_what_its_owner_alone_submitted) {
  admission adm;
  auto a = adm.add_client();
  auto b = adm.add_client();
  submit(adm, a, "alice", tests({shell("mine"), shell("both")}));
  submit(adm, b, "bob", tests({shell("theirs"), shell("both")}));
  auto p = adm.plan_cancel("alice", {"mine", "theirs", "both", "gone", "mine"},
                           false);
  BOOST_TEST(p.ask == (std::vector<std::string>{"mine"}),
             boost::test_tools::per_element());
  BOOST_REQUIRE(p.refused.size() == 2u);
  BOOST_TEST(p.refused[0].first == "theirs");
  BOOST_TEST(p.refused[0].second == "not submitted by this client");
  BOOST_TEST(p.refused[1].first == "both");
  BOOST_TEST(p.refused[1].second == "also submitted by another client");
  BOOST_TEST(p.unknown == (std::vector<std::string>{"gone"}),
             boost::test_tools::per_element());
  auto all = adm.plan_cancel("alice", {}, true);
  BOOST_TEST(all.ask == (std::vector<std::string>{"mine"}),
             boost::test_tools::per_element());
  // Another session of the same owner (the same key) may cancel it too.
  auto a2 = adm.add_client();
  (void)a2;
  BOOST_TEST(adm.plan_cancel("alice", {"mine"}, false).ask.size() == 1u);
}

// An operator (the operator token) may cancel any named open test, also
// another owner's and a shared one; its --all-mine is still its own.
BOOST_AUTO_TEST_CASE(an_operator_cancels_any_named_open_test) {
  admission adm;
  auto a = adm.add_client();
  auto b = adm.add_client();
  submit(adm, a, "alice", tests({shell("mine"), shell("both")}));
  submit(adm, b, "bob", tests({shell("theirs"), shell("both")}));
  auto p
    = adm.plan_cancel("ops", {"mine", "theirs", "both", "gone"}, false, true);
  BOOST_TEST(p.ask == (std::vector<std::string>{"mine", "theirs", "both"}),
             boost::test_tools::per_element());
  BOOST_TEST(p.refused.empty());
  BOOST_TEST(p.unknown == (std::vector<std::string>{"gone"}),
             boost::test_tools::per_element());
  BOOST_TEST(adm.plan_cancel("ops", {}, true, true).ask.empty());
  // Without the flag the same owner is refused every one of them.
  BOOST_TEST(adm.plan_cancel("ops", {"mine", "theirs"}, false).refused.size()
             == 2u);
}

BOOST_AUTO_TEST_CASE(the_owner_of_an_open_test_is_known_until_it_ends) {
  admission adm;
  auto a = adm.add_client();
  submit(adm, a, "alice", tests({shell("t")}));
  BOOST_REQUIRE(adm.owner_of("t") != nullptr);
  BOOST_TEST(*adm.owner_of("t") == "alice");
  BOOST_TEST(adm.owner_of("nope") == nullptr);
  finish(adm, nullptr, "t");
  BOOST_TEST(adm.owner_of("t") == nullptr);
}

BOOST_AUTO_TEST_CASE(a_closed_test_names_its_owner) {
  // The coordinator reads the owner from the end (where the log of an
  // ended test belongs) instead of asking owner_of first.
  admission adm;
  auto a = adm.add_client();
  auto b = adm.add_client();
  submit(adm, a, "alice", tests({shell("t")}));
  // A second client attaches to the same test: the first stays its owner.
  submit(adm, b, "bob", tests({shell("t")}));
  auto c = adm.end("t", std::nullopt);
  BOOST_REQUIRE(c.has_value());
  BOOST_TEST(c->owner == "alice");
  BOOST_TEST(c->waiters.size() == 2u);
}

BOOST_AUTO_TEST_CASE(an_attach_of_the_same_owner_keeps_the_test_cancellable) {
  admission adm;
  auto a = adm.add_client();
  auto a2 = adm.add_client();
  submit(adm, a, "alice", tests({shell("t")}));
  submit(adm, a2, "alice", tests({shell("t")}));
  BOOST_TEST(adm.plan_cancel("alice", {"t"}, false).ask.size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_submission_without_client_runs_but_nobody_waits) {
  admission adm;
  auto p = submit(adm, 0, "alice", tests({shell("a")}));
  BOOST_TEST(p.verdicts == (verdicts{run}), boost::test_tools::per_element());
  BOOST_TEST(finish(adm, nullptr, "a").waiters.empty());
}

BOOST_AUTO_TEST_CASE(verdicts_have_names) {
  for (auto v : {run, attach, answer, twice, conflict, invalid})
    BOOST_TEST(std::string{to_string(v)} != "?");
}

BOOST_AUTO_TEST_CASE(an_abandoned_plan_shares_nothing_and_delivers_nothing) {
  // The journal refused the submission: the client got an error, not the
  // answers, and attached to nothing.
  admission adm;
  fake_journal j;
  auto a = adm.add_client();
  submit(adm, a, "alice", tests({shell("open"), shell("done")}), &j);
  finish(adm, &j, "done");
  auto b = adm.add_client();
  auto p
    = adm.admit(b, "bob", tests({shell("open"), shell("done")}), false, &j, 1);
  BOOST_TEST(p.verdicts == (verdicts{attach, answer}),
             boost::test_tools::per_element());
  adm.abandon(p);
  BOOST_TEST(!adm.waits("open", b));
  BOOST_TEST(adm.plan_cancel("alice", {"open"}, false).ask.size() == 1u);
  // Not received: it is answered again.
  BOOST_TEST(submit(adm, b, "bob", tests({shell("done")}), &j).verdicts
               == (verdicts{answer}),
             boost::test_tools::per_element());
}
