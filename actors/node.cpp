#include "actors/node.hpp"

#include <algorithm>
#include <cctype>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <thread>

#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/process.hpp"

namespace alb {

namespace {

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos)
    return {};
  auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// Runs a short helper program (searched on PATH) to its end, stdout
// captured, stderr discarded, for at most `seconds`.
run_result capture(std::vector<std::string> argv, double seconds) {
  spawn_options o;
  o.argv = std::move(argv);
  int devnull = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  o.stderr_fd = devnull;
  // Bounded: a GPU list is small; garbage beyond 1 MiB is garbage anyway.
  auto r = run_to_end(std::move(o), 1 << 20, seconds);
  if (devnull >= 0)
    ::close(devnull);
  return r;
}

std::string lower(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

} // namespace

node_resources detect_resources() {
  node_resources r;
  r.cores = std::max(1u, std::thread::hardware_concurrency());
  std::ifstream in{"/proc/meminfo"};
  std::string key;
  double kb = 0;
  std::string unit;
  double total = 0, avail = 0;
  while (in >> key >> kb >> unit) {
    if (key == "MemTotal:")
      total = kb;
    else if (key == "MemAvailable:")
      avail = kb;
  }
  auto mem = avail > 0 ? avail : total;
  if (mem > 0)
    r.memory_gb = mem / (1024.0 * 1024.0);
  r.software = detect_software();
  char host[256] = {0};
  if (::gethostname(host, sizeof(host) - 1) == 0)
    r.hostname = host;
  return r;
}

std::vector<gpu_info> detect_cuda_devices(std::string* warning) {
  auto c = capture(
    {"nvidia-smi", "--query-gpu=index,memory.total,name", "--format=csv"}, 10);
  // Not installed: a machine without NVIDIA GPUs, nothing to say.
  if (!c.error.empty())
    return {};
  if (c.timed_out || !WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0) {
    if (warning)
      *warning = c.timed_out ? "nvidia-smi did not answer within 10 s: no GPUs "
                               "detected (give --accelerators)"
                             : "nvidia-smi failed (wait status "
                                 + std::to_string(c.status)
                                 + "): no GPUs detected (give --accelerators)";
    return {};
  }
  try {
    return parse_nvidia_smi_csv(c.output);
  } catch (const device_error& e) {
    throw cluster_error{std::string{e.what()}
                        + "; give --accelerators to skip detection"};
  }
}

std::map<std::string, std::string> detect_software() {
  std::map<std::string, std::string> out;
  utsname u;
  if (::uname(&u) == 0)
    out["os"] = lower(u.sysname);
  auto c = capture(
    {"python3", "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"},
    10);
  if (c.error.empty() && !c.timed_out && c.status == 0) {
    auto v = c.output.substr(0, c.output.find_first_of("\r\n"));
    if (!v.empty() && v.find_first_not_of("0123456789.") == std::string::npos)
      out["python"] = v;
  }
  return out;
}

std::map<std::string, std::string> parse_software(const std::string& spec) {
  std::map<std::string, std::string> out;
  std::stringstream ss{spec};
  std::string part;
  while (std::getline(ss, part, ',')) {
    part = trim(part);
    if (part.empty())
      continue;
    auto eq = part.find('=');
    auto name = trim(part.substr(0, eq));
    auto version
      = eq == std::string::npos ? std::string{} : trim(part.substr(eq + 1));
    if (name.empty() || name.find_first_of(" \t<>!=") != std::string::npos
        || (eq != std::string::npos && version.empty())
        || version.find_first_of(" \t<>!=,") != std::string::npos)
      throw cluster_error{"--software: bad entry '" + part
                          + "' (expected NAME=VERSION, e.g. torch=2.3)"};
    out[name] = version;
  }
  return out;
}

worker_capabilities node_capabilities(const node_resources& r,
                                      const std::string& node, int slots) {
  if (slots < 0)
    throw cluster_error{"--slots must be at least 1"};
  worker_capabilities c;
  c.worker_id = node + "/w0";
  c.node = node;
  c.hostname = r.hostname;
  c.cpu_cores = std::max(1, r.cores);
  c.cpu_threads = c.cpu_cores;
  c.max_concurrent_tests = slots > 0 ? slots : c.cpu_cores;
  c.available_memory = r.memory_gb;
  c.hardware.cpu.cores = c.cpu_cores;
  c.hardware.memory.total_gb = c.available_memory;
  c.hardware.memory.available_gb = c.available_memory;
  c.supported_backends.push_back("cpu");
  for (auto& [name, count] : r.accelerators) {
    if (count <= 0)
      continue;
    c.available_accelerators[name] = count;
    // The node's own device indices (nvidia-smi's), else 0 .. count-1
    // (worker_devices).
    if (auto d = r.devices.find(name); d != r.devices.end()) {
      auto& mine = c.accelerator_devices[name];
      for (int k = 0; k < count; ++k)
        mine.push_back(k < static_cast<int>(d->second.size())
                         ? d->second[static_cast<size_t>(k)]
                         : k);
    }
    if (name == "cuda") {
      c.hardware.gpu.device_count = count;
      c.hardware.gpu.cuda_available = true;
      c.supported_backends.push_back("cuda");
    }
  }
  c.tags = r.tags;
  c.software_versions = r.software;
  return c;
}

std::map<std::string, int> parse_accelerators(const std::string& spec) {
  std::map<std::string, int> out;
  std::stringstream ss{spec};
  std::string part;
  while (std::getline(ss, part, ',')) {
    part = trim(part);
    if (part.empty())
      continue;
    auto colon = part.find(':');
    auto name = trim(part.substr(0, colon));
    int count = 1;
    if (colon != std::string::npos) {
      try {
        size_t used = 0;
        count = std::stoi(part.substr(colon + 1), &used);
        if (used != part.size() - colon - 1)
          throw std::invalid_argument{"trailing"};
      } catch (const std::exception&) {
        throw cluster_error{"--accelerators: bad count in '" + part
                            + "' (expected TYPE:COUNT)"};
      }
    }
    if (name.empty() || count < 0)
      throw cluster_error{"--accelerators: bad entry '" + part
                          + "' (expected TYPE:COUNT)"};
    out[name] += count;
  }
  return out;
}

std::string read_token_file(const std::string& path, std::string* warning) {
  std::ifstream in{path};
  if (!in)
    throw cluster_error{"cannot read token file '" + path + "'"};
  std::stringstream ss;
  ss << in.rdbuf();
  auto token = trim(ss.str());
  if (token.empty())
    throw cluster_error{"token file '" + path + "' is empty"};
  struct stat st;
  if (warning && ::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0)
    *warning
      = "token file '" + path + "' is readable by other users (chmod 600 it)";
  return token;
}

std::pair<std::string, uint16_t> parse_endpoint(const std::string& s) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == s.size())
    throw cluster_error{"bad address '" + s + "' (expected HOST:PORT)"};
  auto host = s.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  auto port_str = s.substr(colon + 1);
  long port = -1;
  try {
    size_t used = 0;
    port = std::stol(port_str, &used);
    if (used != port_str.size())
      port = -1;
  } catch (const std::exception&) {
    port = -1;
  }
  if (port < 1 || port > 65535)
    throw cluster_error{"bad port in '" + s + "' (expected 1-65535)"};
  return {host, static_cast<uint16_t>(port)};
}

} // namespace alb
