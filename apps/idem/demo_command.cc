// idem demo: the demo payments service with the gateway in front of it.
//
// Starts idem-demo-upstream (found next to this executable) on an ephemeral
// loopback port, serves the gateway on 127.0.0.1:8080 (admin 9090) with
// the embedded store (RocksDB in ./idem-data when this build has it, else
// the memory store), prints three curl lines, and stops both on Ctrl-C.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "commands.h"
#include "gateway_runner.h"
#include "idem/open_store.h"

extern char** environ;

namespace idem::cli {
namespace {

namespace fs = std::filesystem;

constexpr std::chrono::seconds kUpstreamStartTimeout{10};
constexpr std::chrono::milliseconds kPoll{50};
constexpr const char* kDurableStore = "rocksdb:./idem-data";

struct DemoArgs {
  std::string listen = "127.0.0.1:8080";
  std::string admin_listen = "127.0.0.1:9090";
};

// The demo upstream as a child process; stopped when this goes away.
class ChildProcess {
 public:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  ~ChildProcess() {
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  bool Exited() const {
    int status = 0;
    return ::waitpid(pid_, &status, WNOHANG) == pid_;
  }

 private:
  pid_t pid_;
};

Result<fs::path> UpstreamBinary() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return Unavailable("cannot find this executable: " + ec.message());
  fs::path upstream = self.parent_path() / "idem-demo-upstream";
  if (::access(upstream.c_str(), X_OK) != 0) {
    return Unavailable(upstream.string() + " is missing; build it with the project");
  }
  return upstream;
}

Result<std::unique_ptr<ChildProcess>> SpawnUpstream(const fs::path& binary,
                                                    const std::string& port_file) {
  std::vector<std::string> args = {binary.string(), "--listen", "127.0.0.1:0",
                                   "--port-file", port_file};
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int error =
      ::posix_spawn(&pid, binary.c_str(), nullptr, nullptr, argv.data(), environ);
  if (error != 0) {
    return Unavailable("cannot start " + binary.string() + ": " + std::strerror(error));
  }
  return std::make_unique<ChildProcess>(pid);
}

// The "listen=HOST:PORT" line of the upstream's port file, once written.
Result<std::string> WaitForUpstream(const ChildProcess& child,
                                    const std::string& port_file) {
  const auto deadline = std::chrono::steady_clock::now() + kUpstreamStartTimeout;
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(port_file);
    std::string line;
    if (in && std::getline(in, line) && line.rfind("listen=", 0) == 0) {
      return line.substr(std::string_view("listen=").size());
    }
    if (child.Exited()) return Unavailable("the demo upstream exited at start");
    std::this_thread::sleep_for(kPoll);
  }
  return Unavailable("the demo upstream did not start within 10 s");
}

// RocksDB when OpenStore knows it, else the memory store. A RocksDB that
// exists but cannot be opened (say, another gateway holds it) is an error.
Result<std::shared_ptr<Store>> OpenDemoStore(std::string& uri) {
  Result<std::shared_ptr<Store>> durable = OpenStore(kDurableStore);
  if (durable.ok()) {
    uri = kDurableStore;
    return durable;
  }
  if (durable.status().code() != StatusCode::kInvalidArgument) return durable.status();
  uri = "memory:";
  return OpenStore(uri);
}

std::string RandomKeySuffix() {
  std::random_device device;
  char suffix[9];
  std::snprintf(suffix, sizeof suffix, "%08x", device());
  return suffix;
}

void PrintWelcome(const gateway::BoundAddresses& addresses, const std::string& upstream,
                  const std::string& store_uri) {
  const std::string key = "demo-" + RandomKeySuffix();
  const std::string base = "curl -i -X POST http://" + addresses.listen +
                           "/payments -H 'Content-Type: application/json' "
                           "-H 'Idempotency-Key: " +
                           key + "' ";
  std::cout << "\nidem demo: the gateway on http://" << addresses.listen
            << " (admin http://" << addresses.admin << ") in front of the demo payments "
            << "service on http://" << upstream << ", store " << store_uri << ".\n\n"
            << "# 1. a first payment: executed by the service (201)\n"
            << base << "-d '{\"amount\":100,\"currency\":\"EUR\"}'\n\n"
            << "# 2. the same request again: replayed byte for byte, with "
               "Idempotent-Replayed: true\n"
            << base << "-d '{\"amount\":100,\"currency\":\"EUR\"}'\n\n"
            << "# 3. the same key with another body: 422 problem+json\n"
            << base << "-d '{\"amount\":999,\"currency\":\"EUR\"}'\n\n"
            << "Metrics: curl http://" << addresses.admin << "/metrics   Stop: Ctrl-C\n"
            << std::endl;
}

int Demo(const DemoArgs& args) {
  Result<fs::path> binary = UpstreamBinary();
  if (!binary.ok()) {
    std::cerr << "idem: " << binary.status().message() << "\n";
    return 1;
  }
  // Under $TMPDIR when set (temp_directory_path), like every other
  // temporary file; mkdtemp makes it private and unique.
  std::error_code tmp_error;
  const fs::path tmp = fs::temp_directory_path(tmp_error);
  if (tmp_error) {
    std::cerr << "idem: no temporary directory (TMPDIR): " << tmp_error.message() << "\n";
    return 1;
  }
  // mkdtemp replaces the template's last six characters, which must be 'X'.
  std::string directory_template = (tmp / "idem-demo-").string() + std::string(6, 'X');
  const char* directory = ::mkdtemp(directory_template.data());
  if (directory == nullptr) {
    std::cerr << "idem: cannot create a temporary directory in " << tmp.string() << ": "
              << std::strerror(errno) << "\n";
    return 1;
  }
  const std::string port_file = std::string(directory) + "/upstream.port";
  int code = 1;
  {
    Result<std::unique_ptr<ChildProcess>> child = SpawnUpstream(*binary, port_file);
    Result<std::string> upstream = child.ok() ? WaitForUpstream(**child, port_file)
                                              : Result<std::string>(child.status());
    std::string store_uri;
    Result<std::shared_ptr<Store>> store =
        upstream.ok() ? OpenDemoStore(store_uri)
                      : Result<std::shared_ptr<Store>>(upstream.status());
    if (!store.ok()) {
      std::cerr << "idem: " << store.status().message() << "\n";
    } else {
      GatewayRun run;
      run.config.server.listen = args.listen;
      run.config.server.admin_listen = args.admin_listen;
      run.config.upstream.url = "http://" + *upstream;
      run.config.store.uri = store_uri;
      run.store = std::move(store).value();
      run.on_ready = [upstream = *upstream, store_uri](const gateway::BoundAddresses& a) {
        PrintWelcome(a, upstream, store_uri);
      };
      code = RunGateway(std::move(run));
    }
  }
  std::error_code ignored;
  fs::remove_all(directory, ignored);
  return code;
}

}  // namespace

void AddDemoCommand(CLI::App& app) {
  auto args = std::make_shared<DemoArgs>();
  CLI::App* demo = app.add_subcommand(
      "demo",
      "Start the demo payments service behind the gateway and show how to try it");
  demo->add_option("--listen", args->listen, "gateway HOST:PORT")->capture_default_str();
  demo->add_option("--admin-listen", args->admin_listen, "admin HOST:PORT")
      ->capture_default_str();
  demo->callback([args] {
    const int code = Demo(*args);
    if (code != 0) throw CLI::RuntimeError(code);
  });
}

}  // namespace idem::cli
