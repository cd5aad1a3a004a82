#include "actors/node.hpp"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include <sys/stat.h>
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

int count_cuda_devices() {
  // Through alb's one process class: a missing nvidia-smi is a spawn
  // error, not a shell message.
  spawn_options o;
  o.argv = {"nvidia-smi", "-L"};
  auto r = run_to_end(std::move(o));
  if (!r.error.empty() || r.exit_code() != 0)
    return 0;
  int n = 0;
  std::istringstream lines{r.output};
  for (std::string line; std::getline(lines, line);)
    if (line.rfind("GPU ", 0) == 0)
      ++n;
  return n;
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
  if (auto n = count_cuda_devices(); n > 0)
    r.accelerators["cuda"] = n;
  char host[256] = {0};
  if (::gethostname(host, sizeof(host) - 1) == 0)
    r.hostname = host;
  return r;
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
        if (name == "cuda") {
          c.hardware.gpu.device_count = share;
          c.hardware.gpu.cuda_available = true;
          c.supported_backends.push_back("cuda");
        }
      }
    }
    c.tags = r.tags;
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
