// Client connections: keep-alive reuse and HTTP/1.1 pipelining.
#include <gtest/gtest.h>

#include "stack_fixture.h"

namespace idem::e2e {
namespace {

class ConnectionTest : public StackTest<ConnectionTest> {
 public:
  static std::string Config() { return DefaultConfig(); }
};

TEST_F(ConnectionTest, KeepAliveServesManyRequestsOnOneConnection) {
  HttpConnection connection;
  ASSERT_TRUE(connection.Connect(gateway().port()));
  std::string key = UniqueKey();
  HttpResponse first = connection.RoundTrip(KeyedPost("/echo", key, "one", "text/plain"));
  ASSERT_EQ(first.status, 200) << first.Describe();
  EXPECT_EQ(first.body, "one");
  HttpResponse replay =
      connection.RoundTrip(KeyedPost("/echo", key, "one", "text/plain"));
  EXPECT_TRUE(IsReplayOf(replay, first));
  HttpResponse plain = connection.RoundTrip(Get("/work"));
  EXPECT_EQ(plain.status, 200) << plain.Describe();
  HttpResponse other =
      connection.RoundTrip(KeyedPost("/echo", UniqueKey(), "two", "text/plain"));
  EXPECT_EQ(other.body, "two");
  for (const HttpResponse* r : {&first, &replay, &plain, &other}) {
    EXPECT_NE(r->Header("Connection").value_or(""), "close") << r->Describe();
  }
  // An error answer keeps the connection too.
  HttpResponse mismatch =
      connection.RoundTrip(KeyedPost("/echo", key, "three", "text/plain"));
  EXPECT_TRUE(IsProblem(mismatch, 422));
  EXPECT_EQ(connection.RoundTrip(Get("/work")).status, 200);
}

TEST_F(ConnectionTest, PipelinedRequestsAreAnsweredInOrder) {
  HttpConnection connection;
  ASSERT_TRUE(connection.Connect(gateway().port()));
  std::string key1 = UniqueKey(), key2 = UniqueKey();
  std::string batch = KeyedPost("/slow?ms=200", key1, "{}").Serialize() +
                      KeyedPost("/echo", key2, "second", "text/plain").Serialize() +
                      Get("/work").Serialize() +
                      Post("/echo", "fourth", "text/plain").Serialize();
  ASSERT_TRUE(connection.SendRaw(batch));
  HttpResponse first = connection.Read();
  HttpResponse second = connection.Read();
  HttpResponse third = connection.Read();
  HttpResponse fourth = connection.Read();
  EXPECT_EQ(first.status, 200) << first.Describe();
  EXPECT_NE(first.body.find("slept_ms"), std::string::npos) << first.Describe();
  EXPECT_EQ(second.body, "second") << second.Describe();
  EXPECT_NE(third.body.find("\"ok\":true"), std::string::npos) << third.Describe();
  EXPECT_EQ(fourth.body, "fourth") << fourth.Describe();
  EXPECT_EQ(upstream().Count(key1), 1u);
  EXPECT_EQ(upstream().Count(key2), 1u);
}

TEST_F(ConnectionTest, PipelinedDuplicateIsReplayedOrRefusedButNeverReExecuted) {
  HttpConnection connection;
  ASSERT_TRUE(connection.Connect(gateway().port()));
  std::string key = UniqueKey();
  HttpRequest request = KeyedPost("/echo", key, "same", "text/plain");
  ASSERT_TRUE(connection.SendRaw(request.Serialize() + request.Serialize()));
  HttpResponse first = connection.Read();
  HttpResponse second = connection.Read();
  ASSERT_EQ(first.status, 200) << first.Describe();
  if (second.status == 409) {
    EXPECT_TRUE(IsProblem(second, 409, "request-in-progress"));
  } else {
    EXPECT_TRUE(IsReplayOf(second, first));
  }
  EXPECT_EQ(upstream().Count(key), 1u);
}

TEST_F(ConnectionTest, ConnectionCloseIsHonoured) {
  HttpConnection connection;
  ASSERT_TRUE(connection.Connect(gateway().port()));
  HttpRequest request = Get("/work");
  request.Header("Connection", "close");
  HttpResponse response = connection.RoundTrip(request);
  EXPECT_EQ(response.status, 200) << response.Describe();
  EXPECT_TRUE(connection.WaitForClose(10s)) << "the gateway kept the connection open";
}

TEST_F(ConnectionTest, MalformedRequestIs400) {
  HttpConnection connection;
  ASSERT_TRUE(connection.Connect(gateway().port()));
  ASSERT_TRUE(connection.SendRaw("THIS IS NOT HTTP\r\n\r\n"));
  HttpResponse response = connection.Read(10s);
  if (response.ok()) {
    EXPECT_TRUE(IsProblem(response, 400));
  } else {
    EXPECT_EQ(response.error.find("timed out"), std::string::npos) << response.error;
  }
}

}  // namespace
}  // namespace idem::e2e
