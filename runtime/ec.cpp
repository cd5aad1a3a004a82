#include "runtime/ec.hpp"

namespace alb {

const char* to_string(ec x) {
  switch (x) {
    case ec::none:
      return "none";
    case ec::no_token:
      return "no_token";
    case ec::wrong_token:
      return "wrong_token";
    case ec::missing_handle:
      return "missing_handle";
    case ec::bad_worker:
      return "bad_worker";
    case ec::not_accepted:
      return "not_accepted";
    case ec::not_your_session:
      return "not_your_session";
    case ec::not_owner:
      return "not_owner";
    case ec::unknown_run:
      return "unknown_run";
    case ec::no_journal:
      return "no_journal";
    case ec::journal_failed:
      return "journal_failed";
    case ec::node_dropped:
      return "node_dropped";
    case ec::status_failed:
      return "status_failed";
    case ec::unknown_test:
      return "unknown_test";
  }
  return "unknown";
}

const char* describe(ec x) {
  switch (x) {
    case ec::none:
      return "no error";
    case ec::no_token:
      return "no join token";
    case ec::wrong_token:
      return "wrong join token";
    case ec::missing_handle:
      return "the request lacks the actor it needs";
    case ec::bad_worker:
      return "the scheduler refused the worker";
    case ec::not_accepted:
      return "not accepted from this peer";
    case ec::not_your_session:
      return "not this client's session";
    case ec::not_owner:
      return "another client's";
    case ec::unknown_run:
      return "no such run in the journal";
    case ec::no_journal:
      return "the coordinator keeps no journal (started with --no-db)";
    case ec::journal_failed:
      return "the coordinator's journal failed";
    case ec::node_dropped:
      return "the node was dropped (no heartbeat within --node-timeout)";
    case ec::status_failed:
      return "the coordinator could not make its status view";
    case ec::unknown_test:
      return "no such test known to the coordinator";
  }
  return "unknown error";
}

bool is_join_refusal(ec x) {
  return x == ec::no_token || x == ec::wrong_token || x == ec::missing_handle
         || x == ec::bad_worker;
}

std::optional<ec> ec_from_code(uint8_t x) {
  for (auto c : all_ecs)
    if (static_cast<uint8_t>(c) == x)
      return c;
  return std::nullopt;
}

} // namespace alb
