// The node's own /metrics: node_metrics counts what the observed executor
// tells it, and the observed executor reports every start and end of the
// executor it wraps exactly once.

#define BOOST_TEST_MODULE node_metrics
#include <boost/test/unit_test.hpp>

#include "actors/observed_executor.hpp"
#include "metrics/node_metrics.hpp"
#include "metrics/server.hpp"

#include <map>
#include <sstream>
#include <string>

using namespace alb;

namespace {

/// The value of the sample `name` (with its labels) in `text`, or -1.
double sample(const std::string& text, const std::string& name) {
  std::istringstream in{text};
  for (std::string line; std::getline(in, line);)
    if (line.rfind(name + " ", 0) == 0)
      return std::stod(line.substr(name.size() + 1));
  return -1;
}

/// A host whose clock the test sets.
struct fake_host : executor_host {
  double t = 0;
  double now() const override { return t; }
  void timer(double, uint64_t) override {
    // nop
  }
  void deadline(double, uint64_t) override {
    // nop
  }
  std::function<void()> exit_notifier(uint64_t) override {
    return [] {};
  }
};

/// An executor whose runs end as the test says: `start` ends at once when
/// the item's command is {"instant-fail"}; `on_exit` ends a run with the
/// outcome stored for it.
struct scripted_executor : executor {
  std::map<uint64_t, work_report> ends;
  int stops = 0;
  bool start(executor_host&, uint64_t, const work_item& item,
             work_report& done) override {
    if (!item.command.empty() && item.command[0] == "instant-fail") {
      done.success = false;
      return false;
    }
    return true;
  }
  bool on_timer(executor_host&, uint64_t, const work_item&,
                work_report&) override {
    return false;
  }
  bool on_deadline(executor_host&, uint64_t, const work_item&,
                   work_report&) override {
    return false;
  }
  bool on_exit(executor_host&, uint64_t seq, const work_item&,
               work_report& r) override {
    auto i = ends.find(seq);
    if (i == ends.end())
      return false;
    r = i->second;
    return true;
  }
  void stop(uint64_t) override { ++stops; }
  void fill_load(executor_host&, worker_load&) override {
    // nop
  }
};

metrics::node_info info() {
  metrics::node_info i;
  i.name = "n1";
  i.slots = 3;
  i.cores = 4;
  i.memory_gb = 2;
  i.accelerators = {{"cuda", 2}};
  return i;
}

} // namespace

BOOST_AUTO_TEST_CASE(node_metrics_export_what_the_node_offers) {
  metrics::node_metrics m{info()};
  auto text = m.scrape();
  BOOST_TEST(sample(text, "alb_node_slots") == 3);
  BOOST_TEST(sample(text, "alb_node_cores") == 4);
  BOOST_TEST(sample(text, "alb_node_memory_bytes") == 2.0 * (1 << 30));
  BOOST_TEST(sample(text, "alb_node_accelerators{type=\"cuda\"}") == 2);
  BOOST_TEST(sample(text, "alb_node_info{node=\"n1\"}") == 1);
  BOOST_TEST(sample(text, "alb_node_connected") == 0);
  m.set_connected(true);
  BOOST_TEST(sample(m.scrape(), "alb_node_connected") == 1);
  for (auto o : {"passed", "failed", "timed_out", "withdrawn"})
    BOOST_TEST(sample(text, std::string{"alb_node_tests_ended_total{outcome=\""}
                              + o + "\"}")
               == 0);
}

BOOST_AUTO_TEST_CASE(observed_executor_counts_each_start_and_end_once) {
  auto m = std::make_shared<metrics::node_metrics>(info());
  auto inner = std::make_unique<scripted_executor>();
  auto* script = inner.get();
  auto exec = observe_runs(std::move(inner), m);
  fake_host host;
  work_item item;
  item.command = {"x"};
  work_report r;
  BOOST_TEST(exec->start(host, 1, item, r));
  BOOST_TEST(exec->start(host, 2, item, r));
  BOOST_TEST(exec->start(host, 3, item, r));
  BOOST_TEST(exec->start(host, 4, item, r));
  auto text = m->scrape();
  BOOST_TEST(sample(text, "alb_node_slots_busy") == 4);
  BOOST_TEST(sample(text, "alb_node_tests_started_total") == 4);
  // 1 passes after 2 s, 2 times out; an exit notice without an end (the
  // inner executor says "not yet") counts nothing.
  host.t = 2;
  script->ends[1] = work_report{};
  work_report timed_out;
  timed_out.success = false;
  timed_out.timed_out = true;
  script->ends[2] = timed_out;
  BOOST_TEST(!exec->on_exit(host, 3, item, r));
  BOOST_TEST(exec->on_exit(host, 1, item, r));
  BOOST_TEST(exec->on_exit(host, 2, item, r));
  // 3 is withdrawn; 5 fails at start.
  exec->stop(3);
  BOOST_TEST(script->stops == 1);
  item.command = {"instant-fail"};
  work_report fresh;
  BOOST_TEST(!exec->start(host, 5, item, fresh));
  text = m->scrape();
  BOOST_TEST(sample(text, "alb_node_slots_busy") == 1);
  BOOST_TEST(sample(text, "alb_node_tests_started_total") == 5);
  BOOST_TEST(sample(text, "alb_node_tests_ended_total{outcome=\"passed\"}")
             == 1);
  BOOST_TEST(sample(text, "alb_node_tests_ended_total{outcome=\"timed_out\"}")
             == 1);
  BOOST_TEST(sample(text, "alb_node_tests_ended_total{outcome=\"failed\"}")
             == 1);
  BOOST_TEST(sample(text, "alb_node_tests_ended_total{outcome=\"withdrawn\"}")
             == 1);
  BOOST_TEST(sample(text, "alb_node_test_duration_seconds_count") == 3);
  BOOST_TEST(sample(text, "alb_node_test_duration_seconds_sum") == 4);
  // A stop of a run that already ended counts nothing more.
  exec->stop(1);
  // The worker ends with 4 still running: it ends with the worker.
  exec.reset();
  text = m->scrape();
  BOOST_TEST(sample(text, "alb_node_slots_busy") == 0);
  BOOST_TEST(sample(text, "alb_node_tests_ended_total{outcome=\"withdrawn\"}")
             == 2);
}

BOOST_AUTO_TEST_CASE(node_metrics_are_served_on_their_own_port) {
  metrics::node_metrics m{info()};
  metrics::server srv{m.collectable(), "127.0.0.1", 0};
  BOOST_TEST(srv.port() > 0);
  BOOST_TEST(srv.url().find("http://127.0.0.1:") == 0);
  BOOST_CHECK_THROW((metrics::server{m.collectable(), "10.1.2.3", 0}),
                    metrics::server_error);
}
