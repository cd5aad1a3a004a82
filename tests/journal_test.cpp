// The submission journal: what a coordinator accepted and how it ended,
// kept in a real SQLite file across reopenings (and a killed process), one
// transaction per call, and clear errors on files that are not journals.

#define BOOST_TEST_MODULE journal
#include <boost/test/unit_test.hpp>

#include "runtime/history.hpp"
#include "runtime/journal.hpp"

#include <cmath>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <sqlite3.h>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace alb;

namespace {

/// A fresh path in the temporary directory, removed at the end.
struct temp_db {
  std::string path;
  temp_db() {
    char buf[] = "/tmp/alb_journal_XXXXXX";
    int fd = ::mkstemp(buf);
    BOOST_REQUIRE(fd >= 0);
    ::close(fd);
    path = buf;
    std::remove(path.c_str()); // start without a file
  }
  ~temp_db() {
    std::remove(path.c_str());
    std::remove((path + "-journal").c_str());
  }
};

journaled_test shell(const std::string& id, const std::string& script) {
  journaled_test t;
  t.req.test_id = id;
  t.req.minimum_memory = 1.5;
  t.req.required_accelerators = {{"cuda", 1}};
  t.req.timeout = 30;
  t.command = {"sh", "-c", script};
  t.env = {{"A", "1"}, {"B", "two words"}};
  t.cwd = "/tmp";
  return t;
}

journaled_outcome ended(const std::string& id, int exit_code) {
  journaled_outcome o;
  o.test_id = id;
  o.status = exit_code == 0 ? "completed" : "failed";
  o.success = exit_code == 0;
  o.exit_code = exit_code;
  o.exec_seconds = 0.25;
  o.attempts = 2;
  o.worker_id = "n1/w0";
  o.error = exit_code == 0 ? "" : "exit status " + std::to_string(exit_code);
  o.output_tail = "out of " + id + "\n";
  return o;
}

std::vector<std::string> ids_of(const std::vector<journaled_test>& ts) {
  std::vector<std::string> out;
  for (auto& t : ts)
    out.push_back(t.req.test_id);
  return out;
}

/// SQLite's file change counter (header bytes 24-27): one increment per
/// committed write transaction in rollback-journal mode.
uint32_t change_counter(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  char b[28] = {0};
  in.read(b, sizeof(b));
  BOOST_REQUIRE(in.gcount() == 28);
  auto u
    = [&](int i) { return static_cast<uint32_t>(static_cast<uint8_t>(b[i])); };
  return (u(24) << 24) | (u(25) << 16) | (u(26) << 8) | u(27);
}

void sql(const std::string& path, const char* text) {
  sqlite3* db = nullptr;
  BOOST_REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  char* err = nullptr;
  auto rc = sqlite3_exec(db, text, nullptr, nullptr, &err);
  if (rc != SQLITE_OK)
    BOOST_FAIL(std::string{"sql: "} + (err ? err : "?"));
  sqlite3_close(db);
}

} // namespace

BOOST_AUTO_TEST_CASE(accepted_tests_survive_reopening_in_order) {
  temp_db f;
  {
    auto j = submission_journal::open(f.path);
    BOOST_TEST(j.open_count() == 0u);
    j.accept({shell("b", "exit 0"), shell("a", "exit 1")});
    j.accept({shell("c", "sleep 1")});
  }
  auto j = submission_journal::open(f.path);
  BOOST_TEST(j.open_count() == 3u);
  BOOST_TEST(j.ended_count() == 0u);
  auto open = j.open_tests();
  BOOST_TEST(ids_of(open) == (std::vector<std::string>{"b", "a", "c"}));
  auto& a = open[1];
  BOOST_TEST(a.command == (std::vector<std::string>{"sh", "-c", "exit 1"}));
  BOOST_TEST(a.env.at("B") == "two words");
  BOOST_TEST(a.cwd == "/tmp");
  BOOST_TEST(a.req.minimum_memory == 1.5);
  BOOST_TEST(a.req.required_accelerators.at("cuda") == 1);
  BOOST_TEST(a.req.timeout == 30.0);
  BOOST_TEST(submission_journal::definition_of(a)
             == submission_journal::definition_of(shell("a", "exit 1")));
}

BOOST_AUTO_TEST_CASE(outcomes_are_recorded_once_and_survive_reopening) {
  temp_db f;
  {
    auto j = submission_journal::open(f.path);
    j.accept({shell("a", "true"), shell("b", "exit 3"), shell("c", "true")});
    auto second = ended("a", 9); // a stale duplicate report of "a"
    j.record({ended("a", 0), ended("b", 3), second, ended("ghost", 0)});
    BOOST_TEST(j.open_count() == 1u);
    BOOST_TEST(j.ended_count() == 2u);
    j.record({ended("a", 7)}); // already ended: ignored
  }
  auto j = submission_journal::open(f.path);
  BOOST_TEST(ids_of(j.open_tests()) == (std::vector<std::string>{"c"}));
  auto a = j.find("a");
  BOOST_REQUIRE(a);
  BOOST_TEST(a->ended);
  BOOST_TEST(a->outcome.status == "completed");
  BOOST_TEST(a->outcome.exit_code == 0);
  BOOST_TEST(a->outcome.attempts == 2);
  BOOST_TEST(a->outcome.worker_id == "n1/w0");
  BOOST_TEST(a->outcome.output_tail == "out of a\n");
  auto b = j.find("b");
  BOOST_REQUIRE(b);
  BOOST_TEST(b->outcome.status == "failed");
  BOOST_TEST(!b->outcome.success);
  BOOST_TEST(b->outcome.exit_code == 3);
  BOOST_TEST(b->outcome.error == "exit status 3");
  BOOST_TEST(!j.find("ghost"));
}

BOOST_AUTO_TEST_CASE(node_signal_and_times_survive_reopening) {
  temp_db f;
  {
    auto j = submission_journal::open(f.path);
    j.accept({shell("k", "kill -9 $$")});
    auto o = ended("k", 137);
    o.signal = 9;
    o.node = "n1";
    o.submitted_at = 1796124000.25;
    o.started_at = 1796124001.5;
    o.ended_at = 1796124002.75;
    j.record({o});
  }
  auto j = submission_journal::open(f.path);
  auto k = j.find("k");
  BOOST_REQUIRE(k);
  BOOST_TEST(k->outcome.signal == 9);
  BOOST_TEST(k->outcome.node == "n1");
  BOOST_TEST(k->outcome.submitted_at == 1796124000.25);
  BOOST_TEST(k->outcome.started_at == 1796124001.5);
  BOOST_TEST(k->outcome.ended_at == 1796124002.75);
}

BOOST_AUTO_TEST_CASE(a_journal_of_an_older_alb_is_upgraded) {
  temp_db f;
  {
    // The table as alb wrote it before outcomes had node, signal and times.
    sqlite3* db = nullptr;
    BOOST_REQUIRE(sqlite3_open(f.path.c_str(), &db) == SQLITE_OK);
    BOOST_REQUIRE(
      sqlite3_exec(db,
                   "CREATE TABLE journal_tests (seq INTEGER PRIMARY KEY "
                   "AUTOINCREMENT, test_id TEXT NOT NULL, definition TEXT NOT "
                   "NULL, state TEXT NOT NULL, status TEXT, success INTEGER, "
                   "timed_out INTEGER, exit_code INTEGER, exec_seconds REAL, "
                   "attempts INTEGER, worker_id TEXT, error TEXT, output_tail "
                   "TEXT)",
                   nullptr, nullptr, nullptr)
      == SQLITE_OK);
    sqlite3_close(db);
  }
  {
    auto j = submission_journal::open(f.path);
    j.accept({shell("a", "true")});
    auto o = ended("a", 0);
    o.node = "n2";
    j.record({o});
  }
  auto j = submission_journal::open(f.path);
  auto a = j.find("a");
  BOOST_REQUIRE(a);
  BOOST_TEST(a->outcome.node == "n2");
  BOOST_TEST(a->outcome.signal == 0);
}

BOOST_AUTO_TEST_CASE(retired_records_no_longer_answer) {
  temp_db f;
  {
    auto j = submission_journal::open(f.path);
    j.accept({shell("a", "true"), shell("b", "true")});
    j.record({ended("a", 0)});
    j.retire({"a", "b", "ghost"}); // b is open: left alone
    BOOST_TEST(!j.find("a"));
    BOOST_TEST(j.find("b"));
  }
  auto j = submission_journal::open(f.path);
  BOOST_TEST(!j.find("a"));
  BOOST_TEST(j.open_count() == 1u);
  // A retired id may be submitted again: a new, open record.
  j.accept({shell("a", "echo again")});
  BOOST_REQUIRE(j.find("a"));
  BOOST_TEST(!j.find("a")->ended);
}

BOOST_AUTO_TEST_CASE(a_new_submission_supersedes_an_ended_record) {
  temp_db f;
  {
    auto j = submission_journal::open(f.path);
    j.accept({shell("a", "exit 1")});
    j.record({ended("a", 1)});
    j.accept({shell("a", "exit 0")});
    BOOST_TEST(j.open_count() == 1u);
    BOOST_TEST(j.ended_count() == 0u);
  }
  auto j = submission_journal::open(f.path);
  auto open = j.open_tests();
  BOOST_REQUIRE_EQUAL(open.size(), 1u);
  BOOST_TEST(open[0].command.back() == "exit 0");
  BOOST_TEST(!j.find("a")->ended);
}

BOOST_AUTO_TEST_CASE(a_bad_submission_writes_nothing) {
  temp_db f;
  auto j = submission_journal::open(f.path);
  j.accept({shell("a", "true")});
  // "a" is open: the whole batch is refused, "x" included.
  BOOST_CHECK_THROW(j.accept({shell("x", "true"), shell("a", "true")}),
                    journal_error);
  BOOST_CHECK_THROW(j.accept({shell("y", "true"), shell("y", "true")}),
                    journal_error);
  BOOST_CHECK_THROW(j.accept({shell("", "true")}), journal_error);
  BOOST_TEST(!j.find("x"));
  BOOST_TEST(!j.find("y"));
  auto again = submission_journal::open(f.path);
  BOOST_TEST(ids_of(again.open_tests()) == (std::vector<std::string>{"a"}));
}

BOOST_AUTO_TEST_CASE(one_transaction_per_call) {
  temp_db f;
  auto j = submission_journal::open(f.path);
  std::vector<journaled_test> many;
  std::vector<journaled_outcome> outs;
  std::vector<std::string> ids;
  for (int i = 0; i < 500; ++i) {
    many.push_back(shell("t" + std::to_string(i), "true"));
    outs.push_back(ended("t" + std::to_string(i), 0));
    ids.push_back("t" + std::to_string(i));
  }
  auto c0 = change_counter(f.path);
  j.accept(many);
  auto c1 = change_counter(f.path);
  BOOST_TEST(c1 == c0 + 1);
  j.record(outs);
  auto c2 = change_counter(f.path);
  BOOST_TEST(c2 == c1 + 1);
  j.retire(ids);
  BOOST_TEST(change_counter(f.path) == c2 + 1);
  j.record(outs); // nothing open any more: no transaction at all
  BOOST_TEST(change_counter(f.path) == c2 + 1);
}

BOOST_AUTO_TEST_CASE(a_killed_process_keeps_what_it_accepted) {
  temp_db f;
  auto pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    // No destructors, no close: as if the coordinator were SIGKILLed right
    // after acknowledging.
    auto j = submission_journal::open(f.path);
    j.accept({shell("a", "true"), shell("b", "true")});
    j.record({ended("a", 0)});
    ::raise(SIGKILL);
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  BOOST_REQUIRE(WIFSIGNALED(status));
  auto j = submission_journal::open(f.path);
  BOOST_TEST(ids_of(j.open_tests()) == (std::vector<std::string>{"b"}));
  BOOST_REQUIRE(j.find("a"));
  BOOST_TEST(j.find("a")->outcome.status == "completed");
}

BOOST_AUTO_TEST_CASE(a_database_killed_mid_write_restarts) {
  // A coordinator killed inside a large accept leaves a hot journal: the
  // restart must roll it back, for the journal and for the history kept in
  // the same file (which used to be opened read-only and refused it).
  temp_db f;
  std::vector<journaled_test> big;
  for (int i = 0; i < 20000; ++i)
    big.push_back(shell("t-" + std::to_string(i), std::string(200, 'x')));
  int hot = 0;
  for (double delay_us = 300; delay_us < 400000 && hot < 2; delay_us *= 1.4) {
    auto pid = ::fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
      auto j = submission_journal::open(f.path);
      j.accept(big);
      ::_exit(0);
    }
    ::usleep(static_cast<useconds_t>(delay_us));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    struct stat sb {};
    bool hot_journal
      = ::stat((f.path + "-journal").c_str(), &sb) == 0 && sb.st_size > 0;
    if (!hot_journal) {
      // Not inside the transaction: start again from an empty journal.
      std::remove(f.path.c_str());
      continue;
    }
    ++hot;
    BOOST_CHECK_NO_THROW(execution_history::load(f.path));
    auto j = submission_journal::open(f.path);
    // All of the accept or none of it.
    auto n = j.open_tests().size();
    BOOST_TEST((n == 0u || n == big.size()), n << " tests open");
    std::remove(f.path.c_str());
  }
  BOOST_TEST(hot > 0, "no kill landed inside the accept's transaction");
}

BOOST_AUTO_TEST_CASE(node_names_are_remembered) {
  temp_db f;
  {
    auto j = submission_journal::open(f.path);
    BOOST_TEST(j.note_node("n1"));
    BOOST_TEST(!j.note_node("n1"));
    BOOST_TEST(j.note_node("n2"));
  }
  auto j = submission_journal::open(f.path);
  BOOST_TEST(j.known_nodes() == (std::vector<std::string>{"n1", "n2"}));
  BOOST_TEST(!j.note_node("n2"));
}

BOOST_AUTO_TEST_CASE(any_bytes_in_commands_survive) {
  temp_db f;
  auto t = shell("bytes", "true");
  t.command = {"printf", std::string("a\0b", 3), "\xff\xfe latin-1 \xe9",
               "\"quoted\"\n\\", "12:not,a,netstring,"};
  t.env = {{"K\n", std::string("v\0w", 3)}, {"", ""}};
  t.cwd = "/tmp/d\xc3\xa9j\xc3\xa0";
  t.req.expected_duration = 0.1; // not exact in binary
  t.req.required_software = {"gcc", ""};
  t.req.required_tags = {"gpu-rack", "r\xc3\xa4"
                                     "ck"};
  {
    auto j = submission_journal::open(f.path);
    j.accept({t});
  }
  auto j = submission_journal::open(f.path);
  auto open = j.open_tests();
  BOOST_REQUIRE_EQUAL(open.size(), 1u);
  BOOST_TEST(open[0].command == t.command);
  BOOST_TEST((open[0].env == t.env));
  BOOST_TEST(open[0].cwd == t.cwd);
  BOOST_TEST(open[0].req.expected_duration == 0.1);
  BOOST_TEST(open[0].req.required_software == t.req.required_software);
  BOOST_TEST(open[0].req.required_tags == t.req.required_tags);
  BOOST_TEST(submission_journal::definition_of(open[0])
             == submission_journal::definition_of(t));
}

BOOST_AUTO_TEST_CASE(numbers_that_are_not_finite_are_refused) {
  temp_db f;
  auto j = submission_journal::open(f.path);
  auto t = shell("nan", "true");
  t.req.timeout = std::nan("");
  BOOST_CHECK_THROW(j.accept({t}), journal_error);
  t.req.timeout = 1;
  t.req.minimum_memory = HUGE_VAL;
  BOOST_CHECK_THROW(j.accept({t}), journal_error);
  BOOST_TEST(!j.find("nan"));
}

BOOST_AUTO_TEST_CASE(definitions_tell_tests_apart) {
  auto a = shell("a", "true");
  auto b = a;
  BOOST_TEST(submission_journal::definition_of(a)
             == submission_journal::definition_of(b));
  b.env["A"] = "2";
  BOOST_TEST(submission_journal::definition_of(a)
             != submission_journal::definition_of(b));
  b = a;
  b.req.timeout = 31;
  BOOST_TEST(submission_journal::definition_of(a)
             != submission_journal::definition_of(b));
  b = a;
  b.command.back() = "false";
  BOOST_TEST(submission_journal::definition_of(a)
             != submission_journal::definition_of(b));
}

BOOST_AUTO_TEST_CASE(shares_the_database_with_the_history) {
  temp_db f;
  execution_history h;
  h.record("m", "w", 2.0, 1.0);
  h.save(f.path);
  {
    auto j = submission_journal::open(f.path);
    j.accept({shell("a", "true")});
    h.save(f.path); // while the journal holds its connection
  }
  BOOST_TEST(execution_history::load(f.path).size() == 1u);
  BOOST_TEST(submission_journal::open(f.path).open_count() == 1u);
}

BOOST_AUTO_TEST_CASE(files_that_are_no_journal_are_named) {
  temp_db f;
  {
    std::ofstream out{f.path};
    out << std::string(4096, 'x');
  }
  try {
    submission_journal::open(f.path);
    BOOST_FAIL("garbage accepted");
  } catch (const journal_error& e) {
    std::string what = e.what();
    BOOST_TEST(what.find(f.path) != std::string::npos);
    BOOST_TEST(what.find("not a database") != std::string::npos);
  }
  std::remove(f.path.c_str());
  sql(f.path, "CREATE TABLE journal_tests (x INTEGER)");
  BOOST_CHECK_THROW(submission_journal::open(f.path), journal_error);
  std::remove(f.path.c_str());
  {
    auto j = submission_journal::open(f.path);
    j.accept({shell("a", "true")});
  }
  sql(f.path, "UPDATE journal_tests SET definition = '{broken'");
  try {
    submission_journal::open(f.path);
    BOOST_FAIL("broken row accepted");
  } catch (const journal_error& e) {
    BOOST_TEST(std::string{e.what()}.find("test 'a'") != std::string::npos);
  }
  BOOST_CHECK_THROW(submission_journal::open("/nonexistent-dir/x.db"),
                    journal_error);
  BOOST_CHECK_THROW(submission_journal::open("/tmp"), journal_error);
}

// -- runs: who submitted what, for alb results and cancel -------------------

namespace {

journal_run run_of(const std::string& id, const std::string& owner, double at) {
  return journal_run{id, owner, "/suites/" + id + ".toml", at};
}

journaled_outcome cancelled(const std::string& id) {
  journaled_outcome o;
  o.test_id = id;
  o.status = "cancelled";
  o.error = "cancelled";
  return o;
}

std::vector<const journaled_test*> ptrs(const std::vector<journaled_test>& ts) {
  std::vector<const journaled_test*> out;
  for (auto& t : ts)
    out.push_back(&t);
  return out;
}

} // namespace

BOOST_AUTO_TEST_CASE(runs_keep_their_owner_and_count_how_their_tests_ended) {
  temp_db f;
  {
    auto j = submission_journal::open(f.path);
    auto r1 = std::vector<journaled_test>{
      shell("a", "true"), shell("b", "exit 3"), shell("c", "sleep 9"),
      shell("d", "sleep 9")};
    j.accept(ptrs(r1), run_of("r1", "alice", 100));
    auto r2 = std::vector<journaled_test>{shell("e", "true")};
    j.accept(ptrs(r2), run_of("r2", "bob", 200));
    auto timed = ended("c", 0);
    timed.status = "failed";
    timed.timed_out = true;
    j.record({ended("a", 0), ended("b", 3), timed});
    BOOST_TEST(j.find("a")->owner == "alice");
    BOOST_TEST(j.find("e")->run_id == "r2");
  }
  auto j = submission_journal::open(f.path);
  // Kept across reopening: a restarted coordinator knows whose tests the
  // resumed ones are.
  BOOST_TEST(j.find("d")->owner == "alice");
  BOOST_TEST(j.find("d")->run_id == "r1");
  BOOST_TEST(j.run_owner("r1") == "alice");
  BOOST_TEST(j.run_owner("r2") == "bob");
  BOOST_TEST(j.run_owner("r3").empty());
  j.record({cancelled("d")});
  auto runs = j.runs("alice");
  BOOST_REQUIRE_EQUAL(runs.size(), 1u);
  auto& s = runs[0];
  BOOST_TEST(s.run.run_id == "r1");
  BOOST_TEST(s.run.label == "/suites/r1.toml");
  BOOST_TEST(s.run.submitted_at == 100.0);
  BOOST_TEST(s.tests == 4u);
  BOOST_TEST(s.open == 0u);
  BOOST_TEST(s.completed == 1u);
  BOOST_TEST(s.failed == 2u);
  BOOST_TEST(s.timed_out == 1u);
  BOOST_TEST(s.cancelled == 1u);
  BOOST_TEST(j.runs("").size() == 2u);
  BOOST_TEST(j.runs("mallory").empty());
  auto bob = j.runs("bob");
  BOOST_REQUIRE_EQUAL(bob.size(), 1u);
  BOOST_TEST(bob[0].open == 1u);
  auto tests = j.run_tests("r1");
  BOOST_REQUIRE_EQUAL(tests.size(), 4u);
  BOOST_TEST(tests[0].outcome.test_id == "a");
  BOOST_TEST(tests[1].outcome.exit_code == 3);
  BOOST_TEST(tests[2].outcome.timed_out);
  BOOST_TEST(tests[3].outcome.status == "cancelled");
  auto open = j.run_tests("r2");
  BOOST_REQUIRE_EQUAL(open.size(), 1u);
  BOOST_TEST(!open[0].ended);
  BOOST_TEST(j.run_tests("nope").empty());
}

// Every field of an outcome, as the coordinator answers a resubmission from
// the journal and as `alb results` lists a run: both read what was
// recorded, field for field (they lost migrated, stolen and the stderr tail,
// and `alb results` also the node, signal and times).
BOOST_AUTO_TEST_CASE(every_outcome_field_survives_reopening_and_run_listing) {
  temp_db f;
  auto o = ended("x", 137);
  o.timed_out = true;
  o.signal = 9;
  o.migrated = 2;
  o.stolen = 1;
  o.node = "gpu-box";
  o.submitted_at = 1796124000.25;
  o.started_at = 1796124001.5;
  o.ended_at = 1796124002.75;
  o.stderr_tail = "err of x\n";
  o.speculated = true;
  o.speculation_won = true;
  {
    auto j = submission_journal::open(f.path);
    auto tests = std::vector<journaled_test>{shell("x", "kill -9 $$")};
    j.accept(ptrs(tests), run_of("r1", "alice", 100));
    j.record({o});
  }
  auto j = submission_journal::open(f.path);
  auto live = j.find("x");
  BOOST_REQUIRE(live);
  auto listed = j.run_tests("r1");
  BOOST_REQUIRE_EQUAL(listed.size(), 1u);
  BOOST_TEST(listed[0].ended);
  const std::vector<const journaled_outcome*> read{&live->outcome,
                                                   &listed[0].outcome};
  for (auto* got : read) {
    BOOST_TEST(got->test_id == o.test_id);
    BOOST_TEST(got->status == o.status);
    BOOST_TEST(got->success == o.success);
    BOOST_TEST(got->timed_out == o.timed_out);
    BOOST_TEST(got->exit_code == o.exit_code);
    BOOST_TEST(got->signal == o.signal);
    BOOST_TEST(got->exec_seconds == o.exec_seconds);
    BOOST_TEST(got->attempts == o.attempts);
    BOOST_TEST(got->migrated == o.migrated);
    BOOST_TEST(got->stolen == o.stolen);
    BOOST_TEST(got->worker_id == o.worker_id);
    BOOST_TEST(got->error == o.error);
    BOOST_TEST(got->output_tail == o.output_tail);
    BOOST_TEST(got->node == o.node);
    BOOST_TEST(got->submitted_at == o.submitted_at);
    BOOST_TEST(got->started_at == o.started_at);
    BOOST_TEST(got->ended_at == o.ended_at);
    BOOST_TEST(got->stderr_tail == o.stderr_tail);
    BOOST_TEST(got->speculated == o.speculated);
    BOOST_TEST(got->speculation_won == o.speculation_won);
  }
}

BOOST_AUTO_TEST_CASE(a_run_stays_in_history_after_its_outcomes_are_retired) {
  temp_db f;
  auto j = submission_journal::open(f.path);
  auto r1 = std::vector<journaled_test>{shell("a", "exit 1")};
  j.accept(ptrs(r1), run_of("r1", "alice", 1));
  j.record({ended("a", 1)});
  j.retire({"a"});
  // Rerun as a new run: the old row is history, the new one is live.
  j.accept(ptrs(r1), run_of("r2", "alice", 2));
  j.record({ended("a", 0)});
  auto runs = j.runs("alice");
  BOOST_REQUIRE_EQUAL(runs.size(), 2u);
  BOOST_TEST(runs[0].failed == 1u);
  BOOST_TEST(runs[1].completed == 1u);
  BOOST_TEST(j.run_tests("r1")[0].outcome.exit_code == 1);
}

BOOST_AUTO_TEST_CASE(another_owners_run_id_is_refused_and_nothing_written) {
  temp_db f;
  auto j = submission_journal::open(f.path);
  auto a = std::vector<journaled_test>{shell("a", "true")};
  auto b = std::vector<journaled_test>{shell("b", "true")};
  j.accept(ptrs(a), run_of("r1", "alice", 1));
  auto before = change_counter(f.path);
  try {
    j.accept(ptrs(b), run_of("r1", "mallory", 2));
    BOOST_FAIL("another owner's run accepted");
  } catch (const journal_error& e) {
    BOOST_TEST(std::string{e.what()}.find("another client")
               != std::string::npos);
  }
  BOOST_TEST(change_counter(f.path) == before);
  BOOST_TEST(!j.find("b"));
  // The same owner adds to its run.
  j.accept(ptrs(b), run_of("r1", "alice", 3));
  BOOST_TEST(j.runs("alice").at(0).tests == 2u);
  BOOST_TEST(j.runs("alice").at(0).run.submitted_at == 1.0);
}

BOOST_AUTO_TEST_CASE(a_journal_from_before_runs_opens_and_gains_them) {
  temp_db f;
  // The tables as journals were written before runs were recorded.
  sql(f.path,
      "CREATE TABLE journal_tests (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
      "test_id TEXT NOT NULL, definition TEXT NOT NULL, state TEXT NOT NULL, "
      "status TEXT, success INTEGER, timed_out INTEGER, exit_code INTEGER, "
      "exec_seconds REAL, attempts INTEGER, worker_id TEXT, error TEXT, "
      "output_tail TEXT)");
  {
    auto j = submission_journal::open(f.path);
    j.accept({shell("old", "true")});
  }
  sql(f.path, "DROP INDEX journal_tests_run");
  sql(f.path, "ALTER TABLE journal_tests DROP COLUMN run_id");
  sql(f.path, "ALTER TABLE journal_tests DROP COLUMN owner");
  auto j = submission_journal::open(f.path);
  BOOST_TEST(j.open_count() == 1u);
  BOOST_TEST(j.find("old")->owner.empty());
  auto t = std::vector<journaled_test>{shell("new", "true")};
  j.accept(ptrs(t), run_of("r1", "alice", 1));
  BOOST_TEST(j.runs("alice").at(0).tests == 1u);
}

BOOST_AUTO_TEST_CASE(speculate_false_survives_reopening) {
  // A test that must never get a speculative copy stays so after a
  // coordinator restart; a test without the key keeps its old definition.
  temp_db f;
  auto once = shell("once", "true");
  once.req.speculate = false;
  auto plain = shell("plain", "true");
  auto before = submission_journal::definition_of(plain);
  {
    auto j = submission_journal::open(f.path);
    j.accept({once, plain});
  }
  auto j = submission_journal::open(f.path);
  auto open = j.open_tests();
  BOOST_REQUIRE(open.size() == 2u);
  BOOST_TEST(!open[0].req.speculate);
  BOOST_TEST(open[1].req.speculate);
  BOOST_TEST(submission_journal::definition_of(open[1]) == before);
  BOOST_TEST(submission_journal::definition_of(open[0])
             != submission_journal::definition_of(shell("once", "true")));
}
