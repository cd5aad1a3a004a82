#include "actors/node.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <fcntl.h>
#include <fstream>
#include <poll.h>
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

/// What a short-lived helper program printed and how it ended.
struct captured {
  /// Why it did not start ("" = it ran).
  std::string error;
  /// Its stdout.
  std::string out;
  /// Its wait status (-1 = stopped after `seconds`).
  int status = -1;
};

// Runs `argv` (searched on PATH) with stdout captured and stderr discarded,
// for at most `seconds`.
captured capture(std::vector<std::string> argv, double seconds) {
  captured c;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    c.error = "pipe failed";
    return c;
  }
  int devnull = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  spawn_options o;
  o.argv = std::move(argv);
  o.stdout_fd = fds[1];
  o.stderr_fd = devnull;
  auto p = process::spawn(o, c.error);
  ::close(fds[1]);
  if (devnull >= 0)
    ::close(devnull);
  if (!p.running()) {
    ::close(fds[0]);
    return c;
  }
  auto deadline = std::chrono::steady_clock::now()
                  + std::chrono::duration_cast<std::chrono::nanoseconds>(
                    std::chrono::duration<double>(seconds));
  char buf[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                  deadline - std::chrono::steady_clock::now())
                  .count();
    if (left <= 0) {
      // A hung driver must not hang the node's start.
      p.stop();
      p.wait();
      ::close(fds[0]);
      return c;
    }
    pollfd pfd{fds[0], POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(left)) < 0 && errno != EINTR)
      break;
    if (pfd.revents == 0)
      continue;
    auto n = ::read(fds[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    // Bounded: a GPU list is small; garbage beyond 1 MiB is garbage anyway.
    if (c.out.size() < (1u << 20))
      c.out.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  c.status = p.wait();
  return c;
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
  if (c.status == -1 || !WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0) {
    if (warning)
      *warning = c.status == -1
                   ? "nvidia-smi did not answer within 10 s: no GPUs "
                     "detected (give --accelerators)"
                   : "nvidia-smi failed (wait status "
                       + std::to_string(c.status)
                       + "): no GPUs detected (give --accelerators)";
    return {};
  }
  try {
    return parse_nvidia_smi_csv(c.out);
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
  if (c.error.empty() && c.status == 0) {
    auto v = c.out.substr(0, c.out.find_first_of("\r\n"));
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

std::vector<worker_capabilities> split_resources(const node_resources& r,
                                                 int workers,
                                                 const std::string& node,
                                                 int slots) {
  if (workers < 1)
    throw cluster_error{"--workers must be at least 1"};
  if (slots < 0)
    throw cluster_error{"--slots must be at least 1"};
  std::vector<worker_capabilities> out;
  for (int i = 0; i < workers; ++i) {
    worker_capabilities c;
    c.worker_id = node + "/w" + std::to_string(i);
    c.hostname = r.hostname;
    c.cpu_cores = std::max(1, r.cores / workers + (i < r.cores % workers));
    c.cpu_threads = c.cpu_cores;
    c.max_concurrent_tests = slots > 0 ? slots : c.cpu_cores;
    c.available_memory = r.memory_gb / workers;
    c.hardware.cpu.cores = c.cpu_cores;
    c.hardware.memory.total_gb = c.available_memory;
    c.hardware.memory.available_gb = c.available_memory;
    c.supported_backends.push_back("cpu");
    for (auto& [name, count] : r.accelerators) {
      int share = count / workers + (i < count % workers);
      if (share > 0) {
        c.available_accelerators[name] = share;
        // This worker's own devices: the ones after those of the workers
        // before it, so no two workers hand out the same one.
        int first = i * (count / workers) + std::min(i, count % workers);
        auto d = r.devices.find(name);
        auto& mine = c.accelerator_devices[name];
        for (int k = first; k < first + share; ++k)
          mine.push_back(d != r.devices.end()
                             && k < static_cast<int>(d->second.size())
                           ? d->second[static_cast<size_t>(k)]
                           : k);
        if (name == "cuda") {
          c.hardware.gpu.device_count = share;
          c.hardware.gpu.cuda_available = true;
          c.supported_backends.push_back("cuda");
        }
      }
    }
    c.tags = r.tags;
    c.software_versions = r.software;
    out.push_back(std::move(c));
  }
  return out;
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
