// alb::ec, the one error vocabulary: every code's number, name and meaning,
// its round trip through a caf::error (in memory, serialized, and across a
// real remote hop between two actor systems), and what a client makes of
// it (client error kind, message, exit status).

#define BOOST_TEST_MODULE ec
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/caf_ec.hpp"
#include "actors/coordinator_client.hpp"
#include "actors/system.hpp"
#include "runtime/ec.hpp"

using namespace alb;
using namespace std::chrono_literals;

namespace alb {

std::ostream& boost_test_print_type(std::ostream& out, ec x) {
  return out << to_string(x);
}

std::ostream& boost_test_print_type(std::ostream& out,
                                    const std::optional<ec>& x) {
  return out << (x ? to_string(*x) : "(no alb code)");
}

std::ostream& boost_test_print_type(std::ostream& out, client_errc x) {
  return out << to_string(x);
}

} // namespace alb

namespace {

/// One row per code: the number on the wire, the name, and the client
/// error kind it becomes. A renumbered or renamed code fails here.
struct row {
  ec code;
  int number;
  const char* name;
  client_errc kind;
};

const std::vector<row> table = {
  {ec::no_token, 1, "no_token", client_errc::refused},
  {ec::wrong_token, 2, "wrong_token", client_errc::refused},
  {ec::missing_handle, 3, "missing_handle", client_errc::refused},
  {ec::bad_worker, 4, "bad_worker", client_errc::refused},
  {ec::not_accepted, 5, "not_accepted", client_errc::refused},
  {ec::not_your_session, 6, "not_your_session", client_errc::refused},
  {ec::not_owner, 7, "not_owner", client_errc::bad_input},
  {ec::unknown_run, 8, "unknown_run", client_errc::bad_input},
  {ec::no_journal, 9, "no_journal", client_errc::bad_input},
  {ec::journal_failed, 10, "journal_failed", client_errc::coordinator_failed},
  {ec::node_dropped, 11, "node_dropped", client_errc::disconnected},
  {ec::status_failed, 12, "status_failed", client_errc::coordinator_failed},
  {ec::unknown_test, 13, "unknown_test", client_errc::bad_input},
};

} // namespace

BOOST_AUTO_TEST_CASE(every_code_has_its_number_name_and_meaning) {
  BOOST_REQUIRE(std::size(all_ecs) == table.size());
  std::set<std::string> names;
  std::set<std::string> meanings;
  for (size_t i = 0; i < table.size(); ++i) {
    auto& r = table[i];
    BOOST_TEST(all_ecs[i] == r.code);
    BOOST_TEST(static_cast<int>(r.code) == r.number);
    BOOST_TEST(std::string{to_string(r.code)} == r.name);
    BOOST_TEST(ec_from_code(static_cast<uint8_t>(r.number)) == r.code);
    std::string meaning = describe(r.code);
    BOOST_TEST(!meaning.empty());
    BOOST_TEST(meaning != "unknown error");
    names.insert(r.name);
    meanings.insert(meaning);
  }
  // Every name and every meaning tells its code apart.
  BOOST_TEST(names.size() == table.size());
  BOOST_TEST(meanings.size() == table.size());
  BOOST_TEST(std::string{to_string(ec::none)} == "none");
}

BOOST_AUTO_TEST_CASE(numbers_that_are_no_code_are_unknown) {
  for (int v = 0; v < 256; ++v) {
    bool known = false;
    for (auto& r : table)
      known = known || r.number == v;
    if (known)
      continue;
    BOOST_TEST(!ec_from_code(static_cast<uint8_t>(v)).has_value(), v);
    if (v != 0)
      BOOST_TEST(std::string{to_string(static_cast<ec>(v))} == "unknown", v);
  }
}

BOOST_AUTO_TEST_CASE(only_join_refusals_are_join_refusals) {
  for (auto& r : table)
    BOOST_TEST(is_join_refusal(r.code)
                 == (r.code == ec::no_token || r.code == ec::wrong_token
                     || r.code == ec::missing_handle
                     || r.code == ec::bad_worker),
               r.name);
}

BOOST_AUTO_TEST_CASE(every_code_round_trips_through_a_caf_error) {
  caf::actor_system_config cfg;
  configure_system(cfg, 1, false);
  caf::actor_system sys{cfg};
  for (auto& r : table) {
    auto e = caf::make_error(r.code, std::string{"the detail"});
    BOOST_TEST(static_cast<bool>(e));
    BOOST_TEST(e.category() == ec_category);
    BOOST_TEST(ec_of(e) == r.code);
    BOOST_TEST(has_ec(e, r.code));
    BOOST_TEST(ec_detail(e) == "the detail");
    // Registered: the system renders the code by name.
    BOOST_TEST(sys.render(e)
               == std::string{"alb: "} + r.name + " (the detail)");
    BOOST_TEST(render_ec(static_cast<uint8_t>(r.number), "")
               == std::string{"alb: "} + r.name);
    // Serialized as it crosses the wire.
    std::vector<char> buf;
    caf::binary_serializer sink{sys, buf};
    BOOST_REQUIRE(!sink(e));
    caf::error back;
    caf::binary_deserializer source{sys, buf};
    BOOST_REQUIRE(!source(back));
    BOOST_TEST(ec_of(back) == r.code);
    BOOST_TEST(ec_detail(back) == "the detail");
    // Without a detail there is none.
    BOOST_TEST(ec_detail(caf::make_error(r.code)).empty());
  }
}

BOOST_AUTO_TEST_CASE(other_errors_carry_no_alb_code) {
  BOOST_TEST(!ec_of(caf::error{}).has_value());
  BOOST_TEST(!ec_of(caf::make_error(caf::sec::request_timeout)).has_value());
  // CAF's own codes use the same small numbers: the category tells them
  // apart.
  for (auto& r : table)
    BOOST_TEST(
      !ec_of(caf::error{static_cast<uint8_t>(r.number), caf::atom("system")})
         .has_value());
}

BOOST_AUTO_TEST_CASE(every_code_crosses_a_remote_hop) {
  caf::actor_system_config cfg_a;
  caf::actor_system_config cfg_b;
  for (auto* c : {&cfg_a, &cfg_b}) {
    configure_system(*c, 2, false);
    c->load<caf::io::middleman>();
  }
  auto a = std::make_unique<caf::actor_system>(cfg_a);
  auto b = std::make_unique<caf::actor_system>(cfg_b);
  // Answers a number with the alb error of that number. It takes an
  // (unused) argument: CAF 0.17.6 binds a reference to a null tuple when a
  // function actor is spawned with none (UBSan reports it).
  auto refuser = a->spawn(
    [](caf::event_based_actor*, int) -> caf::behavior {
      return {
        [](int32_t x) -> caf::result<int32_t> {
          return caf::make_error(static_cast<ec>(x),
                                 std::string{"over the hop"});
        },
      };
    },
    0);
  auto port = a->middleman().publish(refuser, 0, "127.0.0.1", true);
  BOOST_REQUIRE(port);
  auto remote = b->middleman().remote_actor("127.0.0.1", *port);
  BOOST_REQUIRE(remote);
  {
    caf::scoped_actor self{*b};
    for (auto& r : table) {
      caf::error got;
      self->request(*remote, 10s, int32_t{r.number})
        .receive([](int32_t) { BOOST_FAIL("answered"); },
                 [&](caf::error& e) { got = std::move(e); });
      BOOST_TEST(ec_of(got) == r.code, r.name);
      BOOST_TEST(ec_detail(got) == "over the hop");
      BOOST_TEST(b->render(got)
                 == std::string{"alb: "} + r.name + " (over the hop)");
    }
  }
  caf::anon_send_exit(refuser, caf::exit_reason::user_shutdown);
  remote = caf::actor{};
  b.reset();
  a.reset();
}

BOOST_AUTO_TEST_CASE(every_code_maps_to_a_client_error_message_and_exit) {
  for (auto& r : table) {
    BOOST_TEST(client_errc_of(r.code) == r.kind, r.name);
    BOOST_TEST(client_message(r.code, "") == describe(r.code));
    BOOST_TEST(client_message(r.code, "run 'r1'")
               == std::string{describe(r.code)} + " (run 'r1')");
    // Every client error is exit 2: 1 means tests failed.
    BOOST_TEST(exit_status(client_errc_of(r.code)) == 2, r.name);
  }
  for (auto k :
       {client_errc::bad_input, client_errc::unreachable, client_errc::refused,
        client_errc::timeout, client_errc::disconnected,
        client_errc::not_connected, client_errc::coordinator_failed}) {
    BOOST_TEST(exit_status(k) == 2);
    BOOST_TEST(std::string{to_string(k)} != "unknown");
  }
  // The phrases clients and scripts have grepped for stay.
  BOOST_TEST(client_message(ec::wrong_token, "") == "wrong join token");
  BOOST_TEST(client_message(ec::no_token, "") == "no join token");
  BOOST_TEST(client_message(ec::not_owner, "run 'r1'")
             == "another client's (run 'r1')");
}

BOOST_AUTO_TEST_CASE(a_client_error_keeps_the_coordinators_code) {
  coordinator_client_error local{client_errc::bad_input, "no tests"};
  BOOST_TEST(local.reason() == ec::none);
  coordinator_client_error remote{client_errc::refused, "refused",
                                  ec::wrong_token};
  BOOST_TEST(remote.reason() == ec::wrong_token);
  BOOST_TEST(remote.code() == client_errc::refused);
}
