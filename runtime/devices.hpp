#pragma once

// Accelerator devices of one node: which device indices a running test
// holds (so two running tests never share a GPU), the environment that
// pins a test to exactly those (`CUDA_VISIBLE_DEVICES`, ...), and the
// parser of `nvidia-smi --query-gpu=index,memory.total,name --format=csv`.
// No CAF, no clocks, no I/O: the worker's executor calls it.

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace alb {

/// Device indices by accelerator type, e.g. {"cuda": {0, 1}}.
using device_map = std::map<std::string, std::vector<int>>;

/// Hands out specific device indices to runs and takes them back. A run
/// holds its devices from `acquire` until `release`; an index is held by
/// at most one run at a time.
class device_allocator {
public:
  /// No devices.
  device_allocator() = default;

  /// Manages `devices` (indices per type; duplicates are dropped).
  explicit device_allocator(const device_map& devices);

  /// Reserves, for run `owner`, `need[type]` devices of each type (the
  /// lowest free indices) and returns them; nothing (and nothing reserved)
  /// when some type has too few free devices or `owner` already holds
  /// some. A type with count 0 is ignored; a type this node does not
  /// manage with a count above 0 cannot be met.
  std::optional<device_map> acquire(uint64_t owner,
                                    const std::map<std::string, int>& need);

  /// Gives back everything run `owner` holds (nothing when it holds none).
  void release(uint64_t owner);

  /// The devices run `owner` holds (empty when none).
  device_map held_by(uint64_t owner) const;

  /// Free devices of `type`.
  size_t free_count(const std::string& type) const;

  /// Every managed device, by type.
  const device_map& devices() const { return all_; }

  /// Runs holding devices now.
  size_t holders() const { return held_.size(); }

private:
  device_map all_;
  /// Type -> index -> whether free.
  std::map<std::string, std::map<int, bool>> free_;
  std::unordered_map<uint64_t, device_map> held_;
};

/// The environment that pins a test to `held` on a node managing
/// `managed` types: for each managed type, its visible-devices variables
/// set to the held indices, comma-separated, or to "" when the test holds
/// none of that type (it then sees no device of it). `cuda` sets
/// `CUDA_VISIBLE_DEVICES`; `rocm` sets `HIP_VISIBLE_DEVICES` and
/// `ROCR_VISIBLE_DEVICES`; every type also sets `ALB_<TYPE>_DEVICES`
/// (upper case, non-alphanumerics as `_`). Types the node does not manage
/// are left alone.
std::map<std::string, std::string>
visible_devices_env(const device_map& held, const device_map& managed);

/// One GPU as `nvidia-smi --query-gpu=index,memory.total,name
/// --format=csv` lists it.
struct gpu_info {
  /// Device index (what CUDA_VISIBLE_DEVICES names).
  int index = 0;
  /// Memory in MiB.
  double memory_mib = 0;
  /// Product name.
  std::string name;
};

/// Output of nvidia-smi that is not the expected CSV (one line naming the
/// line and what is wrong).
class device_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// Parses the CSV of `nvidia-smi --query-gpu=index,memory.total,name
/// --format=csv`: a header line (`index, memory.total [MiB], name`), then
/// one `INDEX, MEMORY MiB, NAME` line per GPU (blank lines ignored; the
/// name may hold commas). Also accepts `--format=csv,noheader[,nounits]`
/// output. Throws device_error on anything else (a bad or duplicate
/// index, a missing field, a memory that is not a number).
std::vector<gpu_info> parse_nvidia_smi_csv(std::string_view text);

} // namespace alb
