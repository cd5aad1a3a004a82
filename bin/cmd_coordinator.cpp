// `alb coordinator`: the scheduler of a cluster, published on a TCP port
// for nodes (`alb node`) and clients (`alb submit`, `alb run`).

#include "bin/commands.hpp"

#include <algorithm>
#include <iostream>
#include <memory>
#include <mutex>
#include <signal.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>

#include "actors/basp_guard.hpp"
#include "actors/cluster_net.hpp"
#include "actors/coordinator.hpp"
#include "actors/node.hpp"
#include "actors/system.hpp"
#include "bin/cluster_cli.hpp"
#include "bin/common.hpp"
#include "metrics/prometheus_observer.hpp"
#include "metrics/server.hpp"
#include "runtime/byte_size.hpp"
#include "runtime/history.hpp"
#include "runtime/journal.hpp"
#include "runtime/strategy.hpp"

namespace alb::cli {

namespace {

struct coordinator_flags : run_flags {
  std::string host;
  int port = -1;
  std::string db_path;
  bool no_db = false;
  std::string strategy;
  bool disable_lb = false;
  std::string log_level;
  std::string token_file;
  std::string operator_token_file;
  int threads = 2;
  double node_timeout = -1;
  double timeout_grace = -1;
  double client_timeout = -1;
  tls_options tls;
  double handshake_timeout = -1;
  int max_handshakes_per_address = -1;
  int max_handshakes = -1;
  std::string max_submission;
};

int run_coordinator(const coordinator_flags& f) {
  auto cfg = load_run_config(f, "coordinator");
  auto host = f.host.empty() ? cfg.cluster.host : f.host;
  auto port = f.port >= 0 ? f.port : cfg.cluster.port;
  auto db_path = f.no_db
                   ? std::string{}
                   : (f.db_path.empty() ? cfg.cluster.db_path : f.db_path);
  auto token_file
    = f.token_file.empty() ? cfg.cluster.token_file : f.token_file;
  auto level = f.log_level.empty()
                 ? cfg.log_level
                 : normalize_log_level(f.log_level, "--log-level");
  cluster_log log{"coordinator", level,
                  parse_log_format(f.log_format, "--log-format")};
  std::string token;
  if (!token_file.empty()) {
    std::string warning;
    try {
      token = read_token_file(token_file, &warning);
    } catch (const cluster_error& e) {
      std::cerr << "alb coordinator: error: " << e.what() << "\n";
      return 2;
    }
    if (!warning.empty())
      log.warn(warning);
  } else {
    log.warn("no --token-file: any process that reaches " + host + ":"
             + std::to_string(port) + " may join and run commands");
  }
  // The operator token lets `alb status` (and the client API) list every
  // client's tests, not only the asking client's own.
  std::string operator_token;
  if (!f.operator_token_file.empty()) {
    std::string warning;
    try {
      operator_token = read_token_file(f.operator_token_file, &warning);
    } catch (const cluster_error& e) {
      std::cerr << "alb coordinator: error: " << e.what() << "\n";
      return 2;
    }
    if (!warning.empty())
      log.warn(warning);
    if (!token.empty() && tokens_equal(token, operator_token)) {
      std::cerr << "alb coordinator: error: --operator-token-file "
                << f.operator_token_file
                << " holds the same token as the join token file\n";
      return 2;
    }
  }
  std::unique_ptr<tls_material> tls;
  try {
    tls = load_tls(merge_tls(f.tls, cfg.tls),
                   [&log](const std::string& w) { log.warn(w); });
  } catch (const cluster_error& e) {
    std::cerr << "alb coordinator: error: " << e.what() << "\n";
    return 2;
  }
  auto sched = cfg.scheduler;
  if (!f.strategy.empty())
    sched.strategy = f.strategy;
  // Plain first-come placement, for comparison with the adaptive ones.
  if (f.disable_lb)
    sched.strategy = "round_robin";
  std::shared_ptr<execution_history> history;
  if (!db_path.empty()) {
    try {
      history
        = std::make_shared<execution_history>(execution_history::load(db_path));
    } catch (const std::exception& e) {
      std::cerr << "alb coordinator: error: " << e.what() << "\n";
      return 2;
    }
    sched.history = history;
  }
  // The journal of submitted tests shares the database: a coordinator
  // started again on it resumes what had not ended.
  std::shared_ptr<submission_journal> journal;
  if (!db_path.empty()) {
    try {
      journal = std::make_shared<submission_journal>(
        submission_journal::open(db_path));
    } catch (const journal_error& e) {
      std::cerr << "alb coordinator: error: " << e.what() << "\n";
      return 2;
    }
  }
  // The flag overrides [cluster] max_submission; checked like the key.
  auto max_submission = cfg.cluster.max_submission;
  if (!f.max_submission.empty()) {
    auto v = parse_byte_size(f.max_submission);
    auto why = v ? check_max_submission(*v) : std::string{};
    if (!v || !why.empty()) {
      std::cerr << "alb coordinator: error: --max-submission: "
                << (v ? why
                      : "'" + f.max_submission
                          + "' is not a size (bytes, or e.g. \"64MiB\")")
                << "\n";
      return 2;
    }
    max_submission = *v;
  }
  auto metrics = metrics_session::start(f, cfg, "coordinator", sched.strategy);
  block_stop_signals();
  // Each relayed connection takes three descriptors (the guard's two and
  // CAF's): the usual soft limit of 1024 would run out before the guard's
  // caps (1024 connections, 256 in their handshake) do.
  rlimit files{};
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < 8192
      && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = std::min<rlim_t>(files.rlim_max, 8192);
    ::setrlimit(RLIMIT_NOFILE, &files);
  }
  int rc = 0;
  {
    caf::actor_system_config sys_cfg;
    configure_system(sys_cfg, f.threads, false);
    load_network(sys_cfg, tls.get());
    caf::actor_system sys{sys_cfg};
    coordinator_options o;
    o.scheduler.config = sched;
    o.scheduler.finish_when_done = false;
    if (metrics)
      o.scheduler.observer = metrics->observer();
    o.token = token;
    o.operator_token = operator_token;
    o.journal = journal;
    o.node_timeout
      = f.node_timeout >= 0 ? f.node_timeout : cfg.cluster.node_timeout;
    o.timeout_grace
      = f.timeout_grace >= 0 ? f.timeout_grace : cfg.cluster.timeout_grace;
    o.client_timeout
      = f.client_timeout >= 0 ? f.client_timeout : cfg.cluster.client_timeout;
    o.max_submission = max_submission;
    o.log = [&log](const std::string& line) { log.info(line); };
    // Connections and placement summaries, only when they are written.
    if (log.enabled(log_level::debug))
      o.debug = [&log](const std::string& component, const std::string& line) {
        log.put(log_level::debug, component, line);
      };
    auto* prom
      = metrics
          ? dynamic_cast<metrics::prometheus_observer*>(metrics->observer())
          : nullptr;
    o.on_nodes = [prom](size_t n) {
      if (prom)
        prom->set_nodes(n);
    };
    o.on_node_lost = [prom] {
      if (prom)
        prom->count_node_timeout();
    };
    // The coordinator asks the guard (from its own thread) who is behind a
    // relayed connection; the slot keeps the guard alive while it asks.
    struct guard_slot {
      std::mutex mtx;
      std::shared_ptr<basp_guard> guard;
    };
    auto slot = std::make_shared<guard_slot>();
    o.peer_name = [slot](const std::string&, uint16_t port) {
      std::shared_ptr<basp_guard> g;
      {
        std::lock_guard<std::mutex> lock{slot->mtx};
        g = slot->guard;
      }
      return g ? g->peer_of(port) : std::string{};
    };
    // A join or hello with the token ends the guard's handshake deadline
    // for that connection.
    o.on_admitted = [slot](const std::string&, uint16_t port) {
      std::shared_ptr<basp_guard> g;
      {
        std::lock_guard<std::mutex> lock{slot->mtx};
        g = slot->guard;
      }
      if (g)
        g->admit(port);
    };
    coordinator_actor coord;
    status_reader reader;
    try {
      coord = spawn_coordinator(sys, std::move(o), &reader);
    } catch (const std::exception& e) {
      std::cerr << "alb coordinator: error: " << e.what() << "\n";
      return 2;
    }
    // The middleman listens privately on loopback; the public port belongs
    // to the guard, which drops forged or oversized BASP frames before CAF
    // reads them (see actors/basp_guard.hpp).
    auto inner = publish_on_loopback(sys, coord);
    if (!inner) {
      std::cerr << "alb coordinator: error: cannot publish: "
                << sys.render(inner.error()) << "\n";
      stop_coordinator(sys, coord);
      return 2;
    }
    basp_guard_options g;
    g.host = host;
    g.port = static_cast<uint16_t>(port);
    g.upstream_port = *inner;
    g.tls = tls != nullptr;
    g.handshake_timeout = f.handshake_timeout > 0
                            ? f.handshake_timeout
                            : cfg.cluster.handshake_timeout;
    g.max_pending_per_address
      = static_cast<size_t>(f.max_handshakes_per_address > 0
                              ? f.max_handshakes_per_address
                              : cfg.cluster.max_handshakes_per_address);
    g.max_pending = static_cast<size_t>(
      f.max_handshakes > 0 ? f.max_handshakes : cfg.cluster.max_handshakes);
    // A submission at the limit is one frame: its payload plus CAF's
    // envelope around the message.
    g.max_payload = static_cast<uint32_t>(max_submission + submission_envelope);
    // Strangers are named with their address (rate-limited by the guard).
    g.on_refused = [&log](const std::string& line) {
      log.put(log_level::warning, "guard", line);
    };
    g.on_count = [prom](guard_refusal r) {
      if (prom)
        prom->count_refused_connection(label(r));
    };
    std::shared_ptr<basp_guard> guard;
    try {
      guard = std::make_shared<basp_guard>(g);
      std::lock_guard<std::mutex> lock{slot->mtx};
      slot->guard = guard;
    } catch (const std::exception& e) {
      std::cerr << "alb coordinator: error: " << e.what() << "\n";
      stop_coordinator(sys, coord);
      return 2;
    }
    // The status page reads the coordinator from the HTTP server's
    // threads: the gate makes the stop wait for a read in progress and
    // refuse later ones, so none touches the actor system once it goes.
    struct page_gate {
      std::mutex mtx;
      bool open = true;
    };
    auto gate = std::make_shared<page_gate>();
    if (metrics) {
      metrics->server().set_status_source([gate, reader] {
        std::lock_guard<std::mutex> lock{gate->mtx};
        if (!gate->open)
          throw std::runtime_error{"the coordinator is stopping"};
        return reader(2.0);
      });
      log.info("status page: " + metrics->server().page_url()
               + " (JSON at /api/status)");
    }
    auto close_page = [&] {
      {
        std::lock_guard<std::mutex> lock{gate->mtx};
        gate->open = false;
      }
      if (metrics)
        metrics->server().set_status_source(nullptr);
    };
    auto bound = guard->port();
    std::cout << "alb coordinator: listening on " << host << ":" << bound
              << " (strategy " << sched.strategy << (tls ? ", TLS" : "") << ")"
              << std::endl;
    if (tls)
      log.info("TLS: presenting '" + tls->subject()
               + "'; peers need a certificate signed by the --tls-ca CA");
    auto sig = wait_for_signal(-1);
    log.info(std::string{"stopping on "}
             + (sig == SIGINT ? "SIGINT" : "SIGTERM"));
    close_page();
    stop_coordinator(sys, coord);
    coord = nullptr;
    {
      std::lock_guard<std::mutex> lock{slot->mtx};
      slot->guard = nullptr;
    }
  }
  if (history && !db_path.empty()) {
    try {
      history->save(db_path);
    } catch (const std::exception& e) {
      std::cerr << "alb coordinator: error: " << e.what() << "\n";
      rc = 1;
    }
  }
  std::cout << "alb coordinator: stopped" << std::endl;
  return rc;
}

} // namespace

void add_coordinator(CLI::App& app, int& rc) {
  auto f = std::make_shared<coordinator_flags>();
  auto* cmd = app.add_subcommand(
    "coordinator", "Run the cluster's scheduler for nodes and clients");
  cmd->footer(
    "Publishes the scheduler on HOST:PORT with CAF's middleman. Nodes\n"
    "(`alb node`) attach workers to it; clients (`alb submit`, `alb run`)\n"
    "send tests and receive their outcomes. Nodes and clients must present\n"
    "the token from --token-file (the same file on every machine). A node\n"
    "that disappears has its tests requeued elsewhere. Runs until SIGINT or\n"
    "SIGTERM. Defaults come from the [cluster] section of --config.\n"
    "Placement: --scheduler, else [scheduler] strategy, else adaptive (the\n"
    "shortest makespans on alb benchmark's heterogeneous fleets, README);\n"
    "the start line names it. --disable-load-balancer means round_robin.\n"
    "\n"
    "Heartbeats: each node sends one on its session several times per\n"
    "--node-timeout. A node silent for --node-timeout seconds (stopped,\n"
    "hung, network cut with the connection left open) is declared lost as\n"
    "if it had died: `node 'X' lost: no heartbeat for 15 s` is logged,\n"
    "alb_node_heartbeat_timeouts_total counts it, its running and queued\n"
    "tests are requeued, and whatever it reports later does not count. When\n"
    "it wakes up it is told it was dropped, kills what it ran and joins again\n"
    "under a fresh session.\n"
    "A test with a `timeout` that its node started but never reports is\n"
    "given up --timeout-grace seconds past its timeout (`test 'T' overdue:\n"
    "no report from worker ...`): the attempt fails as timed out, so the test\n"
    "is retried on another worker or fails, and no test waits forever.\n"
    "Clients send heartbeats too: a client silent for --client-timeout\n"
    "seconds loses its session (`client at ADDR expired: no heartbeat for\n"
    "60 s`); its tests still run and their outcomes are journaled, so the\n"
    "same submission again gets them from the journal.\n"
    "\n"
    "Refused joins and connections (wrong token, garbage bytes, failed TLS\n"
    "handshakes) are logged as warnings with the peer's address. The port\n"
    "takes only a join or a hello with the token; anything else a peer sends\n"
    "there (forged outcomes or reports, stats, submit, cancel, exit) is\n"
    "refused and logged (`refused outcome_batch from ADDR: ...`), and a node\n"
    "or client may act only for its own workers or tests (README, \"Trust\n"
    "model\").\n"
    "A connection must finish its handshake (CAF or TLS, then the join or\n"
    "hello with the token) within --handshake-timeout seconds or it is\n"
    "closed (`refused connection from ADDR: no handshake within 10 s`); at\n"
    "most --max-handshakes-per-address (16) from one address and\n"
    "--max-handshakes (256) in all are in their handshake at once: one more\n"
    "closes the oldest, so sockets held open never keep a node or client\n"
    "out. Counted in alb_connections_refused_total{reason}.\n"
    "A submission over --max-submission (default 64MiB serialized) is\n"
    "refused by the client before it sends it: each client learns the limit\n"
    "when its session opens, and the guard drops a larger frame.\n"
    "A test no node can ever hold (too much memory, a missing accelerator,\n"
    "software or tag) fails as unplaceable with that reason once [scheduler]\n"
    "wait_limit seconds (default 120; per test `wait_limit`) pass since its\n"
    "submission or since the last node that could hold it left, so tests\n"
    "queued for a node that is gone end instead of waiting forever.\n"
    "Every guard flag, --node-timeout, --timeout-grace, --client-timeout and\n"
    "--max-submission has a [cluster] key of the same name (underscores):\n"
    "flags override the file; a value out of range is an error naming\n"
    "file:line (exit 2).\n"
    "Status: `alb status` shows nodes, the queue with why each test waits,\n"
    "running tests and totals; a client's own tests are listed, every\n"
    "test for a client presenting the --operator-token-file token (or when\n"
    "there is no token at all); that token also cancels any test (`alb\n"
    "cancel`) and reads any test's log (`alb logs`). With --metrics-port,\n"
    "the same port serves\n"
    "/metrics, a live status page at / and its JSON at /api/status (every\n"
    "test: keep that port on loopback or a trusted network).\n"
    "\n"
    "TLS (CAF's OpenSSL module): with --tls-cert, --tls-key and --tls-ca\n"
    "(or a [tls] section in --config) every connection is TLS and both\n"
    "sides present a certificate: nodes and clients need one signed by the\n"
    "--tls-ca CA, as this coordinator's must be for them. Plain-TCP peers\n"
    "are disconnected. See README, \"TLS\", for making the certificates.\n"
    "\n"
    "Journal: accepted tests and their outcomes are written to --db-path\n"
    "(SQLite) before they are acknowledged or reported. Started again on the\n"
    "same database (even after SIGKILL), it resumes the tests that had not\n"
    "ended; nodes reconnect by themselves. Submitting a test id again:\n"
    "still queued or running with the same command, env, cwd and\n"
    "requirements = wait for that run (no second run); with a different\n"
    "definition = rejected; ended but its outcome not yet collected by a\n"
    "client that then disconnected cleanly = that recorded outcome; otherwise\n"
    "a new run. --no-db keeps no journal (and no history): nothing survives\n"
    "a restart.\n"
    "Exit status: 0 ok, 2 bad input or cannot listen.\n\n"
    "Example: alb coordinator --port 0 --token-file ~/.alb-token");
  cmd->add_option("--host", f->host,
                  "Address to listen on (default 127.0.0.1: loopback only)");
  cmd->add_option("--port", f->port, "TCP port (0 = any free port, printed)")
    ->check(CLI::Range(0, 65535));
  cmd->add_option("--db-path", f->db_path,
                  "SQLite database with the execution history and the "
                  "journal of submitted tests (default [cluster] db_path, "
                  "alb.db)");
  cmd->add_flag("--no-db", f->no_db,
                "Keep no database: no history, no journal (a restart loses "
                "the submitted tests)");
  cmd
    ->add_option("--scheduler", f->strategy,
                 "Placement strategy (default [scheduler] strategy, "
                   + default_strategy_note() + ")")
    ->check(CLI::IsMember(strategy_names()));
  cmd->add_flag("--disable-load-balancer", f->disable_lb,
                "Plain round-robin placement, for comparison (overrides "
                "--scheduler)");
  add_log_flags(cmd, &f->log_level, f->log_format);
  cmd->add_option("--token-file", f->token_file,
                  "File holding the join token nodes and clients present");
  cmd->add_option("--operator-token-file", f->operator_token_file,
                  "File holding the operator token: a client presenting it "
                  "sees every client's tests in `alb status`");
  cmd->add_option("--threads", f->threads, "Scheduler threads")
    ->check(CLI::Range(1, 256));
  cmd
    ->add_option("--handshake-timeout", f->handshake_timeout,
                 "Seconds a connection has to finish its handshake (CAF or "
                 "TLS, then the join or hello with the token); then it is "
                 "closed (default [cluster] handshake_timeout, 10)")
    ->check(CLI::Range(0.1, 3600.0));
  cmd
    ->add_option("--max-handshakes-per-address", f->max_handshakes_per_address,
                 "Connections from one address still in their handshake; "
                 "one more closes that address's oldest (default [cluster] "
                 "max_handshakes_per_address, 16)")
    ->check(CLI::Range(1, 100000));
  cmd
    ->add_option("--max-handshakes", f->max_handshakes,
                 "Connections still in their handshake in total; one more "
                 "closes the oldest of the address holding the most "
                 "(default [cluster] max_handshakes, 256)")
    ->check(CLI::Range(1, 100000));
  cmd->add_option("--max-submission", f->max_submission,
                  "Largest submission accepted, serialized: bytes or a size "
                  "such as 64MiB, 1 MiB to 1 GiB; clients refuse a larger "
                  "one before sending it (default [cluster] max_submission, "
                  "64MiB)");
  cmd
    ->add_option("--node-timeout", f->node_timeout,
                 "Seconds without a heartbeat after which a node is declared "
                 "lost and its tests requeued (default [cluster] "
                 "node_timeout, 15)")
    ->check(CLI::Range(0.1, 86400.0));
  cmd
    ->add_option("--timeout-grace", f->timeout_grace,
                 "Seconds past a running test's timeout after which the "
                 "coordinator gives up on its node's report and retries or "
                 "fails it (default [cluster] timeout_grace, 30)")
    ->check(CLI::Range(0.0, 86400.0));
  cmd
    ->add_option("--client-timeout", f->client_timeout,
                 "Seconds without a heartbeat after which a client's session "
                 "expires; its tests go on (default [cluster] "
                 "client_timeout, 60)")
    ->check(CLI::Range(0.1, 86400.0));
  add_tls_flags(cmd, f->tls);
  f->add_config(cmd);
  f->add_metrics(cmd);
  cmd->callback([f, &rc] {
    rc = guarded("coordinator", [f] { return run_coordinator(*f); });
  });
}

} // namespace alb::cli
