#include "report/monitor/figures.hpp"

#include "report/monitor/text.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>

namespace alb::report {

using detail::format;
using detail::nan_v;

namespace {

// A counter's increase, taking a decrease as a restart of the target.
double increase(double cur, double prev) {
  return cur >= prev ? cur - prev : cur;
}

} // namespace

monitor_figures compute_figures(const metrics_snapshot& cur,
                                const metrics_snapshot* prev) {
  monitor_figures f;
  f.has_alb_metrics = cur.has_alb_metrics();
  for (auto& s : cur.samples) {
    if (s.name != "alb_run_info")
      continue;
    if (auto* m = s.label("mode"))
      f.mode = *m;
    if (auto* st = s.label("strategy"))
      f.strategy = *st;
  }
  // The standard process_start_time_seconds against this host's clock: the
  // scrape's own time is monotonic.
  f.uptime
    = cur.has("process_start_time_seconds")
        ? std::max(0.0, std::chrono::duration<double>(
                          std::chrono::system_clock::now().time_since_epoch())
                            .count()
                          - cur.sum("process_start_time_seconds"))
        : nan_v;
  double dt = prev ? cur.time - prev->time : 0;
  bool rates = prev && dt > 0;
  f.interval = rates ? dt : 0;
  auto rate = [&](std::string_view name) {
    if (!rates)
      return nan_v;
    return increase(cur.sum(name), prev->sum(name)) / dt;
  };

  f.busy_workers = cur.sum("alb_workers", {{"state", "busy"}});
  f.idle_workers = cur.sum("alb_workers", {{"state", "idle"}});
  f.workers = f.busy_workers + f.idle_workers;
  f.mean_load = cur.sum("alb_worker_mean_load_ratio");
  for (std::size_t p = 0; p < f.queue_by_priority.size(); ++p)
    f.queue_by_priority[p]
      = cur.sum("alb_queue_depth", {{"priority", std::to_string(p + 1)}});
  // alb_queue_depth holds every waiting test; parked ones are its
  // state="parked" part, shown beside the rest.
  f.parked = cur.sum("alb_queue_depth", {{"state", "parked"}});
  f.queue_depth = cur.sum("alb_queue_depth") - f.parked;
  f.queue_change
    = prev ? cur.sum("alb_queue_depth") - prev->sum("alb_queue_depth") : 0;
  f.in_flight = cur.sum("alb_tests_in_flight");

  f.submitted = cur.sum("alb_tests_submitted_total");
  f.completed = cur.sum("alb_tests_completed_total");
  // Cancelled tests are no failures. Targets count them either as
  // alb_tests_cancelled_total or as alb_tests_failed_total{reason=
  // "cancelled"}; both are moved out of the failures.
  auto failures = [](const metrics_snapshot& s) {
    return s.sum("alb_tests_failed_total")
           - s.sum("alb_tests_failed_total", {{"reason", "cancelled"}});
  };
  f.failed = failures(cur);
  f.cancelled = cur.sum("alb_tests_cancelled_total")
                + cur.sum("alb_tests_failed_total", {{"reason", "cancelled"}});
  f.throughput = rate("alb_tests_completed_total");
  f.submit_rate = rate("alb_tests_submitted_total");
  f.failure_rate = rates ? increase(f.failed, failures(*prev)) / dt : nan_v;
  auto ended = f.completed + f.failed;
  f.success_rate = ended > 0 ? 100.0 * f.completed / ended : nan_v;

  // Quantiles of the last interval when tests were placed in it (what the
  // balancer does now); otherwise of the whole run, labelled as such.
  auto wait = cur.buckets("alb_assignment_wait_seconds_bucket");
  if (prev) {
    auto before = prev->buckets("alb_assignment_wait_seconds_bucket");
    if (before.size() == wait.size()) {
      auto delta = wait;
      bool same_bounds = true;
      for (std::size_t i = 0; i < delta.size(); ++i) {
        same_bounds = same_bounds && before[i].first == delta[i].first;
        delta[i].second = increase(wait[i].second, before[i].second);
      }
      if (same_bounds && !delta.empty() && delta.back().second > 0) {
        f.wait_window = true;
        f.wait_p50 = histogram_quantile_bucket(0.5, delta);
        f.wait_p99 = histogram_quantile_bucket(0.99, delta);
      }
    }
  }
  if (!f.wait_window) {
    f.wait_p50 = histogram_quantile_bucket(0.5, wait);
    f.wait_p99 = histogram_quantile_bucket(0.99, wait);
  }

  f.migrations = cur.sum("alb_tests_migrated_total");
  f.steals = cur.sum("alb_tests_stolen_total");
  f.move_rate
    = rates ? rate("alb_tests_migrated_total") + rate("alb_tests_stolen_total")
            : nan_v;
  f.requeued = cur.sum("alb_tests_requeued_total");
  f.retried = cur.sum("alb_tests_retried_total");
  f.workers_lost = cur.sum("alb_workers_left_total", {{"reason", "lost"}});
  if (prev)
    f.workers_lost_change
      = increase(f.workers_lost,
                 prev->sum("alb_workers_left_total", {{"reason", "lost"}}));

  std::map<std::string, worker_figures> by_id;
  for (auto& s : cur.samples) {
    auto* id = s.label("worker");
    if (!id)
      continue;
    if (s.name == "alb_worker_load_ratio") {
      auto& w = by_id[*id];
      w.id = *id;
      w.load = s.value;
    }
  }
  std::map<std::string, double> done_before;
  if (prev)
    for (auto& s : prev->samples)
      if (s.name == "alb_worker_completions_total")
        if (auto* id = s.label("worker"))
          done_before[*id] = s.value;
  for (auto& s : cur.samples) {
    auto* id = s.label("worker");
    if (!id)
      continue;
    auto it = by_id.find(*id);
    if (it == by_id.end())
      continue;
    if (s.name == "alb_worker_active_tests") {
      it->second.active_tests = s.value;
    } else if (s.name == "alb_worker_completions_total") {
      // A worker that joined since the previous scrape started from 0.
      auto b = done_before.find(*id);
      it->second.completions_per_second
        = rates ? increase(s.value, b == done_before.end() ? 0 : b->second) / dt
                : nan_v;
    }
  }
  for (auto& [id, w] : by_id)
    f.workers_by_load.push_back(std::move(w));
  std::sort(f.workers_by_load.begin(), f.workers_by_load.end(),
            [](const worker_figures& a, const worker_figures& b) {
              if (a.load != b.load)
                return a.load > b.load;
              if (a.active_tests != b.active_tests)
                return a.active_tests > b.active_tests;
              return a.id < b.id;
            });
  f.untracked_workers = cur.sum("alb_workers_untracked");
  return f;
}

std::vector<alert> evaluate_alerts(const monitor_figures& f,
                                   const alert_rules& rules) {
  std::vector<alert> result;
  auto waiting = f.queue_depth + f.parked;
  auto waiting_before = waiting - f.queue_change;
  auto idle_text = [&] {
    return format("%.0f worker%s idle", f.idle_workers,
                  f.idle_workers == 1 ? " is" : "s are");
  };
  // Tests that were already waiting at the last refresh and more since,
  // with idle workers throughout: not just arrivals about to be placed.
  if (f.interval > 0 && f.queue_change > 0 && waiting_before > 0
      && f.idle_workers >= 1)
    result.push_back({alert_kind::queue_growing_with_idle_workers,
                      format("queue growing: +%.0f to %.0f waiting while ",
                             f.queue_change, waiting)
                        + idle_text()});
  auto ended = f.completed + f.failed;
  if (ended >= rules.min_ended_tests && !std::isnan(f.success_rate)
      && f.success_rate < rules.min_success_rate)
    result.push_back(
      {alert_kind::low_success_rate,
       format("success rate %.1f%% is below %.0f%% (%.0f of %.0f ended "
              "tests failed)",
              f.success_rate, rules.min_success_rate, f.failed, ended)});
  // A full worker is only a hot spot when work waits that idle workers are
  // not doing; with nothing waiting it is simply in use.
  std::vector<const worker_figures*> hot;
  if (waiting >= 1 && f.idle_workers >= 1)
    for (auto& w : f.workers_by_load)
      if (w.load > rules.max_worker_load)
        hot.push_back(&w);
  auto context
    = " while " + idle_text()
      + format(" and %.0f test%s", waiting, waiting == 1 ? " waits" : "s wait");
  if (hot.size() == 1) {
    result.push_back(
      {alert_kind::worker_overloaded,
       format("worker %s at %.0f%% load (over %.0f%%)", hot[0]->id.c_str(),
              hot[0]->load * 100, rules.max_worker_load * 100)
         + context});
  } else if (hot.size() > 1) {
    auto msg = format("%zu workers over %.0f%% load:", hot.size(),
                      rules.max_worker_load * 100);
    for (std::size_t i = 0; i < hot.size() && i < 4; ++i)
      msg += format("%s %s %.0f%%", i == 0 ? "" : ",", hot[i]->id.c_str(),
                    hot[i]->load * 100);
    if (hot.size() > 4)
      msg += ", ...";
    result.push_back({alert_kind::worker_overloaded, msg + context});
  }
  if (f.workers_lost_change > 0)
    result.push_back(
      {alert_kind::workers_lost,
       format("%.0f worker%s lost since the last refresh (%.0f "
              "in all)",
              f.workers_lost_change, f.workers_lost_change == 1 ? "" : "s",
              f.workers_lost)});
  return result;
}

} // namespace alb::report
