#define BOOST_TEST_MODULE history
#include <boost/test/unit_test.hpp>

#include "runtime/history.hpp"

#include <cmath>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

using namespace alb;

namespace {

/// A fresh path in the temporary directory, removed at the end.
struct temp_db {
  std::string path;
  temp_db() {
    char buf[] = "/tmp/alb_history_XXXXXX";
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

} // namespace

BOOST_AUTO_TEST_CASE(running_stats_merge_matches_one_pass) {
  running_stats a, b, all;
  for (double x : {1.0, 2.0, 4.0}) {
    a.add(x);
    all.add(x);
  }
  for (double x : {8.0, 16.0}) {
    b.add(x);
    all.add(x);
  }
  a.merge(b);
  BOOST_TEST(a.count == all.count);
  BOOST_TEST(std::abs(a.mean - all.mean) < 1e-12);
  BOOST_TEST(std::abs(a.m2 - all.m2) < 1e-9);
}

BOOST_AUTO_TEST_CASE(estimates_use_the_learned_slowdown) {
  execution_history h;
  BOOST_TEST(h.estimate("m", nullptr, 2.0, 4.0) == 0.5); // advertised speed
  h.record("m", "w", 3.0, 1.0);
  h.record("m", "w", 5.0, 1.0);
  auto w = h.find_worker("w");
  BOOST_REQUIRE(w);
  BOOST_TEST(h.estimate("m", w, 2.0, 4.0) == 8.0);     // 4x slower, learned
  BOOST_TEST(h.estimate("other", w, 1.0, 1.0) == 4.0); // the worker's pace
  BOOST_TEST(h.estimate("m", w, 0, 1.0) == 4.0);       // mean seconds
  BOOST_TEST(h.size() == 1u);
}

BOOST_AUTO_TEST_CASE(history_survives_two_save_and_load_rounds) {
  temp_db db;
  auto first = execution_history::load(db.path); // missing: empty
  BOOST_TEST(first.empty());
  first.record("bert", "w-0", 2.0, 1.0);
  first.record("bert", "w-0", 4.0, 1.0);
  first.record("t5", "w-1", 1.0, 2.0);
  first.save(db.path);
  auto second = execution_history::load(db.path);
  BOOST_TEST(second.size() == 2u);
  BOOST_TEST(second.fresh().empty());
  auto s = second.find("bert", "w-0");
  BOOST_REQUIRE(s);
  BOOST_TEST(s->seconds.count == 2u);
  BOOST_TEST(s->seconds.mean == 3.0);
  BOOST_TEST(s->slowdown.mean == 3.0);
  second.record("bert", "w-0", 6.0, 1.0);
  BOOST_TEST(second.fresh().size() == 1u);
  second.save(db.path);
  auto third = execution_history::load(db.path);
  BOOST_TEST(third.find("bert", "w-0")->seconds.count == 3u);
  BOOST_TEST(third.find("bert", "w-0")->seconds.mean == 4.0);
  BOOST_TEST(third.find("t5", "w-1")->slowdown.mean == 0.5);
}

BOOST_AUTO_TEST_CASE(a_garbage_file_is_a_clear_error) {
  temp_db db;
  {
    std::ofstream out{db.path};
    for (int i = 0; i < 200; ++i)
      out << "this is not a database, just text " << i << "\n";
  }
  try {
    execution_history::load(db.path);
    BOOST_FAIL("load should have thrown");
  } catch (const history_error& e) {
    std::string msg = e.what();
    BOOST_TEST(msg.find(db.path) != std::string::npos, msg);
    BOOST_TEST(msg.find("not a database") != std::string::npos, msg);
    BOOST_TEST(msg.find('\n') == std::string::npos);
  }
  execution_history h;
  h.record("m", "w", 1, 1);
  BOOST_CHECK_THROW(h.save(db.path), history_error);
}

BOOST_AUTO_TEST_CASE(a_directory_is_a_clear_error) {
  try {
    execution_history::load("/tmp");
    BOOST_FAIL("load should have thrown");
  } catch (const history_error& e) {
    BOOST_TEST(std::string{e.what()}.find("/tmp") != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(a_save_killed_midway_leaves_the_old_history) {
  temp_db db;
  execution_history old;
  old.record("m", "w-0", 1.0, 1.0);
  old.save(db.path);
  // A large history takes a while to write; kill the writer at several
  // points and check the database each time.
  execution_history big;
  for (int w = 0; w < 300; ++w)
    for (int m = 0; m < 100; ++m)
      big.record("model-" + std::to_string(m), "w-" + std::to_string(w), 2.0,
                 1.0);
  // Kills later and later until some land inside the transaction (a hot
  // journal left behind): only those test a half-written save.
  int old_seen = 0;
  int new_seen = 0;
  int hot = 0;
  for (double delay_us = 300; delay_us < 400000 && hot < 3; delay_us *= 1.4) {
    auto pid = ::fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
      try {
        big.save(db.path);
      } catch (...) {
        ::_exit(1);
      }
      ::_exit(0);
    }
    ::usleep(static_cast<useconds_t>(delay_us));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    struct stat sb {};
    bool hot_journal
      = ::stat((db.path + "-journal").c_str(), &sb) == 0 && sb.st_size > 0;
    hot += hot_journal ? 1 : 0;
    // The next open rolls back a half-written transaction from the hot
    // journal; what is left is the old history or the whole new one.
    auto h = execution_history::load(db.path);
    if (h.size() == 1u) {
      ++old_seen;
      BOOST_TEST(h.find("m", "w-0")->seconds.mean == 1.0);
    } else {
      ++new_seen;
      BOOST_TEST(h.size() == big.size());
      // A save that left its journal behind had not committed.
      BOOST_TEST(!hot_journal);
    }
    old.save(db.path); // back to the old one for the next round
  }
  BOOST_TEST_MESSAGE("killed saves: " << old_seen << " left the old history, "
                                      << new_seen << " the new one, " << hot
                                      << " a hot journal");
  BOOST_TEST(hot > 0, "no kill landed inside a save's transaction");
}

BOOST_AUTO_TEST_CASE(a_model_family_informs_its_unseen_models_and_persists) {
  // w runs the bert family 3x slower than nominal and everything else at
  // nominal: bert-large, never run there, is expected near its family's
  // pace (drawn towards w's overall 2x by prior_samples), not at w's
  // overall one.
  temp_db db;
  execution_history h;
  for (int i = 0; i < 20; ++i) {
    h.record("bert-base", "w", 3.0, 1.0, "bert");
    h.record("t5-small", "w", 1.0, 1.0, "t5");
  }
  auto w = h.find_worker("w");
  BOOST_REQUIRE(w);
  auto n0 = execution_history::prior_samples;
  auto family = (20 * 3.0 + n0 * 2.0) / (20 + n0);
  BOOST_TEST(h.estimate("other", w, 1.0, 1.0) == 2.0);
  BOOST_TEST(std::abs(h.estimate("bert-large", w, 1.0, 1.0, "bert") - family)
             < 1e-12);
  BOOST_TEST(family > 2.5);
  BOOST_TEST(h.family_of("bert-base") == "bert");
  // A model recorded with its family is known by it without being told.
  BOOST_TEST(std::abs(h.estimate("bert-base", w, 1.0, 1.0)
                      - (20 * 3.0 + n0 * family) / (20 + n0))
             < 1e-12);
  h.save(db.path);
  auto back = execution_history::load(db.path);
  BOOST_TEST(back.family_of("bert-base") == "bert");
  BOOST_TEST(std::abs(back.estimate("bert-large", back.find_worker("w"), 1.0,
                                    1.0, "bert")
                      - family)
             < 1e-12);
}

BOOST_AUTO_TEST_CASE(a_few_runs_of_a_model_are_drawn_towards_the_worker) {
  // Twenty runs at nominal pace, then one run of a new model at half
  // pace: one jittered run does not make the worker look twice as slow
  // for that model; as many runs as prior_samples weigh half.
  execution_history h;
  for (int i = 0; i < 20; ++i)
    h.record("a", "w", 1.0, 1.0);
  h.record("b", "w", 2.0, 1.0);
  auto w = h.find_worker("w");
  auto overall = w->overall.slowdown.mean; // 22 / 21
  auto n0 = execution_history::prior_samples;
  auto one = h.estimate("b", w, 1.0, 1.0);
  BOOST_TEST(std::abs(one - (2.0 + n0 * overall) / (1 + n0)) < 1e-12);
  BOOST_TEST(one < 1.2);
  for (int i = 1; i < static_cast<int>(n0); ++i)
    h.record("b", "w", 2.0, 1.0);
  overall = w->overall.slowdown.mean;
  BOOST_TEST(std::abs(h.estimate("b", w, 1.0, 1.0) - (2.0 + overall) / 2)
             < 1e-12);
}

BOOST_AUTO_TEST_CASE(estimates_carry_the_spread_of_one_run) {
  // Runs of 5 and 15 s for 10 s tests: mean slowdown 1, sample sd
  // sqrt(50) / 10; a 20 s test is expected at 20 +- 2 sqrt(50) s, and a
  // pessimistic plan (mean + k sd) adds k of those.
  execution_history h;
  BOOST_TEST(h.estimate_run("m", nullptr, 20, 1.0).sd == 0.0);
  h.record("m", "w", 5, 10);
  auto w = h.find_worker("w");
  BOOST_TEST(h.estimate_run("m", w, 20, 1.0).sd == 0.0); // one sample
  h.record("m", "w", 15, 10);
  auto e = h.estimate_run("m", w, 20, 1.0);
  BOOST_TEST(std::abs(e.mean - 20) < 1e-12);
  BOOST_TEST(std::abs(e.sd - 2 * std::sqrt(50.0)) < 1e-9);
  BOOST_TEST(std::abs(e.upper(0.5) - (20 + std::sqrt(50.0))) < 1e-9);
}

BOOST_AUTO_TEST_CASE(records_in_any_order_land_where_their_keys_say) {
  // Runs of workers, models and families in turn and interleaved (the
  // history remembers the entries it added to last): every sample must be
  // counted under its own worker, model and family, and a copy made in
  // between must neither see later samples nor lose its own.
  execution_history h;
  std::map<std::string, uint64_t> by_pair, by_worker_family;
  std::vector<std::string> workers{"w1", "w2", "w3"};
  std::vector<std::string> models{"bert-base-uncased", "t5-small", "resnet"};
  std::vector<std::string> families{"bert", "t5", ""};
  execution_history copy;
  for (int i = 0; i < 300; ++i) {
    // Runs of up to 4 records on one worker, models switching within.
    auto& w = workers[static_cast<size_t>(i / 4 % 3)];
    auto k = static_cast<size_t>((i * 7) % 5 % 3);
    h.record(models[k], w, 1.0 + i % 3, 1.0, families[k]);
    ++by_pair[models[k] + "@" + w];
    if (!families[k].empty())
      ++by_worker_family[families[k] + "@" + w];
    if (i == 150) {
      // The same keys as the record just made: a copy that kept the
      // original's remembered entries would add this to the original.
      copy = h;
      copy.record(models[k], w, 1.0, 1.0, families[k]);
    }
  }
  for (auto& [key, n] : by_pair) {
    auto at = key.find('@');
    auto* s = h.find(key.substr(0, at), key.substr(at + 1));
    BOOST_REQUIRE(s);
    BOOST_TEST(s->seconds.count == n);
  }
  uint64_t all = 0;
  for (auto& w : workers) {
    auto* wh = h.find_worker(w);
    BOOST_REQUIRE(wh);
    all += wh->overall.seconds.count;
    for (auto& [fam, stats] : wh->by_family)
      BOOST_TEST(stats.seconds.count == by_worker_family[fam + "@" + w]);
  }
  BOOST_TEST(all == 300u);
  uint64_t copied = 0;
  for (auto& w : workers)
    if (auto* wh = copy.find_worker(w))
      copied += wh->overall.seconds.count;
  BOOST_TEST(copied == 152u);
}
