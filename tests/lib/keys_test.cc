#include "idem/keys.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

namespace idem {
namespace {

// Expected keys computed once with Python's hashlib, independently of
// CanonicalizeJson:
//   def f(b): return struct.pack('<Q', len(b)) + b
//   c = json.dumps(json.loads(params), sort_keys=True, separators=(',', ':'),
//                  ensure_ascii=False)
//   hashlib.sha256(f(entity.encode()) + f(action.encode()) +
//                  f(c.encode())).hexdigest()[:32]
struct KnownAnswer {
  const char* entity;
  const char* action;
  const char* params;
  const char* key;
};

constexpr KnownAnswer kKnownAnswers[] = {
    {"order/42", "charge", R"({ "currency": "EUR", "amount": 1200 })",
     "ef3580ce92e83f5cb945ee6280e83dd8"},
    {"user/7", "send-welcome-email", "{}", "d9b282d092c978dc36e4c1f96040b10c"},
    {"invoice/2024-001", "refund",
     R"({"reason":"dup","lines":[1,2,3],"meta":{"z":true,"a":null}})",
     "bb467724e6dbe9fffe9e034bb20caa3f"},
    {"kunde/\xc3\xbc",
     "gr\xc3\xbc\xc3\x9f"
     "en",
     "[\"\xc3\xa9\", {\"b\":1,\"a\":2}]", "425f3ec6038e95094d9eaeb364babe9d"},
};

TEST(DeriveKeyTest, MatchesKnownAnswers) {
  for (const KnownAnswer& v : kKnownAnswers) {
    auto key = DeriveKey(v.entity, v.action, v.params);
    ASSERT_TRUE(key.ok()) << key.status();
    EXPECT_EQ(*key, v.key) << v.entity << " " << v.action;
  }
}

TEST(DeriveKeyTest, ReorderedParametersAndWhiteSpaceGiveTheSameKey) {
  auto a = DeriveKey("order/1", "charge", R"({"a":1,"b":{"x":[1,2],"y":"z"}})");
  auto b = DeriveKey("order/1", "charge",
                     "{\n  \"b\": { \"y\": \"z\", \"x\": [1, 2] },\n  \"a\": 1\n}");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(a->size(), 32u);
  EXPECT_EQ(a->find_first_not_of("0123456789abcdef"), std::string::npos);
}

TEST(DeriveKeyTest, EveryFieldMatters) {
  const std::string base = *DeriveKey("order/1", "charge", R"({"a":1})");
  EXPECT_NE(*DeriveKey("order/2", "charge", R"({"a":1})"), base);
  EXPECT_NE(*DeriveKey("order/1", "refund", R"({"a":1})"), base);
  EXPECT_NE(*DeriveKey("order/1", "charge", R"({"a":2})"), base);
  // Array order is significant, number spelling is kept as written.
  EXPECT_NE(*DeriveKey("e", "a", "[1,2]"), *DeriveKey("e", "a", "[2,1]"));
  EXPECT_NE(*DeriveKey("e", "a", "1.10"), *DeriveKey("e", "a", "1.1"));
  // Length prefixes keep field boundaries apart.
  EXPECT_NE(*DeriveKey("ab", "c", "{}"), *DeriveKey("a", "bc", "{}"));
}

TEST(DeriveKeyTest, RejectsInvalidInput) {
  EXPECT_EQ(DeriveKey("e", "a", "{not json").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(DeriveKey("e", "a", "").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DeriveKey("e", "a", R"({"a":1,"a":2})").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(DeriveKey("", "a", "{}").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DeriveKey("e", "", "{}").status().code(), StatusCode::kInvalidArgument);
}

TEST(UuidV7Test, HasTheRfc9562Layout) {
  const std::string id = NewUuidV7();
  ASSERT_EQ(id.size(), 36u);
  for (size_t i : {8u, 13u, 18u, 23u}) EXPECT_EQ(id[i], '-') << id;
  EXPECT_EQ(id[14], '7') << id;                                          // version
  EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;  // variant
  std::string hex = id;
  std::erase(hex, '-');
  EXPECT_EQ(hex.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
}

TEST(UuidV7Test, CarriesTheCurrentTimeInMilliseconds) {
  const auto before = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const std::string id = NewUuidV7();
  const auto after = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  const int64_t ms = std::stoll(id.substr(0, 8) + id.substr(9, 4), nullptr, 16);
  EXPECT_GE(ms, before);
  EXPECT_LE(ms, after + 1);  // may borrow the next millisecond
}

TEST(UuidV7Test, StrictlyIncreasingAndUniqueAcrossThreads) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 5000;
  std::vector<std::vector<std::string>> made(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&made, t] {
      for (int i = 0; i < kPerThread; ++i)
        made[static_cast<size_t>(t)].push_back(NewUuidV7());
    });
  }
  for (auto& thread : threads) thread.join();
  std::set<std::string> all;
  for (const auto& ids : made) {
    for (size_t i = 1; i < ids.size(); ++i) EXPECT_LT(ids[i - 1], ids[i]);
    all.insert(ids.begin(), ids.end());
  }
  EXPECT_EQ(all.size(), size_t{kThreads * kPerThread});
}

}  // namespace
}  // namespace idem
