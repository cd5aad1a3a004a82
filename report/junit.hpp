#pragma once

// JUnit XML of a submission's outcomes (`alb submit --junit FILE`), in the
// shape Jenkins, GitLab and GitHub test reporters read:
//
//     <testsuites name="alb" tests="3" failures="1" errors="1" ...>
//       <testsuite name="suite" tests="3" ... timestamp="2026-...+00:00">
//         <testcase classname="pkg.mod" name="test_a" time="1.234"/>
//         <testcase ...><failure message="exit status 3" type="exit_status">
//             details and output</failure><system-out>...</system-out>
//         </testcase>
//
// One testcase per submitted test: a test id "a.b.c" (or "a::b::c", or
// "a/b/c") is classname "a.b" (or "a::b", "a/b") and name "c"; an id
// without such a separator gets the suite's name as classname. A command
// that exited non-zero is a <failure>; a timeout, a signal, a test that
// could not start or was rejected, or one without an outcome (coordinator
// lost, --timeout) is an <error>; a cancelled test is <skipped>. Every
// string is escaped, control characters that XML 1.0 cannot carry become
// their Unicode control pictures (ESC as U+241B) and invalid UTF-8 becomes
// U+FFFD, so any output a test printed still gives a well-formed file.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runtime/cluster_types.hpp"

namespace alb::report {

/// The run-level facts of a JUnit report.
struct junit_suite {
  /// Suite name (e.g. the tests file's name without its extension).
  std::string name = "alb";
  /// Host attribute: the coordinator's address.
  std::string hostname;
  /// When the submission started, Unix seconds (written as ISO-8601 with
  /// zone; 0 = left out).
  double timestamp = 0;
  /// Seconds the whole submission took.
  double wall_seconds = 0;
};

/// `s` made safe for XML 1.0 text (`attribute` false) or a double-quoted
/// attribute value: markup escaped, newlines and tabs kept as character
/// references in attributes, other control characters replaced by their
/// control pictures, invalid UTF-8 by U+FFFD.
std::string xml_escape(std::string_view s, bool attribute);

/// Classname and name of `test_id` (see the header comment); `suite`
/// when the id has no separator.
std::pair<std::string, std::string> junit_names(const std::string& test_id,
                                                const std::string& suite);

/// The JUnit document: one testcase per outcome in `rows` (in that order),
/// then one <error> testcase per id in `without_outcome`.
std::string junit_xml(const junit_suite& suite,
                      const std::vector<cluster_outcome>& rows,
                      const std::vector<std::string>& without_outcome);

} // namespace alb::report
