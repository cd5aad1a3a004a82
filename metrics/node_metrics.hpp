#pragma once

// The metric families of one `alb node` process, served on the node's own
// /metrics (`alb node --metrics-port P`): what the node offers, how many of
// its slots are busy, and the tests it ran by outcome. Separate from the
// scheduler's `registry` on purpose: a node schedules nothing, so its
// /metrics shows no scheduler families at 0.
//
// Usage:
//
//   auto m = std::make_shared<alb::metrics::node_metrics>(info);
//   alb::metrics::server srv{m->collectable(), "127.0.0.1", 9465};
//   host_options.observer = m;   // counts every start and end

#include <map>
#include <memory>
#include <string>

#include "runtime/run_observer.hpp"

namespace prometheus {
class Collectable;
} // namespace prometheus

namespace alb::metrics {

/// What a node offers, exported as gauges.
struct node_info {
  /// Node name (the `node` label of `alb_node_info`).
  std::string name;
  /// Tests it runs at once.
  int slots = 1;
  /// CPU cores.
  int cores = 1;
  /// Memory in GB.
  double memory_gb = 0;
  /// Accelerators by type.
  std::map<std::string, int> accelerators;
};

/// The node's families; thread-safe (counters and gauges are atomic).
class node_metrics : public run_observer {
public:
  /// Creates every family, counts at 0.
  explicit node_metrics(const node_info& info);
  ~node_metrics() override;

  node_metrics(const node_metrics&) = delete;
  node_metrics& operator=(const node_metrics&) = delete;

  /// One more busy slot, one more started test.
  void run_started() override;
  /// One busy slot less; counts the end by outcome and its duration.
  void run_ended(run_end how, double seconds) override;
  /// Whether the node is attached to its coordinator now.
  void set_connected(bool yes);

  /// What /metrics serves.
  std::shared_ptr<prometheus::Collectable> collectable() const;
  /// The text exposition format, exactly what /metrics serves.
  std::string scrape() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace alb::metrics
