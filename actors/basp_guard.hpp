#pragma once

// A guard in front of CAF's BASP port. CAF 0.17 trusts the payload length
// of a BASP header it reads: one forged 32-byte header announcing ~4 GB
// stalls the middleman for tens of seconds (measured: 36 s per header), so
// anyone who can reach the port could wedge the coordinator with a few
// packets. The guard owns the public port, relays every connection to the
// middleman on a private loopback port, and checks the client's byte
// stream frame by frame: the first header must be a client handshake, no
// header may be malformed or announce more than `max_payload` bytes, and
// the whole handshake -- CAF's and then the coordinator's join or hello
// with the token, which the coordinator reports through admit() -- must be
// over within `handshake_timeout`. Offenders are disconnected before CAF
// sees a byte of theirs.
//
// Connections still in their handshake are capped per address and in
// total: a new one over a cap closes the oldest pending connection of that
// address (or of the address holding the most), so sockets an attacker
// holds open never keep a newcomer out; it only displaces the attacker's
// own. Until admitted, a connection may send frames of at most
// `pending_payload` bytes (a join or hello is small): a larger one waits
// (unread) for admission, so a flood of headers cannot make the middleman
// reserve large buffers. Over TLS only a few unadmitted connections reach
// CAF at a time (each TLS handshake costs its middleman milliseconds); the
// rest wait in the guard, newest first.
//
// Behind a TLS coordinator (CAF's OpenSSL module) the bytes are TLS
// records, not BASP frames: the guard then checks the record layer instead
// (the first record must be a handshake, no record may have an unknown
// type, a version other than 3.x or more than 18432 bytes, and application
// data must start within `handshake_timeout`). A peer must complete the TLS
// handshake with a certificate signed by the cluster's CA before it can
// send CAF a frame, so the forged-header stall needs a member's key.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace alb {

/// Largest BASP payload the guard relays by default, bytes: a client checks
/// its messages against it before sending (coordinator_client).
inline constexpr uint32_t default_max_payload = 64u << 20;

/// Bytes a frame carries around a submission (CAF's envelope of the
/// message): the guard relays a submission of N bytes in a frame of at
/// most N + submission_envelope.
inline constexpr uint32_t submission_envelope = 64u << 10;

/// Why the guard ended a connection (a metric label each, see label()).
enum class guard_refusal {
  /// Its handshake (CAF's, TLS's, or the join/hello) missed the deadline.
  handshake_timeout,
  /// Closed to make room: too many connections of its address pending.
  address_cap,
  /// Closed to make room: too many connections pending in total.
  total_cap,
  /// Refused: too many connections relayed at once.
  connection_cap,
  /// A malformed or oversized frame or TLS record, or no handshake first.
  bad_frame,
  /// Closed (by the peer or the coordinator) before its handshake was over.
  closed_early,
};

/// Number of guard_refusal values.
inline constexpr size_t guard_refusal_kinds = 6;

/// The metric label of `r` ("handshake_timeout", "address_cap", ...).
const char* label(guard_refusal r);

/// Settings of a BASP guard.
struct basp_guard_options {
  /// Public address and port to listen on (port 0 = any free port).
  std::string host = "127.0.0.1";
  /// Public port.
  uint16_t port = 0;
  /// The middleman's private port on 127.0.0.1.
  uint16_t upstream_port = 0;
  /// Largest BASP payload accepted, bytes.
  uint32_t max_payload = default_max_payload;
  /// Seconds a new connection has for its whole handshake: CAF's (or
  /// TLS's) and the join or hello the coordinator admits (admit()).
  double handshake_timeout = 10;
  /// Whether the deadline lasts until admit() (true) or only until the
  /// protocol handshake (false: a relay without a coordinator's admission).
  bool await_admission = true;
  /// Connections relayed at once; more are refused.
  size_t max_connections = 1024;
  /// Connections from one address still in their handshake; a new one
  /// beyond it closes that address's oldest.
  size_t max_pending_per_address = 16;
  /// Connections still in their handshake in total; a new one beyond it
  /// closes the oldest of the address holding the most.
  size_t max_pending = 256;
  /// TLS only: unadmitted connections relayed to CAF at once (its
  /// middleman spends milliseconds of its one thread on each TLS
  /// handshake); the others wait in the guard, newest first.
  size_t tls_handshakes = 8;
  /// Largest BASP frame payload relayed before admission, bytes; a larger
  /// frame waits for admit() (plain TCP only: TLS hides the frames).
  uint32_t pending_payload = 64u << 10;
  /// Called once per connection the guard ends before admission or for
  /// breaking the rules (not rate-limited: for a metric). Guard's thread.
  std::function<void(guard_refusal)> on_count;
  /// The middleman behind talks TLS: check TLS records, not BASP frames.
  bool tls = false;
  /// Receives one line per connection ended before its peer got through
  /// the handshake, or for breaking the frame rules, naming the peer and
  /// why (e.g. "refused connection from 10.0.0.7:51234: the coordinator
  /// refused its TLS handshake ..."). Per 10 s: each reason once (naming
  /// the first peer it happened to), at most `refusals_shown` lines; the
  /// rest are counted in one summary line. Called on the guard's thread;
  /// may be empty.
  std::function<void(const std::string&)> on_refused;
  /// Refusal lines per 10 s before they are only counted.
  int refusals_shown = 10;
};

/// A running guard (one thread); stops when destroyed.
class basp_guard {
public:
  /// Binds and starts relaying. Throws std::runtime_error (one line) when
  /// it cannot bind.
  explicit basp_guard(basp_guard_options opts);
  ~basp_guard();
  basp_guard(const basp_guard&) = delete;
  basp_guard& operator=(const basp_guard&) = delete;

  /// The bound public port.
  uint16_t port() const;

  /// The coordinator accepted the join or hello that came over the relay
  /// connection whose local (guard-side) port is `relay_port`: its
  /// handshake is over (no deadline, not pending). Thread-safe.
  void admit(uint16_t relay_port);

  /// "host:port" of the client behind the relay connection whose local
  /// (guard-side) port is `relay_port`; "" when unknown. Thread-safe.
  std::string peer_of(uint16_t relay_port) const;

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

} // namespace alb
