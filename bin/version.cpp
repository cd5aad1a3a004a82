// `alb --version` and `alb version [--json]`.

#include "bin/version.hpp"

#include <iostream>
#include <memory>

#include <CLI/CLI.hpp>
#include <caf/config.hpp>
#include <nlohmann/json.hpp>
#include <toml++/impl/version.h>

#include "alb_git_commit.hpp"

// Set by CMake from the project() call and prometheus-cpp's package
// version (the library has no version macro of its own).
#ifndef ALB_VERSION
#define ALB_VERSION "unknown"
#endif
#ifndef ALB_PROMETHEUS_CPP_VERSION
#define ALB_PROMETHEUS_CPP_VERSION "unknown"
#endif

namespace alb::cli {

namespace {

std::string caf_version() {
  // CAF_VERSION is MAJOR * 10000 + MINOR * 100 + PATCH (1706 = 0.17.6).
  return std::to_string(CAF_VERSION / 10000) + "."
         + std::to_string(CAF_VERSION / 100 % 100) + "."
         + std::to_string(CAF_VERSION % 100);
}

std::string toml_version() {
  return std::to_string(TOML_LIB_MAJOR) + "." + std::to_string(TOML_LIB_MINOR)
         + "." + std::to_string(TOML_LIB_PATCH);
}

} // namespace

std::string version_line() {
  return std::string{"alb "} + ALB_VERSION + " (git " + ALB_GIT_COMMIT + ")";
}

std::string version_json() {
  nlohmann::json j{
    {"version", ALB_VERSION},
    {"git_commit", ALB_GIT_COMMIT},
    {"caf", caf_version()},
    {"tomlplusplus", toml_version()},
    {"prometheus_cpp", ALB_PROMETHEUS_CPP_VERSION},
  };
  return j.dump(2);
}

void add_version(CLI::App& app, int& rc) {
  app.set_version_flag("--version", version_line(),
                       "Print alb's version and git commit and exit");
  auto json = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand(
    "version", "Print alb's version, git commit and library versions");
  cmd->footer("Without --json: the same line as `alb --version`.\n"
              "Exit status: 0.");
  cmd->add_flag("--json", *json,
                "JSON object: version, git_commit, caf, tomlplusplus, "
                "prometheus_cpp");
  cmd->callback([json, &rc] {
    std::cout << (*json ? version_json() : version_line()) << "\n";
    rc = 0;
  });
}

} // namespace alb::cli
