#pragma once

// Registration of every `alb` subcommand. Each `add_*` function lives in its
// own bin/cmd_<name>.cpp, declares the subcommand's options with CLI11 and, in
// the subcommand's callback, stores the process exit status in `rc`.
// Exit statuses: 0 success, 1 the run itself failed (e.g. tests failed),
// 2 usage or input error (nothing was started).

namespace CLI {
class App;
} // namespace CLI

namespace alb::cli {

/// Registers `alb stress`.
void add_stress(CLI::App& app, int& rc);

/// Registers `alb visualize`.
void add_visualize(CLI::App& app, int& rc);

/// Registers `alb scenarios` and `alb scenario`.
void add_scenario(CLI::App& app, int& rc);

/// Registers `alb spike`.
void add_spike(CLI::App& app, int& rc);

/// Registers `alb benchmark`.
void add_benchmark(CLI::App& app, int& rc);

/// Registers `alb monitor`.
void add_monitor(CLI::App& app, int& rc);

/// Registers `alb coordinator`.
void add_coordinator(CLI::App& app, int& rc);

/// Registers `alb node`.
void add_node(CLI::App& app, int& rc);

/// Registers `alb submit`.
void add_submit(CLI::App& app, int& rc);

/// Registers `alb run`.
void add_run(CLI::App& app, int& rc);

/// Registers `alb cancel`.
void add_cancel(CLI::App& app, int& rc);

/// Registers `alb results`.
void add_results(CLI::App& app, int& rc);

/// Registers `alb logs`.
void add_logs(CLI::App& app, int& rc);

/// Registers `alb status`.
void add_status(CLI::App& app, int& rc);

} // namespace alb::cli
