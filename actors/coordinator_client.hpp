#pragma once

// The client API of a cluster, for external systems (the reference's
// CoordinatorLoadBalancerIntegration): connect to a running
// `alb coordinator`, submit tests with their requirements and commands, and
// receive how each ended. `alb submit` and `alb run` are built on it.
// CAF-free header; link alb::actors.
//
//   alb::coordinator_client_options o;
//   o.endpoint = "alb://10.0.0.5:8080";
//   o.token = alb::read_token_file("/home/ci/.alb-token", nullptr);
//   o.tls = {"client.pem", "client.key", "ca.pem", ""};  // when it uses TLS
//   alb::coordinator_client client{o};
//   client.connect();
//   client.submit(tests);
//   auto r = client.wait(600);  // r.outcomes: one per test
//   client.close();

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "actors/tls.hpp"
#include "runtime/cluster_status.hpp"
#include "runtime/cluster_types.hpp"
#include "runtime/ec.hpp"

namespace alb {

/// Splits a coordinator address, "HOST:PORT" or "alb://HOST:PORT" (the
/// host may be a bracketed IPv6 address); throws cluster_error.
std::pair<std::string, uint16_t> parse_coordinator_url(const std::string& s);

/// Why a coordinator_client call failed.
enum class client_errc {
  /// Bad options: endpoint, TLS files.
  bad_input,
  /// The coordinator could not be reached within the connect timeout.
  unreachable,
  /// The coordinator refused this client (join token).
  refused,
  /// The coordinator did not answer within the request timeout.
  timeout,
  /// The connection to the coordinator is gone.
  disconnected,
  /// connect() was not called (or close() was).
  not_connected,
  /// The coordinator failed to do it (its journal, its status view).
  coordinator_failed,
};

/// The name of `x` ("refused").
const char* to_string(client_errc x);

/// The kind of client error the coordinator's code `x` is (a bad token is
/// `refused`, another client's run `bad_input`, a failed journal
/// `coordinator_failed`, ...).
client_errc client_errc_of(ec x);

/// The line a client shows for the coordinator's code `x` with the
/// error's detail: what the code means, the detail in parentheses
/// ("another client's (run 'r1')").
std::string client_message(ec x, const std::string& detail);

/// The exit status an `alb` client command ends with on an error of kind
/// `x`: 2 for every kind (bad input, refused, unreachable, the
/// coordinator gone or failing), so that 1 keeps meaning "tests failed".
int exit_status(client_errc x);

/// A failed client call; what() is one line saying what went wrong.
class coordinator_client_error : public std::runtime_error {
public:
  /// An error of kind `code`; `reason` is the coordinator's code when it
  /// refused or failed the request (ec::none when it did not answer).
  coordinator_client_error(client_errc code, const std::string& what,
                           ec reason = ec::none);
  /// Its kind.
  client_errc code() const noexcept;
  /// The coordinator's code (ec::none = the error arose in the client or
  /// the connection).
  ec reason() const noexcept;

private:
  client_errc code_;
  ec reason_;
};

/// Settings of a coordinator_client.
struct coordinator_client_options {
  /// Where the coordinator listens: "HOST:PORT" or "alb://HOST:PORT".
  std::string endpoint;
  /// The cluster's join token ("" when the coordinator has none).
  std::string token;
  /// This client's own secret key (see `read_client_key`): clients that
  /// present the same key own the same tests, so another process of the
  /// same user may cancel them or read their results. "" = this connection
  /// owns only what it submits itself.
  std::string owner_key;
  /// Certificate, key and CA when the coordinator uses TLS (else empty).
  tls_options tls;
  /// Seconds connect() keeps trying (the coordinator may still be starting).
  double connect_timeout = 10;
  /// Seconds a submission or a stats request may take.
  double request_timeout = 30;
  /// Threads of the client's actor system.
  int threads = 2;
};

/// How a submission is recorded in the coordinator's journal.
struct submission_info {
  /// Run id ("" = a new one is made up: see `make_run_id`).
  std::string run_id;
  /// What the run is named after (the test file) for `alb results`.
  std::string label;
  /// Run the tests again even where the journal holds an outcome no client
  /// collected yet (instead of answering from it).
  bool rerun = false;
};

/// A fresh run id: the local date and time and a random suffix,
/// "20261201-112233-4f2a".
std::string make_run_id();

/// Reads this user's client key from `path`, creating the file (mode 0600,
/// 128 random bits) when it does not exist; throws cluster_error when it
/// cannot be read or made.
std::string read_client_key(const std::string& path);

/// Where `alb` keeps the client key unless told: $ALB_CLIENT_KEY_FILE, else
/// $XDG_CONFIG_HOME/alb/client.key, else ~/.config/alb/client.key.
std::string default_client_key_path();

/// Receives each outcome as it arrives, on one of the client's threads.
/// It must not call back into the client.
using outcome_callback = std::function<void(const cluster_outcome&)>;

/// What wait() saw.
struct client_wait_result {
  /// Outcomes that arrived since the previous wait(), in arrival order
  /// (always empty when an outcome callback is set: they went to it).
  std::vector<cluster_outcome> outcomes;
  /// Submitted tests still without an outcome.
  size_t open = 0;
  /// Whether the connection to the coordinator was lost: open tests get
  /// no outcome over this client.
  bool disconnected = false;
  /// Whether every submitted test has its outcome.
  bool complete() const { return open == 0; }
};

/// A connection to a coordinator that submits tests and collects their
/// outcomes. Thread-safe; one connection per object.
class coordinator_client {
public:
  /// A client with these settings; nothing happens before connect().
  explicit coordinator_client(coordinator_client_options opts);
  /// Closes the connection.
  ~coordinator_client();
  coordinator_client(const coordinator_client&) = delete;
  coordinator_client& operator=(const coordinator_client&) = delete;

  /// Checks the endpoint and TLS files, connects (retrying until
  /// `connect_timeout`) and opens a session with the token. Throws
  /// coordinator_client_error (bad_input, unreachable, refused for a wrong
  /// or missing token, timeout). Warnings (e.g. TLS files readable by others)
  /// are in warnings() afterwards.
  void connect();

  /// Whether connected and the coordinator not lost.
  bool connected() const;

  /// Sends each outcome to `f` instead of keeping it for wait(). Set it
  /// before submitting. `f` runs on the client's own thread; an outcome
  /// counts as arrived (for wait() and open()) once `f` returned for it.
  void on_outcome(outcome_callback f);

  /// Submits `tests`. Returns how many the coordinator took on: each of
  /// them gets exactly one outcome (tests it rejects, e.g. a duplicate id
  /// or impossible requirements, come back at once as failed outcomes with
  /// the reason in `error`). Throws coordinator_client_error
  /// (timeout, disconnected, not_connected, bad_input for an empty list
  /// or another client's run id, coordinator_failed when its journal
  /// cannot take the tests; `reason()` is the coordinator's code).
  size_t submit(std::vector<cluster_test> tests);

  /// The same, recorded as `info` says.
  size_t submit(std::vector<cluster_test> tests, const submission_info& info);

  /// The run id of the last submission ("" before the first).
  std::string run_id() const;

  /// Waits up to `timeout` seconds (< 0 = no limit) until every submitted
  /// test has its outcome or the connection is lost.
  client_wait_result wait(double timeout = -1);

  /// Cancels those of `ids` this client submitted and that have not ended
  /// (each then gets a cancelled outcome); returns how many. Tests of other
  /// clients are left alone. Throws coordinator_client_error.
  size_t cancel(std::vector<std::string> ids);

  /// Cancels those of `ids` this client (its key) submitted, and says what
  /// it did with each id: cancelled (each then ends once as `cancelled`,
  /// queued ones dropped, running ones killed on their node), refused
  /// (another client's) or unknown (no such open test). Throws
  /// coordinator_client_error.
  cancel_result cancel_tests(std::vector<std::string> ids);

  /// Cancels every open test this client (its key) submitted. Throws
  /// coordinator_client_error.
  cancel_result cancel_all_mine();

  /// Past runs of this client (its key) from the coordinator's journal,
  /// as JSON: `{"runs": [{run_id, label, submitted_at, tests, open,
  /// completed, failed, timed_out, cancelled}]}` for `run` = "", else
  /// `{"run": {...}, "results": [{test_id, status, ...}]}`. Throws
  /// coordinator_client_error (bad_input for an unknown or another
  /// client's run, or a coordinator without journal).
  std::string results(const std::string& run = "");

  /// A piece of the stdout (`stream` 0) or stderr (1) log of test
  /// `test_id`, from `offset`, at most `max_log_chunk` bytes, fetched
  /// through the coordinator from the node that ran it. Only this
  /// client's (its key's) tests, any test with the operator token. With
  /// `wait_ms`, the node holds the request up to that long while the test
  /// writes and nothing past `offset` is there yet (for following it).
  /// `state` says when there are no bytes to be had (not started, no
  /// longer kept, node gone). Throws coordinator_client_error: bad_input
  /// for an unknown id or another client's test, timeout, disconnected.
  log_chunk read_log(const std::string& test_id, int stream, uint64_t offset,
                     uint32_t wait_ms = 0);

  /// Submitted tests without an outcome yet.
  size_t open() const;

  /// The coordinator's statistics as JSON: the scheduler's metrics,
  /// `nodes` (workers and address of each) and `open_tests`. Throws
  /// coordinator_client_error.
  std::string stats();

  /// The cluster's status view: nodes and workers (slots busy/total,
  /// resources, when last heard from), the waiting tests by priority with
  /// why each waits, the placed tests (where, since when), recent failures
  /// and totals. This client's own tests are listed; every test when it
  /// connected with the operator token (or the coordinator has no token).
  /// Throws coordinator_client_error.
  cluster_status status();

  /// The same view as JSON (what `alb status --json` prints). Throws
  /// coordinator_client_error.
  std::string status_json();

  /// The coordinator's address as "HOST:PORT".
  std::string address() const;

  /// Whether the connection uses TLS.
  bool uses_tls() const;

  /// Problems connect() noticed that did not stop it.
  std::vector<std::string> warnings() const;

  /// Disconnects. Open tests keep running on the cluster, but their
  /// outcomes no longer reach this client. Idempotent.
  void close();

  /// Private state.
  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

} // namespace alb
