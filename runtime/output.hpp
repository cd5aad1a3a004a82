#pragma once

// Writing results: checking an output path before a run starts (so a bad path
// fails fast and nothing is half-written), replacing regular files atomically
// and writing everything else (stdout, FIFOs, devices, links to them) in
// place.

#include <string>

#include <nlohmann/json_fwd.hpp>

namespace alb {

/// Returns "" when `path` can be written, otherwise why not (names the path).
std::string check_output_path(const std::string& path);

/// Writes `text` to `path` through a temporary file and a rename, so readers
/// see the old file or the new one, never a torn one. Throws
/// std::runtime_error naming the path on failure.
void write_file_atomic(const std::string& path, const std::string& text);

/// Where `write_result` sends a result.
enum class output_kind {
  /// An already open descriptor: "-" (stdout), /dev/stdout, /dev/stderr,
  /// /dev/fd/N, /proc/self/fd/N.
  descriptor,
  /// An existing target that is not a regular file (FIFO, device, socket),
  /// directly or through symlinks: opened and written in place.
  in_place,
  /// A regular file or a new name: a temporary file renamed onto it; through
  /// a symlink, onto the file the link points to, so the link stays.
  atomic_file,
};

/// How `path` would be written; `fd` gets the descriptor for `descriptor`
/// and `target` the file to replace for `atomic_file`.
output_kind classify_output(const std::string& path, int* fd = nullptr,
                            std::string* target = nullptr);

/// Writes a result document's text to `path` as `classify_output` says:
/// never replaces a device, FIFO or symlink by a rename. Throws
/// std::runtime_error naming the path on failure.
void write_result(const std::string& path, const std::string& text);

/// A human-readable summary of a result document's metrics.
std::string format_summary(const nlohmann::json& doc);

} // namespace alb
