#pragma once

// The typed reader of a parsed configuration document (internal to the
// configuration sources): every value is read with its type and range
// checked, and a problem names the file, line, column and key. Sections are
// tables of `field`s (sections.cpp); JSON documents are converted to the same
// TOML tree first (json_bridge.cpp), so one reader serves both formats.

#include "runtime/byte_size.hpp"
#include "runtime/config.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace alb::config_detail {

/// Returns "a string", "an integer", ... for the type of `n`.
inline std::string type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    default:
      return "nothing";
  }
}

/// Returns `x` formatted as the messages show it.
inline std::string num(double x) {
  std::ostringstream out;
  out << x;
  return out.str();
}

/// How a number is bounded.
enum class bound {
  /// > 0.
  positive,
  /// >= 0.
  non_negative,
  /// (0, 1].
  unit_open,
  /// [0, 1].
  unit,
  /// [0, 100].
  percent,
};

/// Reads typed, range-checked values out of a parsed document and reports
/// problems with the location of the offending node.
class reader {
public:
  explicit reader(std::string file) : file_(std::move(file)) {
    // nop
  }

  /// Returns the warnings in file order (tables iterate sorted by key).
  std::vector<std::string> warnings() const {
    auto ws = warnings_;
    std::stable_sort(ws.begin(), ws.end(), [](auto& a, auto& b) {
      return std::tie(a.first.line, a.first.column)
             < std::tie(b.first.line, b.first.column);
    });
    std::vector<std::string> out;
    for (auto& w : ws)
      out.push_back(std::move(w.second));
    return out;
  }

  const std::string& file() const { return file_; }

  std::string where(const toml::source_region& r) const {
    // Nodes converted from JSON carry no position (line 0).
    if (r.begin.line == 0)
      return file_;
    return file_ + ":" + std::to_string(r.begin.line) + ":"
           + std::to_string(r.begin.column);
  }

  [[noreturn]] void fail(const toml::node& n, const std::string& path,
                         const std::string& what) const {
    throw config_error(where(n.source()) + ": " + path + ": " + what);
  }

  void unknown_key(const toml::key& k, const std::string& parent,
                   const std::vector<std::string>& known) {
    std::string msg = where(k.source()) + ": unknown key '"
                      + std::string{k.str()} + "' "
                      + (parent.empty() ? "at top level" : "in " + parent);
    if (auto guess = did_you_mean(k.str(), known); !guess.empty())
      msg += " (did you mean '" + guess + "'?)";
    warnings_.emplace_back(k.source().begin, one_line(msg + "; ignored"));
  }

  /// An unknown key where none may be (a test definition): an error.
  [[noreturn]] void unknown_key_error(const toml::key& k,
                                      const std::string& parent,
                                      const std::vector<std::string>& known,
                                      const std::string& hint = {}) const {
    std::string msg = where(k.source()) + ": unknown key '"
                      + std::string{k.str()} + "' in " + parent;
    if (!hint.empty())
      msg += " (" + hint + ")";
    else if (auto guess = did_you_mean(k.str(), known); !guess.empty())
      msg += " (did you mean '" + guess + "'?)";
    throw config_error(one_line(msg));
  }

  int64_t integer(const toml::node& n, const std::string& path) const {
    if (auto v = n.as_integer())
      return v->get();
    fail(n, path, "expected an integer, got " + type_name(n));
  }

  int integer(const toml::node& n, const std::string& path, int64_t lo,
              int64_t hi) const {
    auto x = integer(n, path);
    if (x < lo || x > hi) {
      if (hi == std::numeric_limits<int>::max())
        fail(n, path,
             "must be at least " + std::to_string(lo) + ", got "
               + std::to_string(x));
      fail(n, path,
           "must be between " + std::to_string(lo) + " and "
             + std::to_string(hi) + ", got " + std::to_string(x));
    }
    return static_cast<int>(x);
  }

  double number(const toml::node& n, const std::string& path) const {
    double x;
    if (auto i = n.as_integer())
      x = static_cast<double>(i->get());
    else if (auto f = n.as_floating_point())
      x = f->get();
    else
      fail(n, path, "expected a number, got " + type_name(n));
    if (!std::isfinite(x))
      fail(n, path, "must be a finite number, got " + num(x));
    return x;
  }

  double number(const toml::node& n, const std::string& path, bound b) const {
    auto x = number(n, path);
    switch (b) {
      case bound::positive:
        if (!(x > 0))
          fail(n, path, "must be positive, got " + num(x));
        break;
      case bound::non_negative:
        if (x < 0)
          fail(n, path, "must not be negative, got " + num(x));
        break;
      case bound::unit_open:
        if (!(x > 0 && x <= 1))
          fail(n, path, "must be greater than 0 and at most 1, got " + num(x));
        break;
      case bound::unit:
        if (x < 0 || x > 1)
          fail(n, path, "must be between 0 and 1, got " + num(x));
        break;
      case bound::percent:
        if (x < 0 || x > 100)
          fail(n, path, "must be between 0 and 100, got " + num(x));
        break;
    }
    return x;
  }

  std::string string(const toml::node& n, const std::string& path) const {
    if (auto s = n.as_string())
      return s->get();
    fail(n, path, "expected a string, got " + type_name(n));
  }

  std::string nonempty_string(const toml::node& n,
                              const std::string& path) const {
    auto s = string(n, path);
    if (s.empty())
      fail(n, path, "must not be empty");
    return s;
  }

  bool boolean(const toml::node& n, const std::string& path) const {
    if (auto b = n.as_boolean())
      return b->get();
    fail(n, path, "expected a boolean, got " + type_name(n));
  }

  const toml::table& table(const toml::node& n, const std::string& path) const {
    if (auto t = n.as_table())
      return *t;
    fail(n, path, "expected a table, got " + type_name(n));
  }

  const toml::array& array(const toml::node& n, const std::string& path,
                           bool allow_empty) const {
    auto a = n.as_array();
    if (!a)
      fail(n, path, "expected an array, got " + type_name(n));
    if (!allow_empty && a->empty())
      fail(n, path, "must not be empty");
    return *a;
  }

  std::vector<double> numbers(const toml::node& n, const std::string& path,
                              bound b) const {
    std::vector<double> out;
    auto& a = array(n, path, false);
    for (size_t i = 0; i < a.size(); ++i)
      out.push_back(number(a[i], path + "[" + std::to_string(i) + "]", b));
    return out;
  }

  std::vector<int> integers(const toml::node& n, const std::string& path,
                            int64_t lo, int64_t hi) const {
    std::vector<int> out;
    auto& a = array(n, path, false);
    for (size_t i = 0; i < a.size(); ++i)
      out.push_back(
        integer(a[i], path + "[" + std::to_string(i) + "]", lo, hi));
    return out;
  }

  std::vector<std::string> strings(const toml::node& n, const std::string& path,
                                   bool allow_empty) const {
    std::vector<std::string> out;
    auto& a = array(n, path, allow_empty);
    for (size_t i = 0; i < a.size(); ++i)
      out.push_back(
        nonempty_string(a[i], path + "[" + std::to_string(i) + "]"));
    return out;
  }

  /// Bytes as an integer, or a size such as "64MiB" (runtime/byte_size).
  uint64_t byte_size(const toml::node& n, const std::string& path) const {
    if (auto i = n.as_integer()) {
      if (i->get() < 0)
        fail(n, path, "must not be negative");
      return static_cast<uint64_t>(i->get());
    }
    if (auto s = n.as_string()) {
      auto v = parse_byte_size(s->get());
      if (!v)
        fail(n, path,
             "'" + s->get()
               + "' is not a size (bytes, or e.g. \"64MiB\", \"512K\")");
      return *v;
    }
    fail(n, path, "expected bytes (an integer) or a size such as \"64MiB\"");
  }

private:
  std::string file_;
  std::vector<std::pair<toml::source_position, std::string>> warnings_;
};

/// A log level key (DEBUG, INFO, WARNING or ERROR in any case), normalized;
/// anything else fails naming the key.
inline std::string read_log_level(reader& r, const toml::node& n,
                                  const std::string& path) {
  auto s = r.string(n, path);
  try {
    return normalize_log_level(s, path);
  } catch (const config_error&) {
    r.fail(n, path,
           "unknown log level '" + s
             + "' (expected DEBUG, INFO, WARNING or ERROR)");
  }
}

/// Reads one key of a `T` from a node at a path.
template<class T>
using setter = void (*)(reader&, const toml::node&, const std::string&, T&);

/// A known key of a section and how to read it.
template<class T>
struct field {
  const char* name;
  setter<T> set;
};

/// Returns the path of `key` below `path` ("a.b").
inline std::string child(const std::string& path, std::string_view key) {
  return path.empty() ? std::string{key} : path + "." + std::string{key};
}

/// Reads every key of `t` into `obj`; unknown keys become warnings.
template<class T, size_t N>
void read_fields(reader& r, const toml::table& t, const std::string& path,
                 T& obj, const field<T> (&fields)[N]) {
  for (auto&& [k, v] : t) {
    // A named copy: lambdas cannot capture structured bindings in C++17.
    std::string_view key = k.str();
    auto i = std::find_if(std::begin(fields), std::end(fields),
                          [key](auto& f) { return key == f.name; });
    if (i != std::end(fields)) {
      i->set(r, v, child(path, k.str()), obj);
    } else {
      std::vector<std::string> known;
      for (auto& f : fields)
        known.emplace_back(f.name);
      r.unknown_key(k, path, known);
    }
  }
}

/// Reads every key of `t` into `obj`; an unknown key is an error (with a
/// "did you mean", or the hint `hints` has for that key).
template<class T, size_t N>
void read_fields_strict(reader& r, const toml::table& t,
                        const std::string& path, T& obj,
                        const field<T> (&fields)[N],
                        const std::map<std::string, std::string>& hints = {}) {
  for (auto&& [k, v] : t) {
    std::string_view key = k.str();
    auto i = std::find_if(std::begin(fields), std::end(fields),
                          [key](auto& f) { return key == f.name; });
    if (i != std::end(fields)) {
      i->set(r, v, child(path, k.str()), obj);
      continue;
    }
    std::vector<std::string> known;
    for (auto& f : fields)
      known.emplace_back(f.name);
    auto h = hints.find(std::string{key});
    r.unknown_key_error(k, path, known, h == hints.end() ? "" : h->second);
  }
}

/// The largest value an `int` field takes.
constexpr int64_t int_max = std::numeric_limits<int>::max();

/// Reads every known section of `doc` into `cfg`; unknown keys become
/// warnings of `r` (sections.cpp).
void read_document(reader& r, const toml::table& doc, config& cfg);

/// Reads the `[node]` section at `n` (strictly: an unknown key is an
/// error) into `x` (node_section.cpp).
void read_node_section(reader& r, const toml::node& n, const std::string& path,
                       node_config& x);

/// Parses the original's JSON format into the TOML tree the reader reads;
/// `file` names the text in messages (json_bridge.cpp). Throws
/// `config_error`.
toml::table parse_json(std::string_view text, const std::string& file);

} // namespace alb::config_detail
