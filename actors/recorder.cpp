#include "actors/recorder.hpp"

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <nlohmann/json.hpp>

#include "runtime/run_stats.hpp"

namespace alb {

namespace {

struct recorder_state {
  static inline const char* name = "alb.recorder";
  recorder_options opts;
  time_series series;
  /// The latest gauges of each scheduler shard (index = source).
  std::vector<std::pair<double, double>> gauges;
};

using recorder_impl = recorder_actor::stateful_pointer<recorder_state>;

recorder_actor::behavior_type recorder_behavior(recorder_impl self,
                                                recorder_options opts) {
  auto& st = self->state;
  st.opts = std::move(opts);
  st.series = time_series{st.opts.bucket_width};
  return {
    [self](series_sample& s) {
      auto& series = self->state.series;
      if (s.completed > 0)
        series.add_completions(s.now, s.completed);
      if (s.started > 0)
        series.add_latency(s.now, s.latency_sum, s.started);
      // A split scheduler's shards sample on their own ticks: the run's
      // gauges are the sum of each shard's latest.
      auto& g = self->state.gauges;
      if (s.source >= g.size())
        g.resize(s.source + 1, {0.0, 0.0});
      g[s.source] = {s.queue_depth, s.workers};
      double queue = 0, workers = 0;
      for (auto& [q, w] : g) {
        queue += q;
        workers += w;
      }
      series.sample(s.now, queue, workers);
    },
    [self](end_atom, std::string& metrics) {
      auto& st = self->state;
      // peak_throughput comes with the metrics: the scheduler's run_stats
      // sees each completion's own time, finer than the ticks seen here.
      auto m = nlohmann::json::parse(metrics);
      nlohmann::json doc;
      doc["configuration"] = nlohmann::json::parse(st.opts.configuration_json);
      doc["metrics"] = std::move(m);
      doc["time_series"] = st.series.to_json();
      if (st.opts.on_result)
        st.opts.on_result(doc.dump());
      self->quit();
    },
  };
}

} // namespace

recorder_actor spawn_recorder(caf::actor_system& sys, recorder_options opts) {
  return sys.spawn(recorder_behavior, std::move(opts));
}

} // namespace alb
