// End-to-end throughput of a real cluster on this machine: an `alb
// coordinator` process and two `alb node` processes over loopback TCP, fed
// by an alb::coordinator_client in this process with tests that take no
// time (no command: the nodes simulate them), so what is measured is the
// distribution itself: submission, placement, the wire both ways and the
// outcomes back to the client. For comparison it then runs the same number
// of tests on the same number of workers in one process (run_simulation).
//
//   bench_cluster_throughput [--tests N] [--reps R] [--workers-per-node W]
//                            [--slots S] [--db on|off]
//
// Each worker runs up to S tests at once (default 8): with tests that take
// no time, S times the worker count is how many tests are on the wire at
// any moment, which is what hides the round trips. A node is one worker
// with one pool, so each node runs W * S slots; the in-process comparison
// has 2 * W workers of S slots.
//
// With --db on the coordinator keeps its journal (every accepted test and
// every outcome written to SQLite before it is acknowledged or reported).
//
// Besides tests/s it prints the CPU time per test (user + system, from
// /proc) of the coordinator, of both nodes and of this client: on a shared
// machine the sum is what bounds the rate, and it varies far less than the
// rate does.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "actors/coordinator_client.hpp"
#include "actors/simulation_run.hpp"
#include "bench/loopback_cluster.hpp"
#include "runtime/process.hpp"

namespace {

using alb::bench::clock_type;
using alb::bench::cpu_seconds;
using alb::bench::median;

} // namespace

int main(int argc, char** argv) {
  uint64_t tests = 200000;
  int reps = 3;
  int per_node = 100;
  int slots = 8;
  std::string db_mode = "off";
  CLI::App app{"Throughput through a coordinator and two node processes"};
  app.add_option("--tests", tests, "Tests per run")
    ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 32));
  app.add_option("--reps", reps, "Runs")->check(CLI::Range(1, 1000));
  app.add_option("--workers-per-node", per_node, "Workers of each node")
    ->check(CLI::Range(1, 100000));
  app.add_option("--slots", slots, "Tests a worker runs at once")
    ->check(CLI::Range(1, 100000));
  app.add_option("--db", db_mode, "Coordinator journal (SQLite) on or off")
    ->check(CLI::IsMember({"off", "on"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "bench_cluster_throughput: error: %s\n", e.what());
    return 2;
  }
  bool db = db_mode == "on";
  std::printf("cores: %u, tests per run: %llu, runs: %d, workers: 2 nodes x "
              "%d with %d slots each, journal: %s\n",
              std::thread::hardware_concurrency(),
              static_cast<unsigned long long>(tests), reps, per_node, slots,
              db ? "on" : "off");
  std::vector<double> cluster_rates;
  // CPU microseconds per test: coordinator, both nodes, this client.
  std::vector<double> cpu_coord, cpu_nodes, cpu_client;
  for (int r = 0; r < reps; ++r) {
    try {
      alb::bench::loopback_cluster cluster{
        {{"bench-n1", slots * per_node, 1, {}},
         {"bench-n2", slots * per_node, 1, {}}},
        db};
      alb::coordinator_client_options o;
      o.endpoint = cluster.endpoint;
      o.request_timeout = 120;
      alb::coordinator_client client{o};
      client.connect();
      // Counted as they arrive, as a high-volume consumer would: keeping
      // every outcome for wait() to return would measure that vector.
      std::atomic<size_t> passed{0};
      client.on_outcome([&passed](const alb::cluster_outcome& out) {
        if (out.success)
          passed.fetch_add(1, std::memory_order_relaxed);
      });
      if (!alb::bench::wait_for_workers(client, 2)) {
        std::fprintf(stderr, "the nodes did not register their workers\n");
        return 1;
      }
      std::vector<alb::cluster_test> suite(tests);
      for (uint64_t i = 0; i < tests; ++i) {
        char id[32];
        std::snprintf(id, sizeof(id), "b%d-%07llu", r,
                      static_cast<unsigned long long>(i));
        suite[i].req.test_id = id;
        suite[i].req.model_id = "bench";
      }
      std::vector<double> cpu0;
      for (auto& p : cluster.procs)
        cpu0.push_back(cpu_seconds(p.pid()));
      auto self0 = cpu_seconds(::getpid());
      auto t0 = clock_type::now();
      // In slices, as a CI system hands over its suites: one message of
      // 200,000 tests would only measure a single serialization.
      const size_t slice = 10000;
      for (size_t i = 0; i < suite.size(); i += slice) {
        std::vector<alb::cluster_test> part(
          std::make_move_iterator(suite.begin() + static_cast<long>(i)),
          std::make_move_iterator(
            suite.begin()
            + static_cast<long>(std::min(suite.size(), i + slice))));
        client.submit(std::move(part));
      }
      auto res = client.wait(300);
      std::chrono::duration<double> dt = clock_type::now() - t0;
      if (!res.complete() || passed.load() != tests) {
        std::fprintf(stderr,
                     "run %d lost tests: %zu of %llu passed, %zu open%s\n", r,
                     passed.load(), static_cast<unsigned long long>(tests),
                     res.open, res.disconnected ? ", disconnected" : "");
        return 1;
      }
      cluster_rates.push_back(static_cast<double>(tests) / dt.count());
      auto per_test
        = [&](double secs) { return secs * 1e6 / static_cast<double>(tests); };
      cpu_coord.push_back(
        per_test(cpu_seconds(cluster.procs[0].pid()) - cpu0[0]));
      cpu_nodes.push_back(per_test(cpu_seconds(cluster.procs[1].pid()) - cpu0[1]
                                   + cpu_seconds(cluster.procs[2].pid())
                                   - cpu0[2]));
      cpu_client.push_back(per_test(cpu_seconds(::getpid()) - self0));
      client.close();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "run %d: %s\n", r, e.what());
      return 1;
    }
  }
  std::vector<double> local_rates;
  for (int r = 0; r < reps; ++r) {
    alb::simulation_options o;
    o.type = "bench";
    o.workers = 2 * per_node;
    o.tests = tests;
    o.duration = 0;
    o.tests_profile.duration_distribution = {0.0};
    o.tests_profile.memory_requirements = {0.0};
    o.tests_profile.cuda_requirements = {0};
    o.tests_profile.retries = 0;
    o.workers_profile.cuda_distribution = {0};
    o.workers_profile.cores_distribution = {slots};
    o.seed = static_cast<uint64_t>(r + 1);
    auto res = alb::run_simulation(o);
    auto& m = res.document["metrics"];
    auto span = m["makespan"].get<double>();
    local_rates.push_back(span > 0 ? m["completed_tests"].get<double>() / span
                                   : 0);
  }
  std::printf("%-34s %12s %12s %12s\n", "pipeline", "median t/s", "min t/s",
              "max t/s");
  auto row = [](const char* name, std::vector<double> xs) {
    std::sort(xs.begin(), xs.end());
    std::printf("%-34s %12.0f %12.0f %12.0f\n", name, median(xs), xs.front(),
                xs.back());
  };
  row("cluster (coordinator + 2 nodes)", cluster_rates);
  row("in one process (same workers)", local_rates);
  std::printf("CPU per test in the cluster runs (median, microseconds): "
              "coordinator %.2f, both nodes %.2f, client %.2f\n",
              median(cpu_coord), median(cpu_nodes), median(cpu_client));
  return 0;
}
