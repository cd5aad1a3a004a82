// End-to-end throughput of the whole actor pipeline in one process:
// submitter -> scheduler -> simulated workers -> scheduler, with tests that
// take no time, so what is measured is the balancer itself.
//
//   bench_e2e_throughput [--tests N] [--reps R] [--workers A,B,...]
//                        [--threads T] [--shards S]
//                        [--policy sharing|stealing]
//                        [--metrics off|on|both] [--virtual on|off]
//                        [--wait on|off] [--wait-tests N]
//                        [--feeder sleep|spin] [--wave-us U] [--wait-load F]
//                        [--compare-threads A,B,...] [--pool-size K]
//                        [--busy-poll-us U] [--wait-dump FILE]
//
// Simulated workers are hosted K to an actor (unless told, alb's choice:
// `pool_size_for`, workers per shard / 64 within 1-256; 1 = an actor each,
// which costs ~1.7 KiB of CAF's own per worker).
//
// The scheduler is split into one shard per thread unless --shards says
// otherwise (`simulation_options::shards`; with --metrics on or both, one
// shard: a split scheduler has no observer yet).
//
// Per pool size (medians of --reps runs): tests/s, CPU time per test (all
// threads, from the moment every worker joined to the last test's end, so
// spawning and stopping the pool stay out of it), resident memory per worker
// (the pool joined and idle, before any test, in a fresh process of its own
// per pool size and mode: --memory-probe), and each figure's ratio to
// the first pool size's row (KiB: the median of --reps such processes). Then,
// per pool size, the assignment wait p50/p99 under an offered load of
// --wait-load (50% unless told) of that pool's open-loop maximum: a thread of
// the benchmark's own (not an actor, so the load does not queue behind the
// actors it measures) submits a wave every --wave-us (100 us unless told) at
// its absolute time, and a test's wait runs from the moment its wave left to
// the moment its worker started it. The open-loop maximum is the highest rate
// such waves sustain (tests start at >= 95% of the rate offered), tried from
// the batch runs' median down in steps of 0.8: waves of a few tests cost more
// per test than a batch of thousands, so half the batch maximum can saturate
// them (2026-12-03, 10,000 workers: batch 535k, open loop 342k). "late
// p99" is how late the waves left (the offered load's own unevenness: on a
// loaded machine the feeder's thread is not woken on time either, and whatever
// it sends late arrives as a burst). "bare p50/p99" is the machine's floor
// under those waits: the same waves from the same feeder into a bare queue,
// as many threads of no actors as the run has shards, each spending its
// share of 1 / the open-loop maximum of CPU per test and sleeping on a
// condition variable between waves (or, with --busy-poll-us, polling): as
// busy as the shards, with nothing of alb (`wait_floor`). "steal %" is the
// share of the machine's CPU time the hypervisor took during the wait runs
// and their bare queues (/proc/stat). With --virtual on,
// everything runs on one thread on virtual time: the pipeline's own CPU cost,
// without thread hand-offs or idle polling.
//
// With --metrics both, every pool size runs with and without the Prometheus
// observer (registry and observer as `--metrics-port` sets them up, minus
// the HTTP server, which only costs on scrape) so the overhead can be read
// off side by side.

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <malloc.h>
#include <memory>
#include <mutex>
#include <string>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <CLI/CLI.hpp>

#include "actors/simulation_run.hpp"
#include "metrics/prometheus_observer.hpp"
#include "metrics/registry.hpp"
#include "runtime/huge_pages.hpp"
#include "runtime/rng.hpp"
#include "runtime/simulation.hpp"

namespace {

long rss_kb() {
  // Current (not peak) resident set from /proc: the peak would hide what
  // a later, smaller run uses.
  long pages = 0;
  long resident = 0;
  if (auto* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2)
      resident = 0;
    std::fclose(f);
  }
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

double cpu_seconds() {
  // User plus system time of every thread: unlike wall time, it barely
  // moves when other processes compete for the cores.
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec)
         + static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

std::string load_average() {
  char buf[128] = {0};
  if (auto* f = std::fopen("/proc/loadavg", "r")) {
    if (!std::fgets(buf, sizeof(buf), f))
      buf[0] = 0;
    std::fclose(f);
  }
  std::string s{buf};
  // The three averages only.
  auto cut = s.find(' ', s.find(' ', s.find(' ') + 1) + 1);
  return cut == std::string::npos ? s : s.substr(0, cut);
}

double median(std::vector<double> xs) {
  if (xs.empty())
    return 0;
  std::sort(xs.begin(), xs.end());
  return xs[xs.size() / 2];
}

/// The settings every run shares.
struct bench_settings {
  int threads = 0;
  /// Scheduler shards (0 = one per thread).
  int shards = 0;
  std::string policy;
  bool virtual_time = false;
  /// Simulated workers per actor (`simulation_options::pool_size`; 0 =
  /// alb's default).
  int pool_size = 0;
  /// `simulation_options::busy_poll_us` of every run.
  int busy_poll_us = 0;
};

/// One run's figures.
struct run_figures {
  double rate = 0;
  double cpu_us = 0;
  double kib_per_worker = 0;
  double p50_us = 0;
  double p99_us = 0;
  bool ok = false;
};

// Shards a run of `workers` has (`base_options`).
int shards_of(const bench_settings& s, int workers) {
  auto threads
    = s.threads > 0
        ? s.threads
        : static_cast<int>(std::max(2u, std::thread::hardware_concurrency()));
  return s.virtual_time ? 1
                        : std::min(workers, s.shards > 0 ? s.shards : threads);
}

alb::simulation_options base_options(const bench_settings& s, int workers,
                                     int rep) {
  alb::simulation_options o;
  o.type = "bench";
  o.workers = workers;
  o.tests_profile.duration_distribution = {0.0};
  o.tests_profile.memory_requirements = {0.0};
  o.tests_profile.cuda_requirements = {0};
  o.tests_profile.retries = 0;
  o.workers_profile.cuda_distribution = {0};
  o.workers_profile.cores_distribution = {8};
  o.seed = static_cast<uint64_t>(rep + 1);
  o.threads = s.threads;
  o.shards = shards_of(s, workers);
  o.caf_policy = s.policy;
  o.busy_poll_us = s.busy_poll_us;
  if (s.pool_size > 0)
    o.pool_size = s.pool_size;
  // Virtual time runs everything on one thread: the pure CPU cost of
  // the pipeline per test, without thread hand-offs.
  o.deterministic = s.virtual_time;
  return o;
}

// Runs `o` (with `tests` tests) and measures it from the moment the whole
// pool joined.
run_figures measure(alb::simulation_options o, uint64_t tests) {
  run_figures f;
  // Hand back what earlier runs freed (the allocator keeps it, as alb's
  // does): otherwise the pool would reuse resident pages and look smaller.
  malloc_trim(0);
  auto before = rss_kb();
  long joined_kb = 0;
  double cpu0 = 0;
  std::atomic<uint64_t> ended{0};
  std::atomic<double> cpu_end{0};
  o.on_fleet_joined = [&] {
    joined_kb = rss_kb();
    cpu0 = cpu_seconds();
  };
  // On the scheduler's thread; the last end stops the CPU clock, before
  // the pool is stopped.
  o.on_end = [&](const alb::assignment&) {
    if (ended.fetch_add(1, std::memory_order_relaxed) + 1 == tests)
      cpu_end.store(cpu_seconds(), std::memory_order_relaxed);
  };
  auto res = alb::run_simulation(o);
  auto& doc = res.document["metrics"];
  auto done = doc["completed_tests"].get<double>();
  if (done != static_cast<double>(tests)) {
    std::fprintf(stderr, "run lost tests: %.0f of %llu completed\n", done,
                 static_cast<unsigned long long>(tests));
    return f;
  }
  auto span
    = o.deterministic ? res.wall_seconds : doc["makespan"].get<double>();
  f.rate = span > 0 ? done / span : 0;
  f.cpu_us = (cpu_end.load() - cpu0) * 1e6 / static_cast<double>(tests);
  if (joined_kb > before)
    f.kib_per_worker = static_cast<double>(joined_kb - before) / o.workers;
  f.p50_us = doc["p50_latency"].get<double>() * 1e6;
  f.p99_us = doc["p99_latency"].get<double>() * 1e6;
  f.ok = true;
  return f;
}

int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           std::chrono::steady_clock::now().time_since_epoch())
    .count();
}

// Returns at `due` (steady clock, ns): by spinning (on time, at the price
// of a core) or by an absolute timer.
void wait_until(int64_t due, bool spin) {
  if (spin) {
    // The machine's timers wake a sleeper late (on the 2-core VM by p99
    // ~2 ms with nothing else running), and a late wave arrives as a burst
    // whose last test waits for all before it.
    while (steady_ns() < due) {
      // again
    }
    return;
  }
  timespec ts{static_cast<time_t>(due / 1000000000),
              static_cast<long>(due % 1000000000)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr)
         == EINTR) {
    // again
  }
}

/// One wait run's figures.
struct wait_figures {
  double p50_us = 0;
  double p99_us = 0;
  /// How late the feeder's waves left (p99): the offered load's own
  /// unevenness, which the waits include.
  double late_p99_us = 0;
  /// Tests started per second, from the first wave's departure to the
  /// last test's start: below the offered rate when the open loop saturates
  /// (the backlog grows, and the last tests start after the last wave).
  double achieved = 0;
  bool ok = false;
};

double quantile(std::vector<double>& xs, double q) {
  if (xs.empty())
    return 0;
  std::sort(xs.begin(), xs.end());
  auto i = static_cast<size_t>(q * static_cast<double>(xs.size()));
  return xs[std::min(xs.size() - 1, i)];
}

// Offers `n` tests in `waves` waves `step` seconds apart from a thread of
// its own (an open loop: a wave leaves at its time whatever the actors are
// doing, so the load does not queue behind what it measures) and measures
// each test's wait from the moment its wave left to the moment its worker
// started it.
wait_figures measure_wait(alb::simulation_options o, uint64_t n, uint64_t waves,
                          double step, bool spin, const std::string& dump) {
  wait_figures f;
  // Written by one thread each (the feeder, the test's worker) and read
  // after the run, whose actor system joined them.
  std::vector<int64_t> sent(n, 0);
  std::vector<int64_t> started(n, 0);
  std::vector<double> late;
  late.reserve(waves);
  auto profile = o.tests_profile;
  o.on_test_start = [&](const std::string& id) {
    // Ids are "t" and the test's index (alb::draw_test).
    auto i = std::strtoull(id.c_str() + 1, nullptr, 10);
    if (i < n && started[i] == 0)
      started[i] = steady_ns();
  };
  // Every wave is drawn before the run, on this thread: a feeder that
  // allocated while the scheduler frees what it allocated before would
  // contend with it for the allocator's lock (sched_switch call graphs
  // showed the scheduler's thread asleep in free() on it for up to 2 ms).
  std::vector<std::vector<alb::test_requirements>> drawn(waves);
  {
    alb::rng draw{o.seed};
    uint64_t done = 0;
    for (uint64_t i = 0; i < waves; ++i) {
      auto target = n * (i + 1) / waves;
      drawn[i].reserve(target - done);
      for (auto k = done; k < target; ++k)
        drawn[i].push_back(alb::draw_test(profile, draw, k));
      done = target;
    }
  }
  o.feeder =
    [&](
      const std::function<void(std::vector<alb::test_requirements>)>& submit) {
      // Wake up at the wave's time, not up to 50 us after it.
      prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
      uint64_t done = 0;
      timespec t0{};
      clock_gettime(CLOCK_MONOTONIC, &t0);
      auto base = static_cast<int64_t>(t0.tv_sec) * 1000000000 + t0.tv_nsec;
      for (uint64_t i = 0; i < waves; ++i) {
        auto due
          = base + static_cast<int64_t>(static_cast<double>(i) * step * 1e9);
        wait_until(due, spin);
        auto target = n * (i + 1) / waves;
        auto batch = std::move(drawn[i]);
        auto now = steady_ns();
        late.push_back(static_cast<double>(now - due) / 1e3);
        for (auto k = done; k < target; ++k)
          sent[k] = now;
        done = target;
        if (!batch.empty())
          submit(std::move(batch));
      }
    };
  auto res = alb::run_simulation(o);
  auto done = res.document["metrics"]["completed_tests"].get<double>();
  if (done != static_cast<double>(n)) {
    std::fprintf(stderr, "wait run lost tests: %.0f of %llu completed\n", done,
                 static_cast<unsigned long long>(n));
    return f;
  }
  std::vector<double> waits;
  waits.reserve(n);
  for (uint64_t i = 0; i < n; ++i)
    if (started[i] > 0)
      waits.push_back(static_cast<double>(started[i] - sent[i]) / 1e3);
  if (waits.size() != n) {
    std::fprintf(stderr, "wait run: %zu of %llu tests seen starting\n",
                 waits.size(), static_cast<unsigned long long>(n));
    return f;
  }
  if (!dump.empty()) {
    if (auto* fp = std::fopen(dump.c_str(), "w")) {
      for (uint64_t i = 0; i < n; ++i)
        std::fprintf(fp, "%lld %lld\n", static_cast<long long>(sent[i]),
                     static_cast<long long>(started[i]));
      std::fclose(fp);
    } else {
      std::fprintf(stderr, "bench_e2e_throughput: cannot write %s\n",
                   dump.c_str());
    }
  }
  auto first = *std::min_element(sent.begin(), sent.end());
  auto last = *std::max_element(started.begin(), started.end());
  f.achieved = last > first ? static_cast<double>(n) * 1e9
                                / static_cast<double>(last - first)
                            : 0;
  f.p50_us = quantile(waits, 0.50);
  f.p99_us = quantile(waits, 0.99);
  f.late_p99_us = quantile(late, 0.99);
  f.ok = true;
  return f;
}

/// The bare queue's waits: p50 and p99, in microseconds.
struct floor_figures {
  /// Median.
  double p50_us = 0;
  /// 99th percentile.
  double p99_us = 0;
};

// The machine's floor under the wait runs: the same `n` tests in `waves`
// waves `step` seconds apart, from a feeder thread timed as the wait runs'
// (`spin`), handed to a bare queue: `receivers` threads of the benchmark's
// own (no actors; as many as the run has shards), each taking every
// receivers-th test of a wave and spending `per_test` x receivers seconds
// of CPU on it, which wait for the next wave on a condition variable (as
// an idle CAF thread does) or, with `poll`, poll for it throughout (as
// --busy-poll-us does between messages). At `per_test` = 1 / the open-loop
// maximum each is as busy as a shard was, so their waits are what
// wake-ups, preemption and the backlog they leave cost on this machine,
// with nothing of alb.
floor_figures wait_floor(uint64_t n, uint64_t waves, double step, bool spin,
                         bool poll, double per_test, int receivers) {
  auto r_count = static_cast<size_t>(std::max(1, receivers));
  std::mutex mtx;
  std::condition_variable cv;
  // Wave k's departure, written before `published` counts it.
  std::vector<int64_t> sent(waves, 0);
  std::atomic<uint64_t> published{0};
  // Each receiver's waits (its tests: every r_count-th of each wave).
  std::vector<std::vector<double>> waits(r_count);
  // A receiver does its share of the work, so each is as busy as a shard.
  auto cost
    = static_cast<int64_t>(per_test * static_cast<double>(r_count) * 1e9);
  auto receive = [&](size_t r) {
    waits[r].reserve(n / r_count + 1);
    uint64_t seen = 0, done = 0;
    while (seen < waves) {
      uint64_t now_published = 0;
      if (poll) {
        while ((now_published = published.load(std::memory_order_acquire))
               == seen) {
          // again
        }
      } else {
        std::unique_lock<std::mutex> guard{mtx};
        cv.wait(guard, [&] {
          return published.load(std::memory_order_acquire) != seen;
        });
        now_published = published.load(std::memory_order_acquire);
      }
      for (; seen < now_published; ++seen) {
        auto target = n * (seen + 1) / waves;
        for (; done < target; ++done) {
          if (done % r_count != r)
            continue;
          // The test's "start", then its share of the work.
          auto now = steady_ns();
          waits[r].push_back(static_cast<double>(now - sent[seen]) / 1e3);
          while (steady_ns() < now + cost) {
            // busy
          }
        }
      }
    }
  };
  std::vector<std::thread> threads;
  for (size_t r = 0; r < r_count; ++r)
    threads.emplace_back(receive, r);
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  auto base = steady_ns();
  for (uint64_t i = 0; i < waves; ++i) {
    wait_until(base + static_cast<int64_t>(static_cast<double>(i) * step * 1e9),
               spin);
    sent[i] = steady_ns();
    {
      // Under the lock, so a receiver between its check and its sleep
      // cannot miss the notification.
      std::lock_guard<std::mutex> guard{mtx};
      published.store(i + 1, std::memory_order_release);
    }
    cv.notify_all();
  }
  for (auto& t : threads)
    t.join();
  std::vector<double> all;
  all.reserve(n);
  for (auto& w : waits)
    all.insert(all.end(), w.begin(), w.end());
  floor_figures f;
  f.p50_us = quantile(all, 0.50);
  f.p99_us = quantile(all, 0.99);
  return f;
}

/// Jiffies the machine's CPUs spent, and those stolen by the hypervisor
/// (/proc/stat's "cpu" line).
struct cpu_ticks {
  /// Every field's sum.
  uint64_t total = 0;
  /// The "steal" field.
  uint64_t steal = 0;
};

cpu_ticks read_cpu_ticks() {
  cpu_ticks t;
  if (auto* f = std::fopen("/proc/stat", "r")) {
    char tag[16] = {0};
    unsigned long long v[10] = {0};
    auto got
      = std::fscanf(f, "%15s %llu %llu %llu %llu %llu %llu %llu %llu", tag,
                    &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
    std::fclose(f);
    if (got == 9) {
      for (int i = 0; i < 8; ++i)
        t.total += v[i];
      t.steal = v[7];
    }
  }
  return t;
}

/// What a wait run is offered and how.
struct wait_plan {
  /// Tests per second offered.
  double rate = 0;
  /// Tests in the run (0 = about `seconds` of the offered load).
  uint64_t tests = 0;
  /// Seconds of offered load when `tests` is 0.
  double seconds = 1;
  /// Seconds between waves.
  double step = 100e-6;
  /// Whether the feeder spins until a wave's time.
  bool spin = false;
  /// File each run writes its tests' departures and starts to (steady
  /// clock, ns; "" = none).
  std::string dump;
};

// Waves of a run of `n` tests offered as `plan` says.
uint64_t waves_of(uint64_t n, const wait_plan& plan) {
  return std::max<uint64_t>(
    1, static_cast<uint64_t>(static_cast<double>(n) / plan.rate / plan.step));
}

// One wait run of `plan` on a pool of `workers`.
wait_figures offer(const bench_settings& s, int workers, int rep,
                   const wait_plan& plan) {
  auto n = plan.tests > 0
             ? plan.tests
             : std::max<uint64_t>(
               1000, static_cast<uint64_t>(plan.rate * plan.seconds));
  auto waves = waves_of(n, plan);
  auto o = base_options(s, workers, rep);
  o.tests = 0;
  o.duration = static_cast<double>(waves) * plan.step;
  return measure_wait(std::move(o), n, waves, plan.step, plan.spin, plan.dump);
}

// The highest offered rate the open loop keeps up with (tests started at
// >= 95% of the rate offered), from `from` down in steps of 0.8 (at most 8
// steps; 0 if none kept up): waves of a few tests cost more per test than
// the batch runs' thousands at once (a placement and a report message per
// test instead of per worker's batch), so half of the batch maximum can be
// past what the waves sustain, and then the "50% load" waits are a
// saturated queue's.
constexpr int open_loop_steps = 8;

// The lowest rate `open_loop_max` tries from `from`.
double lowest_tried(double from) {
  for (int k = 1; k < open_loop_steps; ++k)
    from *= 0.8;
  return from;
}

double open_loop_max(const bench_settings& s, int workers, double from,
                     wait_plan plan) {
  plan.seconds = 0.3; // enough to see a backlog grow; short to keep it cheap
  plan.tests = 0;
  for (int k = 0; k < open_loop_steps; ++k, from *= 0.8) {
    plan.rate = from;
    auto w = offer(s, workers, k, plan);
    if (w.ok && w.achieved >= 0.95 * from)
      return from;
  }
  return 0;
}

/// A Prometheus observer as `--metrics-port` sets one up (registry and
/// observer, minus the HTTP server), attached to a run's options.
struct bench_observer {
  /// The metrics the observer fills.
  std::unique_ptr<alb::metrics::registry> reg;
  /// The observer the run reports to.
  std::unique_ptr<alb::metrics::prometheus_observer> obs;

  /// Attaches one to `o` if `on`; otherwise leaves `o` unobserved.
  void attach(alb::simulation_options& o, bool on) {
    if (!on)
      return;
    reg = std::make_unique<alb::metrics::registry>(
      alb::metrics::run_info{"bench", o.scheduler.strategy});
    obs = std::make_unique<alb::metrics::prometheus_observer>(*reg);
    o.observer = obs.get();
  }
};

// KiB per worker of a pool of `workers` spawned in a fresh process (this
// benchmark again, with --memory-probe): in this process a pool spawned
// after other runs reuses memory they freed that is still resident
// (malloc_trim cannot hand back pages that live objects share), and at
// 100,000 workers looked a third smaller (2.1 against 3.2 KiB measured
// alone). Returns a negative value if the probe failed.
double probe_kib(const bench_settings& s, int workers, bool metrics) {
  // popen runs a shell, whose /proc/self/exe would be the shell.
  char self[4096];
  auto len = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (len <= 0)
    return -1;
  self[len] = 0;
  std::string cmd = "'" + std::string(self) + "' --memory-probe --workers "
                    + std::to_string(workers) + " --threads "
                    + std::to_string(s.threads) + " --shards "
                    + std::to_string(s.shards) + " --metrics "
                    + (metrics ? "on" : "off") + " --virtual "
                    + (s.virtual_time ? "on" : "off") + " --pool-size "
                    + std::to_string(s.pool_size);
  if (!s.policy.empty())
    cmd += " --policy " + s.policy;
  auto* p = ::popen(cmd.c_str(), "r");
  if (!p)
    return -1;
  double kib = -1;
  if (std::fscanf(p, "%lf", &kib) != 1)
    kib = -1;
  if (::pclose(p) != 0)
    return -1;
  return kib;
}

} // namespace

int main(int argc, char** argv) {
  uint64_t tests = 500000;
  uint64_t wait_tests = 0;
  int reps = 3;
  std::vector<int> pools{1000, 10000};
  std::string metrics_mode = "off";
  std::string virtual_mode = "off";
  std::string wait_mode = "on";
  bench_settings s;
  std::vector<int> compare_threads;
  std::string feeder_mode = "sleep";
  double wave_us = 100;
  double wait_load = 0.5;
  std::string wait_dump;
  bool memory_probe = false;
  CLI::App app{"End-to-end throughput of the balancer in one process"};
  app.add_option("--tests", tests, "Tests per run")
    ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 32));
  app.add_option("--reps", reps, "Runs per pool size and mode")
    ->check(CLI::Range(1, 1000));
  app.add_option("--workers", pools, "Pool sizes, e.g. 1000,10000,100000")
    ->delimiter(',')
    ->check(CLI::Range(1, 10000000));
  app.add_option("--threads", s.threads, "Actor threads (0 = one per core)")
    ->check(CLI::Range(0, 256));
  app
    .add_option("--shards", s.shards,
                "Scheduler shards (0 = one per thread; 1 = one scheduler on "
                "every thread)")
    ->check(CLI::Range(0, 64));
  app
    .add_option("--policy", s.policy,
                "CAF scheduler policy (default: alb's choice, stealing for "
                "an actor system of one thread, else sharing)")
    ->check(CLI::IsMember({"sharing", "stealing"}));
  app
    .add_option("--pool-size", s.pool_size,
                "Simulated workers per actor (0 = alb's choice by fleet size, "
                "workers per shard / 64 within 1-256; 1 = an actor per worker)")
    ->check(CLI::Range(0, 1000000));
  app.add_option("--metrics", metrics_mode, "With the Prometheus observer")
    ->check(CLI::IsMember({"off", "on", "both"}));
  app
    .add_option("--virtual", virtual_mode,
                "Virtual time on one thread: the pipeline's own CPU cost")
    ->check(CLI::IsMember({"off", "on"}));
  app
    .add_option("--wait", wait_mode,
                "Assignment wait p50/p99 at 50% of each pool's throughput")
    ->check(CLI::IsMember({"off", "on"}));
  app
    .add_option("--wait-tests", wait_tests,
                "Tests per wait run (0 = about one second of offered load)")
    ->check(CLI::Range(uint64_t{0}, uint64_t{1} << 32));
  app
    .add_option("--feeder", feeder_mode,
                "How the wait runs' feeder thread waits for a wave's time: "
                "sleep (a timer) or spin (on time, taking a core)")
    ->check(CLI::IsMember({"sleep", "spin"}));
  app
    .add_option("--wave-us", wave_us,
                "Microseconds between the wait runs' waves (the offered "
                "load is the same; shorter: fewer tests arrive together, "
                "until the feeder cannot keep up: see late p99)")
    ->check(CLI::Range(1.0, 100000.0));
  app
    .add_option("--busy-poll-us", s.busy_poll_us,
                "Microseconds an idle actor thread keeps polling before it "
                "sleeps, in every run (simulation_options::busy_poll_us; 0 = "
                "CAF's short spin); needs one thread per shard")
    ->check(CLI::Range(0, 1000000));
  app.add_option("--wait-dump", wait_dump,
                 "Write each wait run's tests to this file as it ends, a "
                 "line each: the wave's departure and the test's start "
                 "(steady clock, ns); the last run's stay");
  app
    .add_option("--wait-load", wait_load,
                "Offered load of the wait runs as a fraction of each pool's "
                "open-loop maximum")
    ->check(CLI::Range(0.01, 1.0));
  app
    .add_option("--compare-threads", compare_threads,
                "Also compare thread counts, e.g. 1,2: each as --threads T "
                "(one shard per thread), runs alternating, ratios to the "
                "first")
    ->delimiter(',')
    ->check(CLI::Range(1, 64));
  // Internal: how the figure of KiB per worker is taken (probe_kib).
  app.add_flag("--memory-probe", memory_probe)->group("");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "bench_e2e_throughput: error: %s\n", e.what());
    return 2;
  }
  // The allocator as `alb` itself sets it up: freed memory is kept for the
  // next burst instead of handed back and faulted in again.
  alb::tune_allocator_for_service();
  s.virtual_time = virtual_mode == "on";
  if (metrics_mode != "off")
    s.shards = 1;
  if (memory_probe) {
    // One pool (the first size) joined and idle in this fresh process:
    // its KiB per worker on stdout, for probe_kib.
    auto o = base_options(s, pools.front(), 0);
    o.tests = 1;
    o.duration = 0;
    bench_observer observed;
    observed.attach(o, metrics_mode == "on");
    auto f = measure(std::move(o), 1);
    if (!f.ok)
      return 1;
    std::printf("%.4f\n", f.kib_per_worker);
    return 0;
  }
  std::printf("cores: %u, threads: %d, shards: %d (0 = one per thread), "
              "workers per actor: %d (0 = by fleet size), CAF "
              "policy: %s, tests per run: %llu, runs per pool: %d, load "
              "average at start: %s\n",
              std::thread::hardware_concurrency(), s.threads, s.shards,
              s.pool_size, s.policy.empty() ? "auto" : s.policy.c_str(),
              static_cast<unsigned long long>(tests), reps,
              load_average().c_str());
  std::printf("%8s %7s %10s %10s %10s %7s %11s %7s %10s %7s\n", "workers",
              "metrics", "median t/s", "min t/s", "max t/s", "x first",
              "CPU us/test", "x first", "KiB/worker", "x first");
  std::vector<bool> modes;
  if (metrics_mode != "on")
    modes.push_back(false);
  if (metrics_mode != "off")
    modes.push_back(true);
  // The first pool size's figures, per mode: every row's ratios refer to it.
  std::vector<run_figures> first(modes.size());
  std::vector<std::pair<int, double>> max_rate; // (workers, median t/s)
  for (size_t p = 0; p < pools.size(); ++p) {
    auto workers = pools[p];
    // Modes alternate run by run (off, on, off, on, ...) rather than all
    // runs of one mode first: the process's heap and the machine's state
    // drift over a series, and that drift must not land on one mode.
    std::vector<std::vector<double>> rates(modes.size());
    std::vector<std::vector<double>> cpu_us(modes.size());
    std::vector<double> kib(modes.size(), 0);
    for (int r = 0; r < reps; ++r)
      for (size_t m = 0; m < modes.size(); ++m) {
        auto o = base_options(s, workers, r);
        o.tests = tests;
        o.duration = 0; // everything submitted at once, in batches
        bench_observer observed;
        observed.attach(o, modes[m]);
        auto f = measure(std::move(o), tests);
        if (!f.ok)
          return 1;
        rates[m].push_back(f.rate);
        cpu_us[m].push_back(f.cpu_us);
      }
    for (size_t m = 0; m < modes.size(); ++m) {
      // One fresh process per run, the median: what stays resident after
      // the join varies from process to process (1.6-2.1 KiB per worker
      // at 100,000 in three probes in a row), with how the join's
      // messages and copies fell among the threads' malloc arenas.
      std::vector<double> probes;
      for (int rep = 0; rep < reps; ++rep) {
        auto k = probe_kib(s, workers, modes[m]);
        if (k < 0) {
          std::fprintf(stderr,
                       "bench_e2e_throughput: the memory probe of "
                       "%d workers failed\n",
                       workers);
          return 1;
        }
        probes.push_back(k);
      }
      kib[m] = median(probes);
    }
    std::vector<double> medians;
    for (size_t m = 0; m < modes.size(); ++m) {
      run_figures row;
      row.rate = median(rates[m]);
      row.cpu_us = median(cpu_us[m]);
      row.kib_per_worker = kib[m];
      if (p == 0)
        first[m] = row;
      auto ratio = [](double a, double b) { return b > 0 ? a / b : 0; };
      auto [lo, hi] = std::minmax_element(rates[m].begin(), rates[m].end());
      std::printf("%8d %7s %10.0f %10.0f %10.0f %7.2f %11.2f %7.2f %10.2f "
                  "%7.2f\n",
                  workers, modes[m] ? "on" : "off", row.rate, *lo, *hi,
                  ratio(row.rate, first[m].rate), row.cpu_us,
                  ratio(row.cpu_us, first[m].cpu_us), row.kib_per_worker,
                  ratio(row.kib_per_worker, first[m].kib_per_worker));
      medians.push_back(row.rate);
      if (!modes[m])
        max_rate.emplace_back(workers, row.rate);
    }
    std::fflush(stdout);
    if (modes.size() == 2 && medians[0] > 0)
      std::printf("%8d metrics cost: %.1f%% of the median throughput\n",
                  workers, 100.0 * (medians[0] - medians[1]) / medians[0]);
  }
  if (wait_mode == "on" && !s.virtual_time && !max_rate.empty()) {
    std::printf(
      "assignment wait at %.0f%% of each pool's open-loop maximum (metrics "
      "off; waves every %.0f us; the open-loop maximum: the highest rate, "
      "from the batch runs' median down in steps of 0.8, whose tests start "
      "at >= 95%% of the rate offered; medians of %d runs):\n",
      100 * wait_load, wave_us, reps);
    std::printf("%8s %11s %11s %12s %10s %10s %10s %10s %10s %9s %9s %7s\n",
                "workers", "batch t/s", "open t/s", "offered t/s", "tests",
                "p50 us", "p99 us", "max p99", "late p99", "bare p50",
                "bare p99", "steal %");
    for (auto [workers, rate] : max_rate) {
      wait_plan plan;
      plan.step = wave_us * 1e-6;
      plan.spin = feeder_mode == "spin";
      auto open = open_loop_max(s, workers, rate, plan);
      if (open <= 0) {
        std::fprintf(stderr,
                     "bench_e2e_throughput: at %d workers no offered rate "
                     "down to %.0f tests/s kept up\n",
                     workers, lowest_tried(rate));
        return 1;
      }
      plan.rate = open * wait_load;
      // About a second of offered load unless told otherwise.
      plan.dump = wait_dump;
      plan.tests = wait_tests;
      plan.seconds = 1;
      std::vector<double> p50, p99, late99, bare50, bare99;
      uint64_t n = 0;
      auto ticks0 = read_cpu_ticks();
      for (int r = 0; r < reps; ++r) {
        auto w = offer(s, workers, r, plan);
        if (!w.ok)
          return 1;
        n = plan.tests > 0
              ? plan.tests
              : std::max<uint64_t>(1000, static_cast<uint64_t>(plan.rate));
        p50.push_back(w.p50_us);
        p99.push_back(w.p99_us);
        late99.push_back(w.late_p99_us);
        // The same waves into a bare queue as busy as the scheduler, right
        // after: what the machine alone costs under the figures above.
        auto waves = waves_of(n, plan);
        auto floor
          = wait_floor(n, waves, plan.step, plan.spin, s.busy_poll_us > 0,
                       1 / open, shards_of(s, workers));
        bare50.push_back(floor.p50_us);
        bare99.push_back(floor.p99_us);
      }
      auto ticks1 = read_cpu_ticks();
      auto steal = ticks1.total > ticks0.total
                     ? 100.0 * static_cast<double>(ticks1.steal - ticks0.steal)
                         / static_cast<double>(ticks1.total - ticks0.total)
                     : 0.0;
      std::printf("%8d %11.0f %11.0f %12.0f %10llu %10.1f %10.1f %10.1f "
                  "%10.1f %9.1f %9.1f %7.2f\n",
                  workers, rate, open, plan.rate,
                  static_cast<unsigned long long>(n), median(p50), median(p99),
                  *std::max_element(p99.begin(), p99.end()), median(late99),
                  median(bare50), median(bare99), steal);
      std::fflush(stdout);
    }
  }
  if (!compare_threads.empty() && !s.virtual_time) {
    std::printf("thread counts (one shard per thread; runs alternate, "
                "medians of %d; ratios to the first):\n",
                reps);
    std::printf("%8s %8s %10s %10s %10s %7s %11s\n", "workers", "threads",
                "median t/s", "min t/s", "max t/s", "x first", "CPU us/test");
    for (auto workers : pools) {
      std::vector<std::vector<double>> rates(compare_threads.size());
      std::vector<std::vector<double>> cpu(compare_threads.size());
      for (int r = 0; r < reps; ++r)
        for (size_t i = 0; i < compare_threads.size(); ++i) {
          auto t = s;
          t.threads = compare_threads[i];
          t.shards = compare_threads[i];
          auto o = base_options(t, workers, r);
          o.tests = tests;
          o.duration = 0;
          auto f = measure(std::move(o), tests);
          if (!f.ok)
            return 1;
          rates[i].push_back(f.rate);
          cpu[i].push_back(f.cpu_us);
        }
      auto first = median(rates[0]);
      for (size_t i = 0; i < compare_threads.size(); ++i) {
        auto [lo, hi] = std::minmax_element(rates[i].begin(), rates[i].end());
        std::printf("%8d %8d %10.0f %10.0f %10.0f %7.2f %11.2f\n", workers,
                    compare_threads[i], median(rates[i]), *lo, *hi,
                    first > 0 ? median(rates[i]) / first : 0, median(cpu[i]));
      }
      std::fflush(stdout);
    }
  }
  std::printf("load average at the end: %s\n", load_average().c_str());
  return 0;
}
