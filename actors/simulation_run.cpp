#include "actors/simulation_run.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/send.hpp>

#include "actors/churn.hpp"
#include "actors/recorder.hpp"
#include "actors/scheduler.hpp"
#include "actors/submitter.hpp"
#include "actors/system.hpp"
#include "actors/worker.hpp"

namespace alb {

namespace {

// Shared between the scheduler's thread (writer) and main (reader).
struct progress_cell {
  std::atomic<double> elapsed{0};
  std::atomic<uint64_t> submitted{0};
  std::atomic<uint64_t> completed{0};
  std::atomic<uint64_t> failed{0};
  std::atomic<uint64_t> waiting{0};
  std::atomic<uint64_t> in_flight{0};
  std::atomic<uint64_t> workers{0};

  run_progress load() const {
    run_progress p;
    p.elapsed = elapsed.load(std::memory_order_relaxed);
    p.submitted = submitted.load(std::memory_order_relaxed);
    p.completed = completed.load(std::memory_order_relaxed);
    p.failed = failed.load(std::memory_order_relaxed);
    p.waiting = waiting.load(std::memory_order_relaxed);
    p.in_flight = in_flight.load(std::memory_order_relaxed);
    p.workers = workers.load(std::memory_order_relaxed);
    return p;
  }
};

double auto_bucket(double duration) {
  // About a hundred points for the run, never finer than 0.1 s.
  return std::clamp(duration / 100.0, 0.1, 5.0);
}

} // namespace

run_seeds plan_run(const simulation_options& opts) {
  run_seeds out;
  rng seeds{opts.seed};
  // Plans are drawn up front so the run depends on the seed alone.
  out.plan = plan_submissions(opts.tests, opts.duration, opts.burst, seeds);
  out.plan.insert(out.plan.end(), opts.extra_waves.begin(),
                  opts.extra_waves.end());
  if (opts.dynamic)
    out.script = plan_churn(opts.duration, opts.workers, seeds);
  out.script.insert(out.script.end(), opts.extra_churn.begin(),
                    opts.extra_churn.end());
  out.scheduler_seed = seeds.next();
  out.fleet_seed = seeds.next();
  if (!out.script.empty())
    out.churn_seed = seeds.next();
  out.test_seed = seeds.next();
  // A separate test seed draws other tests for the same fleet.
  if (opts.test_seed != 0)
    out.test_seed = rng{opts.test_seed}.next();
  return out;
}

void draw_fleet(
  const simulation_options& opts, uint64_t fleet_seed,
  const std::function<void(worker_capabilities&&, uint64_t)>& take) {
  rng draw{fleet_seed};
  for (int i = 0; i < opts.workers; ++i) {
    auto caps
      = draw_worker(opts.workers_profile, draw, "w-" + std::to_string(i));
    auto seed = draw.next();
    take(std::move(caps), seed);
  }
}

uint64_t jitter_seed_of(const run_seeds& seeds) {
  // Never 0 (which would mean per-worker draws).
  return (seeds.test_seed ^ 0x3c6ef372fe94f82bull) | 1;
}

simulation_instance draw_instance(const simulation_options& opts) {
  simulation_instance out;
  auto seeded = plan_run(opts);
  draw_fleet(opts, seeded.fleet_seed,
             [&](worker_capabilities&& caps, uint64_t) {
               out.workers.push_back(std::move(caps));
             });
  // The submitter's order: waves by time (stable), tests numbered in it.
  auto plan = seeded.plan;
  std::stable_sort(plan.begin(), plan.end(),
                   [](auto& a, auto& b) { return a.at < b.at; });
  rng draw{seeded.test_seed};
  uint64_t index = 0;
  for (auto& w : plan)
    for (uint64_t i = 0; i < w.count; ++i)
      out.tests.emplace_back(
        w.at, draw_test(opts.tests_profile, draw, index++, w.priority));
  return out;
}

simulation_instance realized_instance(const simulation_options& opts) {
  auto out = draw_instance(opts);
  auto seeded = plan_run(opts);
  auto jitter_seed = jitter_seed_of(seeded);
  for (auto& [at, test] : out.tests)
    test.expected_duration
      *= duration_noise_factor(test.test_id, seeded.test_seed,
                               opts.duration_noise)
         * simulated_jitter(test.test_id, jitter_seed);
  return out;
}

int pool_size_for(int workers) {
  return std::clamp(workers / 64, 1, 256);
}

simulation_result run_simulation(const simulation_options& opts) {
  if (opts.workers < 1)
    throw std::invalid_argument("workers must be at least 1");
  if (auto err = opts.scheduler.validate(); !err.empty())
    throw std::invalid_argument(err);
  if (opts.feeder && opts.deterministic)
    throw std::invalid_argument("a feeder needs real time");
  if (opts.busy_poll_us < 0 || opts.busy_poll_us > 1000000)
    throw std::invalid_argument(
      "busy_poll_us: must be within 0-1000000 microseconds");
  if (opts.busy_poll_us > 0 && opts.deterministic)
    throw std::invalid_argument(
      "busy_poll_us: busy polling needs real time (not a run on virtual "
      "time)");
  auto shards = static_cast<size_t>(std::max(1, opts.shards));
  if (shards > 1) {
    if (opts.deterministic)
      throw std::invalid_argument(
        "shards: a run on virtual time has one thread (one shard)");
    if (opts.dynamic || !opts.extra_churn.empty())
      throw std::invalid_argument(
        "shards: a split scheduler needs a fixed fleet (no dynamic workers "
        "or worker events)");
    if (opts.observer)
      throw std::invalid_argument(
        "shards: a split scheduler has no Prometheus metrics yet");
    if (shards > static_cast<size_t>(opts.workers))
      throw std::invalid_argument("shards: more shards than workers");
  }
  auto wall_start = std::chrono::steady_clock::now();
  simulation_result result;
  auto scale = opts.deterministic ? 1.0 : std::max(1e-6, opts.time_scale);
  auto seeded = plan_run(opts);
  auto& plan = seeded.plan;
  auto& script = seeded.script;
  uint64_t total_tests = 0;
  for (auto& w : plan)
    total_tests += w.count;

  nlohmann::json configuration = {
    {"workers", opts.workers},
    {"tests", total_tests},
    {"duration", opts.duration},
    {"burst_mode", opts.burst},
    {"dynamic_workers", opts.dynamic},
    {"strategy", opts.scheduler.strategy},
    {"seed", opts.seed},
    {"deterministic", opts.deterministic},
    {"time_scale", scale},
  };
  if (opts.max_workers > 0)
    configuration["max_workers"] = opts.max_workers;
  {
    // ISO 8601 local time with microseconds, like the original.
    auto now = std::chrono::system_clock::now();
    auto t = std::chrono::system_clock::to_time_t(now);
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                now.time_since_epoch())
                .count()
              % 1000000;
    char buf[64];
    std::tm tm{};
    localtime_r(&t, &tm);
    auto n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    std::snprintf(buf + n, sizeof(buf) - n, ".%06lld",
                  static_cast<long long>(us));
    configuration["timestamp"] = buf;
  }
  for (auto& [k, v] : opts.extra_configuration.items())
    configuration[k] = v;

  std::promise<std::string> done;
  auto done_future = done.get_future();
  std::mutex mtx; // guards violations and placements
  // One progress cell per shard (each written by its shard's thread).
  std::vector<std::shared_ptr<progress_cell>> cells;
  for (size_t i = 0; i < shards; ++i)
    cells.push_back(std::make_shared<progress_cell>());
  auto progress = [&cells] {
    run_progress all;
    for (auto& c : cells) {
      auto p = c->load();
      all.elapsed = std::max(all.elapsed, p.elapsed);
      all.submitted += p.submitted;
      all.completed += p.completed;
      all.failed += p.failed;
      all.waiting += p.waiting;
      all.in_flight += p.in_flight;
      all.workers += p.workers;
    }
    return all;
  };
  int seen = 0;           // interrupt requests acted on
  uint64_t abandoned = 0; // tests open when the second one came

  {
    // A split scheduler runs each shard in an actor system of its own: a
    // shard's workers and scheduler then share its threads and never hand
    // a message to another core, except for shares, steals and samples.
    auto total_threads
      = opts.threads > 0
          ? opts.threads
          : static_cast<int>(std::max(2u, std::thread::hardware_concurrency()));
    std::vector<std::unique_ptr<caf::actor_system_config>> cfgs;
    std::vector<std::unique_ptr<caf::actor_system>> systems;
    auto system_threads
      = shards > 1 ? std::max(1, total_threads / static_cast<int>(shards))
                   : total_threads;
    // Work sharing where several threads share a large pool (see
    // `configure_system`: stealing walks long queues there). A system of
    // one thread has nobody to steal from, so stealing's own queue costs no
    // lock per message and wakes from a spin rather than a condition
    // variable: at 10,000 workers in two shards the assignment wait at 50%
    // load fell from p50 1.7 ms to 74 us (README "Scale").
    auto policy = !opts.caf_policy.empty() ? opts.caf_policy
                  : system_threads == 1    ? std::string{"stealing"}
                                           : std::string{"sharing"};
    if (opts.busy_poll_us > 0 && policy != "stealing")
      throw std::invalid_argument(
        "busy_poll_us: busy polling needs one thread per shard (--threads "
        "equal to --shards) or the stealing policy: work sharing's threads "
        "do not poll");
    for (size_t i = 0; i < shards; ++i) {
      cfgs.push_back(std::make_unique<caf::actor_system_config>());
      configure_system(*cfgs.back(), system_threads, opts.deterministic,
                       policy.c_str(), opts.busy_poll_us);
      systems.push_back(std::make_unique<caf::actor_system>(*cfgs.back()));
    }
    auto& sys = *systems[0];

    recorder_options ro;
    ro.bucket_width
      = opts.bucket_width > 0 ? opts.bucket_width : auto_bucket(opts.duration);
    ro.configuration_json = configuration.dump();
    ro.on_result = [&done](std::string doc) { done.set_value(std::move(doc)); };
    auto recorder = spawn_recorder(sys, std::move(ro));

    // The parts of a split run, merged once every shard reported.
    std::shared_ptr<shard_group> group;
    std::vector<run_stats> parts(shards);
    size_t parts_in = 0;
    uint64_t final_workers = 0, final_waiting = 0;
    double final_now = 0;
    std::string strategy_name;
    if (shards > 1) {
      group = std::make_shared<shard_group>();
      group->start = sys.clock().now();
      group->capacity.resize(shards);
      group->on_finished
        = [&, recorder](uint32_t index, const cluster_state& core, double now) {
            std::lock_guard<std::mutex> guard{mtx};
            parts[index] = core.stats();
            final_workers += core.worker_count();
            final_waiting += core.queued() + core.parked() + core.key_waiting();
            final_now = std::max(final_now, now);
            if (index == 0)
              strategy_name = std::string{core.active_strategy().name()};
            if (++parts_in < parts.size())
              return;
            auto merged = parts[0];
            for (size_t i = 1; i < parts.size(); ++i)
              merged.merge(parts[i]);
            send_across(recorder, nullptr, end_atom::value,
                        metrics_document(merged, final_now, final_workers,
                                         final_waiting, strategy_name));
          };
    }

    scheduler_options so;
    so.config = opts.scheduler;
    so.config.seed = seeded.scheduler_seed;
    so.time_scale = scale;
    so.recorder = recorder;
    so.observer = opts.observer;
    so.check_invariants = opts.check_invariants;
    so.on_violation = [&](const std::string& err) {
      std::lock_guard<std::mutex> guard{mtx};
      if (result.violations.size() < 100)
        result.violations.push_back(err);
    };
    so.duration_noise = opts.duration_noise;
    so.noise_seed = seeded.test_seed;
    if (opts.record_placements || opts.on_end)
      so.on_end = [&](const assignment& a, const attempt_outcome*) {
        if (opts.on_end)
          opts.on_end(a);
        if (!opts.record_placements)
          return;
        std::lock_guard<std::mutex> guard{mtx};
        result.placements.emplace_back(a.test_id, a.worker_id,
                                       to_string(a.status));
      };
    auto on_tick_of = [](std::shared_ptr<progress_cell> cell) {
      return [cell](const cluster_state& core, double now) {
        auto& s = core.stats();
        cell->elapsed.store(now, std::memory_order_relaxed);
        cell->submitted.store(s.submitted_count(), std::memory_order_relaxed);
        cell->completed.store(s.completed_count(), std::memory_order_relaxed);
        cell->failed.store(s.ended() - s.completed_count(),
                           std::memory_order_relaxed);
        cell->waiting.store(core.queued() + core.parked() + core.key_waiting(),
                            std::memory_order_relaxed);
        cell->in_flight.store(core.in_flight(), std::memory_order_relaxed);
        cell->workers.store(core.worker_count(), std::memory_order_relaxed);
      };
    };
    scheduler_actor scheduler;
    // The initial fleet joins at once (churn's workers come later).
    if (shards == 1) {
      so.expected_workers = static_cast<size_t>(opts.workers);
      so.on_tick = on_tick_of(cells[0]);
      scheduler = spawn_scheduler(sys, std::move(so));
    } else {
      so.shards = group;
      for (size_t i = 0; i < shards; ++i) {
        auto si = so;
        si.shard_index = static_cast<uint32_t>(i);
        si.expected_workers
          = (static_cast<size_t>(opts.workers) + shards - 1 - i) / shards;
        si.on_tick = on_tick_of(cells[i]);
        group->members.push_back(spawn_shard(*systems[i], std::move(si)));
      }
      scheduler = group->members[0];
    }

    worker_options wt;
    wt.profile = opts.workers_profile;
    wt.time_scale = scale;
    wt.jitter_seed = jitter_seed_of(seeded);
    if (opts.on_test_start)
      wt.on_start = &opts.on_test_start;
    std::vector<worker_actor> workers;
    workers.reserve(static_cast<size_t>(opts.workers));
    // The initial workers count their joins (churn's do not).
    auto joined = std::make_shared<std::atomic<int>>(0);
    auto fleet_joined = std::make_shared<std::promise<void>>();
    auto fleet_future = fleet_joined->get_future();
    size_t dealt = 0;
    // A fixed fleet is hosted in pools, one set per shard (churn picks,
    // removes and kills single workers: then an actor each).
    auto pool_size
      = !script.empty() ? 1
        : opts.pool_size > 0
          ? opts.pool_size
          : pool_size_for(static_cast<int>(
            (static_cast<size_t>(opts.workers) + shards - 1) / shards));
    std::vector<std::vector<worker_options>> pooled(shards);
    auto spawn_pool = [&](size_t shard) {
      auto& ws = pooled[shard];
      if (ws.empty())
        return;
      if (group)
        workers.push_back(spawn_worker_pool(
          *systems[shard], group->members[shard], std::move(ws)));
      else
        workers.push_back(spawn_worker_pool(sys, scheduler, std::move(ws)));
      ws.clear();
    };
    draw_fleet(
      opts, seeded.fleet_seed, [&](worker_capabilities&& caps, uint64_t seed) {
        // Dealt in turn: every shard gets a like share of each kind.
        auto shard = dealt++ % shards;
        if (group) {
          auto& c = group->capacity[shard];
          c.max_memory = std::max(c.max_memory, caps.available_memory);
          for (auto& [name, n] : caps.available_accelerators)
            c.max_accelerators[name] = std::max(c.max_accelerators[name], n);
        }
        auto wo = wt;
        wo.caps = std::move(caps);
        wo.seed = seed;
        if (opts.on_fleet_joined || opts.feeder)
          wo.on_joined = [joined, fleet_joined, n = opts.workers](uint32_t) {
            if (joined->fetch_add(1) + 1 == n)
              fleet_joined->set_value();
          };
        if (pool_size > 1) {
          pooled[shard].push_back(std::move(wo));
          if (pooled[shard].size() == static_cast<size_t>(pool_size))
            spawn_pool(shard);
        } else if (group) {
          workers.push_back(spawn_worker(*systems[shard], group->members[shard],
                                         std::move(wo)));
        } else {
          workers.push_back(spawn_worker(sys, scheduler, std::move(wo)));
        }
      });
    for (size_t shard = 0; shard < shards; ++shard)
      spawn_pool(shard);
    // The shards read the group from here on (the first submission comes
    // after this).
    if (group)
      group->ready.store(true, std::memory_order_release);
    if (opts.on_fleet_joined || opts.feeder) {
      if (opts.deterministic)
        dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler()).run();
      else if (fleet_future.wait_for(std::chrono::seconds(600))
               != std::future_status::ready)
        throw std::runtime_error("the workers did not join within 600 s");
      if (opts.on_fleet_joined)
        opts.on_fleet_joined();
    }

    churn_actor churn;
    if (!script.empty()) {
      churn_options co;
      co.script = script;
      co.workers = workers;
      co.profile = opts.workers_profile;
      co.worker_template = wt;
      co.time_scale = scale;
      co.seed = seeded.churn_seed;
      co.max_workers = static_cast<uint64_t>(std::max(0, opts.max_workers));
      churn = spawn_churn(sys, scheduler, std::move(co));
    }
    workers.clear();

    submitter_options sub;
    sub.profile = opts.tests_profile;
    sub.plan = opts.feeder ? std::vector<submission_wave>{} : plan;
    sub.time_scale = scale;
    sub.seed = seeded.test_seed;
    // With a feeder the submitter plans nothing and its end (0 tests) is
    // followed by the feeder's own count.
    submitter_actor submitter;
    std::thread feeding;
    if (opts.feeder) {
      feeding = std::thread([&opts, scheduler, group] {
        uint64_t n = 0;
        uint32_t cursor = 0;
        opts.feeder([&n, &cursor, scheduler,
                     group](std::vector<test_requirements> tests) {
          n += tests.size();
          test_batch b;
          b.tests = std::move(tests);
          // Split here rather than by shard 0: a share for another shard
          // would otherwise wait for shard 0's thread to wake and pass it on.
          if (group)
            submit_to_shards(*group, cursor, std::move(b));
          else
            caf::anon_send(scheduler, std::move(b));
        });
        caf::anon_send(scheduler, end_atom::value, n);
      });
    } else {
      submitter = spawn_submitter(sys, scheduler, std::move(sub));
    }
    // The feeder's thread ends before the actor system does.
    struct joiner {
      std::thread& t;
      ~joiner() {
        if (t.joinable())
          t.join();
      }
    } join_feeding{feeding};

    // A run that cannot finish (e.g. a bug) must not hang the command.
    auto budget = std::chrono::duration<double>(
      (opts.duration * 20 + 600) / (opts.deterministic ? 1.0 : scale));
    bool finished = false;
    // Interrupts: the first stops submissions, the second ends the run with
    // the scheduler's figures as they are (tests still open stay unended).
    auto poll_interrupts = [&] {
      auto n = opts.interrupts ? opts.interrupts->load() : 0;
      if (n >= 1 && seen < 1 && submitter)
        caf::anon_send(submitter, end_atom::value);
      if (n >= 2 && seen < 2 && group) {
        auto p = progress();
        abandoned = p.waiting + p.in_flight;
        // Each shard reports its part as it is, and the merge follows.
        finish_shards(*group);
      } else if (n >= 2 && seen < 2) {
        auto p = progress();
        abandoned = p.waiting + p.in_flight;
        // The handles go in as spawn arguments, not captures: CAF 0.17
        // starts a function actor without arguments through a null tuple
        // pointer (UBSan stops the process there).
        sys.spawn(
          [](caf::event_based_actor* self, decltype(scheduler) sched,
             decltype(recorder) rec) {
            self->request(sched, caf::infinite, stats_atom::value)
              .then([self, rec](std::string& m) {
                self->send(rec, end_atom::value, std::move(m));
              });
          },
          scheduler, recorder);
      }
      seen = std::max(seen, std::min(n, 2));
    };
    if (opts.deterministic) {
      auto& sched
        = dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());
      auto limit = opts.duration * 20 + 600;
      for (;;) {
        poll_interrupts();
        sched.run();
        if (done_future.wait_for(std::chrono::seconds(0))
            == std::future_status::ready) {
          finished = true;
          break;
        }
        if (!sched.trigger_timeout())
          break;
        if (cells[0]->elapsed.load() > limit)
          break;
      }
    } else {
      auto deadline
        = std::chrono::steady_clock::now()
          + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
            budget);
      auto next_progress
        = std::chrono::steady_clock::now() + std::chrono::seconds(1);
      for (;;) {
        // Short waits so an interrupt is acted on within a tenth of a second.
        auto st = done_future.wait_for(std::chrono::milliseconds(100));
        if (st == std::future_status::ready) {
          finished = true;
          break;
        }
        poll_interrupts();
        if (std::chrono::steady_clock::now() < next_progress)
          continue;
        next_progress += std::chrono::seconds(1);
        if (opts.on_progress)
          opts.on_progress(progress());
        if (std::chrono::steady_clock::now() > deadline)
          break;
      }
    }
    // Stop whatever is still running: the scheduler takes its workers along.
    caf::anon_send_exit(scheduler, caf::exit_reason::user_shutdown);
    if (group)
      for (auto& m : group->members)
        caf::anon_send_exit(m, caf::exit_reason::user_shutdown);
    if (submitter)
      caf::anon_send_exit(submitter, caf::exit_reason::user_shutdown);
    if (churn)
      caf::anon_send_exit(churn, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(recorder, caf::exit_reason::user_shutdown);
    if (opts.deterministic) {
      auto& sched
        = dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());
      sched.run();
    }
    if (!finished)
      throw std::runtime_error("the run did not finish within its time budget ("
                               + std::to_string(progress().completed)
                               + " tests completed)");
  }
  result.document = nlohmann::json::parse(done_future.get());
  result.document["type"] = opts.type;
  result.interrupts = seen;
  result.document["interrupted"] = seen > 0;
  if (seen > 0) {
    result.document["interrupt_requests"] = seen;
    // Tests submitted but not ended when the second request cut the run.
    result.document["abandoned_tests"] = abandoned;
  }
  if (opts.on_document)
    opts.on_document(result.document);
  if (opts.on_progress)
    opts.on_progress(progress());
  result.wall_seconds = std::chrono::duration<double>(
                          std::chrono::steady_clock::now() - wall_start)
                          .count();
  return result;
}

} // namespace alb
