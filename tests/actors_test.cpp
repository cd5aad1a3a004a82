#define BOOST_TEST_MODULE actors
#include <boost/test/unit_test.hpp>

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/load_balancer_service.hpp"
#include "actors/messages.hpp"
#include "actors/scheduler.hpp"
#include "actors/simulation_run.hpp"
#include "actors/system.hpp"
#include "actors/worker.hpp"
#include "runtime/rng.hpp"
#include "runtime/simulation.hpp"

using namespace alb;

namespace {

// Owns a configured actor system config; a base class so the config exists
// before the actor system member is built.
struct config_holder {
  caf::actor_system_config cfg;
  config_holder() { configure_system(cfg, 1, true); }
};

test_requirements test_of(const std::string& id, double mem, double dur);

// Deterministic fixture: CAF's test coordinator, virtual time, one thread.
struct fixture : config_holder {
  caf::actor_system sys{cfg};
  caf::scheduler::test_coordinator& sched
    = dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());

  // Runs every ready message.
  void run() { sched.run(); }

  // Submits t0..t<n-1>, each needing 1 GB for `seconds`, and runs.
  void submit(const scheduler_actor& scheduler, int n, double seconds) {
    test_batch b;
    for (int i = 0; i < n; ++i)
      b.tests.push_back(test_of("t" + std::to_string(i), 1, seconds));
    caf::anon_send(scheduler, std::move(b));
    run();
  }

  // Moves virtual time forward, firing timers and running what they cause.
  void advance(double seconds) {
    auto step = std::chrono::duration_cast<caf::timespan>(
      std::chrono::duration<double>(0.05));
    for (double t = 0; t < seconds; t += 0.05) {
      sched.advance_time(step);
      sched.run();
    }
  }

  template<class T>
  T round_trip(const T& x) {
    std::vector<char> buf;
    caf::binary_serializer sink{sys, buf};
    auto err = sink(const_cast<T&>(x));
    BOOST_REQUIRE(!err);
    T y;
    caf::binary_deserializer source{sys, buf};
    auto err2 = source(y);
    BOOST_REQUIRE(!err2);
    return y;
  }
};

worker_capabilities caps_of(const std::string& id, double mem, int slots,
                            int cuda = 0) {
  worker_capabilities c;
  c.worker_id = id;
  c.available_memory = mem;
  c.cpu_cores = slots;
  c.max_concurrent_tests = slots;
  if (cuda > 0)
    c.available_accelerators["cuda"] = cuda;
  return c;
}

test_requirements test_of(const std::string& id, double mem, double dur) {
  test_requirements t;
  t.test_id = id;
  t.model_id = "bert-base-uncased";
  t.minimum_memory = mem;
  t.expected_duration = dur;
  return t;
}

// What a stand-in scheduler saw.
struct seen_by_scheduler {
  /// Join requests answered (slots handed out in order).
  uint32_t joins = 0;
  /// Every other message, whatever its type.
  int messages = 0;
  /// `external_load` of each report batch.
  std::vector<float> loads;
};

// Stands in for the scheduler: admits every worker and counts everything
// else it receives (the default handler catches types it has no case for).
caf::behavior counting_scheduler(caf::event_based_actor* self,
                                 std::shared_ptr<seen_by_scheduler> seen) {
  self->set_default_handler(
    [seen](caf::scheduled_actor*,
           caf::message_view&) -> caf::result<caf::message> {
      ++seen->messages;
      return caf::message{};
    });
  return {
    [seen](join_atom, const worker_capabilities&, const worker_actor&) {
      return seen->joins++;
    },
    [seen](const report_batch& b) {
      ++seen->messages;
      seen->loads.push_back(b.external_load);
    },
  };
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(actor_tests, fixture)

BOOST_AUTO_TEST_CASE(idle_workers_send_no_messages_and_arm_no_timers) {
  auto seen = std::make_shared<seen_by_scheduler>();
  auto fake
    = caf::actor_cast<scheduler_actor>(sys.spawn(counting_scheduler, seen));
  worker_options wo;
  wo.report_interval = 0.5;
  std::vector<worker_actor> pool;
  for (int i = 0; i < 50; ++i) {
    wo.caps = caps_of("w" + std::to_string(i), 8, 2);
    wo.seed = static_cast<uint64_t>(i + 1);
    pool.push_back(spawn_worker(sys, fake, wo));
  }
  run();
  BOOST_REQUIRE(seen->joins == 50u);
  // Joining, each announces once that it answers revokes.
  BOOST_TEST(seen->messages == 50);
  // Nothing to do: no timer is armed, so no time passing can wake anyone.
  BOOST_TEST(!sched.has_pending_timeout());
  advance(20);
  BOOST_TEST(seen->messages == 50);
  for (auto& w : pool)
    caf::anon_send_exit(w, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(fake, caf::exit_reason::user_shutdown);
  run();
}

BOOST_AUTO_TEST_CASE(an_idle_pool_sends_no_messages_and_arms_no_timers) {
  auto seen = std::make_shared<seen_by_scheduler>();
  auto fake
    = caf::actor_cast<scheduler_actor>(sys.spawn(counting_scheduler, seen));
  std::vector<worker_options> ws(50);
  for (int i = 0; i < 50; ++i) {
    ws[i].report_interval = 0.5;
    ws[i].caps = caps_of("w" + std::to_string(i), 8, 2);
    ws[i].seed = static_cast<uint64_t>(i + 1);
  }
  auto pool = spawn_worker_pool(sys, fake, std::move(ws));
  run();
  BOOST_REQUIRE(seen->joins == 50u);
  // One announcement per worker that it answers revokes, nothing else.
  BOOST_TEST(seen->messages == 50);
  BOOST_TEST(!sched.has_pending_timeout());
  advance(20);
  BOOST_TEST(seen->messages == 50);
  caf::anon_send_exit(pool, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(fake, caf::exit_reason::user_shutdown);
  run();
}

BOOST_AUTO_TEST_CASE(a_changed_background_load_rides_on_the_next_report) {
  auto seen = std::make_shared<seen_by_scheduler>();
  auto fake
    = caf::actor_cast<scheduler_actor>(sys.spawn(counting_scheduler, seen));
  worker_options wo;
  wo.caps = caps_of("w", 8, 2);
  wo.profile.background_load = 50;
  wo.report_interval = 1;
  auto w = spawn_worker(sys, fake, wo);
  run();
  BOOST_REQUIRE(seen->joins == 1u);
  // Zero-length tests end on the spot: one report each, a second apart.
  for (uint32_t i = 0; i < 20; ++i) {
    advance(1.1);
    work_item item;
    item.ref = i;
    item.gen = 1;
    item.test_id = "t" + std::to_string(i);
    work_batch b;
    b.items.push_back(item);
    caf::anon_send(w, std::move(b));
    run();
  }
  BOOST_REQUIRE(seen->loads.size() == 20u);
  bool some = false;
  for (auto l : seen->loads) {
    // Unchanged (-1) or the background share, at most 50%.
    BOOST_TEST((l == -1.0f || (l >= 0.0f && l <= 0.5f)));
    some = some || l > 0;
  }
  BOOST_TEST(some);
  // Still nothing armed between reports.
  BOOST_TEST(!sched.has_pending_timeout());
  caf::anon_send_exit(w, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(fake, caf::exit_reason::user_shutdown);
  run();
}

BOOST_AUTO_TEST_CASE(every_message_type_round_trips_through_binary_serializer) {
  worker_capabilities c;
  c.worker_id = "w1";
  c.hostname = "host";
  c.hardware.cpu = {16, 3200};
  c.hardware.memory = {64, 60};
  c.hardware.gpu = {2, true};
  c.software_versions = {{"torch", "2.3"}};
  c.supported_backends = {"cpu", "cuda"};
  c.available_accelerators = {{"cuda", 2}};
  c.available_memory = 60;
  c.available_disk = 500;
  c.cpu_cores = 16;
  c.cpu_threads = 32;
  c.network_bandwidth = 25;
  c.storage_capacity = 2000;
  c.max_concurrent_tests = 6;
  c.speed = 1.5;
  c.tags = {"rack-a"};
  auto c2 = round_trip(c);
  BOOST_TEST(c2.worker_id == "w1");
  BOOST_TEST(c2.hostname == "host");
  BOOST_TEST(c2.hardware.cpu.cores == 16);
  BOOST_TEST(c2.hardware.cpu.frequency_mhz == 3200);
  BOOST_TEST(c2.hardware.memory.total_gb == 64);
  BOOST_TEST(c2.hardware.memory.available_gb == 60);
  BOOST_TEST(c2.hardware.gpu.device_count == 2);
  BOOST_TEST(c2.hardware.gpu.cuda_available);
  BOOST_TEST(c2.software_versions.at("torch") == "2.3");
  BOOST_TEST(c2.supported_backends.size() == 2u);
  BOOST_TEST(c2.available_accelerators.at("cuda") == 2);
  BOOST_TEST(c2.available_memory == 60);
  BOOST_TEST(c2.available_disk == 500);
  BOOST_TEST(c2.cpu_threads == 32);
  BOOST_TEST(c2.network_bandwidth == 25);
  BOOST_TEST(c2.storage_capacity == 2000);
  BOOST_TEST(c2.max_concurrent_tests == 6);
  BOOST_TEST(c2.speed == 1.5);
  BOOST_TEST(c2.tags.at(0) == "rack-a");

  worker_load l;
  l.worker_id = "w1";
  l.cpu_utilization = 11;
  l.memory_utilization = 12;
  l.gpu_utilization = 13;
  l.io_utilization = 14;
  l.network_utilization = 15;
  l.active_tests = 2;
  l.queued_tests = 3;
  l.queue_depth = 5;
  l.reserved_memory = 7.5;
  l.reserved_accelerators = {{"cuda", 1}};
  l.warming_up = true;
  l.cooling_down = true;
  l.performance_level = 0.5;
  auto l2 = round_trip(l);
  BOOST_TEST(l2.worker_id == "w1");
  BOOST_TEST(l2.cpu_utilization == 11);
  BOOST_TEST(l2.memory_utilization == 12);
  BOOST_TEST(l2.gpu_utilization == 13);
  BOOST_TEST(l2.io_utilization == 14);
  BOOST_TEST(l2.network_utilization == 15);
  BOOST_TEST(l2.active_tests == 2);
  BOOST_TEST(l2.queued_tests == 3);
  BOOST_TEST(l2.queue_depth == 5);
  BOOST_TEST(l2.reserved_memory == 7.5);
  BOOST_TEST(l2.reserved_accelerators.at("cuda") == 1);
  BOOST_TEST(l2.warming_up);
  BOOST_TEST(l2.cooling_down);
  BOOST_TEST(l2.performance_level == 0.5);

  test_requirements t;
  t.test_id = "t1";
  t.model_id = "m";
  t.model_family = "f";
  t.test_type = "unit";
  t.minimum_memory = 4;
  t.required_backend = "cuda";
  t.preferred_backend = "cpu";
  t.required_accelerators = {{"cuda", 1}};
  t.required_software = {"torch"};
  t.expected_duration = 2;
  t.priority = 1;
  t.timeout = 9;
  t.retries = 2;
  t.concurrency_key = "db";
  t.wait_limit = 30;
  test_batch tb;
  tb.tests.push_back(t);
  auto tb2 = round_trip(tb);
  BOOST_REQUIRE(tb2.tests.size() == 1u);
  auto& t2 = tb2.tests[0];
  BOOST_TEST(t2.test_id == "t1");
  BOOST_TEST(t2.model_id == "m");
  BOOST_TEST(t2.model_family == "f");
  BOOST_TEST(t2.test_type == "unit");
  BOOST_TEST(t2.minimum_memory == 4);
  BOOST_TEST(t2.required_backend == "cuda");
  BOOST_TEST(t2.preferred_backend == "cpu");
  BOOST_TEST(t2.required_accelerators.at("cuda") == 1);
  BOOST_TEST(t2.required_software.at(0) == "torch");
  BOOST_TEST(t2.expected_duration == 2);
  BOOST_TEST(t2.priority == 1);
  BOOST_TEST(t2.timeout == 9);
  BOOST_TEST(t2.retries == 2);
  BOOST_TEST(t2.concurrency_key == "db");
  BOOST_TEST(t2.wait_limit == 30);

  work_item wi;
  wi.ref = 7;
  wi.gen = 9;
  wi.test_id = "t1";
  wi.expected_duration = 1.25;
  wi.timeout = 3;
  wi.priority = 2;
  wi.command = {"/bin/true", "x"};
  wi.env = {{"A", "B"}};
  wi.cwd = "/tmp";
  work_batch wb;
  wb.items.push_back(wi);
  auto wb2 = round_trip(wb);
  BOOST_REQUIRE(wb2.items.size() == 1u);
  auto& w2 = wb2.items[0];
  BOOST_TEST(w2.ref == 7u);
  BOOST_TEST(w2.gen == 9u);
  BOOST_TEST(w2.test_id == "t1");
  BOOST_TEST(w2.expected_duration == 1.25);
  BOOST_TEST(w2.timeout == 3);
  BOOST_TEST(w2.priority == 2);
  BOOST_TEST(w2.command.at(1) == "x");
  BOOST_TEST(w2.env.at("A") == "B");
  BOOST_TEST(w2.cwd == "/tmp");

  work_report wr;
  wr.ref = 3;
  wr.gen = 4;
  wr.success = false;
  wr.timed_out = true;
  wr.exec_seconds = 2.5;
  wr.queued_seconds = 0.5;
  wr.exit_code = 137;
  wr.error = "boom";
  wr.output_tail = "tail";
  report_batch rb;
  rb.slot = 11;
  rb.items.push_back(wr);
  auto rb2 = round_trip(rb);
  BOOST_TEST(rb2.slot == 11u);
  BOOST_REQUIRE(rb2.items.size() == 1u);
  auto& r2 = rb2.items[0];
  BOOST_TEST(r2.ref == 3u);
  BOOST_TEST(r2.gen == 4u);
  BOOST_TEST(!r2.success);
  BOOST_TEST(r2.timed_out);
  BOOST_TEST(r2.exec_seconds == 2.5);
  BOOST_TEST(r2.queued_seconds == 0.5);
  BOOST_TEST(r2.exit_code == 137);
  BOOST_TEST(r2.error == "boom");
  BOOST_TEST(r2.output_tail == "tail");

  load_report lr{5, l};
  auto lr2 = round_trip(lr);
  BOOST_TEST(lr2.slot == 5u);
  BOOST_TEST(lr2.load.queue_depth == 5);

  series_sample s{1.5, 10, 9, 2.25, 4, 3, 2};
  auto s2 = round_trip(s);
  BOOST_TEST(s2.source == 2u);
  BOOST_TEST(s2.now == 1.5);
  BOOST_TEST(s2.completed == 10u);
  BOOST_TEST(s2.started == 9u);
  BOOST_TEST(s2.latency_sum == 2.25);
  BOOST_TEST(s2.queue_depth == 4);
  BOOST_TEST(s2.workers == 3);

  // A whole message with an actor handle, as it crosses the wire.
  // An argument on purpose: CAF 0.17.6 dereferences a null tuple pointer
  // when spawning a function actor without arguments (UBSan flags it).
  auto proxy = sys.spawn(
    [](int) -> worker_actor::behavior_type {
      return {[](work_batch&) {},
              [](cancel_atom, uint32_t, uint32_t) {},
              [](finish_atom, uint64_t) {},
              [](tick_atom) {},
              [](leave_atom) {},
              [](status_atom) { return uint32_t{0}; }};
    },
    0);
  auto msg = caf::make_message(join_atom::value, c, proxy);
  auto msg2 = round_trip(msg);
  BOOST_REQUIRE(
    (msg2.match_elements<join_atom, worker_capabilities, worker_actor>()));
  BOOST_TEST(msg2.get_as<worker_capabilities>(1).worker_id == "w1");
  BOOST_TEST((msg2.get_as<worker_actor>(2) == proxy));
  caf::anon_send_exit(proxy, caf::exit_reason::user_shutdown);
  run();
}

BOOST_AUTO_TEST_CASE(
  a_worker_dying_mid_test_sends_its_tests_back_to_the_queue) {
  std::map<std::string, assignment> ended;
  run_metrics last;
  scheduler_options so;
  so.finish_when_done = false;
  so.on_end = [&](const assignment& a, const attempt_outcome*) {
    ended[a.test_id] = a;
  };
  so.on_tick = [&](const cluster_state& c, double now) {
    last = c.stats().metrics(now, c.worker_count(), c.queued() + c.parked());
  };
  auto scheduler = spawn_scheduler(sys, so);
  worker_options wo;
  wo.caps = caps_of("w1", 8, 1);
  auto w1 = spawn_worker(sys, scheduler, wo);
  run();
  wo.caps = caps_of("w2", 8, 1);
  auto w2 = spawn_worker(sys, scheduler, wo);
  run();
  // Two 10-second tests: least_loaded puts one on each worker.
  test_batch b;
  b.tests.push_back(test_of("a", 4, 10));
  b.tests.push_back(test_of("b", 4, 10));
  caf::anon_send(scheduler, std::move(b));
  run();
  advance(1);
  BOOST_TEST(ended.empty());
  // w1 dies mid-test: its test must go to w2 and still complete.
  caf::anon_send_exit(w1, caf::exit_reason::kill);
  run();
  advance(40);
  BOOST_REQUIRE(ended.size() == 2u);
  BOOST_TEST((ended["a"].status == test_status::completed));
  BOOST_TEST((ended["b"].status == test_status::completed));
  BOOST_TEST(ended["a"].worker_id == "w2");
  BOOST_TEST(ended["b"].worker_id == "w2");
  BOOST_TEST(last.requeued_tests == 1u);
  BOOST_TEST(last.completed_tests == 2u);
  BOOST_TEST(last.final_worker_count == 1u);
  caf::anon_send_exit(scheduler, caf::exit_reason::user_shutdown);
  run();
}

BOOST_AUTO_TEST_CASE(a_worker_leaving_cleanly_hands_back_queued_tests) {
  std::map<std::string, assignment> ended;
  scheduler_options so;
  so.finish_when_done = false;
  so.config.prefetch = 3;
  so.on_end = [&](const assignment& a, const attempt_outcome*) {
    ended[a.test_id] = a;
  };
  auto scheduler = spawn_scheduler(sys, so);
  worker_options wo;
  wo.caps = caps_of("w1", 64, 1);
  auto w1 = spawn_worker(sys, scheduler, wo);
  run();
  submit(scheduler, 4, 5);
  // w1 holds all four (1 running, 3 prefetched); then w2 joins, w1 leaves.
  wo.caps = caps_of("w2", 64, 4);
  spawn_worker(sys, scheduler, wo);
  run();
  caf::anon_send(w1, leave_atom::value);
  run();
  advance(30);
  BOOST_REQUIRE(ended.size() == 4u);
  for (auto& [id, a] : ended) {
    BOOST_TEST((a.status == test_status::completed));
    BOOST_TEST(a.worker_id == "w2");
  }
  caf::anon_send_exit(scheduler, caf::exit_reason::user_shutdown);
  run();
}

BOOST_AUTO_TEST_CASE(a_test_that_fits_no_worker_waits_until_one_joins) {
  std::map<std::string, assignment> ended;
  scheduler_options so;
  so.finish_when_done = false;
  so.on_end = [&](const assignment& a, const attempt_outcome*) {
    ended[a.test_id] = a;
  };
  auto scheduler = spawn_scheduler(sys, so);
  worker_options wo;
  wo.caps = caps_of("small", 4, 2);
  spawn_worker(sys, scheduler, wo);
  run();
  test_batch b;
  b.tests.push_back(test_of("big", 16, 1));
  caf::anon_send(scheduler, std::move(b));
  run();
  advance(5);
  BOOST_TEST(ended.empty());
  wo.caps = caps_of("large", 32, 2);
  spawn_worker(sys, scheduler, wo);
  run();
  advance(5);
  BOOST_REQUIRE(ended.count("big") == 1u);
  BOOST_TEST((ended["big"].status == test_status::completed));
  BOOST_TEST(ended["big"].worker_id == "large");
  caf::anon_send_exit(scheduler, caf::exit_reason::user_shutdown);
  run();
}

BOOST_AUTO_TEST_CASE(a_pool_runs_placed_withdrawn_and_lost_tests_once_each) {
  // One actor hosting three one-slot workers, joined while six 10-second
  // tests already wait: the scheduler places on each as it joins, before
  // the pool has its answer. One test is cancelled while it runs, then the
  // pool dies with the rest running or queued; a worker of its own joins
  // and every other test ends there, exactly once.
  std::map<std::string, std::vector<assignment>> ended;
  scheduler_options so;
  so.finish_when_done = false;
  so.config.prefetch = 1;
  so.on_end = [&](const assignment& a, const attempt_outcome*) {
    ended[a.test_id].push_back(a);
  };
  auto scheduler = spawn_scheduler(sys, so);
  submit(scheduler, 6, 10);
  std::vector<uint32_t> slots;
  std::vector<worker_options> pool;
  for (int i = 0; i < 3; ++i) {
    worker_options wo;
    wo.caps = caps_of("p" + std::to_string(i), 8, 1);
    wo.seed = static_cast<uint64_t>(i + 1);
    wo.on_joined = [&slots](uint32_t s) { slots.push_back(s); };
    pool.push_back(std::move(wo));
  }
  auto p = spawn_worker_pool(sys, scheduler, std::move(pool));
  run();
  BOOST_TEST(slots.size() == 3u);
  advance(2);
  BOOST_TEST(ended.empty());
  // Each pool worker runs one and holds one: t0-t5 are all on the pool.
  auto held = [&] {
    uint32_t n = 0;
    bool answered = false;
    // A dummy argument: CAF 0.17 starts a function actor without
    // arguments through a null tuple pointer (UBSan stops the test there).
    sys.spawn(
      [&](caf::event_based_actor* self, int) {
        self->request(p, caf::infinite, status_atom::value)
          .then([&](uint32_t h) {
            n = h;
            answered = true;
          });
      },
      0);
    run();
    BOOST_REQUIRE(answered);
    return n;
  };
  BOOST_TEST(held() == 6u);
  caf::anon_send(scheduler, cancel_atom::value, std::string{"t0"});
  run();
  BOOST_TEST(held() == 5u);
  BOOST_REQUIRE(ended["t0"].size() == 1u);
  BOOST_TEST((ended["t0"][0].status == test_status::cancelled));
  caf::anon_send_exit(p, caf::exit_reason::kill);
  run();
  worker_options wo;
  wo.caps = caps_of("solo", 8, 2);
  spawn_worker(sys, scheduler, wo);
  run();
  advance(60);
  BOOST_REQUIRE(ended.size() == 6u);
  for (auto& [id, as] : ended) {
    BOOST_TEST_INFO("test " << id);
    BOOST_REQUIRE(as.size() == 1u);
    if (id == "t0")
      continue;
    BOOST_TEST((as[0].status == test_status::completed));
    BOOST_TEST(as[0].worker_id == "solo");
  }
  caf::anon_send_exit(scheduler, caf::exit_reason::user_shutdown);
  run();
}

BOOST_AUTO_TEST_CASE(a_pool_leaving_hands_back_its_workers_queued_tests) {
  std::map<std::string, int> ends;
  std::map<std::string, std::string> where;
  scheduler_options so;
  so.finish_when_done = false;
  so.config.prefetch = 3;
  so.on_end = [&](const assignment& a, const attempt_outcome*) {
    ++ends[a.test_id];
    where[a.test_id] = a.worker_id;
  };
  auto scheduler = spawn_scheduler(sys, so);
  std::vector<worker_options> pool(2);
  for (int i = 0; i < 2; ++i)
    pool[i].caps = caps_of("p" + std::to_string(i), 64, 1);
  auto p = spawn_worker_pool(sys, scheduler, std::move(pool));
  run();
  submit(scheduler, 8, 5);
  worker_options wo;
  wo.caps = caps_of("w", 64, 8);
  spawn_worker(sys, scheduler, wo);
  run();
  // Both pool workers leave: the six they hold unstarted go to `w`.
  caf::anon_send(p, leave_atom::value);
  run();
  advance(30);
  BOOST_REQUIRE(ends.size() == 8u);
  int on_w = 0;
  for (auto& [id, n] : ends) {
    BOOST_TEST(n == 1);
    on_w += where[id] == "w";
  }
  BOOST_TEST(on_w >= 6);
  caf::anon_send_exit(scheduler, caf::exit_reason::user_shutdown);
  run();
}

BOOST_AUTO_TEST_SUITE_END()

namespace {

// 30 workers of the default profile and `tests` tests at once, on real
// time at 20x, split in `shards`, `pool_size` workers to an actor,
// invariants checked on every tick, every placement recorded.
simulation_options checked_burst(int tests, int shards, int pool_size) {
  simulation_options o;
  o.workers = 30;
  o.tests = tests;
  o.duration = 2;
  o.burst = true;
  o.time_scale = 20;
  o.shards = shards;
  o.threads = shards;
  o.pool_size = pool_size;
  o.check_invariants = true;
  o.record_placements = true;
  return o;
}

} // namespace

BOOST_AUTO_TEST_CASE(
  pooled_and_one_actor_per_worker_fleets_end_every_test_once) {
  // Pools of 7 (the last one smaller) against an actor per worker, with
  // local queues, rebalancing and speculation on, invariants checked on
  // every tick: on real time with one scheduler and split in two shards,
  // and on virtual time.
  struct mode {
    bool deterministic;
    int shards;
  };
  for (auto [deterministic, shards] :
       {mode{false, 1}, mode{false, 2}, mode{true, 1}})
    for (int pool_size : {1, 7}) {
      auto o = checked_burst(600, shards, pool_size);
      o.deterministic = deterministic;
      o.scheduler.prefetch = 2;
      o.scheduler.speculate = true;
      auto r = run_simulation(o);
      BOOST_TEST_INFO("pool size " << pool_size << ", virtual time "
                                   << deterministic << ", shards " << shards);
      BOOST_TEST(r.violations.empty());
      std::map<std::string, int> ends;
      for (auto& [test, worker, status] : r.placements)
        ++ends[test];
      BOOST_TEST(ends.size() == 600u);
      for (auto& [test, n] : ends)
        BOOST_TEST(n == 1);
      BOOST_TEST(r.document["metrics"]["success_rate"].get<double>() > 0.0);
    }
}

BOOST_AUTO_TEST_CASE(pools_are_sized_by_the_fleet) {
  BOOST_TEST(pool_size_for(1) == 1);
  BOOST_TEST(pool_size_for(500) == 7);
  BOOST_TEST(pool_size_for(5000) == 78);
  BOOST_TEST(pool_size_for(50000) == 256);
}

BOOST_AUTO_TEST_CASE(same_seed_on_virtual_time_gives_identical_placements) {
  simulation_options o;
  o.workers = 12;
  o.tests = 400;
  o.duration = 5;
  o.burst = true;
  o.dynamic = true;
  o.deterministic = true;
  o.record_placements = true;
  o.seed = 42;
  auto a = run_simulation(o);
  auto b = run_simulation(o);
  BOOST_REQUIRE(a.placements.size() == 400u);
  BOOST_TEST((a.placements == b.placements));
  o.seed = 43;
  auto c = run_simulation(o);
  BOOST_TEST((a.placements != c.placements));
}

BOOST_AUTO_TEST_CASE(submitter_scheduler_workers_and_churn_lose_no_test) {
  for (auto strategy : {"round_robin", "least_loaded", "power_of_two"}) {
    simulation_options o;
    o.workers = 30;
    o.tests = 1500;
    o.duration = 10;
    o.burst = true;
    o.dynamic = true;
    o.deterministic = true;
    o.check_invariants = true;
    o.record_placements = true;
    o.scheduler.strategy = strategy;
    auto r = run_simulation(o);
    auto& m = r.document["metrics"];
    BOOST_TEST_INFO("strategy " << strategy);
    BOOST_TEST(r.violations.empty());
    BOOST_TEST(m["total_tests"].get<uint64_t>() == 1500u);
    BOOST_TEST(m["completed_tests"].get<uint64_t>()
                 + m["failed_tests"].get<uint64_t>()
                 + m["cancelled_tests"].get<uint64_t>()
               == 1500u);
    BOOST_TEST(m["success_rate"].get<double>() == 100.0);
    BOOST_TEST(m["pending_tests"].get<uint64_t>() == 0u);
    BOOST_TEST(m["max_memory_reservation"].get<double>() <= 1.0);
    BOOST_TEST(m["max_accelerator_reservation"].get<double>() <= 1.0);
    // Every test ended exactly once.
    std::set<std::string> ids;
    for (auto& p : r.placements)
      ids.insert(std::get<0>(p));
    BOOST_TEST(ids.size() == 1500u);
    BOOST_TEST((r.placements.size() == 1500u));
  }
}

// -- a split scheduler (shards)
// ------------------------------------------------

namespace {

// Checks what every run must show, split or not: each test ended exactly
// once, nothing oversubscribed, the counts add up.
void check_sharded_run(const simulation_result& r, uint64_t tests,
                       uint64_t workers) {
  auto& m = r.document["metrics"];
  BOOST_TEST(r.violations.empty());
  BOOST_TEST(m["total_tests"].get<uint64_t>() == tests, m.dump());
  BOOST_TEST(m["completed_tests"].get<uint64_t>()
               + m["failed_tests"].get<uint64_t>()
               + m["cancelled_tests"].get<uint64_t>()
             == tests);
  BOOST_TEST(m["pending_tests"].get<uint64_t>() == 0u);
  BOOST_TEST(m["final_worker_count"].get<uint64_t>() == workers);
  BOOST_TEST(m["peak_worker_count"].get<uint64_t>() == workers);
  BOOST_TEST(m["max_memory_reservation"].get<double>() <= 1.0);
  BOOST_TEST(m["max_accelerator_reservation"].get<double>() <= 1.0);
  std::set<std::string> ids;
  for (auto& p : r.placements)
    ids.insert(std::get<0>(p));
  BOOST_TEST(ids.size() == tests);
  BOOST_TEST(r.placements.size() == tests);
  // The time series' worker gauge is the sum of every shard's.
  auto& w = r.document["time_series"]["workers"];
  BOOST_REQUIRE(!w.empty());
  BOOST_TEST(w.back()[1].get<double>() == static_cast<double>(workers));
}

} // namespace

BOOST_AUTO_TEST_CASE(a_split_scheduler_ends_every_test_once_within_capacity) {
  // The default profile's mixed CPU/GPU fleet and tests, checked on every
  // tick of every shard, for each kind of strategy, with an actor per
  // worker and with pools of 4.
  for (auto strategy :
       {"round_robin", "least_loaded", "power_of_two", "adaptive", "best_fit"})
    for (int shards : {2, 3})
      for (int pool_size : {1, 4}) {
        auto o = checked_burst(900, shards, pool_size);
        o.scheduler.strategy = strategy;
        auto r = run_simulation(o);
        BOOST_TEST_INFO("strategy " << strategy << ", " << shards
                                    << " shards, pool size " << pool_size);
        check_sharded_run(r, 900, 30);
        BOOST_TEST(r.document["metrics"]["success_rate"].get<double>()
                   == 100.0);
      }
}

BOOST_AUTO_TEST_CASE(an_idle_shard_steals_queued_tests_from_a_busy_one) {
  // Three one-slot workers in two shards: shard 0 has w-0 and w-2, shard 1
  // w-1. Submissions alternate between the shards, so shard 0 runs out
  // first and takes the rest of shard 1's queue. Which tests moved is
  // recomputed from the placements: test t<k> was routed to shard k % 2,
  // and ran on shard (worker index) % 2.
  simulation_options o;
  o.workers = 3;
  o.tests = 120;
  o.duration = 0;
  o.time_scale = 50;
  o.workers_profile.cuda_distribution = {0};
  o.workers_profile.cores_distribution = {1};
  o.tests_profile.duration_distribution = {0.5};
  o.tests_profile.memory_requirements = {0.0};
  o.tests_profile.cuda_requirements = {0};
  o.tests_profile.retries = 0;
  o.shards = 2;
  o.threads = 2;
  // No moves between the workers of one shard (they count as stolen too)
  // and no local queues: every stolen test crossed shards.
  o.scheduler.rebalance = false;
  o.scheduler.prefetch = 0;
  o.check_invariants = true;
  o.record_placements = true;
  auto r = run_simulation(o);
  check_sharded_run(r, 120, 3);
  uint64_t moved = 0;
  size_t on_shard0 = 0;
  for (auto& [test, worker, status] : r.placements) {
    auto k = std::stoull(test.substr(1));
    auto w = std::stoull(worker.substr(2));
    moved += (k % 2) != (w % 2);
    on_shard0 += w % 2 == 0;
  }
  auto& m = r.document["metrics"];
  BOOST_TEST(moved > 0u);
  BOOST_TEST(m["stolen_tests"].get<uint64_t>() == moved);
  // Two workers against one: shard 0 ran well over half.
  BOOST_TEST(on_shard0 > 70u);
}

BOOST_FIXTURE_TEST_CASE(a_shard_ignores_steals_shares_and_stops_from_outsiders,
                        fixture) {
  // Two shards of one group; an actor that is not one of them asks shard
  // 1 for its queue in shard 0's name, hands shard 0 a test, and tells
  // both to finish. None of it has any effect.
  auto group = std::make_shared<shard_group>();
  group->start = sys.clock().now();
  group->capacity.resize(2);
  group->capacity[0].max_memory = group->capacity[1].max_memory = 8;
  bool finished = false;
  group->on_finished
    = [&](uint32_t, const cluster_state&, double) { finished = true; };
  std::array<uint64_t, 2> submitted{}, queued{};
  for (uint32_t i = 0; i < 2; ++i) {
    scheduler_options so;
    so.shards = group;
    so.shard_index = i;
    so.on_tick = [&, i](const cluster_state& c, double) {
      submitted[i] = c.stats().submitted_count();
      queued[i] = c.queued();
    };
    group->members.push_back(spawn_shard(sys, so));
  }
  group->ready = true;
  worker_options wo;
  wo.caps = caps_of("w1", 8, 1);
  spawn_worker(sys, group->members[1], wo);
  run();
  // Straight to shard 1, which keeps what it is sent.
  test_batch b;
  for (int i = 0; i < 6; ++i)
    b.tests.push_back(test_of("t" + std::to_string(i), 1, 10));
  caf::anon_send(caf::actor_cast<scheduler_actor>(group->members[1]),
                 std::move(b));
  run();
  advance(0.5);
  BOOST_REQUIRE(submitted[1] == 6u);
  auto waiting = queued[1];
  BOOST_REQUIRE(waiting > 0u);
  auto rogue = sys.spawn(
    [](caf::event_based_actor* self, std::shared_ptr<shard_group> g) {
      self->send(g->members[1], steal_atom::value, uint32_t{0}, uint64_t{100});
      shard_handover h;
      h.stolen = true;
      h.tests.push_back(test_of("forged", 1, 1));
      h.submitted_at.push_back(0);
      self->send(g->members[0], std::move(h));
    },
    group);
  {
    // A "steal answer" from nobody: only a share of a submission may come
    // without a sender (the run's feeder).
    shard_handover h;
    h.stolen = true;
    h.tests.push_back(test_of("forged-anon", 1, 1));
    caf::anon_send(group->members[0], std::move(h));
  }
  run();
  advance(0.5);
  BOOST_TEST(submitted[0] == 0u);
  BOOST_TEST(submitted[1] == 6u);
  BOOST_TEST(queued[1] == waiting);
  // A stop only the run itself (no sender) may give.
  auto stopper = sys.spawn(
    [](caf::event_based_actor* self, std::shared_ptr<shard_group> g) {
      for (auto& m : g->members)
        self->send(m, finish_atom::value);
    },
    group);
  run();
  advance(0.5);
  BOOST_TEST(!finished);
  caf::anon_send_exit(stopper, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(rogue, caf::exit_reason::user_shutdown);
  for (auto& m : group->members)
    caf::anon_send_exit(m, caf::exit_reason::user_shutdown);
  run();
}

BOOST_AUTO_TEST_CASE(a_split_scheduler_refuses_what_it_cannot_split) {
  simulation_options o;
  o.workers = 4;
  o.shards = 2;
  o.deterministic = true;
  BOOST_CHECK_THROW(run_simulation(o), std::invalid_argument);
  o.deterministic = false;
  o.dynamic = true;
  BOOST_CHECK_THROW(run_simulation(o), std::invalid_argument);
  o.dynamic = false;
  o.shards = 5;
  BOOST_CHECK_THROW(run_simulation(o), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(a_kill_crashes_workers_that_hold_tests) {
  // Four tests on twenty workers: a kill of two random workers would mostly
  // hit idle ones (and requeue nothing); a crash is there to show that what
  // a worker held comes back, so it takes the busiest.
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    simulation_options o;
    o.workers = 20;
    o.tests = 4;
    o.duration = 0.2;
    o.burst = true;
    o.deterministic = true;
    o.check_invariants = true;
    o.seed = seed;
    churn_event kill;
    kill.at = 0.05;
    kill.action = churn_event::kind::kill;
    kill.count = 2;
    o.extra_churn.push_back(kill);
    auto r = run_simulation(o);
    auto& m = r.document["metrics"];
    BOOST_TEST_INFO("seed " << seed);
    BOOST_TEST(r.violations.empty());
    BOOST_TEST(m["requeued_tests"].get<uint64_t>() >= 2u, m.dump());
    BOOST_TEST(m["completed_tests"].get<uint64_t>() == 4u);
  }
}

BOOST_AUTO_TEST_CASE(a_feeder_submits_the_runs_tests_and_each_starts_once) {
  // The benchmark's open-loop load: a thread outside the actors submits,
  // and every test it sent is seen starting on a worker exactly once; split
  // in two shards, the feeder hands each shard its share itself.
  for (int shards : {1, 2}) {
    BOOST_TEST_INFO_SCOPE("shards " << shards);
    simulation_options o;
    o.threads = shards;
    o.shards = shards;
    o.workers = 8;
    o.tests = 0;
    o.duration = 0.1;
    o.time_scale = 1000;
    o.record_placements = true;
    std::mutex mtx;
    std::map<std::string, int> starts;
    o.on_test_start = [&](const std::string& id) {
      std::lock_guard<std::mutex> guard{mtx};
      ++starts[id];
    };
    o.feeder
      = [&](const std::function<void(std::vector<test_requirements>)>& submit) {
          rng draw{7};
          for (uint64_t wave = 0; wave < 10; ++wave) {
            std::vector<test_requirements> batch;
            for (uint64_t k = 0; k < 30; ++k)
              batch.push_back(draw_test(o.tests_profile, draw, wave * 30 + k));
            submit(std::move(batch));
          }
        };
    auto r = run_simulation(o);
    auto& m = r.document["metrics"];
    BOOST_TEST(m["completed_tests"].get<uint64_t>()
                 + m["failed_tests"].get<uint64_t>()
               == 300u);
    BOOST_TEST(r.placements.size() == 300u);
    BOOST_TEST(starts.size() == 300u);
    for (auto& [id, n] : starts)
      BOOST_TEST(n == 1, id);
    if (shards == 2) {
      // Both shards' workers ran some: the shares went to both.
      std::set<std::string> workers;
      for (auto& p : r.placements)
        workers.insert(std::get<1>(p));
      BOOST_TEST(workers.size() > 4u);
    }
  }
}

BOOST_AUTO_TEST_CASE(
  busy_polling_sets_cafs_polls_and_a_polling_run_loses_nothing) {
  caf::actor_system_config cfg;
  configure_system(cfg, 1, false, "stealing", 250);
  BOOST_TEST(
    caf::get_or(cfg, "work-stealing.aggressive-poll-attempts", size_t{0})
    == busy_polls_for(250));
  BOOST_TEST(busy_polls_for(250) > busy_polls_for(1));
  // Without busy polling the key is not set: CAF's own short spin.
  caf::actor_system_config plain;
  configure_system(plain, 1, false, "stealing");
  BOOST_TEST(
    caf::get_or(plain, "work-stealing.aggressive-poll-attempts", size_t{12345})
    == size_t{12345});
  // One scheduler thread, and two shards of one thread each: every test
  // ends once while the threads poll.
  for (int shards : {1, 2}) {
    simulation_options o;
    o.workers = 16;
    o.tests = 400;
    o.duration = 0.05;
    o.time_scale = 1000;
    o.threads = shards;
    o.shards = shards;
    o.busy_poll_us = 200;
    o.record_placements = true;
    auto r = run_simulation(o);
    auto& m = r.document["metrics"];
    BOOST_TEST_INFO("shards " << shards);
    BOOST_TEST(m["completed_tests"].get<uint64_t>()
                 + m["failed_tests"].get<uint64_t>()
               == 400u);
    std::set<std::string> ids;
    for (auto& p : r.placements)
      ids.insert(std::get<0>(p));
    BOOST_TEST(r.placements.size() == 400u);
    BOOST_TEST(ids.size() == 400u);
  }
}

BOOST_AUTO_TEST_CASE(busy_polling_is_refused_where_no_thread_would_poll) {
  auto refused = [](simulation_options o, const std::string& says) {
    o.workers = 4;
    o.tests = 10;
    o.duration = 0.01;
    try {
      run_simulation(o);
    } catch (const std::invalid_argument& e) {
      BOOST_TEST(std::string{e.what()}.find(says) != std::string::npos,
                 e.what());
      return;
    }
    BOOST_TEST(false, "not refused: " << says);
  };
  simulation_options virtual_time;
  virtual_time.deterministic = true;
  virtual_time.busy_poll_us = 100;
  refused(virtual_time, "needs real time");
  // Two threads in one actor system: work sharing, which never polls.
  simulation_options shared;
  shared.threads = 2;
  shared.shards = 1;
  shared.busy_poll_us = 100;
  refused(shared, "one thread per shard");
  simulation_options negative;
  negative.busy_poll_us = -1;
  refused(negative, "within 0-1000000");
}

BOOST_AUTO_TEST_CASE(a_real_time_run_writes_every_reference_field) {
  simulation_options o;
  o.workers = 20;
  o.tests = 200;
  o.duration = 1;
  o.time_scale = 4;
  auto r = run_simulation(o);
  auto& d = r.document;
  for (auto key : {"workers", "tests", "duration", "burst_mode",
                   "dynamic_workers", "timestamp"})
    BOOST_TEST(d["configuration"].contains(key), key);
  for (auto key : {"total_tests",
                   "success_rate",
                   "avg_latency",
                   "max_latency",
                   "min_latency",
                   "peak_throughput",
                   "avg_throughput",
                   "worker_assignment_stddev",
                   "worker_assignment_range",
                   "worker_utilization",
                   "avg_scheduling_attempts",
                   "final_worker_count",
                   "pending_tests",
                   "assigned_tests",
                   "p50_latency",
                   "p95_latency",
                   "p99_latency",
                   "completed_tests",
                   "failed_tests",
                   "retried_tests"})
    BOOST_TEST(d["metrics"].contains(key), key);
  BOOST_TEST(d["time_series"]["throughput"].size() > 0u);
  BOOST_TEST(d["time_series"]["latency"].size() > 0u);
  BOOST_TEST(d["metrics"]["completed_tests"].get<uint64_t>() == 200u);
  BOOST_TEST(d["metrics"]["peak_throughput"].get<double>() > 0);
}

BOOST_AUTO_TEST_CASE(load_balancer_service_runs_the_reference_api_flow) {
  load_balancer_service lb;
  std::vector<std::string> done;
  std::mutex mtx;
  lb.on_completion([&](const assignment& a, const test_result& r) {
    std::lock_guard<std::mutex> guard{mtx};
    BOOST_CHECK(r.success);
    done.push_back(a.test_id);
  });
  lb.start();
  worker_capabilities caps = caps_of("worker1", 14.5, 8, 1);
  lb.register_worker("worker1", caps);
  BOOST_CHECK_THROW(lb.register_worker("worker1", caps), std::invalid_argument);
  worker_load load;
  load.cpu_utilization = 25;
  lb.update_worker_load("worker1", load);
  for (int i = 0; i < 10; ++i) {
    auto t = test_of("test" + std::to_string(i), 4, 0);
    if (i % 2 == 0)
      t.required_accelerators = {{"cuda", 1}};
    lb.submit_test(t);
  }
  auto bad = test_of("bad", 1, 0);
  bad.priority = 0;
  BOOST_CHECK_THROW(lb.submit_test(bad), std::invalid_argument);
  // Never more than 14.5 GB (three 4 GB tests) nor one GPU test at once.
  for (int round = 0; round < 200; ++round) {
    int held_mem = 0;
    int held_gpu = 0;
    std::vector<std::string> todo;
    for (auto& a : lb.get_assignments()) {
      if (a.status == test_status::assigned) {
        held_mem += 4;
        auto idx = std::stoi(a.test_id.substr(4));
        held_gpu += idx % 2 == 0 ? 1 : 0;
        todo.push_back(a.test_id);
      }
    }
    BOOST_TEST(held_mem <= 14);
    BOOST_TEST(held_gpu <= 1);
    for (auto& id : todo) {
      test_result r;
      r.success = true;
      r.execution_time = 0.01;
      BOOST_TEST(lb.complete_test(id, r));
    }
    if (lb.wait_idle(0.02))
      break;
  }
  BOOST_TEST(lb.wait_idle(5));
  {
    // Not held across stop(): a late callback would wait for it forever.
    std::lock_guard<std::mutex> guard{mtx};
    BOOST_TEST(done.size() == 10u);
  }
  lb.stop();
}
