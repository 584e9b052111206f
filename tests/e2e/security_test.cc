// Isolation and secrets end to end, with the real `idem serve`:
//   - a result stored for one tenant is never served to another, also when
//     the other cycles through the first one's keys;
//   - tenant ids are HMAC-SHA-256 keyed with server.tenant_secret_file;
//   - the admin listener asks for a bearer token when one is configured,
//     and `idem serve` refuses an admin listener off loopback without one;
//   - [store.encryption]: a dump of Redis or PostgreSQL holds no response
//     in the clear; key rotation; a retired key or a tampered record is a
//     503, never a replay of garbage and never a second execution.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "idem/key.h"
#include "postgres/postgres_server.h"
#include "redis/redis_server.h"
#include "stack_fixture.h"

namespace idem::e2e {
namespace {

const std::string kTenantSecret = "tenant-secret-for-the-e2e-tests-0001";
const std::string kAdminToken = "admin-token-for-the-e2e-tests-0001";
const std::string kKey1 = "k1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const std::string kKey2 = "k2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::string Hex(std::string_view text) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (const char c : text) {
    out += kDigits[static_cast<unsigned char>(c) >> 4];
    out += kDigits[static_cast<unsigned char>(c) & 15];
  }
  return out;
}

HttpRequest AsTenant(HttpRequest request, std::string_view credential) {
  if (!credential.empty()) request.Header("Authorization", std::string(credential));
  return request;
}

class SecurityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    upstream_ = Upstream::Start(error_);
    if (!upstream_) return;
    dir_ = std::make_unique<TempDir>();
    WriteFile(dir_->File("tenant.secret"), kTenantSecret + "\n");
    WriteFile(dir_->File("admin.token"), kAdminToken + "\n");
    GatewayOptions options;
    options.config = "[server]\nthreads = 2\ntenant_secret_file = \"" +
                     dir_->File("tenant.secret") + "\"\nadmin_token_file = \"" +
                     dir_->File("admin.token") +
                     "\"\n\n[[route]]\npath = \"/payments*\"\nrequire_key = true\n";
    options.upstream_url = upstream_->url();
    gateway_ = Gateway::Start(options, error_);
  }
  static void TearDownTestSuite() {
    gateway_.reset();
    upstream_.reset();
    dir_.reset();
  }
  void SetUp() override { ASSERT_TRUE(upstream_ && gateway_) << error_; }
  void TearDown() override {
    if (HasFailure() && gateway_) std::cerr << "gateway log:\n" << gateway_->Log();
  }

  static HttpResponse Send(const HttpRequest& request) {
    return Fetch(gateway_->port(), request);
  }
  static HttpResponse Admin(HttpRequest request, bool with_token = true) {
    if (with_token) request.Header("Authorization", "Bearer " + kAdminToken);
    return Fetch(gateway_->admin_port(), request);
  }

  static inline std::unique_ptr<Upstream> upstream_;
  static inline std::unique_ptr<Gateway> gateway_;
  static inline std::unique_ptr<TempDir> dir_;
  static inline std::string error_;
};

TEST_F(SecurityTest, ATenantCyclingThroughAnothersKeysNeverGetsItsResults) {
  constexpr int kKeys = 20;
  std::vector<std::string> keys;
  std::vector<HttpResponse> alice;
  for (int i = 0; i < kKeys; ++i) {
    keys.push_back(UniqueKey(std::to_string(i)));
    alice.push_back(Send(AsTenant(KeyedPost("/payments", keys[i], PaymentBody(100 + i)),
                                  "Bearer alice")));
    ASSERT_EQ(alice[i].status, 201) << alice[i].Describe();
  }
  // Mallory guesses: the same keys, with Alice's bodies and with others,
  // with her own credential, with none, and with near misses of Alice's.
  const std::vector<std::string> mallories = {"Bearer mallory", "", "bearer alice",
                                              "Bearer alicf"};
  for (size_t m = 0; m < mallories.size(); ++m) {
    const std::string& mallory = mallories[m];
    for (int i = 0; i < kKeys; ++i) {
      const int amount = m % 2 == 0 ? 100 + i : 999;
      const HttpRequest guess_request =
          AsTenant(KeyedPost("/payments", keys[i], PaymentBody(amount)), mallory);
      HttpResponse guess = Send(guess_request);
      ASSERT_EQ(guess.status, 201) << "'" << mallory << "' key " << i
                                   << ": no 409/422 oracle either\n"
                                   << guess.Describe();
      EXPECT_FALSE(guess.HasHeader("Idempotent-Replayed")) << mallory << " key " << i;
      EXPECT_NE(guess.body, alice[i].body) << mallory << " got alice's result";
      EXPECT_TRUE(IsReplayOf(Send(guess_request), guess)) << "her own result replays to her";
    }
  }
  for (int i = 0; i < kKeys; ++i) {
    EXPECT_EQ(upstream_->Count(keys[i]), 1u + mallories.size());
  }
  // Alice's results are untouched.
  for (int i = 0; i < kKeys; ++i) {
    EXPECT_TRUE(IsReplayOf(
        Send(AsTenant(KeyedPost("/payments", keys[i], PaymentBody(100 + i)), "Bearer alice")),
        alice[i]));
  }
}

TEST_F(SecurityTest, TenantIdsAreKeyedWithTheConfiguredSecret) {
  const std::string key = UniqueKey();
  ASSERT_EQ(Send(AsTenant(KeyedPost("/payments", key, PaymentBody()), "Bearer alice")).status,
            201);
  const auto record = [&](const std::string& tenant) {
    return Admin(Get("/keys/" + UrlEncode(BuildScopeKey(tenant, "POST", "/payments", key))));
  };
  const std::string keyed = TenantId({"Bearer alice"}, kTenantSecret);
  const std::string unkeyed = TenantId({"Bearer alice"});
  ASSERT_NE(keyed, unkeyed);
  HttpResponse found = record(keyed);
  EXPECT_EQ(found.status, 200) << found.Describe();
  EXPECT_EQ(found.body.find("Bearer alice"), std::string::npos) << "credentials are never stored";
  EXPECT_EQ(record(unkeyed).status, 404) << "the plain SHA-256 id must not address it";
}

TEST_F(SecurityTest, AdminNeedsTheBearerTokenExceptForHealthz) {
  EXPECT_EQ(Admin(Get("/healthz"), false).status, 200);
  for (const std::string target : {"/readyz", "/metrics", "/keys/anonymous%20POST%20/x%20k"}) {
    HttpResponse denied = Admin(Get(target), false);
    EXPECT_TRUE(IsProblem(denied, 401, "unauthorized")) << target << denied.Describe();
    HttpRequest wrong = Get(target);
    wrong.Header("Authorization", "Bearer " + kAdminToken + "x");
    EXPECT_TRUE(IsProblem(Admin(wrong, false), 401, "unauthorized")) << target;
  }
  EXPECT_EQ(Admin(Get("/readyz")).status, 200);
  EXPECT_EQ(Admin(Get("/metrics")).status, 200);
  EXPECT_TRUE(IsProblem(Admin(Get("/keys/anonymous%20POST%20/x%20k")), 404, "not-found"));
  // A DELETE without the token purges nothing.
  const std::string key = UniqueKey();
  HttpResponse first = Send(KeyedPost("/payments", key, PaymentBody()));
  ASSERT_EQ(first.status, 201);
  HttpRequest purge = Get("/keys/" + UrlEncode("anonymous POST /payments " + key));
  purge.method = "DELETE";
  EXPECT_EQ(Admin(purge, false).status, 401);
  HttpResponse replay = Send(KeyedPost("/payments", key, PaymentBody()));
  EXPECT_EQ(replay.Header("Idempotent-Replayed").value_or(""), "true") << replay.Describe();
  EXPECT_EQ(upstream_->Count(key), 1u);
  EXPECT_EQ(Admin(purge).status, 204) << "with the token it does";
}

TEST(AdminExposure, ServeRefusesANonLoopbackAdminListenerWithoutAToken) {
  TempDir dir;
  Process idem;
  std::string error;
  ASSERT_TRUE(idem.Start({IdemBinary(), "serve", "--store", "memory:", "--listen",
                          "127.0.0.1:0", "--admin-listen", "0.0.0.0:0", "--upstream",
                          "http://127.0.0.1:9"},
                         dir.File("idem.log"), error))
      << error;
  auto exit = idem.Wait(std::chrono::seconds(20));
  ASSERT_TRUE(exit.has_value()) << "it must refuse, not serve";
  EXPECT_TRUE(exit->exited && exit->code == 1) << exit->ToString();
  EXPECT_NE(ReadFile(dir.File("idem.log")).find("admin_token_file"), std::string::npos)
      << ReadFile(dir.File("idem.log"));
}

// Encryption at rest against real Redis and PostgreSQL servers.
class EncryptionAtRestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    upstream_ = Upstream::Start(error_);
    ASSERT_NE(upstream_, nullptr) << error_;
  }
  void TearDown() override {
    if (HasFailure() && gateway_) std::cerr << "gateway log:\n" << gateway_->Log();
  }

  // (Re)starts the gateway on `store_uri`; `keys` empty: no encryption.
  void StartGateway(const std::string& store_uri, const std::string& keys,
                    const std::string& active) {
    if (gateway_) gateway_->Stop();
    gateway_.reset();
    std::string config = "[server]\nthreads = 2\n";
    if (!keys.empty()) {
      WriteFile(dir_.File("store.keys"), keys);
      config += "\n[store.encryption]\nactive_key = \"" + active + "\"\nkeys_file = \"" +
                dir_.File("store.keys") + "\"\n";
    }
    GatewayOptions options;
    options.config = config;
    options.store_uri = store_uri;
    options.upstream_url = upstream_->url();
    gateway_ = Gateway::Start(options, error_);
    ASSERT_NE(gateway_, nullptr) << error_;
  }

  HttpResponse Pay(const std::string& key) {
    return Fetch(gateway_->port(), KeyedPost("/payments", key, PaymentBody(4242)));
  }

  // Checks every dump (and the hex form of bytes, as pg_dump writes bytea)
  // for the response body's distinctive parts.
  static bool Reveals(const std::string& dump, const HttpResponse& response) {
    const size_t id_at = response.body.find("\"id\":\"");
    const std::string id = response.body.substr(id_at, response.body.find(',', id_at) - id_at);
    for (const std::string& secret : {id, std::string("\"status\":\"succeeded\"")}) {
      if (dump.find(secret) != std::string::npos || dump.find(Hex(secret)) != std::string::npos) {
        return true;
      }
    }
    return false;
  }

  // Writes with one key, rotates to a second, retires the first. `dump`
  // returns everything the server holds for one client key.
  void RotationScenario(const std::string& uri,
                        const std::function<std::string(const std::string&)>& dump) {
    // Control: without encryption the dump shows the response.
    StartGateway(uri, "", "");
    const std::string plain_key = UniqueKey("plain");
    HttpResponse plain = Pay(plain_key);
    ASSERT_EQ(plain.status, 201) << plain.Describe();
    ASSERT_TRUE(Reveals(dump(plain_key), plain))
        << "the dump must be able to show a response, or this test proves nothing:\n"
        << dump(plain_key);

    StartGateway(uri, kKey1 + "\n", "k1");
    const std::string old_key = UniqueKey("old");
    HttpResponse old_first = Pay(old_key);
    ASSERT_EQ(old_first.status, 201) << old_first.Describe();
    const std::string sealed = dump(old_key);
    EXPECT_FALSE(Reveals(sealed, old_first)) << sealed;
    EXPECT_TRUE(sealed.find("IDEMENC1") != std::string::npos ||
                sealed.find(Hex("IDEMENC1")) != std::string::npos)
        << "the record must be in the dump, encrypted:\n" << sealed;
    EXPECT_TRUE(IsReplayOf(Pay(old_key), old_first));
    EXPECT_TRUE(IsReplayOf(Pay(plain_key), plain)) << "older plaintext records still replay";

    // Rotation: k2 encrypts, k1 still decrypts.
    StartGateway(uri, kKey1 + "\n" + kKey2 + "\n", "k2");
    EXPECT_TRUE(IsReplayOf(Pay(old_key), old_first));
    const std::string new_key = UniqueKey("new");
    HttpResponse new_first = Pay(new_key);
    ASSERT_EQ(new_first.status, 201);
    EXPECT_FALSE(Reveals(dump(new_key), new_first));

    // k1 retired: its records fail closed (503), never executed again.
    StartGateway(uri, kKey2 + "\n", "k2");
    EXPECT_TRUE(IsReplayOf(Pay(new_key), new_first));
    EXPECT_TRUE(IsProblem(Pay(old_key), 503, "store-unavailable"));
    EXPECT_EQ(upstream_->Count(old_key), 1u);
    EXPECT_EQ(upstream_->Count(new_key), 1u);
  }

  TempDir dir_;
  std::unique_ptr<Upstream> upstream_;
  std::unique_ptr<Gateway> gateway_;
  std::string error_;
};

TEST_F(EncryptionAtRestTest, RedisDumpRevealsNoResponseAndKeysRotate) {
  auto started = testing::RedisServer::Start();
  ASSERT_TRUE(started.ok()) << started.status();
  std::unique_ptr<testing::RedisServer> redis = std::move(started).value();
  // Every field of every Redis key whose name holds the client key.
  const auto dump = [&redis](const std::string& client_key) {
    std::string out;
    auto keys = redis->Command({"KEYS", "*"});
    if (!keys.ok()) return std::string("(KEYS failed)");
    for (const auto& name : keys->elements) {
      if (name.str.find(client_key) == std::string::npos) continue;
      out += "key " + name.str + "\n";
      auto fields = redis->Command({"HGETALL", name.str});
      if (!fields.ok()) continue;
      for (const auto& field : fields->elements) out += field.str + "\n";
    }
    return out;
  };
  RotationScenario(redis->uri(), dump);

  // Tampering: flip one byte of a stored ciphertext.
  const std::string key = UniqueKey("tamper");
  HttpResponse first = Pay(key);
  ASSERT_EQ(first.status, 201);
  auto names = redis->Command({"KEYS", "*" + key + "*"});
  ASSERT_TRUE(names.ok() && names->elements.size() == 1u);
  auto body = redis->Command({"HGET", names->elements[0].str, "bd"});
  ASSERT_TRUE(body.ok() && body->str.size() > 40) << "the body field is \"bd\"";
  std::string flipped = body->str;
  flipped[flipped.size() / 2] = static_cast<char>(flipped[flipped.size() / 2] ^ 0x20);
  ASSERT_TRUE(redis->Command({"HSET", names->elements[0].str, "bd", flipped}).ok());
  EXPECT_TRUE(IsProblem(Pay(key), 503, "store-unavailable"));
  EXPECT_EQ(upstream_->Count(key), 1u) << "a tampered record is neither replayed nor re-run";
}

TEST_F(EncryptionAtRestTest, PostgresDumpRevealsNoResponseAndKeysRotate) {
  auto started = testing::PostgresServer::Start();
  ASSERT_TRUE(started.ok()) << started.status();
  std::unique_ptr<testing::PostgresServer> postgres = std::move(started).value();
  ASSERT_TRUE(postgres->CreateDatabase("idem_encryption").ok());
  const std::string uri = postgres->Uri("idem_encryption");
  // pg_dump of the whole database (what a stolen backup holds), narrowed
  // to the rows of one client key (bytea columns are written in hex).
  const auto dump = [&](const std::string& client_key) {
    Process pg_dump;
    std::string error;
    const std::string out = dir_.File("pg_dump.sql");
    std::remove(out.c_str());
    if (!pg_dump.Start({"/usr/bin/pg_dump", "--data-only", "--dbname=" + uri}, out, error)) {
      return "(pg_dump did not start: " + error + ")";
    }
    pg_dump.Wait(std::chrono::seconds(60));
    std::istringstream all(ReadFile(out));
    std::string rows;
    for (std::string line; std::getline(all, line);) {
      if (line.find(Hex(client_key)) != std::string::npos ||
          line.find(client_key) != std::string::npos) {
        rows += line + "\n";
      }
    }
    return rows;
  };
  RotationScenario(uri, dump);
}

}  // namespace
}  // namespace idem::e2e
