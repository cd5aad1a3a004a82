#pragma once

// alb's one error vocabulary: why the coordinator (or a session of it)
// refused or failed a request. The codes travel across actors and machines
// inside a caf::error of category "alb" (actors/caf_ec.hpp registers them
// with CAF_ERROR_CODE_ENUM); the error's context may add one line of
// detail (a run id, the journal's reason). Clients decide what to do from
// the code, never from the text (actors/coordinator_client.hpp maps each
// code to a client error kind and an exit status). CAF-free: include it
// anywhere.

#include <cstdint>
#include <optional>

namespace alb {

/// Why a request was refused or failed. The numbers are on the wire: add
/// codes at the end, never renumber.
enum class ec : uint8_t {
  /// Not an error (CAF reads code 0 as "no error"; never sent).
  none = 0,
  /// A join or hello without the cluster's token.
  no_token = 1,
  /// A join or hello with a token that is not the cluster's.
  wrong_token = 2,
  /// A join or hello without the actor it needs (a worker, or the
  /// client's receiver of outcomes).
  missing_handle = 3,
  /// The scheduler refused the worker a join offered (its capabilities).
  bad_worker = 4,
  /// A message this peer may not send here: nothing but a join or hello
  /// without a session, and only its own kind on a session.
  not_accepted = 5,
  /// A request on a session from a process that is not the session's.
  not_your_session = 6,
  /// A run of another client (its owner key differs).
  not_owner = 7,
  /// No run with that id in the journal.
  unknown_run = 8,
  /// The coordinator keeps no journal (started with --no-db).
  no_journal = 9,
  /// The coordinator's journal could not be written or read.
  journal_failed = 10,
  /// The node was declared lost (no heartbeat within --node-timeout): its
  /// session is gone and it must join again.
  node_dropped = 11,
  /// The coordinator could not make its status view.
  status_failed = 12,
  /// No test with that id is open or remembered (`alb logs`).
  unknown_test = 13,
};

/// Every code but `none`, in order (for tables and tests).
inline constexpr ec all_ecs[] = {
  ec::no_token,     ec::wrong_token,      ec::missing_handle, ec::bad_worker,
  ec::not_accepted, ec::not_your_session, ec::not_owner,      ec::unknown_run,
  ec::no_journal,   ec::journal_failed,   ec::node_dropped,   ec::status_failed,
  ec::unknown_test,
};

/// The code's name as written here ("wrong_token"; "none"); "unknown" for
/// a number that is no code (a newer peer's).
const char* to_string(ec x);

/// What the code means, as one phrase for a person ("wrong join token").
const char* describe(ec x);

/// Whether `x` refuses a join or hello (token, handle, worker): the peer
/// must not simply try again.
bool is_join_refusal(ec x);

/// The code with number `x`, nullopt when `x` is none of them.
std::optional<ec> ec_from_code(uint8_t x);

} // namespace alb
