#pragma once

// Finding and running gnuplot (no shell).

#include <filesystem>
#include <optional>
#include <string>
#include <utility>

namespace alb::report::viz {

namespace fs = std::filesystem;

/// Returns the absolute path of program `name` (a path, or looked up in
/// PATH) if it is an executable file.
std::optional<std::string> find_program(const std::string& name);

/// Runs `gnuplot SCRIPT` inside `dir` (no shell); returns its exit status and
/// its combined output.
std::pair<int, std::string> run_gnuplot(const std::string& program,
                                        const fs::path& dir,
                                        const std::string& script);

} // namespace alb::report::viz
