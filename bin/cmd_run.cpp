// `alb run`: a whole cluster run from one TOML file: starts a coordinator
// and local node processes, submits the file's [[tests]], prints the
// outcome table and stops what it started.

#include "bin/commands.hpp"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <regex>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include "actors/node.hpp"
#include "bin/cluster_cli.hpp"
#include "bin/common.hpp"
#include "runtime/config.hpp"
#include "runtime/process.hpp"

namespace alb::cli {

namespace {

struct run_cluster_flags {
  std::string file;
  int nodes = 3;
  int workers = 0;
  int slots = 0;
  int cores = 0;
  double memory = 0;
  std::string strategy;
  double timeout = 0;
  std::string output;
  std::string junit;
  std::string log_level = "INFO";
  std::string log_format = "text";
  tls_options tls;
};

std::string self_exe() {
  char buf[4096];
  auto n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0)
    return "alb";
  buf[n] = '\0';
  return buf;
}

/// Starts `args` as a child (a `process`: if `alb run` dies, it dies
/// too); its stdout goes to `out_fd` (-1 = inherit). It stays in this
/// process group so a Ctrl-C at the terminal reaches it as before.
process start_process(const std::vector<std::string>& args, int out_fd) {
  spawn_options o;
  o.argv = args;
  o.stdout_fd = out_fd;
  o.new_group = false;
  std::string error;
  auto p = process::spawn(o, error);
  if (!p.running())
    throw cluster_error{"cannot start " + args.front() + ": " + error};
  return p;
}

std::string make_token_file(std::string& dir) {
  char tmpl[] = "/tmp/alb-run-XXXXXX";
  if (!::mkdtemp(tmpl))
    throw cluster_error{std::string{"cannot create a temporary directory: "}
                        + std::strerror(errno)};
  dir = tmpl;
  auto path = dir + "/token";
  std::random_device rd;
  char token[65];
  for (int i = 0; i < 64; ++i)
    token[i] = "0123456789abcdef"[rd() % 16];
  token[64] = '\0';
  {
    std::ofstream out{path};
    out << token << "\n";
  }
  ::chmod(path.c_str(), 0600);
  return path;
}

int run_cluster(const run_cluster_flags& f) {
  // A node is one pool: --workers is the old spelling of --slots.
  if (f.workers > 0 && f.slots > 0 && f.workers != f.slots)
    throw cluster_error{"--workers " + std::to_string(f.workers)
                        + " and --slots " + std::to_string(f.slots)
                        + " disagree: a node is one pool of resources; give "
                          "--slots only"};
  auto slots = f.slots > 0 ? f.slots : f.workers;
  auto cfg = load_config(f.file);
  for (auto& w : cfg.warnings)
    std::cerr << "alb run: warning: " << w << "\n";
  auto tests = load_cluster_tests(f.file);
  // The coordinator, the nodes and the client all use the same material:
  // checked once here so bad files are one error before anything starts.
  auto tls = merge_tls(f.tls, cfg.tls);
  load_tls(tls, [](const std::string& w) {
    std::cerr << "alb run: warning: " << w << "\n";
  });
  std::vector<std::string> tls_args;
  if (tls.enabled()) {
    tls_args = {"--tls-cert", tls.certificate, "--tls-key",
                tls.key,      "--tls-ca",      tls.ca};
    if (!tls.passphrase_file.empty()) {
      tls_args.push_back("--tls-passphrase-file");
      tls_args.push_back(tls.passphrase_file);
    }
  }
  std::string tmpdir;
  auto token_file = cfg.cluster.token_file;
  if (token_file.empty())
    token_file = make_token_file(tmpdir);
  auto exe = self_exe();
  int pipefd[2];
  if (::pipe(pipefd) != 0)
    throw cluster_error{"pipe failed"};
  std::vector<std::string> cargs{exe,
                                 "coordinator",
                                 "--host",
                                 cfg.cluster.host,
                                 "--port",
                                 std::to_string(cfg.cluster.port),
                                 "--token-file",
                                 token_file,
                                 "--no-db"};
  auto strategy = f.strategy.empty() ? cfg.scheduler.strategy : f.strategy;
  cargs.push_back("--scheduler");
  cargs.push_back(strategy);
  cargs.insert(cargs.end(), tls_args.begin(), tls_args.end());
  // Its processes log as the run was asked to.
  std::vector<std::string> log_args{
    "--log-level", normalize_log_level(f.log_level, "--log-level"),
    "--log-format", f.log_format};
  cargs.insert(cargs.end(), log_args.begin(), log_args.end());
  auto coord = start_process(cargs, pipefd[1]);
  ::close(pipefd[1]);
  // Closed however this function ends.
  struct fd_closer {
    int fd;
    ~fd_closer() { ::close(fd); }
  } read_end{pipefd[0]};
  // The coordinator prints its bound port on its first line.
  std::string line;
  char c;
  while (::read(pipefd[0], &c, 1) == 1 && c != '\n')
    line += c;
  std::smatch m;
  if (!std::regex_search(line, m, std::regex{R"(listening on (\S+):(\d+))"})) {
    std::cerr << "alb run: error: the coordinator did not start\n";
    coord.kill_group(SIGTERM);
    coord.wait();
    return 1;
  }
  auto addr = m[1].str() + ":" + m[2].str();
  std::cout << line << std::endl;
  std::vector<process> nodes;
  for (int i = 0; i < f.nodes; ++i) {
    // --reconnect-timeout 0: they end with this run's coordinator.
    std::vector<std::string> nargs{exe,
                                   "node",
                                   "--coordinator",
                                   addr,
                                   "--token-file",
                                   token_file,
                                   "--name",
                                   "local-" + std::to_string(i),
                                   "--reconnect-timeout",
                                   "0"};
    nargs.insert(nargs.end(), tls_args.begin(), tls_args.end());
    nargs.insert(nargs.end(), log_args.begin(), log_args.end());
    if (slots > 0) {
      nargs.push_back("--slots");
      nargs.push_back(std::to_string(slots));
    }
    if (f.cores > 0) {
      nargs.push_back("--cores");
      nargs.push_back(std::to_string(f.cores));
    }
    if (f.memory > 0) {
      nargs.push_back("--memory");
      nargs.push_back(std::to_string(f.memory));
    }
    nodes.push_back(start_process(nargs, -1));
  }
  std::string token;
  int rc;
  try {
    token = read_token_file(token_file, nullptr);
    submit_settings set;
    set.coordinator = addr;
    set.token = token;
    set.tls = tls;
    set.timeout = f.timeout;
    set.output = f.output;
    set.junit = f.junit;
    set.suite_name = suite_name_of(f.file);
    set.format = parse_log_format(f.log_format, "--log-format");
    rc = submit_and_report(set, std::move(tests));
  } catch (...) {
    rc = 1;
  }
  coord.kill_group(SIGTERM);
  coord.wait();
  // The nodes stop when their coordinator goes away.
  for (auto& n : nodes)
    n.wait();
  if (!tmpdir.empty()) {
    ::unlink(token_file.c_str());
    ::rmdir(tmpdir.c_str());
  }
  return rc;
}

} // namespace

void add_run(CLI::App& app, int& rc) {
  auto f = std::make_shared<run_cluster_flags>();
  auto* cmd = app.add_subcommand(
    "run", "Run a TOML test suite on a cluster of local node processes");
  cmd->footer(
    "Starts `alb coordinator` with the file's [cluster] settings (a random\n"
    "join token when it names no token_file), --nodes `alb node` processes\n"
    "on this machine, submits the file's [[tests]] and prints one line per\n"
    "test. Remote nodes may join the same coordinator while it runs.\n"
    "The file is read strictly: an unknown key in [[tests]], a test with\n"
    "no command (unless simulate = true) or a timeout over 30 days is an\n"
    "error (exit 2) before anything starts.\n"
    "Each node is one pool of this machine's (or --cores/--memory's)\n"
    "resources with --slots tests at once (--workers is its old spelling).\n"
    "TLS: the file's [tls] section (cert, key, ca, passphrase_file) or the\n"
    "--tls-* flags; every process of the run uses that material.\n"
    "--log-level and --log-format apply to the coordinator and the nodes\n"
    "it starts; --output and --junit as for `alb submit`.\n"
    "Exit status: 0 all passed, 1 some failed, 2 bad input.\n\n"
    "Example: alb run configs/cluster_example.toml --output results.json");
  cmd->add_option("file", f->file, "Cluster TOML ([cluster], [[tests]])")
    ->required()
    ->check(CLI::ExistingFile);
  cmd->add_option("--nodes", f->nodes, "Local node processes to start")
    ->default_val(3)
    ->check(CLI::Range(0, 256));
  cmd
    ->add_option("--slots", f->slots,
                 "Tests each node runs at once (default: its cores)")
    ->check(CLI::Range(1, 100000));
  cmd
    ->add_option("--workers", f->workers,
                 "Old spelling of --slots (a node is one pool)")
    ->check(CLI::Range(1, 100000));
  cmd->add_option("--cores", f->cores, "Cores per node (default: detected)")
    ->check(CLI::Range(1, 100000));
  cmd->add_option("--memory", f->memory, "GB per node (default: detected)")
    ->check(CLI::Range(0.0, 1e6));
  cmd->add_option("--scheduler", f->strategy,
                  "Placement strategy (default [scheduler] strategy, "
                    + default_strategy_note() + ")");
  cmd
    ->add_option("--timeout", f->timeout,
                 "Give up after this many seconds (0 = wait for all)")
    ->check(CLI::Range(0.0, 1e7));
  cmd->add_option("--output", f->output,
                  "Write the outcomes to this JSON file (- = stdout)");
  cmd->add_option("--junit", f->junit,
                  "Write the outcomes as JUnit XML to this file");
  add_log_flags(cmd, &f->log_level, f->log_format);
  add_tls_flags(cmd, f->tls);
  cmd->callback([f, &rc] {
    rc = guarded("run", [f] {
      try {
        return run_cluster(*f);
      } catch (const cluster_error& e) {
        std::cerr << "alb run: error: " << e.what() << "\n";
        return 2;
      }
    });
  });
}

} // namespace alb::cli
