#include "runtime/simulation.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace alb {

worker_capabilities draw_worker(const worker_profile& p, rng& r,
                                std::string worker_id) {
  worker_capabilities c;
  c.worker_id = std::move(worker_id);
  c.hostname = "sim-" + c.worker_id;
  double mem
    = p.memory_distribution.empty() ? 8 : r.pick(p.memory_distribution);
  int cuda = p.cuda_distribution.empty() ? 0 : r.pick(p.cuda_distribution);
  int cores = p.cores_distribution.empty() ? 4 : r.pick(p.cores_distribution);
  double speed
    = p.speed_distribution.empty() ? 1.0 : r.pick(p.speed_distribution);
  c.hardware.cpu.cores = cores;
  c.hardware.cpu.frequency_mhz = 3000 * speed;
  c.hardware.memory.total_gb = mem;
  c.hardware.memory.available_gb = mem;
  c.hardware.gpu.device_count = cuda;
  c.hardware.gpu.cuda_available = cuda > 0;
  c.available_memory = mem;
  c.cpu_cores = cores;
  c.cpu_threads = cores * 2;
  c.available_disk = 100;
  c.storage_capacity = 500;
  c.network_bandwidth = 10;
  c.speed = speed;
  c.supported_backends = {"cpu"};
  if (cuda > 0) {
    c.available_accelerators["cuda"] = cuda;
    c.supported_backends.push_back("cuda");
  }
  c.software_versions = {{"python", "3.11"}, {"torch", "2.3"}};
  return c;
}

test_requirements draw_test(const test_profile& p, rng& r, uint64_t index,
                            int priority, const std::string& prefix) {
  test_requirements t;
  // The index, zero-padded to 7 digits (as "%07llu" prints it, without
  // printf's cost per test).
  char buf[24];
  auto* end = std::to_chars(buf, buf + sizeof buf, index).ptr;
  auto digits = static_cast<size_t>(end - buf);
  t.test_id.reserve(prefix.size() + std::max<size_t>(digits, 7));
  t.test_id = prefix;
  if (digits < 7)
    t.test_id.append(7 - digits, '0');
  t.test_id.append(buf, digits);
  t.model_id = p.model_ids.empty() ? "model" : r.pick(p.model_ids);
  auto dash = t.model_id.find('-');
  t.model_family
    = dash == std::string::npos ? t.model_id : t.model_id.substr(0, dash);
  t.test_type = "simulated";
  t.minimum_memory
    = p.memory_requirements.empty() ? 0 : r.pick(p.memory_requirements);
  int cuda = p.cuda_requirements.empty() ? 0 : r.pick(p.cuda_requirements);
  if (cuda > 0)
    t.required_accelerators["cuda"] = cuda;
  t.priority = priority > 0 ? priority
                            : (p.priority_distribution.empty()
                                 ? 3
                                 : r.pick(p.priority_distribution));
  t.expected_duration
    = p.duration_distribution.empty() ? 0 : r.pick(p.duration_distribution);
  t.retries = p.retries;
  return t;
}

std::vector<submission_wave> plan_submissions(uint64_t tests, double duration,
                                              bool burst, rng& r) {
  std::vector<submission_wave> plan;
  if (tests == 0)
    return plan;
  if (duration <= 0) {
    plan.push_back({0, tests, 0});
    return plan;
  }
  if (burst) {
    // A few bursts of uneven size at uneven times: what a CI system does
    // when several pipelines fire at once.
    uint64_t bursts = std::clamp<uint64_t>(tests / 20, 1, 5);
    std::vector<double> weights(bursts);
    double total = 0;
    for (auto& w : weights)
      total += (w = r.uniform(0.5, 1.5));
    uint64_t left = tests;
    for (uint64_t i = 0; i < bursts; ++i) {
      auto slot = duration / static_cast<double>(bursts);
      auto at = slot * static_cast<double>(i) + r.uniform(0, slot * 0.5);
      auto n = i + 1 == bursts
                 ? left
                 : std::min<uint64_t>(left, static_cast<uint64_t>(std::llround(
                                              tests * weights[i] / total)));
      left -= n;
      if (n > 0)
        plan.push_back({at, n, 0});
    }
    return plan;
  }
  // Evenly: waves every 10 ms at most, so the submitter's timer load stays
  // bounded however many tests there are.
  auto waves = static_cast<uint64_t>(
    std::min<double>(static_cast<double>(tests), std::ceil(duration / 0.01)));
  waves = std::max<uint64_t>(waves, 1);
  uint64_t done = 0;
  for (uint64_t i = 0; i < waves; ++i) {
    auto target = (tests * (i + 1)) / waves;
    auto at = duration * static_cast<double>(i) / static_cast<double>(waves);
    plan.push_back({at, target - done, 0});
    done = target;
  }
  return plan;
}

spike_split split_spike_load(uint64_t total, int spikes, double spike_size) {
  spike_split s;
  if (spikes <= 0 || !(spike_size > 0)) {
    s.base = total;
    return s;
  }
  auto k = static_cast<uint64_t>(spikes);
  // base * (1 + k * size) = total, the spikes rounded to whole tests.
  auto per = std::llround(spike_size * static_cast<double>(total)
                          / (1 + static_cast<double>(k) * spike_size));
  s.per_spike
    = std::min<uint64_t>(static_cast<uint64_t>(std::max(0LL, per)), total / k);
  s.base = total - k * s.per_spike;
  return s;
}

std::vector<churn_event> plan_churn(double duration, int workers, rng& r) {
  std::vector<churn_event> script;
  if (duration <= 0 || workers <= 0)
    return script;
  // Four changes spread over the submission window: lose some workers
  // cleanly, lose some abruptly (mid-test), then grow back and beyond.
  auto at = [&](double f) { return duration * (f + r.uniform(-0.05, 0.05)); };
  script.push_back({at(0.2), churn_event::kind::remove, 0.15, 0});
  script.push_back({at(0.4), churn_event::kind::kill, 0.15, 0});
  script.push_back({at(0.6), churn_event::kind::add, 0.25, 0});
  script.push_back({at(0.8), churn_event::kind::add, 0.1, 0});
  std::sort(script.begin(), script.end(),
            [](auto& a, auto& b) { return a.at < b.at; });
  return script;
}

simulated_attempt simulate_attempt(double expected_duration, double speed,
                                   double performance_level,
                                   double failure_rate, double timeout, rng& r,
                                   double jitter) {
  simulated_attempt a;
  auto pace = std::max(1e-3, speed * std::max(1e-3, performance_level));
  if (!(jitter > 0))
    jitter = r.uniform(simulated_jitter_low, simulated_jitter_high);
  a.duration = expected_duration / pace * jitter;
  a.success = !(failure_rate > 0 && r.chance(failure_rate));
  if (timeout > 0 && a.duration > timeout) {
    a.duration = timeout;
    a.success = false;
    a.timed_out = true;
  }
  return a;
}

namespace {

/// FNV-1a over `id`, mixed with `seed`: the seed of a per-test generator.
uint64_t per_test_seed(const std::string& id, uint64_t seed) {
  uint64_t h = 1469598103934665603ull ^ seed;
  for (unsigned char c : id)
    h = (h ^ c) * 1099511628211ull;
  return h;
}

} // namespace

double simulated_jitter(const std::string& test_id, uint64_t seed) {
  // Another mix than the noise factor's, so the two draws are independent
  // when both use the run's test seed.
  rng r{per_test_seed(test_id, seed ^ 0x6a09e667f3bcc909ull)};
  return r.uniform(simulated_jitter_low, simulated_jitter_high);
}

double duration_noise_factor(const std::string& test_id, uint64_t seed,
                             double sigma) {
  if (!(sigma > 0))
    return 1.0;
  // A generator of its own per test and seed.
  rng r{per_test_seed(test_id, seed)};
  // Box-Muller: one standard normal from two uniforms.
  auto u1 = std::max(1e-300, r.uniform());
  auto u2 = r.uniform();
  auto z
    = std::sqrt(-2 * std::log(u1)) * std::cos(2 * 3.14159265358979323846 * u2);
  return std::exp(sigma * z - sigma * sigma / 2);
}

double warmup_level(const worker_profile& p, double age) {
  return warmup_level(p.warmup_seconds, p.warmup_performance, age);
}

double warmup_level(double warmup_seconds, double warmup_performance,
                    double age) {
  if (warmup_seconds <= 0 || age >= warmup_seconds)
    return 1.0;
  // Linear ramp from the warm-up level to full speed.
  auto f = std::max(0.0, age) / warmup_seconds;
  return warmup_performance + (1.0 - warmup_performance) * f;
}

} // namespace alb
