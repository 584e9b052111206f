// A throw-away PostgreSQL server for tests and benchmarks.
//
// Start() runs initdb into a fresh temporary directory and starts the
// server on 127.0.0.1 with a port chosen at run time (bind port 0, close,
// use; another port on collision) and its Unix socket in that directory.
// PostgreSQL refuses to run as root, so when the test runs as root the
// server runs as the `postgres` system user (created with useradd if the
// machine has none); otherwise as the current user. The server binaries
// come from $IDEM_POSTGRES_BINDIR, or the newest /usr/lib/postgresql/*/bin.
//
// The destructor stops the server (a fast shutdown, what `pg_ctl stop -m
// fast` sends) and deletes the directory, also after a failed test; the
// server is also told to quit if the thread that started it dies
// (PR_SET_PDEATHSIG), so start and restart it from the main thread. Not
// thread-safe: drive one server from one thread. With `tls` it also serves
// TLS with a self-signed certificate made by the openssl command (Debian's
// postgresql package pulls it in, through ssl-cert).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>

#include "idem/status.h"

namespace idem::testing {

struct PostgresServerOptions {
  // fsync and full-page writes: off makes tests fast; a durability test
  // turns them on. Default: false.
  bool fsync = false;
  // How long the server may take to accept connections. Default: 60 s.
  std::chrono::seconds start_timeout{60};
  // Serve TLS (ssl = on) with a self-signed certificate for 127.0.0.1,
  // made with the openssl command. Default: false.
  bool tls = false;
};

class PostgresServer {
 public:
  static Result<std::unique_ptr<PostgresServer>> Start(
      const PostgresServerOptions& options = {});

  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;
  ~PostgresServer();

  // postgresql://idem@127.0.0.1:PORT/DATABASE (superuser, trust auth).
  std::string Uri(const std::string& database = "postgres") const;
  Status CreateDatabase(const std::string& name);
  // Runs SQL in `database` (RunSql below).
  Result<std::string> Query(const std::string& database, const std::string& sql) const;

  // Fast shutdown; the data stays for Restart().
  Status Stop();
  // SIGKILL to the postmaster and every backend, as a crash would.
  Status Crash();
  // Starts the stopped or crashed server again on the same port and data.
  Status Restart();
  // SIGSTOP / SIGCONT to the postmaster and every backend: a server that
  // accepts TCP connections but never answers.
  Status Pause();
  Status Resume();

  bool running() const { return pid_ > 0; }
  // With tls: the server's certificate (its own CA), for sslrootcert.
  std::string tls_certificate() const { return dir_ + "/server.crt"; }
  int port() const { return port_; }
  const std::string& directory() const { return dir_; }

 private:
  PostgresServer() = default;
  Status Launch(bool pick_port);
  Status MakeCertificate();
  std::string LogTail() const;
  Status SignalAll(int signal);

  PostgresServerOptions options_;
  std::string bin_dir_;
  std::string dir_;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  bool switch_user_ = false;
  int port_ = 0;
  pid_t pid_ = -1;
};

// Runs SQL (one or more statements) on the libpq URI `uri`; the first
// column of the first row of the last result as text ("" when there is
// none).
Result<std::string> RunSql(const std::string& uri, const std::string& sql);

}  // namespace idem::testing
