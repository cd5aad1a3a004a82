#define BOOST_TEST_MODULE results
#include <boost/test/unit_test.hpp>

// The fields of a result are what their names say, whoever produces them
// (a simulated run: stress, scenario, spike; the embedding API), and the
// alb binary puts results where scripts expect them: `--output -`, FIFOs and
// links written in place, the file before the summary, partial results on
// SIGINT/SIGTERM (real child processes, real signals).

#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "actors/load_balancer_service.hpp"
#include "actors/simulation_run.hpp"

using namespace alb;
using nlohmann::json;

BOOST_AUTO_TEST_CASE(a_stress_run_peak_is_at_most_one_seconds_completions) {
  // 1000 tests over half a second end within about a second: the busiest
  // 1 s window cannot hold more than all of them. The landed main scaled a
  // 0.1 s bucket to a rate and reported several times that.
  simulation_options o;
  o.workers = 50;
  o.tests = 1000;
  o.duration = 0.5;
  o.deterministic = true;
  auto r = run_simulation(o);
  auto& m = r.document.at("metrics");
  auto completed = m.at("completed_tests").get<double>();
  auto peak = m.at("peak_throughput").get<double>();
  BOOST_TEST(completed == 1000.0);
  BOOST_TEST(peak <= completed);
  BOOST_TEST(peak >= m.at("avg_throughput").get<double>() * 0.999);
  BOOST_TEST(peak > 0);
  // The series' own view of the busiest window is the same definition.
  double series_peak = 0;
  for (auto& p : r.document.at("time_series").at("throughput_1s"))
    series_peak = std::max(series_peak, p.at(1).get<double>());
  BOOST_TEST(series_peak <= completed);
  BOOST_TEST(series_peak > 0);
}

BOOST_AUTO_TEST_CASE(the_embedding_api_reports_peak_throughput) {
  // The API's metrics_json() came with peak_throughput 0.0 whatever ran.
  load_balancer_service lb;
  lb.start();
  worker_capabilities caps;
  caps.worker_id = "w";
  caps.available_memory = 64;
  caps.cpu_cores = 8;
  caps.max_concurrent_tests = 8;
  lb.register_worker("w", caps);
  for (int i = 0; i < 6; ++i) {
    test_requirements t;
    t.test_id = "t" + std::to_string(i);
    t.minimum_memory = 1;
    t.expected_duration = 0.01;
    lb.submit_test(t);
  }
  // Completes what is assigned until nothing is open (event, not time).
  int completed = 0;
  for (int round = 0; round < 1000 && completed < 6; ++round) {
    for (auto& a : lb.get_assignments())
      if (a.status == test_status::assigned) {
        test_result res;
        res.success = true;
        res.execution_time = 0.01;
        if (lb.complete_test(a.test_id, res))
          ++completed;
      }
    if (completed < 6)
      lb.wait_idle(0.01);
  }
  BOOST_TEST_REQUIRE(completed == 6);
  BOOST_TEST_REQUIRE(lb.wait_idle(5));
  auto m = json::parse(lb.metrics_json());
  lb.stop();
  BOOST_TEST(m.at("completed_tests").get<uint64_t>() == 6u);
  // All six ended well within one second of each other.
  BOOST_TEST(m.at("peak_throughput").get<double>() == 6.0);
  BOOST_TEST(m.at("p50_latency").get<double>() >= 0.0);
}

// -- the alb binary: where results go ---------------------------------------

namespace {

namespace fs = std::filesystem;

/// A fresh directory, removed with everything in it at the end.
struct temp_dir {
  fs::path path;
  temp_dir() {
    static int n = 0;
    path = fs::temp_directory_path()
           / ("alb-results-test-" + std::to_string(::getpid()) + "-"
              + std::to_string(n++));
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string slurp(const fs::path& p) {
  std::ifstream in{p};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// A child process: `argv` run in `dir` with stdout and stderr to files
/// there (or, for `sh -c`, whatever the shell line says).
struct child {
  pid_t pid = -1;
  fs::path out;
  fs::path err;
  int status = -1;
  bool reaped = false;

  child(const fs::path& dir, std::vector<std::string> argv) {
    out = dir / "stdout.txt";
    err = dir / "stderr.txt";
    std::vector<char*> args;
    for (auto& a : argv)
      args.push_back(a.data());
    args.push_back(nullptr);
    auto dir_s = dir.string();
    auto out_s = out.string();
    auto err_s = err.string();
    pid = ::fork();
    if (pid == 0) {
      if (::chdir(dir_s.c_str()) != 0)
        ::_exit(126);
      int o = ::open(out_s.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int e = ::open(err_s.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int in = ::open("/dev/null", O_RDONLY);
      ::dup2(o, 1);
      ::dup2(e, 2);
      ::dup2(in, 0);
      // A clean environment for the LB_* settings.
      ::unsetenv("LB_CONFIG_PATH");
      ::unsetenv("LB_MAX_WORKERS");
      ::unsetenv("LB_DEFAULT_DURATION");
      ::setenv("ALB_SCENARIOS_PATH", ALB_SOURCE_DIR "/configs/scenarios.toml",
               1);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
  }

  /// Waits for the exit (killing it after `timeout` s); returns the exit
  /// code, or 1000 + signal when a signal ended it, -1 on timeout.
  int wait(double timeout = 120) {
    if (reaped)
      return status;
    auto start = std::chrono::steady_clock::now();
    for (;;) {
      int st = 0;
      auto r = ::waitpid(pid, &st, WNOHANG);
      if (r == pid) {
        status = WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
        return status;
      }
      if (std::chrono::steady_clock::now() - start
          > std::chrono::duration<double>(timeout)) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &st, 0);
        return status = -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  /// Waits until stderr holds `text` (the child says where it is).
  bool wait_for_stderr(const std::string& text, double timeout = 60) {
    auto start = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - start
           < std::chrono::duration<double>(timeout)) {
      if (slurp(err).find(text) != std::string::npos)
        return true;
      int st = 0;
      if (::waitpid(pid, &st, WNOHANG) == pid) {
        status = WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
        reaped = true;
        return slurp(err).find(text) != std::string::npos;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
};

std::vector<std::string> small_stress(const std::string& output) {
  return {ALB_BINARY,        "stress",  "--workers",  "5",
          "--tests",         "60",      "--duration", "0.2",
          "--deterministic", "--quiet", "--output",   output};
}

bool is_result(const std::string& text) {
  try {
    auto j = json::parse(text);
    return j.contains("metrics") && j.contains("configuration");
  } catch (...) {
    return false;
  }
}

} // namespace

BOOST_AUTO_TEST_CASE(output_dash_writes_the_json_to_stdout) {
  temp_dir tmp;
  child c{tmp.path, small_stress("-")};
  BOOST_TEST_REQUIRE(c.wait() == 0, slurp(c.err));
  // stdout is the JSON alone; the human lines went to stderr.
  auto out = slurp(c.out);
  BOOST_TEST(is_result(out), out.substr(0, 300));
  BOOST_TEST(json::parse(out).at("metrics").at("total_tests").get<int>() == 60);
  auto err = slurp(c.err);
  BOOST_TEST(err.find("alb stress:") != std::string::npos, err);
  BOOST_TEST(err.find("tests: 60 submitted") != std::string::npos, err);
  // No file called "-".
  BOOST_TEST(!fs::exists(tmp.path / "-"));
}

BOOST_AUTO_TEST_CASE(a_symlink_to_a_fifo_is_written_through_not_replaced) {
  temp_dir tmp;
  auto fifo = tmp.path / "fifo";
  auto link = tmp.path / "link";
  BOOST_TEST_REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  fs::create_symlink(fifo, link);
  // Our read end is open before alb starts, so its open never blocks; the
  // reader drains the pipe while alb writes.
  int rd = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  BOOST_TEST_REQUIRE(rd >= 0);
  std::atomic<bool> exited{false};
  std::string got;
  std::thread reader{[&] {
    char buf[65536];
    for (;;) {
      pollfd p{rd, POLLIN, 0};
      ::poll(&p, 1, 50);
      auto n = ::read(rd, buf, sizeof buf);
      if (n > 0) {
        got.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (exited.load())
        break;
    }
  }};
  child c{tmp.path, small_stress(link.string())};
  auto rc = c.wait();
  exited = true;
  reader.join();
  ::close(rd);
  BOOST_TEST(rc == 0, slurp(c.err));
  BOOST_TEST(fs::is_symlink(fs::symlink_status(link)));
  BOOST_TEST(fs::is_fifo(fs::status(fifo)));
  BOOST_TEST(is_result(got), got.substr(0, 200));
}

BOOST_AUTO_TEST_CASE(a_symlink_to_a_file_stays_a_symlink) {
  temp_dir tmp;
  auto file = tmp.path / "real.json";
  auto link = tmp.path / "link.json";
  { std::ofstream{file} << "old"; }
  fs::create_symlink(file, link);
  child c{tmp.path, small_stress(link.string())};
  BOOST_TEST_REQUIRE(c.wait() == 0, slurp(c.err));
  BOOST_TEST(fs::is_symlink(fs::symlink_status(link)));
  BOOST_TEST(is_result(slurp(file)));
  // A name for a descriptor is written to that descriptor, not opened by
  // name. (/dev/fd/1 rather than /dev/stdout: a regression must not be
  // able to replace the machine's /dev/stdout, as the old rename did.)
  child d{tmp.path, small_stress("/dev/fd/1")};
  BOOST_TEST_REQUIRE(d.wait() == 0, slurp(d.err));
  BOOST_TEST(is_result(slurp(d.out)));
}

BOOST_AUTO_TEST_CASE(the_result_file_is_written_before_the_summary) {
  // `| head -1` closes the pipe after the first line: alb may die of
  // SIGPIPE on the summary, but the file is already there.
  temp_dir tmp;
  std::string line = std::string{ALB_BINARY}
                     + " stress --workers 5 --tests 60 --duration 0.2 "
                       "--deterministic --output f.json | head -1";
  child c{tmp.path, {"/bin/sh", "-c", line}};
  c.wait();
  BOOST_TEST(slurp(c.out).find("alb stress:") == 0u, slurp(c.out));
  BOOST_TEST(is_result(slurp(tmp.path / "f.json")));
}

namespace {

/// Starts a long real-time run, waits for its first progress line (printed
/// from inside the run, so the handlers are in place), sends `signals` and
/// returns the result document after its exit.
json interrupted_run(const temp_dir& tmp, std::vector<std::string> argv,
                     std::vector<int> signals, int expected_status) {
  child c{tmp.path, std::move(argv)};
  BOOST_TEST_REQUIRE(c.wait_for_stderr("] submitted"), slurp(c.err));
  // A signal sent while the same one is still pending merges with it: send
  // the next only once the handler has said it saw the previous one.
  const char* seen[] = {"alb: interrupted:", "alb: interrupted again"};
  for (size_t i = 0; i < signals.size(); ++i) {
    ::kill(c.pid, signals[i]);
    if (i < 2)
      BOOST_TEST_REQUIRE(c.wait_for_stderr(seen[i]), slurp(c.err));
  }
  auto rc = c.wait(60);
  BOOST_TEST(rc == expected_status, slurp(c.out) << slurp(c.err));
  // The summary was printed.
  BOOST_TEST(slurp(c.out).find("tests: ") != std::string::npos, slurp(c.out));
  BOOST_TEST(slurp(c.out).find("INTERRUPTED") != std::string::npos);
  auto doc = json::parse(slurp(tmp.path / "r.json"));
  BOOST_TEST(doc.at("interrupted").get<bool>());
  return doc;
}

} // namespace

BOOST_AUTO_TEST_CASE(sigint_stops_submitting_and_writes_a_partial_result) {
  temp_dir tmp;
  // 3000 tests over 30 s on real time: the signal comes long before the end.
  auto doc
    = interrupted_run(tmp,
                      {ALB_BINARY, "stress", "--workers", "10", "--tests",
                       "3000", "--duration", "30", "--output", "r.json"},
                      {SIGINT}, 130);
  auto& m = doc.at("metrics");
  auto total = m.at("total_tests").get<uint64_t>();
  BOOST_TEST(total < 3000u);
  // The tests already submitted were let to end.
  BOOST_TEST(m.at("completed_tests").get<uint64_t>()
               + m.at("failed_tests").get<uint64_t>()
               + m.at("cancelled_tests").get<uint64_t>()
             == total);
  BOOST_TEST(m.at("pending_tests").get<uint64_t>() == 0u);
  BOOST_TEST(doc.at("interrupt_requests").get<int>() == 1);
}

BOOST_AUTO_TEST_CASE(sigterm_twice_ends_a_scenario_at_once) {
  temp_dir tmp;
  auto doc = interrupted_run(tmp,
                             {ALB_BINARY, "scenario", "priority_inversion",
                              "--time-scale", "0.05", "--output", "r.json"},
                             {SIGTERM, SIGTERM}, 143);
  BOOST_TEST(doc.at("interrupt_requests").get<int>() == 2);
  BOOST_TEST(doc.at("metrics").at("total_tests").get<uint64_t>() < 270u);
}

BOOST_AUTO_TEST_CASE(sigint_on_spike_writes_a_partial_result) {
  temp_dir tmp;
  auto doc = interrupted_run(tmp,
                             {ALB_BINARY, "spike", "--workers", "10", "--tests",
                              "3000", "--duration", "30", "--output", "r.json"},
                             {SIGINT}, 130);
  BOOST_TEST(doc.at("metrics").at("total_tests").get<uint64_t>() < 3000u);
  BOOST_TEST(doc.contains("spikes"));
}
