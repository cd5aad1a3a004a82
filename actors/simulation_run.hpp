#pragma once

// One simulated run end to end in this process: a scheduler, simulated
// workers, a submitter, optionally churn, and a recorder, on real or virtual
// time. The commands `stress`, `spike`, `scenario` and `benchmark` are thin
// layers over `run_simulation`. This header is CAF-free on purpose.

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/observer.hpp"
#include "runtime/profiles.hpp"
#include "runtime/scheduler_config.hpp"
#include "runtime/simulation.hpp"

namespace alb {

/// Progress of a running simulation.
struct run_progress {
  /// Simulated seconds since the start.
  double elapsed = 0;
  /// Tests submitted so far.
  uint64_t submitted = 0;
  /// Tests completed so far.
  uint64_t completed = 0;
  /// Tests failed so far.
  uint64_t failed = 0;
  /// Tests waiting for a worker.
  uint64_t waiting = 0;
  /// Tests on workers.
  uint64_t in_flight = 0;
  /// Workers registered.
  uint64_t workers = 0;
};

/// Everything a simulated run needs.
struct simulation_options {
  /// Kind written to the result ("stress", "spike", "scenario", ...).
  std::string type = "stress";
  /// Workers at the start.
  int workers = 20;
  /// Tests to submit (before extra waves).
  uint64_t tests = 100;
  /// Submission window in simulated seconds.
  double duration = 60;
  /// Submit in bursts instead of evenly.
  bool burst = false;
  /// Add and remove workers during the run.
  bool dynamic = false;
  /// How workers are drawn.
  worker_profile workers_profile;
  /// How tests are drawn.
  test_profile tests_profile;
  /// Scheduler settings (strategy, ...).
  scheduler_config scheduler;
  /// Seed of every random draw.
  uint64_t seed = 1;
  /// Seed of the tests' draws alone (0 = derived from `seed`): another
  /// value draws other tests for the same fleet.
  uint64_t test_seed = 0;
  /// Simulated seconds per real second (ignored on virtual time).
  double time_scale = 1;
  /// Run on a virtual clock with one thread: as fast as possible and exactly
  /// reproducible from the seed.
  bool deterministic = false;
  /// Scheduler threads (0 = one per core).
  int threads = 0;
  /// Shards of the scheduler (1 = not split): each has an actor system of
  /// `threads / shards` threads (at least one) and every `shards`-th worker;
  /// submissions are spread over them and an idle shard steals queued tests
  /// from another (`shard_group`). Real time and a fixed fleet only (no
  /// churn), and no observer.
  int shards = 1;
  /// CAF scheduler policy, "sharing" or "stealing" (empty = stealing for
  /// an actor system of one thread, which has nobody to steal from and no
  /// lock per message, else sharing, which stays flat with large pools;
  /// see `configure_system`).
  std::string caf_policy;
  /// Microseconds an idle actor thread keeps polling for work before it
  /// sleeps (0 = CAF's short spin; `configure_system`). Lowers the wait of
  /// tests that arrive while the scheduler's thread is idle, at the price
  /// of the CPU the polling burns. Real time and one thread per actor
  /// system (the stealing policy: work sharing does not poll) only.
  int busy_poll_us = 0;
  /// Simulated workers one actor hosts when the fleet is fixed (no churn
  /// script, which joins, removes and kills workers one by one): an actor
  /// per worker costs ~1.7 KiB of CAF's own (`spawn_worker_pool`); 1 = an
  /// actor each. 0 = by the fleet: a shard's workers spread over at least
  /// 64 actors, at most 256 workers to one (`pool_size_for`).
  int pool_size = 0;
  /// Most workers present at once, churn included (0 = no limit;
  /// `LB_MAX_WORKERS`). Scripted or random additions stop at it.
  int max_workers = 0;
  /// Further submissions (spikes, scenario bursts).
  std::vector<submission_wave> extra_waves;
  /// Further worker changes (scenario events).
  std::vector<churn_event> extra_churn;
  /// Event hooks, e.g. Prometheus (not owned; may be null).
  scheduler_observer* observer = nullptr;
  /// Check the core's invariants on every tick.
  bool check_invariants = false;
  /// Record (test, worker) of every ended test, in order.
  bool record_placements = false;
  /// Called for every test that ends, on the scheduler's thread.
  std::function<void(const assignment&)> on_end;
  /// Noisy estimates: each test really takes its expected duration times
  /// `duration_noise_factor(id, run_seeds::test_seed, duration_noise)`
  /// (a mean-1 lognormal of this log-standard deviation; 0 = exact).
  double duration_noise = 0;
  /// Interrupt requests (e.g. SIGINT/SIGTERM counted by a signal handler;
  /// not owned; may be null). At 1 the submitter stops and the run ends
  /// once the tests already submitted have ended; at 2 it ends at once with
  /// what has ended so far. The result then has `"interrupted": true`.
  const std::atomic<int>* interrupts = nullptr;
  /// Called about once per second of wall time with the progress.
  std::function<void(const run_progress&)> on_progress;
  /// When set, submissions start only once every initial worker joined,
  /// and this is called on the calling thread just before they do
  /// (benchmarks: the pool's set-up stays out of what they measure).
  std::function<void()> on_fleet_joined;
  /// Called with a test's id as a simulated worker starts it, on that
  /// worker's thread (may be empty).
  std::function<void(const std::string&)> on_test_start;
  /// Submits instead of the submitter actor when set (not on virtual time):
  /// called once on a thread of its own once every initial worker joined,
  /// with a function that sends a batch of tests to the scheduler at once.
  /// The run's tests are what it submits (`tests` and `extra_waves` are not
  /// submitted); the run ends once they ended after it returned. Benchmarks
  /// use it to offer a load that does not queue behind the actors it
  /// measures (an open loop).
  std::function<void(
    const std::function<void(std::vector<test_requirements>)>& submit)>
    feeder;
  /// Time-series bucket width in seconds (0 = chosen from the duration).
  double bucket_width = 0;
  /// Extra keys for the result's configuration section.
  nlohmann::json extra_configuration = nlohmann::json::object();
  /// Called with the finished result document before `run_simulation`
  /// returns, so a command can add keys computed from the run (e.g. spike
  /// recovery times from the time series) before the document is written.
  std::function<void(nlohmann::json&)> on_document;
};

/// What a simulated run produced.
struct simulation_result {
  /// The result document: configuration, metrics, time_series.
  nlohmann::json document;
  /// Invariant violations seen (empty when all held or not checked).
  std::vector<std::string> violations;
  /// (test_id, worker_id, status) of every ended test, in end order.
  std::vector<std::tuple<std::string, std::string, std::string>> placements;
  /// Wall-clock seconds the run took.
  double wall_seconds = 0;
  /// Interrupt requests seen (0 = ran to its end).
  int interrupts = 0;
};

/// The plans and seeds a run draws from `simulation_options::seed`.
struct run_seeds {
  /// Submission waves (before sorting by time).
  std::vector<submission_wave> plan;
  /// Worker churn script.
  std::vector<churn_event> script;
  /// Seed of the scheduler (randomized strategies).
  uint64_t scheduler_seed = 0;
  /// Seed of the fleet's draws.
  uint64_t fleet_seed = 0;
  /// Seed of the churn actor (0 without churn).
  uint64_t churn_seed = 0;
  /// Seed of the submitter's test draws.
  uint64_t test_seed = 0;
};

/// Draws the plans and seeds of a run exactly as `run_simulation` does.
run_seeds plan_run(const simulation_options& opts);

/// Draws the initial workers a run spawns one at a time, each with its own
/// seed, and hands each to `take` as it is drawn: a pool of 100,000 is
/// never held twice (the drawn copies and the workers' own).
void draw_fleet(
  const simulation_options& opts, uint64_t fleet_seed,
  const std::function<void(worker_capabilities&&, uint64_t)>& take);

/// What a run will place: its initial workers and every planned test with
/// its submission time, drawn exactly as `run_simulation` draws them
/// (without churn's workers).
struct simulation_instance {
  /// The initial workers.
  std::vector<worker_capabilities> workers;
  /// (submission time, test) in submission order.
  std::vector<std::pair<double, test_requirements>> tests;
};

/// Draws the instance `run_simulation(opts)` runs.
simulation_instance draw_instance(const simulation_options& opts);

/// The seed of a run's per-test jitter (`simulated_jitter`), which every
/// simulated worker of the run shares.
uint64_t jitter_seed_of(const run_seeds& seeds);

/// `draw_instance(opts)` with each test's expected duration replaced by
/// the nominal-speed seconds its first attempt really takes in the run:
/// times its duration noise factor and its jitter draw. A bound computed
/// from it (work factor 1) holds for every schedule of that run.
simulation_instance realized_instance(const simulation_options& opts);

/// Workers per actor for `workers` workers in each of a run's shards when
/// `simulation_options::pool_size` is 0: `workers / 64`, 1 to 256. Large
/// pools save memory (1.86 KiB per worker at 100,000 with 256, 3.7 with an
/// actor each) but cost CPU in small fleets (1,000 workers in two shards:
/// pools of 256 took ~25% more CPU per test than an actor each, pools of
/// 16 the same; perf put the extra in the scheduler's per-report work,
/// likely colder records as a pool answers for hundreds of workers in one
/// turn). Memory per worker counts only in large fleets.
int pool_size_for(int workers);

/// Runs one simulation; throws std::runtime_error when it cannot start or
/// does not finish in time.
simulation_result run_simulation(const simulation_options& opts);

} // namespace alb
