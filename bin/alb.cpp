// The `alb` command: parses the command line and dispatches to a subcommand.

#include "bin/commands.hpp"
#include "bin/version.hpp"
#include "runtime/huge_pages.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

int main(int argc, char** argv) {
  alb::tune_allocator_for_service();
  // Named "alb" so help (and the man page made from it) does not show the
  // path it was started from.
  CLI::App app{"alb - adaptive load balancer for distributed test execution",
               "alb"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show help for every subcommand");
  int rc = 0;
  alb::cli::add_stress(app, rc);
  alb::cli::add_visualize(app, rc);
  alb::cli::add_scenario(app, rc);
  alb::cli::add_spike(app, rc);
  alb::cli::add_benchmark(app, rc);
  alb::cli::add_monitor(app, rc);
  alb::cli::add_coordinator(app, rc);
  alb::cli::add_node(app, rc);
  alb::cli::add_submit(app, rc);
  alb::cli::add_run(app, rc);
  alb::cli::add_cancel(app, rc);
  alb::cli::add_results(app, rc);
  alb::cli::add_status(app, rc);
  alb::cli::add_logs(app, rc);
  alb::cli::add_version(app, rc);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // One line naming what is wrong; usage errors exit with 2.
    std::cerr << "alb: error: " << e.what() << "\n";
    std::cerr << "Run 'alb --help' for usage.\n";
    return 2;
  }
  return rc;
}
