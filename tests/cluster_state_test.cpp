#define BOOST_TEST_MODULE cluster_state
#include <boost/test/unit_test.hpp>

#include "runtime/chunked_store.hpp"
#include "runtime/cluster_state.hpp"
#include "runtime/huge_pages.hpp"
#include "runtime/id_map.hpp"
#include "runtime/rng.hpp"
#include "tests/outbox_support.hpp"

#include <cmath>
#include <iterator>
#include <map>
#include <ostream>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

using namespace alb;

namespace alb {

// Printers so failed checks show readable values.
std::ostream& boost_test_print_type(std::ostream& out, test_status x) {
  return out << to_string(x);
}

std::ostream& boost_test_print_type(std::ostream& out,
                                    cluster_state::submit_status x) {
  switch (x) {
    case cluster_state::submit_status::accepted:
      return out << "accepted";
    case cluster_state::submit_status::duplicate:
      return out << "duplicate";
    case cluster_state::submit_status::invalid:
      return out << "invalid";
  }
  return out << "?";
}

} // namespace alb

namespace {

constexpr auto npos = cluster_state::npos;

worker_capabilities make_worker(std::string id, double memory, int slots = 4,
                                std::map<std::string, int> accel = {},
                                std::vector<std::string> backends = {"cpu"},
                                std::map<std::string, std::string> sw = {}) {
  worker_capabilities w;
  w.worker_id = std::move(id);
  w.available_memory = memory;
  w.max_concurrent_tests = slots;
  w.available_accelerators = std::move(accel);
  w.supported_backends = std::move(backends);
  w.software_versions = std::move(sw);
  return w;
}

test_requirements make_test(std::string id, double memory = 1,
                            int priority = 3) {
  test_requirements t;
  t.test_id = std::move(id);
  t.minimum_memory = memory;
  t.priority = priority;
  return t;
}

attempt_outcome passed(double exec = 1) {
  attempt_outcome o;
  o.success = true;
  o.exec_seconds = exec;
  return o;
}

attempt_outcome failed_attempt(double exec = 1) {
  attempt_outcome o;
  o.success = false;
  o.exec_seconds = exec;
  o.error = "boom";
  return o;
}

scheduler_config no_prefetch() {
  scheduler_config cfg;
  cfg.prefetch = 0;
  return cfg;
}

/// `no_prefetch()` with a strategy that does not bind late: a test that
/// fits no free worker is parked (the default `adaptive` keeps such a test
/// queued in its size class while a busy worker could hold it).
scheduler_config parking() {
  auto cfg = no_prefetch();
  cfg.strategy = "least_loaded";
  return cfg;
}

/// Where a drained placement went.
struct placement {
  uint32_t slot = npos;
  test_handle handle;
};

/// Owns a cluster, remembers every placement the outbox hands out and every
/// end the listener reports, and checks the invariants after each step.
struct fixture {
  explicit fixture(scheduler_config cfg = no_prefetch()) : c(std::move(cfg)) {
    c.set_end_listener([this](const assignment& a, const attempt_outcome*) {
      ++end_calls[a.test_id];
      ends[a.test_id] = a;
    });
  }

  void check() { BOOST_TEST(c.check_invariants() == ""); }

  cluster_state::submit_status submit(test_requirements req, double now = 0) {
    auto st = c.submit(std::move(req), now);
    check();
    return st;
  }

  uint32_t add(worker_capabilities caps, double now = 0) {
    auto slot = c.add_worker(std::move(caps), now);
    check();
    return slot;
  }

  /// Dispatches and drains the outbox into `placed`.
  void dispatch(double now = 0) {
    c.dispatch(now);
    check();
    c.drain_outbox([this](uint32_t slot, std::vector<test_handle>& hs) {
      for (auto& h : hs) {
        auto& id = c.record(h).req.test_id;
        placed[id] = placement{slot, h};
        ++drained[id];
      }
    });
    BOOST_TEST(!c.has_outbox());
  }

  bool finish(const std::string& id, const attempt_outcome& o, double now) {
    auto it = placed.find(id);
    BOOST_REQUIRE(it != placed.end());
    auto p = it->second;
    placed.erase(it);
    auto ok = c.complete(p.slot, p.handle, o, now);
    check();
    return ok;
  }

  uint32_t slot_of(const std::string& id) const {
    auto it = placed.find(id);
    return it == placed.end() ? npos : it->second.slot;
  }

  bool is_placed(const std::string& id) const { return placed.count(id) > 0; }

  run_metrics metrics(double now) const {
    return c.stats().metrics(now, c.worker_count(), c.queued() + c.parked());
  }

  cluster_state c;
  std::unordered_map<std::string, placement> placed;
  std::unordered_map<std::string, int> drained;
  std::unordered_map<std::string, int> end_calls;
  std::unordered_map<std::string, assignment> ends;
};

} // namespace

// -- one definition ----------------------------------------------------------

BOOST_AUTO_TEST_CASE(how_to_run_a_test_rides_in_its_record_to_each_placement) {
  fixture f;
  auto w = f.add(make_worker("w", 8, 4));
  test_run run;
  run.command = {"sh", "-c", "exit 1"};
  run.env = {{"A", "1"}};
  run.cwd = "/tmp";
  run.max_output = 4096;
  f.c.submit(make_test("real"), run, 0);
  f.submit(make_test("sim"));
  f.dispatch();
  auto& rec = f.c.record(f.placed.at("real").handle);
  BOOST_TEST(rec.run->command == run.command, boost::test_tools::per_element());
  BOOST_TEST((rec.run->env == run.env));
  BOOST_TEST(rec.run->cwd == "/tmp");
  BOOST_TEST(rec.run->max_output == 4096u);
  BOOST_TEST(f.c.record(f.placed.at("sim").handle).run.empty());
  // A retry is placed again with the same definition.
  auto t = make_test("again");
  t.retries = 1;
  f.c.submit(t, run, 0);
  f.dispatch();
  BOOST_TEST(f.finish("again", failed_attempt(), 1));
  f.dispatch(1);
  BOOST_REQUIRE(f.is_placed("again"));
  BOOST_TEST(f.slot_of("again") == w);
  BOOST_TEST(f.c.record(f.placed.at("again").handle).run->command
               == run.command,
             boost::test_tools::per_element());
}

// -- capacity ----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_worker_filled_exactly_on_memory_takes_no_more_tests) {
  fixture f{parking()};
  auto w = f.add(make_worker("w", 8, 4));
  f.submit(make_test("a", 4));
  f.submit(make_test("b", 4));
  f.submit(make_test("c", 1));
  f.dispatch();
  BOOST_TEST(f.slot_of("a") == w);
  BOOST_TEST(f.slot_of("b") == w);
  BOOST_TEST(!f.is_placed("c"));
  BOOST_TEST(f.c.worker(w).free_memory == 0.0f);
  BOOST_TEST(f.c.parked() == 1u);
  BOOST_TEST(f.c.in_flight() == 2u);
}

BOOST_AUTO_TEST_CASE(a_worker_filled_exactly_on_accelerators_takes_no_more) {
  fixture f;
  auto w = f.add(make_worker("w", 64, 4, {{"cuda", 2}}));
  for (auto id : {"a", "b", "c"}) {
    auto t = make_test(id, 1);
    t.required_accelerators["cuda"] = 1;
    f.submit(t);
  }
  f.dispatch();
  BOOST_TEST(f.is_placed("a"));
  BOOST_TEST(f.is_placed("b"));
  BOOST_TEST(!f.is_placed("c"));
  BOOST_TEST(f.c.worker(w).free_accel[f.c.accel_index("cuda")] == 0);
  // A test without accelerator needs still fits next to them.
  f.submit(make_test("d", 1));
  f.dispatch();
  BOOST_TEST(f.slot_of("d") == w);
}

BOOST_AUTO_TEST_CASE(completion_releases_the_reservation) {
  fixture f;
  auto w = f.add(make_worker("w", 8, 4, {{"cuda", 1}}));
  auto t = make_test("a", 8);
  t.required_accelerators["cuda"] = 1;
  f.submit(t);
  f.submit(make_test("b", 2));
  f.dispatch();
  BOOST_TEST(f.is_placed("a"));
  BOOST_TEST(!f.is_placed("b"));
  BOOST_TEST(f.finish("a", passed(), 1));
  BOOST_TEST(f.c.worker(w).free_memory == 8.0f);
  BOOST_TEST(f.c.worker(w).free_accel[f.c.accel_index("cuda")] == 1);
  BOOST_TEST(f.c.worker(w).held.empty());
  f.dispatch(1);
  BOOST_TEST(f.slot_of("b") == w);
}

BOOST_AUTO_TEST_CASE(a_worker_takes_at_most_its_slots_plus_prefetch) {
  scheduler_config cfg;
  cfg.prefetch = 1;
  fixture f{cfg};
  auto w = f.add(make_worker("w", 100, 2));
  for (int i = 0; i < 5; ++i)
    f.submit(make_test("t" + std::to_string(i), 1));
  f.dispatch();
  BOOST_TEST(f.c.worker(w).held.size() == 3u);
  BOOST_TEST(f.c.queued() == 2u);
  // Waiting for a free slot is not "fits nowhere": nothing is parked.
  BOOST_TEST(f.c.parked() == 0u);
}

BOOST_AUTO_TEST_CASE(a_worker_of_many_slots_ends_its_tests_in_any_order) {
  // A node is one worker of many slots: each end takes its test out of the
  // worker's held tests by the index its record keeps (the invariant check
  // after each step verifies every index), also when a worker leaves and its
  // tests go elsewhere.
  fixture f;
  auto w = f.add(make_worker("big", 1000, 64));
  for (int i = 0; i < 64; ++i)
    f.submit(make_test("t" + std::to_string(i), 1));
  f.dispatch();
  BOOST_TEST(f.c.worker(w).held.size() == 64u);
  // Ends from the middle, the front and the back, in a scrambled order.
  for (int k = 0; k < 48; ++k) {
    int i = (k * 37) % 64;
    BOOST_TEST(f.finish("t" + std::to_string(i), passed(), 1));
  }
  BOOST_TEST(f.c.worker(w).held.size() == 16u);
  // New tests fill the freed slots, then the worker leaves: its tests run
  // on the next one and end there.
  for (int i = 64; i < 100; ++i)
    f.submit(make_test("t" + std::to_string(i), 1));
  f.dispatch(2);
  BOOST_TEST(f.c.worker(w).held.size() == 52u);
  auto other = f.add(make_worker("other", 1000, 64));
  f.c.remove_worker(w, true, 3);
  f.check();
  f.placed.clear();
  f.dispatch(3);
  BOOST_TEST(f.c.worker(other).held.size() == 52u);
  std::vector<std::string> ids;
  for (auto& [id, p] : f.placed)
    ids.push_back(id);
  for (auto& id : ids)
    BOOST_TEST(f.finish(id, passed(), 4));
  BOOST_TEST(f.c.worker(other).held.empty());
}

// -- waiting for a fitting worker ---------------------------------------------

BOOST_AUTO_TEST_CASE(a_test_that_fits_no_worker_waits_until_one_joins) {
  fixture f;
  f.add(make_worker("small", 8));
  f.submit(make_test("big", 16));
  f.dispatch();
  BOOST_TEST(!f.is_placed("big"));
  BOOST_TEST(f.c.parked() == 1u);
  f.c.tick(5);
  f.check();
  BOOST_TEST(f.end_calls.empty());
  auto large = f.add(make_worker("large", 32), 10);
  f.dispatch(10);
  BOOST_TEST(f.slot_of("big") == large);
  BOOST_TEST(f.c.parked() == 0u);
  BOOST_TEST(f.finish("big", passed(), 11));
  BOOST_TEST(f.ends["big"].status == test_status::completed);
}

BOOST_AUTO_TEST_CASE(a_test_that_fits_no_worker_fails_after_its_wait_limit) {
  scheduler_config cfg = no_prefetch();
  cfg.wait_limit = 30;
  fixture f{cfg};
  f.add(make_worker("small", 8, 4, {{"cuda", 1}}));
  auto t = make_test("big", 16);
  t.required_accelerators["cuda"] = 2;
  f.submit(t);
  f.dispatch();
  f.c.tick(29);
  f.check();
  BOOST_TEST(f.end_calls.empty());
  f.c.tick(30);
  f.check();
  BOOST_TEST(f.end_calls["big"] == 1);
  auto& a = f.ends["big"];
  BOOST_TEST(a.status == test_status::failed);
  BOOST_TEST(!a.success);
  // The reason names what the test needs.
  BOOST_TEST(a.error.find("no worker can hold it") != std::string::npos);
  BOOST_TEST(a.error.find("16 GB memory") != std::string::npos);
  BOOST_TEST(a.error.find("cuda:2") != std::string::npos);
  auto m = f.metrics(30);
  BOOST_TEST(m.unplaceable_tests == 1u);
  BOOST_TEST(m.failed_tests == 1u);
  BOOST_TEST(f.c.parked() == 0u);
  BOOST_TEST(f.c.open_tests() == 0u);
}

BOOST_AUTO_TEST_CASE(queued_tests_end_once_when_the_last_node_that_fits_left) {
  // The only worker leaves with one test running and one queued behind it:
  // with no worker at all nothing is ever parked, yet both end as
  // unplaceable once their wait limit has passed since the leave (not
  // since their submission: they waited for it for 100 s before).
  scheduler_config cfg = no_prefetch();
  cfg.wait_limit = 30;
  fixture f{cfg};
  auto slot = f.add(make_worker("only", 8, 1));
  f.submit(make_test("running", 4));
  f.submit(make_test("queued", 4));
  f.dispatch();
  BOOST_TEST(f.is_placed("running"));
  BOOST_TEST(!f.is_placed("queued"));
  f.c.tick(100);
  f.c.remove_worker(slot, true, 100);
  f.check();
  f.c.tick(129);
  f.check();
  BOOST_TEST(f.end_calls.empty());
  f.c.tick(130);
  f.check();
  BOOST_TEST(f.end_calls["running"] == 1);
  BOOST_TEST(f.end_calls["queued"] == 1);
  BOOST_TEST(f.ends["queued"].status == test_status::failed);
  BOOST_TEST(f.ends["queued"].error.find("no worker can hold it")
             != std::string::npos);
  BOOST_TEST(f.ends["queued"].error.find("waited 30 s") != std::string::npos);
  BOOST_TEST(f.metrics(130).unplaceable_tests == 2u);
  BOOST_TEST(f.c.open_tests() == 0u);
  // Later ticks and a worker that joins change nothing: each ended once.
  f.c.tick(200);
  f.add(make_worker("late", 8, 1), 201);
  f.dispatch(201);
  BOOST_TEST(f.end_calls["running"] == 1);
  BOOST_TEST(f.end_calls["queued"] == 1);
  BOOST_TEST(f.drained["running"] == 1);
  BOOST_TEST(f.drained.count("queued") == 0u);
}

BOOST_AUTO_TEST_CASE(a_parked_test_waits_from_when_the_big_node_left) {
  // A big test waits behind another on the only big worker (parked: the
  // small one cannot hold it). The big worker leaves at 500: the big test
  // fails 30 s later, not at once, although it was submitted long before.
  scheduler_config cfg = parking();
  cfg.wait_limit = 30;
  fixture f{cfg};
  f.add(make_worker("small", 4, 1));
  auto big = f.add(make_worker("big", 16, 1));
  f.submit(make_test("first", 12));
  f.dispatch();
  f.submit(make_test("second", 12), 1);
  f.dispatch(1);
  BOOST_TEST(f.c.parked() == 1u);
  f.c.tick(500);
  BOOST_TEST(f.end_calls.empty());
  f.c.remove_worker(big, true, 500);
  f.c.tick(501);
  f.dispatch(501);
  f.check();
  BOOST_TEST(f.end_calls.empty());
  f.c.tick(530);
  f.check();
  BOOST_TEST(f.end_calls["first"] == 1);
  BOOST_TEST(f.end_calls["second"] == 1);
  BOOST_TEST(f.ends["second"].status == test_status::failed);
  BOOST_TEST(f.ends["second"].error.find("12 GB memory") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_node_that_comes_back_in_time_keeps_the_queue) {
  // The only node restarts: its tests wait unplaceable for 10 s, then it
  // is back and runs them; none fails although all were submitted more
  // than a wait limit ago.
  scheduler_config cfg = no_prefetch();
  cfg.wait_limit = 30;
  fixture f{cfg};
  auto slot = f.add(make_worker("n1", 8, 1));
  f.submit(make_test("a", 4));
  f.submit(make_test("b", 4));
  f.dispatch();
  f.c.remove_worker(slot, true, 100);
  f.c.tick(105);
  f.placed.clear();
  f.add(make_worker("n1", 8, 1), 110);
  f.dispatch(110);
  f.c.tick(140);
  f.check();
  BOOST_TEST(f.end_calls.empty());
  BOOST_TEST(f.is_placed("a"));
}

BOOST_AUTO_TEST_CASE(a_per_test_wait_limit_overrides_the_default) {
  scheduler_config cfg = no_prefetch();
  cfg.wait_limit = 1000;
  fixture f{cfg};
  f.add(make_worker("small", 8));
  auto t = make_test("big", 16);
  t.wait_limit = 5;
  f.submit(t);
  f.dispatch();
  f.c.tick(5);
  f.check();
  BOOST_TEST(f.ends["big"].status == test_status::failed);
}

BOOST_AUTO_TEST_CASE(the_wait_limit_error_names_a_missing_backend_or_software) {
  scheduler_config cfg = no_prefetch();
  cfg.wait_limit = 10;
  fixture f{cfg};
  f.add(make_worker("cpu", 64));
  auto t = make_test("gpu", 1);
  t.required_backend = "cuda";
  auto s = make_test("tf", 1);
  s.required_software = {"tensorflow"};
  f.submit(t);
  f.submit(s);
  f.dispatch();
  BOOST_TEST(f.c.parked() == 2u);
  f.c.tick(10);
  f.check();
  BOOST_TEST(f.ends["gpu"].error.find("backend cuda") != std::string::npos);
  BOOST_TEST(f.ends["tf"].error.find("software tensorflow")
             != std::string::npos);
  BOOST_TEST(f.metrics(10).unplaceable_tests == 2u);
}

// BUG (runtime/cluster_state.cpp, could_ever_fit, line 665): the check asks
// "does some worker have the capacity" and "does some worker offer the
// backend / software" separately. Here the only cuda worker has 8 GB and the
// only 32 GB worker has no cuda, so no worker can ever hold the test, yet it
// waits forever instead of failing at its wait limit. Fix: require one worker
// that meets all of it, e.g. a scan of live_ with fits_total-like capacity
// checks plus eligible() ignoring the retry exclusion (tick is periodic and
// only looks at parked tests, so a scan is affordable), or a could-fit query
// on the index with the eligibility predicate.
BOOST_AUTO_TEST_CASE(a_test_whose_needs_no_single_worker_meets_fails_in_time) {
  scheduler_config cfg = no_prefetch();
  cfg.wait_limit = 10;
  fixture f{cfg};
  f.add(make_worker("big-cpu", 32, 4, {}, {"cpu"}));
  f.add(make_worker("small-gpu", 8, 4, {}, {"cpu", "cuda"}));
  auto t = make_test("t", 16);
  t.required_backend = "cuda";
  f.submit(t);
  f.dispatch();
  BOOST_TEST(f.c.parked() == 1u);
  f.c.tick(100);
  f.check();
  BOOST_TEST(f.end_calls["t"] == 1);
  BOOST_TEST(f.metrics(100).unplaceable_tests == 1u);
}

BOOST_AUTO_TEST_CASE(a_test_waiting_for_a_busy_cluster_outlives_the_limit) {
  scheduler_config cfg = parking();
  cfg.wait_limit = 10;
  fixture f{cfg};
  auto w = f.add(make_worker("w", 8, 2));
  f.submit(make_test("hog", 8));
  f.submit(make_test("waiter", 4));
  f.dispatch();
  BOOST_TEST(f.is_placed("hog"));
  // A free slot but no memory: the waiter is parked, not failed.
  BOOST_TEST(f.c.parked() == 1u);
  f.c.tick(50);
  f.dispatch(50);
  BOOST_TEST(f.end_calls.count("waiter") == 0u);
  BOOST_TEST(f.finish("hog", passed(), 60));
  f.dispatch(60);
  BOOST_TEST(f.slot_of("waiter") == w);
}

BOOST_AUTO_TEST_CASE(a_test_waiting_for_a_free_slot_outlives_the_limit) {
  scheduler_config cfg = no_prefetch();
  cfg.wait_limit = 10;
  fixture f{cfg};
  f.add(make_worker("w", 8, 1));
  f.submit(make_test("first", 1));
  f.submit(make_test("second", 1));
  f.dispatch();
  f.c.tick(100);
  f.check();
  BOOST_TEST(f.end_calls.empty());
  BOOST_TEST(f.finish("first", passed(), 100));
  f.dispatch(100);
  BOOST_TEST(f.is_placed("second"));
}

// -- order -------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(priority_one_goes_before_priority_five) {
  fixture f;
  f.submit(make_test("low", 1, 5), 0);
  f.submit(make_test("high", 1, 1), 0);
  f.add(make_worker("w", 8, 1));
  f.dispatch(0);
  BOOST_TEST(f.is_placed("high"));
  BOOST_TEST(!f.is_placed("low"));
}

BOOST_AUTO_TEST_CASE(equal_priorities_go_in_submission_order) {
  fixture f;
  f.submit(make_test("first", 1, 3), 0);
  f.submit(make_test("second", 1, 3), 1);
  f.add(make_worker("w", 8, 1), 2);
  f.dispatch(2);
  BOOST_TEST(f.is_placed("first"));
  BOOST_TEST(!f.is_placed("second"));
}

BOOST_AUTO_TEST_CASE(an_aged_priority_five_test_goes_before_a_fresh_one) {
  scheduler_config cfg = no_prefetch();
  cfg.aging_interval = 10;
  fixture f{cfg};
  f.submit(make_test("old", 1, 5), 0);
  f.submit(make_test("fresh", 1, 1), 41);
  f.add(make_worker("w", 8, 1), 41);
  f.dispatch(41);
  BOOST_TEST(f.is_placed("old"));
  BOOST_TEST(!f.is_placed("fresh"));
}

BOOST_AUTO_TEST_CASE(a_priority_five_test_that_aged_too_little_still_waits) {
  scheduler_config cfg = no_prefetch();
  cfg.aging_interval = 10;
  fixture f{cfg};
  f.submit(make_test("old", 1, 5), 0);
  f.submit(make_test("fresh", 1, 1), 35);
  f.add(make_worker("w", 8, 1), 35);
  f.dispatch(35);
  BOOST_TEST(f.is_placed("fresh"));
  BOOST_TEST(!f.is_placed("old"));
}

// -- workers leaving
// -----------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_lost_worker_requeues_its_tests_and_they_run_elsewhere) {
  fixture f;
  auto a = f.add(make_worker("a", 8, 3));
  for (auto id : {"x", "y", "z"})
    f.submit(make_test(id, 2));
  f.dispatch();
  for (auto id : {"x", "y", "z"})
    BOOST_TEST(f.slot_of(id) == a);
  auto old = f.placed;
  auto b = f.add(make_worker("b", 8, 3), 1);
  f.c.remove_worker(a, true, 2);
  f.check();
  BOOST_TEST(f.c.in_flight() == 0u);
  BOOST_TEST(f.c.queued() == 3u);
  BOOST_TEST(f.c.open_tests() == 3u);
  BOOST_TEST(f.metrics(2).requeued_tests == 3u);
  f.dispatch(2);
  for (auto id : {"x", "y", "z"})
    BOOST_TEST(f.slot_of(id) == b);
  // Reports about the lost placements are stale.
  for (auto& [id, p] : old)
    BOOST_TEST(!f.c.complete(p.slot, p.handle, passed(), 3));
  for (auto id : {"x", "y", "z"})
    BOOST_TEST(f.finish(id, passed(), 4));
  auto m = f.metrics(4);
  BOOST_TEST(m.completed_tests == 3u);
  BOOST_TEST(m.failed_tests == 0u);
  BOOST_TEST(f.c.open_tests() == 0u);
  for (auto id : {"x", "y", "z"})
    BOOST_TEST(f.end_calls[id] == 1);
}

BOOST_AUTO_TEST_CASE(requeued_tests_wait_when_no_worker_is_left) {
  fixture f;
  auto a = f.add(make_worker("a", 8, 2));
  f.submit(make_test("x", 2));
  f.dispatch();
  f.c.remove_worker(a, false, 1);
  f.check();
  f.dispatch(1);
  BOOST_TEST(f.c.queued() == 1u);
  BOOST_TEST(f.c.worker_count() == 0u);
  auto b = f.add(make_worker("b", 8, 2), 2);
  f.dispatch(2);
  BOOST_TEST(f.slot_of("x") == b);
}

// -- retries -----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_failed_attempt_is_retried_on_a_different_worker) {
  fixture f;
  f.add(make_worker("a", 8, 2));
  f.add(make_worker("b", 8, 2));
  auto t = make_test("t", 1);
  t.retries = 1;
  f.submit(t);
  f.dispatch();
  auto first = f.slot_of("t");
  BOOST_REQUIRE(first != npos);
  BOOST_TEST(f.finish("t", failed_attempt(), 1));
  BOOST_TEST(f.c.open_tests() == 1u);
  f.dispatch(1);
  auto second = f.slot_of("t");
  BOOST_TEST(second != npos);
  BOOST_TEST(second != first);
  BOOST_TEST(f.finish("t", passed(), 2));
  BOOST_TEST(f.ends["t"].status == test_status::completed);
  BOOST_TEST(f.ends["t"].attempts == 2);
  BOOST_TEST(f.metrics(2).retried_tests == 1u);
}

BOOST_AUTO_TEST_CASE(a_retry_uses_the_same_worker_when_it_is_the_only_fit) {
  fixture f;
  auto big = f.add(make_worker("big", 16, 2));
  f.add(make_worker("small", 2, 2));
  auto t = make_test("t", 8);
  t.retries = 2;
  f.submit(t);
  f.dispatch();
  BOOST_TEST(f.slot_of("t") == big);
  BOOST_TEST(f.finish("t", failed_attempt(), 1));
  f.dispatch(1);
  BOOST_TEST(f.slot_of("t") == big);
  BOOST_TEST(f.c.parked() == 0u);
}

BOOST_AUTO_TEST_CASE(a_test_that_exhausts_its_retries_fails) {
  fixture f;
  f.add(make_worker("a", 8, 2));
  auto t = make_test("t", 1);
  t.retries = 1;
  f.submit(t);
  f.dispatch();
  BOOST_TEST(f.finish("t", failed_attempt(), 1));
  f.dispatch(1);
  BOOST_TEST(f.finish("t", failed_attempt(), 2));
  f.dispatch(2);
  BOOST_TEST(!f.is_placed("t"));
  BOOST_TEST(f.end_calls["t"] == 1);
  BOOST_TEST(f.ends["t"].status == test_status::failed);
  BOOST_TEST(f.ends["t"].error == "boom");
  auto m = f.metrics(2);
  BOOST_TEST(m.failed_tests == 1u);
  BOOST_TEST(m.retried_tests == 1u);
  BOOST_TEST(m.timed_out_tests == 0u);
  BOOST_TEST(f.c.open_tests() == 0u);
}

BOOST_AUTO_TEST_CASE(a_timed_out_attempt_counts_as_timed_out) {
  fixture f;
  f.add(make_worker("a", 8, 2));
  f.submit(make_test("t", 1));
  f.dispatch();
  auto o = failed_attempt(5);
  o.timed_out = true;
  o.error = "timeout";
  BOOST_TEST(f.finish("t", o, 5));
  auto m = f.metrics(5);
  BOOST_TEST(m.timed_out_tests == 1u);
  BOOST_TEST(m.failed_tests == 1u);
  BOOST_TEST(f.ends["t"].status == test_status::failed);
}

// -- concurrency keys
// -----------------------------------------------------------

BOOST_AUTO_TEST_CASE(tests_sharing_a_key_never_run_together) {
  fixture f;
  f.add(make_worker("a", 8, 4));
  f.add(make_worker("b", 8, 4));
  auto first = make_test("first", 1);
  first.concurrency_key = "db";
  auto second = make_test("second", 1);
  second.concurrency_key = "db";
  auto other = make_test("other", 1);
  other.concurrency_key = "cache";
  f.submit(first);
  f.submit(second);
  f.submit(other);
  f.dispatch();
  BOOST_TEST(f.is_placed("first"));
  BOOST_TEST(!f.is_placed("second"));
  BOOST_TEST(f.is_placed("other"));
  BOOST_TEST(f.c.key_waiting() == 1u);
  f.dispatch(1);
  BOOST_TEST(!f.is_placed("second"));
  BOOST_TEST(f.finish("first", passed(), 2));
  BOOST_TEST(f.c.key_waiting() == 0u);
  f.dispatch(2);
  BOOST_TEST(f.is_placed("second"));
}

BOOST_AUTO_TEST_CASE(a_key_is_released_when_its_holder_is_cancelled) {
  fixture f;
  f.add(make_worker("a", 8, 4));
  auto first = make_test("first", 1);
  first.concurrency_key = "db";
  auto second = make_test("second", 1);
  second.concurrency_key = "db";
  f.submit(first);
  f.submit(second);
  f.dispatch();
  BOOST_TEST(f.c.cancel("first", 1));
  f.check();
  f.placed.erase("first");
  f.dispatch(1);
  BOOST_TEST(f.is_placed("second"));
}

// BUG (runtime/cluster_state.cpp, release_key, line 461): releasing a key
// wakes only the oldest waiter. When that waiter then leaves without ever
// taking the key (it fits nowhere, is parked and fails at its wait limit, or
// is cancelled while queued), nobody holds the key any more, so nobody calls
// release_key again and the remaining waiters wait forever (key_waiting()
// stays 1, open_tests() never reaches 0). Fix: wake every live waiter of the
// key (dispatch puts all but the one that gets placed back to waiting), or
// wake the next waiter whenever a woken test ends or parks without the key.
BOOST_AUTO_TEST_CASE(
  a_key_waiter_is_woken_when_the_woken_test_fails_unplaceable) {
  scheduler_config cfg = no_prefetch();
  cfg.wait_limit = 10;
  fixture f{cfg};
  auto w = f.add(make_worker("w", 8, 4));
  auto holder = make_test("holder", 1);
  holder.concurrency_key = "db";
  auto huge = make_test("huge", 16); // fits no worker
  huge.concurrency_key = "db";
  auto small = make_test("small", 1);
  small.concurrency_key = "db";
  f.submit(holder, 0);
  f.submit(huge, 0);
  f.submit(small, 0);
  f.dispatch(0);
  BOOST_TEST(f.c.key_waiting() == 2u);
  BOOST_TEST(f.finish("holder", passed(), 1));
  f.dispatch(1);
  f.c.tick(20);
  f.check();
  BOOST_TEST(f.ends["huge"].status == test_status::failed);
  f.dispatch(20);
  BOOST_TEST(f.slot_of("small") == w, "small is still waiting for its key");
  BOOST_TEST(f.c.key_waiting() == 0u);
}

// Same BUG as above, reached through cancel instead of the wait limit.
BOOST_AUTO_TEST_CASE(a_key_waiter_is_woken_when_the_woken_test_is_cancelled) {
  fixture f;
  auto w = f.add(make_worker("w", 8, 4));
  for (auto id : {"holder", "first", "second"}) {
    auto t = make_test(id, 1);
    t.concurrency_key = "db";
    f.submit(t, 0);
  }
  f.dispatch(0);
  BOOST_TEST(f.c.key_waiting() == 2u);
  BOOST_TEST(f.finish("holder", passed(), 1));
  // "first" got the key's wake-up and is queued; it is withdrawn before the
  // next dispatch.
  BOOST_TEST(f.c.cancel("first", 1));
  f.check();
  f.dispatch(1);
  BOOST_TEST(f.slot_of("second") == w, "second is still waiting for its key");
  BOOST_TEST(f.c.key_waiting() == 0u);
}

// -- cancel ------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_queued_test_can_be_cancelled) {
  fixture f;
  f.submit(make_test("t", 1));
  uint32_t slot = 0;
  BOOST_TEST(f.c.cancel("t", 1, &slot));
  f.check();
  BOOST_TEST(slot == npos);
  BOOST_TEST(f.c.open_tests() == 0u);
  BOOST_TEST(f.c.queued() == 0u);
  BOOST_TEST(f.ends["t"].status == test_status::cancelled);
  BOOST_TEST(f.metrics(1).cancelled_tests == 1u);
  // It never shows up later.
  f.add(make_worker("w", 8));
  f.dispatch(2);
  BOOST_TEST(!f.is_placed("t"));
}

BOOST_AUTO_TEST_CASE(a_parked_test_can_be_cancelled) {
  fixture f;
  f.add(make_worker("w", 8));
  f.submit(make_test("t", 16));
  f.dispatch();
  BOOST_TEST(f.c.parked() == 1u);
  BOOST_TEST(f.c.cancel("t", 1));
  f.check();
  BOOST_TEST(f.c.parked() == 0u);
  f.c.tick(1000);
  f.check();
  BOOST_TEST(f.end_calls["t"] == 1);
}

BOOST_AUTO_TEST_CASE(a_placed_test_can_be_cancelled_and_frees_its_worker) {
  fixture f;
  auto w = f.add(make_worker("w", 8));
  f.submit(make_test("t", 6));
  f.dispatch();
  auto p = f.placed.at("t");
  uint32_t slot = npos;
  test_handle h;
  BOOST_TEST(f.c.cancel("t", 1, &slot, &h));
  f.check();
  BOOST_TEST(slot == w);
  BOOST_TEST(h.ref == p.handle.ref);
  BOOST_TEST(h.gen == p.handle.gen);
  BOOST_TEST(f.c.worker(w).free_memory == 8.0f);
  BOOST_TEST(f.c.in_flight() == 0u);
  // The worker's late report about it is stale.
  BOOST_TEST(!f.c.complete(p.slot, p.handle, passed(), 2));
  f.check();
  BOOST_TEST(f.end_calls["t"] == 1);
  BOOST_TEST(f.ends["t"].status == test_status::cancelled);
}

BOOST_AUTO_TEST_CASE(cancelling_an_unknown_test_returns_false) {
  fixture f;
  BOOST_TEST(!f.c.cancel("nope", 0));
  f.submit(make_test("t"));
  BOOST_TEST(f.c.cancel("t", 0));
  BOOST_TEST(!f.c.cancel("t", 0));
  BOOST_TEST(f.end_calls["t"] == 1);
}

// -- submission --------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_duplicate_id_is_rejected_while_the_test_is_live) {
  fixture f;
  f.add(make_worker("w", 8));
  BOOST_TEST(f.submit(make_test("t"))
             == cluster_state::submit_status::accepted);
  BOOST_TEST(f.submit(make_test("t"))
             == cluster_state::submit_status::duplicate);
  BOOST_TEST(f.c.last_error().find("'t'") != std::string::npos);
  BOOST_TEST(f.c.open_tests() == 1u);
  f.dispatch();
  BOOST_TEST(f.submit(make_test("t"))
             == cluster_state::submit_status::duplicate);
  BOOST_TEST(f.finish("t", passed(), 1));
  BOOST_TEST(f.submit(make_test("t"), 2)
             == cluster_state::submit_status::accepted);
  f.dispatch(2);
  BOOST_TEST(f.is_placed("t"));
}

BOOST_AUTO_TEST_CASE(invalid_requirements_are_rejected_with_a_reason) {
  fixture f;
  auto rejects = [&](test_requirements t, const std::string& what) {
    BOOST_TEST_CONTEXT("expecting '" << what << "'") {
      BOOST_TEST(f.submit(t) == cluster_state::submit_status::invalid);
      BOOST_TEST(f.c.last_error().find(what) != std::string::npos,
                 "last_error: " << f.c.last_error());
    }
  };
  rejects(make_test("p0", 1, 0), "priority");
  rejects(make_test("p6", 1, 6), "priority");
  rejects(make_test("neg", -1), "minimum_memory");
  rejects(make_test("nan", std::nan("")), "minimum_memory");
  rejects(make_test("", 1), "test_id");
  auto r = make_test("retries");
  r.retries = -1;
  rejects(r, "retries");
  auto d = make_test("timeout");
  d.timeout = -1;
  rejects(d, "durations");
  auto a = make_test("accel");
  a.required_accelerators["cuda"] = -1;
  rejects(a, "cuda");
  BOOST_TEST(f.c.open_tests() == 0u);
  BOOST_TEST(f.c.stats().submitted_count() == 0u);
  // The id of a rejected test stays free.
  BOOST_TEST(f.submit(make_test("p0"))
             == cluster_state::submit_status::accepted);
}

BOOST_AUTO_TEST_CASE(a_fifth_accelerator_type_is_rejected) {
  fixture f;
  f.add(make_worker("w", 8, 1, {{"a", 1}, {"b", 1}, {"c", 1}, {"d", 1}}));
  BOOST_CHECK_THROW(f.c.add_worker(make_worker("x", 8, 1, {{"e", 1}}), 0),
                    std::invalid_argument);
  auto t = make_test("t");
  t.required_accelerators["e"] = 1;
  BOOST_TEST(f.submit(t) == cluster_state::submit_status::invalid);
  BOOST_TEST(f.c.last_error().find("accelerator") != std::string::npos);
}

// -- stale reports
// -------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_stale_report_is_ignored) {
  fixture f;
  auto a = f.add(make_worker("a", 8, 2));
  auto b = f.add(make_worker("b", 8, 2));
  auto t = make_test("t", 1);
  t.retries = 1;
  f.submit(t);
  f.dispatch();
  auto p = f.placed.at("t");
  auto other = p.slot == a ? b : a;
  // Right handle, wrong worker.
  BOOST_TEST(!f.c.complete(other, p.handle, passed(), 1));
  // Right worker, wrong generation.
  BOOST_TEST(!f.c.complete(p.slot, test_handle{p.handle.ref, p.handle.gen + 1},
                           passed(), 1));
  BOOST_TEST(!f.c.complete(p.slot, test_handle{p.handle.ref, p.handle.gen - 1},
                           passed(), 1));
  // A handle to a record that does not exist.
  BOOST_TEST(!f.c.complete(p.slot, test_handle{12345, 1}, passed(), 1));
  f.check();
  BOOST_TEST(f.c.in_flight() == 1u);
  BOOST_TEST(f.end_calls.empty());
  // A failed attempt is retried: the first placement's handle goes stale.
  BOOST_TEST(f.finish("t", failed_attempt(), 2));
  f.dispatch(2);
  BOOST_TEST(!f.c.complete(p.slot, p.handle, passed(), 3));
  f.check();
  auto last = f.placed.at("t");
  BOOST_TEST(f.finish("t", passed(), 3));
  // The same report twice: the second is stale.
  BOOST_TEST(!f.c.complete(last.slot, last.handle, passed(), 4));
  f.check();
  BOOST_TEST(f.end_calls["t"] == 1);
  BOOST_TEST(f.metrics(4).completed_tests == 1u);
}

BOOST_AUTO_TEST_CASE(a_report_for_a_reused_record_is_stale) {
  fixture f;
  f.add(make_worker("a", 8, 2));
  f.submit(make_test("first", 1));
  f.dispatch();
  auto p = f.placed.at("first");
  BOOST_TEST(f.finish("first", passed(), 1));
  // The next test most likely reuses the record; the old handle must not
  // complete it.
  f.submit(make_test("second", 1), 1);
  f.dispatch(1);
  BOOST_TEST(!f.c.complete(p.slot, p.handle, passed(), 2));
  f.check();
  BOOST_TEST(f.end_calls.count("second") == 0u);
  BOOST_TEST(f.finish("second", passed(), 2));
}

BOOST_AUTO_TEST_CASE(started_records_the_start_time) {
  fixture f;
  f.submit(make_test("t", 1), 0);
  f.add(make_worker("a", 8, 2), 1);
  f.dispatch(1);
  auto p = f.placed.at("t");
  f.c.started(p.slot, p.handle, 3);
  BOOST_TEST(f.c.record(p.handle).status == test_status::running);
  BOOST_TEST(f.c.record(p.handle).started_at == 3.0);
  // A stale start changes nothing.
  f.c.started(p.slot, test_handle{p.handle.ref, p.handle.gen + 1}, 4);
  BOOST_TEST(f.c.record(p.handle).started_at == 3.0);
  BOOST_TEST(f.finish("t", passed(1), 4));
  BOOST_TEST(f.c.stats().latency().max() == 3.0);
}

// -- requirements ------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_required_backend_is_respected) {
  fixture f;
  f.add(make_worker("cpu", 64, 4, {}, {"cpu"}));
  auto gpu = f.add(make_worker("gpu", 8, 4, {}, {"cpu", "cuda"}));
  for (int i = 0; i < 3; ++i) {
    auto t = make_test("g" + std::to_string(i), 1);
    t.required_backend = "cuda";
    f.submit(t);
  }
  f.dispatch();
  for (int i = 0; i < 3; ++i)
    BOOST_TEST(f.slot_of("g" + std::to_string(i)) == gpu);
}

BOOST_AUTO_TEST_CASE(required_software_is_respected) {
  fixture f;
  f.add(make_worker("plain", 64, 4, {}, {"cpu"}, {{"python", "3.11"}}));
  auto tf = f.add(make_worker("tf", 8, 4, {}, {"cpu"},
                              {{"python", "3.11"}, {"tensorflow", "2.15"}}));
  for (int i = 0; i < 3; ++i) {
    auto t = make_test("s" + std::to_string(i), 1);
    t.required_software = {"python", "tensorflow"};
    f.submit(t);
  }
  f.dispatch();
  for (int i = 0; i < 3; ++i)
    BOOST_TEST(f.slot_of("s" + std::to_string(i)) == tf);
}

// -- whole runs
// ----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(every_test_of_a_random_workload_ends_exactly_once) {
  scheduler_config cfg;
  cfg.wait_limit = 20;
  cfg.prefetch = 1;
  fixture f{cfg};
  rng r{42};
  std::vector<uint32_t> slots;
  std::set<std::pair<uint32_t, uint32_t>> seen_handles;
  // Handles drained per id, checked against the fixture's own bookkeeping.
  int submitted = 0;
  int cancelled_ok = 0;
  double now = 0;
  auto drain = [&] {
    f.c.drain_outbox([&](uint32_t slot, std::vector<test_handle>& hs) {
      for (auto& h : hs) {
        // Each placement is handed out once.
        BOOST_TEST(seen_handles.insert({h.ref, h.gen}).second);
        auto& rec = f.c.record(h);
        BOOST_TEST(rec.worker == slot);
        f.placed[rec.req.test_id] = placement{slot, h};
      }
    });
  };
  for (int i = 0; i < 4; ++i)
    slots.push_back(f.add(make_worker("w" + std::to_string(i), 16, 2), now));
  for (int step = 0; step < 3000; ++step) {
    now += 0.1;
    auto op = r.below(100);
    if (op < 40) {
      auto t = make_test("t" + std::to_string(submitted++),
                         r.pick(std::vector<double>{0.5, 1, 4, 8, 24}),
                         static_cast<int>(1 + r.below(5)));
      t.retries = static_cast<int>(r.below(2));
      if (r.chance(0.1))
        t.concurrency_key = "k" + std::to_string(r.below(3));
      BOOST_TEST(f.submit(t, now) == cluster_state::submit_status::accepted);
    } else if (op < 75 && !f.placed.empty()) {
      auto it = f.placed.begin();
      std::advance(it, static_cast<long>(r.below(f.placed.size())));
      auto id = it->first;
      auto o = r.chance(0.8) ? passed(0.05) : failed_attempt(0.05);
      BOOST_TEST(f.finish(id, o, now));
    } else if (op < 80 && submitted > 0) {
      auto id = "t" + std::to_string(r.below(submitted));
      f.placed.erase(id);
      if (f.c.cancel(id, now))
        ++cancelled_ok;
      f.check();
    } else if (op < 83 && slots.size() > 1) {
      auto k = r.below(slots.size());
      f.c.remove_worker(slots[k], r.chance(0.5), now);
      f.check();
      // Placements on the removed worker are void; forget them.
      for (auto it = f.placed.begin(); it != f.placed.end();)
        it = it->second.slot == slots[k] ? f.placed.erase(it) : std::next(it);
      slots.erase(slots.begin() + static_cast<long>(k));
    } else if (op < 86) {
      slots.push_back(f.add(
        make_worker("n" + std::to_string(step), r.chance(0.3) ? 32 : 8, 2),
        now));
    } else if (op < 90) {
      f.c.tick(now);
      f.check();
    }
    f.c.dispatch(now);
    f.check();
    drain();
  }
  // Let everything finish on a worker big enough for any test.
  f.add(make_worker("big", 64, 8), now);
  for (int round = 0; round < 10000 && f.c.open_tests() > 0; ++round) {
    now += 0.1;
    f.c.tick(now);
    f.c.dispatch(now);
    f.check();
    drain();
    auto todo = f.placed;
    for (auto& [id, p] : todo)
      BOOST_TEST(f.finish(id, passed(0.05), now));
  }
  BOOST_TEST(f.c.open_tests() == 0u);
  auto m = f.metrics(now);
  BOOST_TEST(m.total_tests == static_cast<uint64_t>(submitted));
  BOOST_TEST(m.completed_tests + m.failed_tests + m.cancelled_tests
             == m.total_tests);
  BOOST_TEST(m.cancelled_tests == static_cast<uint64_t>(cancelled_ok));
  BOOST_TEST(f.end_calls.size() == static_cast<size_t>(submitted));
  for (auto& [id, n] : f.end_calls)
    BOOST_TEST(n == 1, id << " ended " << n << " times");
  BOOST_TEST(m.max_memory_reservation <= 1.0);
  // Every placement reached the outbox: as many drained as were made.
  uint64_t made = 0;
  for (auto& w : f.c.stats().workers())
    made += w.assignments;
  BOOST_TEST(seen_handles.size() == made);
}

// -- storage under the records ------------------------------------------------

BOOST_AUTO_TEST_CASE(chunked_store_keeps_addresses_across_growth) {
  chunked_store<std::string> s;
  auto& first = s.emplace_back();
  first = "first";
  auto* where = &first;
  // Three chunks' worth: growth must never move earlier elements.
  auto n = 3 * chunked_store<std::string>::per_chunk + 5;
  for (size_t i = 1; i < n; ++i)
    s.emplace_back() = std::to_string(i);
  BOOST_TEST(s.size() == n);
  BOOST_TEST(where == &s[0]);
  BOOST_TEST(s[0] == "first");
  BOOST_TEST(s[n - 1] == std::to_string(n - 1));
  size_t seen = 0;
  for (auto& x : s)
    seen += x.empty() ? 0 : 1;
  BOOST_TEST(seen == n);
  s.clear();
  BOOST_TEST(s.size() == 0u);
}

BOOST_AUTO_TEST_CASE(huge_alloc_gives_usable_aligned_blocks) {
  // Small blocks come from the ordinary heap, large ones are 2 MiB aligned.
  auto* small = static_cast<char*>(huge_alloc(100));
  small[99] = 1;
  huge_free(small, 100);
  size_t big_size = (size_t{3} << 20) + 17;
  auto* big = static_cast<char*>(huge_alloc(big_size));
  BOOST_TEST(reinterpret_cast<uintptr_t>(big) % (size_t{2} << 20) == 0u);
  big[0] = 1;
  big[big_size - 1] = 2;
  BOOST_TEST(big[0] + big[big_size - 1] == 3);
  huge_free(big, big_size);
}

BOOST_AUTO_TEST_CASE(huge_free_keeps_blocks_for_reuse_within_its_limit) {
  // Off by default: a freed block is unmapped.
  BOOST_TEST(huge_cache_bytes() == 0u);
  size_t mib2 = size_t{2} << 20;
  auto* a = huge_alloc(mib2);
  huge_free(a, mib2);
  BOOST_TEST(huge_cache_bytes() == 0u);
  // With room for two blocks: the third freed is unmapped, and an
  // allocation of the same size gets the latest kept block back, contents
  // and all (it is not faulted in and zeroed again).
  set_huge_cache_limit(2 * mib2);
  auto* b = static_cast<char*>(huge_alloc(mib2));
  auto* c = static_cast<char*>(huge_alloc(mib2));
  auto* d = static_cast<char*>(huge_alloc(mib2));
  b[0] = 'b';
  c[0] = 'c';
  huge_free(b, mib2);
  huge_free(c, mib2);
  huge_free(d, mib2);
  BOOST_TEST(huge_cache_bytes() == 2 * mib2);
  // Another size class does not take a kept block.
  auto* big = huge_alloc(2 * mib2);
  BOOST_TEST(huge_cache_bytes() == 2 * mib2);
  huge_free(big, 2 * mib2); // over the limit: unmapped
  BOOST_TEST(huge_cache_bytes() == 2 * mib2);
  auto* again = static_cast<char*>(huge_alloc(mib2));
  BOOST_TEST(again == c);
  BOOST_TEST(again[0] == 'c');
  BOOST_TEST(huge_cache_bytes() == mib2);
  huge_free(again, mib2);
  // Lowering the limit unmaps what is over it.
  set_huge_cache_limit(0);
  BOOST_TEST(huge_cache_bytes() == 0u);
}

BOOST_AUTO_TEST_CASE(id_map_finds_every_live_id_through_erase_and_reuse) {
  id_map<int> m;
  std::map<std::string, int> model; // what it must hold
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    auto id = "t-" + std::to_string(i);
    auto [ref, added] = m.try_emplace(id);
    BOOST_REQUIRE(added);
    m[ref] = i;
    model[id] = i;
  }
  // Erase every other id, then add new ones: freed entries are reused and
  // the tombstones left in the index must not hide any live id.
  for (int i = 0; i < n; i += 2) {
    auto id = "t-" + std::to_string(i);
    m.erase(std::string_view{id});
    model.erase(id);
  }
  for (int i = n; i < n + n / 2; ++i) {
    auto id = "t-" + std::to_string(i);
    auto [ref, added] = m.try_emplace(id);
    BOOST_REQUIRE(added);
    BOOST_TEST(m[ref] == 0); // value-initialized, not the erased value
    m[ref] = i;
    model[id] = i;
  }
  BOOST_TEST(m.size() == model.size());
  for (auto& [id, v] : model) {
    auto ref = m.find(id);
    BOOST_REQUIRE(ref != m.npos);
    BOOST_TEST(m[ref] == v);
    BOOST_TEST(m.key(ref) == id);
    auto again = m.try_emplace(id);
    BOOST_TEST(!again.second);
    BOOST_TEST(again.first == ref);
  }
  for (int i = 0; i < n; i += 2)
    BOOST_TEST(m.find("t-" + std::to_string(i)) == m.npos);
}

// -- speculation of real commands ---------------------------------------------

namespace {

/// A worker of node `node` ("" = unknown) with `slots` slots and a
/// declared speed (the learned strategies' prior).
worker_capabilities node_worker(std::string id, std::string node, int slots,
                                double speed) {
  auto w = make_worker(std::move(id), 16, slots);
  w.node = std::move(node);
  w.speed = speed;
  return w;
}

/// A cluster where a 10 s test runs on a 0.25x worker of node "a" and
/// faster workers join after it was placed.
struct real_straggler {
  std::unique_ptr<cluster_state> c;
  uint32_t slow = npos;
  test_handle original;
  test_run run;
  std::vector<assignment> ended;

  /// `simulated`: the test has no command. `key`: its concurrency key.
  explicit real_straggler(bool simulated = false, std::string key = {},
                          int prefetch = 0) {
    scheduler_config cfg;
    cfg.strategy = "performance_based";
    cfg.prefetch = prefetch;
    c = std::make_unique<cluster_state>(cfg);
    c->set_end_listener([this](const assignment& a, const attempt_outcome*) {
      ended.push_back(a);
    });
    slow = c->add_worker(node_worker("a/w0", "a", 1, 0.25), 0);
    auto t = make_test("long");
    t.model_id = "m";
    t.expected_duration = 10;
    t.concurrency_key = std::move(key);
    if (!simulated) {
      run.command = {"sh", "-c", "make check"};
      run.env = {{"K", "v"}};
    }
    BOOST_REQUIRE(c->submit(t, run, 0)
                  == cluster_state::submit_status::accepted);
    c->dispatch(0);
    BOOST_REQUIRE(c->worker(slow).held.size() == 1u);
    original = c->worker(slow).held.front();
    c->drain_outbox([](uint32_t, std::vector<test_handle>&) {});
  }

  /// Handles placed since the last call, per slot.
  std::map<uint32_t, std::vector<test_handle>> placed() {
    return test_support::drain_placed(*c);
  }

  /// Placements the core asked to stop.
  std::vector<std::pair<uint32_t, test_handle>> cancels() {
    return test_support::drain_cancelled(*c);
  }

  uint64_t speculated() const {
    return c->stats().metrics(1, c->worker_count(), 0).speculated_tests;
  }
};

} // namespace

BOOST_AUTO_TEST_CASE(a_real_command_gets_its_copy_on_another_node) {
  // The fastest worker is on the original's node: two runs of one command
  // on one machine may clash, so the copy goes to node b's worker (2x:
  // 5 s against the 39 s the original still needs), with the command.
  real_straggler s;
  auto same_node = s.c->add_worker(node_worker("a/w1", "a", 1, 4.0), 0);
  auto other = s.c->add_worker(node_worker("b/w0", "b", 1, 2.0), 0);
  s.c->tick(1);
  auto placed = s.placed();
  BOOST_TEST(placed.count(same_node) == 0u);
  BOOST_REQUIRE(placed.count(other) == 1u);
  BOOST_REQUIRE(placed[other].size() == 1u);
  auto copy = placed[other].front();
  BOOST_TEST(s.c->record(copy).run->command == s.run.command,
             boost::test_tools::per_element());
  BOOST_TEST(s.c->record(copy).run->env.at("K") == "v");
  BOOST_TEST(s.speculated() == 1u);
  BOOST_TEST(s.c->open_tests() == 1u);
  BOOST_TEST(s.c->check_invariants() == "");
  // A report of the copy's placement from any other worker is refused.
  attempt_outcome o;
  o.exec_seconds = 5;
  BOOST_TEST(!s.c->complete(s.slow, copy, o, 6));
  BOOST_TEST(!s.c->complete(same_node, copy, o, 6));
  BOOST_TEST(s.ended.empty());
  // The copy wins: the original is stopped, the test ends once, on b.
  BOOST_REQUIRE(s.c->complete(other, copy, o, 6));
  auto cancels = s.cancels();
  BOOST_REQUIRE(cancels.size() == 1u);
  BOOST_TEST(cancels[0].first == s.slow);
  BOOST_TEST(cancels[0].second.ref == s.original.ref);
  BOOST_TEST(cancels[0].second.gen == s.original.gen);
  BOOST_REQUIRE(s.ended.size() == 1u);
  BOOST_TEST(s.ended[0].worker_id == "b/w0");
  BOOST_TEST(s.ended[0].speculated);
  BOOST_TEST(s.ended[0].speculation_won);
  // The stopped original's late report is stale and counts nothing.
  BOOST_TEST(!s.c->complete(s.slow, s.original, o, 7));
  BOOST_TEST(s.ended.size() == 1u);
  auto m = s.c->stats().metrics(7, s.c->worker_count(), 0);
  BOOST_TEST(m.completed_tests == 1u);
  BOOST_TEST(m.speculation_wins == 1u);
  BOOST_TEST(s.c->in_flight() == 0u);
  BOOST_TEST(s.c->check_invariants() == "");
}

BOOST_AUTO_TEST_CASE(
  a_real_command_is_not_copied_onto_its_node_or_an_unknown_one) {
  // Faster workers on the original's node and of no known node (workers of
  // this process): no copy of a real command on any of them.
  real_straggler s;
  s.c->add_worker(node_worker("a/w1", "a", 1, 4.0), 0);
  s.c->add_worker(node_worker("local", "", 1, 4.0), 0);
  s.c->tick(1);
  s.c->tick(5);
  BOOST_TEST(s.placed().empty());
  BOOST_TEST(s.speculated() == 0u);
  // A simulated test runs nothing that could clash: its copy may go to
  // the original's node.
  real_straggler sim{true};
  auto same_node = sim.c->add_worker(node_worker("a/w1", "a", 1, 4.0), 0);
  sim.c->tick(1);
  auto placed = sim.placed();
  BOOST_TEST(placed.count(same_node) == 1u);
  BOOST_TEST(sim.speculated() == 1u);
  BOOST_TEST(sim.c->check_invariants() == "");
}

BOOST_AUTO_TEST_CASE(a_real_copy_needs_a_slot_that_starts_it_at_once) {
  // Node b's one slot runs another test; its local queue has room (the
  // prefetch), but a copy waiting there is not sooner: none is placed,
  // until the slot frees.
  real_straggler s{false, {}, 2};
  auto other = s.c->add_worker(node_worker("b/w0", "b", 1, 4.0), 0);
  auto t = make_test("busy");
  t.expected_duration = 100;
  test_run r;
  r.command = {"true"};
  BOOST_REQUIRE(s.c->submit(t, r, 0) == cluster_state::submit_status::accepted);
  s.c->dispatch(0);
  auto placed = s.placed();
  BOOST_REQUIRE(placed.count(other) == 1u);
  auto busy = placed[other].front();
  s.c->tick(1);
  BOOST_TEST(s.placed().empty());
  BOOST_TEST(s.speculated() == 0u);
  BOOST_REQUIRE(s.c->complete(other, busy, passed(2), 2));
  s.c->tick(2.1);
  placed = s.placed();
  BOOST_TEST(placed.count(other) == 1u);
  BOOST_TEST(s.speculated() == 1u);
  BOOST_TEST(s.c->check_invariants() == "");
}

BOOST_AUTO_TEST_CASE(a_real_command_with_a_concurrency_key_is_never_copied) {
  real_straggler s{false, "db"};
  s.c->add_worker(node_worker("b/w0", "b", 1, 4.0), 0);
  s.c->tick(1);
  s.c->tick(5);
  BOOST_TEST(s.placed().empty());
  BOOST_TEST(s.speculated() == 0u);
}

BOOST_AUTO_TEST_CASE(cancelling_a_speculated_real_command_stops_both_runs) {
  // `alb cancel`: the original's placement comes back to the caller, the
  // copy's is in the cancel outbox; the test ends once, cancelled.
  real_straggler s;
  auto other = s.c->add_worker(node_worker("b/w0", "b", 1, 4.0), 0);
  s.c->tick(1);
  auto placed = s.placed();
  BOOST_REQUIRE(placed.count(other) == 1u);
  auto copy = placed[other].front();
  uint32_t slot = npos;
  test_handle h;
  BOOST_REQUIRE(s.c->cancel("long", 2, &slot, &h));
  BOOST_TEST(slot == s.slow);
  BOOST_TEST(h.ref == s.original.ref);
  auto cancels = s.cancels();
  BOOST_REQUIRE(cancels.size() == 1u);
  BOOST_TEST(cancels[0].first == other);
  BOOST_TEST(cancels[0].second.ref == copy.ref);
  BOOST_REQUIRE(s.ended.size() == 1u);
  BOOST_TEST(s.ended[0].status == test_status::cancelled);
  BOOST_TEST(!s.c->complete(other, copy, passed(1), 3));
  BOOST_TEST(s.ended.size() == 1u);
  BOOST_TEST(s.c->in_flight() == 0u);
  BOOST_TEST(s.c->check_invariants() == "");
}

// -- handing queued tests to another shard -----------------------------------

BOOST_AUTO_TEST_CASE(
  handed_over_tests_leave_without_ending_and_keep_their_wait) {
  fixture giver{parking()};
  fixture taker{parking()};
  giver.add(make_worker("g", 8, 1));
  taker.add(make_worker("t", 8, 1));
  // The giver's one slot takes "a"; the rest queue. "key" has a
  // concurrency key and "gpu" an accelerator: neither may move. "big"
  // needs more memory than the taker's workers have.
  // Only the back of the queue moves: the first test that may not ends
  // the share.
  giver.submit(make_test("a"), 1.0);
  auto key = make_test("key");
  key.concurrency_key = "db";
  giver.submit(key, 1.0);
  auto gpu = make_test("gpu");
  gpu.required_accelerators = {{"cuda", 1}};
  giver.submit(gpu, 1.0);
  giver.submit(make_test("big", 16), 1.0);
  for (auto id : {"b", "c", "d"})
    giver.submit(make_test(id), 1.0);
  giver.dispatch(1.0);
  BOOST_TEST(giver.is_placed("a"));
  auto open = giver.c.open_tests();
  std::vector<handed_test> out;
  auto n = giver.c.hand_over(10, 8, out);
  giver.check();
  std::set<std::string> moved;
  for (auto& t : out)
    moved.insert(t.req.test_id);
  BOOST_TEST(n == out.size());
  BOOST_TEST((moved == std::set<std::string>{"b", "c", "d"}));
  BOOST_TEST(giver.c.open_tests() == open - n);
  BOOST_TEST(giver.c.stats().submitted_count() == 7u - n);
  // Nothing ended: no listener call, no end counted.
  BOOST_TEST(giver.end_calls.empty());
  BOOST_TEST(giver.c.stats().ended() == 0u);
  // The ids are free again here, and the rest stays queued in order.
  BOOST_TEST(giver.c.placed_slot("b") == npos);
  for (auto& t : out) {
    BOOST_TEST(t.submitted_at == 1.0);
    BOOST_TEST((taker.c.adopt(std::move(t), 3.0)
                == cluster_state::submit_status::accepted));
    taker.check();
  }
  taker.dispatch(3.0);
  BOOST_REQUIRE(taker.placed.size() == 1u);
  auto first = taker.placed.begin()->second;
  taker.c.started(first.slot, first.handle, 3.0);
  BOOST_TEST(taker.c.stats().submitted_count() == 3u);
  // The wait of the one started counts from its first submission.
  auto m = taker.metrics(3.0);
  BOOST_TEST(m.max_latency == 2.0);
  BOOST_TEST(m.stolen_tests == 3u);
  // What was handed over once stays: two idle shards cannot trade it.
  BOOST_TEST(taker.c.queued() == 2u);
  std::vector<handed_test> back;
  BOOST_TEST(taker.c.hand_over(10, 64, back) == 0u);
  // A placed test never moves.
  out.clear();
  BOOST_TEST(giver.c.hand_over(10, 64, out) == 1u); // only "big" now
  BOOST_TEST(out.at(0).req.test_id == "big");
  BOOST_TEST(giver.is_placed("a"));
}
