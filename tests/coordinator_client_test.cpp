// The client API (alb::coordinator_client) against a real coordinator:
// the coordinator is published on 127.0.0.1 at a free port in one actor
// system, a node's real workers join it from a second one, and the client
// (its own actor system, as in an external program) connects over TCP,
// submits shell commands and collects how they ended. The same over TLS
// with certificates made by the `openssl` command for each run, behind the
// guard in its TLS mode; and every kind of bad TLS file is one clear error.

#define BOOST_TEST_MODULE coordinator_client
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/after.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <nlohmann/json.hpp>

#include "actors/basp_guard.hpp"
#include "actors/cluster_net.hpp"
#include "actors/coordinator.hpp"
#include "actors/coordinator_client.hpp"
#include "actors/node.hpp"
#include "actors/outcome_codec.hpp"
#include "actors/real_worker.hpp"
#include "actors/system.hpp"
#include "actors/tls.hpp"

using namespace alb;
namespace fs = std::filesystem;

namespace {

const std::string token = "client-test-token";

/// A throwaway CA and certificates signed by it, made with the openssl
/// command in a temporary directory.
struct certs {
  fs::path dir;

  certs() {
    dir = fs::temp_directory_path()
          / ("alb-client-test-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    auto d = dir.string();
    auto key = [&](const std::string& name) {
      return "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 "
             "-out "
             + d + "/" + name + ".key 2>/dev/null";
    };
    std::string script = key("ca") + " && openssl req -x509 -new -key " + d
                         + "/ca.key -out " + d
                         + "/ca.pem -days 2 -subj /CN=alb-test-ca 2>/dev/null";
    for (auto name : {"coord", "node", "client"})
      script += " && " + key(name) + " && openssl req -new -key " + d + "/"
                + name + ".key -out " + d + "/" + name + ".csr -subj /CN="
                + name + " 2>/dev/null && openssl x509 -req -in " + d + "/"
                + name + ".csr -CA " + d + "/ca.pem -CAkey " + d
                + "/ca.key -CAcreateserial -out " + d + "/" + name
                + ".pem -days 2 2>/dev/null";
    // Another CA's certificate, an encrypted key and an expired certificate
    // for the bad-input cases.
    script += " && " + key("other") + " && openssl req -x509 -new -key " + d
              + "/other.key -out " + d
              + "/other.pem -days 2 -subj /CN=other 2>/dev/null";
    script += " && openssl pkey -in " + d + "/client.key -aes256 -passout "
              + "pass:sesame -out " + d + "/encrypted.key 2>/dev/null";
    script += " && openssl x509 -req -in " + d + "/client.csr -CA " + d
              + "/ca.pem -CAkey " + d + "/ca.key -CAcreateserial -out " + d
              + "/expired.pem -days -1 2>/dev/null";
    // Keys readable by others draw a warning; these are private.
    script += " && chmod 600 " + d + "/*.key";
    BOOST_REQUIRE_MESSAGE(std::system(script.c_str()) == 0,
                          "openssl could not make the test certificates");
    write("passphrase", "sesame\n");
    write("wrong-passphrase", "open\n");
    write("garbage.pem", "this is not PEM\n");
  }

  ~certs() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }

  void write(const std::string& name, const std::string& text) const {
    std::ofstream out{dir / name};
    out << text;
  }

  std::string path(const std::string& name) const {
    return (dir / name).string();
  }

  tls_options tls(const std::string& who) const {
    return tls_options{path(who + ".pem"), path(who + ".key"), path("ca.pem"),
                       ""};
  }
};

/// A coordinator (system a) with a node of two real workers (system b),
/// over plain TCP or TLS; with TLS a guard in its TLS mode owns the public
/// port, as in `alb coordinator`.
struct cluster {
  std::unique_ptr<tls_material> tls_a;
  std::unique_ptr<tls_material> tls_b;
  caf::actor_system_config cfg_a;
  caf::actor_system_config cfg_b;
  std::unique_ptr<caf::actor_system> a;
  std::unique_ptr<caf::actor_system> b;
  std::unique_ptr<basp_guard> guard;
  coordinator_actor coord;
  uint16_t port = 0;
  /// Refusal lines of the guard (written on its thread).
  struct lines {
    std::mutex mtx;
    std::vector<std::string> items;
  };
  std::shared_ptr<lines> refusals = std::make_shared<lines>();

  /// With `c`: TLS; with `guarded` (or TLS): a guard owns the public port,
  /// with a handshake deadline of `deadline` seconds.
  explicit cluster(const certs* c = nullptr, bool guarded = false,
                   double deadline = 10) {
    if (c) {
      tls_a = std::make_unique<tls_material>(c->tls("coord"));
      tls_b = std::make_unique<tls_material>(c->tls("node"));
    }
    configure_system(cfg_a, 2, false);
    configure_system(cfg_b, 2, false);
    load_network(cfg_a, tls_a.get());
    load_network(cfg_b, tls_b.get());
    a = std::make_unique<caf::actor_system>(cfg_a);
    b = std::make_unique<caf::actor_system>(cfg_b);
    coordinator_options o;
    o.token = token;
    // As in `alb coordinator`: an accepted hello or join ends the guard's
    // handshake deadline (the guard exists before any peer connects).
    o.on_admitted = [this](const std::string&, uint16_t relay) {
      if (guard)
        guard->admit(relay);
    };
    coord = spawn_coordinator(*a, std::move(o));
    auto p = publish_on_loopback(*a, coord);
    BOOST_REQUIRE(p);
    port = *p;
    if (c || guarded) {
      basp_guard_options g;
      g.upstream_port = port;
      g.tls = c != nullptr;
      g.handshake_timeout = deadline;
      g.on_refused = [r = refusals](const std::string& line) {
        std::lock_guard<std::mutex> lock{r->mtx};
        r->items.push_back(line);
      };
      guard = std::make_unique<basp_guard>(g);
      port = guard->port();
    }
    auto h
      = connect_coordinator(*b, "127.0.0.1", port, std::chrono::seconds(10));
    BOOST_REQUIRE(h);
    for (int i = 0; i < 2; ++i) {
      real_worker_options w;
      w.caps.worker_id = "node-b/w" + std::to_string(i);
      w.caps.cpu_cores = 1;
      w.caps.available_memory = 2;
      w.coordinator = *h;
      w.token = token;
      w.node = "node-b";
      spawn_real_worker(*b, scheduler_actor{}, std::move(w));
    }
  }

  ~cluster() {
    stop_coordinator(*a, coord);
    coord = nullptr;
    b.reset();
    a.reset();
    guard.reset();
  }

  /// Whether the guard logged a refusal containing `what`.
  bool refused(const std::string& what) {
    std::lock_guard<std::mutex> lock{refusals->mtx};
    for (auto& l : refusals->items)
      if (l.find(what) != std::string::npos)
        return true;
    return false;
  }

  coordinator_client_options client_options(const std::string& tok
                                            = token) const {
    coordinator_client_options o;
    o.endpoint = "alb://127.0.0.1:" + std::to_string(port);
    o.token = tok;
    o.connect_timeout = 5;
    return o;
  }
};

cluster_test shell(const std::string& id, const std::string& script) {
  cluster_test t;
  t.req.test_id = id;
  t.command = {"sh", "-c", script};
  return t;
}

std::map<std::string, cluster_outcome>
by_id(const std::vector<cluster_outcome>& xs) {
  std::map<std::string, cluster_outcome> out;
  for (auto& x : xs)
    out[x.test_id] = x;
  return out;
}

// Runs `f` and returns the message and code of the coordinator_client_error
// it throws (fails the test when it throws none).
template<class F>
std::pair<std::string, client_errc> client_error_of(F f) {
  try {
    f();
  } catch (const coordinator_client_error& e) {
    return {e.what(), e.code()};
  }
  BOOST_FAIL("no coordinator_client_error thrown");
  return {};
}

// The coordinator's code (alb::ec) in the coordinator_client_error `f`
// throws.
template<class F>
ec reason_of(F f) {
  try {
    f();
  } catch (const coordinator_client_error& e) {
    return e.reason();
  }
  BOOST_FAIL("no coordinator_client_error thrown");
  return ec::none;
}

std::string tls_error_of(const tls_options& o) {
  try {
    tls_material m{o};
  } catch (const cluster_error& e) {
    return e.what();
  }
  return "(no error)";
}

} // namespace

BOOST_AUTO_TEST_SUITE(plain_tcp)

BOOST_AUTO_TEST_CASE(submit_then_wait_returns_every_outcome) {
  cluster c;
  coordinator_client client{c.client_options()};
  client.connect();
  BOOST_TEST(client.connected());
  BOOST_TEST(!client.uses_tls());
  std::vector<cluster_test> tests{shell("ok", "echo hello-from-ok"),
                                  shell("exit3", "echo bad >&2; exit 3"),
                                  shell("env", "echo \"v=$ALB_V\"")};
  tests[2].env = {{"ALB_V", "42"}};
  BOOST_TEST(client.submit(std::move(tests)) == 3u);
  auto r = client.wait(60);
  BOOST_TEST(r.complete());
  BOOST_TEST(!r.disconnected);
  BOOST_REQUIRE_EQUAL(r.outcomes.size(), 3u);
  auto got = by_id(r.outcomes);
  BOOST_TEST(got["ok"].success);
  BOOST_TEST(got["ok"].status == "completed");
  BOOST_TEST(got["ok"].output_tail.find("hello-from-ok") != std::string::npos);
  BOOST_TEST(!got["exit3"].success);
  BOOST_TEST(got["exit3"].exit_code == 3);
  BOOST_TEST(got["env"].output_tail.find("v=42") != std::string::npos);
  BOOST_TEST(got["ok"].worker_id.rfind("node-b/w", 0) == 0u);
  // A second wait returns nothing new and does not block.
  auto again = client.wait(0);
  BOOST_TEST(again.outcomes.empty());
  BOOST_TEST(again.complete());
  client.close();
  BOOST_TEST(!client.connected());
}

BOOST_AUTO_TEST_CASE(callback_receives_each_outcome_once) {
  cluster c;
  coordinator_client client{c.client_options()};
  std::mutex mtx;
  std::vector<std::string> seen;
  client.on_outcome([&](const cluster_outcome& o) {
    std::lock_guard<std::mutex> g{mtx};
    seen.push_back(o.test_id + ":" + (o.success ? "pass" : "fail"));
  });
  client.connect();
  std::vector<cluster_test> tests;
  for (int i = 0; i < 5; ++i)
    tests.push_back(
      shell("t" + std::to_string(i), "exit " + std::to_string(i % 2)));
  BOOST_TEST(client.submit(std::move(tests)) == 5u);
  auto r = client.wait(60);
  BOOST_TEST(r.complete());
  BOOST_TEST(r.outcomes.empty()); // they went to the callback
  std::lock_guard<std::mutex> g{mtx};
  std::sort(seen.begin(), seen.end());
  BOOST_TEST(seen
               == (std::vector<std::string>{"t0:pass", "t1:fail", "t2:pass",
                                            "t3:fail", "t4:pass"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(wait_returns_only_after_the_callback_had_every_outcome) {
  cluster c;
  coordinator_client client{c.client_options()};
  std::promise<void> in_callback;
  std::atomic<int> handled{0};
  client.on_outcome([&](const cluster_outcome&) {
    in_callback.set_value();
    // A slow consumer (a file, a terminal): wait() is called meanwhile and
    // must not return before this outcome is handled.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ++handled;
  });
  client.connect();
  BOOST_TEST(client.submit({shell("slow-consumer", "true")}) == 1u);
  in_callback.get_future().wait();
  auto r = client.wait(60);
  BOOST_TEST(r.complete());
  BOOST_TEST(handled.load() == 1);
}

BOOST_AUTO_TEST_CASE(invalid_requirements_come_back_as_failed_outcomes) {
  cluster c;
  coordinator_client client{c.client_options()};
  client.connect();
  auto bad = shell("bad-priority", "true");
  bad.req.priority = 9;
  BOOST_TEST(client.submit({bad, shell("fine", "true")}) == 2u);
  auto r = client.wait(60);
  BOOST_TEST(r.complete());
  auto got = by_id(r.outcomes);
  BOOST_TEST(got["fine"].success);
  BOOST_TEST(!got["bad-priority"].success);
  BOOST_TEST(got["bad-priority"].error.find("priority") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(results_without_a_journal_is_the_no_journal_code) {
  cluster c; // keeps no journal
  coordinator_client client{c.client_options()};
  client.connect();
  try {
    client.results();
    BOOST_FAIL("results answered without a journal");
  } catch (const coordinator_client_error& e) {
    BOOST_TEST((e.reason() == ec::no_journal));
    BOOST_TEST((e.code() == client_errc::bad_input));
    BOOST_TEST((exit_status(e.code()) == 2));
  }
}

BOOST_AUTO_TEST_CASE(stats_is_the_coordinators_json) {
  cluster c;
  coordinator_client client{c.client_options()};
  client.connect();
  // The node's workers join asynchronously.
  nlohmann::json j;
  for (int i = 0; i < 100; ++i) {
    j = nlohmann::json::parse(client.stats());
    if (j["nodes"].contains("node-b") && j["nodes"]["node-b"]["workers"] == 2)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  BOOST_TEST(j["nodes"]["node-b"]["workers"].get<int>() == 2);
  BOOST_TEST(j["open_tests"].get<int>() == 0);
}

BOOST_AUTO_TEST_CASE(wrong_or_missing_token_is_refused) {
  cluster c;
  // The token opens the session: without it there is nothing to submit to.
  coordinator_client wrong{c.client_options("not-the-token")};
  auto [what, code] = client_error_of([&] { wrong.connect(); });
  BOOST_TEST((code == client_errc::refused));
  BOOST_TEST(what.find("wrong join token") != std::string::npos, what);
  BOOST_TEST(!wrong.connected());
  auto [what1, code1]
    = client_error_of([&] { wrong.submit({shell("x", "true")}); });
  BOOST_TEST((code1 == client_errc::not_connected), what1);
  BOOST_TEST(wrong.open() == 0u);
  coordinator_client none{c.client_options("")};
  auto [what2, code2] = client_error_of([&] { none.connect(); });
  BOOST_TEST((code2 == client_errc::refused));
  BOOST_TEST(what2.find("no join token") != std::string::npos, what2);
  // Told apart by the coordinator's code, not the text.
  coordinator_client wrong2{c.client_options("not-the-token")};
  BOOST_TEST((reason_of([&] { wrong2.connect(); }) == ec::wrong_token));
  coordinator_client none2{c.client_options("")};
  BOOST_TEST((reason_of([&] { none2.connect(); }) == ec::no_token));
  // Not connected is the client's own error: no code from the coordinator.
  BOOST_TEST((reason_of([&] { none2.stats(); }) == ec::none));
}

// A submission larger than the guard relays (it would drop the connection
// and the client would wait for an answer until its request timeout) is
// refused by the client at once, naming the limit and the largest test.
BOOST_AUTO_TEST_CASE(oversized_submissions_are_refused_at_once) {
  cluster c{nullptr, true};
  auto o = c.client_options();
  o.request_timeout = 30;
  coordinator_client client{o};
  client.connect();
  auto big = shell("huge-env", "true");
  big.env = {{"BLOB", std::string(70u << 20, 'x')}};
  auto t0 = std::chrono::steady_clock::now();
  auto [what, code] = client_error_of([&] { client.submit({big}); });
  BOOST_TEST((code == client_errc::bad_input), what);
  BOOST_TEST(what.find("test 'huge-env' alone is 70.0 MB") == 0u, what);
  BOOST_TEST(what.find("limit of 64.0 MB per submission") != std::string::npos,
             what);
  // Many tests, none too large alone.
  std::vector<cluster_test> many;
  for (int i = 0; i < 70; ++i) {
    many.push_back(shell("part-" + std::to_string(i), "true"));
    many.back().env = {{"BLOB", std::string(1u << 20, 'y')}};
  }
  auto [what2, code2] = client_error_of([&] { client.submit(many); });
  BOOST_TEST((code2 == client_errc::bad_input), what2);
  BOOST_TEST(what2.find("submission of 70 tests is 70.0 MB") == 0u, what2);
  BOOST_TEST(what2.find("submit fewer tests at a time") != std::string::npos,
             what2);
  BOOST_TEST(
    (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10)));
  // Nothing was sent: the connection is fine, and a large submission under
  // the limit gets through the guard (its frames wait for the hello's
  // admission if they arrive before it).
  BOOST_TEST(client.connected());
  BOOST_TEST(client.submit({shell("small", "echo fine")}) == 1u);
  auto r = client.wait(60);
  BOOST_TEST(r.complete());
  BOOST_REQUIRE_EQUAL(r.outcomes.size(), 1u);
  BOOST_TEST(r.outcomes[0].success);
}

// A fresh client whose big submission follows its hello at once: the
// guard holds the large frame until the coordinator admits the hello (it
// does not refuse it, and CAF does not see the size before admission).
BOOST_AUTO_TEST_CASE(a_big_submission_right_after_the_hello_gets_through) {
  cluster c{nullptr, true};
  for (int round = 0; round < 3; ++round) {
    coordinator_client client{c.client_options()};
    client.connect();
    // 8 MB in all; each environment stays under the kernel's 128 KiB per
    // string.
    std::vector<cluster_test> tests;
    for (int i = 0; i < 80; ++i) {
      tests.push_back(
        shell("big-" + std::to_string(round) + "-" + std::to_string(i),
              "echo \"${#BLOB}\""));
      tests.back().env = {{"BLOB", std::string(100000, 'z')}};
    }
    BOOST_TEST(client.submit(tests) == 80u);
    auto r = client.wait(60);
    BOOST_REQUIRE(r.complete());
    BOOST_REQUIRE_EQUAL(r.outcomes.size(), 80u);
    BOOST_TEST(r.outcomes[0].output_tail.find("100000") != std::string::npos);
  }
}

// The guard's deadline covers the whole handshake: a peer that completes
// CAF's handshake and then never says hello is closed once it is over (it
// used to stay forever once its first header had arrived); a member whose
// hello was accepted stays however long it is idle.
BOOST_AUTO_TEST_CASE(the_guard_closes_a_peer_that_never_says_hello) {
  cluster c{nullptr, true, 1.0};
  coordinator_client client{c.client_options()};
  client.connect();
  caf::actor_system_config cfg;
  configure_system(cfg, 1, false);
  load_network(cfg, nullptr);
  caf::actor_system sys{cfg};
  auto t0 = std::chrono::steady_clock::now();
  auto h
    = connect_coordinator(sys, "127.0.0.1", c.port, std::chrono::seconds(5));
  BOOST_REQUIRE(h);
  bool down = false;
  {
    caf::scoped_actor self{sys};
    self->monitor(*h);
    self->receive([&](caf::down_msg&) { down = true; },
                  caf::after(std::chrono::seconds(10)) >> [] {});
  }
  auto took
    = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
        .count();
  BOOST_TEST(down, "the silent peer was not disconnected");
  BOOST_TEST(took >= 0.9);
  BOOST_TEST(took < 4.0);
  BOOST_TEST(c.refused("no join or hello with the token within 1 s"));
  // The member, idle for longer than the deadline, is still served.
  BOOST_TEST(client.connected());
  BOOST_TEST(client.submit({shell("late", "echo still-here")}) == 1u);
  auto r = client.wait(60);
  BOOST_REQUIRE(r.complete());
  BOOST_TEST(r.outcomes.at(0).output_tail.find("still-here")
             != std::string::npos);
}

BOOST_AUTO_TEST_CASE(bad_endpoints_and_closed_ports_are_clear_errors) {
  for (auto ep : {"nohost", "http://127.0.0.1:80", "alb://127.0.0.1:0",
                  "127.0.0.1:99999", "alb://h:1/path"}) {
    coordinator_client_options o;
    o.endpoint = ep;
    coordinator_client client{o};
    auto [what, code] = client_error_of([&] { client.connect(); });
    BOOST_TEST((code == client_errc::bad_input), ep << ": " << what);
  }
  // A port nobody listens on: bind one, note it, close it.
  uint16_t port;
  {
    basp_guard_options g;
    g.upstream_port = 1;
    basp_guard tmp{g};
    port = tmp.port();
  }
  coordinator_client_options o;
  o.endpoint = "127.0.0.1:" + std::to_string(port);
  o.connect_timeout = 0.5;
  coordinator_client client{o};
  auto t0 = std::chrono::steady_clock::now();
  auto [what, code] = client_error_of([&] { client.connect(); });
  BOOST_TEST((code == client_errc::unreachable), what);
  BOOST_TEST(what.find("cannot reach coordinator at 127.0.0.1:") == 0u, what);
  BOOST_TEST((std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5)));
  auto [what2, code2]
    = client_error_of([&] { client.submit({shell("x", "true")}); });
  BOOST_TEST((code2 == client_errc::not_connected), what2);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(tls)

BOOST_AUTO_TEST_CASE(tls_cluster_runs_tests_behind_the_guard) {
  certs pki;
  cluster c{&pki};
  auto o = c.client_options();
  o.tls = pki.tls("client");
  coordinator_client client{o};
  client.connect();
  BOOST_TEST(client.uses_tls());
  BOOST_TEST(client.warnings().empty());
  BOOST_TEST(client.submit(
               {shell("over-tls", "echo secret-ok"), shell("fails", "exit 7")})
             == 2u);
  auto r = client.wait(60);
  BOOST_TEST(r.complete());
  auto got = by_id(r.outcomes);
  BOOST_TEST(got["over-tls"].success);
  BOOST_TEST(got["over-tls"].output_tail.find("secret-ok")
             != std::string::npos);
  BOOST_TEST(got["fails"].exit_code == 7);
}

BOOST_AUTO_TEST_CASE(plain_and_foreign_clients_cannot_reach_a_tls_coordinator) {
  certs pki;
  cluster c{&pki};
  // No TLS at all: the guard drops the plain handshake at once.
  auto o = c.client_options();
  o.connect_timeout = 1;
  coordinator_client plain{o};
  auto [what, code] = client_error_of([&] { plain.connect(); });
  BOOST_TEST((code == client_errc::unreachable), what);
  BOOST_TEST(what.find("--tls-cert") != std::string::npos, what);
  // A certificate from another CA: the coordinator refuses the handshake.
  o.tls
    = {pki.path("other.pem"), pki.path("other.key"), pki.path("ca.pem"), ""};
  coordinator_client foreign{o};
  auto [what2, code2] = client_error_of([&] { foreign.connect(); });
  BOOST_TEST((code2 == client_errc::unreachable), what2);
  // And the coordinator still serves its members afterwards, on the same
  // network thread that saw the failed handshakes (CAF 0.17.6 would have
  // let their leftover OpenSSL errors cut members off: see actors/tls.cpp).
  auto good = c.client_options();
  good.tls = pki.tls("client");
  coordinator_client member{good};
  member.connect();
  BOOST_TEST(member.submit({shell("after", "true")}) == 1u);
  auto r = member.wait(60);
  BOOST_TEST(r.complete());
  BOOST_REQUIRE_EQUAL(r.outcomes.size(), 1u);
  BOOST_TEST(r.outcomes[0].success);
}

BOOST_AUTO_TEST_CASE(encrypted_key_works_with_its_passphrase_file) {
  certs pki;
  tls_options o{pki.path("client.pem"), pki.path("encrypted.key"),
                pki.path("ca.pem"), pki.path("passphrase")};
  tls_material m{o};
  BOOST_TEST(m.passphrase() == "sesame");
  BOOST_TEST(m.subject() == "CN=client");
}

BOOST_AUTO_TEST_CASE(bad_tls_files_are_one_clear_error_each) {
  certs pki;
  auto base = pki.tls("client");
  auto with = [&](auto change) {
    auto o = base;
    change(o);
    return tls_error_of(o);
  };
  struct row {
    std::string expect;
    std::string got;
  };
  std::vector<row> rows{
    {"missing: key (--tls-key)", with([](tls_options& o) { o.key.clear(); })},
    {"cannot read TLS certificate '" + pki.path("nope.pem")
       + "': No such file or directory",
     with([&](tls_options& o) { o.certificate = pki.path("nope.pem"); })},
    {"TLS certificate '" + pki.path("garbage.pem")
       + "' holds no PEM certificate",
     with([&](tls_options& o) { o.certificate = pki.path("garbage.pem"); })},
    {"TLS CA '" + pki.path("garbage.pem") + "' holds no PEM certificate",
     with([&](tls_options& o) { o.ca = pki.path("garbage.pem"); })},
    {"TLS key '" + pki.path("node.key") + "' does not belong to certificate",
     with([&](tls_options& o) { o.key = pki.path("node.key"); })},
    {"TLS key '" + pki.path("encrypted.key")
       + "' is encrypted and no passphrase file is given",
     with([&](tls_options& o) { o.key = pki.path("encrypted.key"); })},
    {"cannot decrypt TLS key '" + pki.path("encrypted.key") + "'",
     with([&](tls_options& o) {
       o.key = pki.path("encrypted.key");
       o.passphrase_file = pki.path("wrong-passphrase");
     })},
    {"TLS certificate '" + pki.path("expired.pem") + "' expired",
     with([&](tls_options& o) { o.certificate = pki.path("expired.pem"); })},
    {"is not a regular file",
     with([&](tls_options& o) { o.ca = pki.dir.string(); })},
  };
  for (auto& r : rows) {
    BOOST_TEST(r.got.find(r.expect) != std::string::npos,
               "expected '" << r.expect << "' in '" << r.got << "'");
    BOOST_TEST(r.got.find('\n') == std::string::npos);
  }
  // A certificate of another CA loads, with a warning that peers trusting
  // the given CA will refuse it.
  tls_material m{tls_options{pki.path("other.pem"), pki.path("other.key"),
                             pki.path("ca.pem"), ""}};
  BOOST_REQUIRE_EQUAL(m.warnings().size(), 1u);
  BOOST_TEST(m.warnings()[0].find("does not verify against CA")
             != std::string::npos);
  // The client reports the same problems as bad input before connecting.
  coordinator_client_options co;
  co.endpoint = "127.0.0.1:1";
  co.tls = base;
  co.tls.key = pki.path("node.key");
  coordinator_client client{co};
  auto [what, code] = client_error_of([&] { client.connect(); });
  BOOST_TEST((code == client_errc::bad_input), what);
}

BOOST_AUTO_TEST_SUITE_END()

// -- the packed wire form of outcome batches ---------------------------------

namespace {

cluster_outcome full_outcome(int i) {
  cluster_outcome c;
  c.test_id = "t-" + std::to_string(i);
  c.status = i % 2 ? "failed" : "completed";
  c.success = i % 2 == 0;
  c.timed_out = i % 3 == 0;
  c.exit_code = 100 + i;
  c.signal = i % 7;
  c.exec_seconds = 1.25 * i;
  c.attempts = i + 1;
  c.migrated = i + 2;
  c.stolen = i + 3;
  c.worker_id = "node-" + std::to_string(i) + "/w0";
  c.error = i % 2 ? "exit status 3" : "";
  c.output_tail = std::string(static_cast<size_t>(i) * 50, 'x') + '\0' + "end";
  c.node = "node-" + std::to_string(i);
  c.submitted_at = 1.7e9 + i;
  c.started_at = 1.7e9 + i + 0.5;
  c.ended_at = 1.7e9 + i + 0.75;
  c.stderr_tail = "err " + std::to_string(i);
  c.speculated = i % 2 == 1;
  c.speculation_won = i % 4 == 1;
  return c;
}

bool same(const cluster_outcome& a, const cluster_outcome& b) {
  return a.test_id == b.test_id && a.status == b.status
         && a.success == b.success && a.timed_out == b.timed_out
         && a.exit_code == b.exit_code && a.signal == b.signal
         && a.exec_seconds == b.exec_seconds && a.attempts == b.attempts
         && a.migrated == b.migrated && a.stolen == b.stolen
         && a.worker_id == b.worker_id && a.error == b.error
         && a.output_tail == b.output_tail && a.node == b.node
         && a.submitted_at == b.submitted_at && a.started_at == b.started_at
         && a.ended_at == b.ended_at && a.stderr_tail == b.stderr_tail
         && a.speculated == b.speculated
         && a.speculation_won == b.speculation_won;
}

} // namespace

BOOST_AUTO_TEST_CASE(an_outcome_batch_crosses_the_wire_field_for_field) {
  // Through CAF's own binary serializer and deserializer, as BASP does.
  outcome_batch in;
  for (int i = 0; i < 5; ++i)
    in.items.push_back(full_outcome(i));
  std::vector<char> buf;
  caf::binary_serializer sink{nullptr, buf};
  BOOST_REQUIRE(!sink(in));
  outcome_batch out;
  out.items.push_back(full_outcome(99));
  caf::binary_deserializer source{nullptr, buf};
  BOOST_REQUIRE(!source(out));
  BOOST_REQUIRE(out.items.size() == in.items.size());
  for (size_t i = 0; i < in.items.size(); ++i)
    BOOST_TEST(same(in.items[i], out.items[i]));
  // An empty batch too.
  buf.clear();
  outcome_batch none;
  caf::binary_serializer sink2{nullptr, buf};
  BOOST_REQUIRE(!sink2(none));
  caf::binary_deserializer source2{nullptr, buf};
  BOOST_REQUIRE(!source2(out));
  BOOST_TEST(out.items.empty());
}

BOOST_AUTO_TEST_CASE(a_malformed_packed_outcome_batch_is_refused) {
  std::vector<cluster_outcome> items{full_outcome(1), full_outcome(2)};
  std::string good;
  pack_outcomes(items, good);
  std::vector<cluster_outcome> got;
  BOOST_REQUIRE(unpack_outcomes(good, got));
  BOOST_TEST(got.size() == 2u);
  // Cut short anywhere: refused, nothing half-read is kept.
  for (size_t n = 0; n < good.size(); ++n) {
    got = items;
    BOOST_TEST(!unpack_outcomes(good.substr(0, n), got));
    BOOST_TEST(got.empty());
  }
  // Bytes left over.
  BOOST_TEST(!unpack_outcomes(good + "x", got));
  // Another layout.
  auto other = good;
  other[0] = static_cast<char>(good[0] + 1);
  BOOST_TEST(!unpack_outcomes(other, got));
  // A count far beyond what the bytes could hold (no huge reservation).
  auto huge = good;
  huge[1] = huge[2] = huge[3] = huge[4] = '\xff';
  BOOST_TEST(!unpack_outcomes(huge, got));
  // A string length beyond the end.
  auto long_str = good;
  long_str[5] = long_str[6] = long_str[7] = '\x7f';
  BOOST_TEST(!unpack_outcomes(long_str, got));
  // A flag that is neither 0 nor 1: the success byte follows the two
  // strings.
  auto flag = good;
  size_t at = 5 + 4 + items[0].test_id.size() + 4 + items[0].status.size();
  flag[at] = 2;
  BOOST_TEST(!unpack_outcomes(flag, got));
}
