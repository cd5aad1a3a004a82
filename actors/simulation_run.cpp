#include "actors/simulation_run.hpp"

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

std::vector<std::pair<worker_capabilities, uint64_t>>
draw_fleet(const simulation_options& opts, uint64_t fleet_seed) {
  std::vector<std::pair<worker_capabilities, uint64_t>> out;
  out.reserve(static_cast<size_t>(std::max(0, opts.workers)));
  rng draw{fleet_seed};
  for (int i = 0; i < opts.workers; ++i) {
    auto caps
      = draw_worker(opts.workers_profile, draw, "w-" + std::to_string(i));
    auto seed = draw.next();
    out.emplace_back(std::move(caps), seed);
  }
  return out;
}

uint64_t jitter_seed_of(const run_seeds& seeds) {
  // Never 0 (which would mean per-worker draws).
  return (seeds.test_seed ^ 0x3c6ef372fe94f82bull) | 1;
}

simulation_instance draw_instance(const simulation_options& opts) {
  simulation_instance out;
  auto seeded = plan_run(opts);
  for (auto& [caps, seed] : draw_fleet(opts, seeded.fleet_seed))
    out.workers.push_back(std::move(caps));
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

simulation_result run_simulation(const simulation_options& opts) {
  if (opts.workers < 1)
    throw std::invalid_argument("workers must be at least 1");
  if (auto err = opts.scheduler.validate(); !err.empty())
    throw std::invalid_argument(err);
  if (opts.feeder && opts.deterministic)
    throw std::invalid_argument("a feeder needs real time");
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
  auto cell = std::make_shared<progress_cell>();
  int seen = 0;           // interrupt requests acted on
  uint64_t abandoned = 0; // tests open when the second one came

  {
    caf::actor_system_config cfg;
    configure_system(cfg, opts.threads, opts.deterministic,
                     opts.caf_policy.empty() ? "sharing"
                                             : opts.caf_policy.c_str());
    caf::actor_system sys{cfg};

    recorder_options ro;
    ro.bucket_width
      = opts.bucket_width > 0 ? opts.bucket_width : auto_bucket(opts.duration);
    ro.configuration_json = configuration.dump();
    ro.on_result = [&done](std::string doc) { done.set_value(std::move(doc)); };
    auto recorder = spawn_recorder(sys, std::move(ro));

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
    so.on_tick = [cell](const cluster_state& core, double now) {
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
    auto scheduler = spawn_scheduler(sys, std::move(so));

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
    for (auto& [caps, seed] : draw_fleet(opts, seeded.fleet_seed)) {
      auto wo = wt;
      wo.caps = caps;
      wo.seed = seed;
      if (opts.on_fleet_joined || opts.feeder)
        wo.on_joined = [joined, fleet_joined, n = opts.workers](uint32_t) {
          if (joined->fetch_add(1) + 1 == n)
            fleet_joined->set_value();
        };
      workers.push_back(spawn_worker(sys, scheduler, std::move(wo)));
    }
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
      feeding = std::thread([&opts, scheduler] {
        uint64_t n = 0;
        opts.feeder([&n, scheduler](std::vector<test_requirements> tests) {
          n += tests.size();
          test_batch b;
          b.tests = std::move(tests);
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
      if (n >= 2 && seen < 2) {
        auto p = cell->load();
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
        if (cell->elapsed.load() > limit)
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
          opts.on_progress(cell->load());
        if (std::chrono::steady_clock::now() > deadline)
          break;
      }
    }
    // Stop whatever is still running: the scheduler takes its workers along.
    caf::anon_send_exit(scheduler, caf::exit_reason::user_shutdown);
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
                               + std::to_string(cell->load().completed)
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
    opts.on_progress(cell->load());
  result.wall_seconds = std::chrono::duration<double>(
                          std::chrono::steady_clock::now() - wall_start)
                          .count();
  return result;
}

} // namespace alb
