// How fast alb runs short real commands: N `true` commands through an
// `alb coordinator` and one `alb node` (one worker with C slots) over
// loopback, next to `xargs -P C` running the same N commands on the same
// machine in the same run. The runs alternate (alb, xargs, alb, xargs, ...)
// so both see the same background load; the ratio of the medians is the
// figure to quote.
//
//   bench_real_dispatch [--tests N] [--concurrency C] [--reps R]
//                       [--no-cgroups]
//
// The node puts each command in a cgroup of its own where it can (as
// root with cgroup v2; the command is born in it with clone3 where the
// kernel allows); --no-cgroups measures supervisors alone. The load
// averages at the start and the end say whether the machine was idle.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <stdexcept>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "actors/coordinator_client.hpp"
#include "bench/loopback_cluster.hpp"
#include "runtime/process.hpp"

namespace {

using alb::bench::clock_type;
using alb::bench::median;

/// Seconds alb takes for `tests` `true` commands (throws on a lost test).
double run_alb(uint64_t tests, int slots, int rep, bool no_cgroups) {
  alb::bench::node_spec node{"bench-node", slots, 2, {}};
  if (no_cgroups)
    node.extra.push_back("--no-cgroups");
  alb::bench::loopback_cluster cluster{{node}, false};
  std::atomic<size_t> passed{0};
  auto client = alb::bench::counting_client(cluster, 1, passed, tests);
  auto suite
    = alb::bench::numbered_tests("r" + std::to_string(rep), tests, {"true"});
  auto t0 = clock_type::now();
  client->submit(std::move(suite));
  auto res = client->wait(300);
  std::chrono::duration<double> dt = clock_type::now() - t0;
  if (!res.complete() || passed.load() != tests)
    throw std::runtime_error{"lost tests: " + std::to_string(passed.load())
                             + " of " + std::to_string(tests) + " passed"};
  client->close();
  return dt.count();
}

/// Seconds `xargs -P slots` takes for `tests` `true` commands.
double run_xargs(uint64_t tests, int slots) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    throw std::runtime_error{"pipe failed"};
  alb::spawn_options o;
  o.argv = {"xargs", "-P", std::to_string(slots), "-n", "1", "true"};
  o.stdin_fd = fds[0];
  o.new_group = false;
  std::string error;
  std::string input;
  for (uint64_t i = 0; i < tests; ++i)
    input += "x\n";
  auto t0 = clock_type::now();
  auto p = alb::process::spawn(o, error);
  ::close(fds[0]);
  if (!p.running())
    throw std::runtime_error{error};
  size_t off = 0;
  while (off < input.size()) {
    auto n = ::write(fds[1], input.data() + off, input.size() - off);
    if (n <= 0)
      break;
    off += static_cast<size_t>(n);
  }
  ::close(fds[1]);
  auto status = p.wait();
  std::chrono::duration<double> dt = clock_type::now() - t0;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error{"xargs failed"};
  return dt.count();
}

/// The three load averages of /proc/loadavg ("?" when unreadable): the
/// figures are only comparable on a machine that is otherwise idle.
std::string load_average() {
  std::FILE* f = std::fopen("/proc/loadavg", "r");
  if (!f)
    return "?";
  double a = 0, b = 0, c = 0;
  int n = std::fscanf(f, "%lf %lf %lf", &a, &b, &c);
  std::fclose(f);
  if (n != 3)
    return "?";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.2f %.2f %.2f", a, b, c);
  return buf;
}

} // namespace

int main(int argc, char** argv) {
  uint64_t tests = 2000;
  int slots = 2;
  int reps = 5;
  bool no_cgroups = false;
  CLI::App app{"N `true` commands through alb next to xargs -P"};
  app.add_option("--tests", tests, "Commands per run")
    ->check(CLI::Range(uint64_t{1}, uint64_t{10000000}));
  app.add_option("--concurrency", slots, "Commands at once (slots, -P)")
    ->check(CLI::Range(1, 4096));
  app.add_option("--reps", reps, "Runs of each")->check(CLI::Range(1, 1000));
  app.add_flag("--no-cgroups", no_cgroups,
               "Start the node with --no-cgroups (supervisors only)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "bench_real_dispatch: error: %s\n", e.what());
    return 2;
  }
  std::printf("cores: %u, commands per run: %llu, concurrency: %d, runs: %d, "
              "node cgroups: %s, load average: %s\n",
              std::thread::hardware_concurrency(),
              static_cast<unsigned long long>(tests), slots, reps,
              no_cgroups ? "off" : "where it can", load_average().c_str());
  std::vector<double> alb_rates, xargs_rates, ratios;
  try {
    for (int r = 0; r < reps; ++r) {
      auto a
        = static_cast<double>(tests) / run_alb(tests, slots, r, no_cgroups);
      auto x = static_cast<double>(tests) / run_xargs(tests, slots);
      alb_rates.push_back(a);
      xargs_rates.push_back(x);
      ratios.push_back(a / x);
      std::printf("run %d: alb %.0f/s, xargs %.0f/s, ratio %.2f\n", r, a, x,
                  a / x);
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_real_dispatch: %s\n", e.what());
    return 1;
  }
  auto lo_hi = [](std::vector<double> xs) {
    std::sort(xs.begin(), xs.end());
    return std::make_pair(xs.front(), xs.back());
  };
  auto [alo, ahi] = lo_hi(alb_rates);
  auto [xlo, xhi] = lo_hi(xargs_rates);
  auto [rlo, rhi] = lo_hi(ratios);
  std::printf("alb (coordinator + 1 node, %d slots): median %.0f/s "
              "(%.0f-%.0f)\n",
              slots, median(alb_rates), alo, ahi);
  std::printf("xargs -P %d:                           median %.0f/s "
              "(%.0f-%.0f)\n",
              slots, median(xargs_rates), xlo, xhi);
  std::printf("ratio alb/xargs: median of runs %.2f (%.2f-%.2f), of "
              "medians %.2f\n",
              median(ratios), rlo, rhi,
              median(alb_rates) / median(xargs_rates));
  std::printf("load average at the end: %s\n", load_average().c_str());
  return 0;
}
