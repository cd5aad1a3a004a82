// Tests of the metrics layer: the observer updates the right series, the
// per-worker cardinality cap holds, and the /metrics server binds as promised.

#define BOOST_TEST_MODULE metrics
#include <boost/test/unit_test.hpp>

#include "actors/messages.hpp"
#include "actors/scheduler.hpp"
#include "actors/simulation_run.hpp"
#include "actors/system.hpp"
#include "actors/worker.hpp"
#include "metrics/prometheus_observer.hpp"
#include "metrics/registry.hpp"
#include "metrics/server.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/send.hpp>
#include <prometheus/collectable.h>
#include <prometheus/text_serializer.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using alb::failure_kind;
using namespace alb::metrics;

/// One scrape parsed into "name{labels}" -> value, keys exactly as exposed.
std::map<std::string, double> parse(const std::string& text) {
  std::map<std::string, double> result;
  std::istringstream in{text};
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#')
      continue;
    auto sp = line.rfind(' ');
    BOOST_REQUIRE_MESSAGE(sp != std::string::npos, "bad line: " << line);
    result[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
  }
  return result;
}

/// Scrapes `reg` as the exposer does: TextSerializer over the registry's
/// collectable (which flushes the observers first).
std::map<std::string, double> scrape(registry& reg) {
  return parse(
    prometheus::TextSerializer{}.Serialize(reg.collectable()->Collect()));
}

std::optional<double> value(const std::map<std::string, double>& m,
                            const std::string& key) {
  auto i = m.find(key);
  if (i == m.end())
    return std::nullopt;
  return i->second;
}

double get(const std::map<std::string, double>& m, const std::string& key) {
  auto v = value(m, key);
  BOOST_REQUIRE_MESSAGE(v.has_value(), "series missing: " << key);
  return *v;
}

std::size_t count_prefix(const std::map<std::string, double>& m,
                         const std::string& prefix) {
  std::size_t n = 0;
  for (auto& kv : m)
    if (kv.first.compare(0, prefix.size(), prefix) == 0)
      ++n;
  return n;
}

/// A listening TCP socket on 127.0.0.1, closed on destruction.
struct listener {
  int fd = -1;
  std::uint16_t port = 0;
  listener() {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    BOOST_REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0);
    BOOST_REQUIRE(listen(fd, 4) == 0);
    socklen_t len = sizeof(sa);
    getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
    port = ntohs(sa.sin_port);
  }
  ~listener() { close(fd); }
};

/// Fetches `path` from 127.0.0.1:`port` with a plain HTTP/1.0 GET.
std::string http_get(std::uint16_t port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  BOOST_REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0);
  std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  BOOST_REQUIRE(write(fd, req.data(), req.size())
                == static_cast<ssize_t>(req.size()));
  std::string resp;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;)
    resp.append(buf, static_cast<std::size_t>(n));
  close(fd);
  return resp;
}

} // namespace

BOOST_AUTO_TEST_SUITE(observer)

BOOST_AUTO_TEST_CASE(counters_start_at_zero_with_every_known_label_set) {
  registry reg{{"stress", "adaptive"}};
  prometheus_observer obs{reg};
  auto m = scrape(reg);
  for (int p = 1; p <= 5; ++p) {
    auto l = "{priority=\"" + std::to_string(p) + "\"}";
    BOOST_TEST(get(m, "alb_tests_submitted_total" + l) == 0);
    BOOST_TEST(get(m, "alb_tests_completed_total" + l) == 0);
    BOOST_TEST(get(m, "alb_tests_cancelled_total" + l) == 0);
    for (auto st : {"ready", "parked", "key_wait"})
      BOOST_TEST(get(m, "alb_queue_depth{priority=\"" + std::to_string(p)
                          + "\",state=\"" + st + "\"}")
                 == 0);
  }
  BOOST_TEST(count_prefix(m, "alb_queue_depth{") == 15u);
  for (auto r : {"execution", "timeout", "unplaceable"})
    BOOST_TEST(
      get(m, "alb_tests_failed_total{reason=\"" + std::string{r} + "\"}") == 0);
  // A cancel is not a failure: no such reason.
  BOOST_TEST(count_prefix(m, "alb_tests_failed_total{") == 3u);
  BOOST_TEST(get(m, "alb_tests_migrated_total") == 0);
  BOOST_TEST(get(m, "alb_tests_stolen_total") == 0);
  BOOST_TEST(get(m, "alb_tests_speculated_total") == 0);
  BOOST_TEST(get(m, "alb_speculation_wins_total") == 0);
  BOOST_TEST(get(m, "alb_nodes_connected") == 0);
  BOOST_TEST(get(m, "alb_adaptive_choices_total{strategy=\"least_loaded\"}")
             == 0);
  BOOST_TEST(get(m, "alb_placements_total{strategy=\"power_of_two\"}") == 0);
  BOOST_TEST(get(m, "alb_workers_left_total{reason=\"lost\"}") == 0);
  BOOST_TEST(get(m, "alb_run_info{mode=\"stress\",strategy=\"adaptive\"}")
             == 1);
}

BOOST_AUTO_TEST_CASE(test_lifecycle_events_update_their_series) {
  registry reg;
  prometheus_observer obs{reg};
  alb::scheduler_observer& base = obs;
  base.on_worker_joined(0, "w-0");
  base.on_submitted(1);
  base.on_submitted(3);
  base.on_submitted(3);
  base.on_submitted(9); // clamped into priority 5
  base.on_assigned(0, 3, "least_loaded", 0.004);
  base.on_assigned(0, 3, "least_loaded", 2.0);
  base.on_completed(0, 3, 1.5);
  base.on_failed(3, failure_kind::timeout);
  base.on_failed(1, failure_kind::unplaceable);
  base.on_failed(1, failure_kind::unplaceable);
  base.on_failed(4, failure_kind::cancelled);
  base.on_retried(2);
  base.on_requeued(4);
  base.on_migrated();
  base.on_stolen();
  base.on_stolen();
  base.on_speculated();
  base.on_speculated();
  base.on_speculation_win();
  auto m = scrape(reg);
  BOOST_TEST(get(m, "alb_tests_submitted_total{priority=\"1\"}") == 1);
  BOOST_TEST(get(m, "alb_tests_submitted_total{priority=\"3\"}") == 2);
  BOOST_TEST(get(m, "alb_tests_submitted_total{priority=\"5\"}") == 1);
  BOOST_TEST(get(m, "alb_tests_assigned_total{priority=\"3\"}") == 2);
  BOOST_TEST(get(m, "alb_tests_assigned_total{priority=\"1\"}") == 0);
  BOOST_TEST(get(m, "alb_placements_total{strategy=\"least_loaded\"}") == 2);
  BOOST_TEST(get(m, "alb_placements_total{strategy=\"round_robin\"}") == 0);
  BOOST_TEST(get(m, "alb_tests_completed_total{priority=\"3\"}") == 1);
  BOOST_TEST(get(m, "alb_tests_failed_total{reason=\"timeout\"}") == 1);
  BOOST_TEST(get(m, "alb_tests_failed_total{reason=\"unplaceable\"}") == 2);
  BOOST_TEST(get(m, "alb_tests_failed_total{reason=\"execution\"}") == 0);
  // The cancel counts apart, by priority, and in no failure reason.
  BOOST_TEST(get(m, "alb_tests_cancelled_total{priority=\"4\"}") == 1);
  BOOST_TEST(!value(m, "alb_tests_failed_total{reason=\"cancelled\"}"));
  BOOST_TEST(get(m, "alb_tests_retried_total{priority=\"2\"}") == 1);
  BOOST_TEST(get(m, "alb_tests_requeued_total{priority=\"4\"}") == 1);
  BOOST_TEST(get(m, "alb_tests_migrated_total") == 1);
  BOOST_TEST(get(m, "alb_tests_stolen_total") == 2);
  BOOST_TEST(get(m, "alb_tests_speculated_total") == 2);
  BOOST_TEST(get(m, "alb_speculation_wins_total") == 1);
  // Wait histogram: 4 ms lands in le=0.005, 2 s in le=2.5.
  BOOST_TEST(get(m, "alb_assignment_wait_seconds_count") == 2);
  BOOST_TEST(get(m, "alb_assignment_wait_seconds_sum") == 2.004,
             boost::test_tools::tolerance(1e-9));
  BOOST_TEST(get(m, "alb_assignment_wait_seconds_bucket{le=\"0.0025\"}") == 0);
  BOOST_TEST(get(m, "alb_assignment_wait_seconds_bucket{le=\"0.005\"}") == 1);
  BOOST_TEST(get(m, "alb_assignment_wait_seconds_bucket{le=\"1\"}") == 1);
  BOOST_TEST(get(m, "alb_assignment_wait_seconds_bucket{le=\"2.5\"}") == 2);
  BOOST_TEST(get(m, "alb_assignment_wait_seconds_bucket{le=\"300\"}") == 2);
  BOOST_TEST(get(m, "alb_test_duration_seconds_count") == 1);
  BOOST_TEST(get(m, "alb_test_duration_seconds_sum") == 1.5);
  BOOST_TEST(get(m, "alb_worker_assignments_total{worker=\"w-0\"}") == 2);
  BOOST_TEST(get(m, "alb_worker_completions_total{worker=\"w-0\"}") == 1);
}

BOOST_AUTO_TEST_CASE(strategy_labels_are_bounded) {
  registry reg;
  prometheus_observer obs{reg};
  obs.on_strategy_choice("least_loaded");
  obs.on_strategy_choice("least_loaded");
  obs.on_strategy_choice("best_fit");
  obs.on_strategy_choice("my_new_strategy");
  for (int i = 0; i < 100; ++i)
    obs.on_strategy_choice("bogus_" + std::to_string(i));
  auto m = scrape(reg);
  BOOST_TEST(get(m, "alb_adaptive_choices_total{strategy=\"least_loaded\"}")
             == 2);
  BOOST_TEST(get(m, "alb_adaptive_choices_total{strategy=\"best_fit\"}") == 1);
  BOOST_TEST(get(m, "alb_adaptive_choices_total{strategy=\"my_new_strategy\"}")
             == 1);
  // The table holds 24 names: 10 known + my_new_strategy + 13 bogus ones;
  // everything later is counted as "other".
  BOOST_TEST(count_prefix(m, "alb_adaptive_choices_total{") == 25u);
  BOOST_TEST(get(m, "alb_adaptive_choices_total{strategy=\"other\"}") == 87);
  BOOST_TEST(!value(m, "alb_adaptive_choices_total{strategy=\"bogus_99\"}"));
}

BOOST_AUTO_TEST_CASE(snapshot_sets_queue_and_worker_gauges) {
  registry reg;
  prometheus_observer obs{reg};
  alb::cluster_snapshot snap;
  snap.queued_by_priority[0] = 7;
  snap.queued_by_priority[4] = 2;
  snap.parked_by_priority[0] = 1;
  snap.parked_by_priority[2] = 2;
  snap.key_waiting_by_priority[4] = 5;
  snap.parked = 3;
  snap.workers = 10;
  snap.busy_workers = 4;
  snap.assigned = 12;
  snap.mean_load = 0.375;
  obs.on_snapshot(snap);
  obs.set_nodes(3);
  auto m = scrape(reg);
  auto depth = [&](int p, const char* st) {
    return get(m, "alb_queue_depth{priority=\"" + std::to_string(p)
                    + "\",state=\"" + st + "\"}");
  };
  BOOST_TEST(depth(1, "ready") == 7);
  BOOST_TEST(depth(1, "parked") == 1);
  BOOST_TEST(depth(2, "ready") == 0);
  BOOST_TEST(depth(3, "parked") == 2);
  BOOST_TEST(depth(5, "ready") == 2);
  BOOST_TEST(depth(5, "key_wait") == 5);
  // The queue is every waiting test: the family sums to all of them.
  double waiting = 0;
  for (auto& kv : m)
    if (kv.first.compare(0, 16, "alb_queue_depth{") == 0)
      waiting += kv.second;
  BOOST_TEST(waiting == 7 + 2 + 3 + 5);
  BOOST_TEST(!value(m, "alb_tests_parked"));
  BOOST_TEST(get(m, "alb_tests_in_flight") == 12);
  // Busy and idle partition the registered workers: no total beside them.
  BOOST_TEST(count_prefix(m, "alb_workers{") == 2u);
  BOOST_TEST(get(m, "alb_workers{state=\"busy\"}") == 4);
  BOOST_TEST(get(m, "alb_workers{state=\"idle\"}") == 6);
  BOOST_TEST(get(m, "alb_worker_mean_load_ratio") == 0.375);
  BOOST_TEST(get(m, "alb_nodes_connected") == 3);
}

BOOST_AUTO_TEST_CASE(decision_time_and_attempts) {
  registry reg;
  prometheus_observer obs{reg};
  obs.observe_decision(3e-7);
  obs.observe_decision(4e-5);
  obs.observe_decision(2e-6, false);
  auto m = scrape(reg);
  BOOST_TEST(get(m, "alb_scheduling_decision_seconds_count") == 3);
  BOOST_TEST(get(m, "alb_scheduling_decision_seconds_bucket{le=\"1e-07\"}")
             == 0);
  BOOST_TEST(get(m, "alb_scheduling_decision_seconds_bucket{le=\"5e-07\"}")
             == 1);
  BOOST_TEST(get(m, "alb_scheduling_decision_seconds_bucket{le=\"2.5e-06\"}")
             == 2);
  BOOST_TEST(get(m, "alb_scheduling_decision_seconds_bucket{le=\"0.01\"}")
             == 3);
  BOOST_TEST(get(m, "alb_scheduling_attempts_total{result=\"placed\"}") == 2);
  BOOST_TEST(get(m, "alb_scheduling_attempts_total{result=\"deferred\"}") == 1);
}

BOOST_AUTO_TEST_CASE(worker_load_follows_the_worker) {
  registry reg;
  prometheus_observer obs{reg};
  obs.on_worker_joined(0, "a");
  obs.on_worker_joined(1, "b");
  obs.on_worker_load(0, 0.5, 2);
  obs.on_worker_load(1, 1.0, 4);
  auto m = scrape(reg);
  BOOST_TEST(get(m, "alb_worker_load_ratio{worker=\"a\"}") == 0.5);
  BOOST_TEST(get(m, "alb_worker_active_tests{worker=\"b\"}") == 4);
  BOOST_TEST(get(m, "alb_workers_joined_total") == 2);
  obs.on_worker_left(0, true);
  obs.on_worker_left(1, false);
  m = scrape(reg);
  BOOST_TEST(!value(m, "alb_worker_load_ratio{worker=\"a\"}"));
  BOOST_TEST(get(m, "alb_workers_left_total{reason=\"lost\"}") == 1);
  BOOST_TEST(get(m, "alb_workers_left_total{reason=\"left\"}") == 1);
  // Events for departed or unknown workers are ignored, not crashes.
  obs.on_worker_load(0, 0.9, 1);
  obs.on_worker_load(77, 0.9, 1);
  obs.on_completed(77, 1, 0.1);
  BOOST_TEST(count_prefix(scrape(reg), "alb_worker_load_ratio{") == 0u);
}

BOOST_AUTO_TEST_CASE(per_worker_series_are_capped) {
  registry reg;
  prometheus_observer obs{reg, observer_options{5}};
  for (std::size_t i = 0; i < 8; ++i)
    obs.on_worker_joined(i, "w" + std::to_string(i));
  for (std::size_t i = 0; i < 8; ++i)
    obs.on_worker_load(i, 0.25, 1);
  auto m = scrape(reg);
  BOOST_TEST(count_prefix(m, "alb_worker_load_ratio{") == 5u);
  BOOST_TEST(count_prefix(m, "alb_worker_active_tests{") == 5u);
  BOOST_TEST(count_prefix(m, "alb_worker_assignments_total{") == 5u);
  BOOST_TEST(get(m, "alb_workers_untracked") == 3);
  BOOST_TEST(get(m, "alb_worker_load_ratio{worker=\"w4\"}") == 0.25);
  BOOST_TEST(!value(m, "alb_worker_load_ratio{worker=\"w5\"}"));
  BOOST_TEST(obs.tracks_worker(4));
  BOOST_TEST(!obs.tracks_worker(5));
  // A tracked worker leaving frees its place for the next one to join; an
  // untracked one leaving only lowers the untracked count.
  obs.on_worker_left(2, false);
  obs.on_worker_left(6, false);
  obs.on_worker_joined(8, "w8");
  m = scrape(reg);
  BOOST_TEST(count_prefix(m, "alb_worker_load_ratio{") == 5u);
  BOOST_TEST(get(m, "alb_workers_untracked") == 2);
  BOOST_TEST(obs.tracks_worker(8));
  // Churn of many workers never exceeds the cap.
  for (std::size_t i = 9; i < 300; ++i) {
    obs.on_worker_joined(i, "c" + std::to_string(i));
    obs.on_worker_left(i - 1, i % 2 == 0);
  }
  m = scrape(reg);
  BOOST_TEST(count_prefix(m, "alb_worker_load_ratio{") <= 5u);
}

BOOST_AUTO_TEST_CASE(cap_is_shared_by_observers_of_one_registry) {
  registry reg;
  prometheus_observer shard_a{reg, observer_options{3}};
  prometheus_observer shard_b{reg, observer_options{3}};
  shard_a.on_worker_joined(0, "a0");
  shard_a.on_worker_joined(1, "a1");
  shard_b.on_worker_joined(0, "b0");
  shard_b.on_worker_joined(1, "b1");
  BOOST_TEST(count_prefix(scrape(reg), "alb_worker_load_ratio{") == 3u);
  BOOST_TEST(!shard_b.tracks_worker(1));
}

BOOST_AUTO_TEST_CASE(concurrent_scrapes_lose_and_double_count_nothing) {
  registry reg;
  prometheus_observer obs{reg};
  obs.on_worker_joined(0, "w");
  std::atomic<bool> stop{false};
  std::atomic<int> scrapes{0};
  std::thread scraper{[&] {
    while (!stop) {
      reg.scrape();
      ++scrapes;
    }
  }};
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    obs.on_submitted(1 + i % 5);
    obs.on_assigned(0, 1 + i % 5, i % 2 ? "best_fit" : "least_loaded", 0.5);
    obs.on_completed(0, 1, 0.02);
    obs.observe_decision(1e-6);
  }
  // Let the scraper overlap the whole run before stopping it.
  while (scrapes < 3)
    std::this_thread::yield();
  stop = true;
  scraper.join();
  auto m = scrape(reg);
  double submitted = 0;
  for (int p = 1; p <= 5; ++p)
    submitted += get(m, "alb_tests_submitted_total{priority=\""
                          + std::to_string(p) + "\"}");
  BOOST_TEST(submitted == n);
  BOOST_TEST(get(m, "alb_placements_total{strategy=\"best_fit\"}") == n / 2);
  BOOST_TEST(get(m, "alb_worker_completions_total{worker=\"w\"}") == n);
  BOOST_TEST(get(m, "alb_assignment_wait_seconds_count") == n);
  BOOST_TEST(get(m, "alb_assignment_wait_seconds_sum") == n * 0.5);
  BOOST_TEST(get(m, "alb_assignment_wait_seconds_bucket{le=\"0.25\"}") == 0);
  BOOST_TEST(get(m, "alb_assignment_wait_seconds_bucket{le=\"0.5\"}") == n);
  BOOST_TEST(get(m, "alb_scheduling_decision_seconds_count") == n);
}

BOOST_AUTO_TEST_CASE(counts_survive_the_observer) {
  registry reg;
  {
    prometheus_observer obs{reg};
    obs.on_stolen();
    obs.on_failed(2, failure_kind::cancelled);
    obs.on_worker_joined(3, "gone");
  }
  auto m = scrape(reg);
  BOOST_TEST(get(m, "alb_tests_stolen_total") == 1);
  BOOST_TEST(get(m, "alb_tests_cancelled_total{priority=\"2\"}") == 1);
  // Its worker series went with it.
  BOOST_TEST(count_prefix(m, "alb_worker_load_ratio{") == 0u);
  prometheus_observer next{reg, observer_options{1}};
  next.on_worker_joined(0, "fresh");
  BOOST_TEST(next.tracks_worker(0));
}

BOOST_AUTO_TEST_CASE(process_health_is_reported) {
  registry reg;
  auto m = parse(reg.scrape());
  // The standard names of Prometheus's client libraries, which stock process
  // dashboards query, and no alb_-prefixed copies.
  BOOST_TEST(get(m, "process_resident_memory_bytes") > 1e5);
  BOOST_TEST(get(m, "process_virtual_memory_bytes")
             >= get(m, "process_resident_memory_bytes"));
  BOOST_TEST(get(m, "process_threads") >= 1);
  BOOST_TEST(get(m, "process_open_fds") >= 3);
  BOOST_TEST(get(m, "process_max_fds") >= get(m, "process_open_fds"));
  BOOST_TEST(get(m, "process_cpu_seconds_total") >= 0);
  BOOST_TEST(count_prefix(m, "alb_process_") == 0u);
  auto start = get(m, "process_start_time_seconds");
  auto now = static_cast<double>(time(nullptr));
  // Started within the last hour, not in the future.
  BOOST_TEST(start <= now + 1);
  BOOST_TEST(start > now - 3600);
}

BOOST_AUTO_TEST_SUITE_END()

// Whole simulated runs (virtual time, one thread) with the observer attached:
// what a scrape says against what the run's own result file says.
BOOST_AUTO_TEST_SUITE(runs)

/// Scrapes its registry after every snapshot, as a Prometheus scraping at
/// tick resolution would, and keeps the largest total queue depth seen.
class scraping_observer : public prometheus_observer {
public:
  explicit scraping_observer(registry& reg)
    : prometheus_observer(reg), reg_(reg) {
    // nop
  }

  void on_snapshot(const alb::cluster_snapshot& snap) override {
    prometheus_observer::on_snapshot(snap);
    double depth = 0;
    for (auto& kv : scrape(reg_))
      if (kv.first.compare(0, 16, "alb_queue_depth{") == 0)
        depth += kv.second;
    peak_depth = std::max(peak_depth, depth);
  }

  /// Largest sum(alb_queue_depth) over all scrapes.
  double peak_depth = 0;

private:
  registry& reg_;
};

alb::simulation_options burst_run() {
  alb::simulation_options o;
  o.workers = 10;
  o.tests = 600;
  o.duration = 3;
  o.burst = true;
  o.deterministic = true;
  o.seed = 7;
  return o;
}

double series_peak(const nlohmann::json& doc, const char* name) {
  double peak = 0;
  for (auto& point : doc.at("time_series").at(name))
    peak = std::max(peak, point.at(1).get<double>());
  return peak;
}

BOOST_AUTO_TEST_CASE(queue_depth_peak_matches_the_result_file) {
  registry reg;
  scraping_observer obs{reg};
  auto o = burst_run();
  o.observer = &obs;
  auto r = alb::run_simulation(o);
  auto file_peak = series_peak(r.document, "queue_depth");
  // A burst run with a real backlog, or the comparison proves nothing.
  BOOST_REQUIRE(file_peak >= 100);
  BOOST_TEST(std::fabs(obs.peak_depth - file_peak) <= 0.1 * file_peak,
             "scraped alb_queue_depth peak "
               << obs.peak_depth << ", result file peak " << file_peak);
}

BOOST_AUTO_TEST_CASE(every_gauge_is_idle_after_the_run) {
  registry reg;
  prometheus_observer obs{reg};
  auto o = burst_run();
  o.dynamic = true;
  o.observer = &obs;
  auto r = alb::run_simulation(o);
  auto m = scrape(reg);
  auto& metrics = r.document.at("metrics");
  BOOST_REQUIRE(metrics.at("pending_tests").get<double>() == 0);
  BOOST_TEST(get(m, "alb_tests_in_flight") == 0);
  BOOST_TEST(get(m, "alb_workers{state=\"busy\"}") == 0);
  BOOST_TEST(get(m, "alb_workers{state=\"idle\"}")
             == metrics.at("final_worker_count").get<double>());
  BOOST_TEST(get(m, "alb_worker_mean_load_ratio") == 0);
  std::size_t loads = 0;
  for (auto& kv : m) {
    if (kv.first.compare(0, 16, "alb_queue_depth{") == 0)
      BOOST_TEST(kv.second == 0, kv.first << " = " << kv.second);
    if (kv.first.compare(0, 22, "alb_worker_load_ratio{") == 0) {
      ++loads;
      BOOST_TEST(kv.second == 0, kv.first << " = " << kv.second);
    }
    if (kv.first.compare(0, 24, "alb_worker_active_tests{") == 0)
      BOOST_TEST(kv.second == 0, kv.first << " = " << kv.second);
  }
  BOOST_TEST(loads == metrics.at("final_worker_count").get<std::size_t>());
}

BOOST_AUTO_TEST_CASE(worker_gauges_follow_joins_and_leaves_before_any_tick) {
  // CAF's deterministic scheduler: no time passes, so no tick fires and only
  // the join and leave themselves can have set the gauges.
  caf::actor_system_config cfg;
  alb::configure_system(cfg, 1, true);
  caf::actor_system sys{cfg};
  auto& sched
    = dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());
  registry reg;
  prometheus_observer obs{reg};
  alb::scheduler_options so;
  so.finish_when_done = false;
  so.observer = &obs;
  auto scheduler = alb::spawn_scheduler(sys, so);
  std::vector<alb::worker_actor> workers;
  for (auto id : {"w1", "w2", "w3"}) {
    alb::worker_options wo;
    wo.caps.worker_id = id;
    wo.caps.available_memory = 8;
    wo.caps.cpu_cores = 2;
    wo.caps.max_concurrent_tests = 2;
    workers.push_back(alb::spawn_worker(sys, scheduler, wo));
    sched.run();
  }
  auto m = scrape(reg);
  BOOST_TEST(get(m, "alb_workers{state=\"idle\"}") == 3);
  BOOST_TEST(get(m, "alb_workers{state=\"busy\"}") == 0);
  caf::anon_send_exit(workers[0], caf::exit_reason::kill);
  sched.run();
  caf::anon_send(workers[1], alb::leave_atom::value);
  sched.run();
  m = scrape(reg);
  BOOST_TEST(get(m, "alb_workers{state=\"idle\"}") == 1);
  BOOST_TEST(get(m, "alb_workers_left_total{reason=\"lost\"}") == 1);
  BOOST_TEST(get(m, "alb_workers_left_total{reason=\"left\"}") == 1);
  BOOST_TEST(count_prefix(m, "alb_worker_load_ratio{") == 1u);
  caf::anon_send_exit(scheduler, caf::exit_reason::user_shutdown);
  sched.run();
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(http)

BOOST_AUTO_TEST_CASE(port_zero_binds_a_real_port_and_serves_metrics) {
  registry reg;
  prometheus_observer obs{reg};
  obs.on_submitted(2);
  server srv{reg, "127.0.0.1", 0};
  BOOST_TEST(srv.port() != 0);
  BOOST_TEST(srv.url()
             == "http://127.0.0.1:" + std::to_string(srv.port()) + "/metrics");
  auto resp = http_get(srv.port(), "/metrics");
  BOOST_TEST(resp.find("200 OK") != std::string::npos);
  BOOST_TEST(resp.find("alb_tests_submitted_total{priority=\"2\"} 1")
             != std::string::npos);
  BOOST_TEST(resp.find("# HELP alb_queue_depth") != std::string::npos);
  BOOST_TEST(resp.find("process_resident_memory_bytes") != std::string::npos);
}

/// Opens `n` connections to 127.0.0.1:`port` that each send `prefix` (half a
/// request, or nothing) and then hold still, as a slow or hostile client
/// does; closes them on destruction.
struct half_open_clients {
  std::vector<int> fds;
  half_open_clients(std::uint16_t port, int n, const std::string& prefix) {
    for (int i = 0; i < n; ++i) {
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_port = htons(port);
      sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      BOOST_REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa))
                    == 0);
      if (!prefix.empty())
        BOOST_REQUIRE(write(fd, prefix.data(), prefix.size())
                      == static_cast<ssize_t>(prefix.size()));
      fds.push_back(fd);
    }
  }
  ~half_open_clients() {
    for (auto fd : fds)
      close(fd);
  }
};

/// Seconds a full GET /metrics takes, or a negative value when it gets no
/// complete answer within `limit` seconds.
double timed_scrape(std::uint16_t port, int limit) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{limit, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  auto t0 = std::chrono::steady_clock::now();
  BOOST_REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0);
  std::string req = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  BOOST_REQUIRE(write(fd, req.data(), req.size())
                == static_cast<ssize_t>(req.size()));
  std::string resp;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;)
    resp.append(buf, static_cast<std::size_t>(n));
  close(fd);
  auto dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
              .count();
  bool whole = resp.find("200 OK") != std::string::npos
               && resp.find("alb_run_info") != std::string::npos;
  return whole && dt <= limit ? dt : -1;
}

BOOST_AUTO_TEST_CASE(half_open_requests_do_not_block_a_scrape) {
  registry reg;
  server srv{reg, "127.0.0.1", 0};
  // A few clients stuck mid-request (headers never finished) and a few that
  // connect and send nothing: a scrape beside them is answered at once.
  half_open_clients partial{srv.port(), 4,
                            "GET /metrics HTTP/1.1\r\nHost: x\r\n"};
  half_open_clients silent{srv.port(), 2, ""};
  auto dt = timed_scrape(srv.port(), 2);
  BOOST_TEST(dt >= 0, "no answer within 2 s beside 6 half-open requests");
}

BOOST_AUTO_TEST_CASE(many_half_open_requests_time_out_and_free_the_server) {
  registry reg;
  server srv{reg, "127.0.0.1", 0};
  // More stuck clients than server threads: each is dropped after the
  // request timeout, so a scrape waits at most a few timeouts, not forever.
  half_open_clients partial{srv.port(), 16,
                            "GET /metrics HTTP/1.1\r\nHost: x\r\n"};
  auto dt = timed_scrape(srv.port(), 12);
  BOOST_TEST(dt >= 0, "no answer within 12 s beside 16 half-open requests");
}

BOOST_AUTO_TEST_CASE(busy_port_is_an_error_naming_the_port) {
  listener busy;
  registry reg;
  try {
    server srv{reg, "127.0.0.1", busy.port};
    BOOST_FAIL("binding a busy port succeeded");
  } catch (const server_error& e) {
    BOOST_TEST(std::string{e.what()}
               == "metrics port " + std::to_string(busy.port)
                    + " on 127.0.0.1 is in use");
  }
}

BOOST_AUTO_TEST_CASE(non_loopback_bind_is_refused_unless_allowed) {
  registry reg;
  BOOST_CHECK_THROW((server{reg, "0.0.0.0", 0}), server_error);
  try {
    server srv{reg, "0.0.0.0", 0};
  } catch (const server_error& e) {
    BOOST_TEST(std::string{e.what()}.find("0.0.0.0 is not loopback")
               != std::string::npos);
  }
  server srv{reg, "0.0.0.0", 0, true};
  BOOST_TEST(srv.port() != 0);
  // Reachable over loopback too, since 0.0.0.0 is every interface.
  BOOST_TEST(http_get(srv.port(), "/metrics").find("alb_run_info")
             != std::string::npos);
}

BOOST_AUTO_TEST_CASE(loopback_classification) {
  BOOST_TEST(is_loopback("127.0.0.1"));
  BOOST_TEST(is_loopback("127.1.2.3"));
  BOOST_TEST(is_loopback("localhost"));
  BOOST_TEST(is_loopback("::1"));
  BOOST_TEST(!is_loopback("0.0.0.0"));
  BOOST_TEST(!is_loopback("10.0.0.1"));
  BOOST_TEST(!is_loopback("::"));
  BOOST_TEST(!is_loopback("example.org"));
  BOOST_TEST(!is_loopback(""));
}

BOOST_AUTO_TEST_CASE(bad_bind_address_is_named) {
  registry reg;
  try {
    server srv{reg, "not-an-address", 0, true};
    BOOST_FAIL("a bad address was accepted");
  } catch (const server_error& e) {
    BOOST_TEST(std::string{e.what()}.find("'not-an-address'")
               != std::string::npos);
  }
}

BOOST_AUTO_TEST_SUITE_END()
