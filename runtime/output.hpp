#pragma once

// Writing results: checking an output path before a run starts (so a bad path
// fails fast and nothing is half-written) and replacing files atomically.

#include <string>

#include <nlohmann/json_fwd.hpp>

namespace alb {

/// Returns "" when `path` can be written, otherwise why not (names the path).
std::string check_output_path(const std::string& path);

/// Writes `text` to `path` through a temporary file and a rename, so readers
/// see the old file or the new one, never a torn one. Throws
/// std::runtime_error naming the path on failure.
void write_file_atomic(const std::string& path, const std::string& text);

/// A human-readable summary of a result document's metrics.
std::string format_summary(const nlohmann::json& doc);

} // namespace alb
