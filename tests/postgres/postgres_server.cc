#include "postgres/postgres_server.h"

#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

namespace idem::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

constexpr const char* kSuperuser = "idem";

struct User {
  uid_t uid = 0;
  gid_t gid = 0;
  bool switch_user = false;
};

bool Exists(const std::string& path) { return access(path.c_str(), X_OK) == 0; }

Result<std::string> FindBinDir() {
  if (const char* env = std::getenv("IDEM_POSTGRES_BINDIR"); env && *env) {
    if (Exists(std::string(env) + "/postgres")) return std::string(env);
    return InvalidArgument(std::string("IDEM_POSTGRES_BINDIR has no postgres: ") + env);
  }
  int best_version = -1;
  std::string best;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    const std::string name = entry.path().filename().string();
    const std::string bin = entry.path().string() + "/bin";
    const int version = std::atoi(name.c_str());
    if (version > best_version && Exists(bin + "/postgres") && Exists(bin + "/initdb")) {
      best_version = version;
      best = bin;
    }
  }
  if (best.empty()) {
    return NotFound(
        "no PostgreSQL server binaries: install the postgresql package or "
        "set IDEM_POSTGRES_BINDIR");
  }
  return best;
}

// Runs a command to completion as root (used only for useradd).
int RunPlain(const std::vector<std::string>& argv) {
  const pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const int null = open("/dev/null", O_RDWR);
    dup2(null, 1);
    dup2(null, 2);
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) < 0) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// PostgreSQL will not run as root: pick (or create) an unprivileged user.
Result<User> ServerUser() {
  User user;
  if (geteuid() != 0) return user;
  user.switch_user = true;
  for (const char* name : {"postgres", "idem-postgres"}) {
    if (const passwd* pw = getpwnam(name)) {
      user.uid = pw->pw_uid;
      user.gid = pw->pw_gid;
      return user;
    }
  }
  RunPlain({"/usr/sbin/useradd", "--system", "--no-create-home", "--user-group",
            "--shell", "/usr/sbin/nologin", "idem-postgres"});
  if (const passwd* pw = getpwnam("idem-postgres")) {
    user.uid = pw->pw_uid;
    user.gid = pw->pw_gid;
    return user;
  }
  return Internal("running as root and could not create an unprivileged user");
}

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t length = sizeof(addr);
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

// fork + exec with stdout/stderr appended to `log`, as `user`, asking the
// kernel to send `death_signal` if the test process goes away. Everything
// the child touches is prepared before fork (the parent may have threads).
pid_t Spawn(const std::vector<std::string>& argv, const std::string& log,
            const User& user, int death_signal) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const char* env[] = {"PATH=/usr/bin:/bin", "LC_ALL=C", "LANG=C", nullptr};
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid != 0) return pid;
  // Child.
  if (user.switch_user) {
    if (setgroups(0, nullptr) != 0 || setgid(user.gid) != 0 || setuid(user.uid) != 0) {
      _exit(126);
    }
  }
  prctl(PR_SET_PDEATHSIG, death_signal);
  if (getppid() != parent) _exit(125);
  const int out = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  const int in = open("/dev/null", O_RDONLY);
  if (out < 0 || in < 0) _exit(124);
  dup2(in, 0);
  dup2(out, 1);
  dup2(out, 2);
  execve(args[0], args.data(), const_cast<char* const*>(env));
  _exit(127);
}

// Waits for `pid` (our child) to exit; false on time-out.
bool WaitExit(pid_t pid, std::chrono::milliseconds timeout, int* status = nullptr) {
  const auto deadline = SteadyClock::now() + timeout;
  int local = 0;
  for (;;) {
    const pid_t done = waitpid(pid, status ? status : &local, WNOHANG);
    if (done == pid || (done < 0 && errno == ECHILD)) return true;
    if (SteadyClock::now() >= deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
}

// /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces.
bool ReadStat(pid_t pid, char* state, pid_t* ppid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  const size_t paren = line.rfind(')');
  if (paren == std::string::npos) return false;
  std::istringstream rest(line.substr(paren + 1));
  return static_cast<bool>(rest >> *state >> *ppid);
}

bool Alive(pid_t pid) {
  char state = 0;
  pid_t ppid = 0;
  return ReadStat(pid, &state, &ppid) && state != 'Z' && state != 'X';
}

std::vector<pid_t> ChildrenOf(pid_t parent) {
  std::vector<pid_t> children;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    char state = 0;
    pid_t ppid = 0;
    const pid_t pid = std::atoi(name.c_str());
    if (ReadStat(pid, &state, &ppid) && ppid == parent) children.push_back(pid);
  }
  return children;
}

bool Contains(const std::string& text, std::string_view what) {
  return text.find(what) != std::string::npos;
}

}  // namespace

Result<std::unique_ptr<PostgresServer>> PostgresServer::Start(
    const PostgresServerOptions& options) {
  auto bin_dir = FindBinDir();
  if (!bin_dir.ok()) return bin_dir.status();
  auto user = ServerUser();
  if (!user.ok()) return user.status();

  std::unique_ptr<PostgresServer> server(new PostgresServer());
  server->options_ = options;
  server->bin_dir_ = *bin_dir;
  server->uid_ = user->uid;
  server->gid_ = user->gid;
  server->switch_user_ = user->switch_user;

  std::string pattern = (fs::temp_directory_path() / "idem-pg-XXXXXX").string();
  if (!mkdtemp(pattern.data())) return Internal("mkdtemp failed");
  server->dir_ = pattern;  // from here on the destructor cleans up
  if (user->switch_user && chown(server->dir_.c_str(), user->uid, user->gid) != 0) {
    return Internal("chown of the temporary directory failed");
  }

  const std::string log = server->dir_ + "/initdb.log";
  const pid_t initdb = Spawn(
      {server->bin_dir_ + "/initdb", "-D", server->dir_ + "/data", "-U", kSuperuser,
       "--auth=trust", "--no-locale", "-E", "UTF8", "--no-sync", "--no-instructions"},
      log, *user, SIGKILL);
  int status = 0;
  if (initdb < 0 || !WaitExit(initdb, 120s, &status) || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0) {
    std::ifstream in(log);
    std::stringstream text;
    text << in.rdbuf();
    return Internal("initdb failed: " + text.str());
  }
  if (options.tls) {
    if (Status made = server->MakeCertificate(); !made.ok()) return made;
  }
  if (Status started = server->Launch(true); !started.ok()) return started;
  return server;
}

Status PostgresServer::MakeCertificate() {
  const User user{uid_, gid_, switch_user_};
  const std::string key = dir_ + "/server.key";
  const std::string log = dir_ + "/openssl.log";
  const pid_t openssl =
      Spawn({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
             "-keyout", key, "-out", tls_certificate(), "-days", "2", "-subj",
             "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"},
            log, user, SIGKILL);
  int status = 0;
  if (openssl < 0 || !WaitExit(openssl, 60s, &status) || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0) {
    std::ifstream in(log);
    std::stringstream text;
    text << in.rdbuf();
    return Internal("openssl req failed: " + text.str());
  }
  // PostgreSQL refuses a key that others may read.
  if (chmod(key.c_str(), 0600) != 0) return Internal("chmod of the TLS key failed");
  return Status::Ok();
}

PostgresServer::~PostgresServer() {
  (void)Stop();
  if (!dir_.empty()) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

Status PostgresServer::Launch(bool pick_port) {
  const User user{uid_, gid_, switch_user_};
  const std::string log = dir_ + "/postgres.log";
  const bool fsync = options_.fsync;
  Status last = Internal("postgres did not start");
  for (int attempt = 0; attempt < 8; ++attempt) {
    if (pick_port || port_ == 0) port_ = FreePort();
    if (port_ <= 0) return Internal("no free port");
    std::vector<std::string> argv = {
        bin_dir_ + "/postgres",
        "-D",
        dir_ + "/data",
        "-p",
        std::to_string(port_),
        "-k",
        dir_,
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        std::string("fsync=") + (fsync ? "on" : "off"),
        "-c",
        std::string("full_page_writes=") + (fsync ? "on" : "off"),
        "-c",
        "max_connections=300",
        "-c",
        "shared_buffers=32MB",
        "-c",
        "log_min_messages=warning",
        "-c",
        "log_min_error_statement=panic"};
    if (options_.tls) {
      for (std::string setting :
           {std::string("ssl=on"), "ssl_cert_file=" + tls_certificate(),
            "ssl_key_file=" + dir_ + "/server.key"}) {
        argv.push_back("-c");
        argv.push_back(std::move(setting));
      }
    }
    const pid_t pid = Spawn(argv, log, user, SIGQUIT);
    if (pid < 0) return Internal("fork failed");
    const std::string uri = Uri() + "?connect_timeout=2";
    const auto deadline = SteadyClock::now() + options_.start_timeout;
    bool exited = false;
    while (SteadyClock::now() < deadline) {
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        exited = true;
        break;
      }
      if (PQping(uri.c_str()) == PQPING_OK) {
        pid_ = pid;
        return Status::Ok();
      }
      std::this_thread::sleep_for(25ms);
    }
    if (!exited) {
      kill(pid, SIGKILL);
      WaitExit(pid, 10s);
      return Internal("postgres did not accept connections in time: " + LogTail());
    }
    const std::string tail = LogTail();
    last = Internal("postgres exited at start: " + tail);
    if (Contains(tail, "could not bind") || Contains(tail, "already in use") ||
        Contains(tail, "could not create any TCP/IP sockets")) {
      pick_port = true;  // someone took the port between our probe and bind
      continue;
    }
    if (Contains(tail, "shared memory block is still in use") ||
        Contains(tail, "lock file")) {
      std::this_thread::sleep_for(500ms);  // backends of a crash still exiting
      continue;
    }
    return last;
  }
  return last;
}

std::string PostgresServer::LogTail() const {
  std::ifstream in(dir_ + "/postgres.log");
  std::stringstream text;
  text << in.rdbuf();
  const std::string all = text.str();
  return all.size() > 2000 ? all.substr(all.size() - 2000) : all;
}

std::string PostgresServer::Uri(const std::string& database) const {
  return "postgresql://" + std::string(kSuperuser) +
         "@127.0.0.1:" + std::to_string(port_) + "/" + database;
}

Status PostgresServer::CreateDatabase(const std::string& name) {
  const std::string uri = Uri() + "?connect_timeout=10";
  PGconn* conn = PQconnectdb(uri.c_str());
  std::string error;
  if (PQstatus(conn) != CONNECTION_OK) {
    error = PQerrorMessage(conn);
  } else {
    PGresult* result = PQexec(conn, ("CREATE DATABASE \"" + name + "\"").c_str());
    if (PQresultStatus(result) != PGRES_COMMAND_OK) error = PQresultErrorMessage(result);
    PQclear(result);
  }
  PQfinish(conn);
  return error.empty() ? Status::Ok() : Internal("CREATE DATABASE: " + error);
}

Result<std::string> PostgresServer::Query(const std::string& database,
                                          const std::string& sql) const {
  return RunSql(Uri(database), sql);
}

Result<std::string> RunSql(const std::string& uri, const std::string& sql) {
  const std::string conninfo = uri + "?connect_timeout=10";
  PGconn* conn = PQconnectdb(conninfo.c_str());
  Result<std::string> out = std::string();
  if (PQstatus(conn) != CONNECTION_OK) {
    out = Unavailable(PQerrorMessage(conn));
  } else {
    PGresult* result = PQexec(conn, sql.c_str());
    const ExecStatusType status = PQresultStatus(result);
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
      out = Internal(PQresultErrorMessage(result));
    } else if (PQntuples(result) > 0 && PQnfields(result) > 0) {
      out = std::string(PQgetvalue(result, 0, 0));
    }
    PQclear(result);
  }
  PQfinish(conn);
  return out;
}

Status PostgresServer::Stop() {
  if (pid_ <= 0) return Status::Ok();
  (void)SignalAll(SIGCONT);  // a paused server could not act on SIGINT
  const pid_t pid = pid_;
  pid_ = -1;
  kill(pid, SIGINT);  // fast shutdown
  if (WaitExit(pid, 60s)) return Status::Ok();
  const auto children = ChildrenOf(pid);
  kill(pid, SIGKILL);
  for (pid_t child : children) kill(child, SIGKILL);
  WaitExit(pid, 10s);
  return Internal("postgres did not stop in time; killed");
}

Status PostgresServer::Crash() {
  if (pid_ <= 0) return FailedPrecondition("postgres is not running");
  const pid_t pid = pid_;
  pid_ = -1;
  const auto children = ChildrenOf(pid);
  kill(pid, SIGKILL);
  for (pid_t child : children) kill(child, SIGKILL);
  WaitExit(pid, 10s);
  const auto deadline = SteadyClock::now() + 10s;
  for (pid_t child : children) {
    while (Alive(child) && SteadyClock::now() < deadline)
      std::this_thread::sleep_for(10ms);
  }
  return Status::Ok();
}

Status PostgresServer::SignalAll(int signal) {
  if (pid_ <= 0) return FailedPrecondition("postgres is not running");
  const auto children = ChildrenOf(pid_);
  kill(pid_, signal);
  for (pid_t child : children) kill(child, signal);
  return Status::Ok();
}

Status PostgresServer::Pause() { return SignalAll(SIGSTOP); }
Status PostgresServer::Resume() { return SignalAll(SIGCONT); }

Status PostgresServer::Restart() {
  if (pid_ > 0) return FailedPrecondition("postgres is running");
  return Launch(false);
}

}  // namespace idem::testing
