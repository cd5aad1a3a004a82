// `alb cancel`: cancels tests this user submitted. Also holds the
// connection flags the client commands share (bin/cluster_cli.hpp).

#include "bin/commands.hpp"

#include <iostream>
#include <memory>

#include <CLI/CLI.hpp>

#include <nlohmann/json.hpp>

#include "actors/coordinator_client.hpp"
#include "actors/node.hpp"
#include "bin/cluster_cli.hpp"
#include "bin/common.hpp"

namespace alb::cli {

void add_client_flags(CLI::App* cmd, client_flags& f) {
  cmd
    ->add_option("--coordinator", f.coordinator, "HOST:PORT or alb://HOST:PORT")
    ->required();
  cmd->add_option("--token-file", f.token_file,
                  "File holding the coordinator's join token");
  cmd->add_option("--client-key", f.client_key,
                  "File holding this user's client key (made if missing; "
                  "default $ALB_CLIENT_KEY_FILE, else "
                  "~/.config/alb/client.key): who may cancel a test or read "
                  "a run");
  cmd
    ->add_option("--connect-timeout", f.connect_timeout,
                 "Seconds to keep trying to reach the coordinator")
    ->default_val(10)
    ->check(CLI::Range(0.0, 86400.0));
  add_tls_flags(cmd, f.tls);
}

coordinator_client_options client_options(const client_flags& f,
                                          const char* who) {
  parse_coordinator_url(f.coordinator);
  if (auto err = check_tls_options(f.tls); !err.empty())
    throw cluster_error{err};
  coordinator_client_options o;
  o.endpoint = f.coordinator;
  o.tls = f.tls;
  o.connect_timeout = f.connect_timeout;
  if (!f.token_file.empty()) {
    std::string warning;
    o.token = read_token_file(f.token_file, &warning);
    if (!warning.empty())
      std::cerr << "alb " << who << ": warning: " << warning << "\n";
  }
  o.owner_key = read_client_key(f.client_key.empty() ? default_client_key_path()
                                                     : f.client_key);
  return o;
}

namespace {

struct cancel_flags {
  client_flags conn;
  std::vector<std::string> ids;
  bool all_mine = false;
  bool json = false;
};

std::string joined(const std::vector<std::string>& ids) {
  std::string s;
  for (auto& id : ids)
    s += (s.empty() ? "" : ", ") + id;
  return s;
}

int run_cancel(const cancel_flags& f) {
  if (f.ids.empty() == !f.all_mine) {
    std::cerr << "alb cancel: error: name the tests to cancel or pass "
                 "--all-mine (not both)\n";
    return 2;
  }
  coordinator_client_options o;
  try {
    o = client_options(f.conn, "cancel");
  } catch (const cluster_error& e) {
    std::cerr << "alb cancel: error: " << e.what() << "\n";
    return 2;
  }
  coordinator_client client{o};
  cancel_result r;
  try {
    client.connect();
    for (auto& w : client.warnings())
      std::cerr << "alb cancel: warning: " << w << "\n";
    r = f.all_mine ? client.cancel_all_mine() : client.cancel_tests(f.ids);
  } catch (const coordinator_client_error& e) {
    std::cerr << "alb cancel: error: " << e.what() << "\n";
    return exit_status(e.code());
  }
  client.close();
  if (f.json) {
    nlohmann::json doc = {{"cancelled", r.cancelled},
                          {"refused", r.refused},
                          {"unknown", r.unknown}};
    std::cout << doc.dump(2) << "\n";
  } else {
    std::cout << "cancelled " << r.cancelled.size() << " tests"
              << (r.cancelled.empty() ? "" : ": " + joined(r.cancelled))
              << "\n";
    if (!r.refused.empty())
      std::cout << "refused " << r.refused.size()
                << " (submitted by another client): " << joined(r.refused)
                << "\n";
    if (!r.unknown.empty())
      std::cout << "not open (unknown or ended already) " << r.unknown.size()
                << ": " << joined(r.unknown) << "\n";
  }
  return r.refused.empty() && r.unknown.empty() ? 0 : 1;
}

} // namespace

void add_cancel(CLI::App& app, int& rc) {
  auto f = std::make_shared<cancel_flags>();
  auto* cmd = app.add_subcommand(
    "cancel", "Cancel tests you submitted (queued: dropped; running: killed)");
  cmd->footer(
    "Each cancelled test ends exactly once, as 'cancelled': in the\n"
    "coordinator's journal, in the outcomes of the `alb submit` waiting for\n"
    "it and in alb_tests_cancelled_total. A queued test is dropped; a\n"
    "running one is killed on its node with every process it started.\n"
    "Only tests submitted with the same client key (--client-key; the\n"
    "default file is per user) can be cancelled: another client's are\n"
    "refused and left alone (the coordinator logs the refusal). A client\n"
    "with the operator token (--token-file naming the coordinator's\n"
    "--operator-token-file) may cancel any test by id; its --all-mine means\n"
    "the tests of its own key.\n"
    "Exit status: 0 every named test cancelled, 1 some were refused or not\n"
    "open (unknown or ended), 2 bad input, refused or unreachable.\n\n"
    "Examples: alb cancel --coordinator 127.0.0.1:8080 --token-file "
    "~/.alb-token t1 t2\n"
    "          alb cancel --coordinator 127.0.0.1:8080 --all-mine --json");
  add_client_flags(cmd, f->conn);
  cmd->add_option("ids", f->ids, "Ids of the tests to cancel");
  cmd->add_flag("--all-mine", f->all_mine,
                "Cancel every open test submitted with this client key");
  cmd->add_flag("--json", f->json,
                "Print {cancelled, refused, unknown} as JSON");
  cmd->callback(
    [f, &rc] { rc = guarded("cancel", [f] { return run_cancel(*f); }); });
}

} // namespace alb::cli
