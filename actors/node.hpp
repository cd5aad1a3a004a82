#pragma once

// Helpers of the cluster processes (coordinator, node, clients): what this
// machine offers, what a node registers of it, join tokens and
// HOST:PORT endpoints.

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "runtime/devices.hpp"
#include "runtime/model.hpp"

namespace alb {

/// A bad token file, endpoint or node description (one-line message).
class cluster_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// What a node process offers in all.
struct node_resources {
  /// Usable CPU cores.
  int cores = 1;
  /// Memory in GB.
  double memory_gb = 1;
  /// Accelerators by type and count, e.g. {"cuda": 2}.
  std::map<std::string, int> accelerators;
  /// Device indices behind `accelerators` by type (a type missing here
  /// has the indices 0 .. count-1), e.g. the indices nvidia-smi lists.
  device_map devices;
  /// Installed software and versions copied to every worker, e.g.
  /// {"os": "linux", "python": "3.11.2", "torch": "2.3"}.
  std::map<std::string, std::string> software;
  /// Labels copied to every worker.
  std::vector<std::string> tags;
  /// Host name reported with every worker.
  std::string hostname;
};

/// Detects this machine: cores (nproc), memory (MemAvailable, else
/// MemTotal, from /proc/meminfo), the host name and the basic software
/// (`detect_software`). GPUs are detected apart (`detect_cuda_devices`),
/// so a node told its accelerators never runs nvidia-smi.
node_resources detect_resources();

/// The GPUs `nvidia-smi --query-gpu=index,memory.total,name --format=csv`
/// lists (run as a child process through runtime/process, searched on
/// PATH). None when nvidia-smi is not installed; none and a `warning`
/// (if non-null) when it fails (exit status, no driver). Throws
/// cluster_error (one line naming the output line) when it prints
/// something that is not that CSV.
std::vector<gpu_info> detect_cuda_devices(std::string* warning);

/// Basic software of this machine: `os` (the kernel's name in lower case,
/// e.g. linux) and, when `python3` runs, `python` (X.Y.Z).
std::map<std::string, std::string> detect_software();

/// Parses "torch=2.3,cuda=12.1" (NAME=VERSION, or a bare NAME with an
/// empty version) into a map; throws cluster_error naming the bad entry.
std::map<std::string, std::string> parse_software(const std::string& spec);

/// What a node offering `r` registers: one worker named `<node>/w0` whose
/// `slots` tests at once (0 = its cores) draw on the node's whole memory,
/// cores and accelerators (device indices from `r.devices`), so any test
/// that fits the machine fits the node. Throws cluster_error for negative
/// `slots`.
worker_capabilities node_capabilities(const node_resources& r,
                                      const std::string& node, int slots = 0);

/// Parses "cuda:2,rocm:1" into counts; throws cluster_error.
std::map<std::string, int> parse_accelerators(const std::string& spec);

/// Reads a join token: the file's content without surrounding whitespace.
/// Throws cluster_error when the file is unreadable or empty. Warns through
/// `warning` (if non-null) when others may read the file.
std::string read_token_file(const std::string& path, std::string* warning);

/// Splits "HOST:PORT" (the host may be a bracketed IPv6 address); throws
/// cluster_error.
std::pair<std::string, uint16_t> parse_endpoint(const std::string& s);

} // namespace alb
