#include "idem/fingerprint.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/canonical_json_internal.h"
#include "idem/canonical_json.h"

namespace idem {
namespace {

constexpr size_t kSha256Size = 32;

// Tags of a field's value in mode "fields". The tag keeps "absent" apart
// from every JSON text, including the text `null`.
constexpr char kFieldAbsent = 0;
constexpr char kFieldPresent = 1;

// OpenSSL only fails here when it cannot allocate or its provider is broken.
// Returning a wrong digest instead would silently merge tenants or
// fingerprints, so this is fatal, like a failed CHECK.
[[noreturn]] void CryptoFailure(const char* what) {
  std::fprintf(stderr, "idem: OpenSSL %s failed\n", what);
  std::abort();
}

// EVP_sha256() makes OpenSSL 3 look the algorithm up on every init; an
// explicitly fetched EVP_MD is resolved once per process.
const EVP_MD* Sha256Md() {
  static const EVP_MD* const md = [] {
    const EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return fetched != nullptr ? fetched : EVP_sha256();
  }();
  return md;
}

struct FreeContext {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using ContextPtr = std::unique_ptr<EVP_MD_CTX, FreeContext>;

// SHA-256 of `data` into `out` (32 bytes) with this thread's digest context.
// EVP_Digest would allocate, set up and free a context on every call; this
// one is set up once per thread and re-initialised (no allocation) per use.
// Not reentrant, and it needs none: the context is used from init to final
// within this one call.
void Sha256Into(std::string_view data, unsigned char* out) {
  thread_local const ContextPtr ctx(EVP_MD_CTX_new());
  unsigned int size = 0;
  if (ctx == nullptr || EVP_DigestInit_ex2(ctx.get(), Sha256Md(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), out, &size) != 1 || size != kSha256Size) {
    CryptoFailure("SHA-256 digest");
  }
}

// SHA-256 over length-prefixed fields: every field is preceded by its size
// as 8 bytes little-endian, so no two different field lists hash the same
// bytes. Small fields are gathered in a buffer on the stack and hashed with
// one update: each EVP_DigestUpdate costs hundreds of instructions of
// provider dispatch, and a typical fingerprint has about ten pieces. Large
// fields (a body in mode "body") are hashed in place, never copied.
class FieldHasher {
 public:
  void Field(std::string_view bytes) {
    Length(bytes.size());
    Raw(bytes);
  }

  void Length(uint64_t n) {
    char prefix[8];
    for (char& c : prefix) {
      c = static_cast<char>(n & 0xFF);
      n >>= 8;
    }
    Raw(std::string_view(prefix, sizeof prefix));
  }

  void Raw(std::string_view bytes) {
    // An empty view may have a null data(), which memcpy must not get
    // (found by the http_front fuzzer under UBSan).
    if (bytes.empty()) return;
    if (buffered_ + bytes.size() <= buffer_.size()) {
      std::memcpy(buffer_.data() + buffered_, bytes.data(), bytes.size());
      buffered_ += bytes.size();
      return;
    }
    Flush();
    Update(bytes);
  }

  std::string Finish() {
    std::string digest(kSha256Size, '\0');
    auto* out = reinterpret_cast<unsigned char*>(digest.data());
    if (ctx_ == nullptr) {
      Sha256Into(std::string_view(buffer_.data(), buffered_), out);
      return digest;
    }
    Flush();
    unsigned int size = 0;
    if (EVP_DigestFinal_ex(ctx_.get(), out, &size) != 1 || size != kSha256Size) {
      CryptoFailure("EVP_DigestFinal_ex");
    }
    return digest;
  }

 private:
  void Flush() {
    if (buffered_ == 0) return;
    Update(std::string_view(buffer_.data(), buffered_));
    buffered_ = 0;
  }

  // Only for fingerprints too large for the buffer: a context of its own.
  void Update(std::string_view bytes) {
    if (ctx_ == nullptr) {
      ctx_.reset(EVP_MD_CTX_new());
      if (ctx_ == nullptr || EVP_DigestInit_ex2(ctx_.get(), Sha256Md(), nullptr) != 1) {
        CryptoFailure("EVP_DigestInit_ex2");
      }
    }
    if (EVP_DigestUpdate(ctx_.get(), bytes.data(), bytes.size()) != 1) {
      CryptoFailure("EVP_DigestUpdate");
    }
  }

  std::array<char, 4096> buffer_;
  size_t buffered_ = 0;
  ContextPtr ctx_;
};

// Parse errors become a client-facing kInvalidArgument; other failures
// (out of memory) keep their code.
Status NotJson(const Status& status) {
  if (status.code() != StatusCode::kInvalidArgument) return status;
  return InvalidArgument("request body is not valid JSON: " + status.message());
}

}  // namespace

std::string_view FingerprintModeName(FingerprintMode mode) {
  switch (mode) {
    case FingerprintMode::kBody:
      return "body";
    case FingerprintMode::kJson:
      return "json";
    case FingerprintMode::kFields:
      return "fields";
    case FingerprintMode::kNone:
      return "none";
  }
  return "unknown";
}

Result<FingerprintMode> ParseFingerprintMode(std::string_view name) {
  for (FingerprintMode mode : {FingerprintMode::kBody, FingerprintMode::kJson,
                               FingerprintMode::kFields, FingerprintMode::kNone}) {
    if (name == FingerprintModeName(mode)) return mode;
  }
  return InvalidArgument(
      "unknown fingerprint mode; expected one of: body, json, fields, none");
}

Result<std::string> ComputeFingerprint(FingerprintMode mode,
                                       const FingerprintInput& input,
                                       const std::vector<std::string>& fields) {
  if (mode == FingerprintMode::kNone) return std::string();

  // Work that can fail comes first, so no hashing is wasted on a bad body.
  std::string canonical;
  std::vector<std::optional<std::string>> values;
  if (mode == FingerprintMode::kJson) {
    Result<std::string> json = CanonicalizeJson(input.body);
    if (!json.ok()) return NotJson(json.status());
    canonical = std::move(json).value();
  } else if (mode == FingerprintMode::kFields) {
    for (const std::string& field : fields) {
      if (Status s = internal::ValidateJsonPointer(field); !s.ok()) return s;
    }
    // The pointers are valid, so any error left is the body's.
    auto selected = internal::CanonicalJsonAtEach(input.body, fields);
    if (!selected.ok()) return NotJson(selected.status());
    values = std::move(selected).value();
  }

  FieldHasher hasher;
  hasher.Field(FingerprintModeName(mode));
  hasher.Field(input.method);
  hasher.Field(input.path_with_query);
  hasher.Field(input.content_type);
  switch (mode) {
    case FingerprintMode::kBody:
      hasher.Field(input.body);  // hashed in place: no copy of the body
      break;
    case FingerprintMode::kJson:
      hasher.Field(canonical);
      break;
    case FingerprintMode::kFields:
      hasher.Length(fields.size());
      for (size_t i = 0; i < fields.size(); ++i) {
        hasher.Field(fields[i]);
        if (values[i].has_value()) {
          hasher.Raw(std::string_view(&kFieldPresent, 1));
          hasher.Field(*values[i]);
        } else {
          hasher.Raw(std::string_view(&kFieldAbsent, 1));
        }
      }
      break;
    case FingerprintMode::kNone:
      break;
  }
  return hasher.Finish();
}

std::string Sha256(std::string_view data) {
  std::string digest(kSha256Size, '\0');
  Sha256Into(data, reinterpret_cast<unsigned char*>(digest.data()));
  return digest;
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  // RFC 2104: a key longer than the block size is replaced by its hash, so
  // doing it here for keys too long for HMAC()'s int length changes nothing.
  std::string hashed_key;
  if (key.size() > static_cast<size_t>(INT_MAX)) {
    hashed_key = Sha256(key);
    key = hashed_key;
  }
  // Never a null key pointer, even for an empty key: OpenSSL's HMAC init
  // gives a null key a special meaning ("keep the previous key").
  static constexpr char kEmpty = 0;
  const void* key_data = key.empty() ? &kEmpty : key.data();
  std::string digest(kSha256Size, '\0');
  unsigned int size = 0;
  if (HMAC(Sha256Md(), key_data, static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(),
           reinterpret_cast<unsigned char*>(digest.data()), &size) == nullptr ||
      size != kSha256Size) {
    CryptoFailure("HMAC");
  }
  return digest;
}

std::string HexEncode(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.resize(bytes.size() * 2);
  for (size_t i = 0; i < bytes.size(); ++i) {
    const auto b = static_cast<unsigned char>(bytes[i]);
    hex[2 * i] = kDigits[b >> 4];
    hex[2 * i + 1] = kDigits[b & 0x0F];
  }
  return hex;
}

}  // namespace idem
