// The record format is specified byte by byte in docs/record-format.md;
// change both together, and bump kRecordFormatVersion for any change that
// an old decoder would misread.
#include "idem/record_codec.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace idem {
namespace {

constexpr std::string_view kMagic = "IDR";
constexpr size_t kChecksumSize = 4;
constexpr size_t kMaxVarintSize = 10;

static_assert(sizeof(int) == 4, "response.status is encoded as 4 bytes");

// CRC-32C (Castagnoli; reflected polynomial 0x82F63B78), table-driven. Hand
// written because it is twenty lines, while zlib (plain CRC-32 only) or a
// CRC library would be a dependency of every store for this alone.
constexpr std::array<uint32_t, 256> MakeCrc32cTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
    }
    table[i] = crc;
  }
  return table;
}
constexpr std::array<uint32_t, 256> kCrc32cTable = MakeCrc32cTable();

uint32_t Crc32c(std::string_view data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (const char c : data) {
    crc = kCrc32cTable[(crc ^ static_cast<unsigned char>(c)) & 0xFF] ^ (crc >> 8);
  }
  return crc ^ 0xFFFFFFFFu;
}

// --- Encoding -------------------------------------------------------------

void PutVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void PutFixed(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) {
    out.push_back(static_cast<char>(v & 0xFF));
    v >>= 8;
  }
}

void PutInt64(std::string& out, int64_t v) { PutFixed(out, static_cast<uint64_t>(v), 8); }

void PutString(std::string& out, std::string_view s) {
  PutVarint(out, s.size());
  out.append(s);
}

size_t EncodedSizeHint(const Record& r) {
  size_t size = 64 + r.key.size() + r.fingerprint.size() + r.owner.size() +
                r.recovery.phase.size() + r.recovery.state.size() +
                r.response.body.size();
  for (const auto& [name, value] : r.response.headers) {
    size += name.size() + value.size() + 2 * kMaxVarintSize;
  }
  return size;
}

// --- Decoding -------------------------------------------------------------

// A bounds-checked cursor over the bytes of one record. Every read fails
// (returns false) instead of reading past the end.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}

  size_t remaining() const { return bytes_.size() - pos_; }

  // Clamped to the end of the bytes.
  void Skip(size_t n) { pos_ += std::min(n, remaining()); }

  bool Byte(uint8_t& out) {
    if (remaining() < 1) return false;
    out = static_cast<uint8_t>(bytes_[pos_++]);
    return true;
  }

  // LEB128, at most 10 bytes, no overlong forms (so every value has exactly
  // one encoding) and no bits beyond 64.
  bool Varint(uint64_t& out) {
    uint64_t value = 0;
    for (size_t i = 0; i < kMaxVarintSize; ++i) {
      uint8_t b = 0;
      if (!Byte(b)) return false;
      if (i == kMaxVarintSize - 1 && b > 1) return false;  // overflow
      value |= static_cast<uint64_t>(b & 0x7F) << (7 * i);
      if ((b & 0x80) == 0) {
        if (b == 0 && i > 0) return false;  // overlong
        out = value;
        return true;
      }
    }
    return false;
  }

  bool Fixed(uint64_t& out, int bytes) {
    if (remaining() < static_cast<size_t>(bytes)) return false;
    uint64_t value = 0;
    for (int i = 0; i < bytes; ++i) {
      value |= static_cast<uint64_t>(static_cast<uint8_t>(bytes_[pos_ + i])) << (8 * i);
    }
    pos_ += static_cast<size_t>(bytes);
    out = value;
    return true;
  }

  bool Int64(int64_t& out) {
    uint64_t v = 0;
    if (!Fixed(v, 8)) return false;
    out = static_cast<int64_t>(v);
    return true;
  }

  bool Int32(int& out) {
    uint64_t v = 0;
    if (!Fixed(v, 4)) return false;
    out = static_cast<int32_t>(static_cast<uint32_t>(v));
    return true;
  }

  bool String(std::string& out) {
    uint64_t size = 0;
    if (!Varint(size) || size > remaining()) return false;
    out.assign(bytes_.data() + pos_, static_cast<size_t>(size));
    pos_ += static_cast<size_t>(size);
    return true;
  }

 private:
  std::string_view bytes_;
  size_t pos_ = 0;
};

Status Corrupt(std::string_view what) {
  return DataLoss("record is corrupt: " + std::string(what));
}

// Reads every field after the version byte, in format order.
Status DecodeFields(Reader& in, Record& r) {
  uint8_t state = 0;
  if (!in.Byte(state)) return Corrupt("truncated");
  if (state != static_cast<uint8_t>(RecordState::kInFlight) &&
      state != static_cast<uint8_t>(RecordState::kCompleted)) {
    return Corrupt("unknown state " + std::to_string(state));
  }
  r.state = static_cast<RecordState>(state);
  if (!in.String(r.key) || !in.String(r.fingerprint) || !in.String(r.owner) ||
      !in.Varint(r.fence) || !in.Int64(r.lease_expires_at_ms) ||
      !in.String(r.recovery.phase) || !in.String(r.recovery.state) ||
      !in.Int32(r.response.status)) {
    return Corrupt("truncated or malformed field");
  }
  uint64_t header_count = 0;
  if (!in.Varint(header_count)) return Corrupt("truncated or malformed field");
  // Each header takes at least two bytes (two empty strings), so a larger
  // count cannot be honest; checking it first bounds the reservation.
  if (header_count > in.remaining() / 2) return Corrupt("header count too large");
  r.response.headers.resize(static_cast<size_t>(header_count));
  for (auto& [name, value] : r.response.headers) {
    if (!in.String(name) || !in.String(value)) {
      return Corrupt("truncated or malformed header");
    }
  }
  if (!in.String(r.response.body) || !in.Int64(r.created_at_ms) ||
      !in.Int64(r.expires_at_ms)) {
    return Corrupt("truncated or malformed field");
  }
  return Status::Ok();
}

}  // namespace

std::string EncodeRecord(const Record& record) {
  const Record& r = record;
  std::string out;
  out.reserve(EncodedSizeHint(r));
  out.append(kMagic);
  out.push_back(static_cast<char>(kRecordFormatVersion));
  out.push_back(static_cast<char>(r.state));
  PutString(out, r.key);
  PutString(out, r.fingerprint);
  PutString(out, r.owner);
  PutVarint(out, r.fence);
  PutInt64(out, r.lease_expires_at_ms);
  PutString(out, r.recovery.phase);
  PutString(out, r.recovery.state);
  PutFixed(out, static_cast<uint32_t>(r.response.status), 4);
  PutVarint(out, r.response.headers.size());
  for (const auto& [name, value] : r.response.headers) {
    PutString(out, name);
    PutString(out, value);
  }
  PutString(out, r.response.body);
  PutInt64(out, r.created_at_ms);
  PutInt64(out, r.expires_at_ms);
  PutFixed(out, Crc32c(out), kChecksumSize);
  return out;
}

Result<Record> DecodeRecord(std::string_view bytes) {
  const std::string_view magic = bytes.substr(0, kMagic.size());
  if (magic != kMagic.substr(0, magic.size())) {
    return DataLoss("not an idem record (bad magic)");
  }
  if (bytes.size() <= kMagic.size()) return Corrupt("truncated");
  // The version is checked before the checksum so that a record written by
  // a newer idem is reported as such, not as corrupt.
  const auto version = static_cast<uint8_t>(bytes[kMagic.size()]);
  if (version != kRecordFormatVersion) {
    return DataLoss("unsupported record format version " + std::to_string(version));
  }
  if (bytes.size() < kMagic.size() + 1 + kChecksumSize) {
    return Corrupt("truncated");
  }
  // Like LevelDB, verify the checksum before interpreting any field.
  // Truncation, corruption and trailing bytes all end up here.
  const std::string_view covered = bytes.substr(0, bytes.size() - kChecksumSize);
  Reader trailer(bytes.substr(covered.size()));
  uint64_t stored = 0;
  if (!trailer.Fixed(stored, kChecksumSize) || stored != Crc32c(covered)) {
    return Corrupt("checksum mismatch (truncated, damaged or trailing bytes)");
  }
  // A matching checksum does not make the bytes trustworthy (they may be
  // crafted), so the fields are still parsed with every bound checked.
  Reader in(covered);
  in.Skip(kMagic.size() + 1);
  Record record;
  if (Status s = DecodeFields(in, record); !s.ok()) return s;
  if (in.remaining() != 0) {
    return Corrupt(std::to_string(in.remaining()) + " trailing bytes");
  }
  return record;
}

}  // namespace idem
