#include "gateway/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace idem::gateway {
namespace {

using std::chrono::milliseconds;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

GatewayConfig MustParse(std::string_view text) {
  Result<GatewayConfig> config = ParseConfig(text, "test.toml");
  EXPECT_TRUE(config.ok()) << config.status() << "\nin:\n" << text;
  return config.ok() ? *config : GatewayConfig();
}

// The error message of a config that must not parse.
std::string ErrorOf(std::string_view text) {
  Result<GatewayConfig> config = ParseConfig(text, "test.toml");
  EXPECT_FALSE(config.ok()) << "parsed:\n" << text;
  if (config.ok()) return "";
  EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
  return config.status().message();
}

std::string ReadSourceFile(const std::string& relative) {
  std::ifstream in(std::string(IDEM_SOURCE_DIR) + "/" + relative);
  EXPECT_TRUE(in.good()) << "cannot open " << relative;
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void ExpectSamePolicy(const StatusPolicy& a, const StatusPolicy& b) {
  for (int status = 100; status < 600; ++status) {
    EXPECT_EQ(a.ShouldStore(status), b.ShouldStore(status)) << "status " << status;
  }
}

void ExpectSameIdempotency(const IdempotencyConfig& a, const IdempotencyConfig& b) {
  EXPECT_EQ(a.header, b.header);
  EXPECT_EQ(a.methods, b.methods);
  EXPECT_EQ(a.require_key, b.require_key);
  EXPECT_EQ(a.fingerprint, b.fingerprint);
  EXPECT_EQ(a.fields, b.fields);
  EXPECT_EQ(a.tenant_headers, b.tenant_headers);
  EXPECT_EQ(a.store_statuses, b.store_statuses);
  EXPECT_EQ(a.max_stored_body, b.max_stored_body);
  EXPECT_EQ(a.on_server_error, b.on_server_error);
  EXPECT_EQ(a.on_store_error_pass, b.on_store_error_pass);
  EXPECT_EQ(a.engine.ttl_ms, b.engine.ttl_ms);
  EXPECT_EQ(a.engine.lease_ttl_ms, b.engine.lease_ttl_ms);
  EXPECT_EQ(a.engine.in_flight, b.engine.in_flight);
  EXPECT_EQ(a.engine.wait_timeout_ms, b.engine.wait_timeout_ms);
  EXPECT_EQ(a.engine.on_server_error, b.engine.on_server_error);
  ExpectSamePolicy(a.engine.store_statuses, b.engine.store_statuses);
}

void ExpectSameConfig(const GatewayConfig& a, const GatewayConfig& b) {
  EXPECT_EQ(a.server.listen, b.server.listen);
  EXPECT_EQ(a.server.admin_listen, b.server.admin_listen);
  EXPECT_EQ(a.server.threads, b.server.threads);
  EXPECT_EQ(a.server.max_request_body, b.server.max_request_body);
  EXPECT_EQ(a.server.max_header_size, b.server.max_header_size);
  EXPECT_EQ(a.server.header_timeout, b.server.header_timeout);
  EXPECT_EQ(a.server.body_timeout, b.server.body_timeout);
  EXPECT_EQ(a.server.idle_timeout, b.server.idle_timeout);
  EXPECT_EQ(a.server.drain_timeout, b.server.drain_timeout);
  EXPECT_EQ(a.server.log_level, b.server.log_level);
  EXPECT_EQ(a.server.access_log, b.server.access_log);
  EXPECT_EQ(a.upstream.url, b.upstream.url);
  EXPECT_EQ(a.upstream.timeout, b.upstream.timeout);
  EXPECT_EQ(a.upstream.connect_timeout, b.upstream.connect_timeout);
  EXPECT_EQ(a.upstream.max_idle_connections, b.upstream.max_idle_connections);
  EXPECT_EQ(a.store.uri, b.store.uri);
  EXPECT_EQ(a.store.auto_migrate, b.store.auto_migrate);
  EXPECT_EQ(a.store.sweep_interval, b.store.sweep_interval);
  ExpectSameIdempotency(a.idempotency, b.idempotency);
  ASSERT_EQ(a.routes.size(), b.routes.size());
  for (size_t i = 0; i < a.routes.size(); ++i) {
    SCOPED_TRACE("route " + std::to_string(i));
    EXPECT_EQ(a.routes[i].path, b.routes[i].path);
    ExpectSameIdempotency(a.routes[i].idempotency, b.routes[i].idempotency);
  }
}

// A file that sets every key to a value other than its default.
constexpr std::string_view kEveryKey = R"toml(
[server]
listen = "0.0.0.0:8000"
admin_listen = "[::1]:9000"
threads = 4
max_request_body = "2MiB"
max_header_size = "8KiB"
header_timeout = "5s"
body_timeout = "20s"
idle_timeout = "2m"
drain_timeout = "1m30s"
log_level = "debug"
access_log = false

[upstream]
url = "http://backend.internal:9000/api"
timeout = "45s"
connect_timeout = "2s"
max_idle_connections = 16

[store]
uri = "memory:"
auto_migrate = false
sweep_interval = "30s"

[idempotency]
header = "X-Request-Key"
methods = ["POST", "DELETE"]
require_key = true
ttl = "48h"
lease_ttl = "30s"
in_flight = "wait"
wait_timeout = "20s"
fingerprint = "fields"
fields = ["/amount", "/currency"]
tenant_headers = ["Authorization", "X-Tenant"]
store_statuses = ["2xx", "404"]
on_server_error = "store"
on_store_error = "pass"
max_stored_body = "512KiB"
)toml";

// The example of DESIGN.md, "Configuration and command line", verbatim.
constexpr std::string_view kDesignExample = R"toml(
[server]
listen = "127.0.0.1:8080"
admin_listen = "127.0.0.1:9090"   # /healthz /readyz /metrics /keys
threads = 0                       # 0: one per core
max_request_body = "10MiB"        # larger bodies: 413, judged on Content-Length first
max_header_size = "16KiB"         # larger header sections: 431
header_timeout = "10s"            # slow clients are cut off

[upstream]
url = "http://127.0.0.1:8081"
timeout = "30s"

[store]
uri = "rocksdb:./idem-data"       # memory: | rocksdb:DIR | redis://H:P[/db]
                                  # | redis+cluster://H:P,H:P | postgresql://...

[idempotency]                     # defaults for every route
header = "Idempotency-Key"
methods = ["POST", "PUT", "PATCH"]
require_key = false
ttl = "24h"                       # how long completed results replay
lease_ttl = "10s"                 # how soon a crashed owner's key may run again;
                                  # extended while the upstream is still working
in_flight = "reject"              # or "wait"
wait_timeout = "10s"
fingerprint = "body"              # body | json | fields | none
fields = []                       # JSON pointers for fingerprint = "fields"
tenant_headers = ["Authorization"]
store_statuses = ["2xx", "4xx", "!408", "!409", "!425", "!429"]
on_server_error = "release"       # or "store"
on_store_error = "reject"         # or "pass"
max_stored_body = "1MiB"

[[route]]                         # first match wins; any key above may be overridden
path = "/payments/*"
require_key = true
)toml";

// ---------------------------------------------------------------------------
// Defaults and every key.

TEST(ConfigDefaults, EmptyFileGivesTheStructDefaults) {
  const GatewayConfig config = MustParse("");
  ExpectSameConfig(config, GatewayConfig());
  EXPECT_THAT(config.routes, IsEmpty());
}

TEST(ConfigDefaults, DefaultsAreTheDocumentedOnes) {
  const GatewayConfig config = MustParse("");
  EXPECT_EQ(config.server.listen, "127.0.0.1:8080");
  EXPECT_EQ(config.server.admin_listen, "127.0.0.1:9090");
  EXPECT_EQ(config.server.threads, 0u);
  EXPECT_EQ(config.server.max_request_body, 10u << 20);
  EXPECT_EQ(config.server.max_header_size, 16u << 10);
  EXPECT_EQ(config.server.header_timeout, milliseconds(10'000));
  EXPECT_EQ(config.upstream.url, "http://127.0.0.1:8081");
  EXPECT_EQ(config.upstream.timeout, milliseconds(30'000));
  EXPECT_EQ(config.store.uri, "rocksdb:./idem-data");
  const IdempotencyConfig& d = config.idempotency;
  EXPECT_EQ(d.header, "Idempotency-Key");
  EXPECT_THAT(d.methods, ElementsAre("POST", "PUT", "PATCH"));
  EXPECT_FALSE(d.require_key);
  EXPECT_EQ(d.engine.ttl_ms, 86'400'000);
  EXPECT_EQ(d.engine.lease_ttl_ms, 10'000);
  EXPECT_EQ(d.engine.in_flight, InFlightPolicy::kReject);
  EXPECT_EQ(d.engine.wait_timeout_ms, 10'000);
  EXPECT_EQ(d.fingerprint, FingerprintMode::kBody);
  EXPECT_THAT(d.fields, IsEmpty());
  EXPECT_THAT(d.tenant_headers, ElementsAre("Authorization"));
  EXPECT_EQ(d.store_statuses, StatusPolicy::DefaultRules());
  EXPECT_EQ(d.on_server_error, ServerErrorPolicy::kRelease);
  EXPECT_FALSE(d.on_store_error_pass);
  EXPECT_EQ(d.max_stored_body, 1u << 20);
}

TEST(ConfigDefaults, EmptySectionsKeepDefaults) {
  ExpectSameConfig(MustParse("[server]\n[upstream]\n[store]\n[idempotency]\n"),
                   GatewayConfig());
}

TEST(ConfigParse, EveryKey) {
  const GatewayConfig config = MustParse(kEveryKey);
  EXPECT_EQ(config.server.listen, "0.0.0.0:8000");
  EXPECT_EQ(config.server.admin_listen, "[::1]:9000");
  EXPECT_EQ(config.server.threads, 4u);
  EXPECT_EQ(config.server.max_request_body, 2u << 20);
  EXPECT_EQ(config.server.max_header_size, 8u << 10);
  EXPECT_EQ(config.server.header_timeout, milliseconds(5'000));
  EXPECT_EQ(config.server.body_timeout, milliseconds(20'000));
  EXPECT_EQ(config.server.idle_timeout, milliseconds(120'000));
  EXPECT_EQ(config.server.drain_timeout, milliseconds(90'000));
  EXPECT_EQ(config.server.log_level, "debug");
  EXPECT_FALSE(config.server.access_log);
  EXPECT_EQ(config.upstream.url, "http://backend.internal:9000/api");
  EXPECT_EQ(config.upstream.timeout, milliseconds(45'000));
  EXPECT_EQ(config.upstream.connect_timeout, milliseconds(2'000));
  EXPECT_EQ(config.upstream.max_idle_connections, 16u);
  EXPECT_EQ(config.store.uri, "memory:");
  EXPECT_FALSE(config.store.auto_migrate);
  EXPECT_EQ(config.store.sweep_interval, milliseconds(30'000));
  const IdempotencyConfig& d = config.idempotency;
  EXPECT_EQ(d.header, "X-Request-Key");
  EXPECT_THAT(d.methods, ElementsAre("POST", "DELETE"));
  EXPECT_TRUE(d.require_key);
  EXPECT_EQ(d.engine.ttl_ms, 48 * 3'600'000);
  EXPECT_EQ(d.engine.lease_ttl_ms, 30'000);
  EXPECT_EQ(d.engine.in_flight, InFlightPolicy::kWait);
  EXPECT_EQ(d.engine.wait_timeout_ms, 20'000);
  EXPECT_EQ(d.fingerprint, FingerprintMode::kFields);
  EXPECT_THAT(d.fields, ElementsAre("/amount", "/currency"));
  EXPECT_THAT(d.tenant_headers, ElementsAre("Authorization", "X-Tenant"));
  EXPECT_THAT(d.store_statuses, ElementsAre("2xx", "404"));
  EXPECT_EQ(d.on_server_error, ServerErrorPolicy::kStore);
  EXPECT_EQ(d.engine.on_server_error, ServerErrorPolicy::kStore);
  EXPECT_TRUE(d.on_store_error_pass);
  EXPECT_EQ(d.max_stored_body, 512u << 10);
}

TEST(ConfigParse, StoreStatusesReachTheEnginePolicy) {
  const GatewayConfig config = MustParse(kEveryKey);
  const StatusPolicy& policy = config.idempotency.engine.store_statuses;
  EXPECT_TRUE(policy.ShouldStore(200));
  EXPECT_TRUE(policy.ShouldStore(299));
  EXPECT_TRUE(policy.ShouldStore(404));
  EXPECT_FALSE(policy.ShouldStore(400));
  EXPECT_FALSE(policy.ShouldStore(500));
}

TEST(ConfigParse, DefaultStoreStatusesMatchTheEngineDefault) {
  const GatewayConfig config = MustParse("[idempotency]\nttl = \"1h\"\n");
  ExpectSamePolicy(config.idempotency.engine.store_statuses, StatusPolicy());
  EXPECT_FALSE(config.idempotency.engine.store_statuses.ShouldStore(409));
  EXPECT_TRUE(config.idempotency.engine.store_statuses.ShouldStore(422));
}

TEST(ConfigParse, SizesAcceptIntegersAndStrings) {
  const GatewayConfig config = MustParse(
      "[server]\nmax_request_body = 1048576\nmax_header_size = \"10KB\"\n"
      "[idempotency]\nmax_stored_body = \"4096\"\n");
  EXPECT_EQ(config.server.max_request_body, 1u << 20);
  EXPECT_EQ(config.server.max_header_size, 10'000u);
  EXPECT_EQ(config.idempotency.max_stored_body, 4096u);
}

TEST(ConfigParse, DottedKeysAndInlineTablesAreTheSameShape) {
  const GatewayConfig config = MustParse(
      "server.listen = \"127.0.0.1:1\"\n"
      "upstream = { url = \"http://u:2\" }\n"
      "route = [{ path = \"/a\", require_key = true }]\n");
  EXPECT_EQ(config.server.listen, "127.0.0.1:1");
  EXPECT_EQ(config.upstream.url, "http://u:2");
  ASSERT_EQ(config.routes.size(), 1u);
  EXPECT_TRUE(config.routes[0].idempotency.require_key);
}

TEST(ConfigParse, DesignExample) {
  const GatewayConfig config = MustParse(kDesignExample);
  GatewayConfig expected;
  expected.routes.push_back({"/payments/*", expected.idempotency});
  expected.routes[0].idempotency.require_key = true;
  ExpectSameConfig(config, expected);
}

TEST(ConfigParse, ExampleFileAtTheRepositoryRoot) {
  const std::string path = std::string(IDEM_SOURCE_DIR) + "/idem.example.toml";
  Result<GatewayConfig> config = LoadConfigFile(path);
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_FALSE(config->routes.empty());
  EXPECT_EQ(config->routes[0].path, "/payments/*");
  EXPECT_TRUE(config->routes[0].idempotency.require_key);
  EXPECT_TRUE(config->ForPath("/payments/42").require_key);
  EXPECT_FALSE(config->ForPath("/other").require_key);
}

// Every ```toml block of docs/configuration.md is a complete, valid file.
TEST(ConfigParse, ExamplesInTheDocumentation) {
  const std::string doc = ReadSourceFile("docs/configuration.md");
  size_t blocks = 0;
  size_t at = 0;
  while ((at = doc.find("```toml\n", at)) != std::string::npos) {
    const size_t start = at + 8;
    const size_t end = doc.find("```", start);
    ASSERT_NE(end, std::string::npos);
    const std::string block = doc.substr(start, end - start);
    Result<GatewayConfig> config = ParseConfig(block, "docs/configuration.md block");
    EXPECT_TRUE(config.ok()) << config.status() << "\n" << block;
    ++blocks;
    at = end + 3;
  }
  EXPECT_GE(blocks, 2u);
}

// ---------------------------------------------------------------------------
// Routes.

TEST(ConfigRoutes, RouteInheritsWhatItDoesNotOverride) {
  const GatewayConfig config = MustParse(R"toml(
[idempotency]
ttl = "1h"
methods = ["POST"]
tenant_headers = ["X-Tenant"]

[[route]]
path = "/payments/*"
require_key = true
ttl = "2h"
)toml");
  ASSERT_EQ(config.routes.size(), 1u);
  const IdempotencyConfig& route = config.routes[0].idempotency;
  EXPECT_TRUE(route.require_key);
  EXPECT_EQ(route.engine.ttl_ms, 2 * 3'600'000);
  EXPECT_THAT(route.methods, ElementsAre("POST"));
  EXPECT_THAT(route.tenant_headers, ElementsAre("X-Tenant"));
  EXPECT_EQ(config.idempotency.engine.ttl_ms, 3'600'000);
  EXPECT_FALSE(config.idempotency.require_key);
}

TEST(ConfigRoutes, InheritanceDoesNotDependOnSectionOrder) {
  const GatewayConfig config = MustParse(R"toml(
[[route]]
path = "/a/*"
in_flight = "wait"

[[route]]
path = "/b"

[idempotency]
header = "X-Key"
fingerprint = "json"
store_statuses = ["2xx"]
on_server_error = "store"
)toml");
  ASSERT_EQ(config.routes.size(), 2u);
  for (const RouteConfig& route : config.routes) {
    SCOPED_TRACE(route.path);
    EXPECT_EQ(route.idempotency.header, "X-Key");
    EXPECT_EQ(route.idempotency.fingerprint, FingerprintMode::kJson);
    EXPECT_THAT(route.idempotency.store_statuses, ElementsAre("2xx"));
    EXPECT_FALSE(route.idempotency.engine.store_statuses.ShouldStore(404));
    EXPECT_EQ(route.idempotency.engine.on_server_error, ServerErrorPolicy::kStore);
  }
  EXPECT_EQ(config.routes[0].idempotency.engine.in_flight, InFlightPolicy::kWait);
  EXPECT_EQ(config.routes[1].idempotency.engine.in_flight, InFlightPolicy::kReject);
}

TEST(ConfigRoutes, RouteOverridesEveryIdempotencyKey) {
  // [idempotency] keys of kEveryKey, set on a route instead.
  const std::string idempotency(kEveryKey.substr(kEveryKey.find("[idempotency]")));
  const std::string text =
      "[[route]]\npath = \"/x\"\n" + idempotency.substr(idempotency.find('\n') + 1);
  const GatewayConfig config = MustParse(text);
  const GatewayConfig every = MustParse(kEveryKey);
  ASSERT_EQ(config.routes.size(), 1u);
  ExpectSameIdempotency(config.routes[0].idempotency, every.idempotency);
  ExpectSameIdempotency(config.idempotency, IdempotencyConfig());
}

TEST(ConfigRoutes, FirstMatchWins) {
  const GatewayConfig config = MustParse(R"toml(
[[route]]
path = "/payments/refunds/*"
ttl = "1h"
[[route]]
path = "/payments/*"
ttl = "2h"
[[route]]
path = "/payments/refunds/special"
ttl = "3h"
)toml");
  EXPECT_EQ(config.ForPath("/payments/refunds/special").engine.ttl_ms, 3'600'000);
  EXPECT_EQ(config.ForPath("/payments/refunds/1").engine.ttl_ms, 3'600'000);
  EXPECT_EQ(config.ForPath("/payments/1").engine.ttl_ms, 2 * 3'600'000);
  EXPECT_EQ(&config.ForPath("/orders"), &config.idempotency);
  EXPECT_EQ(&config.ForPath("/payments"), &config.idempotency);
}

TEST(ConfigRoutes, PathMatches) {
  struct Case {
    std::string_view pattern, path;
    bool matches;
  };
  const Case cases[] = {
      {"/payments", "/payments", true},
      {"/payments", "/payments/", false},
      {"/payments", "/payment", false},
      {"/payments", "/Payments", false},
      {"/payments/*", "/payments/", true},
      {"/payments/*", "/payments/1", true},
      {"/payments/*", "/payments/1/refunds", true},
      {"/payments/*", "/payments", false},
      {"/payments*", "/payments", true},
      {"/payments*", "/payments-v2/x", true},
      {"*", "/anything/at/all", true},
      {"*", "", true},
      {"/*/refunds", "/payments/1/refunds", true},
      {"/*/refunds", "/payments/1/refunds/2", false},
      {"/a/*/c/*", "/a/b/c/d", true},
      {"/a/*/c/*", "/a/b/x/d", false},
      {"/a/*b*c", "/a/xxbyyc", true},
      {"/a/*b*c", "/a/xxbyyd", false},
      {"/a**", "/abc", true},
      {"/a.b", "/axb", false},
      {"/a?b", "/axb", false},
      {"", "", true},
      {"", "/", false},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(PathMatches(c.pattern, c.path), c.matches)
        << "pattern " << c.pattern << " path " << c.path;
  }
}

TEST(ConfigRoutes, RouteNeedsAPath) {
  EXPECT_EQ(ErrorOf("\n[[route]]\nrequire_key = true\n"),
            "test.toml:2: route[0].path: missing; every [[route]] needs a path pattern");
}

TEST(ConfigRoutes, BadPatterns) {
  EXPECT_THAT(
      ErrorOf("[[route]]\npath = \"payments/*\"\n"),
      HasSubstr("test.toml:2: route[0].path: \"payments/*\" must start with '/'"));
  EXPECT_THAT(ErrorOf("[[route]]\npath = \"\"\n"), HasSubstr("route[0].path: "));
  EXPECT_THAT(ErrorOf("[[route]]\npath = \"/a b\"\n"), HasSubstr("space"));
  EXPECT_THAT(ErrorOf("[[route]]\npath = \"/a?b=1\"\n"), HasSubstr("query"));
}

TEST(ConfigRoutes, DuplicatePatternIsAnError) {
  EXPECT_THAT(ErrorOf("[[route]]\npath = \"/a\"\n[[route]]\npath = \"/b\"\n"
                      "[[route]]\npath = \"/a\"\n"),
              HasSubstr("test.toml:6: route[2].path: \"/a\" is also route[0]'s pattern"));
}

TEST(ConfigRoutes, CrossKeyRulesApplyToTheMergedRoute) {
  // The route's ttl is shorter than the inherited wait_timeout.
  EXPECT_EQ(
      ErrorOf("[idempotency]\nwait_timeout = \"30s\"\n[[route]]\npath = \"/a\"\n"
              "ttl = \"10s\"\n"),
      "test.toml:5: route[0].wait_timeout: wait_timeout (30s) must not be longer than "
      "ttl (10s)");
  // The route asks for fields but inherits an empty list.
  EXPECT_THAT(ErrorOf("[[route]]\npath = \"/a\"\nfingerprint = \"fields\"\n"),
              HasSubstr("test.toml:3: route[0].fields: fingerprint = \"fields\" needs"));
  // The route inherits fields mode and the fields.
  const GatewayConfig config = MustParse(
      "[[route]]\npath = \"/a\"\n[idempotency]\nfingerprint = \"fields\"\nfields = "
      "[\"/x\"]\n");
  EXPECT_THAT(config.routes[0].idempotency.fields, ElementsAre("/x"));
}

TEST(ConfigRoutes, RouteMustBeAnArrayOfTables) {
  EXPECT_THAT(ErrorOf("[route]\npath = \"/a\"\n"),
              HasSubstr("route: expected an array of tables ([[route]]), got a table"));
  EXPECT_THAT(ErrorOf("route = [1]\n"),
              HasSubstr("test.toml:1: route[0]: expected a table, got an integer"));
}

// ---------------------------------------------------------------------------
// Errors.

TEST(ConfigErrors, UnknownKeys) {
  EXPECT_EQ(ErrorOf("[server]\nlisen = \"127.0.0.1:1\"\n"),
            "test.toml:2: server.lisen: unknown key (did you mean \"listen\"?)");
  EXPECT_EQ(ErrorOf("[idempotency]\nfoo = 1\n"),
            "test.toml:2: idempotency.foo: unknown key");
  EXPECT_EQ(
      ErrorOf("\n[[route]]\npath = \"/a\"\nrequire_keys = true\n"),
      "test.toml:4: route[0].require_keys: unknown key (did you mean \"require_key\"?)");
  EXPECT_EQ(ErrorOf("[servers]\n"),
            "test.toml:1: servers: unknown key (did you mean \"server\"?)");
  EXPECT_EQ(ErrorOf("listen = \"127.0.0.1:1\"\n"),
            "test.toml:1: listen: unknown key (it belongs in [server])");
  EXPECT_EQ(ErrorOf("[upstream]\nurl = \"http://a\"\n[upstream.tls]\ncert = \"x\"\n"),
            "test.toml:3: upstream.tls: unknown key");
  EXPECT_EQ(ErrorOf("[store]\n\"odd key\" = 1\n"),
            "test.toml:2: store.\"odd key\": unknown key");
  EXPECT_EQ(ErrorOf("[[routes]]\npath = \"/a\"\n"),
            "test.toml:1: routes: unknown key (did you mean \"route\"?)");
}

TEST(ConfigErrors, WrongTypes) {
  EXPECT_EQ(ErrorOf("[server]\nthreads = \"4\"\n"),
            "test.toml:2: server.threads: expected an integer, got a string");
  EXPECT_EQ(ErrorOf("[server]\nlisten = 8080\n"),
            "test.toml:2: server.listen: expected a string, got an integer");
  EXPECT_EQ(
      ErrorOf("[idempotency]\nrequire_key = \"yes\"\n"),
      "test.toml:2: idempotency.require_key: expected a boolean (true or false), got a "
      "string");
  EXPECT_EQ(
      ErrorOf("[idempotency]\nmethods = \"POST\"\n"),
      "test.toml:2: idempotency.methods: expected an array of strings, got a string");
  EXPECT_EQ(ErrorOf("[idempotency]\nmethods = [\"POST\", 1]\n"),
            "test.toml:2: idempotency.methods[1]: expected a string, got an integer");
  EXPECT_EQ(
      ErrorOf("[idempotency]\nttl = 10\n"),
      "test.toml:2: idempotency.ttl: expected a duration string such as \"10s\", got an "
      "integer");
  EXPECT_EQ(
      ErrorOf("[server]\nmax_request_body = 1.5\n"),
      "test.toml:2: server.max_request_body: expected a size such as \"10MiB\" or a "
      "number of bytes, got a float");
  EXPECT_EQ(ErrorOf("server = 1\n"),
            "test.toml:1: server: expected a table ([server]), got an integer");
  EXPECT_EQ(ErrorOf("[[store]]\nuri = \"memory:\"\n"),
            "test.toml:1: store: expected a table ([store]), got an array");
  EXPECT_EQ(
      ErrorOf("[store]\nauto_migrate = 1979-05-27\n"),
      "test.toml:2: store.auto_migrate: expected a boolean (true or false), got a date");
}

TEST(ConfigErrors, BadDurationsAndBounds) {
  EXPECT_EQ(
      ErrorOf("[idempotency]\nttl = \"24x\"\n"),
      "test.toml:2: idempotency.ttl: \"24x\" is not a duration: unknown unit \"x\" (use "
      "500ms, 10s, 5m, 24h)");
  EXPECT_THAT(ErrorOf("[server]\nheader_timeout = \"0s\"\n"),
              HasSubstr("server.header_timeout: \"0s\" must be longer than 0"));
  EXPECT_THAT(ErrorOf("[idempotency]\nlease_ttl = \"50ms\"\n"),
              HasSubstr("idempotency.lease_ttl: \"50ms\" is too short (minimum 100ms)"));
  EXPECT_THAT(ErrorOf("[upstream]\ntimeout = \"25h\"\n"),
              HasSubstr("upstream.timeout: \"25h\" is too long (maximum 24h)"));
  EXPECT_THAT(ErrorOf("[idempotency]\nttl = \"366d\"\n"),
              HasSubstr("idempotency.ttl: \"366d\" is too long (maximum 8760h)"));
  EXPECT_THAT(ErrorOf("[store]\nsweep_interval = \"10ms\"\n"),
              HasSubstr("store.sweep_interval: \"10ms\" is too short (minimum 100ms)"));
  EXPECT_THAT(
      ErrorOf("[idempotency]\nttl = \"5s\"\n"),
      HasSubstr("test.toml:2: idempotency.wait_timeout: wait_timeout (10s) must not "
                "be longer than ttl (5s)"));
  EXPECT_THAT(ErrorOf("[server]\ndrain_timeout = \"-1s\"\n"),
              HasSubstr("server.drain_timeout: \"-1s\" is negative"));
}

TEST(ConfigErrors, BadSizesAndBounds) {
  EXPECT_THAT(
      ErrorOf("[server]\nmax_request_body = \"10XB\"\n"),
      HasSubstr("server.max_request_body: \"10XB\" is not a size: unknown unit \"XB\""));
  EXPECT_THAT(ErrorOf("[server]\nmax_request_body = 0\n"),
              HasSubstr("server.max_request_body: 0 must be more than 0"));
  EXPECT_THAT(ErrorOf("[server]\nmax_request_body = -5\n"),
              HasSubstr("server.max_request_body: -5 is negative"));
  EXPECT_THAT(ErrorOf("[server]\nmax_header_size = \"1GiB\"\n"),
              HasSubstr("server.max_header_size: \"1GiB\" is too large (maximum 64MiB)"));
  EXPECT_THAT(
      ErrorOf("[idempotency]\nmax_stored_body = \"1GiB\"\n"),
      HasSubstr("idempotency.max_stored_body: \"1GiB\" is too large (maximum 512MiB)"));
  EXPECT_THAT(ErrorOf("[idempotency]\nmax_stored_body = \"0KiB\"\n"),
              HasSubstr("must be more than 0"));
}

TEST(ConfigErrors, IntegerBounds) {
  EXPECT_EQ(ErrorOf("[server]\nthreads = 2000\n"),
            "test.toml:2: server.threads: 2000 is out of range (0 to 1024)");
  EXPECT_THAT(ErrorOf("[server]\nthreads = -1\n"), HasSubstr("-1 is out of range"));
  EXPECT_THAT(
      ErrorOf("[upstream]\nmax_idle_connections = 100000\n"),
      HasSubstr("upstream.max_idle_connections: 100000 is out of range (0 to 65536)"));
  EXPECT_EQ(MustParse("[server]\nthreads = 1024\n").server.threads, 1024u);
}

TEST(ConfigErrors, BadListen) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"localhost", "the port is missing"},
      {"127.0.0.1:", "\"\" is not a port"},
      {"127.0.0.1:65536", "\"65536\" is not a port"},
      {"127.0.0.1:http", "\"http\" is not a port"},
      {":8080", "the host is missing"},
      {"::1:8080", "an IPv6 address needs brackets"},
      {"[::1:8080", "not closed"},
      {"[zz::1]:8080", "\"zz::1\" is not an IPv6 address"},
      {"[::1]8080", "unexpected characters after ']'"},
      {"256.0.0.1:80", "\"256.0.0.1\" is not an IPv4 address"},
      {"bad host:80", "is not a host name"},
      {"-bad.example:80", "is not a host name"},
      {"a..b:80", "is not a host name"},
  };
  for (const auto& [listen, why] : cases) {
    const std::string message =
        ErrorOf("[server]\nlisten = \"" + std::string(listen) + "\"\n");
    EXPECT_THAT(message, AllOf(StartsWith("test.toml:2: server.listen: \"" +
                                          std::string(listen) + "\" is not HOST:PORT: "),
                               HasSubstr(why)))
        << listen;
  }
  EXPECT_THAT(ErrorOf("[server]\nadmin_listen = \"x\"\n"),
              HasSubstr("server.admin_listen: \"x\" is not HOST:PORT"));
}

TEST(ConfigErrors, GoodListen) {
  for (const std::string_view listen :
       {"0.0.0.0:0", "127.0.0.1:65535", "[::]:8080", "[::1]:1", "localhost:80",
        "gateway.internal.example.com:443", "my_service:8080"}) {
    EXPECT_EQ(
        MustParse("[server]\nlisten = \"" + std::string(listen) + "\"\n").server.listen,
        listen);
  }
}

TEST(ConfigErrors, ListenersNeedTheirOwnAddresses) {
  EXPECT_EQ(
      ErrorOf(
          "[server]\nlisten = \"127.0.0.1:7000\"\nadmin_listen = \"127.0.0.1:7000\"\n"),
      "test.toml:3: server.admin_listen: \"127.0.0.1:7000\" is also server.listen; the "
      "admin listener needs its own address");
  // Port 0: the system picks two different ports.
  MustParse("[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n");
}

TEST(ConfigErrors, BadUpstreamUrl) {
  EXPECT_THAT(
      ErrorOf("[upstream]\nurl = \"https://api.example.com\"\n"),
      HasSubstr("test.toml:2: upstream.url: \"https://api.example.com\": https upstreams "
                "are not supported"));
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"ftp://a", "it must start with http://"},
      {"127.0.0.1:8081", "it must start with http://"},
      {"http://", "the host is missing"},
      {"http:///base", "the host is missing"},
      {"http://a:0", "port 0 cannot be connected to"},
      {"http://a:99999", "is not a port"},
      {"http://user:pw@a", "user info is not allowed"},
      {"http://a/b?c=d", "a query or fragment is not allowed"},
      {"http://a/b#c", "a query or fragment is not allowed"},
      {"http://a/b c", "the base path has a space"},
      {"http://::1/", "an IPv6 address needs brackets"},
      {"HTTP://backend", "write the scheme in lower case"},
  };
  for (const auto& [url, why] : cases) {
    EXPECT_THAT(ErrorOf("[upstream]\nurl = \"" + std::string(url) + "\"\n"),
                AllOf(StartsWith("test.toml:2: upstream.url: \"" + std::string(url) +
                                 "\" is not an upstream URL: "),
                      HasSubstr(why)))
        << url;
  }
  for (const std::string_view url :
       {"http://a", "http://127.0.0.1:8081", "http://[::1]:8081/api/v1",
        "http://Backend:80/", "http://backend.svc.cluster.local"}) {
    EXPECT_EQ(MustParse("[upstream]\nurl = \"" + std::string(url) + "\"\n").upstream.url,
              url);
  }
}

TEST(ConfigErrors, BadStoreUri) {
  EXPECT_THAT(ErrorOf("[store]\nuri = \"mysql://x\"\n"),
              HasSubstr("store.uri: \"mysql://x\" is not a store URI"));
  EXPECT_THAT(ErrorOf("[store]\nuri = \"rocksdb:\"\n"), HasSubstr("needs a directory"));
  EXPECT_THAT(ErrorOf("[store]\nuri = \"redis://\"\n"), HasSubstr("is missing"));
  for (const std::string_view uri :
       {"memory:", "rocksdb:/var/lib/idem", "redis://127.0.0.1:6379/0",
        "redis+cluster://a:1,b:2", "postgresql://idem@db/idem", "postgres://db/idem"}) {
    EXPECT_EQ(MustParse("[store]\nuri = \"" + std::string(uri) + "\"\n").store.uri, uri);
  }
}

TEST(ConfigErrors, BadEnums) {
  EXPECT_EQ(ErrorOf("[idempotency]\nin_flight = \"queue\"\n"),
            "test.toml:2: idempotency.in_flight: \"queue\" is not one of: reject, wait");
  EXPECT_EQ(
      ErrorOf("[idempotency]\nfingerprint = \"sha1\"\n"),
      "test.toml:2: idempotency.fingerprint: \"sha1\" is not one of: body, json, fields, "
      "none");
  EXPECT_EQ(ErrorOf("[idempotency]\non_server_error = \"retry\"\n"),
            "test.toml:2: idempotency.on_server_error: \"retry\" is not one of: release, "
            "store");
  EXPECT_EQ(
      ErrorOf("[idempotency]\non_store_error = \"allow\"\n"),
      "test.toml:2: idempotency.on_store_error: \"allow\" is not one of: reject, pass");
  EXPECT_EQ(
      ErrorOf("[server]\nlog_level = \"verbose\"\n"),
      "test.toml:2: server.log_level: \"verbose\" is not one of: trace, debug, info, "
      "warn, error, off");
  EXPECT_THAT(ErrorOf("[server]\nlog_level = \"INFO\"\n"), HasSubstr("is not one of"));
}

TEST(ConfigErrors, BadMethodsAndHeaders) {
  EXPECT_THAT(ErrorOf("[idempotency]\nmethods = [\"POST\", \"post\"]\n"),
              HasSubstr("idempotency.methods[1]: \"post\" is not upper case (methods are "
                        "case-sensitive; write \"POST\")"));
  EXPECT_THAT(ErrorOf("[idempotency]\nmethods = [\"PO ST\"]\n"),
              HasSubstr("idempotency.methods[0]: \"PO ST\" is not an HTTP method"));
  EXPECT_THAT(ErrorOf("[idempotency]\nmethods = [\"POST\", \"POST\"]\n"),
              HasSubstr("idempotency.methods[1]: \"POST\" is listed twice"));
  EXPECT_THAT(ErrorOf("[idempotency]\nheader = \"Idempotency Key\"\n"),
              HasSubstr("idempotency.header: \"Idempotency Key\" is not a header name"));
  EXPECT_THAT(ErrorOf("[idempotency]\nheader = \"\"\n"),
              HasSubstr("is not a header name"));
  EXPECT_THAT(
      ErrorOf("[idempotency]\ntenant_headers = [\"X-Tenant:\"]\n"),
      HasSubstr("idempotency.tenant_headers[0]: \"X-Tenant:\" is not a header name"));
  EXPECT_THAT(
      ErrorOf("[idempotency]\ntenant_headers = [\"Authorization\", \"authorization\"]\n"),
      HasSubstr("idempotency.tenant_headers[1]: \"authorization\" is listed twice"));
  // Empty lists are allowed: no method is covered, no tenant scoping.
  const GatewayConfig config =
      MustParse("[idempotency]\nmethods = []\ntenant_headers = []\n");
  EXPECT_THAT(config.idempotency.methods, IsEmpty());
  EXPECT_THAT(config.idempotency.tenant_headers, IsEmpty());
}

TEST(ConfigErrors, BadStatusRules) {
  EXPECT_EQ(
      ErrorOf("[idempotency]\nstore_statuses = [\"2xx\", \"6xx\"]\n"),
      "test.toml:2: idempotency.store_statuses[1]: status rule \"6xx\" is not NNN, Nxx, "
      "!NNN or !Nxx (N from 1 to 5)");
  EXPECT_THAT(ErrorOf("[[route]]\npath = \"/a\"\nstore_statuses = [\"!2XX\"]\n"),
              HasSubstr("test.toml:3: route[0].store_statuses[0]: status rule \"!2XX\""));
}

TEST(ConfigErrors, FieldsModeNeedsFields) {
  EXPECT_EQ(
      ErrorOf("[idempotency]\nfingerprint = \"fields\"\n"),
      "test.toml:2: idempotency.fields: fingerprint = \"fields\" needs at least one JSON "
      "pointer in fields, e.g. fields = [\"/amount\"]");
  EXPECT_THAT(
      ErrorOf("[idempotency]\nfingerprint = \"fields\"\nfields = []\n"),
      HasSubstr("test.toml:3: idempotency.fields: fingerprint = \"fields\" needs"));
  EXPECT_THAT(ErrorOf("[idempotency]\nfingerprint = \"fields\"\nfields = [\"amount\"]\n"),
              HasSubstr("idempotency.fields[0]: \"amount\" is not a JSON pointer"));
  EXPECT_THAT(ErrorOf("[idempotency]\nfields = [\"/a~2\"]\n"),
              HasSubstr("'~' must be followed by 0 or 1"));
  EXPECT_THAT(ErrorOf("[idempotency]\nfields = [\"\"]\n"),
              HasSubstr("use fingerprint = \"json\""));
  const GatewayConfig config = MustParse(
      "[idempotency]\nfingerprint = \"fields\"\nfields = [\"/a~1b\", \"/c/0\"]\n");
  EXPECT_THAT(config.idempotency.fields, ElementsAre("/a~1b", "/c/0"));
}

TEST(ConfigErrors, SyntaxErrorHasLineAndColumn) {
  const std::string message = ErrorOf("[server]\nthreads = 4\nlisten = \"unterminated\n");
  EXPECT_THAT(message, StartsWith("test.toml:3:"));
  EXPECT_THAT(message, HasSubstr("TOML syntax error"));
  EXPECT_THAT(ErrorOf("[server]\n[server]\n"), StartsWith("test.toml:2:"));
  EXPECT_THAT(ErrorOf("[server\n"), StartsWith("test.toml:1:"));
}

TEST(ConfigErrors, AllErrorsInFileOrder) {
  const std::string message = ErrorOf(R"toml([server]
threads = "x"
[upstream]
url = "https://a"
[idempotency]
ttl = "soon"
)toml");
  const std::vector<std::string_view> expected_order = {"test.toml:2: server.threads",
                                                        "test.toml:4: upstream.url",
                                                        "test.toml:6: idempotency.ttl"};
  size_t at = 0;
  for (const std::string_view part : expected_order) {
    const size_t found = message.find(part, at);
    ASSERT_NE(found, std::string::npos) << part << " in\n" << message;
    at = found;
  }
  EXPECT_EQ(std::count(message.begin(), message.end(), '\n'), 2);
}

TEST(ConfigErrors, SourceNameLeadsEveryMessage) {
  Result<GatewayConfig> config = ParseConfig("[server]\nx = 1\n", "/etc/idem.toml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(), "/etc/idem.toml:2: server.x: unknown key");
}

TEST(ConfigErrors, NoExceptionEscapesOnBinaryInput) {
  const std::string garbage("\x00\xff\xfe[[[\"\"\"\x01", 10);
  Result<GatewayConfig> config = ParseConfig(garbage);
  EXPECT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(), StartsWith("config"));
}

// ---------------------------------------------------------------------------
// Files.

TEST(ConfigFile, MissingFileIsNotFound) {
  Result<GatewayConfig> config = LoadConfigFile("/nonexistent/idem.toml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(config.status().message(),
              StartsWith("/nonexistent/idem.toml: cannot read"));
}

TEST(ConfigFile, DirectoryIsAnError) {
  Result<GatewayConfig> config = LoadConfigFile("/tmp");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(), StartsWith("/tmp: cannot read"));
}

TEST(ConfigFile, ErrorsNameTheFile) {
  const std::string path = ::testing::TempDir() + "/idem_config_test.toml";
  {
    std::ofstream out(path);
    out << "[server]\n\nthreads = true\n";
  }
  Result<GatewayConfig> config = LoadConfigFile(path);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(),
            path + ":3: server.threads: expected an integer, got a boolean");
  std::remove(path.c_str());
}

// ---------------------------------------------------------------------------
// ParseDuration and ParseSize.

TEST(ParseDuration, Accepts) {
  const std::pair<std::string_view, int64_t> cases[] = {
      {"0s", 0},
      {"0ms", 0},
      {"1ms", 1},
      {"500ms", 500},
      {"10s", 10'000},
      {"5m", 300'000},
      {"24h", 86'400'000},
      {"1h30m", 5'400'000},
      {"1h30m15s250ms", 5'415'250},
      {"1s500ms", 1'500},
      {"1.5s", 1'500},
      {"0.5h", 1'800'000},
      {"1.250s", 1'250},
      {"2.0ms", 2},
      {"7d", 7 * 86'400'000LL},
      {"90m", 5'400'000},
      {"9223372036854775807ms", INT64_MAX},
      {"106751991167d", 106751991167LL * 86'400'000},
  };
  for (const auto& [text, ms] : cases) {
    Result<milliseconds> parsed = ParseDuration(text);
    ASSERT_TRUE(parsed.ok()) << text << ": " << parsed.status();
    EXPECT_EQ(parsed->count(), ms) << text;
  }
}

TEST(ParseDuration, Rejects) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"", "\"\" is not a duration (use 500ms, 10s, 5m, 24h)"},
      {"10", "\"10\" has no unit"},
      {"0", "\"0\" has no unit"},
      {"1h30", "\"1h30\" has no unit"},
      {"-5s", "\"-5s\" is negative"},
      {"24x", "unknown unit \"x\""},
      {"10S", "unknown unit \"S\""},
      {"10 s", "unknown unit \" s\""},
      {" 10s", "is not a duration"},
      {"s", "is not a duration"},
      {"1.s", "is not a duration"},
      {".5s", "is not a duration"},
      {"+5s", "is not a duration"},
      {"250us", "the smallest unit is ms"},
      {"5ns", "the smallest unit is ms"},
      {"1.5ms", "is not a whole number of milliseconds"},
      {"0.0001s", "is not a whole number of milliseconds"},
      {"9223372036854775808ms", "is too long"},
      {"9999999999999999h", "is too long"},
      {"99999999999999999999999s", "is too long"},
      {"106751991168d", "is too long"},
  };
  for (const auto& [text, why] : cases) {
    Result<milliseconds> parsed = ParseDuration(text);
    ASSERT_FALSE(parsed.ok()) << text;
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(parsed.status().message(), HasSubstr(why)) << text;
  }
}

TEST(ParseSize, Accepts) {
  const std::pair<std::string_view, uint64_t> cases[] = {
      {"0", 0},
      {"512", 512},
      {"512B", 512},
      {"16KiB", 16 << 10},
      {"10MiB", 10 << 20},
      {"1GiB", 1ull << 30},
      {"2TiB", 2ull << 40},
      {"10KB", 10'000},
      {"10MB", 10'000'000},
      {"1GB", 1'000'000'000},
      {"1TB", 1'000'000'000'000},
      {"10mib", 10 << 20},
      {"10kb", 10'000},
      {"18446744073709551615", UINT64_MAX},
      {"16777215TiB", 16777215ull << 40},
  };
  for (const auto& [text, bytes] : cases) {
    Result<uint64_t> parsed = ParseSize(text);
    ASSERT_TRUE(parsed.ok()) << text << ": " << parsed.status();
    EXPECT_EQ(*parsed, bytes) << text;
  }
}

TEST(ParseSize, Rejects) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"", "\"\" is not a size (use 512, 16KiB, 10MiB, 1GiB)"},
      {"-1", "\"-1\" is negative"},
      {"MiB", "is not a size"},
      {"10XB", "unknown unit \"XB\""},
      {"10 MiB", "unknown unit \" MiB\""},
      {"10Mi", "unknown unit \"Mi\""},
      {"1.5MiB", "use a whole number"},
      {"18446744073709551616", "is too large"},
      {"16777216TiB", "is too large"},
      {"99999999999999999999999", "is too large"},
  };
  for (const auto& [text, why] : cases) {
    Result<uint64_t> parsed = ParseSize(text);
    ASSERT_FALSE(parsed.ok()) << text;
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(parsed.status().message(), HasSubstr(why)) << text;
  }
}

// ---------------------------------------------------------------------------
// RenderConfig.

void ExpectRoundTrip(const GatewayConfig& config) {
  const std::string rendered = RenderConfig(config);
  Result<GatewayConfig> reparsed = ParseConfig(rendered, "rendered");
  ASSERT_TRUE(reparsed.ok()) << reparsed.status() << "\n" << rendered;
  ExpectSameConfig(*reparsed, config);
  EXPECT_EQ(RenderConfig(*reparsed), rendered);
}

TEST(RenderConfig, DefaultsRoundTrip) { ExpectRoundTrip(MustParse("")); }

TEST(RenderConfig, EveryKeyRoundTrips) { ExpectRoundTrip(MustParse(kEveryKey)); }

TEST(RenderConfig, RoutesRoundTripWithAllTheirKeys) {
  const GatewayConfig config = MustParse(std::string(kEveryKey) + R"toml(
[[route]]
path = "/payments/*"
require_key = true
ttl = "1h30m15s250ms"
fingerprint = "json"

[[route]]
path = "/odd/\"quoted\"/\\/path*"
methods = ["PUT"]
max_stored_body = 1000001
store_statuses = []
)toml");
  ASSERT_EQ(config.routes.size(), 2u);
  ExpectRoundTrip(config);
  const std::string rendered = RenderConfig(config);
  // Every key of a route is written out, inherited or not.
  const std::string route = rendered.substr(rendered.find("[[route]]"));
  for (const std::string_view key :
       {"path", "header", "methods", "require_key", "ttl", "lease_ttl", "in_flight",
        "wait_timeout", "fingerprint", "fields", "tenant_headers", "store_statuses",
        "on_server_error", "on_store_error", "max_stored_body"}) {
    EXPECT_THAT(route, HasSubstr("\n" + std::string(key) + " = ")) << key;
  }
  EXPECT_THAT(rendered, HasSubstr("ttl = \"1h30m15s250ms\""));
  EXPECT_THAT(rendered, HasSubstr("max_stored_body = \"1000001\""));
  EXPECT_THAT(rendered, HasSubstr("header = \"X-Request-Key\""));
}

TEST(RenderConfig, ShowsEverySectionAndKey) {
  const std::string rendered = RenderConfig(GatewayConfig());
  for (const std::string_view line :
       {"[server]",
        "listen = \"127.0.0.1:8080\"",
        "admin_listen = \"127.0.0.1:9090\"",
        "threads = 0",
        "max_request_body = \"10MiB\"",
        "max_header_size = \"16KiB\"",
        "header_timeout = \"10s\"",
        "body_timeout = \"30s\"",
        "idle_timeout = \"1m\"",
        "drain_timeout = \"30s\"",
        "log_level = \"info\"",
        "access_log = true",
        "[upstream]",
        "url = \"http://127.0.0.1:8081\"",
        "timeout = \"30s\"",
        "connect_timeout = \"5s\"",
        "max_idle_connections = 64",
        "[store]",
        "uri = \"rocksdb:./idem-data\"",
        "auto_migrate = true",
        "sweep_interval = \"1m\"",
        "[idempotency]",
        "header = \"Idempotency-Key\"",
        "methods = [\"POST\", \"PUT\", \"PATCH\"]",
        "require_key = false",
        "ttl = \"24h\"",
        "lease_ttl = \"10s\"",
        "in_flight = \"reject\"",
        "wait_timeout = \"10s\"",
        "fingerprint = \"body\"",
        "fields = []",
        "tenant_headers = [\"Authorization\"]",
        "store_statuses = [\"2xx\", \"4xx\", \"!408\", \"!409\", \"!425\", \"!429\"]",
        "on_server_error = \"release\"",
        "on_store_error = \"reject\"",
        "max_stored_body = \"1MiB\""}) {
    EXPECT_THAT(rendered, HasSubstr("\n" + std::string(line) + "\n")) << line;
  }
  EXPECT_THAT(rendered, Not(HasSubstr("[[route]]")));
}

TEST(RenderConfig, SizesAndDurationsPickExactUnits) {
  GatewayConfig config;
  config.server.max_request_body = 1'000'000;  // decimal
  config.server.max_header_size = 1536;        // binary
  config.idempotency.max_stored_body = 1'000'001;
  config.server.header_timeout = milliseconds(61'001);
  config.server.body_timeout = milliseconds(3'600'000 * 48);
  const std::string rendered = RenderConfig(config);
  EXPECT_THAT(rendered, HasSubstr("max_request_body = \"1MB\""));
  EXPECT_THAT(rendered, HasSubstr("max_header_size = \"1536\""));
  EXPECT_THAT(rendered, HasSubstr("max_stored_body = \"1000001\""));
  EXPECT_THAT(rendered, HasSubstr("header_timeout = \"1m1s1ms\""));
  EXPECT_THAT(rendered, HasSubstr("body_timeout = \"48h\""));
}

// ---------------------------------------------------------------------------
// ApplyOverrides.

TEST(ApplyOverrides, FlagsWinOverTheFile) {
  const GatewayConfig file = MustParse(kEveryKey);
  ConfigOverrides flags;
  flags.listen = "127.0.0.1:1234";
  flags.admin_listen = "[::1]:0";
  flags.upstream = "http://localhost:9999/v2";
  flags.store = "redis://127.0.0.1:6379/1";
  flags.log_level = "warn";
  Result<GatewayConfig> config = ApplyOverrides(file, flags);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server.listen, "127.0.0.1:1234");
  EXPECT_EQ(config->server.admin_listen, "[::1]:0");
  EXPECT_EQ(config->upstream.url, "http://localhost:9999/v2");
  EXPECT_EQ(config->store.uri, "redis://127.0.0.1:6379/1");
  EXPECT_EQ(config->server.log_level, "warn");
  // Everything else is the file's.
  EXPECT_EQ(config->server.threads, 4u);
  EXPECT_EQ(config->idempotency.header, "X-Request-Key");
}

TEST(ApplyOverrides, NoFlagsChangeNothing) {
  const GatewayConfig file = MustParse(kEveryKey);
  Result<GatewayConfig> config = ApplyOverrides(file, ConfigOverrides());
  ASSERT_TRUE(config.ok());
  ExpectSameConfig(*config, file);
}

TEST(ApplyOverrides, ValidatesLikeTheFile) {
  const auto error_of = [](ConfigOverrides flags) {
    Result<GatewayConfig> config = ApplyOverrides(GatewayConfig(), flags);
    EXPECT_FALSE(config.ok());
    return config.ok() ? std::string() : config.status().message();
  };
  ConfigOverrides listen;
  listen.listen = "8080";
  EXPECT_THAT(error_of(listen),
              StartsWith("command line: --listen: \"8080\" is not HOST:PORT"));
  ConfigOverrides admin;
  admin.admin_listen = "[::1]";
  EXPECT_THAT(error_of(admin),
              StartsWith("command line: --admin-listen: \"[::1]\" is not "
                         "HOST:PORT: the port is missing"));
  ConfigOverrides upstream;
  upstream.upstream = "https://x";
  EXPECT_THAT(error_of(upstream),
              HasSubstr("--upstream: \"https://x\": https upstreams are not "
                        "supported"));
  ConfigOverrides store;
  store.store = "sqlite:x";
  EXPECT_THAT(error_of(store), HasSubstr("--store: \"sqlite:x\" is not a store URI"));
  ConfigOverrides level;
  level.log_level = "loud";
  EXPECT_THAT(error_of(level), HasSubstr("--log-level: \"loud\" is not one of"));
  ConfigOverrides clash;
  clash.listen = "127.0.0.1:9090";  // the default admin_listen
  EXPECT_THAT(error_of(clash),
              HasSubstr("--listen: \"127.0.0.1:9090\" is both server.listen "
                        "and server.admin_listen"));
  ConfigOverrides two;
  two.listen = "x";
  two.log_level = "y";
  const std::string both = error_of(two);
  EXPECT_THAT(both, HasSubstr("--listen"));
  EXPECT_THAT(both, HasSubstr("--log-level"));
}

TEST(ApplyOverrides, ResultRendersAndReparses) {
  ConfigOverrides flags;
  flags.upstream = "http://[::1]:8081";
  flags.store = "memory:";
  Result<GatewayConfig> config = ApplyOverrides(MustParse(kDesignExample), flags);
  ASSERT_TRUE(config.ok()) << config.status();
  ExpectRoundTrip(*config);
}

}  // namespace
}  // namespace idem::gateway
