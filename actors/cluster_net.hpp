#pragma once

// The network set-up every cluster process shares: CAF's middleman, plus
// its OpenSSL module when the process has TLS material; publishing the
// coordinator for the guard in front of it; and reaching a coordinator
// with a bounded wait. Plain TCP and TLS differ only here.

#include <cstdint>
#include <string>

#include <caf/expected.hpp>
#include <caf/fwd.hpp>
#include <caf/timespan.hpp>

#include "actors/messages.hpp"

namespace alb {

class tls_material;

/// Loads CAF's middleman into `cfg`, and CAF's OpenSSL module set up with
/// `tls` when it is given (nullptr = plain TCP). `tls` must outlive the
/// actor system made from `cfg`.
void load_network(caf::actor_system_config& cfg, const tls_material* tls);

/// Whether the actor system talks TLS (was configured with TLS material).
bool uses_tls(caf::actor_system& sys);

/// Publishes `coord` on 127.0.0.1 at a free port (over TLS when the system
/// talks TLS), for a basp_guard to relay to; returns the port.
caf::expected<uint16_t> publish_on_loopback(caf::actor_system& sys,
                                            const coordinator_actor& coord);

/// One attempt to reach the coordinator at `host`:`port` (over TLS when
/// the system talks TLS), waiting at most `timeout` for the connection
/// and the CAF handshake.
caf::expected<coordinator_actor> connect_coordinator(caf::actor_system& sys,
                                                     const std::string& host,
                                                     uint16_t port,
                                                     caf::timespan timeout);

/// A hint to append to a failed connection's error: the usual cause when
/// one side talks TLS and the other does not.
std::string tls_mismatch_hint(bool tls);

} // namespace alb
