#pragma once

// What `alb status`, the client API and the status page show: the nodes and
// their workers, the queue by priority with why each waiting test waits,
// the running tests and the totals. Built from a `cluster_state` by a plain
// function (no CAF, no clocks: the caller passes the times in), filtered per
// client and turned into JSON here, so the same view reaches a terminal, a
// program and a browser.
//
// Why a test waits is decided in one place, `unmet_requirements()`: each
// requirement a worker does not meet is one entry there (memory,
// accelerators, a free slot, and backend, software versions and tags
// through runtime/constraints' `unmet_constraints`, the check placement
// uses), against the worker's totals (could it ever hold the test?) or
// against what is free now. A new kind of requirement adds one block to
// that function and every reason follows.

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace alb {

class cluster_state;
struct test_record;

/// Why a waiting test waits.
enum class wait_kind : uint8_t {
  /// No registered worker could hold it even when idle (or none is
  /// registered): it waits for a node that can, up to its wait limit.
  unplaceable,
  /// Workers that could hold it exist, but none has room now.
  busy,
  /// Another test with its concurrency key is running.
  concurrency_key,
  /// The only workers that could hold it are where its last attempt
  /// failed (a retry goes elsewhere).
  excluded,
  /// It fits a worker now and is placed on the next pass.
  dispatch,
};

/// Returns the lower-case name of `x` ("unplaceable", "busy", ...).
const char* to_string(wait_kind x);

/// Parses a name of `to_string(wait_kind)`; returns false if unknown.
bool from_string(std::string_view name, wait_kind& x);

/// One requirement a worker does not meet.
struct unmet_requirement {
  /// What the test needs, e.g. "memory >= 64 GB", "backend 'cuda'".
  std::string need;
  /// What the worker has, e.g. "16 GB", "no such backend".
  std::string have;
};

/// Requirements of `t` the worker in `slot` does not meet: with `now`,
/// against what it has free now (memory, accelerators, a free place in its
/// slots and local queue); otherwise against its totals (what it could
/// hold when idle). Empty = it meets them all. The one place that says why
/// a test cannot go to a worker.
std::vector<unmet_requirement> unmet_requirements(const cluster_state& cs,
                                                  uint32_t slot,
                                                  const test_record& t,
                                                  bool now);

/// Why a test waits, in words an operator can act on.
struct wait_reason {
  /// The kind.
  wait_kind kind = wait_kind::dispatch;
  /// One line, e.g. "no node has memory >= 64 GB".
  std::string text;
};

/// Why the pending test `t` waits.
wait_reason why_waiting(const cluster_state& cs, const test_record& t);

/// One worker of the cluster.
struct worker_row {
  /// Worker name.
  std::string worker_id;
  /// Node (process) it belongs to ("" = not known to the caller).
  std::string node;
  /// Its slot in the scheduler.
  uint32_t slot = 0;
  /// Tests it may run at once.
  int slots = 1;
  /// Tests it runs now.
  int running = 0;
  /// Tests it holds: running plus its local queue.
  int held = 0;
  /// Memory for tests in GB.
  double memory_gb = 0;
  /// Memory not reserved by its tests in GB.
  double memory_free_gb = 0;
  /// Accelerators by type: total.
  std::map<std::string, int> accelerators;
  /// Accelerators by type: not reserved.
  std::map<std::string, int> accelerators_free;
  /// CPU cores it offers.
  int cpu_cores = 0;
  /// Backends it offers.
  std::vector<std::string> backends;
  /// Software it has (name -> version).
  std::map<std::string, std::string> software;
  /// Unix time the scheduler last heard from it (< 0 = never).
  double last_seen = -1;
};

/// One node: the workers of one `alb node` process.
struct node_row {
  /// Node name.
  std::string name;
  /// Where it connects from ("host:port").
  std::string address;
  /// Its workers.
  int workers = 0;
  /// Slots of all its workers.
  int slots = 0;
  /// Slots running a test now.
  int busy = 0;
  /// Tests it holds (running and queued locally).
  int held = 0;
  /// Memory for tests in GB.
  double memory_gb = 0;
  /// Memory not reserved in GB.
  double memory_free_gb = 0;
  /// Accelerators by type: total.
  std::map<std::string, int> accelerators;
  /// Accelerators by type: not reserved.
  std::map<std::string, int> accelerators_free;
  /// CPU cores.
  int cpu_cores = 0;
  /// Unix time the coordinator last heard from one of its workers
  /// (< 0 = never).
  double last_seen = -1;
};

/// A test that waits for a worker.
struct waiting_row {
  /// Test name.
  std::string test_id;
  /// 1 (highest) to 5.
  int priority = 3;
  /// "queued", "parked" (fits nowhere now) or "key" (waits for its
  /// concurrency key).
  std::string state;
  /// Why it waits.
  wait_reason reason;
  /// Memory it needs in GB.
  double memory_gb = 0;
  /// Unix time it was submitted.
  double submitted = 0;
  /// Seconds since then.
  double waited_seconds = 0;
  /// Placements so far (a requeued or retried test waits again).
  int attempts = 0;
};

/// A test placed on a worker.
struct running_row {
  /// Test name.
  std::string test_id;
  /// Worker holding it.
  std::string worker_id;
  /// Node of that worker ("" = not known).
  std::string node;
  /// "running", or "assigned" (in the worker's local queue, not started).
  /// Workers report a test when it ends: a worker's `slots` earliest
  /// placements count as running (it starts its queue first in, first
  /// out), unless it reported the start itself.
  std::string state;
  /// 1 (highest) to 5.
  int priority = 3;
  /// Unix time it started, when its worker reported that; else when it
  /// was placed.
  double since = 0;
  /// Seconds since then.
  double seconds = 0;
  /// Placements so far.
  int attempts = 0;
};

/// A test that ended unsuccessfully (kept by the coordinator, newest last).
struct failure_row {
  /// Test name.
  std::string test_id;
  /// "failed" or "cancelled".
  std::string status;
  /// Worker of its last attempt.
  std::string worker_id;
  /// Why it failed.
  std::string error;
  /// Exit status of its last attempt.
  int exit_code = 0;
  /// Whether its timeout stopped it.
  bool timed_out = false;
  /// Tail of its output.
  std::string output_tail;
  /// Unix time it ended.
  double ended = 0;
};

/// Counts over the whole cluster (including tests not listed).
struct status_totals {
  /// Nodes connected.
  uint64_t nodes = 0;
  /// Workers registered.
  uint64_t workers = 0;
  /// Slots of all workers.
  uint64_t slots = 0;
  /// Slots running a test.
  uint64_t busy_slots = 0;
  /// Tests waiting for a worker.
  uint64_t waiting = 0;
  /// ... of which no registered worker could ever hold.
  uint64_t unplaceable = 0;
  /// ... of which wait for their concurrency key.
  uint64_t key_waiting = 0;
  /// Tests running.
  uint64_t running = 0;
  /// Tests placed, not started yet.
  uint64_t assigned = 0;
  /// Tests submitted since the coordinator started.
  uint64_t submitted = 0;
  /// Tests ended since then.
  uint64_t ended = 0;
  /// ... of which completed successfully.
  uint64_t completed = 0;
  /// Waiting tests not listed (another client's, or past the row limit).
  uint64_t hidden_waiting = 0;
  /// Placed tests not listed.
  uint64_t hidden_running = 0;
};

/// The whole view.
struct cluster_status {
  /// Unix time of the view.
  double time = 0;
  /// Seconds the scheduler has been up.
  double uptime_seconds = 0;
  /// "all" (every test) or "own" (only the asking client's tests listed).
  std::string view = "all";
  /// Nodes by name.
  std::vector<node_row> nodes;
  /// Workers by node, then name.
  std::vector<worker_row> workers;
  /// Waiting tests by priority, then submission.
  std::vector<waiting_row> waiting;
  /// Placed tests, longest first.
  std::vector<running_row> running;
  /// Recent failures, newest last.
  std::vector<failure_row> recent_failures;
  /// Counts.
  status_totals totals;
};

/// Builds the view of `cs` at `now` (the core's clock). `wall_at_zero` is
/// the Unix time of the core's time 0, so rows carry wall-clock times;
/// `last_seen[slot]` is when each worker was last heard from on the core's
/// clock (missing or < 0 = never). At most `max_rows` waiting and as many
/// placed tests are listed (the most urgent); totals count them all. Nodes
/// are left empty: `group_nodes` makes them once workers have nodes.
cluster_status status_of(const cluster_state& cs, double now,
                         double wall_at_zero,
                         const std::vector<double>& last_seen,
                         size_t max_rows = 1000);

/// Fills `s.nodes` from its workers (their `node` set; a worker without one
/// is its own node) with addresses from `address_of` (may be empty).
void group_nodes(
  cluster_status& s,
  const std::function<std::string(const std::string&)>& address_of);

/// Keeps only the tests `visible` admits in the listed waiting and running
/// rows; the others only count in the totals (hidden_*). Sets the view to
/// "own". Recent failures are left to the caller (the tests have ended,
/// so only it knows whose they were).
void keep_visible(cluster_status& s,
                  const std::function<bool(const std::string&)>& visible);

/// JSON of a status view (the `alb status --json` and `/api/status` body).
void to_json(nlohmann::json& j, const cluster_status& s);

/// Reads a status view from its JSON; throws nlohmann::json::exception on
/// a malformed document.
void from_json(const nlohmann::json& j, cluster_status& s);

} // namespace alb
