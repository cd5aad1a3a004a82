#pragma once

// Helpers of the cluster processes (coordinator, node, clients): what this
// machine offers, how a node splits it over its workers, join tokens and
// HOST:PORT endpoints.

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

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
  /// Labels copied to every worker.
  std::vector<std::string> tags;
  /// Host name reported with every worker.
  std::string hostname;
};

/// Detects this machine: cores (nproc), memory (MemAvailable, else
/// MemTotal, from /proc/meminfo), CUDA devices (`nvidia-smi -L`, when on
/// PATH) and the host name.
node_resources detect_resources();

/// Splits `r` over `workers` workers named `<node>/w<i>`: cores and
/// accelerators by whole units (the first workers get the remainder),
/// memory evenly; every worker runs at most `slots` tests at once (0 = its
/// cores). With one worker (the default) the node's whole memory, cores
/// and accelerators are one pool its slots draw from, so any test that
/// fits the machine fits the node.
std::vector<worker_capabilities> split_resources(const node_resources& r,
                                                 int workers,
                                                 const std::string& node,
                                                 int slots = 0);

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
