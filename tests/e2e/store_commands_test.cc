// `idem keys get|delete` and `idem gc` on the directory of a stopped
// gateway's RocksDB store (the default), with --store or with the gateway's
// --config; an encrypted record is shown decrypted only with the config's
// keys.
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <string>

#include "stack_fixture.h"

namespace idem::e2e {
namespace {

// 32 bytes as hex: a test key, not a secret.
const std::string kTestKey = "k1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// The payment id in a /payments response body ("pay_...").
std::string PaymentId(const HttpResponse& response) {
  const size_t at = response.body.find("\"id\":\"");
  if (at == std::string::npos) return "";
  return response.body.substr(at + 6, response.body.find('"', at + 6) - at - 6);
}

class StoreCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    upstream_ = Upstream::Start(error_);
    ASSERT_NE(upstream_, nullptr) << error_;
    store_uri_ = "rocksdb:" + dir_.File("data");
  }
  void TearDown() override {
    if (HasFailure() && gateway_) std::cerr << "gateway log:\n" << gateway_->Log();
  }

  void StartGateway(const std::string& config) {
    GatewayOptions options;
    options.config = config;
    options.store_uri = store_uri_;
    options.upstream_url = upstream_->url();
    gateway_ = Gateway::Start(options, error_);
    ASSERT_NE(gateway_, nullptr) << error_;
  }

  HttpResponse Pay(const std::string& key) {
    return Fetch(gateway_->port(), KeyedPost("/payments", key, PaymentBody(4242)));
  }

  std::vector<std::string> KeyArgs(const std::string& verb, const std::string& key) const {
    return {"keys", verb, "--store", store_uri_, "--key", key, "--path", "/payments"};
  }

  TempDir dir_;
  std::string store_uri_;
  std::unique_ptr<Upstream> upstream_;
  std::unique_ptr<Gateway> gateway_;
  std::string error_;
};

TEST_F(StoreCommandsTest, KeysAndGcWorkOnAStoppedGatewaysDirectory) {
  StartGateway("");
  const std::string key = UniqueKey("paid");
  HttpResponse paid = Pay(key);
  ASSERT_EQ(paid.status, 201) << paid.Describe();
  ASSERT_FALSE(PaymentId(paid).empty()) << paid.body;

  // While the gateway runs, RocksDB's LOCK keeps the command out, clearly.
  CliRun locked = RunIdem(KeyArgs("get", key));
  EXPECT_EQ(locked.status.code, 2) << locked.output;
  EXPECT_NE(locked.output.find("in use by another process"), std::string::npos)
      << locked.output;

  ASSERT_TRUE(gateway_->Stop().has_value());
  CliRun got = RunIdem(KeyArgs("get", key));
  EXPECT_TRUE(got.status.success()) << got.output;
  EXPECT_NE(got.output.find("\"state\":\"completed\""), std::string::npos) << got.output;
  EXPECT_NE(got.output.find("\"status\":201"), std::string::npos) << got.output;
  EXPECT_NE(got.output.find(PaymentId(paid)), std::string::npos) << got.output;

  CliRun missing = RunIdem(KeyArgs("get", UniqueKey("never-sent")));
  EXPECT_EQ(missing.status.code, 1) << missing.output;

  CliRun deleted = RunIdem(KeyArgs("delete", key));
  EXPECT_TRUE(deleted.status.success()) << deleted.output;
  EXPECT_NE(deleted.output.find("deleted"), std::string::npos) << deleted.output;
  EXPECT_EQ(RunIdem(KeyArgs("get", key)).status.code, 1);
  EXPECT_EQ(RunIdem(KeyArgs("delete", key)).status.code, 1);

  CliRun gc = RunIdem({"gc", "--store", store_uri_});
  EXPECT_TRUE(gc.status.success()) << gc.output;
  EXPECT_NE(gc.output.find("expired records"), std::string::npos) << gc.output;

  // The purged key executes again on the restarted gateway; nothing else
  // was touched.
  ASSERT_TRUE(gateway_->Restart(error_)) << error_;
  HttpResponse again = Pay(key);
  EXPECT_EQ(again.status, 201) << again.Describe();
  EXPECT_TRUE(IsFresh(again));
  EXPECT_EQ(upstream_->Count(key), 2u);

  CliRun neither = RunIdem({"keys", "get", "--key", key, "--path", "/payments"});
  EXPECT_EQ(neither.status.code, 2) << neither.output;
  EXPECT_NE(neither.output.find("--store"), std::string::npos) << neither.output;
  CliRun no_config = RunIdem({"gc", "--config", dir_.File("missing.toml")});
  EXPECT_FALSE(no_config.status.success()) << no_config.output;
  EXPECT_NE(no_config.output.find("missing.toml"), std::string::npos) << no_config.output;
}

TEST_F(StoreCommandsTest, TheConfigsKeysShowAnEncryptedRecordDecrypted) {
  WriteText(dir_.File("store.keys"), kTestKey + "\n");
  const std::string config = "[store]\nuri = \"" + store_uri_ +
                             "\"\n\n[store.encryption]\nactive_key = \"k1\"\nkeys_file = \"" +
                             dir_.File("store.keys") + "\"\n";
  WriteText(dir_.File("idem.toml"), config);
  StartGateway(config);
  const std::string key = UniqueKey("sealed");
  HttpResponse paid = Pay(key);
  ASSERT_EQ(paid.status, 201) << paid.Describe();
  const std::string id = PaymentId(paid);
  ASSERT_FALSE(id.empty()) << paid.body;
  ASSERT_TRUE(gateway_->Stop().has_value());

  // Without the keys: the record is there, its response is not readable.
  CliRun sealed = RunIdem(KeyArgs("get", key));
  EXPECT_TRUE(sealed.status.success()) << sealed.output;
  EXPECT_NE(sealed.output.find("\"state\":\"completed\""), std::string::npos)
      << sealed.output;
  EXPECT_EQ(sealed.output.find(id), std::string::npos) << sealed.output;

  // With the gateway's config (its [store] uri, its keys): decrypted.
  CliRun opened = RunIdem({"keys", "get", "--config", dir_.File("idem.toml"), "--key", key,
                           "--path", "/payments"});
  EXPECT_TRUE(opened.status.success()) << opened.output;
  EXPECT_NE(opened.output.find(id), std::string::npos) << opened.output;

  // A config whose key file is gone is a clear error, not ciphertext.
  WriteText(dir_.File("broken.toml"), "[store]\nuri = \"" + store_uri_ +
                                          "\"\n\n[store.encryption]\nactive_key = \"k1\"\n"
                                          "keys_file = \"" + dir_.File("no.keys") + "\"\n");
  CliRun broken = RunIdem({"keys", "get", "--config", dir_.File("broken.toml"), "--key", key,
                           "--path", "/payments"});
  EXPECT_EQ(broken.status.code, 2) << broken.output;
  EXPECT_NE(broken.output.find("store.encryption"), std::string::npos) << broken.output;
}

}  // namespace
}  // namespace idem::e2e
