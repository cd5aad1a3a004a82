#include "actors/tls.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "actors/node.hpp"

namespace alb {

bool tls_options::enabled() const {
  return !certificate.empty() || !key.empty() || !ca.empty()
         || !passphrase_file.empty();
}

std::string check_tls_options(const tls_options& o) {
  if (!o.enabled())
    return {};
  std::string missing;
  auto need = [&](const std::string& v, const char* name) {
    if (v.empty())
      missing += (missing.empty() ? "" : ", ") + std::string{name};
  };
  need(o.certificate, "certificate (--tls-cert)");
  need(o.key, "key (--tls-key)");
  need(o.ca, "CA (--tls-ca)");
  if (missing.empty())
    return {};
  return "TLS needs a certificate, its key and the CA together; missing: "
         + missing;
}

namespace {

// Files larger than this are not certificates or keys.
constexpr off_t max_file_size = 1 << 20;

std::string ssl_reasons() {
  std::string out;
  while (auto e = ERR_get_error()) {
    auto* r = ERR_reason_error_string(e);
    std::string s = r ? r : "error " + std::to_string(ERR_GET_REASON(e));
    if (out.find(s) == std::string::npos)
      out += (out.empty() ? "" : ", ") + s;
  }
  return out.empty() ? std::string{"unknown OpenSSL error"} : out;
}

struct bio_ptr {
  BIO* p;
  explicit bio_ptr(const std::string& data)
    : p(BIO_new_mem_buf(data.data(), static_cast<int>(data.size()))) {
    // nop
  }
  ~bio_ptr() { BIO_free(p); }
};

std::string read_file(const std::string& path, const std::string& what,
                      std::vector<std::string>* warnings) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    throw cluster_error{"cannot read " + what + " '" + path
                        + "': " + std::strerror(errno)};
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw cluster_error{what + " '" + path + "' is not a regular file"};
  }
  if (st.st_size > max_file_size) {
    ::close(fd);
    throw cluster_error{what + " '" + path + "' is larger than 1 MB"};
  }
  if (warnings && (st.st_mode & 077) != 0)
    warnings->push_back(what + " '" + path
                        + "' is readable by other users (chmod 600 it)");
  std::string data(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < data.size()) {
    auto n = ::read(fd, data.data() + got, data.size() - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  data.resize(got);
  if (data.empty())
    throw cluster_error{what + " '" + path + "' is empty"};
  return data;
}

// A sealed in-memory file with `data`; CAF opens it by its /proc path.
int sealed_copy(const char* name, const std::string& data) {
  int fd = ::memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0)
    throw cluster_error{std::string{"cannot keep TLS material in memory: "}
                        + std::strerror(errno)};
  size_t put = 0;
  while (put < data.size()) {
    auto n = ::write(fd, data.data() + put, data.size() - put);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      ::close(fd);
      throw cluster_error{std::string{"cannot keep TLS material in memory: "}
                          + std::strerror(errno)};
    }
    put += static_cast<size_t>(n);
  }
  ::fcntl(fd, F_ADD_SEALS,
          F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
  return fd;
}

struct passphrase_state {
  const std::string* passphrase;
  bool asked = false;
};

// Hands OpenSSL the passphrase; never lets it prompt on the terminal.
int passphrase_cb(char* buf, int size, int, void* user) {
  auto* st = static_cast<passphrase_state*>(user);
  st->asked = true;
  if (st->passphrase->empty() || size <= 0)
    return -1;
  auto n = std::min(static_cast<size_t>(size - 1), st->passphrase->size());
  std::memcpy(buf, st->passphrase->data(), n);
  buf[n] = '\0';
  return static_cast<int>(n);
}

std::string asn1_time(const ASN1_TIME* t) {
  BIO* b = BIO_new(BIO_s_mem());
  ASN1_TIME_print(b, t);
  char* p = nullptr;
  auto n = BIO_get_mem_data(b, &p);
  std::string s(p, static_cast<size_t>(n));
  BIO_free(b);
  return s;
}

std::string subject_of(X509* x) {
  char buf[512];
  X509_NAME_oneline(X509_get_subject_name(x), buf, sizeof(buf));
  std::string s = buf;
  // "/CN=a/O=b" reads better as "CN=a, O=b".
  if (!s.empty() && s.front() == '/')
    s.erase(0, 1);
  for (size_t i = 0; (i = s.find('/', i)) != std::string::npos;)
    s.replace(i, 1, ", ");
  return s;
}

} // namespace

struct tls_material::impl {
  int fds[3] = {-1, -1, -1};
  std::string paths[3];
  std::string passphrase;
  std::string subject;
  std::vector<std::string> warnings;

  ~impl() {
    for (int fd : fds)
      if (fd >= 0)
        ::close(fd);
  }
};

tls_material::tls_material(const tls_options& o) : impl_(new impl) {
  if (auto err = check_tls_options(o); !err.empty())
    throw cluster_error{err};
  if (!o.enabled())
    throw cluster_error{"no TLS settings given"};
  auto& d = *impl_;
  ERR_clear_error();
  auto cert_pem = read_file(o.certificate, "TLS certificate", nullptr);
  auto key_pem = read_file(o.key, "TLS key", &d.warnings);
  auto ca_pem = read_file(o.ca, "TLS CA", nullptr);
  if (!o.passphrase_file.empty()) {
    d.passphrase
      = read_file(o.passphrase_file, "TLS passphrase file", &d.warnings);
    while (!d.passphrase.empty()
           && (d.passphrase.back() == '\n' || d.passphrase.back() == '\r'))
      d.passphrase.pop_back();
    if (d.passphrase.empty())
      throw cluster_error{"TLS passphrase file '" + o.passphrase_file
                          + "' is empty"};
  }
  // The certificate: the first PEM block, then any chain.
  X509* cert = nullptr;
  STACK_OF(X509)* chain = sk_X509_new_null();
  {
    bio_ptr b{cert_pem};
    cert = PEM_read_bio_X509(b.p, nullptr, nullptr, nullptr);
    if (!cert) {
      sk_X509_free(chain);
      throw cluster_error{"TLS certificate '" + o.certificate
                          + "' holds no PEM certificate (" + ssl_reasons()
                          + ")"};
    }
    while (auto* x = PEM_read_bio_X509(b.p, nullptr, nullptr, nullptr))
      sk_X509_push(chain, x);
    ERR_clear_error();
  }
  auto cleanup_cert = [&] {
    X509_free(cert);
    sk_X509_pop_free(chain, X509_free);
  };
  d.subject = subject_of(cert);
  if (X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0) {
    auto when = asn1_time(X509_get0_notAfter(cert));
    cleanup_cert();
    throw cluster_error{"TLS certificate '" + o.certificate + "' expired ("
                        + when + ")"};
  }
  if (X509_cmp_current_time(X509_get0_notBefore(cert)) >= 0) {
    auto when = asn1_time(X509_get0_notBefore(cert));
    cleanup_cert();
    throw cluster_error{"TLS certificate '" + o.certificate
                        + "' is not valid before " + when};
  }
  // The key: decrypted with the passphrase file, never by a prompt.
  EVP_PKEY* key = nullptr;
  {
    bio_ptr b{key_pem};
    passphrase_state ps{&d.passphrase};
    key = PEM_read_bio_PrivateKey(b.p, nullptr, passphrase_cb, &ps);
    if (!key) {
      auto reasons = ssl_reasons();
      cleanup_cert();
      if (ps.asked && d.passphrase.empty())
        throw cluster_error{"TLS key '" + o.key
                            + "' is encrypted and no passphrase file is "
                              "given (--tls-passphrase-file)"};
      if (ps.asked)
        throw cluster_error{"cannot decrypt TLS key '" + o.key
                            + "' with the passphrase from '" + o.passphrase_file
                            + "' (" + reasons + ")"};
      throw cluster_error{"TLS key '" + o.key + "' holds no PEM private key ("
                          + reasons + ")"};
    }
  }
  if (X509_check_private_key(cert, key) != 1) {
    ERR_clear_error();
    EVP_PKEY_free(key);
    cleanup_cert();
    throw cluster_error{"TLS key '" + o.key
                        + "' does not belong to certificate '" + o.certificate
                        + "'"};
  }
  EVP_PKEY_free(key);
  // The CA: every PEM certificate in the file.
  X509_STORE* store = X509_STORE_new();
  size_t cas = 0;
  {
    bio_ptr b{ca_pem};
    while (auto* x = PEM_read_bio_X509(b.p, nullptr, nullptr, nullptr)) {
      X509_STORE_add_cert(store, x);
      X509_free(x);
      ++cas;
    }
    ERR_clear_error();
  }
  if (cas == 0) {
    X509_STORE_free(store);
    cleanup_cert();
    throw cluster_error{"TLS CA '" + o.ca + "' holds no PEM certificate"};
  }
  // Peers check this certificate against their CA; with the usual single
  // cluster CA they would refuse it, but a peer may trust another CA.
  X509_STORE_CTX* vctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(vctx, store, cert, chain);
  if (X509_verify_cert(vctx) != 1) {
    auto err = X509_STORE_CTX_get_error(vctx);
    d.warnings.push_back("TLS certificate '" + o.certificate
                         + "' does not verify against CA '" + o.ca + "' ("
                         + X509_verify_cert_error_string(err)
                         + "): peers that trust only this CA will refuse it");
  }
  ERR_clear_error();
  X509_STORE_CTX_free(vctx);
  X509_STORE_free(store);
  cleanup_cert();
  const char* names[3] = {"alb-tls-certificate", "alb-tls-key", "alb-tls-ca"};
  const std::string* data[3] = {&cert_pem, &key_pem, &ca_pem};
  for (int i = 0; i < 3; ++i) {
    d.fds[i] = sealed_copy(names[i], *data[i]);
    d.paths[i] = "/proc/self/fd/" + std::to_string(d.fds[i]);
  }
  // The same calls CAF's OpenSSL module makes for each connection
  // (session::create_ssl_context), on the same copies: once they pass here
  // they cannot fail in CAF's network thread.
  SSL_CTX* ctx = SSL_CTX_new(TLS_method());
  passphrase_state ps{&d.passphrase};
  SSL_CTX_set_default_passwd_cb(ctx, passphrase_cb);
  SSL_CTX_set_default_passwd_cb_userdata(ctx, &ps);
  std::string failed;
  if (SSL_CTX_use_certificate_chain_file(ctx, d.paths[0].c_str()) != 1)
    failed = "certificate '" + o.certificate + "'";
  else if (SSL_CTX_use_PrivateKey_file(ctx, d.paths[1].c_str(),
                                       SSL_FILETYPE_PEM)
           != 1)
    failed = "key '" + o.key + "'";
  else if (SSL_CTX_load_verify_locations(ctx, d.paths[2].c_str(), nullptr) != 1)
    failed = "CA '" + o.ca + "'";
  else if (SSL_CTX_set_cipher_list(ctx, "HIGH:!aNULL:!MD5") != 1)
    failed = "cipher list";
  auto reasons = failed.empty() ? std::string{} : ssl_reasons();
  SSL_CTX_free(ctx);
  if (!failed.empty())
    throw cluster_error{"CAF's OpenSSL module cannot use TLS " + failed + " ("
                        + reasons + ")"};
}

tls_material::~tls_material() = default;

const std::string& tls_material::certificate_path() const {
  return impl_->paths[0];
}

const std::string& tls_material::key_path() const {
  return impl_->paths[1];
}

const std::string& tls_material::ca_path() const {
  return impl_->paths[2];
}

const std::string& tls_material::passphrase() const {
  return impl_->passphrase;
}

const std::string& tls_material::subject() const {
  return impl_->subject;
}

const std::vector<std::string>& tls_material::warnings() const {
  return impl_->warnings;
}

} // namespace alb

// -- CAF 0.17.6 workaround: OpenSSL's per-thread error queue ------------------
//
// OpenSSL requires the thread's error queue to be empty before
// SSL_read/SSL_write/SSL_accept/SSL_connect, or SSL_get_error() misreports
// (SSL_get_error(3)). CAF 0.17.6's OpenSSL sessions never clear it, and with
// its logging compiled out (Debian) never drain it either. So one failed
// handshake on CAF's network thread (a plain-TCP node, a peer with a
// certificate from another CA, a connection closed mid-handshake) leaves an
// error behind, and the next SSL_read on any *other* connection that merely
// has no data yet reports SSL_ERROR_SSL instead of SSL_ERROR_WANT_READ: CAF
// closes that healthy connection (seen as nodes "leaving" with
// remote_link_unreachable whenever a stranger knocked). These definitions
// come first in the dynamic lookup for libcaf_openssl (the executable's
// symbols precede libssl's), clear the queue as OpenSSL asks, and call
// libssl's own functions.

namespace {

void* real_ssl(const char* name) {
  void* f = ::dlvsym(RTLD_NEXT, name, "OPENSSL_3.0.0");
  if (!f)
    f = ::dlsym(RTLD_NEXT, name);
  if (!f) {
    std::fprintf(stderr, "alb: cannot find libssl's %s\n", name);
    std::abort();
  }
  return f;
}

} // namespace

extern "C" {

int SSL_read(SSL* s, void* buf, int num) {
  static auto real
    = reinterpret_cast<int (*)(SSL*, void*, int)>(real_ssl("SSL_read"));
  ERR_clear_error();
  return real(s, buf, num);
}

int SSL_write(SSL* s, const void* buf, int num) {
  static auto real
    = reinterpret_cast<int (*)(SSL*, const void*, int)>(real_ssl("SSL_write"));
  ERR_clear_error();
  return real(s, buf, num);
}

int SSL_accept(SSL* s) {
  static auto real = reinterpret_cast<int (*)(SSL*)>(real_ssl("SSL_accept"));
  ERR_clear_error();
  return real(s);
}

int SSL_connect(SSL* s) {
  static auto real = reinterpret_cast<int (*)(SSL*)>(real_ssl("SSL_connect"));
  ERR_clear_error();
  return real(s);
}

} // extern "C"
