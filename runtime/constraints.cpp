#include "runtime/constraints.hpp"

#include <algorithm>
#include <cctype>

namespace alb {

namespace {

bool name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_'
         || c == '+' || c == '-';
}

bool op_char(char c) {
  return c == '=' || c == '!' || c == '<' || c == '>';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
    s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
    s.remove_suffix(1);
  return s;
}

// The next dot-separated part of `v` (consumed), "" when none is left.
std::string_view next_part(std::string_view& v) {
  auto dot = v.find('.');
  auto part = v.substr(0, dot);
  v.remove_prefix(dot == std::string_view::npos ? v.size() : dot + 1);
  return part;
}

int compare_parts(std::string_view a, std::string_view b) {
  size_t da = 0, db = 0;
  while (da < a.size() && std::isdigit(static_cast<unsigned char>(a[da])))
    ++da;
  while (db < b.size() && std::isdigit(static_cast<unsigned char>(b[db])))
    ++db;
  // Numbers compare by value: strip leading zeros, then longer is larger.
  auto na = a.substr(0, da), nb = b.substr(0, db);
  while (na.size() > 1 && na.front() == '0')
    na.remove_prefix(1);
  while (nb.size() > 1 && nb.front() == '0')
    nb.remove_prefix(1);
  if (na.empty())
    na = "0";
  if (nb.empty())
    nb = "0";
  if (na.size() != nb.size())
    return na.size() < nb.size() ? -1 : 1;
  if (auto c = na.compare(nb); c != 0)
    return c < 0 ? -1 : 1;
  auto ra = a.substr(da), rb = b.substr(db);
  auto c = ra.compare(rb);
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

} // namespace

const char* to_string(version_op x) {
  switch (x) {
    case version_op::any:
      return "";
    case version_op::eq:
      return "=";
    case version_op::ne:
      return "!=";
    case version_op::lt:
      return "<";
    case version_op::le:
      return "<=";
    case version_op::gt:
      return ">";
    case version_op::ge:
      return ">=";
  }
  return "?";
}

std::optional<software_need> parse_software_need(std::string_view text,
                                                 std::string& error) {
  auto s = trim(text);
  size_t i = 0;
  while (i < s.size() && name_char(s[i]))
    ++i;
  software_need n;
  n.name = std::string{s.substr(0, i)};
  if (n.name.empty()) {
    error = s.empty()
              ? "empty software requirement"
              : "'" + std::string{s} + "' does not start with a software name";
    return std::nullopt;
  }
  auto rest = trim(s.substr(i));
  if (rest.empty())
    return n;
  size_t j = 0;
  while (j < rest.size() && op_char(rest[j]))
    ++j;
  auto op = rest.substr(0, j);
  if (op == "=" || op == "==")
    n.op = version_op::eq;
  else if (op == "!=")
    n.op = version_op::ne;
  else if (op == "<")
    n.op = version_op::lt;
  else if (op == "<=")
    n.op = version_op::le;
  else if (op == ">")
    n.op = version_op::gt;
  else if (op == ">=")
    n.op = version_op::ge;
  else {
    error = op.empty() ? "'" + std::string{s}
                           + "': expected an operator (= != < <= > >=) after "
                             "the name"
                       : "'" + std::string{s} + "': unknown operator '"
                           + std::string{op} + "' (use = != < <= > >=)";
    return std::nullopt;
  }
  auto v = trim(rest.substr(j));
  bool ok = !v.empty() && v.front() != '.' && v.back() != '.'
            && v.find("..") == std::string_view::npos;
  for (auto c : v)
    ok = ok && name_char(c);
  if (!ok) {
    error = "'" + std::string{s} + "': "
            + (v.empty() ? std::string{"missing version after '"}
                             + std::string{op} + "'"
                         : "bad version '" + std::string{v} + "'");
    return std::nullopt;
  }
  n.version = std::string{v};
  return n;
}

std::string validate_tag(std::string_view tag) {
  if (tag.empty())
    return "empty tag";
  for (auto c : tag)
    if (std::isspace(static_cast<unsigned char>(c)) || c == ',')
      return "tag '" + std::string{tag} + "' holds a space or comma";
  return {};
}

int compare_versions(std::string_view a, std::string_view b) {
  // The local label (2.3.1+cu121) says how it was built, not which
  // version it is.
  a = a.substr(0, a.find('+'));
  b = b.substr(0, b.find('+'));
  while (!a.empty() || !b.empty()) {
    auto pa = next_part(a);
    auto pb = next_part(b);
    if (auto c = compare_parts(pa, pb); c != 0)
      return c;
  }
  return 0;
}

bool satisfies(const software_need& need,
               const std::map<std::string, std::string>& have) {
  auto i = have.find(need.name);
  if (i == have.end())
    return false;
  if (need.op == version_op::any)
    return true;
  // A node that names the software without a version meets only a bare
  // requirement: it cannot promise any version.
  if (i->second.empty())
    return false;
  auto c = compare_versions(i->second, need.version);
  switch (need.op) {
    case version_op::any:
      return true;
    case version_op::eq:
      return c == 0;
    case version_op::ne:
      return c != 0;
    case version_op::lt:
      return c < 0;
    case version_op::le:
      return c <= 0;
    case version_op::gt:
      return c > 0;
    case version_op::ge:
      return c >= 0;
  }
  return false;
}

std::string to_string(const software_need& need) {
  if (need.op == version_op::any)
    return need.name;
  return need.name + " " + to_string(need.op) + " " + need.version;
}

std::optional<node_constraints> parse_constraints(const test_requirements& req,
                                                  std::string& error) {
  node_constraints c;
  c.backend = req.required_backend;
  for (auto& s : req.required_software) {
    std::string why;
    auto n = parse_software_need(s, why);
    if (!n) {
      error = "required_software: " + why;
      return std::nullopt;
    }
    c.software.push_back(std::move(*n));
  }
  for (auto& t : req.required_tags) {
    if (auto why = validate_tag(t); !why.empty()) {
      error = "tags: " + why;
      return std::nullopt;
    }
    if (std::find(c.tags.begin(), c.tags.end(), t) == c.tags.end())
      c.tags.push_back(t);
  }
  return c;
}

bool meets(const node_constraints& c, const worker_capabilities& caps) {
  // The same checks as unmet_constraints, without building text: this runs
  // on every placement.
  if (!c.backend.empty()
      && std::find(caps.supported_backends.begin(),
                   caps.supported_backends.end(), c.backend)
           == caps.supported_backends.end())
    return false;
  for (auto& n : c.software)
    if (!satisfies(n, caps.software_versions))
      return false;
  for (auto& t : c.tags)
    if (std::find(caps.tags.begin(), caps.tags.end(), t) == caps.tags.end())
      return false;
  return true;
}

namespace {

std::string listed(const char* what, const std::vector<std::string>& xs) {
  if (xs.empty())
    return std::string{"no "} + what;
  std::string out = what;
  for (size_t i = 0; i < xs.size(); ++i)
    out += (i == 0 ? " " : ", ") + xs[i];
  return out;
}

} // namespace

std::vector<unmet_constraint>
unmet_constraints(const node_constraints& c, const worker_capabilities& caps) {
  std::vector<unmet_constraint> out;
  auto& bs = caps.supported_backends;
  if (!c.backend.empty()
      && std::find(bs.begin(), bs.end(), c.backend) == bs.end())
    out.push_back({"backend " + c.backend, listed("backends", bs)});
  for (auto& n : c.software) {
    if (satisfies(n, caps.software_versions))
      continue;
    auto i = caps.software_versions.find(n.name);
    auto have = i == caps.software_versions.end() ? "no " + n.name
                : i->second.empty()               ? n.name + " (no version)"
                                                  : n.name + " " + i->second;
    out.push_back({"software " + to_string(n), std::move(have)});
  }
  for (auto& t : c.tags)
    if (std::find(caps.tags.begin(), caps.tags.end(), t) == caps.tags.end())
      out.push_back({"tag " + t, listed("tags", caps.tags)});
  return out;
}

std::vector<std::string> all_unmet(const node_constraints& c,
                                   const worker_capabilities& caps) {
  std::vector<std::string> out;
  for (auto& u : unmet_constraints(c, caps))
    out.push_back(std::move(u.need));
  return out;
}

std::string first_unmet(const node_constraints& c,
                        const worker_capabilities& caps) {
  if (meets(c, caps))
    return {};
  return all_unmet(c, caps).front();
}

} // namespace alb
