#include "redis/redis_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace idem::testing {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

constexpr int kStartAttempts = 5;

// The absolute path of a program on PATH, found before fork (execv after
// fork must not allocate).
Result<std::string> FindProgram(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const std::string candidate = dir + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return NotFound(name + " is not installed (apt-get install redis-server)");
}

Result<std::string> MakeTempDir() {
  std::string pattern =
      (std::filesystem::temp_directory_path() / "idem-redis-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) return Internal("mkdtemp failed");
  return pattern;
}

std::string Tail(const std::string& path) {
  std::ifstream in(path);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return all.size() > 600 ? all.substr(all.size() - 600) : all;
}

// Forks and execs `argv` with stdout/stderr into `log_path`. The child dies
// with the calling thread.
Result<pid_t> Spawn(const std::vector<std::string>& argv, const std::string& log_path) {
  auto program = FindProgram(argv.front());
  if (!program.ok()) return program.status();
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return Internal("fork failed");
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
    }
    ::execv(program->c_str(), args.data());
    ::_exit(127);
  }
  return pid;
}

// Waits for `pid` to exit, at most `limit`; true if it did.
bool WaitForExit(pid_t pid, std::chrono::milliseconds limit, int* status = nullptr) {
  const auto deadline = SteadyClock::now() + limit;
  while (true) {
    int wstatus = 0;
    const pid_t r = ::waitpid(pid, &wstatus, WNOHANG);
    if (r == pid || r < 0) {
      if (status != nullptr) *status = wstatus;
      return true;
    }
    if (SteadyClock::now() >= deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
}

RedisReply Convert(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::kError;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      for (size_t i = 0; i < r->elements; ++i)
        out.elements.push_back(Convert(r->element[i]));
      break;
    default:
      out.type = RedisReply::Type::kNil;
  }
  return out;
}

Result<RedisReply> RunCommand(int port, const std::string& password,
                              const std::vector<std::string>& args) {
  const timeval timeout{2, 0};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port, timeout);
  if (c == nullptr || c->err != 0) {
    std::string why = c != nullptr ? c->errstr : "out of memory";
    if (c != nullptr) redisFree(c);
    return Unavailable("connect to 127.0.0.1:" + std::to_string(port) + ": " + why);
  }
  std::unique_ptr<redisContext, void (*)(redisContext*)> context(c, &redisFree);
  redisSetTimeout(c, timeout);
  auto run = [&](const std::vector<std::string>& argv) -> Result<RedisReply> {
    std::vector<const char*> ptrs;
    std::vector<size_t> lens;
    for (const std::string& a : argv) {
      ptrs.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* reply = static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(argv.size()), ptrs.data(), lens.data()));
    if (reply == nullptr)
      return Unavailable(std::string("redis command failed: ") + c->errstr);
    RedisReply converted = Convert(reply);
    freeReplyObject(reply);
    return converted;
  };
  if (!password.empty()) {
    auto auth = run({"AUTH", password});
    if (!auth.ok()) return auth.status();
  }
  return run(args);
}

}  // namespace

Result<int> PickFreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return Internal("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return Internal("bind to a free port failed");
  }
  const int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

Result<int> RunProgram(const std::vector<std::string>& argv, const std::string& log_path,
                       std::chrono::seconds limit) {
  auto pid = Spawn(argv, log_path);
  if (!pid.ok()) return pid.status();
  int status = 0;
  if (!WaitForExit(*pid, limit, &status)) {
    ::kill(*pid, SIGKILL);
    WaitForExit(*pid, 5s);
    return DeadlineExceeded(argv.front() + " did not finish in time");
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

RedisServer::RedisServer(RedisServerOptions options, std::string dir, int port,
                         int bus_port)
    : options_(std::move(options)),
      dir_(std::move(dir)),
      port_(port),
      bus_port_(bus_port) {}

RedisServer::~RedisServer() {
  (void)Kill();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

Result<std::unique_ptr<RedisServer>> RedisServer::Start(RedisServerOptions options) {
  Status last = Internal("no attempt");
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    auto dir = MakeTempDir();
    if (!dir.ok()) return dir.status();
    auto port = PickFreePort();
    if (!port.ok()) return port.status();
    int bus_port = 0;
    if (options.cluster_enabled) {
      auto bus = PickFreePort();
      if (!bus.ok()) return bus.status();
      bus_port = *bus;
      if (bus_port == *port) continue;
    }
    std::unique_ptr<RedisServer> server(new RedisServer(options, *dir, *port, bus_port));
    last = server->Launch();
    if (last.ok()) return server;
    // Most likely another process took the port in between: try another.
  }
  return last;
}

Status RedisServer::Launch() {
  std::vector<std::string> argv = {"redis-server",
                                   "--port",
                                   std::to_string(port_),
                                   "--bind",
                                   "127.0.0.1",
                                   "--dir",
                                   dir_,
                                   "--save",
                                   "",
                                   "--daemonize",
                                   "no",
                                   "--protected-mode",
                                   "no",
                                   "--logfile",
                                   dir_ + "/redis.log",
                                   "--appendonly",
                                   options_.appendfsync.empty() ? "no" : "yes"};
  if (!options_.appendfsync.empty()) {
    argv.insert(argv.end(), {"--appendfsync", options_.appendfsync});
  }
  if (!options_.password.empty())
    argv.insert(argv.end(), {"--requirepass", options_.password});
  if (options_.cluster_enabled) {
    argv.insert(
        argv.end(),
        {"--cluster-enabled", "yes", "--cluster-config-file", dir_ + "/nodes.conf",
         "--cluster-port", std::to_string(bus_port_), "--cluster-node-timeout", "3000"});
  }
  argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());
  auto pid = Spawn(argv, dir_ + "/stdout.log");
  if (!pid.ok()) return pid.status();
  pid_ = *pid;
  Status ready = WaitUntilReady();
  if (!ready.ok()) (void)Kill();
  return ready;
}

Status RedisServer::WaitUntilReady() {
  const auto deadline = SteadyClock::now() + 10s;
  while (SteadyClock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return Unavailable("redis-server on port " + std::to_string(port_) + " exited: " +
                         Tail(dir_ + "/redis.log") + Tail(dir_ + "/stdout.log"));
    }
    auto pong = RunCommand(port_, options_.password, {"PING"});
    if (pong.ok() && pong->type == RedisReply::Type::kStatus) return Status::Ok();
    std::this_thread::sleep_for(20ms);
  }
  return DeadlineExceeded("redis-server on port " + std::to_string(port_) +
                          " did not answer PING within 10 s");
}

Status RedisServer::Stop() {
  if (pid_ <= 0) return Status::Ok();
  ::kill(pid_, SIGCONT);
  ::kill(pid_, SIGTERM);
  if (!WaitForExit(pid_, 5s)) {
    ::kill(pid_, SIGKILL);
    WaitForExit(pid_, 5s);
  }
  pid_ = -1;
  return Status::Ok();
}

Status RedisServer::Kill() {
  if (pid_ <= 0) return Status::Ok();
  ::kill(pid_, SIGKILL);
  WaitForExit(pid_, 5s);
  pid_ = -1;
  return Status::Ok();
}

Status RedisServer::Restart() {
  if (pid_ > 0) return FailedPrecondition("the server is still running");
  return Launch();
}

Status RedisServer::Pause() {
  if (pid_ <= 0 || ::kill(pid_, SIGSTOP) != 0) return FailedPrecondition("not running");
  return Status::Ok();
}

Status RedisServer::Resume() {
  if (pid_ <= 0 || ::kill(pid_, SIGCONT) != 0) return FailedPrecondition("not running");
  return Status::Ok();
}

Result<RedisReply> RedisServer::Command(const std::vector<std::string>& args) const {
  return RunCommand(port_, options_.password, args);
}

// --- RedisCluster --------------------------------------------------------------

Result<std::unique_ptr<RedisCluster>> RedisCluster::Start(int masters) {
  std::unique_ptr<RedisCluster> cluster(new RedisCluster());
  RedisServerOptions options;
  options.cluster_enabled = true;
  for (int i = 0; i < masters; ++i) {
    auto node = RedisServer::Start(options);
    if (!node.ok()) return node.status();
    cluster->nodes_.push_back(std::move(node).value());
  }
  std::vector<std::string> argv = {"redis-cli", "--cluster", "create"};
  for (const auto& node : cluster->nodes_) argv.push_back(node->address());
  argv.insert(argv.end(), {"--cluster-replicas", "0", "--cluster-yes"});
  const std::string log = cluster->nodes_.front()->dir() + "/cluster-create.log";
  auto exit_code = RunProgram(argv, log, 60s);
  if (!exit_code.ok()) return exit_code.status();
  if (*exit_code != 0) {
    return Unavailable("redis-cli --cluster create failed: " + Tail(log));
  }
  Status healthy = cluster->WaitUntilHealthy(30s);
  if (!healthy.ok()) return healthy;
  return cluster;
}

std::string RedisCluster::seeds() const {
  std::string seeds;
  for (const auto& node : nodes_) {
    if (!seeds.empty()) seeds += ",";
    seeds += node->address();
  }
  return seeds;
}

Status RedisCluster::WaitUntilHealthy(std::chrono::seconds limit) const {
  const auto deadline = SteadyClock::now() + limit;
  while (SteadyClock::now() < deadline) {
    bool all_ok = true;
    for (const auto& node : nodes_) {
      auto info = node->Command({"CLUSTER", "INFO"});
      if (!info.ok() || info->str.find("cluster_state:ok") == std::string::npos ||
          info->str.find("cluster_slots_assigned:16384") == std::string::npos ||
          info->str.find("cluster_known_nodes:" + std::to_string(nodes_.size())) ==
              std::string::npos) {
        all_ok = false;
        break;
      }
    }
    if (all_ok) return Status::Ok();
    std::this_thread::sleep_for(100ms);
  }
  return DeadlineExceeded("the redis cluster did not reach cluster_state:ok");
}

Result<RedisServer*> RedisCluster::MasterOf(int slot) const {
  auto slots = nodes_.front()->Command({"CLUSTER", "SLOTS"});
  if (!slots.ok()) return slots.status();
  for (const RedisReply& range : slots->elements) {
    if (range.elements.size() < 3 || range.elements[0].integer > slot ||
        range.elements[1].integer < slot) {
      continue;
    }
    const long long port = range.elements[2].elements.at(1).integer;
    for (const auto& node : nodes_) {
      if (node->port() == port) return node.get();
    }
  }
  return NotFound("no node serves slot " + std::to_string(slot));
}

Status RedisCluster::MigrateSlot(int slot, RedisServer& target,
                                 const std::function<void()>& between_steps) {
  auto source_or = MasterOf(slot);
  if (!source_or.ok()) return source_or.status();
  RedisServer& source = **source_or;
  if (&source == &target) return Status::Ok();
  auto source_id = source.Command({"CLUSTER", "MYID"});
  auto target_id = target.Command({"CLUSTER", "MYID"});
  if (!source_id.ok()) return source_id.status();
  if (!target_id.ok()) return target_id.status();
  const std::string s = std::to_string(slot);
  auto check = [](const Result<RedisReply>& r, const char* what) -> Status {
    if (!r.ok()) return r.status();
    if (r->type == RedisReply::Type::kError)
      return Internal(std::string(what) + ": " + r->str);
    return Status::Ok();
  };
  auto step = [&] {
    if (between_steps) between_steps();
  };
  Status st =
      check(target.Command({"CLUSTER", "SETSLOT", s, "IMPORTING", source_id->str}),
            "SETSLOT IMPORTING");
  if (!st.ok()) return st;
  st = check(source.Command({"CLUSTER", "SETSLOT", s, "MIGRATING", target_id->str}),
             "SETSLOT MIGRATING");
  if (!st.ok()) return st;
  step();
  for (int round = 0; round < 10'000; ++round) {
    auto keys = source.Command({"CLUSTER", "GETKEYSINSLOT", s, "50"});
    if (!keys.ok()) return keys.status();
    if (keys->elements.empty()) break;
    std::vector<std::string> migrate = {
        "MIGRATE", "127.0.0.1", std::to_string(target.port()), "", "0", "5000", "KEYS"};
    for (const RedisReply& key : keys->elements) migrate.push_back(key.str);
    st = check(source.Command(migrate), "MIGRATE");
    if (!st.ok()) return st;
    step();
  }
  for (RedisServer* node : {&target, &source}) {
    st = check(node->Command({"CLUSTER", "SETSLOT", s, "NODE", target_id->str}),
               "SETSLOT NODE");
    if (!st.ok()) return st;
  }
  for (const auto& node : nodes_) {
    if (node.get() == &target || node.get() == &source) continue;
    st = check(node->Command({"CLUSTER", "SETSLOT", s, "NODE", target_id->str}),
               "SETSLOT NODE");
    if (!st.ok()) return st;
  }
  step();
  return Status::Ok();
}

}  // namespace idem::testing
