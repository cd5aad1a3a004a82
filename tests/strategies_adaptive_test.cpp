#define BOOST_TEST_MODULE strategies_adaptive
#include <boost/test/unit_test.hpp>

#include "runtime/cluster_state.hpp"
#include "runtime/config.hpp"
#include "runtime/history.hpp"
#include "runtime/strategy.hpp"

#include <map>
#include <memory>
#include <string>
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
