#pragma once

// Everything that crosses an actor boundary, in one place: message structs
// with their inspectors, the atoms, the typed actor interfaces and the single
// type-ID block. Registering `caf::id_block::alb` on both sides of a link is
// all a process needs to talk to any other alb process over CAF's middleman.

#include <cstdint>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include <caf/actor.hpp>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/sec.hpp>
#include <caf/type_id.hpp>
#include <caf/typed_actor.hpp>

#include "actors/outcome_codec.hpp"
#include "runtime/cluster_types.hpp"
#include "runtime/model.hpp"

namespace alb {

/// One placement sent to a worker.
struct work_item {
  /// Record index of the test in the scheduler.
  uint32_t ref = 0;
  /// Generation of the placement (echoed back in the report).
  uint32_t gen = 0;
  /// Test name.
  std::string test_id;
  /// Expected execution time in seconds (the simulated mean).
  double expected_duration = 0;
  /// Execution time limit in seconds (0 = none).
  double timeout = 0;
  /// Priority 1-5.
  int32_t priority = 3;
  /// Command line of a real test (empty = simulated).
  std::vector<std::string> command;
  /// Environment additions for a real test.
  std::map<std::string, std::string> env;
  /// Working directory for a real test ("" = the worker's).
  std::string cwd;
  /// Accelerators it needs by type and count: a real worker reserves that
  /// many specific devices for it and sets CUDA_VISIBLE_DEVICES (etc.).
  std::map<std::string, int> accelerators;
  /// Cap on the test's stdout and stderr together, bytes (0 = the node's
  /// default).
  uint64_t max_output = 0;
};

/// Placements for one worker, sent as one message.
struct work_batch {
  /// The placements.
  std::vector<work_item> items;
  /// The slot they are for (a pool hosting many workers finds the one; a
  /// worker of its own ignores it).
  uint32_t slot = 0;
};

/// A worker's report on one placement.
struct work_report {
  /// Record index echoed from the work item.
  uint32_t ref = 0;
  /// Placement generation echoed from the work item.
  uint32_t gen = 0;
  /// Whether the attempt passed.
  bool success = true;
  /// Whether it was stopped by its timeout.
  bool timed_out = false;
  /// Execution time in seconds.
  double exec_seconds = 0;
  /// Time spent in the worker's local queue before starting, seconds.
  double queued_seconds = 0;
  /// Exit status of a real command.
  int32_t exit_code = 0;
  /// Why it failed.
  std::string error;
  /// Tail of the command's stdout.
  std::string output_tail;
  /// Signal that ended the command (0 = it exited).
  int32_t signal = 0;
  /// Tail of the command's stderr.
  std::string stderr_tail;
};

/// One placement, named by its record index and generation.
struct placement_ref {
  /// Record index echoed from the work item.
  uint32_t ref = 0;
  /// Placement generation echoed from the work item.
  uint32_t gen = 0;
};

/// Reports of one worker, sent as one message; doubles as the worker's
/// request for more work.
struct report_batch {
  /// The worker's slot in the scheduler.
  uint32_t slot = 0;
  /// The reports.
  std::vector<work_report> items;
  /// Placements with a timeout that started since the last report (workers
  /// of a coordinator only): the coordinator counts the deadline of its
  /// backstop (timeout + grace) from here.
  std::vector<placement_ref> started;
  /// Load on the worker beyond its own tests, 0..1, when it changed since
  /// its last report (< 0 = unchanged). Load rides on reports: an idle
  /// worker sends nothing and arms no timer.
  float external_load = -1;
};

/// Placements for several workers of one node process, sent as one
/// message: per placement batch, the id of the worker actor (on the node)
/// it is for. One message per node per scheduler turn instead of one per
/// worker is what keeps the wire from costing more than the scheduling.
struct node_work {
  /// Actor ids (on the node) of the workers, one per batch.
  std::vector<uint64_t> workers;
  /// Their placements.
  std::vector<work_batch> batches;
};

/// Reports of several workers of one node process, sent as one message
/// (the node's uplink gathers what its workers report in one turn).
struct report_bundle {
  /// One report batch per worker that reported.
  std::vector<report_batch> batches;
};

/// Tests submitted together.
struct test_batch {
  /// The tests.
  std::vector<test_requirements> tests;
  /// How to run each (empty = every test simulated; else one per test,
  /// in the same order).
  std::vector<test_run> runs;
};

/// Tests one shard of a scheduler passes to another in this process: a
/// share of a submission (from the shard that takes submissions) or queued
/// tests an idle shard asked for (`steal_atom`).
struct shard_handover {
  /// Whether the tests were stolen (else a share of a submission).
  bool stolen = false;
  /// The tests.
  std::vector<test_requirements> tests;
  /// How to run each (empty = every test simulated; else one per test).
  std::vector<test_run> runs;
  /// When each was submitted (the shards share one clock).
  std::vector<double> submitted_at;
};

/// A worker's periodic load report.
struct load_report {
  /// The worker's slot in the scheduler.
  uint32_t slot = 0;
  /// Its load.
  worker_load load;
};

/// One time-series sample from the scheduler to the recorder.
struct series_sample {
  /// Seconds since the run started.
  double now = 0;
  /// Tests completed since the previous sample.
  uint64_t completed = 0;
  /// Tests started for the first time since the previous sample.
  uint64_t started = 0;
  /// Sum of their waits, seconds.
  double latency_sum = 0;
  /// Tests waiting (queued and parked).
  double queue_depth = 0;
  /// Workers registered.
  double workers = 0;
  /// The scheduler shard that sent it (0 when the scheduler is not split):
  /// the gauges of a run's shards add up.
  uint32_t source = 0;
};

// -- inspectors
// ----------------------------------------------------------------

/// Serializes cpu_specs.
template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, cpu_specs& x) {
  return f(caf::meta::type_name("cpu_specs"), x.cores, x.frequency_mhz);
}

/// Serializes memory_specs.
template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, memory_specs& x) {
  return f(caf::meta::type_name("memory_specs"), x.total_gb, x.available_gb);
}

/// Serializes gpu_specs.
template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, gpu_specs& x) {
  return f(caf::meta::type_name("gpu_specs"), x.device_count, x.cuda_available);
}

/// Serializes hardware_specs.
template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, hardware_specs& x) {
  return f(caf::meta::type_name("hardware_specs"), x.cpu, x.memory, x.gpu);
}

/// Serializes worker_capabilities.
template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, worker_capabilities& x) {
  return f(caf::meta::type_name("worker_capabilities"), x.worker_id, x.hostname,
           x.hardware, x.software_versions, x.supported_backends,
           x.available_accelerators, x.available_memory, x.available_disk,
           x.cpu_cores, x.cpu_threads, x.network_bandwidth, x.storage_capacity,
           x.max_concurrent_tests, x.speed, x.tags, x.accelerator_devices,
           x.node);
}

/// Serializes worker_load.
template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, worker_load& x) {
  return f(caf::meta::type_name("worker_load"), x.worker_id, x.cpu_utilization,
           x.memory_utilization, x.gpu_utilization, x.io_utilization,
           x.network_utilization, x.active_tests, x.queued_tests, x.queue_depth,
           x.reserved_memory, x.reserved_accelerators, x.warming_up,
           x.cooling_down, x.performance_level);
}

/// Serializes test_requirements.
template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, test_requirements& x) {
  return f(caf::meta::type_name("test_requirements"), x.test_id, x.model_id,
           x.model_family, x.test_type, x.minimum_memory, x.required_backend,
           x.preferred_backend, x.required_accelerators, x.required_software,
           x.expected_duration, x.priority, x.timeout, x.retries,
           x.concurrency_key, x.wait_limit, x.required_tags, x.speculate);
}

/// Serializes work_item.
template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, work_item& x) {
  return f(caf::meta::type_name("work_item"), x.ref, x.gen, x.test_id,
           x.expected_duration, x.timeout, x.priority, x.command, x.env, x.cwd,
           x.accelerators, x.max_output);
}

/// Serializes work_batch.
template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, work_batch& x) {
  return f(caf::meta::type_name("work_batch"), x.items, x.slot);
}

/// Serializes work_report.
template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, work_report& x) {
  return f(caf::meta::type_name("work_report"), x.ref, x.gen, x.success,
           x.timed_out, x.exec_seconds, x.queued_seconds, x.exit_code, x.error,
           x.output_tail, x.signal, x.stderr_tail);
}

/// Serializes placement_ref.
template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, placement_ref& x) {
  return f(caf::meta::type_name("placement_ref"), x.ref, x.gen);
}

/// Serializes report_batch.
template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, report_batch& x) {
  return f(caf::meta::type_name("report_batch"), x.slot, x.items, x.started,
           x.external_load);
}

/// Serializes test_run.
template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, test_run& x) {
  return f(caf::meta::type_name("test_run"), x.command, x.env, x.cwd,
           x.max_output);
}

/// Serializes test_batch.
template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, test_batch& x) {
  return f(caf::meta::type_name("test_batch"), x.tests, x.runs);
}

/// Serializes shard_handover.
template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, shard_handover& x) {
  return f(caf::meta::type_name("shard_handover"), x.stolen, x.tests, x.runs,
           x.submitted_at);
}

/// Serializes load_report.
template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, load_report& x) {
  return f(caf::meta::type_name("load_report"), x.slot, x.load);
}

/// Serializes series_sample.
template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, series_sample& x) {
  return f(caf::meta::type_name("series_sample"), x.now, x.completed, x.started,
           x.latency_sum, x.queue_depth, x.workers, x.source);
}

// -- rebalancing
// ---------------------------------------------------------------

/// One placement the scheduler asks a worker to give back.
struct revoke_item {
  /// Record index of the test.
  uint32_t ref = 0;
  /// Placement generation.
  uint32_t gen = 0;
};

/// Placements one worker should give back if it has not started them
/// (rebalancing), sent as one message.
struct revoke_batch {
  /// The placements.
  std::vector<revoke_item> items;
  /// The slot they are asked of (see `work_batch::slot`).
  uint32_t slot = 0;
};

/// A worker's answer on one revoked placement.
struct revoke_answer {
  /// Record index echoed from the revoke.
  uint32_t ref = 0;
  /// Placement generation echoed from the revoke.
  uint32_t gen = 0;
  /// Whether the worker removed it from its local queue unstarted; false
  /// when it had started (or finished) it, in which case it keeps it.
  bool given_back = false;
};

/// A worker's answers to one revoke batch, sent as one message.
struct revoke_reply {
  /// The worker's slot in the scheduler.
  uint32_t slot = 0;
  /// The answers.
  std::vector<revoke_answer> items;
};

/// Serializes revoke_item.
template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, revoke_item& x) {
  return f(caf::meta::type_name("revoke_item"), x.ref, x.gen);
}

/// Serializes revoke_batch.
template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, revoke_batch& x) {
  return f(caf::meta::type_name("revoke_batch"), x.items, x.slot);
}

/// Serializes revoke_answer.
template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, revoke_answer& x) {
  return f(caf::meta::type_name("revoke_answer"), x.ref, x.gen, x.given_back);
}

/// Serializes revoke_reply.
template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, revoke_reply& x) {
  return f(caf::meta::type_name("revoke_reply"), x.slot, x.items);
}

// -- atoms
// ---------------------------------------------------------------------

/// A worker asks to join.
using join_atom = caf::atom_constant<caf::atom("join")>;
/// A worker leaves cleanly (or is told to).
using leave_atom = caf::atom_constant<caf::atom("leave")>;
/// Periodic timer.
using tick_atom = caf::atom_constant<caf::atom("tick")>;
/// A simulated test finished (worker-internal timer).
using finish_atom = caf::atom_constant<caf::atom("finish")>;
/// The submitter has submitted everything it will.
using end_atom = caf::atom_constant<caf::atom("end")>;
/// Ask for statistics.
using stats_atom = caf::atom_constant<caf::atom("stats")>;
/// Withdraw a test or a placement.
using cancel_atom = caf::atom_constant<caf::atom("cancel")>;
/// Scripted cluster change (churn actor timer).
using churn_atom = caf::atom_constant<caf::atom("churn")>;
/// Submission timer.
using submit_atom = caf::atom_constant<caf::atom("submit")>;
/// A worker says it answers revokes (rebalancing may take its queued tests).
using revoke_atom = caf::atom_constant<caf::atom("revoke")>;
/// A client asks the coordinator for a session.
using hello_atom = caf::atom_constant<caf::atom("hello")>;
/// A client asks for past runs and their outcomes (the journal).
using results_atom = caf::atom_constant<caf::atom("results")>;
/// Ask for the cluster's status view (runtime/cluster_status.hpp) as JSON.
using status_atom = caf::atom_constant<caf::atom("status")>;
/// A node's uplink says it is alive (a request on its node session; the
/// reply, the coordinator's side of the exchange, is the interval to the
/// next one).
using heartbeat_atom = caf::atom_constant<caf::atom("heartbeat")>;
/// A client asks its session for the coordinator's limits (the largest
/// submission it accepts, bytes serialized).
using limits_atom = caf::atom_constant<caf::atom("limits")>;
/// A piece of a test's log (client -> session -> core -> node's uplink),
/// or where a test is placed (core -> scheduler).
using log_atom = caf::atom_constant<caf::atom("log")>;
/// Atom: a shard of the scheduler asks another for queued tests.
using steal_atom = caf::atom_constant<caf::atom("steal")>;

// -- interfaces
// ----------------------------------------------------------------

/// A worker: runs placements, reports back.
using worker_actor
  = caf::typed_actor<caf::reacts_to<work_batch>,
                     // Withdraw placement (ref, gen) if not finished.
                     caf::reacts_to<cancel_atom, uint32_t, uint32_t>,
                     // Internal: simulated execution with local sequence number
                     // ended.
                     caf::reacts_to<finish_atom, uint64_t>,
                     // Nothing: workers keep no periodic timer (their load
                     // rides on reports); kept so every implementer and
                     // peer keeps the interface's shape.
                     caf::reacts_to<tick_atom>,
                     // Leave the cluster cleanly.
                     caf::reacts_to<leave_atom>,
                     // How many placements it holds now, running or
                     // queued (fault injection picks busy victims).
                     caf::replies_to<status_atom>::with<uint32_t>>;

/// A worker that also gives back queued placements on request, so
/// rebalancing can move them. Workers that do not (external workers of the
/// embedding API, real workers) keep the plain interface and are never asked.
using revocable_worker_actor
  = worker_actor::extend<caf::reacts_to<revoke_batch>>;

/// The scheduler: the load balancer itself.
using scheduler_actor = caf::typed_actor<
  caf::reacts_to<test_batch>,
  caf::replies_to<join_atom, worker_capabilities, worker_actor>::with<uint32_t>,
  caf::reacts_to<report_batch>,
  // Reports of several workers of one node (its uplink).
  caf::reacts_to<report_bundle>, caf::reacts_to<load_report>,
  caf::reacts_to<leave_atom, uint32_t>, caf::reacts_to<tick_atom>,
  // The submitters have submitted this many tests in all.
  caf::reacts_to<end_atom, uint64_t>,
  // Current metrics as JSON.
  caf::replies_to<stats_atom>::with<std::string>,
  caf::reacts_to<cancel_atom, std::string>,
  // Withdraws these tests; replies the ids it found open (each now ends
  // once as cancelled).
  caf::replies_to<cancel_atom,
                  std::vector<std::string>>::with<std::vector<std::string>>,
  // A worker's answers to revokes (rebalancing).
  caf::reacts_to<revoke_reply>,
  // The worker in this slot answers revokes.
  caf::reacts_to<revoke_atom, uint32_t>,
  // The status view (at most this many waiting and placed tests listed)
  // as JSON.
  caf::replies_to<status_atom, uint64_t>::with<std::string>,
  // The slot of the worker the test is placed on (uint32_t(-1) = it is
  // not placed, or not open).
  caf::replies_to<log_atom, std::string>::with<uint32_t>>;

/// One shard of a scheduler split over threads (simulated runs only; never
/// published): the scheduler's interface plus what its fellow shards and
/// the run send it.
using shard_actor = scheduler_actor::extend<
  // An idle shard (by its index) asks for up to this many queued tests.
  caf::reacts_to<steal_atom, uint32_t, uint64_t>,
  // Tests from another shard.
  caf::reacts_to<shard_handover>,
  // Every test of the run settled: report the part and stop.
  caf::reacts_to<finish_atom>>;

/// The recorder: turns samples into time series.
using recorder_actor
  = caf::typed_actor<caf::reacts_to<series_sample>,
                     // Final metrics JSON from the scheduler: completes the
                     // run's result.
                     caf::reacts_to<end_atom, std::string>>;

// -- cluster (coordinator, nodes, clients) ------------------------------------

/// Tests a client submits to its session in one message (the session
/// was opened with the token, so the submission carries none).
struct cluster_submission {
  /// The tests.
  std::vector<cluster_test> tests;
  /// The run they belong to (chosen by the client; "" = none).
  std::string run_id;
  /// What the run is named after (the test file), for `alb results`.
  std::string label;
  /// Run them again even where the journal holds an outcome no client
  /// collected (`alb submit --rerun-failed`).
  bool rerun = false;
};

/// A client's cancel: the named tests, or all it submitted.
struct cancel_request {
  /// Test ids.
  std::vector<std::string> ids;
  /// Every open test of this client (its key), `ids` ignored.
  bool all_mine = false;
};

/// A client's request for a session: submitted commands run on the nodes,
/// so a client must prove it belongs just like a node.
struct client_hello {
  /// The shared join token.
  std::string token;
  /// Where the session sends the outcomes of the client's tests.
  caf::actor outcomes;
  /// The client's own secret key: the sessions opened with the same key
  /// (another `alb cancel` of the same user) own the same tests. "" = the
  /// session owns only what it submits itself.
  std::string owner_key;
};

/// The node process's uplink: stands between its workers and a
/// coordinator so placements and reports cross the wire once per turn per
/// node, not once per worker.
using node_uplink_actor = caf::typed_actor<
  // From the coordinator: placements for several local workers.
  caf::reacts_to<node_work>,
  // From the coordinator: withdraw placement (ref, gen) of worker id.
  caf::reacts_to<cancel_atom, uint64_t, uint32_t, uint32_t>,
  // From a local worker, before it asks to join: work for its actor id
  // comes through here.
  caf::reacts_to<join_atom>,
  // From a local worker that joined: the scheduler reports go to.
  caf::reacts_to<join_atom, scheduler_actor>,
  // From a local worker: its reports (gathered, then sent on together).
  caf::reacts_to<report_batch>,
  // From a local worker leaving: sent on after the reports gathered so far.
  caf::reacts_to<leave_atom, uint32_t>,
  // Internal: send the gathered reports.
  caf::reacts_to<tick_atom>,
  // Internal: time for the next heartbeat to the node's session.
  caf::reacts_to<heartbeat_atom>,
  // From the coordinator: a piece of a test's log (its process only).
  caf::replies_to<log_atom, log_request>::with<log_chunk>,
  // Internal: look again at the follow requests it holds.
  caf::reacts_to<log_atom>>;

/// The session of one node process with a coordinator: the scheduler's
/// interface (what the node's workers send, checked and passed on) plus
/// the heartbeat. A node that sends none for the coordinator's
/// `--node-timeout` is declared lost: its tests requeue and the session
/// ends (reason `exit_reason::unreachable`), which tells the node, once it
/// can hear it, that it was dropped.
using node_session_actor = scheduler_actor::extend<
  // From the node's uplink: it is alive; replies the seconds until the next
  // heartbeat is due (0 = none needed).
  caf::replies_to<heartbeat_atom>::with<double>>;

/// A node's request to register one of its workers with a coordinator.
struct node_join {
  /// The shared join token.
  std::string token;
  /// Name of the node process (recognises a node that reconnects).
  std::string node;
  /// What the worker offers.
  worker_capabilities caps;
  /// The node's uplink (null = placements go to the worker itself, one
  /// message per worker).
  node_uplink_actor uplink;
};

/// Outcomes sent to a client in one message.
struct outcome_batch {
  /// The outcomes.
  std::vector<cluster_outcome> items;
};

/// Serializes cluster_test.
template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, cluster_test& x) {
  return f(caf::meta::type_name("cluster_test"), x.req, x.command, x.env, x.cwd,
           x.max_output);
}

/// Serializes cluster_submission.
template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, cluster_submission& x) {
  return f(caf::meta::type_name("cluster_submission"), x.tests, x.run_id,
           x.label, x.rerun);
}

/// Serializes cancel_request.
template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, cancel_request& x) {
  return f(caf::meta::type_name("cancel_request"), x.ids, x.all_mine);
}

/// Serializes cancel_result.
template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, cancel_result& x) {
  return f(caf::meta::type_name("cancel_result"), x.cancelled, x.refused,
           x.unknown);
}

/// Serializes client_hello.
template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, client_hello& x) {
  return f(caf::meta::type_name("client_hello"), x.token, x.outcomes,
           x.owner_key);
}

/// Serializes node_join.
template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_join& x) {
  return f(caf::meta::type_name("node_join"), x.token, x.node, x.caps,
           x.uplink);
}

/// Serializes node_work.
template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_work& x) {
  return f(caf::meta::type_name("node_work"), x.workers, x.batches);
}

/// Serializes report_bundle.
template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, report_bundle& x) {
  return f(caf::meta::type_name("report_bundle"), x.batches);
}

/// Serializes cluster_outcome.
template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, cluster_outcome& x) {
  return f(caf::meta::type_name("cluster_outcome"), x.test_id, x.status,
           x.success, x.timed_out, x.exit_code, x.exec_seconds, x.attempts,
           x.migrated, x.stolen, x.worker_id, x.error, x.output_tail, x.signal,
           x.node, x.submitted_at, x.started_at, x.ended_at, x.stderr_tail,
           x.speculated, x.speculation_won);
}

/// Serializes log_request.
template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, log_request& x) {
  return f(caf::meta::type_name("log_request"), x.test_id, x.stream, x.offset,
           x.max, x.wait_ms);
}

/// Serializes log_chunk.
template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, log_chunk& x) {
  return f(caf::meta::type_name("log_chunk"), x.state, x.why, x.node, x.open,
           x.writing, x.offset, x.size, x.data);
}

/// Serializes outcome_batch: on the wire as one packed byte string
/// (actors/outcome_codec.hpp), for CAF's to_string field by field.
template<class Inspector>
typename Inspector::result_type inspect(Inspector& f, outcome_batch& x) {
  if constexpr (std::is_same<typename Inspector::result_type, void>::value) {
    return f(caf::meta::type_name("outcome_batch"), x.items);
  } else if constexpr (Inspector::writes_state) {
    std::string packed;
    if (auto err = f(caf::meta::type_name("outcome_batch"), packed))
      return err;
    if (!unpack_outcomes(packed, x.items))
      return caf::make_error(caf::sec::invalid_argument,
                             "malformed outcome_batch");
    return {};
  } else {
    std::string packed;
    pack_outcomes(x.items, packed);
    return f(caf::meta::type_name("outcome_batch"), packed);
  }
}

/// A client's session with a coordinator, opened by a hello with the
/// token. It accepts requests only from the client's process and acts only
/// on the client's own tests; their outcomes go to the actor named in the
/// hello, inside outcome_batch messages.
using client_session_actor = caf::typed_actor<
  // Submits tests; replies how many were taken on (each gets one outcome).
  caf::replies_to<submit_atom, cluster_submission>::with<uint64_t>,
  // Scheduler metrics and cluster membership as JSON.
  caf::replies_to<stats_atom>::with<std::string>,
  // Cancels those of the named tests (or all) this client submitted;
  // replies what it did with each id.
  caf::replies_to<cancel_atom, cancel_request>::with<cancel_result>,
  // Past runs of this client as JSON ("" = list them; else one run's
  // outcomes).
  caf::replies_to<results_atom, std::string>::with<std::string>,
  // The status view as JSON: nodes, totals and this client's own tests
  // (every test for an operator session).
  caf::replies_to<status_atom>::with<std::string>,
  // The client is alive; replies the seconds until the next heartbeat is
  // due (0 = none needed). A client silent for the coordinator's
  // --client-timeout loses its session (its tests go on; their outcomes
  // stay in the journal).
  caf::replies_to<heartbeat_atom>::with<double>,
  // The largest submission the coordinator accepts, bytes serialized
  // (--max-submission): a client refuses a larger one before sending it.
  caf::replies_to<limits_atom>::with<uint64_t>,
  // A piece of one of this client's tests' logs (any test's for an
  // operator session), fetched from the node that ran it.
  caf::replies_to<log_atom, log_request>::with<log_chunk>>;

/// The coordinator's public face: the one actor it publishes. It accepts
/// exactly two messages, each checked against the join token; everything
/// else is refused (and logged) without effect. Reports, leaves and
/// submissions go to the session a successful join or hello returns.
using coordinator_actor = caf::typed_actor<
  // A node's worker asks to join; replies its slot and the node's session,
  // which takes the scheduler's messages from that node's workers (only
  // for their own slots) and passes them on.
  caf::replies_to<join_atom, node_join, worker_actor>::with<uint32_t,
                                                            scheduler_actor>,
  // A client asks for a session.
  caf::replies_to<hello_atom, client_hello>::with<client_session_actor>>;

} // namespace alb

CAF_BEGIN_TYPE_ID_BLOCK(alb, caf::first_custom_type_id)
CAF_ADD_TYPE_ID(alb, (alb::cpu_specs))
CAF_ADD_TYPE_ID(alb, (alb::memory_specs))
CAF_ADD_TYPE_ID(alb, (alb::gpu_specs))
CAF_ADD_TYPE_ID(alb, (alb::hardware_specs))
CAF_ADD_TYPE_ID(alb, (alb::worker_capabilities))
CAF_ADD_TYPE_ID(alb, (alb::worker_load))
CAF_ADD_TYPE_ID(alb, (alb::test_requirements))
CAF_ADD_TYPE_ID(alb, (alb::work_item))
CAF_ADD_TYPE_ID(alb, (alb::work_batch))
CAF_ADD_TYPE_ID(alb, (alb::work_report))
CAF_ADD_TYPE_ID(alb, (alb::report_batch))
CAF_ADD_TYPE_ID(alb, (alb::test_batch))
CAF_ADD_TYPE_ID(alb, (alb::load_report))
CAF_ADD_TYPE_ID(alb, (alb::series_sample))
CAF_ADD_TYPE_ID(alb, (alb::worker_actor))
CAF_ADD_TYPE_ID(alb, (alb::scheduler_actor))
CAF_ADD_TYPE_ID(alb, (alb::recorder_actor))
CAF_ADD_TYPE_ID(alb, (alb::cluster_test))
CAF_ADD_TYPE_ID(alb, (alb::cluster_submission))
CAF_ADD_TYPE_ID(alb, (alb::node_join))
CAF_ADD_TYPE_ID(alb, (alb::cluster_outcome))
CAF_ADD_TYPE_ID(alb, (alb::outcome_batch))
CAF_ADD_TYPE_ID(alb, (alb::coordinator_actor))
CAF_ADD_TYPE_ID(alb, (alb::revoke_batch))
CAF_ADD_TYPE_ID(alb, (alb::revoke_reply))
CAF_ADD_TYPE_ID(alb, (alb::node_work))
CAF_ADD_TYPE_ID(alb, (alb::report_bundle))
CAF_ADD_TYPE_ID(alb, (alb::node_uplink_actor))
CAF_ADD_TYPE_ID(alb, (alb::client_hello))
CAF_ADD_TYPE_ID(alb, (alb::client_session_actor))
CAF_ADD_TYPE_ID(alb, (alb::cancel_request))
CAF_ADD_TYPE_ID(alb, (alb::cancel_result))
CAF_ADD_TYPE_ID(alb, (alb::log_request))
CAF_ADD_TYPE_ID(alb, (alb::log_chunk))
CAF_ADD_TYPE_ID(alb, (alb::shard_handover))
CAF_ADD_TYPE_ID(alb, (alb::shard_actor))
CAF_END_TYPE_ID_BLOCK(alb)
