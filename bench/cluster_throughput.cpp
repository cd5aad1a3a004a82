// End-to-end throughput of a real cluster on this machine: an `alb
// coordinator` process and N `alb node` processes over loopback TCP, fed
// by an alb::coordinator_client in this process with tests that take no
// time (no command: the nodes simulate them), so what is measured is the
// distribution itself: submission, placement, the wire both ways and the
// outcomes back to the client. For comparison it then runs the same number
// of tests on the same number of workers in one process (run_simulation).
//
//   bench_cluster_throughput [--tests N] [--reps R] [--nodes N]
//                            [--workers-per-node W] [--slots S]
//                            [--reference-slots R] [--db on|off]
//                            [--local on|off] [--baseline ALB]
//
// Each worker runs up to S tests at once (default 8): with tests that take
// no time, S times the worker count is how many tests are on the wire at
// any moment, which is what hides the round trips. A node is one worker
// with one pool (`alb node --slots K`), so each node runs K = W * S slots
// and the cluster N * K; the in-process comparison has N * W workers of S
// slots. "10,000 slots" is `--nodes 4 --workers-per-node 2500 --slots 1`:
// four `alb node --slots 2500`, 10,000 tests at once.
//
// With --reference-slots R (default 200; 0 = none) every run is paired
// with a run of the same cluster shape (N nodes) holding R slots in total,
// right before it, and the coordinator's CPU per test is printed as a ratio
// to the reference's: on a machine shared with other work the pair sees
// the same load, so the ratio says what the slot count costs.
//
// With --baseline ALB every run is followed by the same run with the `alb`
// binary ALB (coordinator and nodes), e.g. a build of an older commit:
// before and after under the same load. The client is this build's: ALB
// must speak its wire format (a build from before the packed outcome
// batches of actors/outcome_codec.hpp does not, and its runs lose every
// outcome).
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

namespace {

/// What one cluster run measured.
struct cluster_run {
  /// Tests per second, submission of the first to the last outcome.
  double rate = 0;
  /// CPU microseconds per test of the coordinator process alone.
  double coordinator = 0;
  /// CPU microseconds per test of all node processes together.
  double nodes = 0;
  /// CPU microseconds per test of this process (the client).
  double client = 0;
};

/// Runs `tests` zero-duration tests through a fresh coordinator and the
/// given nodes; throws (with what went wrong) when a test is lost.
cluster_run run_cluster(const std::vector<alb::bench::node_spec>& nodes,
                        uint64_t tests, bool db, const std::string& tag,
                        const std::string& binary = "") {
  alb::bench::loopback_cluster cluster{nodes, db, 2, binary};
  std::atomic<size_t> passed{0};
  // A node is one worker.
  auto client
    = alb::bench::counting_client(cluster, nodes.size(), passed, tests);
  auto suite = alb::bench::numbered_tests(tag, tests);
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
        suite.begin() + static_cast<long>(std::min(suite.size(), i + slice))));
    client->submit(std::move(part));
  }
  auto res = client->wait(300);
  std::chrono::duration<double> dt = clock_type::now() - t0;
  if (!res.complete() || passed.load() != tests)
    throw std::runtime_error{"lost tests: " + std::to_string(passed.load())
                             + " of " + std::to_string(tests) + " passed, "
                             + std::to_string(res.open) + " open"
                             + (res.disconnected ? ", disconnected" : "")};
  auto per_test
    = [&](double secs) { return secs * 1e6 / static_cast<double>(tests); };
  cluster_run out;
  out.rate = static_cast<double>(tests) / dt.count();
  // procs[0] is the coordinator's own process: its CPU alone, not the
  // nodes' (they are separate processes, read apart).
  out.coordinator = per_test(cpu_seconds(cluster.procs[0].pid()) - cpu0[0]);
  double node_secs = 0;
  for (size_t k = 1; k < cluster.procs.size(); ++k)
    node_secs += cpu_seconds(cluster.procs[k].pid()) - cpu0[k];
  out.nodes = per_test(node_secs);
  out.client = per_test(cpu_seconds(::getpid()) - self0);
  client->close();
  return out;
}

/// One row of the table: median, min and max of the rates, medians of the
/// CPU figures.
void print_row(const std::string& name, const std::vector<cluster_run>& runs,
               double reference_cpu) {
  std::vector<double> rate, coord, nodes, client;
  for (auto& r : runs) {
    rate.push_back(r.rate);
    coord.push_back(r.coordinator);
    nodes.push_back(r.nodes);
    client.push_back(r.client);
  }
  std::sort(rate.begin(), rate.end());
  double c = median(coord);
  char ratio[32] = "-";
  if (reference_cpu > 0)
    std::snprintf(ratio, sizeof(ratio), "%.2f", c / reference_cpu);
  std::printf("%-30s %10.0f %10.0f %10.0f %8.2f %7s %8.2f %8.2f\n",
              name.c_str(), median(rate), rate.front(), rate.back(), c, ratio,
              median(nodes), median(client));
}

} // namespace

int main(int argc, char** argv) {
  uint64_t tests = 200000;
  int reps = 3;
  int node_count = 2;
  int per_node = 100;
  int slots = 8;
  int reference_slots = 200;
  std::string db_mode = "off";
  std::string local_mode = "on";
  std::string baseline;
  CLI::App app{"Throughput through a coordinator and N node processes"};
  app.add_option("--tests", tests, "Tests per run")
    ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 32));
  app.add_option("--reps", reps, "Runs")->check(CLI::Range(1, 1000));
  app.add_option("--nodes", node_count, "Node processes (default 2)")
    ->check(CLI::Range(1, 64));
  app.add_option("--workers-per-node", per_node, "Workers of each node")
    ->check(CLI::Range(1, 100000));
  app.add_option("--slots", slots, "Tests a worker runs at once")
    ->check(CLI::Range(1, 100000));
  app
    .add_option("--reference-slots", reference_slots,
                "Slots in total of the reference run paired with each run "
                "(0 = none)")
    ->check(CLI::Range(0, 10000000));
  app.add_option("--db", db_mode, "Coordinator journal (SQLite) on or off")
    ->check(CLI::IsMember({"off", "on"}));
  app
    .add_option("--local", local_mode,
                "Also run the same workers in one process (on or off)")
    ->check(CLI::IsMember({"off", "on"}));
  app
    .add_option("--baseline", baseline,
                "Another `alb` binary (e.g. an older build): each run is "
                "repeated with it, right after, for a before/after row")
    ->check(CLI::ExistingFile);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "bench_cluster_throughput: error: %s\n", e.what());
    return 2;
  }
  long long node_slots = static_cast<long long>(per_node) * slots;
  if (node_slots > 100000) {
    std::fprintf(stderr,
                 "bench_cluster_throughput: error: --workers-per-node x "
                 "--slots is %lld slots per node (at most 100000)\n",
                 node_slots);
    return 2;
  }
  int total_slots = static_cast<int>(node_slots) * node_count;
  bool db = db_mode == "on";
  // A reference of the same size as the run would only repeat it.
  bool with_reference = reference_slots > 0 && reference_slots != total_slots;
  std::printf("cores: %u, tests per run: %llu, runs: %d, cluster: %d nodes x "
              "%lld slots (%d workers x %d) = %d slots, reference: %s, "
              "journal: %s\n",
              std::thread::hardware_concurrency(),
              static_cast<unsigned long long>(tests), reps, node_count,
              node_slots, per_node, slots, total_slots,
              with_reference ? (std::to_string(node_count) + " nodes, "
                                + std::to_string(reference_slots) + " slots")
                                 .c_str()
                             : "none",
              db ? "on" : "off");
  std::printf("load average before: %s\n", alb::bench::load_average().c_str());
  std::vector<cluster_run> runs, refs, base_runs;
  auto shape = alb::bench::even_nodes(node_count, total_slots);
  auto ref_shape
    = alb::bench::even_nodes(node_count, std::max(reference_slots, node_count));
  for (int r = 0; r < reps; ++r) {
    try {
      // The reference first, then the run: each pair sees the same load.
      if (with_reference)
        refs.push_back(
          run_cluster(ref_shape, tests, db, "r" + std::to_string(r)));
      runs.push_back(run_cluster(shape, tests, db, "b" + std::to_string(r)));
      if (!baseline.empty())
        base_runs.push_back(
          run_cluster(shape, tests, db, "a" + std::to_string(r), baseline));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "run %d: %s\n", r, e.what());
      return 1;
    }
  }
  std::vector<double> local_rates;
  for (int r = 0; local_mode == "on" && r < reps; ++r) {
    alb::simulation_options o;
    o.type = "bench";
    o.workers = static_cast<size_t>(node_count) * static_cast<size_t>(per_node);
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
  std::printf("load average after: %s\n", alb::bench::load_average().c_str());
  std::printf("%-30s %10s %10s %10s %8s %7s %8s %8s\n", "pipeline",
              "median t/s", "min t/s", "max t/s", "coord us", "x ref",
              "nodes us", "client us");
  double ref_cpu = 0;
  if (with_reference) {
    std::vector<double> c;
    for (auto& x : refs)
      c.push_back(x.coordinator);
    ref_cpu = median(c);
    print_row("reference: " + std::to_string(node_count) + " nodes, "
                + std::to_string(reference_slots) + " slots",
              refs, 0);
  }
  print_row("cluster: " + std::to_string(node_count) + " nodes, "
              + std::to_string(total_slots) + " slots",
            runs, ref_cpu);
  if (!base_runs.empty())
    print_row("baseline: " + std::to_string(node_count) + " nodes, "
                + std::to_string(total_slots) + " slots",
              base_runs, ref_cpu);
  if (!local_rates.empty()) {
    std::sort(local_rates.begin(), local_rates.end());
    std::printf("%-30s %10.0f %10.0f %10.0f\n", "in one process (same workers)",
                median(local_rates), local_rates.front(), local_rates.back());
  }
  std::printf("(coord us, nodes us, client us: CPU microseconds per test, "
              "user + system, medians; x ref: the coordinator's CPU per test "
              "over the reference's)\n");
  return 0;
}
