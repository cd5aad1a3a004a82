#pragma once

// What a test asks of a node beyond capacity: software with versions
// (`required_software = ["torch >= 2.1", "cuda = 12.1", "python"]`) and
// tags (`tags = ["gpu-rack"]`), parsed once, matched against a worker's
// `software_versions` and `tags`, and described for waiting reasons. No
// CAF, no I/O.
//
// Syntax of one software requirement: NAME, or NAME OP VERSION with OP one
// of = == != < <= > >= (spaces optional). NAME is letters, digits and
// `._+-`; VERSION is one or more dot-separated parts. Versions compare
// part by part: numerically when both parts are numbers, else the leading
// number and then the rest as text; missing parts count as 0 (12.1 ==
// 12.1.0); a local label after `+` (2.3.1+cu121) is ignored. A bare NAME
// needs only that the node has it (any version, even none).

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/model.hpp"

namespace alb {

/// A version comparison.
enum class version_op {
  /// Any version (a bare NAME).
  any,
  /// `=` or `==`.
  eq,
  /// `!=`.
  ne,
  /// `<`.
  lt,
  /// `<=`.
  le,
  /// `>`.
  gt,
  /// `>=`.
  ge,
};

/// The operator as written (`>=`; "" for any).
const char* to_string(version_op x);

/// One parsed software requirement.
struct software_need {
  /// Software name, e.g. "torch".
  std::string name;
  /// How the node's version must compare.
  version_op op = version_op::any;
  /// Version compared against ("" for any).
  std::string version;
};

/// Parses one requirement; on bad syntax returns nothing and sets `error`
/// (what is wrong, e.g. "unknown operator '>>='").
std::optional<software_need> parse_software_need(std::string_view text,
                                                 std::string& error);

/// Returns "" when `tag` is a valid tag, else what is wrong with it.
std::string validate_tag(std::string_view tag);

/// Compares versions: <0, 0 or >0 (see the header comment).
int compare_versions(std::string_view a, std::string_view b);

/// Whether software versions `have` meet `need`.
bool satisfies(const software_need& need,
               const std::map<std::string, std::string>& have);

/// `need` as text, e.g. "torch >= 2.1" (or "torch").
std::string to_string(const software_need& need);

/// A test's non-capacity requirements, parsed once at submission.
struct node_constraints {
  /// Software the worker must have.
  std::vector<software_need> software;
  /// Tags the worker must all carry.
  std::vector<std::string> tags;
  /// Backend the worker must offer ("" = any).
  std::string backend;

  /// Whether there is nothing to check.
  bool empty() const {
    return software.empty() && tags.empty() && backend.empty();
  }
};

/// Parses `req`'s software, tags and backend; on bad syntax returns
/// nothing and sets `error` (naming the entry).
std::optional<node_constraints> parse_constraints(const test_requirements& req,
                                                  std::string& error);

/// Whether a worker offering `caps` meets `c`.
bool meets(const node_constraints& c, const worker_capabilities& caps);

/// The first requirement of `c` that `caps` fails, as the noun phrase a
/// waiting reason uses ("software torch >= 3", "tag gpu-rack", "backend
/// cuda"), or "" when it meets them all.
std::string first_unmet(const node_constraints& c,
                        const worker_capabilities& caps);

/// One requirement of a `node_constraints` a worker fails.
struct unmet_constraint {
  /// What is needed, as a waiting reason names it: "software torch >=
  /// 2.1", "tag gpu-rack", "backend cuda".
  std::string need;
  /// What the worker has instead: "torch 2.0", "no torch", "tags a, b",
  /// "no tags", "backends cpu".
  std::string have;
};

/// Every requirement of `c` that `caps` fails, in order (backend,
/// software, tags); empty when it meets them all. The one check of a
/// test's constraints: placement (`meets`), the scheduler's waiting reason
/// and `alb status` all go through it.
std::vector<unmet_constraint>
unmet_constraints(const node_constraints& c, const worker_capabilities& caps);

/// The `need` of every `unmet_constraints` entry.
std::vector<std::string> all_unmet(const node_constraints& c,
                                   const worker_capabilities& caps);

} // namespace alb
