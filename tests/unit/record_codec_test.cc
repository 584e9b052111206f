#include "idem/record_codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>

namespace idem {
namespace {

using ::testing::HasSubstr;

Record InFlight() {
  Record r;
  r.key = "anonymous POST /payments abc";
  r.state = RecordState::kInFlight;
  r.fingerprint = std::string(32, '\x9C');
  r.owner = "owner-token-1";
  r.fence = 3;
  r.lease_expires_at_ms = 1'700'000'010'000;
  r.recovery = {"charged", R"({"charge":"ch_1"})"};
  r.created_at_ms = 1'700'000'000'000;
  r.expires_at_ms = 1'700'000'010'000;
  return r;
}

Record Completed() {
  Record r = InFlight();
  r.state = RecordState::kCompleted;
  r.recovery = {};
  r.response.status = 201;
  for (int i = 0; i < 100; ++i) {
    r.response.headers.emplace_back("X-Header-" + std::to_string(i),
                                    std::string(static_cast<size_t>(i), 'v'));
  }
  r.response.headers.emplace_back("", "");  // empty name and value survive
  std::string body;
  for (int i = 0; i < 70'000; ++i) body.push_back(static_cast<char>(i * 7));
  body.append(std::string(3, '\0'));
  r.response.body = body;
  r.expires_at_ms = 1'700'086'400'000;
  return r;
}

// Bit-by-bit CRC-32C, independent of the table-driven one under test.
uint32_t ReferenceCrc32c(std::string_view data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (const char c : data) {
    crc ^= static_cast<unsigned char>(c);
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
  }
  return ~crc;
}

uint32_t TrailerOf(std::string_view bytes) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) {
    v |= static_cast<uint32_t>(
             static_cast<unsigned char>(bytes[bytes.size() - 4 + static_cast<size_t>(i)]))
         << (8 * i);
  }
  return v;
}

// Re-seals edited bytes with a valid checksum, to reach the field checks.
std::string Reseal(std::string bytes) {
  bytes.resize(bytes.size() - 4);
  uint32_t crc = ReferenceCrc32c(bytes);
  for (int i = 0; i < 4; ++i) {
    bytes.push_back(static_cast<char>(crc & 0xFF));
    crc >>= 8;
  }
  return bytes;
}

void ExpectDataLoss(std::string_view bytes, std::string_view message_part = "") {
  Result<Record> r = DecodeRecord(bytes);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(r.status().message(), HasSubstr(message_part));
}

TEST(Crc32cReferenceTest, KnownAnswer) {
  EXPECT_EQ(ReferenceCrc32c("123456789"), 0xE3069283u);
}

TEST(RecordCodecTest, RoundTripsAnInFlightRecord) {
  const Record r = InFlight();
  Result<Record> back = DecodeRecord(EncodeRecord(r));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, r);
}

TEST(RecordCodecTest, RoundTripsACompletedRecordWithBinaryBodyAndManyHeaders) {
  const Record r = Completed();
  Result<Record> back = DecodeRecord(EncodeRecord(r));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, r);
  EXPECT_EQ(back->response.body.size(), 70'003u);
  EXPECT_EQ(back->response.headers.size(), 101u);
}

TEST(RecordCodecTest, RoundTripsDefaultAndExtremeValues) {
  EXPECT_EQ(EncodeRecord(Record{}).size(), 45u);  // the documented minimum
  EXPECT_EQ(*DecodeRecord(EncodeRecord(Record{})), Record{});

  Record r = InFlight();
  r.fence = std::numeric_limits<uint64_t>::max();
  r.lease_expires_at_ms = std::numeric_limits<int64_t>::min();
  r.created_at_ms = -1;
  r.expires_at_ms = std::numeric_limits<int64_t>::max();
  r.response.status = -5;
  r.key = std::string("k\0ey", 4);
  r.owner = std::string(300, '\xFF');  // a two-byte length
  Result<Record> back = DecodeRecord(EncodeRecord(r));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, r);

  r.response.status = std::numeric_limits<int>::min();
  EXPECT_EQ(*DecodeRecord(EncodeRecord(r)), r);
  r.response.status = std::numeric_limits<int>::max();
  EXPECT_EQ(*DecodeRecord(EncodeRecord(r)), r);
}

TEST(RecordCodecTest, EncodingIsDeterministic) {
  EXPECT_EQ(EncodeRecord(Completed()), EncodeRecord(Completed()));
  const std::string bytes = EncodeRecord(Completed());
  EXPECT_EQ(EncodeRecord(*DecodeRecord(bytes)), bytes);
}

// Pins version 1 byte for byte, as documented in docs/record-format.md.
TEST(RecordCodecTest, GoldenEncoding) {
  Record r;
  r.key = "k";
  r.state = RecordState::kCompleted;
  r.fingerprint = "F";
  r.owner = "o";
  r.fence = 300;
  r.lease_expires_at_ms = 2;
  r.recovery = {"p", "s"};
  r.response.status = 200;
  r.response.headers = {{"a", "b"}};
  r.response.body = "x";
  r.created_at_ms = -1;
  r.expires_at_ms = 0x0102030405060708;
  const std::string expected_without_crc(
      "IDR\x01"  // magic, version
      "\x02"     // state: completed
      "\x01k"    // key
      "\x01"
      "F"                   // fingerprint
      "\x01o"               // owner
      "\xAC\x02"            // fence 300 (varint)
      "\x02\0\0\0\0\0\0\0"  // lease_expires_at_ms
      "\x01p"
      "\x01s"       // recovery phase, state
      "\xC8\0\0\0"  // response status 200
      "\x01"        // one header
      "\x01"
      "a"
      "\x01"
      "b"                                  // name, value
      "\x01x"                              // body
      "\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF"   // created_at_ms -1
      "\x08\x07\x06\x05\x04\x03\x02\x01",  // expires_at_ms
      52);
  const std::string bytes = EncodeRecord(r);
  ASSERT_EQ(bytes.size(), expected_without_crc.size() + 4);
  EXPECT_EQ(bytes.substr(0, bytes.size() - 4), expected_without_crc);
  EXPECT_EQ(TrailerOf(bytes), ReferenceCrc32c(expected_without_crc));
  EXPECT_EQ(*DecodeRecord(bytes), r);
}

TEST(RecordCodecTest, ChecksumIsCrc32cOfEverythingBefore) {
  const std::string bytes = EncodeRecord(Completed());
  EXPECT_EQ(TrailerOf(bytes),
            ReferenceCrc32c(std::string_view(bytes).substr(0, bytes.size() - 4)));
}

TEST(RecordCodecTest, EveryTruncationIsRejected) {
  for (const Record& r : {InFlight(), Completed()}) {
    const std::string bytes = EncodeRecord(r);
    // The completed record is ~75 KB: check every prefix of the first and
    // last 2000 bytes, and a stride in between.
    for (size_t len = 0; len < bytes.size(); ++len) {
      if (len > 2000 && len + 2000 < bytes.size() && len % 97 != 0) continue;
      ExpectDataLoss(std::string_view(bytes).substr(0, len));
    }
  }
}

TEST(RecordCodecTest, EveryTruncationOfASmallRecordIsRejected) {
  const std::string bytes = EncodeRecord(InFlight());
  for (size_t len = 0; len < bytes.size(); ++len) {
    ExpectDataLoss(std::string_view(bytes).substr(0, len));
  }
}

TEST(RecordCodecTest, EverySingleByteChangeIsRejected) {
  const std::string bytes = EncodeRecord(InFlight());
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (const uint8_t mask : {0x01, 0x80, 0xFF}) {
      std::string damaged = bytes;
      damaged[i] = static_cast<char>(damaged[i] ^ mask);
      ExpectDataLoss(damaged);
    }
  }
}

TEST(RecordCodecTest, WrongMagicIsRejected) {
  std::string bytes = EncodeRecord(InFlight());
  bytes[0] = 'X';
  ExpectDataLoss(bytes, "bad magic");
  ExpectDataLoss("", "truncated");
  ExpectDataLoss("ID", "truncated");
  ExpectDataLoss("{\"json\":1}", "bad magic");
  ExpectDataLoss(Reseal("XDR" + bytes.substr(3)), "bad magic");
}

TEST(RecordCodecTest, UnknownVersionIsRejected) {
  std::string bytes = EncodeRecord(InFlight());
  for (const uint8_t version : {0, 2, 255}) {
    bytes[3] = static_cast<char>(version);
    ExpectDataLoss(Reseal(bytes),
                   "unsupported record format version " + std::to_string(version));
  }
  ExpectDataLoss(std::string("IDR\x02", 4), "unsupported record format version 2");
}

TEST(RecordCodecTest, TrailingBytesAreRejected) {
  const std::string bytes = EncodeRecord(InFlight());
  ExpectDataLoss(bytes + "x", "checksum");
  ExpectDataLoss(bytes + std::string(4, '\0'), "checksum");
  ExpectDataLoss(bytes + bytes, "checksum");
  // Even with a checksum recomputed over the garbage.
  ExpectDataLoss(Reseal(bytes.substr(0, bytes.size() - 4) + "junk" + "CRC!"),
                 "trailing bytes");
}

TEST(RecordCodecTest, BadStateIsRejected) {
  std::string bytes = EncodeRecord(InFlight());
  for (const uint8_t state : {0, 3, 0x81}) {
    bytes[4] = static_cast<char>(state);
    ExpectDataLoss(Reseal(bytes), "unknown state");
  }
}

TEST(RecordCodecTest, LengthsBeyondTheDataAreRejected) {
  Record r;
  r.key = "abc";
  std::string bytes = EncodeRecord(r);
  ASSERT_EQ(bytes[5], '\x03');  // the key's length
  for (const uint8_t len : {0x04, 0x7F}) {
    bytes[5] = static_cast<char>(len);
    ExpectDataLoss(Reseal(bytes), "corrupt");
  }
  // A ten-byte varint for 2^64 - 1: far beyond the data, no overflow.
  const std::string huge = "IDR\x01\x01" + std::string(9, '\xFF') + "\x01";
  ExpectDataLoss(Reseal(huge + "pad!"), "corrupt");
  // Eleven continuation bytes: not a valid varint.
  ExpectDataLoss(Reseal("IDR\x01\x01" + std::string(11, '\x80') + "pad!"), "corrupt");
}

TEST(RecordCodecTest, OverlongVarintsAreRejected) {
  Record r;
  r.key = "abc";
  std::string bytes = EncodeRecord(r);
  // "\x03" re-encoded as "\x83\x00": same value, not the canonical encoding.
  bytes.replace(5, 1, "\x83\x00", 2);
  ExpectDataLoss(Reseal(bytes), "corrupt");
}

TEST(RecordCodecTest, AbsurdHeaderCountIsRejected) {
  Record r;  // every string empty: the header count is at a known offset
  std::string bytes = EncodeRecord(r);
  // magic+version 4, state 1, three empty strings 3, fence 1, lease 8,
  // recovery 2, status 4: the header count is byte 23.
  ASSERT_EQ(bytes[23], '\0');
  std::string absurd =
      bytes.substr(0, 23) + std::string(9, '\xFF') + "\x01" + bytes.substr(24);
  ExpectDataLoss(Reseal(absurd), "header count");
  absurd = bytes.substr(0, 23) + "\x80\x80\x80\x80\x01" + bytes.substr(24);
  ExpectDataLoss(Reseal(absurd), "header count");
}

TEST(RecordCodecTest, RandomGarbageNeverCrashes) {
  std::mt19937_64 rng(20240601);
  const std::string valid = EncodeRecord(Completed());
  const std::string small = EncodeRecord(InFlight());
  for (int i = 0; i < 20'000; ++i) {
    std::string bytes;
    switch (i % 4) {
      case 0: {  // pure noise
        bytes.resize(rng() % 256);
        for (char& c : bytes) c = static_cast<char>(rng());
        break;
      }
      case 1: {  // noise behind a valid prefix, re-sealed
        bytes = "IDR\x01";
        const size_t n = rng() % 128;
        for (size_t j = 0; j < n; ++j) bytes.push_back(static_cast<char>(rng()));
        bytes += "crc!";
        bytes = Reseal(bytes);
        break;
      }
      case 2: {  // a few random byte edits of a valid record, re-sealed
        bytes = small;
        const int edits = 1 + static_cast<int>(rng() % 4);
        for (int e = 0; e < edits; ++e) {
          bytes[4 + rng() % (bytes.size() - 8)] = static_cast<char>(rng());
        }
        bytes = Reseal(bytes);
        break;
      }
      case 3: {  // a random slice of a valid record
        const size_t from = rng() % valid.size();
        bytes = valid.substr(from, rng() % 512);
        break;
      }
    }
    Result<Record> r = DecodeRecord(bytes);
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
    } else {
      // Anything accepted must re-encode to the very same bytes.
      EXPECT_EQ(EncodeRecord(*r), bytes);
    }
  }
}

}  // namespace
}  // namespace idem
