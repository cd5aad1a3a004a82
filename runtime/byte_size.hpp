#pragma once

// Sizes in bytes as people write them ("64MiB", "512K", "1G", "1048576")
// and as messages show them ("64 MiB"). Multiples are binary (K = KiB =
// 1024). No CAF.

#include <cstdint>
#include <optional>
#include <string>

namespace alb {

/// The default cap on a test's stdout and stderr together (`max_output`).
constexpr uint64_t default_max_output = uint64_t{64} << 20;
/// The smallest `max_output` accepted (below it even a short error message
/// would not fit).
constexpr uint64_t min_max_output = uint64_t{1} << 10;
/// The largest `max_output` accepted (1 TiB).
constexpr uint64_t max_max_output = uint64_t{1} << 40;

/// The default cap on one submission to a coordinator, serialized
/// (`[cluster] max_submission`, `alb coordinator --max-submission`).
constexpr uint64_t default_max_submission = uint64_t{64} << 20;
/// The smallest `max_submission` accepted.
constexpr uint64_t min_max_submission = uint64_t{1} << 20;
/// The largest `max_submission` accepted (the guard's frame length field
/// and CAF's buffers stay far from their 4 GiB limit).
constexpr uint64_t max_max_submission = uint64_t{1} << 30;

/// Parses a size: digits, optionally followed by B, K/KB/KiB, M/MB/MiB,
/// G/GB/GiB or T/TB/TiB (any case, spaces allowed before the unit);
/// nothing when it is not one or overflows.
std::optional<uint64_t> parse_byte_size(const std::string& text);

/// "64 MiB" for a whole number of a unit, else "1234567 bytes".
std::string format_bytes(uint64_t n);

/// Checks a `max_output` value: "" when it is in range, else why not.
std::string check_max_output(uint64_t n);

/// Checks a `max_submission` value: "" when it is in range, else why not.
std::string check_max_submission(uint64_t n);

} // namespace alb
