#include "runtime/run_stats.hpp"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

namespace alb {

namespace {

constexpr double hist_min = 1e-6;
constexpr double hist_ratio = 1.02;
const double hist_log_ratio = std::log(hist_ratio);
// 1e-6 s * 1.02^1400 is about 1e6 s: room for any realistic wait.
constexpr size_t hist_buckets = 1400;

size_t bucket_of(double x) {
  if (x <= hist_min)
    return 0;
  auto i = static_cast<size_t>(std::log(x / hist_min) / hist_log_ratio) + 1;
  return std::min(i, hist_buckets - 1);
}

// Upper edge of bucket i; bucket 0 holds everything up to hist_min.
double bucket_upper(size_t i) {
  return hist_min * std::pow(hist_ratio, static_cast<double>(i));
}

} // namespace

log_histogram::log_histogram() : buckets_(hist_buckets, 0) {
  // nop
}

void log_histogram::add(double x) {
  if (!(x > 0))
    x = 0;
  if (count_ == 0) {
    min_ = max_ = x;
  } else {
    min_ = std::min(min_, x);
    max_ = std::max(max_, x);
  }
  ++count_;
  sum_ += x;
  ++buckets_[bucket_of(x)];
}

double log_histogram::quantile(double q) const {
  if (count_ == 0)
    return 0;
  q = std::clamp(q, 0.0, 1.0);
  // Rank of the value we want (nearest-rank definition).
  auto rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_)));
  rank = std::max<uint64_t>(rank, 1);
  uint64_t seen = 0;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i];
    if (seen >= rank) {
      if (i == 0)
        return std::clamp(0.0, min_, max_);
      // Geometric middle of the bucket, clamped to what was really seen.
      auto mid = std::sqrt(bucket_upper(i - 1) * bucket_upper(i));
      return std::clamp(mid, min_, max_);
    }
  }
  return max_;
}

void run_stats::submitted(double now) {
  if (submitted_++ == 0)
    first_submit_ = now;
}

void run_stats::completed(double now, double exec, double turnaround) {
  ++completed_;
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
  return static_cast<uint32_t>(workers_.size() - 1);
}

void run_stats::worker_left(uint32_t serial, double now) {
  workers_[serial].left_at = now;
}

void run_stats::worker_ran(uint32_t serial, double exec, bool success) {
  auto& w = workers_[serial];
  w.busy_seconds += exec;
  if (success)
    ++w.completed;
}

run_metrics run_stats::metrics(double end, uint64_t final_workers,
                               uint64_t pending) const {
  run_metrics m;
  m.total_tests = submitted_;
  m.success_rate = submitted_ ? 100.0 * static_cast<double>(completed_)
                                  / static_cast<double>(submitted_)
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
  m.peak_throughput = peak_throughput_;
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
      m.utilization_stddev
        = 100.0 * std::sqrt(uv / static_cast<double>(utils.size()));
    }
  }
  m.avg_scheduling_attempts = assigned_ ? static_cast<double>(placement_tries_)
                                            / static_cast<double>(assigned_)
                                        : 0;
  m.final_worker_count = final_workers;
  m.pending_tests = pending;
  m.assigned_tests = assigned_;
  m.completed_tests = completed_;
  m.failed_tests = failed_;
  m.cancelled_tests = cancelled_;
  m.retried_tests = retried_;
  m.requeued_tests = requeued_;
  m.migrated_tests = migrated_;
  m.stolen_tests = stolen_;
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
    {"worker_assignment_stddev", m.worker_assignment_stddev},
    {"worker_assignment_range", m.worker_assignment_range},
    {"worker_utilization", m.worker_utilization},
    {"utilization_stddev", m.utilization_stddev},
    {"avg_scheduling_attempts", m.avg_scheduling_attempts},
    {"final_worker_count", m.final_worker_count},
    {"pending_tests", m.pending_tests},
    {"assigned_tests", m.assigned_tests},
    {"completed_tests", m.completed_tests},
    {"failed_tests", m.failed_tests},
    {"cancelled_tests", m.cancelled_tests},
    {"retried_tests", m.retried_tests},
    {"requeued_tests", m.requeued_tests},
    {"migrated_tests", m.migrated_tests},
    {"stolen_tests", m.stolen_tests},
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
  at(now).completions += n;
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
  uint64_t best = 0;
  for (auto& b : buckets_)
    best = std::max(best, b.completions);
  return static_cast<double>(best) / width_;
}

nlohmann::json time_series::to_json() const {
  auto tp = nlohmann::json::array();
  auto lat = nlohmann::json::array();
  auto qd = nlohmann::json::array();
  auto wk = nlohmann::json::array();
  for (size_t i = 0; i < buckets_.size(); ++i) {
    auto& b = buckets_[i];
    auto t = static_cast<double>(i) * width_;
    tp.push_back({t, static_cast<double>(b.completions) / width_});
    if (b.latency_count > 0)
      lat.push_back({t, b.latency_sum / static_cast<double>(b.latency_count)});
    if (b.sampled) {
      qd.push_back({t, b.queue_depth});
      wk.push_back({t, b.workers});
    }
  }
  return nlohmann::json{
    {"throughput", tp}, {"latency", lat}, {"queue_depth", qd}, {"workers", wk}};
}

} // namespace alb
