#include "idem/record_json.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace idem {
namespace {

TEST(RecordJsonTest, CompletedRecordShowsResponse) {
  Record r;
  r.key = "anonymous POST /payments k1";
  r.state = RecordState::kCompleted;
  r.fingerprint = std::string("\x01\xab", 2);
  r.fence = 3;
  r.response.status = 201;
  r.response.headers = {{"Content-Type", "application/json"}};
  r.response.body = "{\"id\":1}";
  auto json = boost::json::parse(RecordToJson(r)).as_object();
  EXPECT_EQ(json["key"].as_string(), "anonymous POST /payments k1");
  EXPECT_EQ(json["state"].as_string(), "completed");
  EXPECT_EQ(json["fingerprint"].as_string(), "01ab");
  EXPECT_EQ(json["fence"].to_number<int>(), 3);
  auto& response = json["response"].as_object();
  EXPECT_EQ(response["status"].to_number<int>(), 201);
  EXPECT_EQ(response["body"].as_string(), "{\"id\":1}");
  EXPECT_EQ(response["body_base64"].as_string(), "eyJpZCI6MX0=");
  EXPECT_EQ(response["headers"].as_array()[0].as_array()[1].as_string(),
            "application/json");
}

TEST(RecordJsonTest, BinaryBodyOnlyAsBase64AndInFlightHasNoResponse) {
  Record r;
  r.state = RecordState::kCompleted;
  r.response.body = std::string("\x00\xff", 2);
  auto json = boost::json::parse(RecordToJson(r)).as_object();
  EXPECT_EQ(json["response"].as_object()["body_base64"].as_string(), "AP8=");
  EXPECT_FALSE(json["response"].as_object().contains("body"));
  r.state = RecordState::kInFlight;
  r.recovery = {"charged", "x"};
  json = boost::json::parse(RecordToJson(r)).as_object();
  EXPECT_FALSE(json.contains("response"));
  EXPECT_EQ(json["recovery"].as_object()["phase"].as_string(), "charged");
}

}  // namespace
}  // namespace idem
