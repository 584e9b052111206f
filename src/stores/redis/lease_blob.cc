#include "stores/redis/lease_blob.h"

#include <cstdint>
#include <cstring>
#include <memory>

namespace idem::redis_internal {
namespace {

// Writes big-endian integers and length-prefixed bytes through a cursor
// into a buffer sized exactly beforehand (this runs for every new key).
char* PutUint(char* out, uint64_t value, int bytes) {
  for (int shift = 8 * (bytes - 1); shift >= 0; shift -= 8) {
    *out++ = static_cast<char>((value >> shift) & 0xFF);
  }
  return out;
}

char* PutBytes(char* out, std::string_view bytes) {
  out = PutUint(out, bytes.size(), 4);
  std::memcpy(out, bytes.data(), bytes.size());
  return out + bytes.size();
}

bool GetUint(std::string_view& in, int bytes, uint64_t& value) {
  if (in.size() < static_cast<size_t>(bytes)) return false;
  value = 0;
  for (int i = 0; i < bytes; ++i) value = value << 8 | static_cast<unsigned char>(in[i]);
  in.remove_prefix(bytes);
  return true;
}

bool GetInt64(std::string_view& in, int64_t& value) {
  uint64_t raw = 0;
  if (!GetUint(in, 8, raw)) return false;
  value = static_cast<int64_t>(raw);
  return true;
}

bool GetBytes(std::string_view& in, std::string& out) {
  uint64_t size = 0;
  if (!GetUint(in, 4, size) || size > in.size()) return false;
  out.assign(in.substr(0, size));
  in.remove_prefix(size);
  return true;
}

}  // namespace

std::string EncodeLease(const Record& record) {
  std::string out(kLeaseTag.size() + 1 + 4 * 8 + 4 * 4 + record.owner.size() +
                      record.fingerprint.size() + record.recovery.phase.size() +
                      record.recovery.state.size(),
                  '\0');
  char* cursor = out.data();
  std::memcpy(cursor, kLeaseTag.data(), kLeaseTag.size());
  cursor += kLeaseTag.size();
  *cursor++ = '0';
  cursor = PutUint(cursor, static_cast<uint64_t>(record.expires_at_ms), 8);
  cursor = PutUint(cursor, static_cast<uint64_t>(record.lease_expires_at_ms), 8);
  cursor = PutUint(cursor, static_cast<uint64_t>(record.created_at_ms), 8);
  cursor = PutUint(cursor, record.fence, 8);
  cursor = PutBytes(cursor, record.owner);
  cursor = PutBytes(cursor, record.fingerprint);
  cursor = PutBytes(cursor, record.recovery.phase);
  PutBytes(cursor, record.recovery.state);
  return out;
}

std::string EncodeRecovery(const RecoveryPoint& recovery) {
  std::string out(8 + recovery.phase.size() + recovery.state.size(), '\0');
  PutBytes(PutBytes(out.data(), recovery.phase), recovery.state);
  return out;
}

Result<RecordPtr> DecodeLease(std::string_view blob, const std::string& scope_key) {
  auto record = std::make_shared<Record>();
  record->key = scope_key;
  record->state = RecordState::kInFlight;
  std::string_view in = blob;
  int64_t fence = 0;
  const bool ok =
      in.substr(0, kLeaseTag.size()) == kLeaseTag && in.size() > 3 &&
      (in[2] == '0' || in[2] == '1') &&
      (in.remove_prefix(3), GetInt64(in, record->expires_at_ms)) &&
      GetInt64(in, record->lease_expires_at_ms) && GetInt64(in, record->created_at_ms) &&
      GetInt64(in, fence) && fence >= 0 && GetBytes(in, record->owner) &&
      GetBytes(in, record->fingerprint) && GetBytes(in, record->recovery.phase) &&
      GetBytes(in, record->recovery.state) && in.empty();
  if (!ok) {
    return DataLoss("redis record of \"" + scope_key + "\": not an idem lease");
  }
  record->fence = static_cast<uint64_t>(fence);
  return RecordPtr(std::move(record));
}

}  // namespace idem::redis_internal
