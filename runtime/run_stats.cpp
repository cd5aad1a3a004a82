#include "runtime/run_stats.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace alb {

void wait_samples::add(double x) {
  if (!(x > 0))
    x = 0;
  if (values_.empty()) {
    min_ = max_ = x;
  } else {
    min_ = std::min(min_, x);
    max_ = std::max(max_, x);
    if (x < values_.back())
      sorted_ = false;
  }
  values_.push_back(x);
  sum_ += x;
}

void wait_samples::merge(const wait_samples& other) {
  if (other.values_.empty())
    return;
  if (values_.empty()) {
    min_ = other.min_;
    max_ = other.max_;
  } else {
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
  }
  values_.insert(values_.end(), other.values_.begin(), other.values_.end());
  sorted_ = false;
  sum_ += other.sum_;
}

double wait_samples::quantile(double q) const {
  if (values_.empty())
    return 0;
  if (!sorted_) {
    std::sort(values_.begin(), values_.end());
    sorted_ = true;
  }
  q = std::clamp(q, 0.0, 1.0);
  // Nearest rank: the smallest value with at least q * n values at or
  // below it.
  auto n = static_cast<double>(values_.size());
  auto rank = static_cast<size_t>(std::ceil(q * n - 1e-9));
  rank = std::clamp<size_t>(rank, 1, values_.size());
  return values_[rank - 1];
}

uint64_t sliding_peak::add(double t, uint64_t n) {
  if (head_ < window_.size() && t < window_.back().first)
    t = window_.back().first;
  // Drop what fell out of (t - width, t].
  while (head_ < window_.size() && window_[head_].first <= t - width_) {
    in_window_ -= window_[head_].second;
    ++head_;
  }
  // Reclaim the dropped front now and then instead of on every event.
  if (head_ > 64 && head_ * 2 > window_.size()) {
    window_.erase(window_.begin(),
                  window_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
  if (head_ < window_.size() && window_.back().first == t)
    window_.back().second += n;
  else
    window_.emplace_back(t, n);
  in_window_ += n;
  peak_ = std::max(peak_, in_window_);
  return in_window_;
}

void run_stats::submitted(double now) {
  if (submitted_++ == 0)
    first_submit_ = now;
}

void run_stats::completed(double now, double exec, double turnaround) {
  ++completed_;
  peak_.add(now);
  if (keep_times_)
    completion_times_.push_back(now);
  exec_sum_ += exec;
  turnaround_sum_ += turnaround;
  last_end_ = std::max(last_end_, now);
}

void run_stats::failed(double now, bool timeout, bool unplaceable) {
  ++failed_;
  if (timeout)
    ++timed_out_;
  if (unplaceable)
    ++unplaceable_;
  last_end_ = std::max(last_end_, now);
}

void run_stats::cancelled(double now) {
  ++cancelled_;
  last_end_ = std::max(last_end_, now);
}

void run_stats::strategy_choice(std::string_view name) {
  auto it = choices_.find(name);
  if (it == choices_.end())
    choices_.emplace(std::string{name}, 1);
  else
    ++it->second;
}

void run_stats::reservation(double memory_fraction, double accel_fraction) {
  max_mem_res_ = std::max(max_mem_res_, memory_fraction);
  max_acc_res_ = std::max(max_acc_res_, accel_fraction);
}

uint32_t run_stats::worker_joined(std::string id, double now, int slots) {
  worker_stats w;
  w.worker_id = std::move(id);
  w.joined_at = now;
  w.slots = std::max(slots, 1);
  workers_.push_back(std::move(w));
  peak_present_ = std::max(peak_present_, ++present_);
  return static_cast<uint32_t>(workers_.size() - 1);
}

void run_stats::worker_left(uint32_t serial, double now) {
  if (workers_[serial].left_at < 0 && present_ > 0)
    --present_;
  workers_[serial].left_at = now;
}

void run_stats::worker_ran(uint32_t serial, double exec, bool success) {
  auto& w = workers_[serial];
  w.busy_seconds += exec;
  if (success)
    ++w.completed;
}

void run_stats::merge(const run_stats& o) {
  if (o.first_submit_ >= 0
      && (first_submit_ < 0 || o.first_submit_ < first_submit_))
    first_submit_ = o.first_submit_;
  last_end_ = std::max(last_end_, o.last_end_);
  submitted_ += o.submitted_;
  handed_over_ += o.handed_over_;
  assigned_ += o.assigned_;
  completed_ += o.completed_;
  failed_ += o.failed_;
  cancelled_ += o.cancelled_;
  retried_ += o.retried_;
  requeued_ += o.requeued_;
  migrated_ += o.migrated_;
  stolen_ += o.stolen_;
  speculated_ += o.speculated_;
  speculation_wins_ += o.speculation_wins_;
  timed_out_ += o.timed_out_;
  unplaceable_ += o.unplaceable_;
  placement_tries_ += o.placement_tries_;
  exec_sum_ += o.exec_sum_;
  turnaround_sum_ += o.turnaround_sum_;
  max_mem_res_ = std::max(max_mem_res_, o.max_mem_res_);
  max_acc_res_ = std::max(max_acc_res_, o.max_acc_res_);
  for (size_t i = 0; i < latency_by_priority_.size(); ++i)
    latency_by_priority_[i].merge(o.latency_by_priority_[i]);
  for (auto& [name, n] : o.choices_)
    choices_[name] += n;
  workers_.insert(workers_.end(), o.workers_.begin(), o.workers_.end());
  present_ += o.present_;
  peak_present_ += o.peak_present_;
  // The sliding window needs every event in time order: replay both
  // streams merged (a peak of the parts alone would understate it).
  if (!keep_times_ || !o.keep_times_)
    throw std::logic_error(
      "run_stats::merge: both parts must keep their completion times");
  completion_times_.insert(completion_times_.end(), o.completion_times_.begin(),
                           o.completion_times_.end());
  std::sort(completion_times_.begin(), completion_times_.end());
  peak_ = sliding_peak{peak_.width()};
  for (auto t : completion_times_)
    peak_.add(t);
}

wait_samples run_stats::latency() const {
  wait_samples all;
  for (auto& h : latency_by_priority_)
    all.merge(h);
  return all;
}

run_metrics run_stats::metrics(double end, uint64_t final_workers,
                               uint64_t pending) const {
  run_metrics m;
  auto latency_ = latency();
  auto submitted = submitted_count();
  m.total_tests = submitted;
  m.success_rate = submitted ? 100.0 * static_cast<double>(completed_)
                                 / static_cast<double>(submitted)
                             : 0;
  m.avg_latency = latency_.mean();
  m.min_latency = latency_.min();
  m.max_latency = latency_.max();
  m.p50_latency = latency_.quantile(0.50);
  m.p95_latency = latency_.quantile(0.95);
  m.p99_latency = latency_.quantile(0.99);
  auto last = last_end_ >= 0 ? last_end_ : end;
  m.makespan = first_submit_ >= 0 ? std::max(0.0, last - first_submit_) : 0;
  m.avg_throughput
    = m.makespan > 0 ? static_cast<double>(completed_) / m.makespan : 0;
  // Completions in the busiest second: a count per 1 s window, so per second.
  m.peak_throughput = static_cast<double>(peak_.peak()) / peak_.width();
  if (!workers_.empty()) {
    double n = static_cast<double>(workers_.size());
    double sum = 0;
    double lo = static_cast<double>(workers_.front().assignments);
    double hi = lo;
    for (auto& w : workers_) {
      auto a = static_cast<double>(w.assignments);
      sum += a;
      lo = std::min(lo, a);
      hi = std::max(hi, a);
    }
    double mean = sum / n;
    double var = 0;
    for (auto& w : workers_) {
      auto d = static_cast<double>(w.assignments) - mean;
      var += d * d;
    }
    m.worker_assignment_mean = mean;
    m.worker_assignment_stddev = std::sqrt(var / n);
    m.worker_assignment_range = hi - lo;
    // Utilization counts only the time each worker was present, up to the
    // end of the run, so a worker that joined late is not penalized.
    std::vector<double> utils;
    utils.reserve(workers_.size());
    auto run_end = first_submit_ >= 0 ? std::max(last, first_submit_) : end;
    for (auto& w : workers_) {
      auto from = std::max(w.joined_at,
                           first_submit_ >= 0 ? first_submit_ : w.joined_at);
      auto to = w.left_at >= 0 ? std::min(w.left_at, run_end) : run_end;
      auto span = (to - from) * w.slots;
      if (span > 0)
        utils.push_back(std::min(1.0, w.busy_seconds / span));
    }
    if (!utils.empty()) {
      double us = 0;
      for (auto u : utils)
        us += u;
      auto um = us / static_cast<double>(utils.size());
      double uv = 0;
      for (auto u : utils)
        uv += (u - um) * (u - um);
      m.worker_utilization = um;
      m.utilization_stddev = std::sqrt(uv / static_cast<double>(utils.size()));
    }
  }
  m.avg_scheduling_attempts = assigned_ ? static_cast<double>(placement_tries_)
                                            / static_cast<double>(assigned_)
                                        : 0;
  m.final_worker_count = final_workers;
  m.peak_worker_count = peak_present_;
  m.pending_tests = pending;
  m.assigned_tests = assigned_;
  m.completed_tests = completed_;
  m.failed_tests = failed_;
  m.cancelled_tests = cancelled_;
  m.retried_tests = retried_;
  m.requeued_tests = requeued_;
  m.migrated_tests = migrated_;
  m.stolen_tests = stolen_;
  m.speculated_tests = speculated_;
  m.speculation_wins = speculation_wins_;
  m.timed_out_tests = timed_out_;
  m.unplaceable_tests = unplaceable_;
  m.avg_execution_time
    = completed_ ? exec_sum_ / static_cast<double>(completed_) : 0;
  m.avg_turnaround
    = completed_ ? turnaround_sum_ / static_cast<double>(completed_) : 0;
  for (size_t p = 0; p < 5; ++p) {
    auto& h = latency_by_priority_[p];
    auto& out = m.latency_by_priority[p];
    out.count = h.count();
    out.avg = h.mean();
    out.p50 = h.quantile(0.5);
    out.p99 = h.quantile(0.99);
  }
  for (auto& [k, v] : choices_)
    m.strategy_choices.emplace(k, v);
  m.max_memory_reservation = max_mem_res_;
  m.max_accelerator_reservation = max_acc_res_;
  return m;
}

void to_json(nlohmann::json& j, const run_metrics& m) {
  j = nlohmann::json{
    {"total_tests", m.total_tests},
    {"success_rate", m.success_rate},
    {"avg_latency", m.avg_latency},
    {"max_latency", m.max_latency},
    {"min_latency", m.min_latency},
    {"p50_latency", m.p50_latency},
    {"p95_latency", m.p95_latency},
    {"p99_latency", m.p99_latency},
    {"peak_throughput", m.peak_throughput},
    {"avg_throughput", m.avg_throughput},
    {"worker_assignment_mean", m.worker_assignment_mean},
    {"worker_assignment_stddev", m.worker_assignment_stddev},
    {"worker_assignment_range", m.worker_assignment_range},
    {"worker_utilization", m.worker_utilization},
    {"utilization_stddev", m.utilization_stddev},
    {"avg_scheduling_attempts", m.avg_scheduling_attempts},
    {"final_worker_count", m.final_worker_count},
    {"peak_worker_count", m.peak_worker_count},
    {"pending_tests", m.pending_tests},
    {"assigned_tests", m.assigned_tests},
    {"completed_tests", m.completed_tests},
    {"failed_tests", m.failed_tests},
    {"cancelled_tests", m.cancelled_tests},
    {"retried_tests", m.retried_tests},
    {"requeued_tests", m.requeued_tests},
    {"migrated_tests", m.migrated_tests},
    {"stolen_tests", m.stolen_tests},
    {"speculated_tests", m.speculated_tests},
    {"speculation_wins", m.speculation_wins},
    {"timed_out_tests", m.timed_out_tests},
    {"unplaceable_tests", m.unplaceable_tests},
    {"makespan", m.makespan},
    {"avg_execution_time", m.avg_execution_time},
    {"avg_turnaround", m.avg_turnaround},
    {"max_memory_reservation", m.max_memory_reservation},
    {"max_accelerator_reservation", m.max_accelerator_reservation},
  };
  auto by_prio = nlohmann::json::object();
  for (size_t p = 0; p < 5; ++p) {
    auto& x = m.latency_by_priority[p];
    by_prio[std::to_string(p + 1)] = {{"count", x.count},
                                      {"avg_latency", x.avg},
                                      {"p50_latency", x.p50},
                                      {"p99_latency", x.p99}};
  }
  j["latency_by_priority"] = std::move(by_prio);
  j["strategy_choices"] = m.strategy_choices;
}

time_series::bucket& time_series::at(double now) {
  auto i = static_cast<size_t>(std::max(0.0, now) / width_);
  if (i >= buckets_.size())
    buckets_.resize(i + 1);
  return buckets_[i];
}

void time_series::add_completions(double now, uint64_t n) {
  auto& b = at(now);
  b.completions += n;
  b.window_peak = std::max(b.window_peak, window_.add(std::max(0.0, now), n));
}

void time_series::add_latency(double now, double latency_sum, uint64_t n) {
  auto& b = at(now);
  b.latency_sum += latency_sum;
  b.latency_count += n;
}

void time_series::sample(double now, double queue_depth, double workers) {
  auto& b = at(now);
  // Keep the last sample per bucket: it is the state at the bucket's end.
  b.queue_depth = queue_depth;
  b.workers = workers;
  b.sampled = true;
}

double time_series::peak_throughput() const {
  return static_cast<double>(window_.peak()) / window_.width();
}

nlohmann::json time_series::to_json() const {
  auto tp = nlohmann::json::array();
  auto tp1 = nlohmann::json::array();
  auto lat = nlohmann::json::array();
  auto qd = nlohmann::json::array();
  auto wk = nlohmann::json::array();
  for (size_t i = 0; i < buckets_.size(); ++i) {
    auto& b = buckets_[i];
    auto t = static_cast<double>(i) * width_;
    tp.push_back({t, static_cast<double>(b.completions) / width_});
    tp1.push_back({t, static_cast<double>(b.window_peak) / window_.width()});
    if (b.latency_count > 0)
      lat.push_back({t, b.latency_sum / static_cast<double>(b.latency_count)});
    if (b.sampled) {
      qd.push_back({t, b.queue_depth});
      wk.push_back({t, b.workers});
    }
  }
  return nlohmann::json{{"throughput", tp},
                        {"throughput_1s", tp1},
                        {"latency", lat},
                        {"queue_depth", qd},
                        {"workers", wk}};
}

} // namespace alb
