#include "gateway/problem.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <set>
#include <string>

namespace idem::gateway {
namespace {

using ::testing::Contains;
using ::testing::Pair;

constexpr ProblemType kAll[] = {ProblemType::kMissingKey,
                                ProblemType::kInvalidKey,
                                ProblemType::kDuplicateKeyHeader,
                                ProblemType::kInvalidJsonBody,
                                ProblemType::kMalformedRequest,
                                ProblemType::kRequestTimeout,
                                ProblemType::kRequestInProgress,
                                ProblemType::kResponseNotStored,
                                ProblemType::kBodyTooLarge,
                                ProblemType::kKeyMismatch,
                                ProblemType::kHeadersTooLarge,
                                ProblemType::kUpstreamUnreachable,
                                ProblemType::kUpstreamBadResponse,
                                ProblemType::kStoreUnavailable,
                                ProblemType::kDraining,
                                ProblemType::kUpstreamTimeout,
                                ProblemType::kNotFound,
                                ProblemType::kMethodNotAllowed,
                                ProblemType::kUnauthorized};

TEST(ProblemTest, EveryTypeHasAUniqueStableUri) {
  std::set<std::string> uris;
  for (ProblemType type : kAll) {
    const std::string uri = ProblemTypeUri(type);
    EXPECT_EQ(uri.rfind("urn:idem:problem:", 0), 0u) << uri;
    EXPECT_TRUE(uris.insert(uri).second) << "duplicate " << uri;
    EXPECT_FALSE(ProblemTitle(type).empty());
  }
}

TEST(ProblemTest, StatusesMatchTheDocumentedTable) {
  EXPECT_EQ(ProblemStatus(ProblemType::kMissingKey), 400);
  EXPECT_EQ(ProblemStatus(ProblemType::kDuplicateKeyHeader), 400);
  EXPECT_EQ(ProblemStatus(ProblemType::kRequestTimeout), 408);
  EXPECT_EQ(ProblemStatus(ProblemType::kRequestInProgress), 409);
  EXPECT_EQ(ProblemStatus(ProblemType::kResponseNotStored), 410);
  EXPECT_EQ(ProblemStatus(ProblemType::kBodyTooLarge), 413);
  EXPECT_EQ(ProblemStatus(ProblemType::kKeyMismatch), 422);
  EXPECT_EQ(ProblemStatus(ProblemType::kHeadersTooLarge), 431);
  EXPECT_EQ(ProblemStatus(ProblemType::kUpstreamUnreachable), 502);
  EXPECT_EQ(ProblemStatus(ProblemType::kStoreUnavailable), 503);
  EXPECT_EQ(ProblemStatus(ProblemType::kUpstreamTimeout), 504);
}

TEST(ProblemTest, BodyIsRfc9457Json) {
  Problem problem;
  problem.type = ProblemType::kInvalidKey;
  problem.detail = "Idempotency-Key has an invalid escape sequence; only \\\" and \\\\";
  const boost::json::object body = boost::json::parse(ProblemJson(problem)).as_object();
  EXPECT_EQ(body.at("type").as_string(), "urn:idem:problem:invalid-key");
  EXPECT_EQ(body.at("title").as_string(), "Invalid Idempotency-Key");
  EXPECT_EQ(body.at("status").as_int64(), 400);
  EXPECT_EQ(body.at("detail").as_string(), problem.detail);
  EXPECT_FALSE(body.contains("original_status"));
}

TEST(ProblemTest, EmptyDetailFallsBackToTheTypesText) {
  for (ProblemType type : kAll) {
    Problem problem;
    problem.type = type;
    const boost::json::object body = boost::json::parse(ProblemJson(problem)).as_object();
    EXPECT_FALSE(body.at("detail").as_string().empty());
    EXPECT_EQ(body.at("status").as_int64(), ProblemStatus(type));
  }
}

TEST(ProblemResponseTest, CarriesContentTypeRetryAfterAndLink) {
  Problem conflict;
  conflict.type = ProblemType::kRequestInProgress;
  conflict.retry_after_s = 7;
  const StoredResponse response = ProblemResponse(conflict);
  EXPECT_EQ(response.status, 409);
  EXPECT_THAT(response.headers,
              Contains(Pair("Content-Type", "application/problem+json")));
  EXPECT_THAT(response.headers, Contains(Pair("Retry-After", "7")));

  Problem missing;
  missing.type = ProblemType::kMissingKey;
  EXPECT_THAT(
      ProblemResponse(missing).headers,
      Contains(Pair("Link", "<urn:idem:problem:missing-key>; rel=\"describedby\"")));
}

TEST(ProblemResponseTest, NotStoredMarkerNamesTheOriginalStatus) {
  Problem gone;
  gone.type = ProblemType::kResponseNotStored;
  gone.original_status = 201;
  const StoredResponse response = ProblemResponse(gone);
  EXPECT_EQ(response.status, 410);
  EXPECT_EQ(boost::json::parse(response.body).at("original_status").as_int64(), 201);
}

}  // namespace
}  // namespace idem::gateway
