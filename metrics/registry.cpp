#include "metrics/registry.hpp"

#include "metrics/families.hpp"
#include "runtime/observer.hpp"

#include <prometheus/collectable.h>
#include <prometheus/text_serializer.h>

#include <chrono>
#include <dirent.h>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/resource.h>
#include <unistd.h>
#include <vector>

namespace alb::metrics {

namespace detail {

namespace {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;

Family<Counter>& counter(prometheus::Registry& reg, const char* name,
                         const char* help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(reg);
}

Family<Gauge>& gauge(prometheus::Registry& reg, const char* name,
                     const char* help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(reg);
}

Family<Histogram>& histogram(prometheus::Registry& reg, const char* name,
                             const char* help) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(reg);
}

template<class T>
std::array<T*, priority_levels> by_priority(Family<T>& fam) {
  std::array<T*, priority_levels> result{};
  for (std::size_t i = 0; i < priority_levels; ++i)
    result[i] = &fam.Add({{"priority", std::to_string(i + 1)}});
  return result;
}

} // namespace

const Histogram::BucketBoundaries& wait_buckets() {
  static const Histogram::BucketBoundaries result{
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1,     2.5,    5,     10,   30,    60,   120, 300};
  return result;
}

const Histogram::BucketBoundaries& duration_buckets() {
  static const Histogram::BucketBoundaries result{
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,  1,    2.5,
    5,     10,    30,   60,    120,  300, 600,  1200, 1800, 3600};
  return result;
}

const Histogram::BucketBoundaries& decision_buckets() {
  static const Histogram::BucketBoundaries result{
    1e-7, 2.5e-7, 5e-7,   1e-6, 2.5e-6, 5e-6,   1e-5, 2.5e-5,
    5e-5, 1e-4,   2.5e-4, 5e-4, 1e-3,   2.5e-3, 5e-3, 1e-2};
  return result;
}

strategy_counters::strategy_counters(Family<Counter>& family)
  : family_(family) {
  for (auto name : known_strategies) {
    names_[size_] = std::string{name};
    counters_[size_] = &family_.Add({{"strategy", names_[size_]}});
    ++size_;
  }
  other_ = &family_.Add({{"strategy", "other"}});
}

Counter& strategy_counters::get(std::string_view name) {
  std::lock_guard<std::mutex> guard{mtx_};
  for (std::size_t i = 0; i < size_; ++i)
    if (names_[i] == name)
      return *counters_[i];
  if (size_ == max_strategy_labels || name.empty() || name == "other")
    return *other_;
  // First sight of a strategy outside the known list: a one-off allocation.
  names_[size_] = std::string{name};
  counters_[size_] = &family_.Add({{"strategy", names_[size_]}});
  return *counters_[size_++];
}

families::families(prometheus::Registry& reg)
  : placements(counter(reg, "alb_placements_total",
                       "Tests placed on a worker, by the strategy that "
                       "placed them")),
    adaptive_choices(counter(reg, "alb_adaptive_choices_total",
                             "Decisions the adaptive strategy delegated, by "
                             "the strategy it chose")) {
  submitted = by_priority(counter(reg, "alb_tests_submitted_total",
                                  "Tests submitted to the scheduler"));
  assigned = by_priority(
    counter(reg, "alb_tests_assigned_total", "Tests assigned to a worker"));
  completed = by_priority(counter(reg, "alb_tests_completed_total",
                                  "Tests that completed successfully"));
  static_assert(static_cast<std::size_t>(failure_kind::cancelled)
                  == failure_reasons,
                "cancelled must be the last failure_kind");
  auto& failed_fam
    = counter(reg, "alb_tests_failed_total",
              "Tests that ended unsuccessfully (execution failure, timeout, "
              "unplaceable), by reason; cancelled tests are not failures and "
              "count in alb_tests_cancelled_total");
  for (std::size_t i = 0; i < failure_reasons; ++i)
    failed[i]
      = &failed_fam.Add({{"reason", to_string(static_cast<failure_kind>(i))}});
  cancelled = by_priority(counter(reg, "alb_tests_cancelled_total",
                                  "Tests cancelled by a user or at shutdown "
                                  "before they ended"));
  retried = by_priority(counter(reg, "alb_tests_retried_total",
                                "Failed attempts queued again for a retry"));
  requeued = by_priority(
    counter(reg, "alb_tests_requeued_total",
            "Tests returned to the queue because their worker left"));
  migrated = &counter(reg, "alb_tests_migrated_total",
                      "Queued tests moved off an overloaded worker by "
                      "rebalancing")
                .Add({});
  stolen = &counter(reg, "alb_tests_stolen_total",
                    "Queued tests taken by an idle worker from a busy one")
              .Add({});
  speculated = &counter(reg, "alb_tests_speculated_total",
                        "Straggling tests that got a speculative copy on a "
                        "faster worker")
                  .Add({});
  speculation_wins = &counter(reg, "alb_speculation_wins_total",
                              "Speculative copies that finished first (the "
                              "original was stopped)")
                        .Add({});
  assignment_wait = &histogram(reg, "alb_assignment_wait_seconds",
                               "Time from submission to assignment to a worker")
                       .Add({}, wait_buckets());
  test_duration = &histogram(reg, "alb_test_duration_seconds",
                             "Execution time of successfully completed tests")
                     .Add({}, duration_buckets());

  auto& queue_fam
    = gauge(reg, "alb_queue_depth",
            "Tests waiting for a worker, by priority and state: ready (placed "
            "once a slot frees), parked (no worker can hold them now), "
            "key_wait (concurrency key held); sum over state for the queue");
  for (std::size_t p = 0; p < priority_levels; ++p)
    for (std::size_t q = 0; q < queue_states.size(); ++q)
      queue_depth[p][q]
        = &queue_fam.Add({{"priority", std::to_string(p + 1)},
                          {"state", std::string{queue_states[q]}}});
  in_flight = &gauge(reg, "alb_tests_in_flight",
                     "Tests assigned to workers, running or queued locally")
                 .Add({});
  auto& workers_fam
    = gauge(reg, "alb_workers",
            "Registered workers by state: busy (holds a test) or idle; sum "
            "over state for all registered workers");
  workers_busy = &workers_fam.Add({{"state", "busy"}});
  workers_idle = &workers_fam.Add({{"state", "idle"}});
  load_mean = &gauge(reg, "alb_worker_mean_load_ratio",
                     "Mean worker load score over all workers (0 to 1)")
                 .Add({});
  workers_joined = &counter(reg, "alb_workers_joined_total",
                            "Workers that registered with the scheduler")
                      .Add({});
  auto& left_fam = counter(reg, "alb_workers_left_total",
                           "Workers that left: cleanly (left) or by failure "
                           "(lost)");
  workers_left = &left_fam.Add({{"reason", "left"}});
  workers_lost = &left_fam.Add({{"reason", "lost"}});
  workers_untracked = &gauge(reg, "alb_workers_untracked",
                             "Registered workers beyond the per-worker series "
                             "limit, which have no per-worker series")
                         .Add({});
  nodes = &gauge(reg, "alb_nodes_connected",
                 "Remote nodes attached to the coordinator")
             .Add({});
  auto& refused_fam
    = counter(reg, "alb_connections_refused_total",
              "Connections the coordinator's port ended before their "
              "handshake (CAF or TLS, then join or hello) was over, or for "
              "breaking the frame rules, by reason");
  for (std::size_t r = 0; r < refusal_reasons.size(); ++r)
    connections_refused[r]
      = &refused_fam.Add({{"reason", std::string{refusal_reasons[r]}}});
  nodes_timed_out
    = &counter(reg, "alb_node_heartbeat_timeouts_total",
               "Nodes the coordinator declared lost because they sent no "
               "heartbeat for --node-timeout (their tests were requeued)")
         .Add({});

  worker_load = &gauge(reg, "alb_worker_load_ratio",
                       "Load score of a worker (0 idle to 1 full)");
  worker_active = &gauge(reg, "alb_worker_active_tests",
                         "Tests a worker holds, running or queued locally");
  worker_assignments = &counter(reg, "alb_worker_assignments_total",
                                "Tests assigned to a worker");
  worker_completions = &counter(reg, "alb_worker_completions_total",
                                "Tests a worker completed successfully");

  auto& attempts_fam = counter(reg, "alb_scheduling_attempts_total",
                               "Placement attempts: placed a test, or "
                               "deferred it because no worker fits now");
  attempts_placed = &attempts_fam.Add({{"result", "placed"}});
  attempts_deferred = &attempts_fam.Add({{"result", "deferred"}});
  decision_time = &histogram(reg, "alb_scheduling_decision_seconds",
                             "Time the scheduler spends on one placement "
                             "decision")
                     .Add({}, decision_buckets());

  run_info = &gauge(reg, "alb_run_info",
                    "Always 1; labels describe the run (mode, strategy)");
  start_time = &gauge(reg, "process_start_time_seconds",
                      "Start time of the process since unix epoch in seconds")
                  .Add({});
  resident_memory = &gauge(reg, "process_resident_memory_bytes",
                           "Resident memory size in bytes")
                       .Add({});
  virtual_memory = &gauge(reg, "process_virtual_memory_bytes",
                          "Virtual memory size in bytes")
                      .Add({});
  threads
    = &gauge(reg, "process_threads", "Number of OS threads in the process")
         .Add({});
  open_fds = &gauge(reg, "process_open_fds", "Number of open file descriptors")
                .Add({});
  max_fds
    = &gauge(reg, "process_max_fds", "Maximum number of open file descriptors")
         .Add({});
  cpu_seconds = &counter(reg, "process_cpu_seconds_total",
                         "Total user and system CPU time spent in seconds")
                   .Add({});
}

void families::flush_all() {
  for (auto* obs : observers)
    obs->flush();
}

} // namespace detail

namespace {

/// Values read from /proc/self.
struct process_sample {
  double resident_bytes = 0;
  double virtual_bytes = 0;
  double threads = 0;
  double cpu_seconds = 0;
  double open_fds = 0;
  /// Soft limit on open files (RLIMIT_NOFILE), 0 when unlimited.
  double max_fds = 0;
  /// Process start in clock ticks after boot.
  double start_ticks = 0;
};

double now_unix() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

process_sample read_process() {
  process_sample result;
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  if (std::ifstream statm{"/proc/self/statm"}) {
    double size = 0;
    double resident = 0;
    if (statm >> size >> resident) {
      result.virtual_bytes = size * page;
      result.resident_bytes = resident * page;
    }
  }
  if (std::ifstream stat{"/proc/self/stat"}) {
    std::string line;
    std::getline(stat, line);
    // The command name may hold spaces and parentheses: fields start after the
    // last ')'.
    auto pos = line.rfind(')');
    if (pos != std::string::npos) {
      std::istringstream in{line.substr(pos + 1)};
      std::vector<std::string> fields;
      for (std::string f; in >> f;)
        fields.push_back(std::move(f));
      // fields[0] is field 3 (state) of proc(5).
      auto field = [&](std::size_t n) {
        return n - 3 < fields.size() ? std::stod(fields[n - 3]) : 0.0;
      };
      if (ticks > 0)
        result.cpu_seconds = (field(14) + field(15)) / ticks;
      result.threads = field(20);
      result.start_ticks = field(22);
    }
  }
  if (auto* dir = opendir("/proc/self/fd")) {
    std::size_t n = 0;
    while (auto* entry = readdir(dir))
      if (entry->d_name[0] != '.')
        ++n;
    closedir(dir);
    // The directory handle counted itself.
    result.open_fds = static_cast<double>(n > 0 ? n - 1 : 0);
  }
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY)
    result.max_fds = static_cast<double>(lim.rlim_cur);
  return result;
}

/// Unix time of the process start from /proc, or now if /proc is unreadable.
double process_start_time(const process_sample& sample) {
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  std::ifstream stat{"/proc/stat"};
  for (std::string key; ticks > 0 && stat >> key;) {
    if (key == "btime") {
      double boot = 0;
      if (stat >> boot && sample.start_ticks > 0)
        return boot + sample.start_ticks / ticks;
      break;
    }
    std::string rest;
    std::getline(stat, rest);
  }
  return now_unix();
}

/// Flushes the observers and refreshes the process gauges, then collects the
/// registry.
class refreshing_collectable : public prometheus::Collectable {
public:
  refreshing_collectable(std::shared_ptr<prometheus::Registry> reg,
                         detail::families& fams)
    : reg_(std::move(reg)), fams_(fams) {
    auto sample = read_process();
    start_ = process_start_time(sample);
    fams_.start_time->Set(start_);
    apply(sample);
  }

  std::vector<prometheus::MetricFamily> Collect() const override {
    {
      // One lock for both: concurrent scrapes must neither flush the same
      // counts twice nor count the same CPU time twice.
      std::lock_guard<std::mutex> guard{fams_.mtx};
      fams_.flush_all();
      apply(read_process());
    }
    return reg_->Collect();
  }

private:
  void apply(const process_sample& s) const {
    fams_.resident_memory->Set(s.resident_bytes);
    fams_.virtual_memory->Set(s.virtual_bytes);
    fams_.threads->Set(s.threads);
    fams_.open_fds->Set(s.open_fds);
    fams_.max_fds->Set(s.max_fds);
    if (s.cpu_seconds > cpu_seen_) {
      fams_.cpu_seconds->Increment(s.cpu_seconds - cpu_seen_);
      cpu_seen_ = s.cpu_seconds;
    }
  }

  std::shared_ptr<prometheus::Registry> reg_;
  detail::families& fams_;
  double start_ = 0;
  mutable double cpu_seen_ = 0;
};

} // namespace

struct registry::impl {
  std::shared_ptr<prometheus::Registry> reg
    = std::make_shared<prometheus::Registry>();
  detail::families fams{*reg};
  std::shared_ptr<refreshing_collectable> collectable
    = std::make_shared<refreshing_collectable>(reg, fams);
  std::mutex info_mtx;
};

registry::registry(run_info info) : impl_(std::make_unique<impl>()) {
  set_run_info(info);
}

registry::~registry() = default;

void registry::set_run_info(const run_info& info) {
  std::lock_guard<std::mutex> guard{impl_->info_mtx};
  auto& fams = impl_->fams;
  if (fams.run_info_child != nullptr)
    fams.run_info->Remove(fams.run_info_child);
  fams.run_info_child
    = &fams.run_info->Add({{"mode", info.mode}, {"strategy", info.strategy}});
  fams.run_info_child->Set(1);
}

std::shared_ptr<prometheus::Collectable> registry::collectable() const {
  return impl_->collectable;
}

std::shared_ptr<prometheus::Registry> registry::prometheus_registry() const {
  return impl_->reg;
}

std::string registry::scrape() const {
  return prometheus::TextSerializer{}.Serialize(impl_->collectable->Collect());
}

detail::families& registry::families() {
  return impl_->fams;
}

} // namespace alb::metrics
