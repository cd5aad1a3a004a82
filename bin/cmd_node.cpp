// `alb node`: a process that attaches worker actors to a coordinator and
// runs the tests it is given as child processes.

#include "bin/commands.hpp"

#include <chrono>
#include <iostream>
#include <memory>
#include <thread>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/node.hpp"
#include "actors/real_worker.hpp"
#include "actors/system.hpp"
#include "bin/cluster_cli.hpp"
#include "bin/common.hpp"
#include "runtime/config.hpp"

namespace alb::cli {

namespace {

struct node_flags {
  std::string coordinator;
  int workers = 1;
  double memory = -1;
  int cores = -1;
  std::string accelerators;
  std::vector<std::string> tags;
  std::string token_file;
  std::string name;
  double connect_timeout = 10;
  std::string log_level = "INFO";
  int threads = 2;
};

int run_node(const node_flags& f) {
  cluster_log log{"node", normalize_log_level(f.log_level, "--log-level")};
  std::pair<std::string, uint16_t> ep;
  node_resources res;
  std::string token;
  std::vector<worker_capabilities> caps;
  try {
    ep = parse_endpoint(f.coordinator);
    res = detect_resources();
    if (f.cores > 0)
      res.cores = f.cores;
    if (f.memory >= 0)
      res.memory_gb = f.memory;
    if (!f.accelerators.empty())
      res.accelerators = parse_accelerators(f.accelerators);
    res.tags = f.tags;
    if (!f.token_file.empty()) {
      std::string warning;
      token = read_token_file(f.token_file, &warning);
      if (!warning.empty())
        log.warn(warning);
    }
    auto name = f.name.empty() ? res.hostname + "-" + std::to_string(::getpid())
                               : f.name;
    caps = split_resources(res, f.workers, name);
  } catch (const cluster_error& e) {
    std::cerr << "alb node: error: " << e.what() << "\n";
    return 2;
  }
  auto node_name
    = caps.front().worker_id.substr(0, caps.front().worker_id.rfind('/'));
  block_stop_signals();
  caf::actor_system_config cfg;
  configure_system(cfg, f.threads, false);
  cfg.load<caf::io::middleman>();
  caf::actor_system sys{cfg};
  // The coordinator may still be starting (e.g. under `alb run`): retry
  // until --connect-timeout.
  auto deadline
    = std::chrono::steady_clock::now()
      + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(f.connect_timeout));
  coordinator_actor coord;
  std::string last_error;
  for (;;) {
    auto h
      = sys.middleman().remote_actor<coordinator_actor>(ep.first, ep.second);
    if (h) {
      coord = *h;
      break;
    }
    last_error = sys.render(h.error());
    if (std::chrono::steady_clock::now() >= deadline) {
      std::cerr << "alb node: error: cannot reach coordinator at "
                << f.coordinator << ": " << last_error << "\n";
      return 1;
    }
    if (wait_for_signal(0.2) != 0)
      return 0;
  }
  log.info("connected to " + f.coordinator + " as node '" + node_name + "' ("
           + std::to_string(f.workers) + " workers, "
           + std::to_string(res.cores) + " cores, "
           + std::to_string(res.memory_gb) + " GB)");
  caf::scoped_actor self{sys};
  std::vector<worker_actor> workers;
  for (auto& c : caps) {
    real_worker_options o;
    o.caps = c;
    o.coordinator = coord;
    o.token = token;
    o.node = node_name;
    auto w = spawn_real_worker(sys, scheduler_actor{}, std::move(o));
    self->monitor(w);
    workers.push_back(w);
  }
  size_t alive = workers.size();
  int rc = 0;
  bool stopping = false;
  while (alive > 0) {
    self->receive(
      [&](caf::down_msg& dm) {
        --alive;
        if (stopping)
          return;
        if (dm.reason == caf::sec::invalid_argument) {
          // The coordinator refused the join (token).
          if (rc == 0)
            std::cerr << "alb node: error: coordinator refused the node: "
                      << sys.render(dm.reason) << "\n";
          rc = 1;
        } else if (rc == 0) {
          log.info("coordinator went away ("
                   + (dm.reason ? sys.render(dm.reason) : std::string{"normal"})
                   + "); stopping");
          stopping = true;
          for (auto& w : workers)
            self->send_exit(w, caf::exit_reason::user_shutdown);
        }
      },
      caf::after(std::chrono::milliseconds(100)) >>
        [&] {
          if (!stopping && wait_for_signal(0) != 0) {
            log.info("stopping: leaving the cluster");
            stopping = true;
            // A clean leave: the scheduler requeues what the workers held
            // without counting it as a lost node.
            for (auto& w : workers)
              self->send(w, leave_atom::value);
          }
        });
  }
  workers.clear();
  return rc;
}

} // namespace

void add_node(CLI::App& app, int& rc) {
  auto f = std::make_shared<node_flags>();
  auto* cmd = app.add_subcommand(
    "node", "Attach this machine's workers to a coordinator");
  cmd->footer(
    "Connects to `alb coordinator` and hosts --workers worker actors there.\n"
    "Tests with a command run as child processes (own process group, killed\n"
    "on timeout); tests without one are simulated. Capabilities come from\n"
    "the machine (nproc, /proc/meminfo, nvidia-smi) unless given by flags;\n"
    "they are split evenly over the workers. The join token is read from\n"
    "--token-file (never the command line). Stops on SIGINT/SIGTERM (its\n"
    "tests are requeued) or when the coordinator goes away.\n"
    "Exit status: 0 ok, 1 refused or unreachable, 2 bad input.\n\n"
    "Example: alb node --coordinator 10.0.0.5:8080 --workers 4 "
    "--token-file ~/.alb-token");
  cmd->add_option("--coordinator", f->coordinator, "HOST:PORT to attach to")
    ->required();
  cmd->add_option("--workers", f->workers, "Worker actors on this node")
    ->default_val(1)
    ->check(CLI::Range(1, 4096));
  cmd->add_option("--memory", f->memory, "Memory in GB (default: detected)")
    ->check(CLI::Range(0.0, 1e6));
  cmd->add_option("--cores", f->cores, "CPU cores (default: detected)")
    ->check(CLI::Range(1, 100000));
  cmd->add_option("--accelerators", f->accelerators,
                  "Accelerators as TYPE:COUNT[,...], e.g. cuda:2 (default: "
                  "nvidia-smi)");
  cmd->add_option("--tags", f->tags, "Labels for every worker");
  cmd->add_option("--token-file", f->token_file,
                  "File holding the coordinator's join token");
  cmd->add_option("--name", f->name,
                  "Node name (default HOSTNAME-PID); a node that reconnects "
                  "with the same name is recognised");
  cmd
    ->add_option("--connect-timeout", f->connect_timeout,
                 "Seconds to keep trying to reach the coordinator")
    ->default_val(10)
    ->check(CLI::Range(0.0, 86400.0));
  cmd->add_option("--log-level", f->log_level, "DEBUG, INFO, WARNING or ERROR");
  cmd->add_option("--threads", f->threads, "Actor threads")
    ->default_val(2)
    ->check(CLI::Range(1, 256));
  cmd->callback(
    [f, &rc] { rc = guarded("node", [f] { return run_node(*f); }); });
}

} // namespace alb::cli
