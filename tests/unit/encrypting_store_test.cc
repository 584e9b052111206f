// Encryption at rest (idem/encrypting_store.h) over a real memory store:
// what reaches the backend is ciphertext, what comes back is the response.
#include "idem/encrypting_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "idem/memory_store.h"

namespace idem {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const std::string kHexKey1 =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
// base64 of 32 bytes 0x20..0x3f
const std::string kBase64Key2 = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

EncryptionKeys Keys(std::string_view text, std::string active) {
  auto parsed = ParseEncryptionKeys(text);
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  EncryptionKeys keys;
  keys.active_id = std::move(active);
  keys.keys = parsed.ok() ? *parsed : std::vector<EncryptionKey>{};
  EXPECT_TRUE(CheckEncryptionKeys(keys).ok());
  return keys;
}

StoredResponse Payment() {
  return StoredResponse{201,
                        {{"Content-Type", "application/json"},
                         {"Set-Cookie", "session=very-secret-cookie"}},
                        R"({"id":"pay_1","card":"4242-secret-card"})"};
}

void Store(Store& store, const std::string& key, StoredResponse response) {
  BeginRequest begin;
  begin.key = key;
  begin.owner = "o";
  ASSERT_TRUE(BeginSync(store, begin).ok());
  ASSERT_TRUE(CompleteSync(store, CompleteRequest{key, "o", std::move(response), 60000}).ok());
}

TEST(EncryptionKeys, ParsesHexAndBase64WithCommentsAndCommas) {
  auto keys = ParseEncryptionKeys("# rotation 2026\n k1: " + kHexKey1 + "\n\nk2:" + kBase64Key2 +
                                  "\r\n");
  ASSERT_TRUE(keys.ok()) << keys.status();
  ASSERT_EQ(keys->size(), 2u);
  EXPECT_EQ((*keys)[0].id, "k1");
  EXPECT_EQ((*keys)[0].bytes[31], '\x1f');
  EXPECT_EQ((*keys)[1].bytes[0], '\x20');
  EXPECT_EQ((*keys)[1].bytes[31], '\x3f');
  auto env_style = ParseEncryptionKeys("a:" + kHexKey1 + ",b:" + kBase64Key2);
  ASSERT_TRUE(env_style.ok());
  EXPECT_EQ(env_style->size(), 2u);
}

TEST(EncryptionKeys, RejectsBadEntriesWithoutEchoingKeys) {
  for (const std::string& bad :
       {std::string("k1"), "k1:" + kHexKey1.substr(2), "k1:" + kHexKey1 + "00",
        "bad id:" + kHexKey1, ":" + kHexKey1,
        std::string("k1:not-base64-at-all-not-base64-at-all-nott=")}) {
    auto parsed = ParseEncryptionKeys(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_THAT(parsed.status().message(), Not(HasSubstr("0a0b0c")));
  }
  EncryptionKeys keys;
  keys.active_id = "k9";
  keys.keys = *ParseEncryptionKeys("k1:" + kHexKey1);
  EXPECT_FALSE(CheckEncryptionKeys(keys).ok()) << "the active key must exist";
  keys.active_id = "k1";
  keys.keys.push_back(keys.keys[0]);
  EXPECT_FALSE(CheckEncryptionKeys(keys).ok()) << "ids are unique";
}

TEST(EncryptingStore, TheBackendHoldsOnlyCiphertext) {
  auto memory = NewMemoryStore();
  auto store = NewEncryptingStore(memory, Keys("k1:" + kHexKey1, "k1"));
  Store(*store, "t POST /payments a", Payment());

  auto raw = GetSync(*memory, "t POST /payments a");
  ASSERT_TRUE(raw.ok());
  const StoredResponse& stored = (*raw)->response;
  EXPECT_EQ(stored.status, 201);
  EXPECT_TRUE(stored.headers.empty());
  EXPECT_TRUE(IsEncryptedResponse(stored));
  EXPECT_THAT(stored.body, Not(HasSubstr("4242-secret-card")));
  EXPECT_THAT(stored.body, Not(HasSubstr("very-secret-cookie")));
  EXPECT_THAT(stored.body, Not(HasSubstr("application/json")));

  auto read = GetSync(*store, "t POST /payments a");
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ((*read)->response, Payment());

  BeginRequest again;
  again.key = "t POST /payments a";
  again.owner = "other";
  auto begun = BeginSync(*store, again);
  ASSERT_TRUE(begun.ok());
  ASSERT_EQ(begun->outcome, BeginOutcome::kCompleted);
  EXPECT_EQ(begun->record->response, Payment());

  auto waited = WaitForCompletionSync(*store, "t POST /payments a", std::chrono::seconds(1));
  ASSERT_TRUE(waited.ok());
  EXPECT_EQ((*waited)->response, Payment());
}

TEST(EncryptingStore, EachRecordGetsItsOwnNonce) {
  const EncryptionKeys keys = Keys("k1:" + kHexKey1, "k1");
  auto a = EncryptResponse(keys, "k", Payment());
  auto b = EncryptResponse(keys, "k", Payment());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->body, b->body);
  EXPECT_EQ(*DecryptResponse(keys, "k", *a), Payment());
  EXPECT_EQ(*DecryptResponse(keys, "k", *b), Payment());
}

TEST(EncryptingStore, TamperingIsDataLossNotGarbage) {
  const EncryptionKeys keys = Keys("k1:" + kHexKey1, "k1");
  auto sealed = EncryptResponse(keys, "key", Payment());
  ASSERT_TRUE(sealed.ok());
  for (size_t at : {size_t{8} + 1 + 2 + 3, sealed->body.size() / 2, sealed->body.size() - 1}) {
    StoredResponse flipped = *sealed;
    flipped.body[at] = static_cast<char>(flipped.body[at] ^ 0x01);
    auto opened = DecryptResponse(keys, "key", flipped);
    EXPECT_EQ(opened.status().code(), StatusCode::kDataLoss) << "byte " << at;
  }
  StoredResponse truncated = *sealed;
  truncated.body.resize(20);
  EXPECT_EQ(DecryptResponse(keys, "key", truncated).status().code(), StatusCode::kDataLoss);
  // Bound to its scope key and status.
  EXPECT_EQ(DecryptResponse(keys, "other key", *sealed).status().code(), StatusCode::kDataLoss);
  StoredResponse restatused = *sealed;
  restatused.status = 200;
  EXPECT_EQ(DecryptResponse(keys, "key", restatused).status().code(), StatusCode::kDataLoss);
}

TEST(EncryptingStore, RotationReadsOldKeysAndWritesWithTheActiveOne) {
  auto memory = NewMemoryStore();
  auto before = NewEncryptingStore(memory, Keys("k1:" + kHexKey1, "k1"));
  Store(*before, "old", Payment());

  auto rotated =
      NewEncryptingStore(memory, Keys("k1:" + kHexKey1 + "\nk2:" + kBase64Key2, "k2"));
  auto old_record = GetSync(*rotated, "old");
  ASSERT_TRUE(old_record.ok()) << old_record.status();
  EXPECT_EQ((*old_record)->response, Payment());
  Store(*rotated, "new", Payment());
  auto raw_new = GetSync(*memory, "new");
  ASSERT_TRUE(raw_new.ok());
  EXPECT_THAT((*raw_new)->response.body, HasSubstr("k2"));

  // k1 retired: new records read, old ones are a clear error.
  auto retired = NewEncryptingStore(memory, Keys("k2:" + kBase64Key2, "k2"));
  EXPECT_TRUE(GetSync(*retired, "new").ok());
  auto lost = GetSync(*retired, "old");
  ASSERT_EQ(lost.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(lost.status().message(), HasSubstr("\"k1\""));
  BeginRequest retry;
  retry.key = "old";
  retry.owner = "x";
  EXPECT_EQ(BeginSync(*retired, retry).status().code(), StatusCode::kDataLoss)
      << "never replayed as garbage, never executed again as if absent";
}

TEST(EncryptingStore, AWrongKeyWithTheSameIdFailsToAuthenticate) {
  auto memory = NewMemoryStore();
  Store(*NewEncryptingStore(memory, Keys("k1:" + kHexKey1, "k1")), "k", Payment());
  auto wrong = NewEncryptingStore(memory, Keys("k1:" + kBase64Key2, "k1"));
  EXPECT_EQ(GetSync(*wrong, "k").status().code(), StatusCode::kDataLoss);
}

TEST(EncryptingStore, RecordsStoredBeforeEncryptionReadAsTheyAre) {
  auto memory = NewMemoryStore();
  Store(*memory, "plain", Payment());
  auto store = NewEncryptingStore(memory, Keys("k1:" + kHexKey1, "k1"));
  auto read = GetSync(*store, "plain");
  ASSERT_TRUE(read.ok());
  EXPECT_EQ((*read)->response, Payment());
}

TEST(EncryptingStore, EmptyAndBinaryBodiesRoundTrip) {
  const EncryptionKeys keys = Keys("k1:" + kHexKey1, "k1");
  for (const StoredResponse& r :
       {StoredResponse{204, {}, ""}, StoredResponse{200, {{"X", ""}}, std::string("\0\xff\x01", 3)}}) {
    auto sealed = EncryptResponse(keys, "k", r);
    ASSERT_TRUE(sealed.ok());
    auto opened = DecryptResponse(keys, "k", *sealed);
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_EQ(*opened, r);
  }
}

}  // namespace
}  // namespace idem
