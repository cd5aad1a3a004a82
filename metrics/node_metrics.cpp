#include "metrics/node_metrics.hpp"

#include <array>

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace alb::metrics {

namespace {

constexpr run_end all_ends[]
  = {run_end::passed, run_end::failed, run_end::timed_out, run_end::withdrawn};

prometheus::Gauge&
gauge(prometheus::Registry& reg, const char* name, const char* help,
      const std::map<std::string, std::string>& labels = {}) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(reg).Add(
    labels);
}

} // namespace

struct node_metrics::impl {
  std::shared_ptr<prometheus::Registry> reg
    = std::make_shared<prometheus::Registry>();
  prometheus::Gauge* busy = nullptr;
  prometheus::Gauge* connected = nullptr;
  prometheus::Counter* started = nullptr;
  std::array<prometheus::Counter*, 4> ended{};
  prometheus::Histogram* duration = nullptr;
};

node_metrics::node_metrics(const node_info& info)
  : impl_(std::make_unique<impl>()) {
  auto& reg = *impl_->reg;
  gauge(reg, "alb_node_info", "Always 1; the label names the node",
        {{"node", info.name}})
    .Set(1);
  gauge(reg, "alb_node_slots", "Tests the node runs at once").Set(info.slots);
  impl_->busy = &gauge(reg, "alb_node_slots_busy", "Slots running a test now");
  gauge(reg, "alb_node_cores", "CPU cores the node offers").Set(info.cores);
  gauge(reg, "alb_node_memory_bytes", "Memory the node offers, in bytes")
    .Set(info.memory_gb * 1024.0 * 1024.0 * 1024.0);
  auto& acc = prometheus::BuildGauge()
                .Name("alb_node_accelerators")
                .Help("Accelerators the node offers, by type")
                .Register(reg);
  for (auto& [type, count] : info.accelerators)
    acc.Add({{"type", type}}).Set(count);
  impl_->connected = &gauge(reg, "alb_node_connected",
                            "1 while the node is attached to its coordinator");
  impl_->started = &prometheus::BuildCounter()
                      .Name("alb_node_tests_started_total")
                      .Help("Tests started on this node")
                      .Register(reg)
                      .Add({});
  auto& ended = prometheus::BuildCounter()
                  .Name("alb_node_tests_ended_total")
                  .Help("Tests that ended on this node, by outcome (passed, "
                        "failed, timed_out, withdrawn while running)")
                  .Register(reg);
  for (auto how : all_ends)
    impl_->ended[static_cast<size_t>(how)]
      = &ended.Add({{"outcome", to_string(how)}});
  impl_->duration
    = &prometheus::BuildHistogram()
         .Name("alb_node_test_duration_seconds")
         .Help("How long the tests that passed, failed or timed out on this "
               "node ran")
         .Register(reg)
         .Add({}, prometheus::Histogram::BucketBoundaries{
                    0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800, 3600});
}

node_metrics::~node_metrics() = default;

void node_metrics::run_started() {
  impl_->started->Increment();
  impl_->busy->Increment();
}

void node_metrics::run_ended(run_end how, double seconds) {
  impl_->busy->Decrement();
  impl_->ended[static_cast<size_t>(how)]->Increment();
  // A withdrawn run's duration is not known.
  if (how != run_end::withdrawn)
    impl_->duration->Observe(seconds);
}

void node_metrics::set_connected(bool yes) {
  impl_->connected->Set(yes ? 1 : 0);
}

std::shared_ptr<prometheus::Collectable> node_metrics::collectable() const {
  return impl_->reg;
}

std::string node_metrics::scrape() const {
  return prometheus::TextSerializer{}.Serialize(impl_->reg->Collect());
}

} // namespace alb::metrics
