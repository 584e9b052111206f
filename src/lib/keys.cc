#include "idem/keys.h"

#include <openssl/rand.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

#include "idem/canonical_json.h"
#include "idem/fingerprint.h"

namespace idem {
namespace {

constexpr uint64_t kRandBBits = 62;
constexpr uint64_t kRandBLimit = uint64_t{1} << kRandBBits;
constexpr uint64_t kRandALimit = uint64_t{1} << 12;

uint64_t RandomBits() {
  std::array<unsigned char, 8> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    std::fprintf(stderr, "idem: OpenSSL RAND_bytes failed\n");
    std::abort();
  }
  uint64_t value = 0;
  for (unsigned char b : bytes) value = (value << 8) | b;
  return value;
}

// The 48-bit timestamp and the 74 bits after it (12 of rand_a, 62 of
// rand_b), kept across calls so keys from one process strictly increase.
class UuidV7Generator {
 public:
  std::array<unsigned char, 16> Next() {
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    const auto now_ms = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(now).count());
    std::lock_guard lock(mutex_);
    if (now_ms > ms_) {
      ms_ = now_ms;
      Reseed();
    } else if (!Increment()) {
      // 2^73 keys in one millisecond, or a clock far behind: borrow the
      // next millisecond rather than repeat or go backwards.
      ++ms_;
      Reseed();
    }
    return Layout();
  }

 private:
  // Fresh random bits, the top bit of rand_a clear so the counter has room.
  void Reseed() {
    rand_a_ = RandomBits() & (kRandALimit / 2 - 1);
    rand_b_ = RandomBits() & (kRandBLimit - 1);
  }

  // Adds a random step in [1, 2^32]; false when the 74 bits overflow.
  bool Increment() {
    rand_b_ += (RandomBits() & 0xFFFFFFFFu) + 1;
    if (rand_b_ >= kRandBLimit) {
      rand_b_ -= kRandBLimit;
      ++rand_a_;
    }
    return rand_a_ < kRandALimit;
  }

  std::array<unsigned char, 16> Layout() const {
    std::array<unsigned char, 16> out{};
    for (size_t i = 0; i < 6; ++i) {
      out[i] = static_cast<unsigned char>(ms_ >> (40 - 8 * i));
    }
    out[6] = static_cast<unsigned char>(0x70 | (rand_a_ >> 8));  // version 7
    out[7] = static_cast<unsigned char>(rand_a_);
    out[8] = static_cast<unsigned char>(0x80 | (rand_b_ >> 56));  // variant 10
    for (size_t i = 0; i < 7; ++i) {
      out[9 + i] = static_cast<unsigned char>(rand_b_ >> (48 - 8 * i));
    }
    return out;
  }

  std::mutex mutex_;
  uint64_t ms_ = 0;
  uint64_t rand_a_ = 0;
  uint64_t rand_b_ = 0;
};

void AppendField(std::string& out, std::string_view field) {
  uint64_t size = field.size();
  for (int i = 0; i < 8; ++i, size >>= 8) out.push_back(static_cast<char>(size & 0xFF));
  out.append(field);
}

}  // namespace

std::string NewUuidV7() {
  static UuidV7Generator generator;
  const auto bytes = generator.Next();
  const std::string hex = HexEncode(
      std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  return hex.substr(0, 8) + '-' + hex.substr(8, 4) + '-' + hex.substr(12, 4) + '-' +
         hex.substr(16, 4) + '-' + hex.substr(20);
}

Result<std::string> DeriveKey(std::string_view entity, std::string_view action,
                              std::string_view params_json) {
  if (entity.empty()) return InvalidArgument("DeriveKey: entity is empty");
  if (action.empty()) return InvalidArgument("DeriveKey: action is empty");
  auto canonical = CanonicalizeJson(params_json);
  if (!canonical.ok()) {
    return InvalidArgument("DeriveKey: params are not valid JSON: " +
                           canonical.status().message());
  }
  std::string input;
  input.reserve(24 + entity.size() + action.size() + canonical->size());
  AppendField(input, entity);
  AppendField(input, action);
  AppendField(input, *canonical);
  return HexEncode(Sha256(input).substr(0, 16));
}

}  // namespace idem
