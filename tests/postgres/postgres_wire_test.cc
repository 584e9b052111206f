// The pure parts of the PostgreSQL store: the stored header encoding, the
// binary integers, quoting, error mapping and the schema's statement set.
#include <gtest/gtest.h>

#include "idem/postgres_store.h"
#include "stores/postgres/pg_schema.h"
#include "stores/postgres/pg_wire.h"

namespace idem::pg {
namespace {

TEST(PostgresWire, HeadersRoundTripInOrderWithAnyBytes) {
  const std::vector<std::pair<std::string, std::string>> headers = {
      {"Content-Type", "application/json"},
      {"X-Multi", "a"},
      {"X-Multi", "b"},
      {"X-Binary", std::string("\0\xff\x01", 3)},
      {"", ""}};
  std::vector<std::pair<std::string, std::string>> decoded;
  ASSERT_TRUE(DecodeHeaders(EncodeHeaders(headers), &decoded));
  EXPECT_EQ(decoded, headers);
  EXPECT_EQ(EncodeHeaders({}), "");
  ASSERT_TRUE(DecodeHeaders("", &decoded));
  EXPECT_TRUE(decoded.empty());
}

TEST(PostgresWire, TruncatedHeadersAreRejected) {
  const std::string encoded = EncodeHeaders({{"Name", "Value"}});
  std::vector<std::pair<std::string, std::string>> decoded;
  for (size_t n = 1; n < encoded.size(); ++n) {
    EXPECT_FALSE(DecodeHeaders(encoded.substr(0, n), &decoded)) << n;
  }
  EXPECT_FALSE(DecodeHeaders(std::string("\xff\xff\xff\xff", 4), &decoded));
}

TEST(PostgresWire, IntegersAreBigEndian) {
  EXPECT_EQ(Int8Param(1), std::string("\0\0\0\0\0\0\0\x01", 8));
  EXPECT_EQ(Int8Param(-1), std::string(8, '\xff'));
  EXPECT_EQ(Int4Param(0x01020304), "\x01\x02\x03\x04");
}

TEST(PostgresWire, Quoting) {
  EXPECT_EQ(QuoteIdentifier("idem_records"), "\"idem_records\"");
  EXPECT_EQ(QuoteIdentifier("a\"b"), "\"a\"\"b\"");
  EXPECT_EQ(QuoteLiteral("it's"), "'it''s'");
}

TEST(PostgresWire, ErrorsMapOntoStatusCodes) {
  EXPECT_EQ(StatusFromError("", "connection lost", "x").code(), StatusCode::kUnavailable);
  EXPECT_EQ(StatusFromError("57014", "canceling statement due to statement timeout", "x")
                .code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(StatusFromError("08006", "", "x").code(), StatusCode::kUnavailable);
  EXPECT_EQ(StatusFromError("57P01", "", "x").code(), StatusCode::kUnavailable);
  EXPECT_EQ(StatusFromError("25006", "read-only", "x").code(), StatusCode::kUnavailable);
  EXPECT_EQ(StatusFromError("40001", "", "x").code(), StatusCode::kConflict);
  EXPECT_EQ(StatusFromError("23505", "", "x").code(), StatusCode::kConflict);
  EXPECT_EQ(StatusFromError("22P02", "", "x").code(), StatusCode::kInternal);
  EXPECT_TRUE(IsRetryableRace("40P01"));
  EXPECT_FALSE(IsRetryableRace("57014"));
}

TEST(PostgresSchema, NamesAreValidatedAndQuoted) {
  EXPECT_EQ(BuildSchema("", "t").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(BuildSchema("s", "").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(BuildSchema("s", std::string(60, 't')).status().code(),
            StatusCode::kInvalidArgument);
  auto schema = BuildSchema("my schema", "records");
  ASSERT_TRUE(schema.ok());
  EXPECT_EQ(schema->qualified_table, "\"my schema\".\"records\"");
  EXPECT_EQ(schema->version_table, "\"my schema\".\"records_schema_version\"");
  EXPECT_EQ(schema->statements.size(), static_cast<size_t>(kStatementCount));
  EXPECT_LE(schema->channel.size(), 63u);
  for (const auto& statement : schema->statements) {
    EXPECT_FALSE(statement.name.empty());
    EXPECT_FALSE(statement.sql.empty());
  }
  EXPECT_EQ(schema->migrations.back().version, kPostgresSchemaVersion);
  auto long_names = BuildSchema(std::string(63, 's'), std::string(48, 't'));
  ASSERT_TRUE(long_names.ok());
  EXPECT_LE(long_names->channel.size(), 63u);
}

}  // namespace
}  // namespace idem::pg
