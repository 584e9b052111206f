// The gateway's configuration: one TOML file (every key optional), command
// line flags on top. See docs/configuration.md for every key.
//
// A GatewayConfig is a plain value, validated once at start; the server
// reads it from many threads without locking.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "idem/encrypting_store.h"
#include "idem/engine.h"
#include "idem/fingerprint.h"
#include "idem/status.h"

namespace idem::gateway {

struct ServerConfig {
  std::string listen = "127.0.0.1:8080";
  std::string admin_listen = "127.0.0.1:9090";
  unsigned threads = 0;                             // 0: one per core
  uint64_t max_request_body = 10ull << 20;          // 413 above
  uint64_t max_header_size = 16ull << 10;           // 431 above
  std::chrono::milliseconds header_timeout{10'000};  // 408 / close
  std::chrono::milliseconds body_timeout{30'000};    // 408 / close
  std::chrono::milliseconds idle_timeout{60'000};    // keep-alive idle close
  std::chrono::milliseconds drain_timeout{30'000};   // SIGTERM grace
  std::string log_level = "info";  // trace debug info warn error off
  bool access_log = true;
  // Where secrets come from (a file's contents, or an environment
  // variable's value); "" is unset. Loaded by LoadSecrets, never rendered.
  std::string tenant_secret_file, tenant_secret_env;  // HMAC key of tenant ids
  std::string admin_token_file, admin_token_env;      // admin bearer token
};

struct UpstreamConfig {
  std::string url = "http://127.0.0.1:8081";  // http only; host, port, base path
  std::chrono::milliseconds timeout{30'000};   // 504 above
  std::chrono::milliseconds connect_timeout{5'000};
  unsigned max_idle_connections = 64;  // keep-alive pool size per io thread
};

// [store.encryption]: on when active_key is set.
struct EncryptionConfig {
  std::string active_key;  // id of the key that encrypts new records
  std::string keys_file;   // "ID:KEY" lines
  std::string keys_env;    // "ID:KEY,ID:KEY"
  bool enabled() const { return !active_key.empty(); }
};

struct StoreConfig {
  std::string uri = "rocksdb:./idem-data";
  bool auto_migrate = true;
  std::chrono::milliseconds sweep_interval{60'000};
  // The longest any one store call may take; then it fails (503 or
  // on_store_error) instead of holding the request.
  std::chrono::milliseconds operation_timeout{10'000};
  EncryptionConfig encryption;
};

// Secret material named by the configuration, read at start.
struct Secrets {
  std::string tenant_secret;  // empty: tenant ids are plain SHA-256
  std::string admin_token;    // empty: the admin listener asks for none
  std::optional<EncryptionKeys> encryption;
};

// [idempotency] and the overridable part of every [[route]].
struct IdempotencyConfig {
  std::string header = "Idempotency-Key";
  std::vector<std::string> methods = {"POST", "PUT", "PATCH"};
  bool require_key = false;
  FingerprintMode fingerprint = FingerprintMode::kBody;
  std::vector<std::string> fields;  // JSON pointers for fingerprint = fields
  std::vector<std::string> tenant_headers = {"Authorization"};
  std::vector<std::string> store_statuses = StatusPolicy::DefaultRules();
  uint64_t max_stored_body = 1ull << 20;
  ServerErrorPolicy on_server_error = ServerErrorPolicy::kRelease;
  bool on_store_error_pass = false;  // "reject" (false) or "pass" (true)
  EnginePolicy engine;  // ttl, lease_ttl, in_flight, wait_timeout, statuses
};

struct RouteConfig {
  std::string path;  // pattern; '*' matches any run of characters
  IdempotencyConfig idempotency;
};

struct GatewayConfig {
  ServerConfig server;
  UpstreamConfig upstream;
  StoreConfig store;
  IdempotencyConfig idempotency;  // defaults for requests no route matches
  std::vector<RouteConfig> routes;
  Secrets secrets;  // filled by LoadSecrets; never parsed or rendered

  // The settings for a request path: the first matching route's, or the
  // defaults.
  const IdempotencyConfig& ForPath(std::string_view path) const;
};

// Parses and validates TOML text. Errors name the key and what is wrong,
// e.g. `idempotency.ttl: "24x" is not a duration (use 500ms, 10s, 5m, 24h)`.
// Unknown keys are errors.
Result<GatewayConfig> ParseConfig(std::string_view toml_text,
                                  std::string_view source_name = "config");
Result<GatewayConfig> LoadConfigFile(const std::string& path);

// Flags given on the command line, applied over the file.
struct ConfigOverrides {
  std::optional<std::string> listen, admin_listen, upstream, store, log_level;
};
Result<GatewayConfig> ApplyOverrides(GatewayConfig config,
                                     const ConfigOverrides& overrides);

// Reads the secrets the configuration names (files, environment
// variables) into config.secrets. Errors name the key and the file or
// variable, never the secret.
Status LoadSecrets(GatewayConfig& config);

// The keys [store.encryption] names (part of LoadSecrets), read and
// checked; nullopt when encryption is off. For commands that open the
// store without the rest of the gateway (`idem keys`).
Result<std::optional<EncryptionKeys>> LoadEncryptionKeys(const EncryptionConfig& encryption);

// Is this HOST:PORT on a loopback interface (127.0.0.0/8, [::1],
// localhost)?
bool IsLoopbackListen(std::string_view host_port);

// The effective configuration as TOML (what `idem check-config` prints).
std::string RenderConfig(const GatewayConfig& config);

// "500ms", "10s", "5m", "24h", "1h30m"; sizes "512", "16KiB", "10MiB",
// "1GiB", "10KB" (decimal). Exposed for tests.
Result<std::chrono::milliseconds> ParseDuration(std::string_view text);
Result<uint64_t> ParseSize(std::string_view text);

// Does `path` match the route pattern ('*' matches any run of characters,
// including '/')?
bool PathMatches(std::string_view pattern, std::string_view path);

}  // namespace idem::gateway
