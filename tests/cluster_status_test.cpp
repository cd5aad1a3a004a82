#define BOOST_TEST_MODULE cluster_status
#include <boost/test/unit_test.hpp>

#include "runtime/cluster_state.hpp"
#include "runtime/cluster_status.hpp"

#include <map>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

using namespace alb;

namespace alb {

// Printer so failed checks show the kind's name.
std::ostream& boost_test_print_type(std::ostream& out, wait_kind x) {
  return out << to_string(x);
}

} // namespace alb

namespace {

worker_capabilities make_worker(std::string id, double memory, int slots = 1,
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

scheduler_config no_prefetch() {
  scheduler_config cfg;
  // One test per worker slot: a busy worker has no room in a local queue.
  cfg.prefetch = 0;
  return cfg;
}

struct fixture {
  cluster_state cs{no_prefetch()};

  void submit(test_requirements t, double now = 0) {
    BOOST_REQUIRE(cs.submit(std::move(t), now)
                  == cluster_state::submit_status::accepted);
    cs.dispatch(now);
  }

  // The open test named `id`, or fails.
  const test_record& record(const std::string& id) {
    const test_record* rec = nullptr;
    cs.for_each_open([&](const test_record& t) {
      if (t.req.test_id == id)
        rec = &t;
    });
    BOOST_REQUIRE_MESSAGE(rec, "test " << id << " is not open");
    return *rec;
  }

  // The status row of a waiting test, or fails.
  waiting_row waiting(const std::string& id, double now = 1) {
    auto s = status_of(cs, now, 1000, {});
    for (auto& w : s.waiting)
      if (w.test_id == id)
        return w;
    BOOST_FAIL("test " << id << " is not waiting");
    return {};
  }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(reasons, fixture)

BOOST_AUTO_TEST_CASE(no_worker_means_no_node_is_connected) {
  submit(make_test("t"));
  auto w = waiting("t");
  BOOST_TEST(w.reason.kind == wait_kind::unplaceable);
  BOOST_TEST(w.reason.text == "no node is connected");
}

BOOST_AUTO_TEST_CASE(too_much_memory_names_the_missing_memory) {
  cs.add_worker(make_worker("a", 16), 0);
  cs.add_worker(make_worker("b", 32), 0);
  submit(make_test("big", 64));
  auto w = waiting("big");
  BOOST_TEST(w.reason.kind == wait_kind::unplaceable);
  BOOST_TEST(w.reason.text == "no node has memory >= 64 GB");
  BOOST_TEST(w.state == "parked");
}

BOOST_AUTO_TEST_CASE(missing_backend_software_and_accelerator_are_named) {
  cs.add_worker(make_worker("a", 16, 1, {{"cuda", 1}}), 0);
  auto t = make_test("gpu", 1);
  t.required_backend = "onnx";
  t.required_software = {"torch"};
  t.required_accelerators = {{"cuda", 2}};
  submit(t);
  auto w = waiting("gpu");
  BOOST_TEST(w.reason.kind == wait_kind::unplaceable);
  BOOST_TEST(w.reason.text
             == "no node has cuda >= 2; no node has backend onnx; no node "
                "has software torch");
}

// Status used to check required_software by its raw text ("cuda>=12" is
// no software name) and to ignore tags: its reasons disagreed with where
// the scheduler placed tests.
BOOST_AUTO_TEST_CASE(versioned_software_met_by_a_node_is_no_reason) {
  cs.add_worker(make_worker("a", 16, 1, {}, {"cpu"}, {{"cuda", "12.1"}}), 0);
  auto t = make_test("big", 64);
  t.required_software = {"cuda>=12"};
  submit(t);
  BOOST_TEST(waiting("big").reason.text == "no node has memory >= 64 GB");
  // Met and fitting: it is placed, nothing waits.
  auto ok = make_test("fits", 1);
  ok.required_software = {"cuda >= 12", "cuda < 13"};
  submit(ok);
  auto s = status_of(cs, 1, 1000, {});
  for (auto& w : s.waiting)
    BOOST_TEST(w.test_id != "fits");
  // An older version is named with what the node has.
  auto old = make_test("new-cuda", 1);
  old.required_software = {"cuda >= 13"};
  submit(old);
  BOOST_TEST(waiting("new-cuda").reason.text
             == "no node has software cuda >= 13");
  auto u = unmet_requirements(cs, 0, record("new-cuda"), false);
  BOOST_TEST_REQUIRE(u.size() == 1u);
  BOOST_TEST(u[0].have == "cuda 12.1");
}

BOOST_AUTO_TEST_CASE(a_tag_no_node_carries_is_the_reason) {
  auto w = make_worker("a", 16);
  w.tags = {"cpu-rack"};
  cs.add_worker(w, 0);
  auto t = make_test("gpu-only", 1);
  t.required_tags = {"gpu-rack"};
  submit(t);
  auto row = waiting("gpu-only");
  BOOST_TEST(row.reason.kind == wait_kind::unplaceable);
  BOOST_TEST(row.reason.text == "no node has tag gpu-rack");
  auto u = unmet_requirements(cs, 0, record("gpu-only"), false);
  BOOST_TEST_REQUIRE(u.size() == 1u);
  BOOST_TEST(u[0].have == "tags cpu-rack");
}

BOOST_AUTO_TEST_CASE(needs_met_only_on_different_nodes_say_at_once) {
  cs.add_worker(make_worker("fat", 64), 0);
  cs.add_worker(make_worker("gpu", 8, 1, {{"cuda", 1}}), 0);
  auto t = make_test("both", 32);
  t.required_accelerators = {{"cuda", 1}};
  submit(t);
  auto w = waiting("both");
  BOOST_TEST(w.reason.kind == wait_kind::unplaceable);
  BOOST_TEST(w.reason.text
             == "no node has cuda >= 1 and memory >= 32 GB at once");
}

BOOST_AUTO_TEST_CASE(full_workers_that_could_hold_it_are_busy) {
  cs.add_worker(make_worker("a", 16), 0);
  cs.add_worker(make_worker("b", 16), 0);
  submit(make_test("r1"));
  submit(make_test("r2"));
  submit(make_test("w"));
  auto w = waiting("w");
  BOOST_TEST(w.reason.kind == wait_kind::busy);
  BOOST_TEST(
    w.reason.text
    == "all 2 workers that can hold it are busy (short of: a free slot)");
  // A worker too small for it does not count among those it waits for.
  cs.add_worker(make_worker("tiny", 0.5), 0);
  submit(make_test("w2"));
  BOOST_TEST(
    waiting("w2").reason.text
    == "all 2 workers that can hold it are busy (short of: a free slot)");
}

BOOST_AUTO_TEST_CASE(memory_reserved_by_others_is_what_it_waits_for) {
  cs.add_worker(make_worker("a", 16, 4), 0);
  submit(make_test("r", 12));
  submit(make_test("w", 8));
  auto w = waiting("w");
  BOOST_TEST(w.reason.kind == wait_kind::busy);
  BOOST_TEST(w.reason.text
             == "the one worker that can hold it ('a') is busy (short of: "
                "memory >= 8 GB)");
  auto u = unmet_requirements(
    cs, cs.live_workers()[0],
    [&]() -> auto& {
      const test_record* rec = nullptr;
      cs.for_each_open([&](const test_record& t) {
        if (t.req.test_id == "w")
          rec = &t;
      });
      return *rec;
    }(),
    true);
  BOOST_REQUIRE(u.size() == 1u);
  BOOST_TEST(u[0].need == "memory >= 8 GB");
  BOOST_TEST(u[0].have == "4 GB free");
}

BOOST_AUTO_TEST_CASE(a_held_concurrency_key_is_the_reason) {
  cs.add_worker(make_worker("a", 16, 4), 0);
  auto t1 = make_test("k1");
  t1.concurrency_key = "db";
  auto t2 = make_test("k2");
  t2.concurrency_key = "db";
  submit(t1);
  submit(t2);
  auto w = waiting("k2");
  BOOST_TEST(w.reason.kind == wait_kind::concurrency_key);
  BOOST_TEST(w.reason.text == "concurrency key 'db' is held by a running test");
  BOOST_TEST(w.state == "key");
}

BOOST_AUTO_TEST_CASE(a_test_that_fits_now_is_about_to_be_dispatched) {
  cs.add_worker(make_worker("a", 16), 0);
  // Not dispatched yet: it fits the idle worker.
  BOOST_REQUIRE(cs.submit(make_test("t"), 0)
                == cluster_state::submit_status::accepted);
  auto w = waiting("t");
  BOOST_TEST(w.reason.kind == wait_kind::dispatch);
  BOOST_TEST(w.reason.text == "fits worker 'a' now (placed on the next pass)");
}

BOOST_AUTO_TEST_CASE(a_retry_that_only_fits_where_it_failed_says_so) {
  cs.add_worker(make_worker("a", 16), 0);
  auto t = make_test("flaky");
  t.retries = 1;
  submit(t);
  auto slot = cs.live_workers()[0];
  uint32_t ref = 0, gen = 0;
  cs.for_each_open([&](const test_record& r) { gen = r.gen; });
  // The record of the only test is record 0.
  attempt_outcome o;
  o.success = false;
  o.error = "exit 1";
  cs.complete(slot, test_handle{ref, gen}, o, 1);
  auto w = waiting("flaky", 2);
  BOOST_TEST(w.reason.kind == wait_kind::excluded);
  BOOST_TEST(w.reason.text
             == "its last attempt failed on 'a', the only worker that can "
                "hold it");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(view, fixture)

BOOST_AUTO_TEST_CASE(rows_carry_wall_times_and_the_queue_is_by_priority) {
  cs.add_worker(make_worker("a", 16), 0);
  submit(make_test("run"), 1);
  uint32_t gen = 0;
  cs.for_each_open([&](const test_record& t) { gen = t.gen; });
  // Its worker says it started (the only open test is record 0).
  cs.started(cs.live_workers()[0], test_handle{0, gen}, 2);
  submit(make_test("low", 1, 5), 3);
  submit(make_test("high", 1, 1), 4);
  submit(make_test("never", 99, 3), 5);
  std::vector<double> seen(cs.live_workers()[0] + 1, 4.5);
  auto s = status_of(cs, 10, 1000, seen);
  BOOST_TEST(s.time == 1010);
  BOOST_REQUIRE(s.waiting.size() == 3u);
  BOOST_TEST(s.waiting[0].test_id == "high");
  BOOST_TEST(s.waiting[1].test_id == "never");
  BOOST_TEST(s.waiting[2].test_id == "low");
  BOOST_TEST(s.waiting[0].submitted == 1004);
  BOOST_TEST(s.waiting[0].waited_seconds == 6);
  BOOST_REQUIRE(s.running.size() == 1u);
  BOOST_TEST(s.running[0].test_id == "run");
  BOOST_TEST(s.running[0].worker_id == "a");
  BOOST_TEST(s.running[0].state == "running");
  BOOST_TEST(s.running[0].since == 1002);
  BOOST_TEST(s.running[0].seconds == 8);
  BOOST_REQUIRE(s.workers.size() == 1u);
  BOOST_TEST(s.workers[0].running == 1);
  BOOST_TEST(s.workers[0].last_seen == 1004.5);
  BOOST_TEST(s.totals.waiting == 3u);
  BOOST_TEST(s.totals.unplaceable == 1u);
  BOOST_TEST(s.totals.running == 1u);
  BOOST_TEST(s.totals.busy_slots == 1u);
  BOOST_TEST(s.totals.submitted == 4u);
}

BOOST_AUTO_TEST_CASE(a_workers_earliest_placements_count_as_running) {
  // Real workers report at the end only: the first `slots` placements of a
  // worker run (it starts its queue in order), the rest wait in it.
  scheduler_config cfg;
  cfg.prefetch = 2;
  cluster_state c{cfg};
  c.add_worker(make_worker("a", 16, 2), 0);
  for (int i = 0; i < 4; ++i) {
    BOOST_REQUIRE(c.submit(make_test("t" + std::to_string(i)), i)
                  == cluster_state::submit_status::accepted);
    c.dispatch(i);
  }
  auto s = status_of(c, 10, 0, {});
  std::map<std::string, std::string> state;
  for (auto& r : s.running)
    state[r.test_id] = r.state;
  BOOST_TEST(state["t0"] == "running");
  BOOST_TEST(state["t1"] == "running");
  BOOST_TEST(state["t2"] == "assigned");
  BOOST_TEST(state["t3"] == "assigned");
  BOOST_TEST(s.totals.running == 2u);
  BOOST_TEST(s.totals.assigned == 2u);
  BOOST_TEST(s.totals.busy_slots == 2u);
  BOOST_TEST(s.workers[0].running == 2);
  BOOST_TEST(s.workers[0].held == 4);
}

BOOST_AUTO_TEST_CASE(the_row_limit_lists_the_most_urgent_and_counts_all) {
  cs.add_worker(make_worker("a", 1), 0);
  for (int i = 0; i < 10; ++i)
    submit(make_test("t" + std::to_string(i), 5, i < 5 ? 4 : 2), i);
  auto s = status_of(cs, 20, 0, {}, 3);
  BOOST_REQUIRE(s.waiting.size() == 3u);
  BOOST_TEST(s.waiting[0].test_id == "t5");
  BOOST_TEST(s.totals.waiting == 10u);
  BOOST_TEST(s.totals.hidden_waiting == 7u);
  BOOST_TEST(s.totals.unplaceable == 10u);
}

BOOST_AUTO_TEST_CASE(nodes_sum_their_workers_and_clients_see_their_own) {
  cs.add_worker(make_worker("n1-w0", 8, 2, {{"cuda", 1}}), 0);
  cs.add_worker(make_worker("n1-w1", 8, 2), 0);
  cs.add_worker(make_worker("n2-w0", 4, 1), 0);
  submit(make_test("mine", 99));
  submit(make_test("theirs", 99));
  auto s = status_of(cs, 1, 0, {});
  for (auto& w : s.workers)
    w.node = w.worker_id.substr(0, 2);
  group_nodes(s, [](const std::string& n) { return "addr-" + n; });
  BOOST_REQUIRE(s.nodes.size() == 2u);
  BOOST_TEST(s.nodes[0].name == "n1");
  BOOST_TEST(s.nodes[0].address == "addr-n1");
  BOOST_TEST(s.nodes[0].workers == 2);
  BOOST_TEST(s.nodes[0].slots == 4);
  BOOST_TEST(s.nodes[0].memory_gb == 16);
  BOOST_TEST(s.nodes[0].accelerators.at("cuda") == 1);
  BOOST_TEST(s.totals.nodes == 2u);
  keep_visible(s, [](const std::string& id) { return id == "mine"; });
  BOOST_TEST(s.view == "own");
  BOOST_REQUIRE(s.waiting.size() == 1u);
  BOOST_TEST(s.waiting[0].test_id == "mine");
  BOOST_TEST(s.totals.hidden_waiting == 1u);
  BOOST_TEST(s.totals.waiting == 2u);
}

BOOST_AUTO_TEST_CASE(json_round_trips) {
  cs.add_worker(make_worker("a", 16, 1, {{"cuda", 2}}), 0);
  submit(make_test("run"), 0);
  submit(make_test("big", 64), 0);
  auto s = status_of(cs, 3, 100, {1.0});
  failure_row f;
  f.test_id = "bad";
  f.status = "failed";
  f.exit_code = 3;
  f.output_tail = "boom\n";
  f.ended = 102;
  s.recent_failures.push_back(f);
  group_nodes(s, nullptr);
  nlohmann::json j = s;
  auto back = j.get<cluster_status>();
  BOOST_TEST(nlohmann::json(back) == j);
  BOOST_TEST(j["waiting"][0]["reason_kind"] == "unplaceable");
  BOOST_TEST(j["waiting"][0]["reason"] == "no node has memory >= 64 GB");
  BOOST_TEST(j["workers"][0]["accelerators"]["cuda"] == 2);
  BOOST_TEST(j["recent_failures"][0]["output_tail"] == "boom\n");
  // "Never heard from" is null, not a time in 1970.
  auto never = status_of(cs, 3, 100, {});
  BOOST_TEST(nlohmann::json(never)["workers"][0]["last_seen"].is_null());
  j["waiting"][0]["reason_kind"] = "bogus";
  BOOST_CHECK_THROW(j.get<cluster_status>(), nlohmann::json::exception);
}

BOOST_AUTO_TEST_SUITE_END()
