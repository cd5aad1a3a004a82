#define BOOST_TEST_MODULE strategies_adaptive
#include <boost/test/unit_test.hpp>

#include "runtime/cluster_state.hpp"
#include "runtime/config.hpp"
#include "runtime/history.hpp"
#include "runtime/strategy.hpp"
#include "tests/outbox_support.hpp"

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

using namespace alb;

namespace {

constexpr auto npos = capacity_index::npos;

worker_capabilities make_worker(std::string id, double memory, int slots = 4,
                                double speed = 1.0,
                                std::map<std::string, int> accel = {}) {
  worker_capabilities w;
  w.worker_id = std::move(id);
  w.available_memory = memory;
  w.max_concurrent_tests = slots;
  w.speed = speed;
  w.available_accelerators = std::move(accel);
  w.supported_backends = {"cpu"};
  return w;
}

test_record make_record(double memory, std::string model = "bert-base",
                        int priority = 3, double expected = 1.0) {
  test_record t;
  t.req.test_id = "t";
  t.req.model_id = std::move(model);
  auto dash = t.req.model_id.find('-');
  t.req.model_family = t.req.model_id.substr(0, dash);
  t.req.priority = priority;
  t.req.expected_duration = expected;
  t.req.minimum_memory = memory;
  t.need.memory = static_cast<float>(memory);
  return t;
}

scheduler_config config_for(const std::string& strategy) {
  scheduler_config cfg;
  cfg.strategy = strategy;
  cfg.prefetch = 0;
  return cfg;
}

/// Submits and places one test needing `memory` GB.
void occupy(cluster_state& c, const std::string& id, double memory) {
  test_requirements t;
  t.test_id = id;
  t.minimum_memory = memory;
  BOOST_REQUIRE(c.submit(t, 0) == cluster_state::submit_status::accepted);
  c.dispatch(0);
}

} // namespace

BOOST_AUTO_TEST_CASE(every_new_strategy_is_listed) {
  auto& names = strategy_names();
  for (auto n : {"weighted_round_robin", "performance_based", "priority_based",
                 "affinity_based", "adaptive", "composite"})
    BOOST_TEST((std::find(names.begin(), names.end(), n) != names.end()), n);
}

BOOST_AUTO_TEST_CASE(weighted_round_robin_gives_roomier_workers_more_turns) {
  cluster_state c{config_for("weighted_round_robin")};
  auto big = c.add_worker(make_worker("big", 64, 3), 0);
  auto small = c.add_worker(make_worker("small", 64, 1), 0);
  auto s = make_strategy("weighted_round_robin");
  auto t = make_record(1);
  std::vector<uint32_t> picks;
  for (int i = 0; i < 8; ++i)
    picks.push_back(s->pick(t, c));
  std::vector<uint32_t> expected{big, big, big, small, big, big, big, small};
  BOOST_TEST(picks == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(performance_based_prefers_the_faster_idle_worker) {
  cluster_state c{config_for("performance_based")};
  c.add_worker(make_worker("slow", 16, 4, 0.5), 0);
  auto fast = c.add_worker(make_worker("fast", 16, 4, 4.0), 0);
  c.add_worker(make_worker("nominal", 16, 4, 1.0), 0);
  auto s = make_strategy("performance_based");
  BOOST_TEST(s->pick(make_record(1), c) == fast);
  // Too large for the fast worker: the next best that fits.
  BOOST_TEST(s->pick(make_record(17), c) == npos);
}

BOOST_AUTO_TEST_CASE(performance_based_learns_speed_from_history) {
  // Without speed hints every worker looks nominal; the history tells.
  auto h = std::make_shared<execution_history>();
  for (int i = 0; i < 5; ++i) {
    h->record("bert-base", "a", 4.0, 1.0); // a runs 4x slower than nominal
    h->record("bert-base", "b", 0.5, 1.0); // b runs 2x faster
  }
  scheduler_config cfg = config_for("performance_based");
  cfg.speed_hints = false;
  cfg.history = h;
  cluster_state c{cfg};
  c.add_worker(make_worker("a", 16, 4, 1.0), 0);
  auto b = c.add_worker(make_worker("b", 16, 4, 1.0), 0);
  auto s = make_strategy(cfg);
  BOOST_TEST(s->pick(make_record(1), c) == b);
  BOOST_TEST(h->estimate("bert-base", h->find_worker("b"), 2.0, 1.0) == 1.0);
}

BOOST_AUTO_TEST_CASE(unknown_workers_get_a_prior_from_their_declared_clock) {
  // No speed hints, no history: before any result arrives, a worker that
  // declares a 12 GHz-equivalent clock (4x nominal) beats one declaring
  // 1.5 GHz (0.5x), for performance_based and for adaptive, which then
  // sees a heterogeneous cluster instead of a uniform one.
  for (auto name : {"performance_based", "adaptive"}) {
    scheduler_config cfg = config_for(name);
    cfg.speed_hints = false;
    cluster_state c{cfg};
    auto slow_caps = make_worker("slow", 16, 4, 0.5);
    slow_caps.hardware.cpu.frequency_mhz = 1500;
    auto fast_caps = make_worker("fast", 16, 4, 4.0);
    fast_caps.hardware.cpu.frequency_mhz = 12000;
    c.add_worker(slow_caps, 0);
    auto fast = c.add_worker(fast_caps, 0);
    auto s = make_strategy(cfg);
    BOOST_TEST(s->pick(make_record(1), c) == fast, name);
    BOOST_TEST(s->last_choice() == "performance_based", name);
  }
  // A worker declaring nothing stays nominal: the faster-declared one wins
  // over it, and it wins over the slower-declared one.
  scheduler_config cfg = config_for("performance_based");
  cfg.speed_hints = false;
  cluster_state c{cfg};
  auto slow_caps = make_worker("slow", 16, 4, 1.0);
  slow_caps.hardware.cpu.frequency_mhz = 1500;
  c.add_worker(slow_caps, 0);
  auto plain = c.add_worker(make_worker("plain", 16, 4, 4.0), 0);
  auto s = make_strategy(cfg);
  BOOST_TEST(s->pick(make_record(1), c) == plain);
}

BOOST_AUTO_TEST_CASE(priority_based_sends_urgent_tests_to_fast_workers) {
  cluster_state c{config_for("priority_based")};
  auto slow = c.add_worker(make_worker("slow", 16, 4, 0.5), 0);
  auto fast = c.add_worker(make_worker("fast", 16, 4, 4.0), 0);
  auto s = make_strategy("priority_based");
  BOOST_TEST(s->pick(make_record(1, "m", 1), c) == fast);
  BOOST_TEST(s->pick(make_record(1, "m", 2), c) == fast);
  // Background tests are spread in slot order.
  BOOST_TEST(s->pick(make_record(1, "m", 5), c) == slow);
  BOOST_TEST(s->pick(make_record(1, "m", 5), c) == fast);
  BOOST_TEST(s->pick(make_record(1, "m", 4), c) == slow);
}

BOOST_AUTO_TEST_CASE(affinity_based_returns_a_model_to_its_worker) {
  cluster_state c{config_for("affinity_based")};
  auto w0 = c.add_worker(make_worker("w0", 16), 0);
  auto w1 = c.add_worker(make_worker("w1", 16), 0);
  auto s = make_strategy("affinity_based");
  auto first = s->pick(make_record(1, "bert-base"), c);
  BOOST_TEST(first == w0); // least loaded, ties to the lower slot
  occupy(c, "x", 1);       // w0 now more loaded than w1
  BOOST_TEST(c.load_of(w0) > c.load_of(w1));
  // Same model and same family go back to w0 although w1 is less loaded.
  BOOST_TEST(s->pick(make_record(1, "bert-base"), c) == w0);
  BOOST_TEST(s->pick(make_record(1, "bert-large"), c) == w0);
  // Another family goes to the least loaded worker.
  BOOST_TEST(s->pick(make_record(1, "t5-small"), c) == w1);
  // Gone workers are forgotten.
  c.remove_worker(w0, false, 1);
  s->on_worker_removed(w0);
  BOOST_TEST(s->pick(make_record(1, "bert-base"), c) == w1);
}

BOOST_AUTO_TEST_CASE(affinity_based_moves_on_when_its_worker_is_full) {
  cluster_state c{config_for("affinity_based")};
  auto w0 = c.add_worker(make_worker("w0", 16, 1), 0);
  auto w1 = c.add_worker(make_worker("w1", 16, 1), 0);
  auto s = make_strategy("affinity_based");
  BOOST_TEST(s->pick(make_record(1, "bert-base"), c) == w0);
  occupy(c, "x", 1); // fills w0's only slot
  BOOST_TEST(s->pick(make_record(1, "bert-base"), c) == w1);
}

BOOST_AUTO_TEST_CASE(adaptive_reports_its_delegate) {
  cluster_state c{config_for("adaptive")};
  c.add_worker(make_worker("a", 16), 0);
  c.add_worker(make_worker("b", 16), 0);
  auto s = make_strategy("adaptive");
  BOOST_TEST(s->name() == "adaptive");
  BOOST_TEST(s->pick(make_record(1), c) != npos);
  // A uniform, idle cluster: least loaded.
  BOOST_TEST(s->last_choice() == "least_loaded");
}

BOOST_AUTO_TEST_CASE(adaptive_uses_performance_on_mixed_speeds) {
  cluster_state c{config_for("adaptive")};
  c.add_worker(make_worker("slow", 16, 4, 0.5), 0);
  auto fast = c.add_worker(make_worker("fast", 16, 4, 4.0), 0);
  auto s = make_strategy("adaptive");
  BOOST_TEST(s->pick(make_record(1), c) == fast);
  BOOST_TEST(s->last_choice() == "performance_based");
}

BOOST_AUTO_TEST_CASE(adaptive_defers_a_short_queue_from_a_slow_worker) {
  // The fast worker is busy, the slow one idle, and nothing else waits:
  // the fast one frees up and finishes far sooner than the slow one could.
  cluster_state c{config_for("adaptive")};
  auto slow = c.add_worker(make_worker("slow", 32, 1, 0.25), 0);
  auto fast = c.add_worker(make_worker("fast", 16, 1, 4.0), 0);
  occupy(c, "busy", 1);
  BOOST_REQUIRE(c.worker(fast).held.size() == 1u);
  auto s = make_strategy("adaptive");
  BOOST_TEST(s->pick(make_record(1, "m", 3, 10.0), c) == npos);
  BOOST_TEST(s->last_choice() == "deferred");
  // A test only the slow worker can hold is never deferred.
  BOOST_TEST(s->pick(make_record(20, "m", 3, 10.0), c) == slow);
}

BOOST_AUTO_TEST_CASE(composite_never_returns_an_incompatible_worker) {
  cluster_state c{config_for("composite")};
  c.add_worker(make_worker("small", 2, 4, 4.0), 0);
  auto big = c.add_worker(make_worker("big", 32, 4, 0.5), 0);
  auto s = make_strategy("composite");
  for (int i = 0; i < 20; ++i)
    BOOST_TEST(s->pick(make_record(8), c) == big);
  BOOST_TEST(s->pick(make_record(64), c) == npos);
}

BOOST_AUTO_TEST_CASE(strategy_by_type_dispatches_on_the_test_type) {
  scheduler_config cfg = config_for("round_robin");
  cfg.strategy_by_type = {{"gpu", "performance_based"}};
  BOOST_TEST(cfg.validate() == "");
  cluster_state c{cfg};
  auto slow = c.add_worker(make_worker("slow", 16, 4, 0.5), 0);
  auto fast = c.add_worker(make_worker("fast", 16, 4, 4.0), 0);
  auto s = make_strategy(cfg);
  auto gpu = make_record(1);
  gpu.req.test_type = "gpu";
  for (int i = 0; i < 3; ++i)
    BOOST_TEST(s->pick(gpu, c) == fast);
  BOOST_TEST(s->last_choice() == "performance_based");
  auto other = make_record(1);
  BOOST_TEST(s->pick(other, c) == slow);
  BOOST_TEST(s->pick(other, c) == fast);
  BOOST_TEST(s->last_choice() == "round_robin");
  cfg.strategy_by_type = {{"gpu", "fastest"}};
  BOOST_TEST(cfg.validate().find("strategy_by_type.gpu") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(strategy_by_type_is_read_from_config) {
  auto cfg = load_config_from_string(
    "[scheduler]\nstrategy = \"adaptive\"\nspeed_hints = false\n"
    "[scheduler.strategy_by_type]\nbenchmark = \"performance_based\"\n",
    "t.toml");
  BOOST_TEST(cfg.scheduler.strategy_by_type.at("benchmark")
             == "performance_based");
  BOOST_TEST(!cfg.scheduler.speed_hints);
  try {
    load_config_from_string(
      "[scheduler.strategy_by_type]\nunit = \"fastest\"\n", "bad.toml");
    BOOST_FAIL("an unknown strategy must be rejected");
  } catch (const config_error& e) {
    std::string msg = e.what();
    BOOST_TEST(msg.find("bad.toml") != std::string::npos, msg);
    BOOST_TEST(msg.find("fastest") != std::string::npos, msg);
  }
}

namespace {

/// Takes any worker for a test of at most `limit` seconds, holds back
/// longer ones (a deferral by choice), and counts what it was offered.
class holds_long_tests final : public strategy {
public:
  explicit holds_long_tests(double limit) : limit_(limit) {
    // nop
  }

  std::string_view name() const override { return "holds_long_tests"; }

  bool longest_first() const override { return true; }

  bool deferred() const override { return deferred_; }

  uint32_t pick(const test_record& t, const cluster_state& c) override {
    offered.push_back(t.req.test_id);
    ahead.push_back(c.held_back());
    deferred_ = t.req.expected_duration > limit_;
    if (deferred_)
      return npos;
    return c.index().least_loaded(t.need, [](uint32_t) { return true; });
  }

  /// Test ids in the order they were offered.
  std::vector<std::string> offered;
  /// `held_back()` when each was offered.
  std::vector<size_t> ahead;

private:
  double limit_;
  bool deferred_ = false;
};

/// Submits a test of `expected` seconds at priority `priority`.
void submit(cluster_state& c, const std::string& id, double expected,
            int priority = 3) {
  test_requirements t;
  t.test_id = id;
  t.minimum_memory = 1;
  t.priority = priority;
  t.expected_duration = expected;
  BOOST_REQUIRE(c.submit(t, 0) == cluster_state::submit_status::accepted);
}

/// The ids of the tests the worker in `slot` holds, sorted.
std::vector<std::string> held_ids(const cluster_state& c, uint32_t slot) {
  std::vector<std::string> ids;
  for (auto& h : c.worker(slot).held)
    ids.push_back(c.record(h).req.test_id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

} // namespace

BOOST_AUTO_TEST_CASE(a_longest_first_strategy_gets_the_longest_test_of_a_band) {
  // Late binding: within a priority band the queue offers the longest
  // expected test first; bands still go in priority order.
  cluster_state c{config_for("round_robin")};
  auto s = std::make_unique<holds_long_tests>(1e9);
  auto* seen = s.get();
  c.set_strategy(std::move(s));
  auto w = c.add_worker(make_worker("w", 64, 1), 0);
  submit(c, "short", 1);
  submit(c, "long", 10);
  submit(c, "middle", 5);
  submit(c, "urgent", 2, 1);
  submit(c, "unknown", 0);
  for (int i = 0; i < 5; ++i) {
    c.dispatch(0);
    auto& held = c.worker(w).held;
    BOOST_REQUIRE(held.size() == 1u);
    auto h = held.front();
    attempt_outcome o;
    BOOST_REQUIRE(c.complete(w, h, o, 1));
  }
  BOOST_TEST(seen->offered
               == (std::vector<std::string>{"urgent", "long", "middle", "short",
                                            "unknown"}),
             boost::test_tools::per_element());
  // A first-in, first-out strategy keeps the submission order.
  cluster_state fifo{config_for("least_loaded")};
  fifo.add_worker(make_worker("w", 64, 1), 0);
  submit(fifo, "short", 1);
  submit(fifo, "long", 10);
  fifo.dispatch(0);
  BOOST_TEST(held_ids(fifo, 0) == std::vector<std::string>{"short"},
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(
  a_test_that_would_lengthen_the_run_starts_ahead_of_its_band) {
  // Found: every priority band started after the bands above it, so a
  // long low-priority test started last and ran on alone (issue #16: the
  // shipped workload's 20 x 500 cell at 1.24 x the bound, 1.01-1.10 with
  // one priority). Two slots, four 1 s urgent tests and one 10 s test at
  // priority 5: in band order the long test starts at 2 s and the run
  // ends at 12 s; it cannot end before 10 s, and the work from its band
  // on (10 s) shared by two slots ends at 5 s, so waiting for its band
  // lengthens the run. With `strict_priority = false` (makespan first) it
  // starts at once as the longest test, the urgent tests on the other
  // slot, and the run ends at 10 s.
  auto run = [](bool strict) {
    auto cfg = config_for("round_robin");
    cfg.strict_priority = strict;
    cluster_state c{cfg};
    auto s = std::make_unique<holds_long_tests>(1e9);
    auto* seen = s.get();
    c.set_strategy(std::move(s));
    c.add_worker(make_worker("w", 64, 2), 0);
    for (int i = 0; i < 4; ++i)
      submit(c, "urgent-" + std::to_string(i), 1, 1);
    submit(c, "long", 10, 5);
    c.dispatch(0);
    BOOST_TEST(c.check_invariants() == "");
    return std::make_pair(held_ids(c, 0), seen->offered);
  };
  auto [held, offered] = run(false);
  BOOST_TEST(held == (std::vector<std::string>{"long", "urgent-0"}),
             boost::test_tools::per_element());
  BOOST_TEST(offered.front() == "long");
  // `strict_priority = true` (the default) keeps the bands in order.
  auto [strict_held, strict_offered] = run(true);
  BOOST_TEST(strict_held == (std::vector<std::string>{"urgent-0", "urgent-1"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(makespan_first_offers_the_longest_test_of_any_band_first) {
  // Found: with `strict_priority = false` a test started ahead of its band
  // only when its band's queued work, spread over the fleet, could not
  // cover it; an EFT plan in longest-first order over all bands reaches
  // 1.00-1.11 x the bound on the benchmark's cells and band order
  // 1.05-1.48 (20 x 500: 1.25 median), so the rule left most of that gap.
  // Now the queue offers the longest size class of any band first;
  // priority orders one size class.
  auto cfg = config_for("round_robin");
  cfg.strict_priority = false;
  cluster_state c{cfg};
  auto s = std::make_unique<holds_long_tests>(1e9);
  auto* seen = s.get();
  c.set_strategy(std::move(s));
  auto w = c.add_worker(make_worker("w", 64, 1), 0);
  submit(c, "urgent", 1, 1);
  submit(c, "middle", 5, 3);
  submit(c, "long", 10, 5);
  submit(c, "middle-urgent", 5, 1);
  for (int i = 0; i < 4; ++i) {
    c.dispatch(0);
    auto& held = c.worker(w).held;
    BOOST_REQUIRE(held.size() == 1u);
    auto h = held.front();
    attempt_outcome o;
    BOOST_REQUIRE(c.complete(w, h, o, 0));
  }
  BOOST_TEST(seen->offered
               == (std::vector<std::string>{"long", "middle-urgent", "middle",
                                            "urgent"}),
             boost::test_tools::per_element());
  BOOST_TEST(c.check_invariants() == "");
}

BOOST_AUTO_TEST_CASE(
  makespan_first_lifts_a_waiting_test_one_size_class_per_aging_interval) {
  // A stream of long tests must not starve a short one: a 1 s test (size
  // class 9) that has waited six aging intervals counts as class 15, the
  // class of a fresh 10 s test, and goes first as the older; after five
  // intervals the long test still goes first.
  for (auto [waited, first] :
       {std::pair<double, const char*>{60, "short"}, {50, "long"}}) {
    auto cfg = config_for("round_robin");
    cfg.strict_priority = false;
    cfg.aging_interval = 10;
    cluster_state c{cfg};
    auto s = std::make_unique<holds_long_tests>(1e9);
    auto* seen = s.get();
    c.set_strategy(std::move(s));
    c.add_worker(make_worker("w", 64, 1), 0);
    test_requirements t;
    t.test_id = "short";
    t.minimum_memory = 1;
    t.expected_duration = 1;
    BOOST_REQUIRE(c.submit(t, 0) == cluster_state::submit_status::accepted);
    t.test_id = "long";
    t.expected_duration = 10;
    BOOST_REQUIRE(c.submit(t, waited)
                  == cluster_state::submit_status::accepted);
    c.dispatch(waited);
    BOOST_TEST_INFO("waited " << waited);
    BOOST_REQUIRE(!seen->offered.empty());
    BOOST_TEST(seen->offered.front() == first);
  }
}

BOOST_AUTO_TEST_CASE(
  cpu_tests_leave_the_slots_of_free_gpus_when_gpu_work_is_critical) {
  // Found: 20 x 500 seed 2 ended 1.27 x the bound with GPU tests running
  // last: long CPU tests, offered first, took every slot of the fast
  // 4-slot 4-GPU workers (earliest completion), and their GPUs idled
  // while GPU tests queued. A fast worker with 2 slots and 2 GPUs, a slow
  // CPU worker with 2 slots; two 10 s CPU tests (offered first) and three
  // 10 s GPU tests: the GPU work (30 s over 2 GPUs at 2x) is most of the
  // run, so the CPU tests go to the slow worker and the GPUs start GPU
  // tests at once.
  auto cfg = config_for("adaptive");
  cfg.strict_priority = false;
  cluster_state c{cfg};
  auto gpu = c.add_worker(make_worker("gpu", 64, 2, 2.0, {{"cuda", 2}}), 0);
  auto cpu = c.add_worker(make_worker("cpu", 64, 2, 1.0), 0);
  for (int i = 0; i < 2; ++i)
    submit(c, "cpu-" + std::to_string(i), 10, 1);
  for (int i = 0; i < 3; ++i) {
    test_requirements t;
    t.test_id = "gpu-" + std::to_string(i);
    t.minimum_memory = 1;
    t.priority = 5;
    t.expected_duration = 10;
    t.required_accelerators = {{"cuda", 1}};
    BOOST_REQUIRE(c.submit(t, 0) == cluster_state::submit_status::accepted);
  }
  c.dispatch(0);
  BOOST_TEST(held_ids(c, gpu) == (std::vector<std::string>{"gpu-0", "gpu-1"}),
             boost::test_tools::per_element());
  BOOST_TEST(held_ids(c, cpu) == (std::vector<std::string>{"cpu-0", "cpu-1"}),
             boost::test_tools::per_element());
  BOOST_TEST(c.check_invariants() == "");
}

BOOST_AUTO_TEST_CASE(
  adaptive_starts_a_critical_low_priority_test_on_the_fast_worker) {
  // End to end with adaptive's learned paces: a 4x and a 1x worker, one
  // slot each; eight 1 s urgent tests and one 8 s test at priority 5. In
  // band order the long test would start after the urgent ones (about
  // 1.6 s) and end near 3.6 s on the fast worker; the fleet's pace (5
  // nominal seconds per second) shares its 8 s in 1.6 s, less than the
  // 2 s it needs even on the fast worker, so it starts first, there.
  auto cfg = config_for("adaptive");
  cfg.strict_priority = false;
  cluster_state c{cfg};
  auto slow = c.add_worker(make_worker("slow", 64, 1, 1.0), 0);
  auto fast = c.add_worker(make_worker("fast", 64, 1, 4.0), 0);
  for (int i = 0; i < 8; ++i)
    submit(c, "urgent-" + std::to_string(i), 1, 1);
  submit(c, "long", 8, 5);
  c.dispatch(0);
  BOOST_TEST(held_ids(c, fast) == std::vector<std::string>{"long"},
             boost::test_tools::per_element());
  BOOST_TEST(held_ids(c, slow) == std::vector<std::string>{"urgent-0"},
             boost::test_tools::per_element());
  BOOST_TEST(c.check_invariants() == "");
}

BOOST_AUTO_TEST_CASE(a_deferred_test_stays_queued_and_a_shorter_one_runs) {
  // Found: a test the strategy held back for a faster worker was parked
  // like an unplaceable one, retried on every parked scan and switched
  // pulls off while parked. Now it stays queued and is offered at most
  // once per pass; the tests after it are offered too (a strategy weighs
  // how many wait ahead of them, `held_back`), and the free worker gets
  // the shorter test. Found too: every held-back test was offered again
  // on every pass (20 x 500 in alb benchmark: 69 offers per test before it
  // started); a test of the size class and kind the strategy just
  // deferred in this pass is held back without being offered.
  cluster_state c{config_for("round_robin")};
  auto s = std::make_unique<holds_long_tests>(5);
  auto* seen = s.get();
  c.set_strategy(std::move(s));
  auto w = c.add_worker(make_worker("w", 64, 2), 0);
  submit(c, "long-a", 10);
  submit(c, "long-a2", 9); // the size class of 10 s
  submit(c, "long-b", 6);  // a shorter class
  submit(c, "short", 1);
  c.dispatch(0);
  BOOST_TEST(held_ids(c, w) == std::vector<std::string>{"short"},
             boost::test_tools::per_element());
  BOOST_TEST(c.parked() == 0u);
  BOOST_TEST(c.queued() == 3u);
  BOOST_TEST(seen->offered
               == (std::vector<std::string>{"long-a", "long-b", "short"}),
             boost::test_tools::per_element());
  // The next pass offers the held-back tests again, once each class, with
  // those held back before counted ahead.
  seen->offered.clear();
  seen->ahead.clear();
  c.dispatch(1);
  BOOST_TEST(seen->offered == (std::vector<std::string>{"long-a", "long-b"}),
             boost::test_tools::per_element());
  BOOST_TEST(seen->ahead == (std::vector<size_t>{0, 2}),
             boost::test_tools::per_element());
  BOOST_TEST(c.queued() == 3u);
  BOOST_TEST(c.check_invariants() == "");
  // avg_scheduling_attempts counts the offers the strategy saw: 5 over
  // the one test placed.
  BOOST_TEST(c.stats().metrics(1, c.worker_count(), 0).avg_scheduling_attempts
             == 5.0);
}

BOOST_AUTO_TEST_CASE(the_core_keeps_the_work_waiting_and_placed) {
  cluster_state c{config_for("adaptive")};
  auto w = c.add_worker(make_worker("w", 64, 1), 0);
  submit(c, "a", 4);
  submit(c, "b", 2);
  BOOST_TEST(c.queued_work() == 6.0);
  c.dispatch(0);
  BOOST_TEST(c.queued_work() == 2.0);
  BOOST_TEST(c.placed_work() == 4.0);
  attempt_outcome o;
  BOOST_REQUIRE(c.complete(w, c.worker(w).held.front(), o, 1));
  BOOST_TEST(c.placed_work() == 0.0);
  c.dispatch(1);
  BOOST_TEST(c.placed_work() == 2.0);
  BOOST_TEST(c.queued_work() == 0.0);
  BOOST_TEST(c.queued_at_least(cluster_state::size_class_of(1)) == 0u);
  BOOST_TEST(cluster_state::size_class_of(0) == 0);
  BOOST_TEST(cluster_state::size_class_of(1) < cluster_state::size_class_of(2));
  BOOST_TEST(cluster_state::size_class_of(5)
             < cluster_state::size_class_of(10));
}

BOOST_AUTO_TEST_CASE(adaptive_takes_long_tests_first_on_the_fast_worker) {
  // The fast worker gets the long test. The next longest would finish
  // later on the slow worker than after the long one on the fast worker,
  // so it waits (queued, not parked) and the slow worker gets a short one.
  cluster_state c{config_for("adaptive")};
  auto slow = c.add_worker(make_worker("slow", 64, 1, 0.5), 0);
  auto fast = c.add_worker(make_worker("fast", 64, 1, 4.0), 0);
  for (int i = 0; i < 6; ++i)
    submit(c, "short-" + std::to_string(i), 1);
  submit(c, "long", 10);
  submit(c, "middle", 2);
  c.dispatch(0);
  BOOST_TEST(held_ids(c, fast) == std::vector<std::string>{"long"},
             boost::test_tools::per_element());
  BOOST_TEST(held_ids(c, slow) == std::vector<std::string>{"short-0"},
             boost::test_tools::per_element());
  BOOST_TEST(c.parked() == 0u);
  BOOST_TEST(c.queued() == 6u);
}

BOOST_AUTO_TEST_CASE(adaptive_never_waits_for_a_faster_worker_that_is_idle) {
  // Worker a is fast in general (its tier is above b's) but has run model
  // m slowly; b has run m at nominal pace. The pick weighs both and takes
  // b. Waiting for "a faster worker" would then wait for a, which is idle
  // already and was passed over: on an idle cluster nothing would ever
  // change, and the test stayed queued forever (alb benchmark 10 x 1000,
  // seed 3: five GPU tests never placed).
  // (Ten slow runs of m, since a few would be drawn towards a's general
  // pace, see execution_history::prior_samples.)
  auto h = std::make_shared<execution_history>();
  for (int i = 0; i < 100; ++i)
    h->record("x", "a", 0.25, 1.0);
  for (int i = 0; i < 10; ++i)
    h->record("m", "a", 3.0, 1.0);
  for (int i = 0; i < 5; ++i)
    h->record("m", "b", 1.0, 1.0);
  scheduler_config cfg = config_for("adaptive");
  cfg.speed_hints = false;
  cfg.history = h;
  cluster_state c{cfg};
  c.add_worker(make_worker("a", 16, 1), 0);
  auto b = c.add_worker(make_worker("b", 16, 1), 0);
  test_requirements t;
  t.test_id = "m-test";
  t.model_id = "m";
  t.minimum_memory = 1;
  t.expected_duration = 10;
  BOOST_REQUIRE(c.submit(t, 0) == cluster_state::submit_status::accepted);
  c.dispatch(0);
  BOOST_TEST(c.queued() == 0u);
  BOOST_TEST(held_ids(c, b) == std::vector<std::string>{"m-test"},
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_busy_kind_waits_in_the_queue_longest_first) {
  // Found: with the only GPU worker busy, GPU tests were parked, and the
  // parked lists are retried in rotation, not longest first: a long GPU
  // test parked after a short one started after it, and the long GPU
  // tests of a run came last (alb benchmark 20 x 1000: a 10 s GPU test
  // started 6 s before the end). A longest-first strategy now keeps them
  // queued in their size classes while a worker that could hold them is
  // busy.
  cluster_state c{config_for("adaptive")};
  auto gpu = c.add_worker(make_worker("gpu", 64, 1, 1.0, {{"cuda", 1}}), 0);
  c.add_worker(make_worker("cpu", 64, 1), 0);
  auto submit_gpu = [&](const std::string& id, double expected) {
    test_requirements t;
    t.test_id = id;
    t.minimum_memory = 1;
    t.expected_duration = expected;
    t.required_accelerators["cuda"] = 1;
    BOOST_REQUIRE(c.submit(t, 0) == cluster_state::submit_status::accepted);
    c.dispatch(0);
  };
  submit_gpu("busy", 1);
  BOOST_REQUIRE(held_ids(c, gpu) == std::vector<std::string>{"busy"});
  submit_gpu("short", 1);
  submit_gpu("long", 10);
  BOOST_TEST(c.parked() == 0u);
  BOOST_TEST(c.queued() == 2u);
  BOOST_TEST(c.queued_at_least(0, true) == 2u);
  attempt_outcome o;
  BOOST_REQUIRE(c.complete(gpu, c.worker(gpu).held.front(), o, 1));
  c.dispatch(1);
  BOOST_TEST(held_ids(c, gpu) == std::vector<std::string>{"long"},
             boost::test_tools::per_element());
  BOOST_TEST(c.check_invariants() == "");
}

namespace {

/// A cluster where a long test runs on a slow worker and a fast worker
/// joined after it was placed.
struct straggler {
  scheduler_config cfg = config_for("adaptive");
  std::unique_ptr<cluster_state> c;
  uint32_t slow = npos;
  uint32_t fast = npos;
  test_handle original;
  std::vector<assignment> ended;

  explicit straggler(bool speculate_test = true, bool speculate_cfg = true,
                     bool fast_busy = false) {
    cfg.speculate = speculate_cfg;
    c = std::make_unique<cluster_state>(cfg);
    c->set_end_listener([this](const assignment& a, const attempt_outcome*) {
      ended.push_back(a);
    });
    slow = c->add_worker(make_worker("slow", 16, 1, 0.25), 0);
    test_requirements t;
    t.test_id = "long";
    t.model_id = "m";
    t.minimum_memory = 1;
    t.expected_duration = 10;
    t.speculate = speculate_test;
    BOOST_REQUIRE(c->submit(t, 0) == cluster_state::submit_status::accepted);
    c->dispatch(0);
    BOOST_REQUIRE(c->worker(slow).held.size() == 1u);
    original = c->worker(slow).held.front();
    fast = c->add_worker(make_worker("fast", 16, 1, 4.0), 0);
    if (fast_busy) {
      t.test_id = "other";
      t.expected_duration = 100;
      BOOST_REQUIRE(c->submit(t, 0) == cluster_state::submit_status::accepted);
      c->dispatch(0);
      BOOST_REQUIRE(c->worker(fast).held.size() == 1u);
    }
    c->drain_outbox([](uint32_t, std::vector<test_handle>&) {});
  }

  /// Handles placed since the last call, per slot.
  std::map<uint32_t, std::vector<test_handle>> placed() {
    return test_support::drain_placed(*c);
  }

  /// Placements the core asked to stop, per slot.
  std::vector<std::pair<uint32_t, test_handle>> cancels() {
    return test_support::drain_cancelled(*c);
  }

  run_metrics metrics(double now) const {
    return c->stats().metrics(now, c->worker_count(), 0);
  }
};

} // namespace

BOOST_AUTO_TEST_CASE(a_straggler_gets_a_copy_and_the_copy_wins) {
  // The 10 s test runs on a 0.25x worker (40 s); a 4x worker joins idle.
  // With nothing waiting, the copy (2.5 s) is expected to finish long
  // before the original's 39 s left: it runs, wins, and the original is
  // stopped (a cancel for its worker) and counted.
  straggler s;
  s.c->tick(1);
  auto placed = s.placed();
  BOOST_REQUIRE(placed.count(s.fast) == 1u);
  BOOST_REQUIRE(placed[s.fast].size() == 1u);
  auto copy = placed[s.fast].front();
  BOOST_TEST(s.metrics(1).speculated_tests == 1u);
  BOOST_TEST(s.c->in_flight() == 2u);
  BOOST_TEST(s.c->open_tests() == 1u);
  BOOST_TEST(s.c->assignments().size() == 1u);
  BOOST_TEST(s.c->check_invariants() == "");
  // One copy per test: later ticks add none.
  s.c->tick(1.1);
  BOOST_TEST(s.placed().empty());
  attempt_outcome o;
  o.exec_seconds = 2.5;
  BOOST_REQUIRE(s.c->complete(s.fast, copy, o, 3.5));
  auto cancels = s.cancels();
  BOOST_REQUIRE(cancels.size() == 1u);
  BOOST_TEST(cancels[0].first == s.slow);
  BOOST_TEST(cancels[0].second.ref == s.original.ref);
  BOOST_TEST(cancels[0].second.gen == s.original.gen);
  BOOST_REQUIRE(s.ended.size() == 1u);
  BOOST_TEST(s.ended[0].worker_id == "fast");
  BOOST_TEST(s.ended[0].success);
  auto m = s.metrics(3.5);
  BOOST_TEST(m.speculation_wins == 1u);
  BOOST_TEST(m.completed_tests == 1u);
  BOOST_TEST(s.c->open_tests() == 0u);
  BOOST_TEST(s.c->in_flight() == 0u);
  BOOST_TEST(s.c->worker(s.slow).held.empty());
  BOOST_TEST(s.c->check_invariants() == "");
  // The stopped original's report, should one still come, is stale.
  BOOST_TEST(!s.c->complete(s.slow, s.original, o, 4));
  BOOST_TEST(s.metrics(4).completed_tests == 1u);
}

BOOST_AUTO_TEST_CASE(when_the_original_finishes_first_the_copy_is_stopped) {
  straggler s;
  s.c->tick(1);
  auto placed = s.placed();
  BOOST_REQUIRE(placed.count(s.fast) == 1u);
  auto copy = placed[s.fast].front();
  attempt_outcome o;
  o.exec_seconds = 2;
  BOOST_REQUIRE(s.c->complete(s.slow, s.original, o, 2));
  auto cancels = s.cancels();
  BOOST_REQUIRE(cancels.size() == 1u);
  BOOST_TEST(cancels[0].first == s.fast);
  BOOST_TEST(cancels[0].second.ref == copy.ref);
  BOOST_TEST(cancels[0].second.gen == copy.gen);
  BOOST_REQUIRE(s.ended.size() == 1u);
  BOOST_TEST(s.ended[0].worker_id == "slow");
  auto m = s.metrics(2);
  BOOST_TEST(m.speculated_tests == 1u);
  BOOST_TEST(m.speculation_wins == 0u);
  BOOST_TEST(s.c->worker(s.fast).held.empty());
  BOOST_TEST(!s.c->complete(s.fast, copy, o, 2.5));
  BOOST_TEST(s.c->check_invariants() == "");
}

BOOST_AUTO_TEST_CASE(
  speculation_is_off_for_tests_that_say_so_and_never_overfills) {
  // speculate = false on the test, speculate = false in [scheduler], and a
  // fast worker without room: no copy in any of them.
  for (auto [test_on, cfg_on, busy] :
       {std::tuple{false, true, false}, std::tuple{true, false, false},
        std::tuple{true, true, true}}) {
    straggler s{test_on, cfg_on, busy};
    s.c->tick(1);
    s.c->tick(5);
    BOOST_TEST(s.placed().empty());
    BOOST_TEST(s.metrics(5).speculated_tests == 0u);
    BOOST_TEST(s.c->check_invariants() == "");
  }
  // The test file key reaches the requirements.
  auto cfg = load_config_from_string(
    "[[tests]]\ntest_id = \"once\"\nsimulate = true\nspeculate = false\n",
    "t.toml");
  BOOST_REQUIRE(cfg.tests.size() == 1u);
  BOOST_TEST(!cfg.tests[0].requirements.speculate);
}

BOOST_AUTO_TEST_CASE(unknown_workers_get_the_pace_of_their_hardware_class) {
  // No speed hints; a and c declare the same hardware (8 cores, 3 GHz), b
  // other hardware (4 cores, 3 GHz). The history knows a as 4x fast; c and
  // b are unknown. Their clocks alone say nominal for both, but c is
  // assumed to run like a, its hardware class, and beats b. (a cannot hold
  // the test.)
  auto h = std::make_shared<execution_history>();
  for (int i = 0; i < 5; ++i)
    h->record("m", "a", 0.25, 1.0);
  for (auto name : {"performance_based", "adaptive"}) {
    scheduler_config cfg = config_for(name);
    cfg.speed_hints = false;
    cfg.history = h;
    cluster_state c{cfg};
    auto caps = [](std::string id, double memory, int cores) {
      auto w = make_worker(std::move(id), memory, 4, 1.0);
      w.hardware.cpu.cores = cores;
      w.hardware.cpu.frequency_mhz = 3000;
      return w;
    };
    c.add_worker(caps("a", 4, 8), 0);
    c.add_worker(caps("b", 16, 4), 0);
    auto fast = c.add_worker(caps("c", 16, 8), 0);
    auto s = make_strategy(cfg);
    BOOST_TEST(s->pick(make_record(8), c) == fast, name);
    BOOST_TEST(s->expected_seconds(make_record(8), fast, c) == 0.25, name);
  }
}

namespace {

/// A cluster where nothing is known of "new" (no history, nothing
/// declared, no speed hints) and "known" has a learned nominal pace.
struct probing {
  std::shared_ptr<execution_history> h = std::make_shared<execution_history>();
  scheduler_config cfg = config_for("adaptive");
  std::unique_ptr<cluster_state> c;
  uint32_t fresh = npos;
  uint32_t known = npos;

  explicit probing(int fresh_slots, bool with_known = true) {
    for (int i = 0; i < 5; ++i)
      h->record("x", "known", 1.0, 1.0);
    cfg.speed_hints = false;
    cfg.history = h;
    c = std::make_unique<cluster_state>(cfg);
    // "new" first: ties go to it. Other hardware than "known" (a worker
    // declaring the same would start at its learned pace).
    auto caps = make_worker("new", 64, fresh_slots);
    caps.hardware.cpu.cores = 16;
    fresh = c->add_worker(caps, 0);
    if (with_known)
      known = c->add_worker(make_worker("known", 64, 1), 0);
  }
};

} // namespace

BOOST_AUTO_TEST_CASE(an_unknown_worker_is_probed_with_a_short_test) {
  // Longest first, the long test would go to "new" (a tie, the lower
  // slot): "new" gets the short one instead, so its pace is learned after
  // 1 s, and the long one goes to "known".
  probing p{1};
  submit(*p.c, "long", 10);
  submit(*p.c, "short", 1);
  p.c->dispatch(0);
  BOOST_TEST(held_ids(*p.c, p.fresh) == std::vector<std::string>{"short"},
             boost::test_tools::per_element());
  BOOST_TEST(held_ids(*p.c, p.known) == std::vector<std::string>{"long"},
             boost::test_tools::per_element());
  BOOST_TEST(p.c->check_invariants() == "");
}

BOOST_AUTO_TEST_CASE(a_probe_delays_a_long_test_one_pass_at_most) {
  // Only "new" (two slots) is there: the long test waits one pass so the
  // short one goes first, then takes the other slot.
  probing p{2, false};
  submit(*p.c, "long", 10);
  submit(*p.c, "short", 1);
  p.c->dispatch(0);
  BOOST_TEST(held_ids(*p.c, p.fresh) == std::vector<std::string>{"short"},
             boost::test_tools::per_element());
  BOOST_TEST(p.c->queued() == 1u);
  p.c->dispatch(0.01);
  BOOST_TEST(held_ids(*p.c, p.fresh)
               == (std::vector<std::string>{"long", "short"}),
             boost::test_tools::per_element());
  // Without a short test to give, nothing waits.
  probing q{2, false};
  submit(*q.c, "long", 10);
  submit(*q.c, "longer", 11);
  q.c->dispatch(0);
  BOOST_TEST(held_ids(*q.c, q.fresh)
               == (std::vector<std::string>{"long", "longer"}),
             boost::test_tools::per_element());
  BOOST_TEST(q.c->check_invariants() == "");
}

BOOST_AUTO_TEST_CASE(affinity_never_outweighs_a_2x_speed_difference) {
  // a and b run in general at the same pace (one speed tier, so adaptive
  // weighs affinity), but a runs model m more than 2x slower. a is m's
  // home: a test of m goes to b, which is expected to take less than half
  // the time; a test of x, which a runs fastest, still goes home to a.
  // Overall both are 1.2x slower than nominal; m on a (30 runs at 3x,
  // drawn towards 1.2x): 2.55x, on b (unseen) 1.2x.
  auto h = std::make_shared<execution_history>();
  for (int i = 0; i < 100; ++i)
    h->record("x", "b", 1.2, 1.0);
  for (int i = 0; i < 70; ++i)
    h->record("x", "a", 0.3 / 0.7, 1.0);
  for (int i = 0; i < 30; ++i)
    h->record("m", "a", 3.0, 1.0);
  for (bool loaded : {false, true}) {
    scheduler_config cfg = config_for("adaptive");
    cfg.speed_hints = false;
    cfg.history = h;
    cluster_state c{cfg};
    auto a = c.add_worker(make_worker("a", 16, 4), 0);
    auto b = c.add_worker(make_worker("b", 16, 4), 0);
    auto s = make_strategy(cfg);
    auto m = make_record(1, "m");
    auto x = make_record(1, "x");
    // Both home to a (it ran them last).
    s->on_result(m, a, c, 3.0, true);
    s->on_result(x, a, c, 0.9, true);
    if (loaded)
      occupy(c, "load", 1); // some load on a: least_loaded says b
    BOOST_TEST(s->pick(x, c) == a, loaded);
    BOOST_TEST(s->last_choice() == "affinity_based", loaded);
    BOOST_TEST(s->pick(m, c) == b, loaded);
    BOOST_TEST(s->last_choice() == "performance_based", loaded);
  }
}

BOOST_AUTO_TEST_CASE(composite_affinity_votes_for_a_twice_as_fast_worker) {
  // b is 4x faster than a; a, the home of m, is the lower slot (least
  // loaded's tie) and performance_based proposes b. Affinity's vote for
  // a made a win whenever power_of_two drew a too (a 0.6 against 0.4);
  // now affinity votes for b, and b always wins.
  auto h = std::make_shared<execution_history>();
  for (int i = 0; i < 20; ++i) {
    h->record("m", "a", 1.0, 1.0);
    h->record("m", "b", 0.25, 1.0);
  }
  scheduler_config cfg = config_for("composite");
  cfg.speed_hints = false;
  cfg.history = h;
  cluster_state c{cfg};
  auto a = c.add_worker(make_worker("a", 16, 4), 0);
  auto b = c.add_worker(make_worker("b", 16, 4), 0);
  auto s = make_strategy(cfg);
  auto m = make_record(1, "m");
  s->on_result(m, a, c, 1.0, true);
  for (int i = 0; i < 20; ++i) {
    BOOST_TEST(s->pick(m, c) == b, i);
    s->on_result(m, a, c, 1.0, true); // a stays the home
  }
}

BOOST_AUTO_TEST_CASE(holding_back_plans_with_the_spread_of_the_history) {
  // "slow" (nominal on average) has run 10 s tests in 5 and 15 s; "fast"
  // (1.25x, one tier up) always in 8 s and is busy. On the mean the free
  // slow worker takes the 10 s test (10 s there against about 9 s via the
  // fast one); planned half a standard deviation slow (13.5 s against
  // 9 s) it waits for the fast one.
  auto h = std::make_shared<execution_history>();
  for (int i = 0; i < 10; ++i) {
    h->record("m", "slow", 5, 10);
    h->record("m", "slow", 15, 10);
  }
  for (int i = 0; i < 20; ++i)
    h->record("m", "fast", 8, 10);
  scheduler_config cfg = config_for("adaptive");
  cfg.speed_hints = false;
  cfg.history = h;
  cluster_state c{cfg};
  auto slow = c.add_worker(make_worker("slow", 16, 1), 0);
  auto fast = c.add_worker(make_worker("fast", 8, 1), 0);
  occupy(c, "busy", 8); // only the fast worker has 8 GB free: it is busy
  BOOST_REQUIRE(c.worker(fast).held.size() == 1u);
  auto s = make_strategy(cfg);
  // The tests seen so far were short (a slot frees after about 1 s).
  for (int i = 0; i < 20; ++i)
    BOOST_TEST(s->pick(make_record(1, "m", 3, 1.0), c) == slow);
  BOOST_TEST(s->pick(make_record(1, "m", 3, 10.0), c) == npos);
  BOOST_TEST(s->last_choice() == "deferred");
}
