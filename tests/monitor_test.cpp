// Tests of the terminal dashboard (`alb monitor`, `--live`): parsing real
// exposition text, figures from two snapshots, alert rules, rendering, URL
// parsing and fetching, and the command's exit statuses.

#define BOOST_TEST_MODULE monitor
#include <boost/test/unit_test.hpp>

#include "metrics/prometheus_observer.hpp"
#include "metrics/registry.hpp"
#include "metrics/server.hpp"
#include "report/monitor.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

using namespace alb::report;
using alb::failure_kind;
namespace m = alb::metrics;

/// Code points of a UTF-8 string (each glyph the dashboard uses is one
/// column wide).
std::size_t columns(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80)
      ++n;
  return n;
}

/// A cluster of two workers after a few events, as the scheduler reports it.
void some_activity(m::prometheus_observer& obs) {
  obs.on_worker_joined(0, "w-0");
  obs.on_worker_joined(1, "w-1");
  for (int i = 0; i < 4; ++i)
    obs.on_submitted(2);
  obs.on_submitted(5);
  obs.on_assigned(0, 2, "least_loaded", 0.004);
  obs.on_assigned(1, 2, "least_loaded", 0.3);
  obs.on_completed(0, 2, 0.2);
  obs.on_failed(2, failure_kind::execution);
  obs.on_worker_load(0, 0.5, 2);
  obs.on_worker_load(1, 0.25, 1);
  alb::cluster_snapshot snap;
  snap.queued_by_priority[1] = 2;
  snap.queued_by_priority[4] = 1;
  snap.parked_by_priority[2] = 4;
  snap.parked = 4;
  snap.workers = 2;
  snap.busy_workers = 2;
  snap.assigned = 3;
  snap.mean_load = 0.375;
  obs.on_snapshot(snap);
}

/// A fixed exposition text: one sample per family the dashboard reads.
std::string text(double completed, double failed, double queue, double idle,
                 std::vector<std::pair<std::string, double>> loads,
                 std::vector<double> wait_buckets) {
  std::ostringstream out;
  out << "alb_run_info{mode=\"stress\",strategy=\"adaptive\"} 1\n"
      << "alb_tests_submitted_total{priority=\"1\"} " << completed + failed
      << "\n"
      << "alb_tests_completed_total{priority=\"1\"} " << completed << "\n"
      << "alb_tests_failed_total{reason=\"execution\"} " << failed << "\n"
      << "alb_queue_depth{priority=\"1\",state=\"ready\"} " << queue << "\n"
      << "alb_workers{state=\"busy\"} " << 4 - idle << "\n"
      << "alb_workers{state=\"idle\"} " << idle << "\n";
  for (auto& [id, load] : loads)
    out << "alb_worker_load_ratio{worker=\"" << id << "\"} " << load << "\n";
  const char* bounds[] = {"0.1", "1", "10", "+Inf"};
  for (std::size_t i = 0; i < wait_buckets.size(); ++i)
    out << "alb_assignment_wait_seconds_bucket{le=\"" << bounds[i] << "\"} "
        << wait_buckets[i] << "\n";
  return out.str();
}

/// Exit status and output of a shell command line.
struct run_result {
  int status = -1;
  std::string out, err;
};

std::string slurp(const std::string& path) {
  std::ifstream in{path};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Runs `alb ARGS` with stdout and stderr captured to files (so stdout is no
/// terminal, as in CI).
run_result run_alb(const std::string& args) {
  char dir[] = "/tmp/alb_monitor_test.XXXXXX";
  BOOST_REQUIRE(mkdtemp(dir) != nullptr);
  std::string out = std::string{dir} + "/out", err = std::string{dir} + "/err";
  // The C locale: plain ASCII dashes in the messages.
  auto cmd = "LC_ALL=C " + std::string{ALB_BINARY} + " " + args + " >" + out
             + " 2>" + err + " </dev/null";
  run_result r;
  auto raw = std::system(cmd.c_str());
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  std::remove(out.c_str());
  std::remove(err.c_str());
  rmdir(dir);
  return r;
}

/// A loopback port nobody listens on (bound, then released).
uint16_t closed_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  BOOST_REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0);
  socklen_t len = sizeof(sa);
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  close(fd);
  return ntohs(sa.sin_port);
}

/// A TLS server on loopback (`openssl s_server -WWW`) serving the files of
/// a temporary directory, with a self-signed certificate for 127.0.0.1.
/// Stopped (by its pid) and removed on destruction.
struct tls_file_server {
  std::string dir;
  std::string cert;
  uint16_t port = 0;
  pid_t pid = -1;

  /// Starts it serving `metrics` as the file "metrics"; returns once it
  /// accepts connections.
  explicit tls_file_server(const std::string& metrics) {
    char tmpl[] = "/tmp/alb_monitor_tls.XXXXXX";
    BOOST_REQUIRE(mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    cert = dir + "/cert.pem";
    auto gen = "openssl req -x509 -newkey ec -pkeyopt "
               "ec_paramgen_curve:prime256v1 -nodes -days 1 -subj "
               "/CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout "
               + dir + "/key.pem -out " + cert + " 2>/dev/null";
    BOOST_REQUIRE(std::system(gen.c_str()) == 0);
    std::ofstream{dir + "/metrics"} << metrics;
    port = closed_port();
    // Nothing buffered may be written twice by the child.
    std::fflush(nullptr);
    pid = fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
      if (chdir(dir.c_str()) != 0)
        _exit(127);
      auto accept = "127.0.0.1:" + std::to_string(port);
      freopen("/dev/null", "w", stdout);
      freopen("/dev/null", "w", stderr);
      execlp("openssl", "openssl", "s_server", "-quiet", "-accept",
             accept.c_str(), "-cert", "cert.pem", "-key", "key.pem", "-WWW",
             static_cast<char*>(nullptr));
      _exit(127);
    }
    // Ready when a TCP connection succeeds (bounded: 10 s).
    for (int i = 0; i < 1000; ++i) {
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      sa.sin_port = htons(port);
      bool up = connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0;
      close(fd);
      if (up)
        return;
      if (waitpid(pid, nullptr, WNOHANG) != 0) { // it exited (and is reaped)
        std::system(("rm -rf " + dir).c_str());
        BOOST_FAIL("openssl s_server exited at start");
      }
      usleep(10'000);
    }
    // The destructor does not run for a constructor that throws: stop it here.
    kill(pid, SIGTERM);
    waitpid(pid, nullptr, 0);
    pid = -1;
    std::system(("rm -rf " + dir).c_str());
    BOOST_FAIL("openssl s_server did not start");
  }

  ~tls_file_server() {
    if (pid > 0) {
      kill(pid, SIGTERM);
      waitpid(pid, nullptr, 0);
    }
    std::system(("rm -rf " + dir).c_str());
  }

  /// The https:// URL of the served metrics.
  std::string url() const {
    return "https://127.0.0.1:" + std::to_string(port) + "/metrics";
  }
};

/// Fetch options with a total timeout of `seconds`.
fetch_options within(double seconds) {
  fetch_options o;
  o.timeout_seconds = seconds;
  return o;
}

std::size_t count_of(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (auto pos = haystack.find(needle); pos != std::string::npos;
       pos = haystack.find(needle, pos + 1))
    ++n;
  return n;
}

} // namespace

BOOST_AUTO_TEST_SUITE(parsing)

BOOST_AUTO_TEST_CASE(a_real_scrape_parses_without_malformed_lines) {
  m::registry reg{{"stress", "least_loaded"}};
  m::prometheus_observer obs{reg};
  some_activity(obs);
  auto snap = parse_exposition(reg.scrape(), 1.0);
  BOOST_TEST(snap.malformed_lines == 0u);
  BOOST_TEST(snap.time == 1.0);
  BOOST_TEST(snap.has_alb_metrics());
  // Every family README's metrics section lists is there.
  for (auto name : {"alb_tests_submitted_total",
                    "alb_tests_assigned_total",
                    "alb_tests_completed_total",
                    "alb_tests_retried_total",
                    "alb_tests_requeued_total",
                    "alb_tests_failed_total",
                    "alb_tests_migrated_total",
                    "alb_tests_stolen_total",
                    "alb_assignment_wait_seconds_bucket",
                    "alb_test_duration_seconds_count",
                    "alb_queue_depth",
                    "alb_tests_in_flight",
                    "alb_workers",
                    "alb_worker_mean_load_ratio",
                    "alb_workers_joined_total",
                    "alb_workers_left_total",
                    "alb_nodes_connected",
                    "alb_worker_load_ratio",
                    "alb_tests_cancelled_total",
                    "alb_worker_active_tests",
                    "alb_worker_assignments_total",
                    "alb_worker_completions_total",
                    "alb_workers_untracked",
                    "alb_placements_total",
                    "alb_adaptive_choices_total",
                    "alb_scheduling_attempts_total",
                    "alb_scheduling_decision_seconds_bucket",
                    "alb_run_info",
                    "process_start_time_seconds",
                    "process_resident_memory_bytes"})
    BOOST_TEST(snap.has(name), name);
  BOOST_TEST(snap.sum("alb_tests_submitted_total") == 5);
  BOOST_TEST(snap.sum("alb_tests_submitted_total", {{"priority", "2"}}) == 4);
  BOOST_TEST(snap.sum("alb_queue_depth", {{"priority", "5"}}) == 1);
  BOOST_TEST(snap.sum("alb_worker_load_ratio", {{"worker", "w-0"}}) == 0.5);
  BOOST_TEST(snap.sum("alb_assignment_wait_seconds_bucket", {{"le", "+Inf"}})
             == 2);
  auto f = compute_figures(snap);
  BOOST_TEST(f.mode == "stress");
  BOOST_TEST(f.strategy == "least_loaded");
  BOOST_TEST(f.workers == 2);
  // Parked tests are the state="parked" part of alb_queue_depth.
  BOOST_TEST(f.queue_depth == 3);
  BOOST_TEST(f.parked == 4);
  BOOST_TEST(f.queue_by_priority[2] == 4);
  BOOST_TEST(f.queue_by_priority[1] == 2);
  BOOST_TEST(f.in_flight == 3);
  BOOST_TEST(f.completed == 1);
  BOOST_TEST(f.failed == 1);
  BOOST_TEST(f.success_rate == 50);
  BOOST_TEST(std::isnan(f.throughput)); // a rate needs two snapshots
  BOOST_TEST(!f.wait_window);
  BOOST_REQUIRE(f.workers_by_load.size() == 2u);
  BOOST_TEST(f.workers_by_load[0].id == "w-0");
  BOOST_TEST(f.workers_by_load[0].active_tests == 2);
  BOOST_TEST(f.uptime >= 0);
}

BOOST_AUTO_TEST_CASE(escapes_timestamps_specials_and_bad_lines) {
  auto snap = parse_exposition("# HELP x a \"quoted\" help\r\n"
                               "# TYPE x gauge\r\n"
                               "x{a=\"q\\\"uo\\\\te\",b=\"line\\nbreak\",} "
                               "1.5 1700000000000\r\n"
                               "\n"
                               "y +Inf\n"
                               "z NaN\n"
                               "w -2e-3\n"
                               "broken{a=\"1\" 3\n"
                               "novalue\n"
                               "1bad 2\n"
                               "v 3 notatime\n");
  BOOST_REQUIRE(snap.samples.size() == 4u);
  BOOST_TEST(snap.malformed_lines == 4u);
  auto& x = snap.samples[0];
  BOOST_TEST(x.name == "x");
  BOOST_TEST(x.value == 1.5);
  BOOST_REQUIRE(x.label("a") != nullptr);
  BOOST_TEST(*x.label("a") == "q\"uo\\te");
  BOOST_TEST(*x.label("b") == "line\nbreak");
  BOOST_TEST(x.label("c") == nullptr);
  BOOST_TEST(std::isinf(snap.samples[1].value));
  BOOST_TEST(std::isnan(snap.samples[2].value));
  BOOST_TEST(snap.samples[3].value == -0.002);
  BOOST_TEST(!snap.has_alb_metrics());
  // NaN samples do not poison sums.
  BOOST_TEST(snap.sum("z") == 0);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(figures)

/// Whether `q` is the bucket (lower, upper].
bool in_bucket(const std::optional<quantile_bucket>& q, double lower,
               double upper) {
  return q && q->lower == lower && q->upper == upper;
}

BOOST_AUTO_TEST_CASE(histogram_quantiles_name_the_bucket_holding_the_rank) {
  std::vector<std::pair<double, double>> b{
    {0.1, 50}, {1, 90}, {10, 100}, {INFINITY, 100}};
  BOOST_TEST(in_bucket(histogram_quantile_bucket(0.5, b), 0, 0.1));
  BOOST_TEST(in_bucket(histogram_quantile_bucket(0.25, b), 0, 0.1));
  BOOST_TEST(in_bucket(histogram_quantile_bucket(0.7, b), 0.1, 1));
  BOOST_TEST(in_bucket(histogram_quantile_bucket(0.99, b), 1, 10));
  // A rank in the +Inf bucket: above the highest finite bound.
  BOOST_TEST(in_bucket(
    histogram_quantile_bucket(0.99, {{1, 5}, {INFINITY, 10}}), 1, INFINITY));
  BOOST_TEST(!histogram_quantile_bucket(0.5, {{1, 0}, {INFINITY, 0}}));
  BOOST_TEST(!histogram_quantile_bucket(0.5, {}));
  // Order does not matter; empty buckets below the rank are skipped.
  BOOST_TEST(in_bucket(
    histogram_quantile_bucket(0.5, {{INFINITY, 4}, {2, 4}, {1, 0}}), 1, 2));
  BOOST_TEST(in_bucket(histogram_quantile_bucket(0, {{1, 0}, {2, 3}}), 1, 2));
}

BOOST_AUTO_TEST_CASE(rates_and_window_quantiles_come_from_two_snapshots) {
  m::registry reg{{"stress", "least_loaded"}};
  m::prometheus_observer obs{reg};
  some_activity(obs);
  auto a = parse_exposition(reg.scrape(), 10.0);
  // Two seconds later: 6 more completions, 2 more failures, placements that
  // waited 2 s each, a migration and three steals.
  for (int i = 0; i < 6; ++i) {
    obs.on_assigned(0, 2, "least_loaded", 2.0);
    obs.on_completed(0, 2, 0.1);
  }
  obs.on_failed(1, failure_kind::timeout);
  obs.on_failed(1, failure_kind::timeout);
  obs.on_migrated();
  for (int i = 0; i < 3; ++i)
    obs.on_stolen();
  auto b = parse_exposition(reg.scrape(), 12.0);
  auto f = compute_figures(b, &a);
  auto tol = boost::test_tools::tolerance(1e-9);
  BOOST_TEST(f.interval == 2.0);
  BOOST_TEST(f.throughput == 3.0, tol);
  BOOST_TEST(f.failure_rate == 1.0, tol);
  BOOST_TEST(f.move_rate == 2.0, tol);
  BOOST_TEST(f.migrations == 1);
  BOOST_TEST(f.steals == 3);
  BOOST_TEST(f.completed == 7);
  BOOST_TEST(f.failed == 3);
  BOOST_TEST(f.success_rate == 70.0, tol);
  // Only this interval's placements: all six waited 2 s (bucket 1-2.5 s).
  BOOST_TEST(f.wait_window);
  BOOST_TEST(in_bucket(f.wait_p50, 1.0, 2.5));
  // w-0 completed 6 tests in 2 s.
  BOOST_TEST(f.workers_by_load[0].completions_per_second == 3.0, tol);
  // The whole run mixes in the first two fast placements.
  auto whole = compute_figures(b);
  BOOST_TEST(!whole.wait_window);
  BOOST_REQUIRE(whole.wait_p50.has_value());
  BOOST_TEST(whole.wait_p50->upper <= f.wait_p50->upper);
  // No placement in an interval: quantiles fall back to the whole run.
  auto c = parse_exposition(reg.scrape(), 13.0);
  auto idle = compute_figures(c, &b);
  BOOST_TEST(!idle.wait_window);
  BOOST_TEST(idle.throughput == 0);
}

BOOST_AUTO_TEST_CASE(a_restarted_target_does_not_give_negative_rates) {
  auto a = parse_exposition(text(100, 0, 0, 0, {}, {}), 0);
  auto b = parse_exposition(text(4, 0, 0, 0, {}, {}), 1);
  BOOST_TEST(compute_figures(b, &a).throughput == 4);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(alerts)

BOOST_AUTO_TEST_CASE(a_healthy_cluster_raises_none) {
  auto a = parse_exposition(text(50, 1, 5, 0, {{"w-0", 0.8}}, {}), 0);
  auto b = parse_exposition(text(60, 1, 9, 0, {{"w-0", 0.9}}, {}), 1);
  BOOST_TEST(evaluate_alerts(compute_figures(b, &a)).empty());
}

BOOST_AUTO_TEST_CASE(queue_growing_while_workers_idle) {
  auto a = parse_exposition(text(50, 0, 5, 0, {}, {}), 0);
  auto b = parse_exposition(text(50, 0, 9, 2, {}, {}), 1);
  auto alerts = evaluate_alerts(compute_figures(b, &a));
  BOOST_REQUIRE(alerts.size() == 1u);
  BOOST_TEST((alerts[0].kind == alert_kind::queue_growing_with_idle_workers));
  BOOST_TEST(alerts[0].message
             == "queue growing: +4 to 9 waiting while 2 workers are idle");
  // A shrinking queue with idle workers is fine, and so is the first scrape.
  auto c = parse_exposition(text(50, 0, 3, 2, {}, {}), 2);
  BOOST_TEST(evaluate_alerts(compute_figures(c, &b)).empty());
  BOOST_TEST(evaluate_alerts(compute_figures(b)).empty());
}

BOOST_AUTO_TEST_CASE(success_rate_below_80_percent) {
  auto alerts = evaluate_alerts(
    compute_figures(parse_exposition(text(7, 3, 0, 0, {}, {}), 0)));
  BOOST_REQUIRE(alerts.size() == 1u);
  BOOST_TEST((alerts[0].kind == alert_kind::low_success_rate));
  BOOST_TEST(alerts[0].message
             == "success rate 70.0% is below 80% (3 of 10 ended tests "
                "failed)");
  // Exactly 80% is not below; too few ended tests are no trend yet.
  BOOST_TEST(evaluate_alerts(
               compute_figures(parse_exposition(text(8, 2, 0, 0, {}, {}), 0)))
               .empty());
  BOOST_TEST(evaluate_alerts(
               compute_figures(parse_exposition(text(1, 4, 0, 0, {}, {}), 0)))
               .empty());
  alert_rules strict;
  strict.min_success_rate = 90;
  BOOST_TEST(
    evaluate_alerts(
      compute_figures(parse_exposition(text(8, 2, 0, 0, {}, {}), 0)), strict)
      .size()
    == 1u);
}

BOOST_AUTO_TEST_CASE(workers_lost_since_the_last_refresh) {
  auto lost = [](double n) {
    return text(50, 0, 0, 0, {}, {})
           + "alb_workers_left_total{reason=\"lost\"} " + std::to_string(n)
           + "\nalb_workers_left_total{reason=\"left\"} 7\n";
  };
  auto a = parse_exposition(lost(1), 0);
  auto b = parse_exposition(lost(3), 1);
  auto alerts = evaluate_alerts(compute_figures(b, &a));
  BOOST_REQUIRE(alerts.size() == 1u);
  BOOST_TEST((alerts[0].kind == alert_kind::workers_lost));
  BOOST_TEST(alerts[0].message
             == "2 workers lost since the last refresh (3 in all)");
  // None lost since, workers that left cleanly, or the first scrape: quiet.
  auto c = parse_exposition(lost(3), 2);
  BOOST_TEST(evaluate_alerts(compute_figures(c, &b)).empty());
  BOOST_TEST(evaluate_alerts(compute_figures(b)).empty());
}

BOOST_AUTO_TEST_CASE(cancelled_tests_are_no_failures) {
  // 10 completed, 1 failed, 9 cancelled: 10 of 11 that could succeed did.
  auto base = text(10, 1, 0, 0, {}, {});
  for (auto cancelled : {"alb_tests_failed_total{reason=\"cancelled\"} 9\n",
                         "alb_tests_cancelled_total{priority=\"1\"} 9\n"}) {
    monitor_state state;
    state.update(parse_exposition(base + cancelled, 0));
    auto& f = state.figures();
    BOOST_TEST(f.failed == 1, cancelled);
    BOOST_TEST(f.cancelled == 9);
    BOOST_TEST(f.success_rate == 100.0 * 10 / 11,
               boost::test_tools::tolerance(1e-9));
    BOOST_TEST(state.alerts().empty(), summary_line(state));
    BOOST_TEST(summary_line(state).find(
                 "success 90.9% (10 completed, 1 failed, 9 cancelled)")
                 != std::string::npos,
               summary_line(state));
  }
}

BOOST_AUTO_TEST_CASE(workers_over_90_percent_load_are_listed) {
  // Two tests wait, one worker idles.
  auto one = evaluate_alerts(compute_figures(
    parse_exposition(text(0, 0, 2, 1, {{"w-0", 0.5}, {"w-7", 0.95}}, {}), 0)));
  BOOST_REQUIRE(one.size() == 1u);
  BOOST_TEST((one[0].kind == alert_kind::worker_overloaded));
  BOOST_TEST(one[0].message
             == "worker w-7 at 95% load (over 90%) while 1 worker is idle "
                "and 2 tests wait");
  auto many = evaluate_alerts(compute_figures(parse_exposition(
    text(0, 0, 1, 1, {{"a", 1}, {"b", 0.91}, {"c", 0.2}}, {}), 0)));
  BOOST_REQUIRE(many.size() == 1u);
  BOOST_TEST(many[0].message
             == "2 workers over 90% load: a 100%, b 91% while 1 worker is "
                "idle and 1 test waits");
}

BOOST_AUTO_TEST_CASE(a_full_worker_is_no_alert_while_nothing_waits) {
  // 20 workers, 8 of them full, 12 idle, nothing queued or parked: the
  // balancer has nothing to place and no worker is overloaded.
  std::vector<std::pair<std::string, double>> loads;
  for (int i = 0; i < 20; ++i)
    loads.emplace_back("w-" + std::to_string(i), i < 8 ? 1.0 : 0.0);
  auto snap = parse_exposition(text(100, 0, 0, 12, loads, {}), 0);
  auto alerts = evaluate_alerts(compute_figures(snap));
  BOOST_TEST(alerts.empty(), (alerts.empty() ? "" : alerts[0].message));
}

BOOST_AUTO_TEST_CASE(a_hot_worker_alerts_while_tests_wait_and_others_idle) {
  auto f = compute_figures(
    parse_exposition(text(0, 0, 3, 2, {{"w-0", 0.5}, {"w-7", 0.95}}, {}), 0));
  auto alerts = evaluate_alerts(f);
  BOOST_REQUIRE(alerts.size() == 1u);
  BOOST_TEST((alerts[0].kind == alert_kind::worker_overloaded));
  BOOST_TEST(alerts[0].message
             == "worker w-7 at 95% load (over 90%) while 2 workers are idle "
                "and 3 tests wait");
  // Tests wait but no worker is idle: the cluster is full, not unbalanced.
  auto full = compute_figures(
    parse_exposition(text(0, 0, 3, 0, {{"w-0", 0.5}, {"w-7", 0.95}}, {}), 0));
  BOOST_TEST(evaluate_alerts(full).empty());
}

BOOST_AUTO_TEST_CASE(tests_that_just_arrived_are_no_unattended_queue) {
  // The queue was empty at the last refresh: new arrivals with idle workers
  // about to take them do not show that nobody takes them.
  auto a = parse_exposition(text(50, 0, 0, 2, {}, {}), 0);
  auto b = parse_exposition(text(50, 0, 4, 2, {}, {}), 1);
  BOOST_TEST(evaluate_alerts(compute_figures(b, &a)).empty());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(rendering)

BOOST_AUTO_TEST_CASE(waits_below_the_first_bucket_show_as_at_most_its_bound) {
  // Every placement waited 0.4 ms: all in the first bucket (<= 1 ms). The
  // histogram cannot tell 0.4 from 0.9 ms, so no invented midpoint.
  m::registry reg{{"stress", "adaptive"}};
  m::prometheus_observer obs{reg};
  obs.on_worker_joined(0, "w-0");
  for (int i = 0; i < 50; ++i) {
    obs.on_submitted(1);
    obs.on_assigned(0, 1, "adaptive", 0.0004);
  }
  monitor_state state;
  state.update(parse_exposition(reg.scrape(), 0));
  auto line = summary_line(state);
  BOOST_TEST(line.find("wait p50 <= 1 ms p99 <= 1 ms") != std::string::npos,
             line);
  BOOST_TEST(line.find("500") == std::string::npos, line);
  BOOST_TEST(summary_line(state, true).find("wait p50 \u2264 1 ms")
             != std::string::npos);
}

BOOST_AUTO_TEST_CASE(waits_above_the_last_bound_show_as_more_than_it) {
  monitor_state state;
  state.update(parse_exposition(text(1, 0, 0, 0, {}, {0, 0, 0, 5}), 0));
  auto line = summary_line(state);
  BOOST_TEST(line.find("wait p50 > 10 s p99 > 10 s") != std::string::npos,
             line);
}

BOOST_AUTO_TEST_CASE(waits_inside_a_bucket_show_its_range) {
  monitor_state state;
  state.update(parse_exposition(text(1, 0, 0, 0, {}, {0, 5, 10, 10}), 0));
  auto line = summary_line(state);
  BOOST_TEST(line.find("wait p50 0.1-1 s p99 1-10 s") != std::string::npos,
             line);
}

BOOST_AUTO_TEST_CASE(the_screen_fits_the_terminal_and_shows_the_figures) {
  monitor_state state;
  std::vector<std::pair<std::string, double>> loads;
  for (int i = 0; i < 30; ++i)
    loads.emplace_back("w-" + std::to_string(i), i / 32.0);
  for (int t = 0; t < 5; ++t)
    state.update(parse_exposition(
      text(10.0 * t * t, 0, 2, 1, loads, {1.0 * t, 2.0 * t, 2.0 * t, 2.0 * t}),
      t));
  BOOST_TEST(state.peak_throughput() == 70);
  BOOST_TEST(state.throughput_history().size() == 4u);
  for (bool unicode : {true, false})
    for (auto [w, h] : {std::pair{80, 24}, {120, 50}, {40, 10}, {20, 3}}) {
      render_options opts;
      opts.width = w;
      opts.height = h;
      opts.unicode = unicode;
      opts.hint = "q quits";
      auto lines = render_screen(state, opts);
      BOOST_TEST(lines.size() <= static_cast<std::size_t>(h));
      for (auto& l : lines)
        BOOST_TEST(columns(l.text) < static_cast<std::size_t>(w), l.text);
      BOOST_TEST((lines[0].style == line_style::title));
    }
  render_options opts;
  opts.width = 100;
  opts.height = 50;
  opts.unicode = false;
  std::string all;
  for (auto& l : render_screen(state, opts))
    all += l.text + "\n";
  BOOST_TEST(all.find("Throughput  70.0 tests/s now   peak 70.0/s")
               != std::string::npos,
             all);
  BOOST_TEST(all.find("stress run, strategy adaptive") != std::string::npos);
  BOOST_TEST(all.find("Workers     4 registered") != std::string::npos);
  BOOST_TEST(all.find("Throughput history") != std::string::npos);
  BOOST_TEST(all.find("w-29") != std::string::npos); // busiest first
  BOOST_TEST(all.find("Alerts") != std::string::npos);
  BOOST_TEST(all.find("#") != std::string::npos); // graph and load bars
  auto line = summary_line(state);
  BOOST_TEST(line.find("throughput 70.0/s peak 70.0/s") != std::string::npos,
             line);
  BOOST_TEST(line.find("alerts: worker w-29 at 91% load (over 90%) while 1 "
                       "worker is idle and 2 tests wait")
               != std::string::npos,
             line);
}

BOOST_AUTO_TEST_CASE(an_unreachable_target_keeps_the_stale_figures) {
  monitor_state state;
  render_options opts;
  auto first = render_screen(state, opts);
  BOOST_TEST(first.size() >= 2u);
  state.unreachable(
    unreachable_message("http://h:1/metrics", "connection refused", 1, false));
  BOOST_TEST(state.is_unreachable());
  BOOST_TEST(summary_line(state)
             == "cannot reach http://h:1/metrics: connection refused - "
                "retrying every 1 s");
  auto lines = render_screen(state, opts);
  BOOST_TEST(lines[1].text == state.error());
  BOOST_TEST((lines[1].style == line_style::alert));
  state.update(parse_exposition(text(1, 0, 0, 0, {}, {}), 0));
  BOOST_TEST(!state.is_unreachable());
  state.unreachable("gone");
  lines = render_screen(state, opts);
  BOOST_TEST(lines[2].text.find("stale") != std::string::npos);
  BOOST_TEST((lines[2].style == line_style::dim));
}

BOOST_AUTO_TEST_CASE(a_target_without_alb_metrics_is_named) {
  monitor_state state;
  state.update(parse_exposition("node_load1 0.5\n", 0));
  BOOST_TEST(summary_line(state).find("no alb_* metrics") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(fetching)

BOOST_AUTO_TEST_CASE(urls_parse_with_defaults) {
  auto u = parse_metrics_url("http://127.0.0.1:9464/metrics");
  BOOST_TEST(u.host == "127.0.0.1");
  BOOST_TEST(u.port == 9464);
  BOOST_TEST(u.path == "/metrics");
  u = parse_metrics_url("localhost:8080");
  BOOST_TEST(u.host == "localhost");
  BOOST_TEST(u.port == 8080);
  BOOST_TEST(u.path == "/metrics");
  u = parse_metrics_url("HTTP://[::1]:9/x?y=1#frag");
  BOOST_TEST(u.host == "::1");
  BOOST_TEST(u.port == 9);
  BOOST_TEST(u.path == "/x?y=1");
  BOOST_TEST(parse_metrics_url("http://example.org").port == 80);
  u = parse_metrics_url("https://example.org");
  BOOST_TEST(u.scheme == "https");
  BOOST_TEST(u.port == 443);
  BOOST_TEST(u.full() == "https://example.org:443/metrics");
  BOOST_TEST(parse_metrics_url("http://[::1]:9/m").full()
             == "http://[::1]:9/m");
}

BOOST_AUTO_TEST_CASE(bad_urls_are_refused_with_a_reason) {
  for (auto bad : {"", "ftp://h", "file:///etc/passwd", "http://", "http://:80",
                   "http://h:0", "http://h:65536", "http://h:x", "http://h:",
                   "http://a b", "http://u@h", "http://[::1", "http://::1:80"})
    BOOST_CHECK_THROW(parse_metrics_url(bad), std::invalid_argument);
  try {
    parse_metrics_url("ftp://h/metrics");
    BOOST_FAIL("ftp:// accepted");
  } catch (const std::invalid_argument& e) {
    BOOST_TEST(std::string{e.what()}
               == "URL 'ftp://h/metrics' has scheme 'ftp'; only http:// and "
                  "https:// are supported");
  }
}

BOOST_AUTO_TEST_CASE(a_closed_port_is_connection_refused) {
  auto port = closed_port();
  auto r = fetch_metrics(parse_metrics_url("127.0.0.1:" + std::to_string(port)),
                         within(2));
  BOOST_TEST(!r.ok);
  BOOST_TEST(r.error == "connection refused");
  BOOST_TEST(unreachable_message("http://127.0.0.1:1/metrics", r.error, 1)
             == "cannot reach http://127.0.0.1:1/metrics: connection refused "
                "\u2014 retrying every 1 s");
  auto bad
    = fetch_metrics(parse_metrics_url("no-such-host.invalid"), within(2));
  BOOST_TEST(!bad.ok);
  BOOST_TEST(bad.error.find("cannot resolve host 'no-such-host.invalid'")
             == 0u);
}

BOOST_AUTO_TEST_CASE(a_real_metrics_server_is_fetched_and_parsed) {
  m::registry reg{{"stress", "adaptive"}};
  m::prometheus_observer obs{reg};
  some_activity(obs);
  m::server srv{reg, "127.0.0.1", 0};
  auto r = fetch_metrics(parse_metrics_url(srv.url()), within(5));
  BOOST_TEST(r.ok, r.error);
  auto snap = parse_exposition(r.body);
  BOOST_TEST(snap.malformed_lines == 0u);
  BOOST_TEST(snap.sum("alb_tests_submitted_total") == 5);
  auto missing = fetch_metrics(
    parse_metrics_url("127.0.0.1:" + std::to_string(srv.port()) + "/nothing"),
    within(5));
  BOOST_TEST(!missing.ok);
  BOOST_TEST(missing.error.find("HTTP 404") == 0u, missing.error);
}

BOOST_AUTO_TEST_CASE(https_is_fetched_and_the_certificate_checked) {
  m::registry reg{{"stress", "adaptive"}};
  m::prometheus_observer obs{reg};
  some_activity(obs);
  tls_file_server srv{reg.scrape()};
  auto opts = within(5);
  opts.ca_file = srv.cert;
  auto r = fetch_metrics(parse_metrics_url(srv.url()), opts);
  BOOST_TEST(r.ok, r.error);
  BOOST_TEST(parse_exposition(r.body).sum("alb_tests_submitted_total") == 5);
  // Without its CA the self-signed certificate is refused, with a reason.
  auto untrusted = fetch_metrics(parse_metrics_url(srv.url()), within(5));
  BOOST_TEST(!untrusted.ok);
  BOOST_TEST(untrusted.error.find("TLS: ") == 0u, untrusted.error);
  // And the command takes it end to end.
  auto cmd = run_alb("monitor --url " + srv.url() + " --cacert " + srv.cert
                     + " --interval 0.1 --count 1");
  BOOST_TEST(cmd.status == 0, cmd.err);
  BOOST_TEST(cmd.out.find("workers 2 (2 busy, 0 idle)") != std::string::npos,
             cmd.out);
}

BOOST_AUTO_TEST_CASE(http_to_a_tls_port_says_so) {
  tls_file_server srv{"alb_run_info 1\n"};
  auto url = "http://127.0.0.1:" + std::to_string(srv.port) + "/metrics";
  auto r = fetch_metrics(parse_metrics_url(url), within(5));
  BOOST_TEST(!r.ok);
  BOOST_TEST(r.error == "empty response (is it an https:// server?)");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(command)

BOOST_AUTO_TEST_CASE(bad_url_or_interval_exit_2_naming_the_flag) {
  for (auto args : {"--url ftp://h/metrics", "--url http://h:99999", "--url ''",
                    "--interval 0", "--interval abc", "--interval -1",
                    "--count -3", "--cacert /nonexistent/ca.pem"}) {
    auto r = run_alb(std::string{"monitor "} + args);
    BOOST_TEST(r.status == 2, args);
    auto first = r.err.substr(0, r.err.find('\n'));
    BOOST_TEST((first.find("--url") != std::string::npos
                || first.find("--interval") != std::string::npos
                || first.find("--count") != std::string::npos
                || first.find("--cacert") != std::string::npos),
               first);
    BOOST_TEST(r.out.empty());
  }
}

BOOST_AUTO_TEST_CASE(unreachable_target_is_reported_and_retried) {
  auto url = "http://127.0.0.1:" + std::to_string(closed_port()) + "/metrics";
  auto r = run_alb("monitor --url " + url + " --interval 0.2 --count 3");
  BOOST_TEST(r.status == 1); // never reached
  BOOST_TEST(count_of(r.out, "cannot reach " + url
                               + ": connection refused - retrying every "
                                 "0.2 s")
               == 3u,
             r.out);
  BOOST_TEST(count_of(r.out, "\n") == 3u);
}

BOOST_AUTO_TEST_CASE(a_pipe_gets_one_summary_line_per_interval) {
  m::registry reg{{"stress", "adaptive"}};
  m::prometheus_observer obs{reg};
  some_activity(obs);
  m::server srv{reg, "127.0.0.1", 0};
  auto r = run_alb("monitor --url " + srv.url() + " --interval 0.1 --count 3");
  BOOST_TEST(r.status == 0, r.err);
  BOOST_TEST(count_of(r.out, "\n") == 3u, r.out);
  BOOST_TEST(count_of(r.out, "workers 2 (2 busy, 0 idle) | queue 3") == 3u,
             r.out);
  BOOST_TEST(r.out.find("success 50.0%") != std::string::npos);
  // The first line has no rate yet; the later ones do.
  BOOST_TEST(r.out.find("throughput -/s") != std::string::npos);
  BOOST_TEST(r.out.find("throughput 0.0/s") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
