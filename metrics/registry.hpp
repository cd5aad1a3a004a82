#pragma once

// The process-wide set of alb metric families. One `registry` exists per
// process; the scheduler's `prometheus_observer` updates it and a `server`
// exposes it on /metrics. Prometheus headers stay out of this header so every
// file that includes it compiles fast.
//
// Usage:
//
//   alb::metrics::registry reg{{"stress", "adaptive"}};
//   alb::metrics::prometheus_observer obs{reg};   // hand to the scheduler
//   alb::metrics::server srv{reg, "127.0.0.1", 9464};
//   std::cout << "metrics on " << srv.url() << "\n";

#include <cstddef>
#include <memory>
#include <string>

namespace prometheus {
class Collectable;
class Registry;
} // namespace prometheus

namespace alb::metrics {

namespace detail {
struct families;
} // namespace detail

/// What the run is; exported as labels of `alb_run_info`.
struct run_info {
  /// How alb runs: "stress", "scenario", "coordinator", "run", ...
  std::string mode = "run";
  /// The configured placement strategy.
  std::string strategy;
};

/// Every alb metric family on one Prometheus registry, plus process health
/// under the standard `process_*` names (start time, memory, threads, CPU,
/// open files and their limit) refreshed on each scrape. Thread-safe: scrapes
/// may run at any time; each scrape first flushes the local counts of every
/// `prometheus_observer` of the registry. Must outlive its observers and
/// servers.
class registry {
public:
  /// Creates every family and the label sets known in advance, all at 0.
  explicit registry(run_info info = {});

  ~registry();

  registry(const registry&) = delete;
  registry& operator=(const registry&) = delete;

  /// Replaces the labels of `alb_run_info` (e.g. once the strategy is known).
  void set_run_info(const run_info& info);

  /// What a scrape of /metrics collects: the families with process health
  /// refreshed first. Register this with an exposer.
  std::shared_ptr<prometheus::Collectable> collectable() const;

  /// The underlying Prometheus registry, for adding extra families. Its own
  /// Collect() misses observer counts not flushed yet: scrape through
  /// `collectable()` or `scrape()`.
  std::shared_ptr<prometheus::Registry> prometheus_registry() const;

  /// Returns the text exposition format, exactly what /metrics serves.
  std::string scrape() const;

  /// The family handles; internal to metrics/.
  detail::families& families();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace alb::metrics
