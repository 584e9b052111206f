#include "harness.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

namespace idem::e2e {
namespace {

using Clock = std::chrono::steady_clock;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

bool WriteFile(const std::string& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  return static_cast<bool>(out.flush());
}

std::string EnvOr(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

// Parses "name=HOST:PORT" lines.
std::map<std::string, uint16_t> ParsePortFile(const std::string& text) {
  std::map<std::string, uint16_t> ports;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    size_t eq = line.find('=');
    size_t colon = line.rfind(':');
    if (eq == std::string::npos || colon == std::string::npos || colon < eq) continue;
    uint16_t port = 0;
    const char* first = line.data() + colon + 1;
    const char* last = line.data() + line.size();
    auto [end, ec] = std::from_chars(first, last, port);
    if (ec == std::errc() && end == last && port != 0) ports[line.substr(0, eq)] = port;
  }
  return ports;
}

std::optional<SeenRequest> ParseSeen(const std::string& json_text) {
  boost::system::error_code ec;
  boost::json::value value = boost::json::parse(json_text, ec);
  if (ec || !value.is_object()) return std::nullopt;
  const auto& object = value.as_object();
  SeenRequest seen;
  if (auto* m = object.if_contains("method"); m && m->is_string()) {
    seen.method = std::string(m->as_string());
  }
  if (auto* t = object.if_contains("target"); t && t->is_string()) {
    seen.target = std::string(t->as_string());
  }
  if (auto* b = object.if_contains("body_bytes"); b && b->is_number()) {
    seen.body_bytes = b->to_number<uint64_t>();
  }
  if (auto* h = object.if_contains("headers"); h && h->is_array()) {
    for (const auto& pair : h->as_array()) {
      if (!pair.is_array() || pair.as_array().size() != 2) continue;
      const auto& a = pair.as_array();
      if (!a[0].is_string() || !a[1].is_string()) continue;
      seen.headers.emplace_back(std::string(a[0].as_string()),
                                std::string(a[1].as_string()));
    }
  }
  return seen;
}

}  // namespace

// ---- TempDir

TempDir::TempDir() {
  std::string base = EnvOr("TMPDIR", "/tmp");
  std::string pattern = base + "/idem-e2e-XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (::mkdtemp(buffer.data()) != nullptr) path_ = buffer.data();
}

TempDir::~TempDir() {
  if (path_.empty() || std::getenv("IDEM_E2E_KEEP_TMP") != nullptr) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

// ---- ExitStatus

std::string ExitStatus::ToString() const {
  if (exited) return "exited with status " + std::to_string(code);
  return "killed by signal " + std::to_string(signal) + " (" + strsignal(signal) + ")";
}

// ---- Process

Process::~Process() { Kill(); }

bool Process::Start(const std::vector<std::string>& argv, const std::string& log_path,
                    std::string& error) {
  if (pid_ > 0 && Running()) {
    error = "process already running";
    return false;
  }
  if (argv.empty() || ::access(argv[0].c_str(), X_OK) != 0) {
    error = "not an executable: " + (argv.empty() ? std::string("(none)") : argv[0]);
    return false;
  }
  log_path_ = log_path;
  exit_status_.reset();
  // Everything the child needs is prepared before fork(): after it, only
  // async-signal-safe calls.
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    error = "cannot open " + log_path + ": " + std::strerror(errno);
    return false;
  }
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    error = std::string("fork: ") + std::strerror(errno);
    ::close(log_fd);
    if (null_fd >= 0) ::close(null_fd);
    return false;
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    // Signals blocked by the test runner must not stay blocked in the child.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(log_fd);
  if (null_fd >= 0) ::close(null_fd);
  pid_ = pid;
  return true;
}

void Process::Reap(int wait_status) {
  ExitStatus status;
  if (WIFEXITED(wait_status)) {
    status.exited = true;
    status.code = WEXITSTATUS(wait_status);
  } else if (WIFSIGNALED(wait_status)) {
    status.signal = WTERMSIG(wait_status);
  }
  exit_status_ = status;
  pid_ = -1;
}

bool Process::Running() {
  if (pid_ <= 0) return false;
  int wait_status = 0;
  pid_t r = ::waitpid(pid_, &wait_status, WNOHANG);
  if (r == pid_) {
    Reap(wait_status);
    return false;
  }
  return r == 0;
}

bool Process::Signal(int signal) { return pid_ > 0 && ::kill(pid_, signal) == 0; }

std::optional<ExitStatus> Process::Wait(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    if (!Running()) return exit_status_;
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(5ms);
  }
}

void Process::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int wait_status = 0;
  while (::waitpid(pid_, &wait_status, 0) < 0 && errno == EINTR) {
  }
  Reap(wait_status);
}

size_t Process::LogSize() const {
  struct stat st {};
  if (log_path_.empty() || ::stat(log_path_.c_str(), &st) != 0) return 0;
  return static_cast<size_t>(st.st_size);
}

std::string Process::LogSince(size_t offset, size_t max_bytes) const {
  if (log_path_.empty()) return {};
  std::string text = ReadFile(log_path_);
  if (offset >= text.size()) return {};
  text.erase(0, offset);
  if (text.size() > max_bytes) {
    text = "[... " + std::to_string(text.size() - max_bytes) + " bytes cut ...]\n" +
           text.substr(text.size() - max_bytes);
  }
  return text;
}

// ---- waiting

bool WaitUntil(const std::function<bool()>& condition,
               std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    if (condition()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
}

std::optional<std::map<std::string, uint16_t>> WaitForPortFile(
    const std::string& path, const std::vector<std::string>& names, Process& process,
    std::chrono::milliseconds timeout, std::string& error) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    auto ports = ParsePortFile(ReadFile(path));
    bool complete = true;
    for (const auto& name : names) complete = complete && ports.count(name) > 0;
    if (complete) return ports;
    if (!process.Running()) {
      error = "process " +
              (process.exit_status() ? process.exit_status()->ToString() : "ended") +
              " before writing " + path + "; its log:\n" + process.LogSince(0);
      return std::nullopt;
    }
    if (Clock::now() >= deadline) {
      error = "no complete port file " + path + " after " +
              std::to_string(timeout.count()) + " ms; log:\n" + process.LogSince(0);
      return std::nullopt;
    }
    std::this_thread::sleep_for(5ms);
  }
}

std::string IdemBinary() { return EnvOr("IDEM_BINARY", IDEM_BINARY); }
std::string DemoUpstreamBinary() {
  return EnvOr("IDEM_DEMO_UPSTREAM_BINARY", IDEM_DEMO_UPSTREAM_BINARY);
}

CliRun RunIdem(const std::vector<std::string>& args) {
  TempDir dir;
  Process process;
  std::vector<std::string> argv = {IdemBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string error;
  if (!process.Start(argv, dir.File("out"), error)) {
    ADD_FAILURE() << error;
    return {};
  }
  std::optional<ExitStatus> status = process.Wait(60s);
  if (!status) {
    ADD_FAILURE() << "idem did not exit";
    process.Kill();
  }
  return {status.value_or(ExitStatus{}), process.LogSince(0)};
}

// ---- SeenRequest

std::optional<std::string> SeenRequest::Header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (EqualsIgnoreCase(n, name)) return v;
  }
  return std::nullopt;
}

std::vector<std::string> SeenRequest::HeaderValues(std::string_view name) const {
  std::vector<std::string> values;
  for (const auto& [n, v] : headers) {
    if (EqualsIgnoreCase(n, name)) values.push_back(v);
  }
  return values;
}

std::string SeenRequest::Describe() const {
  std::string out = method + " " + target + "\n";
  for (const auto& [n, v] : headers) out.append(n).append(": ").append(v).append("\n");
  return out;
}

// ---- Upstream

std::unique_ptr<Upstream> Upstream::Start(const Options& options, std::string& error) {
  auto upstream = std::unique_ptr<Upstream>(new Upstream());
  if (upstream->dir_.path().empty()) {
    error = "cannot create a temporary directory";
    return nullptr;
  }
  std::string port_file = upstream->dir_.File("upstream.port");
  std::vector<std::string> argv = {DemoUpstreamBinary(),
                                   "--listen",
                                   "127.0.0.1:0",
                                   "--port-file",
                                   port_file,
                                   "--threads",
                                   std::to_string(options.threads)};
  argv.insert(argv.end(), options.extra_args.begin(), options.extra_args.end());
  if (!upstream->process_.Start(argv, upstream->dir_.File("upstream.log"), error)) {
    return nullptr;
  }
  auto ports = WaitForPortFile(port_file, {"listen"}, upstream->process_, 10s, error);
  if (!ports) return nullptr;
  upstream->port_ = ports->at("listen");
  return upstream;
}

uint64_t Upstream::FetchNumber(const std::string& target) {
  HttpResponse response = Fetch(port_, Get(target), 5s);
  uint64_t value = 0;
  if (!response.ok() || response.status != 200) return ~0ull;
  std::from_chars(response.body.data(), response.body.data() + response.body.size(),
                  value);
  return value;
}

uint64_t Upstream::Count(std::string_view key) {
  return FetchNumber("/_count?key=" + UrlEncode(key));
}

uint64_t Upstream::Total() { return FetchNumber("/_count"); }

void Upstream::Reset() { Fetch(port_, Post("/_reset", ""), 5s); }

std::optional<SeenRequest> Upstream::FetchLast(const std::string& target) {
  HttpResponse response = Fetch(port_, Get(target), 5s);
  if (!response.ok() || response.status != 200) return std::nullopt;
  return ParseSeen(response.body);
}

std::optional<SeenRequest> Upstream::Last(std::string_view key) {
  return FetchLast("/_last?key=" + UrlEncode(key));
}

std::optional<SeenRequest> Upstream::Last() { return FetchLast("/_last"); }

std::optional<std::vector<Upstream::Execution>> Upstream::Executions(
    std::string_view key) {
  HttpResponse response = Fetch(port_, Get("/_executions?key=" + UrlEncode(key)), 5s);
  if (!response.ok() || response.status != 200) return std::nullopt;
  boost::system::error_code ec;
  boost::json::value value = boost::json::parse(response.body, ec);
  if (ec || !value.is_array()) return std::nullopt;
  std::vector<Execution> executions;
  for (const auto& item : value.as_array()) {
    const auto* object = item.if_object();
    if (object == nullptr) return std::nullopt;
    const auto* serial = object->if_contains("execution");
    const auto* fence = object->if_contains("fence");
    if (serial == nullptr || fence == nullptr || !serial->is_number() || !fence->is_number()) {
      return std::nullopt;
    }
    executions.push_back({serial->to_number<uint64_t>(), fence->to_number<uint64_t>()});
  }
  return executions;
}

bool Upstream::WaitForCount(std::string_view key, uint64_t n,
                            std::chrono::milliseconds timeout) {
  return WaitUntil(
      [&] {
        uint64_t count = Count(key);
        return count != ~0ull && count >= n;
      },
      timeout);
}

// ---- Gateway

std::unique_ptr<Gateway> Gateway::Start(GatewayOptions options, std::string& error) {
  auto gateway = std::unique_ptr<Gateway>(new Gateway(std::move(options)));
  if (gateway->dir_.path().empty()) {
    error = "cannot create a temporary directory";
    return nullptr;
  }
  if (!gateway->Launch(error)) return nullptr;
  return gateway;
}

Gateway::~Gateway() { process_.Kill(); }

bool Gateway::Launch(std::string& error) {
  std::string config_path = dir_.File("idem.toml");
  std::string port_file = dir_.File("gateway.port");
  std::remove(port_file.c_str());
  if (!WriteFile(config_path, options_.config)) {
    error = "cannot write " + config_path;
    return false;
  }
  std::vector<std::string> argv = {
      IdemBinary(),          "serve",       "--config",
      config_path,           "--listen",    "127.0.0.1:0",
      "--admin-listen",      "127.0.0.1:0", "--upstream",
      options_.upstream_url, "--store",     options_.store_uri,
      "--port-file",         port_file};
  argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());
  std::string log = dir_.File("gateway-" + std::to_string(++launches_) + ".log");
  if (!process_.Start(argv, log, error)) return false;
  auto ports = WaitForPortFile(port_file, {"listen", "admin"}, process_,
                               options_.start_timeout, error);
  if (!ports) {
    error = "idem serve did not start (config:\n" + options_.config + ")\n" + error;
    process_.Kill();
    return false;
  }
  port_ = ports->at("listen");
  admin_port_ = ports->at("admin");
  return true;
}

std::optional<ExitStatus> Gateway::Stop(int signal, std::chrono::milliseconds timeout) {
  if (!process_.Running()) return process_.exit_status();
  process_.Signal(signal);
  return process_.Wait(timeout);
}

bool Gateway::Restart(std::string& error) {
  process_.Kill();
  return Launch(error);
}

std::string Gateway::Log() const { return process_.LogSince(0); }

}  // namespace idem::e2e
