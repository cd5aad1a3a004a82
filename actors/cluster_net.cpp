#include "actors/cluster_net.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/middleman_actor.hpp>
#include <caf/openssl/manager.hpp>
#include <caf/openssl/publish.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/node.hpp"
#include "actors/tls.hpp"

namespace alb {

void load_network(caf::actor_system_config& cfg, const tls_material* tls) {
  cfg.load<caf::io::middleman>();
  if (!tls)
    return;
  cfg.load<caf::openssl::manager>();
  cfg.openssl_certificate = tls->certificate_path();
  cfg.openssl_key = tls->key_path();
  cfg.openssl_cafile = tls->ca_path();
  cfg.openssl_passphrase = tls->passphrase();
}

bool uses_tls(caf::actor_system& sys) {
  return sys.has_openssl_manager();
}

caf::expected<uint16_t> publish_on_loopback(caf::actor_system& sys,
                                            const coordinator_actor& coord) {
  if (uses_tls(sys))
    return caf::openssl::publish(coord, 0, "127.0.0.1", true);
  return sys.middleman().publish(coord, 0, "127.0.0.1", true);
}

caf::expected<coordinator_actor> connect_coordinator(caf::actor_system& sys,
                                                     const std::string& host,
                                                     uint16_t port,
                                                     caf::timespan timeout) {
  // What middleman::remote_actor does, with a deadline: CAF 0.17 waits
  // forever for a peer that accepts the connection but never completes the
  // handshake.
  auto mm = uses_tls(sys) ? sys.openssl_manager().actor_handle()
                          : sys.middleman().actor_handle();
  caf::scoped_actor self{sys};
  caf::expected<coordinator_actor> result{caf::sec::cannot_connect_to_node};
  self->request(mm, timeout, caf::connect_atom::value, host, port)
    .receive(
      [&](const caf::node_id&, caf::strong_actor_ptr& ptr,
          std::set<std::string>& ifs) {
        if (!ptr) {
          result = caf::make_error(caf::sec::no_actor_published_at_port,
                                   "no actor published at port");
          return;
        }
        if (!sys.assignable<coordinator_actor>(ifs)) {
          result
            = caf::make_error(caf::sec::unexpected_actor_messaging_interface,
                              "the peer is not an alb coordinator");
          return;
        }
        result = caf::actor_cast<coordinator_actor>(std::move(ptr));
      },
      [&](caf::error& e) { result = std::move(e); });
  return result;
}

std::string tls_mismatch_hint(bool tls) {
  return tls ? " (does the coordinator use TLS, with a certificate signed by "
               "the same CA?)"
             : " (if the coordinator uses TLS, pass --tls-cert, --tls-key "
               "and --tls-ca)";
}

} // namespace alb
