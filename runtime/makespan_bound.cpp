#include "runtime/makespan_bound.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>

namespace alb {

namespace {

/// Picks at most `limit` of `n` ranks 0..n-1 evenly, always the first and
/// the last.
std::vector<size_t> sample_ranks(size_t n, size_t limit) {
  std::vector<size_t> out;
  if (n == 0)
    return out;
  limit = std::max<size_t>(limit, 2);
  if (n <= limit) {
    out.resize(n);
    for (size_t i = 0; i < n; ++i)
      out[i] = i;
    return out;
  }
  for (size_t i = 0; i < limit; ++i)
    out.push_back(i * (n - 1) / (limit - 1));
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

/// The larger of the packing and the preemptive bound.
double uniform_bound(const std::vector<double>& works,
                     const std::vector<double>& speeds, double* packing,
                     double* preemptive) {
  auto pre = preemptive_uniform_bound(works, speeds);
  auto pack = packing_uniform_bound(works, speeds);
  if (packing != nullptr)
    *packing = pack;
  if (preemptive != nullptr)
    *preemptive = pre;
  return std::max(pre, pack);
}

} // namespace

double preemptive_uniform_bound(std::vector<double> works,
                                std::vector<double> speeds) {
  std::sort(works.begin(), works.end(), std::greater<>{});
  std::sort(speeds.begin(), speeds.end(), std::greater<>{});
  while (!speeds.empty() && speeds.back() <= 0)
    speeds.pop_back();
  if (speeds.empty() || works.empty())
    return 0;
  auto m = speeds.size();
  auto n = works.size();
  // The k longest jobs can use at most the k fastest machines at once; all
  // of them at most all machines.
  double best = 0;
  double p = 0;
  double s = 0;
  for (size_t k = 0; k < std::min(n, m); ++k) {
    p += works[k];
    s += speeds[k];
    best = std::max(best, p / s);
  }
  if (n > m) {
    for (size_t k = m; k < n; ++k)
      p += works[k];
    best = std::max(best, p / s);
  }
  return best;
}

double packing_uniform_bound(std::vector<double> works,
                             std::vector<double> speeds, size_t max_values) {
  std::sort(works.begin(), works.end(), std::greater<>{});
  while (!works.empty() && works.back() <= 0)
    works.pop_back();
  std::map<double, double, std::greater<>> classes; // speed -> slots
  for (auto s : speeds)
    if (s > 0)
      classes[s] += 1;
  if (works.empty() || classes.empty())
    return 0;
  auto fastest = classes.begin()->first;
  // The last rank of each distinct work value: c jobs of work >= v.
  std::vector<size_t> ends;
  for (size_t k = 0; k < works.size(); ++k)
    if (k + 1 == works.size() || works[k + 1] != works[k])
      ends.push_back(k);
  double best = 0;
  for (auto r : sample_ranks(ends.size(), max_values)) {
    auto k = ends[r];
    auto v = works[k];
    auto c = static_cast<double>(k + 1);
    // Jobs of work >= v a slot of speed s holds within T: floor(s T / v).
    auto holds = [&](double t) {
      double n = 0;
      for (auto& [s, slots] : classes)
        n += slots * std::floor(s * t / v);
      return n;
    };
    // holds(lo) < c <= holds(hi); the least T lies in (lo, hi].
    double lo = 0;
    double hi = c * v / fastest;
    for (int i = 0; i < 64 && hi - lo > hi * 1e-12; ++i) {
      auto mid = (lo + hi) / 2;
      (holds(mid) >= c ? hi : lo) = mid;
    }
    best = std::max(best, lo);
  }
  return best;
}

double memory_time_bound(const std::vector<bound_job>& jobs,
                         const std::vector<bound_machine>& machines) {
  double demand = 0;
  for (auto& j : jobs)
    demand += std::max(0.0, j.memory_gb) * std::max(0.0, j.work);
  double supply = 0;
  for (auto& m : machines)
    supply += std::max(0.0, m.memory_gb) * std::max(0.0, m.speed);
  // A fleet without memory figures says nothing about memory.
  return supply > 0 ? demand / supply : 0;
}

makespan_bound
compute_makespan_bound(std::vector<bound_job> jobs,
                       const std::vector<bound_machine>& machines,
                       size_t max_releases) {
  makespan_bound out;
  std::stable_sort(jobs.begin(), jobs.end(),
                   [](auto& a, auto& b) { return a.release < b.release; });
  std::vector<double> speeds;
  for (auto& m : machines)
    for (int i = 0; i < std::max(0, m.slots); ++i)
      speeds.push_back(m.speed);
  // The first index of each distinct release time.
  std::vector<size_t> starts;
  for (size_t i = 0; i < jobs.size(); ++i)
    if (i == 0 || jobs[i].release != jobs[i - 1].release)
      starts.push_back(i);
  for (auto r : sample_ranks(starts.size(), max_releases)) {
    auto first = starts[r];
    std::vector<bound_job> rest(jobs.begin() + static_cast<long>(first),
                                jobs.end());
    std::vector<double> works;
    std::vector<double> accel_works;
    int accel_min = 0;
    for (auto& j : rest) {
      works.push_back(j.work);
      if (j.accelerators > 0) {
        accel_works.push_back(j.work);
        accel_min = accel_min == 0 ? j.accelerators
                                   : std::min(accel_min, j.accelerators);
      }
    }
    makespan_bound b;
    b.release = jobs[first].release;
    uniform_bound(works, speeds, &b.packing, &b.preemptive);
    if (!accel_works.empty()) {
      // A slot holds an accelerator test only while the machine has the
      // devices for it; counting the smallest need over-counts the slots,
      // which keeps the bound valid.
      std::vector<double> accel_speeds;
      for (auto& m : machines) {
        auto n = std::min(std::max(0, m.slots), m.accelerators / accel_min);
        for (int i = 0; i < n; ++i)
          accel_speeds.push_back(m.speed);
      }
      b.accelerator
        = accel_speeds.empty()
            ? 0
            : uniform_bound(accel_works, accel_speeds, nullptr, nullptr);
    }
    b.memory = memory_time_bound(rest, machines);
    b.total = b.release
              + std::max({b.packing, b.preemptive, b.accelerator, b.memory});
    if (b.total > out.total)
      out = b;
  }
  return out;
}

makespan_bound
bound_of(const std::vector<worker_capabilities>& workers,
         const std::vector<std::pair<double, test_requirements>>& tests,
         double work_factor) {
  std::vector<bound_machine> machines;
  for (auto& w : workers) {
    bound_machine m;
    m.speed = w.speed;
    m.slots = w.max_concurrent_tests > 0 ? w.max_concurrent_tests
                                         : std::max(1, w.cpu_cores);
    for (auto& [type, n] : w.available_accelerators)
      m.accelerators += n;
    m.memory_gb = w.available_memory;
    machines.push_back(m);
  }
  std::vector<bound_job> jobs;
  double origin = 0;
  for (size_t i = 0; i < tests.size(); ++i)
    origin = i == 0 ? tests[i].first : std::min(origin, tests[i].first);
  for (auto& [at, t] : tests) {
    bound_job j;
    j.release = at - origin;
    j.work = t.expected_duration * work_factor;
    for (auto& [type, n] : t.required_accelerators)
      j.accelerators += n;
    j.memory_gb = t.minimum_memory;
    jobs.push_back(j);
  }
  return compute_makespan_bound(std::move(jobs), machines);
}

} // namespace alb
