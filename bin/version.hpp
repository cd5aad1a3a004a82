#pragma once

// `alb --version` and `alb version [--json]`: alb's version, the git commit
// it was built from and the versions of the libraries it was built with.

#include <string>

namespace CLI {
class App;
} // namespace CLI

namespace alb::cli {

/// One line: "alb VERSION (git COMMIT)".
std::string version_line();

/// The same as a JSON object: version, git_commit and the CAF, toml++ and
/// prometheus-cpp versions.
std::string version_json();

/// Adds `--version` to app and the `version [--json]` subcommand.
void add_version(CLI::App& app, int& rc);

} // namespace alb::cli
