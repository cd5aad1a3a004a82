#pragma once

// A guard in front of CAF's BASP port. CAF 0.17 trusts the payload length
// of a BASP header it reads: one forged 32-byte header announcing ~4 GB
// stalls the middleman for tens of seconds (measured: 36 s per header), so
// anyone who can reach the port could wedge the coordinator with a few
// packets. The guard owns the public port, relays every connection to the
// middleman on a private loopback port, and checks the client's byte
// stream frame by frame: the first header must be a client handshake, no
// header may be malformed or announce more than `max_payload` bytes, and
// the first header must arrive within `handshake_timeout`. Offenders are
// disconnected before CAF sees a byte of theirs.
//
// Behind a TLS coordinator (CAF's OpenSSL module) the bytes are TLS
// records, not BASP frames: the guard then checks the record layer instead
// (the first record must be a handshake, no record may have an unknown
// type, a version other than 3.x or more than 18432 bytes, and application
// data must start within `handshake_timeout`). A peer must complete the TLS
// handshake with a certificate signed by the cluster's CA before it can
// send CAF a frame, so the forged-header stall needs a member's key.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace alb {

/// Settings of a BASP guard.
struct basp_guard_options {
  /// Public address and port to listen on (port 0 = any free port).
  std::string host = "127.0.0.1";
  /// Public port.
  uint16_t port = 0;
  /// The middleman's private port on 127.0.0.1.
  uint16_t upstream_port = 0;
  /// Largest BASP payload accepted, bytes.
  uint32_t max_payload = 64u << 20;
  /// Seconds a new connection has to send its handshake header.
  double handshake_timeout = 10;
  /// Connections relayed at once; more are refused.
  size_t max_connections = 1024;
  /// The middleman behind talks TLS: check TLS records, not BASP frames.
  bool tls = false;
  /// Receives one line per connection ended before its peer got through
  /// the handshake, or for breaking the frame rules, naming the peer and
  /// why (e.g. "refused connection from 10.0.0.7:51234: the coordinator
  /// refused its TLS handshake ..."). Per 10 s: each host and reason once,
  /// at most `refusals_shown` lines; the rest are counted in one summary
  /// line. Called on the guard's thread; may be empty.
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

  /// "host:port" of the client behind the relay connection whose local
  /// (guard-side) port is `relay_port`; "" when unknown. Thread-safe.
  std::string peer_of(uint16_t relay_port) const;

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

} // namespace alb
