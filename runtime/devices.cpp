#include "runtime/devices.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>

namespace alb {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
    s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
    s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out{s};
  for (auto& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string join(const std::vector<int>& xs) {
  std::string out;
  for (auto x : xs) {
    if (!out.empty())
      out += ',';
    out += std::to_string(x);
  }
  return out;
}

std::string env_suffix(const std::string& type) {
  std::string out;
  for (auto c : type)
    out += std::isalnum(static_cast<unsigned char>(c))
             ? static_cast<char>(std::toupper(static_cast<unsigned char>(c)))
             : '_';
  return out;
}

[[noreturn]] void bad_line(size_t line, std::string_view text,
                           const std::string& what) {
  std::string shown{text.substr(0, 120)};
  throw device_error{"nvidia-smi output line " + std::to_string(line) + ": "
                     + what + " (got '" + shown
                     + "'; expected 'INDEX, MEMORY MiB, NAME')"};
}

} // namespace

// -- device_allocator ---------------------------------------------------------

device_allocator::device_allocator(const device_map& devices) {
  for (auto& [type, indices] : devices) {
    auto& f = free_[type];
    for (auto i : indices)
      f.emplace(i, true);
    auto& a = all_[type];
    for (auto& kv : f)
      a.push_back(kv.first);
  }
}

std::optional<device_map>
device_allocator::acquire(uint64_t owner,
                          const std::map<std::string, int>& need) {
  if (held_.count(owner) > 0)
    return std::nullopt;
  // Check every type first, so a run that cannot have all it needs takes
  // nothing.
  for (auto& [type, count] : need) {
    if (count <= 0)
      continue;
    if (free_count(type) < static_cast<size_t>(count))
      return std::nullopt;
  }
  device_map got;
  for (auto& [type, count] : need) {
    if (count <= 0)
      continue;
    auto& f = free_[type];
    auto& mine = got[type];
    for (auto& [index, is_free] : f) {
      if (static_cast<int>(mine.size()) == count)
        break;
      if (is_free) {
        is_free = false;
        mine.push_back(index);
      }
    }
  }
  held_[owner] = got;
  return got;
}

void device_allocator::release(uint64_t owner) {
  auto i = held_.find(owner);
  if (i == held_.end())
    return;
  for (auto& [type, indices] : i->second)
    for (auto index : indices)
      free_[type][index] = true;
  held_.erase(i);
}

device_map device_allocator::held_by(uint64_t owner) const {
  auto i = held_.find(owner);
  return i == held_.end() ? device_map{} : i->second;
}

size_t device_allocator::free_count(const std::string& type) const {
  auto i = free_.find(type);
  if (i == free_.end())
    return 0;
  return static_cast<size_t>(std::count_if(i->second.begin(), i->second.end(),
                                           [](auto& kv) { return kv.second; }));
}

// -- environment --------------------------------------------------------------

std::map<std::string, std::string>
visible_devices_env(const device_map& held, const device_map& managed) {
  std::map<std::string, std::string> env;
  for (auto& [type, all] : managed) {
    if (all.empty())
      continue;
    auto i = held.find(type);
    auto value = i == held.end() ? std::string{} : join(i->second);
    if (type == "cuda") {
      env["CUDA_VISIBLE_DEVICES"] = value;
    } else if (type == "rocm") {
      env["HIP_VISIBLE_DEVICES"] = value;
      env["ROCR_VISIBLE_DEVICES"] = value;
    }
    env["ALB_" + env_suffix(type) + "_DEVICES"] = value;
  }
  return env;
}

// -- nvidia-smi ---------------------------------------------------------------

std::vector<gpu_info> parse_nvidia_smi_csv(std::string_view text) {
  std::vector<gpu_info> out;
  size_t line_no = 0;
  bool first = true;
  while (!text.empty()) {
    auto nl = text.find('\n');
    auto raw = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++line_no;
    auto line = trim(raw);
    if (line.empty())
      continue;
    // Fields: index, memory, then the name (which may hold commas).
    auto c1 = line.find(',');
    auto c2 = c1 == std::string_view::npos ? c1 : line.find(',', c1 + 1);
    if (c2 == std::string_view::npos)
      bad_line(line_no, line, "expected 3 comma-separated fields");
    auto f_index = trim(line.substr(0, c1));
    auto f_mem = trim(line.substr(c1 + 1, c2 - c1 - 1));
    auto f_name = trim(line.substr(c2 + 1));
    if (first) {
      first = false;
      // The header of --format=csv; output without one starts with a
      // device line.
      if (lower(f_index) == "index") {
        if (lower(f_mem).rfind("memory.total", 0) != 0
            || lower(f_name) != "name")
          bad_line(line_no, line,
                   "header does not list index, memory.total, name");
        continue;
      }
    }
    gpu_info g;
    std::string idx{f_index};
    char* end = nullptr;
    errno = 0;
    auto v = std::strtol(idx.c_str(), &end, 10);
    if (idx.empty() || *end != '\0' || errno != 0 || v < 0 || v > 65535)
      bad_line(line_no, line, "bad device index '" + idx + "'");
    g.index = static_cast<int>(v);
    std::string mem{f_mem};
    // Some boards do not report their memory.
    if (lower(mem) == "[n/a]" || lower(mem) == "n/a")
      mem = "0";
    errno = 0;
    g.memory_mib = std::strtod(mem.c_str(), &end);
    auto unit = trim(std::string_view{end});
    if (mem.empty() || end == mem.c_str() || errno != 0 || g.memory_mib < 0
        || (!unit.empty() && lower(unit) != "mib"))
      bad_line(line_no, line, "bad memory '" + mem + "'");
    if (f_name.empty())
      bad_line(line_no, line, "empty name");
    g.name = std::string{f_name};
    for (auto& x : out)
      if (x.index == g.index)
        bad_line(line_no, line, "duplicate device index " + idx);
    out.push_back(std::move(g));
  }
  return out;
}

} // namespace alb
