#pragma once

// TLS for cluster connections, through CAF's OpenSSL module
// (libcaf-openssl). CAF 0.17.6 authenticates both ends: every process
// presents a certificate and accepts a peer only when the peer's
// certificate is signed by the CA it was given. Host names are not checked,
// so the CA *is* the membership list: use a CA of your own for the cluster
// (README, "TLS").
//
// CAF reads the certificate, key and CA files again for every connection
// and throws from its network thread when it cannot, which ends the
// process. So a process reads and checks them once, at start-up, with the
// very calls CAF makes, and hands CAF sealed in-memory copies (memfd): bad
// files are one clear error before anything starts, and files replaced or
// deleted later change nothing until a restart. CAF-free header.

#include <memory>
#include <string>
#include <vector>

namespace alb {

/// Where a process's TLS material is: certificate, key and CA together, or
/// none of them (plain TCP).
struct tls_options {
  /// PEM certificate (optionally followed by its chain) this process
  /// presents to its peers.
  std::string certificate;
  /// PEM private key of that certificate.
  std::string key;
  /// PEM certificate(s) of the CA that peers' certificates must be signed by.
  std::string ca;
  /// File holding the key's passphrase ("" = the key is not encrypted).
  std::string passphrase_file;
  /// Whether any of the settings is given (then all three files must be).
  bool enabled() const;
};

/// TLS material that has been read, checked and copied into memory for
/// CAF's OpenSSL module. Keep it alive as long as the actor system that
/// uses it.
class tls_material {
public:
  /// Reads and checks the files of `opts` (all three must be given):
  /// readable regular files, PEM that parses, a key that belongs to the
  /// certificate (decrypted with the passphrase file when given), a
  /// certificate valid now, a CA file with at least one certificate.
  /// Throws cluster_error with one line naming the file and what is wrong.
  explicit tls_material(const tls_options& opts);
  ~tls_material();
  tls_material(const tls_material&) = delete;
  tls_material& operator=(const tls_material&) = delete;

  /// Path CAF reads the certificate (chain) from: a sealed in-memory copy.
  const std::string& certificate_path() const;
  /// Path CAF reads the private key from: a sealed in-memory copy.
  const std::string& key_path() const;
  /// Path CAF reads the trusted CA certificates from: a sealed copy.
  const std::string& ca_path() const;
  /// The key's passphrase ("" = none).
  const std::string& passphrase() const;
  /// Subject of the certificate, e.g. "CN=node-1", for log lines.
  const std::string& subject() const;
  /// Problems that do not stop this process but will make peers refuse it
  /// (its own certificate does not verify against the given CA), and
  /// permissions that let other users read the key or passphrase.
  const std::vector<std::string>& warnings() const;

  /// Private state.
  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

/// Checks the combination of `opts` without reading files: all of
/// certificate, key and CA, or none (a passphrase file needs the others).
/// Returns "" when fine, else one line naming what is missing.
std::string check_tls_options(const tls_options& opts);

} // namespace alb
