#define BOOST_TEST_MODULE rebalance
#include <boost/test/unit_test.hpp>

// Rebalancing: migration on the rebalance timer, stealing by idle workers,
// the revoke protocol that keeps every test running exactly once, per-cycle
// limits and cool-downs. Core-level cases drive `cluster_state` directly and
// play the workers' part by hand; one actor-level case runs the real
// scheduler and simulated workers on CAF's deterministic test coordinator.

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/send.hpp>

#include "actors/messages.hpp"
#include "actors/scheduler.hpp"
#include "actors/system.hpp"
#include "actors/worker.hpp"
#include "runtime/cluster_state.hpp"
#include "runtime/config.hpp"
#include "runtime/rng.hpp"

using namespace alb;

namespace {

constexpr auto npos = cluster_state::npos;

worker_capabilities make_worker(std::string id, int slots = 1,
                                double memory = 64) {
  worker_capabilities w;
  w.worker_id = std::move(id);
  w.available_memory = memory;
  w.max_concurrent_tests = slots;
  w.supported_backends = {"cpu"};
  return w;
}

test_requirements make_test(std::string id, double memory = 1) {
  test_requirements t;
  t.test_id = std::move(id);
  t.minimum_memory = memory;
  t.expected_duration = 1;
  return t;
}

attempt_outcome passed(double exec = 1) {
  attempt_outcome o;
  o.exec_seconds = exec;
  return o;
}

scheduler_config rebalancing(int prefetch = 2) {
  scheduler_config cfg;
  cfg.prefetch = prefetch;
  cfg.rebalance = true;
  cfg.rebalance_interval = 1;
  cfg.overload_threshold = 0.8;
  cfg.idle_threshold = 0.3;
  cfg.max_moves_per_cycle = 4;
  cfg.rebalance_cooldown = 2;
  return cfg;
}

/// One revoke the core asked for.
struct revoke {
  uint32_t slot = npos;
  test_handle handle;
};

/// A cluster plus bookkeeping of placements, revokes and ends; checks the
/// invariants after every step.
struct fixture {
  explicit fixture(scheduler_config cfg = rebalancing()) : c(std::move(cfg)) {
    c.set_end_listener([this](const assignment& a, const attempt_outcome*) {
      ++ends[a.test_id];
      last_worker[a.test_id] = a.worker_id;
    });
  }

  void check() { BOOST_TEST(c.check_invariants() == ""); }

  uint32_t add(worker_capabilities caps, double now = 0) {
    auto slot = c.add_worker(std::move(caps), now);
    check();
    return slot;
  }

  void submit(const std::string& id, double now = 0) {
    BOOST_REQUIRE(c.submit(make_test(id), now)
                  == cluster_state::submit_status::accepted);
  }

  /// Dispatches and plays the flush: placements reach their workers.
  void dispatch(double now = 0) {
    c.dispatch(now);
    drain();
  }

  void drain() {
    c.drain_outbox([this](uint32_t slot, std::vector<test_handle>& hs) {
      for (auto& h : hs)
        placed[c.record(h).req.test_id] = std::make_pair(slot, h);
    });
    check();
  }

  std::vector<revoke> revokes() {
    std::vector<revoke> out;
    c.drain_revokes([&](uint32_t slot, std::vector<test_handle>& hs) {
      for (auto& h : hs)
        out.push_back(revoke{slot, h});
    });
    return out;
  }

  std::string id_of(test_handle h) const { return c.record(h).req.test_id; }

  bool answer(const revoke& r, bool given_back, double now) {
    auto moved = c.revoked(r.slot, r.handle, given_back, now);
    drain();
    return moved;
  }

  bool finish(const std::string& id, double now) {
    auto [slot, h] = placed.at(id);
    auto ok = c.complete(slot, h, passed(), now);
    check();
    return ok;
  }

  uint64_t migrated() const {
    return c.stats().metrics(0, 0, 0).migrated_tests;
  }

  uint64_t stolen() const { return c.stats().metrics(0, 0, 0).stolen_tests; }

  cluster_state c;
  std::map<std::string, std::pair<uint32_t, test_handle>> placed;
  std::map<std::string, int> ends;
  std::map<std::string, std::string> last_worker;
};

} // namespace

BOOST_AUTO_TEST_CASE(migration_moves_a_queued_test_to_an_idle_worker) {
  fixture f;
  auto a = f.add(make_worker("a"));
  for (auto id : {"t0", "t1", "t2"})
    f.submit(id);
  f.dispatch();
  // a: one slot and two prefetched, load 1; then b joins idle.
  BOOST_TEST(f.c.worker(a).held.size() == 3u);
  BOOST_TEST(f.c.queued_on(a) == 2);
  auto b = f.add(make_worker("b"));
  f.c.tick(0.5);
  BOOST_TEST(f.revokes().empty()); // not due before rebalance_interval
  f.c.tick(1.0);
  auto rs = f.revokes();
  // b has one slot, so it takes one; the latest placement is the one a
  // has surely not started.
  BOOST_REQUIRE(rs.size() == 1u);
  BOOST_TEST(rs[0].slot == a);
  BOOST_TEST(f.id_of(rs[0].handle) == "t2");
  BOOST_TEST(f.c.moves_in_flight() == 1u);
  f.check();
  // Nothing moves before the worker answers.
  BOOST_TEST(f.c.worker(a).held.size() == 3u);
  BOOST_TEST(f.answer(rs[0], true, 1.1));
  BOOST_TEST(f.placed["t2"].first == b);
  BOOST_TEST(f.c.worker(a).held.size() == 2u);
  BOOST_TEST(f.c.worker(b).held.size() == 1u);
  BOOST_TEST(f.migrated() == 1u);
  BOOST_TEST(f.stolen() == 0u);
  BOOST_TEST(f.c.moves_in_flight() == 0u);
  // The moved test is the same attempt, not a new one.
  BOOST_TEST(f.c.record(f.placed["t2"].second).attempts == 1);
  // Each test knows how it moved (its outcome says so).
  BOOST_TEST(f.c.record(f.placed["t2"].second).migrated == 1);
  BOOST_TEST(f.c.record(f.placed["t2"].second).stolen == 0);
  BOOST_TEST(f.c.record(f.placed["t1"].second).migrated == 0);
  for (auto& v : f.c.assignments())
    BOOST_TEST(v.migrated == (v.test_id == "t2" ? 1 : 0));
  for (auto id : {"t0", "t1", "t2"})
    BOOST_TEST(f.finish(id, 2));
  BOOST_TEST(f.ends.size() == 3u);
  for (auto& [id, n] : f.ends)
    BOOST_TEST(n == 1);
  BOOST_TEST(f.last_worker["t2"] == "b");
}

BOOST_AUTO_TEST_CASE(moves_per_cycle_are_limited) {
  auto cfg = rebalancing(8);
  cfg.max_moves_per_cycle = 2;
  cfg.overload_threshold = 0.5;
  fixture f{cfg};
  auto a = f.add(make_worker("a"));
  for (int i = 0; i < 9; ++i)
    f.submit("t" + std::to_string(i));
  f.dispatch();
  BOOST_TEST(f.c.queued_on(a) == 8);
  for (int i = 0; i < 6; ++i)
    f.add(make_worker("idle" + std::to_string(i)));
  std::vector<size_t> per_cycle;
  for (double now = 1; now <= 4; now += 1) {
    f.c.tick(now);
    auto rs = f.revokes();
    per_cycle.push_back(rs.size());
    for (auto& r : rs)
      BOOST_TEST(f.answer(r, true, now));
    // Stealing draws from the same budget: none left in this cycle.
    f.c.steal(f.c.live_workers().back(), now);
    BOOST_TEST(f.revokes().empty());
  }
  // Six idle workers and eight queued tests, but two moves per cycle; the
  // fourth cycle finds a no longer overloaded (3/9 held).
  BOOST_TEST((per_cycle == std::vector<size_t>{2, 2, 2, 0}));
  BOOST_TEST(f.migrated() == 6u);
  BOOST_TEST(f.c.worker(a).held.size() == 3u);
}

BOOST_AUTO_TEST_CASE(cooldown_prevents_moving_back_and_forth) {
  fixture f;
  auto a = f.add(make_worker("a"));
  for (auto id : {"t0", "t1", "t2"})
    f.submit(id);
  f.dispatch();
  auto b = f.add(make_worker("b"));
  f.c.tick(1);
  auto rs = f.revokes();
  BOOST_REQUIRE(rs.size() == 1u);
  BOOST_TEST(f.answer(rs[0], true, 1));
  // a drains; then it looks busy from outside, so new tests pile up on b.
  BOOST_TEST(f.finish("t0", 1.2));
  BOOST_TEST(f.finish("t1", 1.3));
  worker_load busy;
  busy.cpu_utilization = 100;
  f.c.update_load(a, busy);
  for (auto id : {"u0", "u1"})
    f.submit(id, 1.4);
  f.dispatch(1.4);
  BOOST_TEST(f.c.worker(b).held.size() == 3u);
  BOOST_TEST(f.c.queued_on(b) == 2);
  f.c.update_load(a, worker_load{});
  BOOST_TEST(f.c.load_of(a) < 0.3f);
  // b overloaded, a idle, but b just received from a and a just gave to
  // b: no move back within the cool-down.
  f.c.tick(2);
  BOOST_TEST(f.revokes().empty());
  f.c.steal(a, 2.5);
  BOOST_TEST(f.revokes().empty());
  // Once the cool-down passed, it may move again.
  f.c.tick(3);
  rs = f.revokes();
  BOOST_REQUIRE(rs.size() == 1u);
  BOOST_TEST(rs[0].slot == b);
  BOOST_TEST(f.answer(rs[0], true, 3));
  BOOST_TEST(f.migrated() == 2u);
}

BOOST_AUTO_TEST_CASE(a_started_test_is_never_moved) {
  fixture f;
  auto a = f.add(make_worker("a"));
  for (auto id : {"t0", "t1", "t2"})
    f.submit(id);
  f.dispatch();
  // The worker reported t0 and (out of order) t2 started.
  f.c.started(a, f.placed["t0"].second, 0.1);
  f.c.started(a, f.placed["t2"].second, 0.1);
  f.add(make_worker("b"));
  f.add(make_worker("c"));
  f.c.tick(1);
  auto rs = f.revokes();
  BOOST_REQUIRE(rs.size() == 1u);
  BOOST_TEST(f.id_of(rs[0].handle) == "t1");
  BOOST_TEST(f.answer(rs[0], true, 1));
  // Only started tests remain on a: later cycles never touch them.
  f.c.tick(4);
  BOOST_TEST(f.revokes().empty());
  BOOST_TEST(f.placed["t0"].first == a);
  BOOST_TEST(f.placed["t2"].first == a);
}

BOOST_AUTO_TEST_CASE(revoke_race_moves_nothing_and_loses_nothing) {
  fixture f;
  auto a = f.add(make_worker("a"));
  for (auto id : {"t0", "t1", "t2"})
    f.submit(id);
  f.dispatch();
  auto b = f.add(make_worker("b"));
  f.c.tick(1);
  auto rs = f.revokes();
  BOOST_REQUIRE(rs.size() == 1u);
  auto victim = f.id_of(rs[0].handle);
  // The worker had started it when the revoke arrived: it keeps it.
  BOOST_TEST(!f.answer(rs[0], false, 1.1));
  BOOST_TEST(f.placed[victim].first == a);
  BOOST_TEST(f.c.worker(b).held.empty());
  BOOST_TEST(f.c.worker(a).held.size() == 3u);
  BOOST_TEST(f.migrated() == 0u);
  BOOST_TEST(f.c.moves_in_flight() == 0u);
  BOOST_TEST((f.c.record(rs[0].handle).status == test_status::running));
  // A move that did not happen is not counted on the test either.
  BOOST_TEST(f.c.record(rs[0].handle).migrated == 0);
  // Its report still counts (same placement); a repeated answer is stale.
  BOOST_TEST(f.finish(victim, 2));
  BOOST_TEST(!f.answer(rs[0], true, 2.1));
  BOOST_TEST(f.c.worker(b).held.empty());
  // Second race: the report overtakes the answer. First pile a third test
  // on a again (b looks busy meanwhile).
  worker_load busy;
  busy.cpu_utilization = 100;
  f.c.update_load(b, busy);
  f.submit("t3", 3);
  f.dispatch(3);
  BOOST_TEST(f.placed["t3"].first == a);
  f.c.update_load(b, worker_load{});
  f.c.tick(4);
  rs = f.revokes();
  BOOST_REQUIRE(rs.size() == 1u);
  victim = f.id_of(rs[0].handle);
  BOOST_TEST(f.finish(victim, 4.1));
  BOOST_TEST(!f.answer(rs[0], false, 4.2));
  BOOST_TEST(f.c.moves_in_flight() == 0u);
  for (auto& [id, p] : std::map(f.placed))
    if (f.ends.count(id) == 0)
      BOOST_TEST(f.finish(id, 5));
  BOOST_TEST(f.ends.size() == 4u);
  for (auto& [id, n] : f.ends)
    BOOST_TEST(n == 1);
  BOOST_TEST(f.c.open_tests() == 0u);
}

BOOST_AUTO_TEST_CASE(target_gone_or_full_puts_the_test_back_in_the_queue) {
  fixture f;
  auto a = f.add(make_worker("a"));
  for (auto id : {"t0", "t1", "t2"})
    f.submit(id);
  f.dispatch();
  auto b = f.add(make_worker("b"));
  f.c.tick(1);
  auto rs = f.revokes();
  BOOST_REQUIRE(rs.size() == 1u);
  f.c.remove_worker(b, true, 1.05);
  f.check();
  BOOST_TEST(f.answer(rs[0], true, 1.1));
  // Released from a and waiting for the next dispatch, never lost.
  BOOST_TEST(f.c.queued() == 1u);
  BOOST_TEST(f.c.worker(a).held.size() == 2u);
  f.dispatch(1.2);
  BOOST_TEST(f.c.worker(a).held.size() == 3u);
  BOOST_TEST(f.c.open_tests() == 3u);
}

BOOST_AUTO_TEST_CASE(an_idle_worker_steals_from_the_busiest) {
  fixture f;
  auto a = f.add(make_worker("a"));
  for (auto id : {"t0", "t1", "t2"})
    f.submit(id);
  f.dispatch();
  auto b = f.add(make_worker("b"));
  // Not while tests wait in the scheduler's own queue: dispatch serves b.
  f.submit("w0");
  f.c.steal(b, 0.2);
  BOOST_TEST(f.revokes().empty());
  f.dispatch(0.2);
  BOOST_TEST(f.placed["w0"].first == b);
  // Not while b is busy.
  f.c.steal(b, 0.3);
  BOOST_TEST(f.revokes().empty());
  BOOST_TEST(f.finish("w0", 0.4));
  // b reported and has nothing queued: it steals a's latest placement.
  f.c.steal(b, 0.4);
  auto rs = f.revokes();
  BOOST_REQUIRE(rs.size() == 1u);
  BOOST_TEST(rs[0].slot == a);
  BOOST_TEST(f.id_of(rs[0].handle) == "t2");
  BOOST_TEST(f.answer(rs[0], true, 0.5));
  BOOST_TEST(f.placed["t2"].first == b);
  BOOST_TEST(f.stolen() == 1u);
  BOOST_TEST(f.migrated() == 0u);
  BOOST_TEST(f.c.record(f.placed["t2"].second).stolen == 1);
  BOOST_TEST(f.c.record(f.placed["t2"].second).migrated == 0);
  BOOST_TEST(f.c.record(f.placed["t1"].second).stolen == 0);
}

BOOST_AUTO_TEST_CASE(rebalance_off_moves_nothing) {
  auto cfg = rebalancing();
  cfg.rebalance = false;
  fixture f{cfg};
  f.add(make_worker("a"));
  for (auto id : {"t0", "t1", "t2"})
    f.submit(id);
  f.dispatch();
  auto b = f.add(make_worker("b"));
  f.c.tick(1);
  f.c.steal(b, 1);
  BOOST_TEST(f.revokes().empty());
}

BOOST_AUTO_TEST_CASE(config_keys_are_read_and_checked) {
  auto cfg = load_config_from_string(
    "[scheduler]\nrebalance = false\nrebalance_interval = 0.5\n"
    "overload_threshold = 0.9\nidle_threshold = 0.1\n"
    "max_moves_per_cycle = 7\nrebalance_cooldown = 3\n",
    "inline.toml", config_format::toml);
  BOOST_TEST(!cfg.scheduler.rebalance);
  BOOST_TEST(cfg.scheduler.rebalance_interval == 0.5);
  BOOST_TEST(cfg.scheduler.overload_threshold == 0.9);
  BOOST_TEST(cfg.scheduler.idle_threshold == 0.1);
  BOOST_TEST(cfg.scheduler.max_moves_per_cycle == 7);
  BOOST_TEST(cfg.scheduler.rebalance_cooldown == 3);
  scheduler_config bad;
  bad.idle_threshold = 0.9;
  BOOST_TEST(bad.validate().find("scheduler.idle_threshold") == 0u);
  bad = scheduler_config{};
  bad.rebalance_interval = 0;
  BOOST_TEST(bad.validate().find("scheduler.rebalance_interval") == 0u);
  BOOST_CHECK_THROW(load_config_from_string("[scheduler]\n"
                                            "idle_threshold = 0.95\n",
                                            "bad.toml", config_format::toml),
                    config_error);
}

// A small simulated cluster with FIFO local queues, heterogeneous speeds and
// message delays, so revokes race with starts and reports. Every test must
// end exactly once and run exactly once.
BOOST_AUTO_TEST_CASE(every_test_ends_exactly_once_in_a_random_run) {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    auto cfg = rebalancing();
    cfg.max_moves_per_cycle = 8;
    cfg.rebalance_cooldown = 0.5;
    fixture f{cfg};
    rng r;
    r.reseed(seed);
    struct sim_worker {
      uint32_t slot = npos;
      int slots = 1;
      double speed = 1;
      std::deque<test_handle> queue;
      std::vector<std::pair<double, test_handle>> running;
    };
    std::vector<sim_worker> ws;
    std::map<uint32_t, size_t> by_slot;
    for (int i = 0; i < 8; ++i) {
      sim_worker w;
      w.slots = 1 + i % 3;
      w.speed = i < 3 ? 0.2 : 1.5;
      w.slot = f.add(make_worker("w" + std::to_string(i), w.slots));
      by_slot[w.slot] = ws.size();
      ws.push_back(w);
    }
    // Messages in flight, FIFO per direction per worker (as CAF orders
    // messages between two actors).
    struct message {
      double at = 0;
      int kind = 0; // 0 placement, 1 revoke, 2 revoke answer, 3 report
      uint32_t slot = npos;
      test_handle h;
      bool flag = false;
    };
    std::map<uint32_t, std::deque<message>> to_worker, to_sched;
    std::map<std::string, int> runs;
    auto send = [&](std::deque<message>& q, message m, double now) {
      m.at = std::max(now + r.uniform(0, 0.15), q.empty() ? 0 : q.back().at);
      q.push_back(m);
    };
    auto flush = [&](double now) {
      f.c.drain_outbox([&](uint32_t slot, std::vector<test_handle>& hs) {
        for (auto h : hs)
          send(to_worker[slot], message{0, 0, slot, h, false}, now);
      });
      f.c.drain_revokes([&](uint32_t slot, std::vector<test_handle>& hs) {
        for (auto h : hs)
          send(to_worker[slot], message{0, 1, slot, h, false}, now);
      });
    };
    const int total = 300;
    int submitted = 0;
    double now = 0;
    for (int step = 0;
         step < 20000 && (submitted < total || f.c.open_tests() > 0); ++step) {
      now += 0.05;
      for (int k = 0; k < 6 && submitted < total; ++k) {
        f.submit("t" + std::to_string(submitted++), now);
      }
      // Workers: messages, finishes, starts.
      for (auto& w : ws) {
        auto& in = to_worker[w.slot];
        while (!in.empty() && in.front().at <= now) {
          auto m = in.front();
          in.pop_front();
          if (m.kind == 0) {
            w.queue.push_back(m.h);
          } else {
            auto it = std::find_if(
              w.queue.begin(), w.queue.end(), [&](test_handle q) {
                return q.ref == m.h.ref && q.gen == m.h.gen;
              });
            bool found = it != w.queue.end();
            if (found)
              w.queue.erase(it);
            send(to_sched[w.slot], message{0, 2, w.slot, m.h, found}, now);
          }
        }
        for (size_t i = 0; i < w.running.size();) {
          if (w.running[i].first <= now) {
            send(to_sched[w.slot],
                 message{0, 3, w.slot, w.running[i].second, true}, now);
            w.running[i] = w.running.back();
            w.running.pop_back();
          } else {
            ++i;
          }
        }
        while (!w.queue.empty()
               && static_cast<int>(w.running.size()) < w.slots) {
          auto h = w.queue.front();
          w.queue.pop_front();
          ++runs[f.id_of(h)];
          w.running.emplace_back(now + r.uniform(0.1, 0.5) / w.speed, h);
        }
      }
      // Scheduler: answers and reports, then its periodic work.
      for (auto& [slot, in] : to_sched) {
        bool reported = false;
        while (!in.empty() && in.front().at <= now) {
          auto m = in.front();
          in.pop_front();
          if (m.kind == 2) {
            f.c.revoked(slot, m.h, m.flag, now);
          } else {
            auto exec = 0.3;
            BOOST_TEST(f.c.complete(slot, m.h, passed(exec), now));
            reported = true;
          }
          f.check();
        }
        if (reported) {
          f.c.refill(slot, now);
          f.c.steal(slot, now);
        }
      }
      f.c.dispatch(now);
      f.c.tick(now);
      flush(now);
      f.check();
    }
    BOOST_TEST(f.c.open_tests() == 0u);
    BOOST_TEST(f.ends.size() == static_cast<size_t>(total));
    for (auto& [id, n] : f.ends)
      BOOST_TEST(n == 1, id << " ended " << n << " times");
    for (auto& [id, n] : runs)
      BOOST_TEST(n == 1, id << " ran " << n << " times");
    BOOST_TEST(f.migrated() + f.stolen() > 0u);
    BOOST_TEST_MESSAGE("seed " << seed << ": migrated " << f.migrated()
                               << ", stolen " << f.stolen());
  }
}

// -- actor level --------------------------------------------------------------

namespace {

struct config_holder {
  caf::actor_system_config cfg;
  config_holder() { configure_system(cfg, 1, true); }
};

struct actor_fixture : config_holder {
  caf::actor_system sys{cfg};
  caf::scheduler::test_coordinator& sched
    = dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());

  void run() { sched.run(); }

  void advance(double seconds) {
    auto step = std::chrono::duration_cast<caf::timespan>(
      std::chrono::duration<double>(0.05));
    for (double t = 0; t < seconds; t += 0.05) {
      sched.advance_time(step);
      sched.run();
    }
  }
};

/// Counts the rebalancing hooks.
struct counting_observer : scheduler_observer {
  int migrated = 0;
  int stolen = 0;
  void on_migrated() override { ++migrated; }
  void on_stolen() override { ++stolen; }
};

} // namespace

BOOST_FIXTURE_TEST_CASE(scheduler_migrates_queued_tests_between_workers,
                        actor_fixture) {
  std::map<std::string, int> ends;
  std::map<std::string, std::string> where;
  counting_observer obs;
  std::string violation;
  scheduler_options so;
  so.finish_when_done = false;
  so.config = rebalancing();
  so.observer = &obs;
  so.check_invariants = true;
  so.on_violation = [&](const std::string& e) { violation = e; };
  so.on_end = [&](const assignment& a, const attempt_outcome*) {
    ++ends[a.test_id];
    where[a.test_id] = a.worker_id;
  };
  auto scheduler = spawn_scheduler(sys, so);
  worker_options wo;
  wo.caps = make_worker("a");
  spawn_worker(sys, scheduler, wo);
  run();
  // Three 5-second tests on a one-slot worker: one runs, two wait there.
  test_batch b;
  for (auto id : {"t0", "t1", "t2"}) {
    auto t = make_test(id);
    t.expected_duration = 5;
    b.tests.push_back(t);
  }
  caf::anon_send(scheduler, std::move(b));
  run();
  wo.caps = make_worker("b");
  spawn_worker(sys, scheduler, wo);
  run();
  advance(30);
  BOOST_TEST(violation == "");
  BOOST_REQUIRE(ends.size() == 3u);
  for (auto& [id, n] : ends)
    BOOST_TEST(n == 1);
  // The rebalance timer moved the latest placement to the idle worker.
  BOOST_TEST(obs.migrated >= 1);
  BOOST_TEST(where["t2"] == "b");
  BOOST_TEST(where["t0"] == "a");
  caf::anon_send_exit(scheduler, caf::exit_reason::user_shutdown);
  run();
}
