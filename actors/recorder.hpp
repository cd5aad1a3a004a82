#pragma once

// The recorder actor: turns the scheduler's per-tick samples into bucketed
// time series and, when the scheduler sends the final metrics, assembles the
// run's result document (configuration, metrics, time_series).

#include <functional>
#include <string>

#include "actors/messages.hpp"

namespace alb {

/// Settings of the recorder.
struct recorder_options {
  /// Width of a time-series bucket in seconds.
  double bucket_width = 1.0;
  /// The run's configuration section, as JSON text.
  std::string configuration_json = "{}";
  /// Receives the result document (JSON text) once the run ended.
  std::function<void(std::string)> on_result;
};

/// Spawns a recorder.
recorder_actor spawn_recorder(caf::actor_system& sys, recorder_options opts);

} // namespace alb
