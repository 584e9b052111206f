// The hardening keys of the configuration: secrets (tenant HMAC secret,
// admin token), the admin listener's exposure rule, store.operation_timeout,
// [store.encryption] and fault: store URIs; and LoadSecrets.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "gateway/config.h"

namespace idem::gateway {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const std::string kKey1 = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

GatewayConfig MustParse(std::string_view text) {
  Result<GatewayConfig> config = ParseConfig(text, "test.toml");
  EXPECT_TRUE(config.ok()) << config.status() << "\nin:\n" << text;
  return config.ok() ? *config : GatewayConfig();
}

std::string ErrorOf(std::string_view text) {
  Result<GatewayConfig> config = ParseConfig(text, "test.toml");
  EXPECT_FALSE(config.ok()) << "parsed:\n" << text;
  return config.ok() ? "" : config.status().message();
}

// A file with `contents`, removed at the end of the test.
class SecretFile {
 public:
  explicit SecretFile(const std::string& contents) {
    char name[] = "/tmp/idem-secret-XXXXXX";
    const int fd = mkstemp(name);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(write(fd, contents.data(), contents.size()),
              static_cast<ssize_t>(contents.size()));
    close(fd);
    path_ = name;
  }
  ~SecretFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(SecurityConfig, DefaultsAskForNoSecrets) {
  GatewayConfig config = MustParse("");
  EXPECT_EQ(config.store.operation_timeout, std::chrono::seconds(10));
  EXPECT_FALSE(config.store.encryption.enabled());
  ASSERT_TRUE(LoadSecrets(config).ok());
  EXPECT_TRUE(config.secrets.tenant_secret.empty());
  EXPECT_TRUE(config.secrets.admin_token.empty());
  EXPECT_FALSE(config.secrets.encryption.has_value());
}

TEST(SecurityConfig, EveryNewKeyParsesAndRoundTrips) {
  const GatewayConfig config = MustParse(R"toml(
[server]
admin_listen = "0.0.0.0:9090"
tenant_secret_file = "/etc/idem/tenant.secret"
admin_token_env = "IDEM_ADMIN_TOKEN"

[store]
operation_timeout = "750ms"

[store.encryption]
active_key = "2026-11"
keys_file = "/etc/idem/store.keys"
keys_env = "IDEM_STORE_KEYS"
)toml");
  EXPECT_EQ(config.server.tenant_secret_file, "/etc/idem/tenant.secret");
  EXPECT_EQ(config.server.admin_token_env, "IDEM_ADMIN_TOKEN");
  EXPECT_EQ(config.store.operation_timeout, std::chrono::milliseconds(750));
  EXPECT_EQ(config.store.encryption.active_key, "2026-11");
  const std::string rendered = RenderConfig(config);
  EXPECT_THAT(rendered, HasSubstr("\n[store.encryption]\nactive_key = \"2026-11\"\n"));
  EXPECT_THAT(rendered, HasSubstr("\noperation_timeout = \"750ms\"\n"));
  Result<GatewayConfig> again = ParseConfig(rendered, "rendered");
  ASSERT_TRUE(again.ok()) << again.status() << rendered;
  EXPECT_EQ(RenderConfig(*again), rendered);
}

TEST(SecurityConfig, BadValuesAreNamed) {
  EXPECT_THAT(ErrorOf("[server]\ntenant_secret_env = \"1BAD\"\n"),
              HasSubstr("server.tenant_secret_env: \"1BAD\" is not an environment variable"));
  EXPECT_THAT(ErrorOf("[server]\nadmin_token_file = \"/a\"\nadmin_token_env = \"B\"\n"),
              HasSubstr("server.admin_token_env: set admin_token_file or admin_token_env, "
                        "not both"));
  EXPECT_THAT(ErrorOf("[store]\noperation_timeout = \"0s\"\n"),
              HasSubstr("store.operation_timeout"));
  EXPECT_THAT(ErrorOf("[store.encryption]\nkeys_file = \"/k\"\n"),
              HasSubstr("store.encryption.active_key: missing"));
  EXPECT_THAT(ErrorOf("[store.encryption]\nactive_key = \"k1\"\n"),
              HasSubstr("store.encryption.keys_file: no keys"));
  EXPECT_THAT(ErrorOf("[store.encryption]\nactive_key = \"a b\"\nkeys_file = \"/k\"\n"),
              HasSubstr("is not a key id"));
  EXPECT_THAT(ErrorOf("[store.encryption]\nactive_key = \"k\"\nkeys_file = \"/k\"\nkey = 1\n"),
              HasSubstr("store.encryption.key: unknown key"));
}

TEST(SecurityConfig, AdminOffLoopbackNeedsAToken) {
  for (const std::string_view address : {"0.0.0.0:9090", "10.1.2.3:9090", "[::]:9090",
                                         "admin.example:9090"}) {
    EXPECT_THAT(ErrorOf("[server]\nadmin_listen = \"" + std::string(address) + "\"\n"),
                HasSubstr("needs server.admin_token_file or server.admin_token_env"))
        << address;
    MustParse("[server]\nadmin_listen = \"" + std::string(address) +
              "\"\nadmin_token_file = \"/etc/idem/admin.token\"\n");
  }
  for (const std::string_view address :
       {"127.0.0.1:9090", "127.8.9.10:0", "[::1]:9090", "localhost:9090", "LOCALHOST:1"}) {
    EXPECT_TRUE(IsLoopbackListen(address)) << address;
    MustParse("[server]\nadmin_listen = \"" + std::string(address) + "\"\n");
  }
  ConfigOverrides flags;
  flags.admin_listen = "0.0.0.0:9999";
  Result<GatewayConfig> exposed = ApplyOverrides(GatewayConfig(), flags);
  ASSERT_FALSE(exposed.ok());
  EXPECT_THAT(exposed.status().message(), HasSubstr("--admin-listen"));
  GatewayConfig with_token;
  with_token.server.admin_token_env = "IDEM_ADMIN_TOKEN";
  EXPECT_TRUE(ApplyOverrides(with_token, flags).ok());
}

TEST(SecurityConfig, FaultStoreUrisAreCheckedThrough) {
  MustParse("[store]\nuri = \"fault:begin=error,rate=0.5;seed=3|rocksdb:./d\"\n");
  EXPECT_THAT(ErrorOf("[store]\nuri = \"fault:begin=boom|memory:\"\n"), HasSubstr("boom"));
  EXPECT_THAT(ErrorOf("[store]\nuri = \"fault:begin=error|sqlite:x\"\n"),
              HasSubstr("is not a store URI"));
  EXPECT_THAT(ErrorOf("[store]\nuri = \"fault:begin=error\"\n"), HasSubstr("fault:RULES|"));
}

TEST(LoadSecrets, ReadsFilesAndEnvironmentWithoutEchoingThem) {
  SecretFile tenant("tenant-secret-0123456789abcdef\n");
  SecretFile keys("# keys\nold:" + kKey1 + "\n");
  ::setenv("IDEM_TEST_ADMIN_TOKEN", "admin-token-0123456789", 1);
  ::setenv("IDEM_TEST_STORE_KEYS", "new:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=", 1);
  GatewayConfig config = MustParse("[server]\ntenant_secret_file = \"" + tenant.path() +
                                   "\"\nadmin_token_env = \"IDEM_TEST_ADMIN_TOKEN\"\n"
                                   "[store.encryption]\nactive_key = \"new\"\nkeys_file = \"" +
                                   keys.path() + "\"\nkeys_env = \"IDEM_TEST_STORE_KEYS\"\n");
  Status loaded = LoadSecrets(config);
  ASSERT_TRUE(loaded.ok()) << loaded;
  EXPECT_EQ(config.secrets.tenant_secret, "tenant-secret-0123456789abcdef");
  EXPECT_EQ(config.secrets.admin_token, "admin-token-0123456789");
  ASSERT_TRUE(config.secrets.encryption.has_value());
  EXPECT_EQ(config.secrets.encryption->active_id, "new");
  EXPECT_EQ(config.secrets.encryption->keys.size(), 2u);
  EXPECT_THAT(RenderConfig(config), Not(HasSubstr("tenant-secret-0123")));
  ::unsetenv("IDEM_TEST_ADMIN_TOKEN");
  ::unsetenv("IDEM_TEST_STORE_KEYS");
}

TEST(LoadSecrets, MissingShortOrMalformedSecretsStopTheStart) {
  SecretFile short_secret("short\n");
  GatewayConfig a = MustParse("[server]\ntenant_secret_file = \"" + short_secret.path() + "\"\n");
  EXPECT_THAT(LoadSecrets(a).message(), HasSubstr("shorter than 16 bytes"));

  GatewayConfig b = MustParse("[server]\nadmin_token_env = \"IDEM_TEST_UNSET_VARIABLE\"\n");
  ::unsetenv("IDEM_TEST_UNSET_VARIABLE");
  EXPECT_THAT(LoadSecrets(b).message(), HasSubstr("IDEM_TEST_UNSET_VARIABLE is not set"));

  GatewayConfig c = MustParse("[server]\nadmin_token_file = \"/nonexistent/idem/token\"\n");
  EXPECT_THAT(LoadSecrets(c).message(), HasSubstr("cannot read /nonexistent/idem/token"));

  SecretFile spaced("token with spaces in it\n");
  GatewayConfig d = MustParse("[server]\nadmin_token_file = \"" + spaced.path() + "\"\n");
  EXPECT_THAT(LoadSecrets(d).message(), HasSubstr("printable ASCII without spaces"));

  SecretFile bad_keys("k1:" + kKey1.substr(4) + "\n");
  GatewayConfig e = MustParse("[store.encryption]\nactive_key = \"k1\"\nkeys_file = \"" +
                              bad_keys.path() + "\"\n");
  const std::string message = LoadSecrets(e).message();
  EXPECT_THAT(message, HasSubstr("32 bytes"));
  EXPECT_THAT(message, Not(HasSubstr(kKey1.substr(4, 16))));

  SecretFile other_keys("k1:" + kKey1 + "\n");
  GatewayConfig f = MustParse("[store.encryption]\nactive_key = \"k2\"\nkeys_file = \"" +
                              other_keys.path() + "\"\n");
  EXPECT_THAT(LoadSecrets(f).message(), HasSubstr("\"k2\" is not among the keys"));
}

}  // namespace
}  // namespace idem::gateway
