// libFuzzer target: any bytes given as a configuration file, read as TOML and
// as JSON, must either load or fail with a `config_error`; any other
// exception, crash, leak or hang is a finding.

#include "runtime/config.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace {

// Messages are printed as one line each; a newline in one is a bug.
void check_one_line(std::string_view msg) {
  if (msg.find('\n') != std::string_view::npos || msg.empty())
    __builtin_trap();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text{reinterpret_cast<const char*>(data), size};
  for (auto format : {alb::config_format::toml, alb::config_format::json}) {
    try {
      auto cfg = alb::load_config_from_string(text, "fuzz", format);
      for (auto& w : cfg.warnings)
        check_one_line(w);
      // What the commands do next with a loaded config must hold up too.
      for (auto& [name, s] : cfg.scenario_configurations) {
        alb::peak_workers(cfg, s);
        for (auto& ev : s.events)
          alb::event_worker_count(
            ev, cfg.test_configurations.at(s.test_config).workers);
      }
      alb::find_scenario(cfg, std::string{text.substr(0, 16)});
    } catch (const alb::config_error& e) {
      // Rejected with a message: the expected outcome for most inputs.
      check_one_line(e.what());
    }
  }
  return 0;
}
