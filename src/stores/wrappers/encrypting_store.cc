// NewEncryptingStore: AES-256-GCM over stored responses (OpenSSL EVP).
#include "idem/encrypting_store.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <utility>

#include "idem/forwarding_store.h"

namespace idem {
namespace {

constexpr std::string_view kMagic = "IDEMENC1";
constexpr std::string_view kAadLabel = "idem-response-v1";
constexpr size_t kKeyBytes = 32;
constexpr size_t kNonceBytes = 12;
constexpr size_t kTagBytes = 16;
constexpr size_t kMaxIdLength = 64;

void AppendU32(std::string& out, uint64_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((value >> shift) & 0xff));
  }
}

bool ReadU32(std::string_view& in, uint32_t& value) {
  if (in.size() < 4) return false;
  value = 0;
  for (int i = 0; i < 4; ++i) value = (value << 8) | static_cast<unsigned char>(in[i]);
  in.remove_prefix(4);
  return true;
}

bool ReadBytes(std::string_view& in, std::string& out) {
  uint32_t length = 0;
  if (!ReadU32(in, length) || in.size() < length) return false;
  out.assign(in.substr(0, length));
  in.remove_prefix(length);
  return true;
}

// Header lines and body, length-prefixed, as the plaintext.
std::string Serialize(const StoredResponse& r) {
  size_t size = 4 + r.body.size();
  for (const auto& [name, value] : r.headers) size += 8 + name.size() + value.size();
  std::string out;
  out.reserve(size);
  AppendU32(out, r.headers.size());
  for (const auto& [name, value] : r.headers) {
    AppendU32(out, name.size());
    out += name;
    AppendU32(out, value.size());
    out += value;
  }
  out += r.body;
  return out;
}

bool Deserialize(std::string_view in, StoredResponse& r) {
  uint32_t count = 0;
  if (!ReadU32(in, count)) return false;
  if (count > in.size() / 8) return false;
  r.headers.resize(count);
  for (auto& [name, value] : r.headers) {
    if (!ReadBytes(in, name) || !ReadBytes(in, value)) return false;
  }
  r.body.assign(in);
  return true;
}

std::string Aad(std::string_view key_id, std::string_view scope_key, int status) {
  std::string aad(kAadLabel);
  AppendU32(aad, key_id.size());
  aad += key_id;
  AppendU32(aad, scope_key.size());
  aad += scope_key;
  AppendU32(aad, static_cast<uint32_t>(status));
  return aad;
}

const EncryptionKey* FindKey(const EncryptionKeys& keys, std::string_view id) {
  for (const EncryptionKey& key : keys.keys) {
    if (key.id == id) return &key;
  }
  return nullptr;
}

struct CipherContext {
  CipherContext() : ctx(EVP_CIPHER_CTX_new()) {}
  ~CipherContext() { EVP_CIPHER_CTX_free(ctx); }
  EVP_CIPHER_CTX* ctx;
};

const auto* Bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }
auto* Bytes(std::string& s) { return reinterpret_cast<unsigned char*>(s.data()); }

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// 64 hex digits, or base64 (EVP_DecodeBlock) of exactly 32 bytes.
std::optional<std::string> DecodeKey(std::string_view text) {
  if (text.size() == 2 * kKeyBytes &&
      std::all_of(text.begin(), text.end(), [](char c) { return HexDigit(c) >= 0; })) {
    std::string out(kKeyBytes, '\0');
    for (size_t i = 0; i < kKeyBytes; ++i) {
      out[i] = static_cast<char>(HexDigit(text[2 * i]) * 16 + HexDigit(text[2 * i + 1]));
    }
    return out;
  }
  if (text.size() != 44 || text[43] != '=' || text[42] == '=') return std::nullopt;
  std::string out(33, '\0');  // EVP_DecodeBlock writes 3 bytes per 4, padding included
  const int n = EVP_DecodeBlock(Bytes(out), Bytes(text), static_cast<int>(text.size()));
  if (n != 33) return std::nullopt;
  out.resize(kKeyBytes);
  return out;
}

bool ValidId(std::string_view id) {
  return !id.empty() && id.size() <= kMaxIdLength &&
         std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
         });
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

Result<RecordPtr> DecryptRecord(const EncryptionKeys& keys, RecordPtr record) {
  if (!record || record->state != RecordState::kCompleted ||
      !IsEncryptedResponse(record->response)) {
    return record;
  }
  Result<StoredResponse> plain = DecryptResponse(keys, record->key, record->response);
  if (!plain.ok()) return plain.status();
  auto copy = std::make_shared<Record>(*record);
  copy->response = std::move(plain).value();
  return RecordPtr(std::move(copy));
}

class EncryptingStore final : public ForwardingStore {
 public:
  EncryptingStore(std::shared_ptr<Store> inner, EncryptionKeys keys)
      : ForwardingStore(std::move(inner)), keys_(std::make_shared<EncryptionKeys>(std::move(keys))) {}

  void Begin(BeginRequest request, Callback<Result<BeginResult>> done) override {
    inner().Begin(std::move(request), [keys = keys_, done = std::move(done)](
                                          Result<BeginResult> result) {
      if (!result.ok() || result->outcome != BeginOutcome::kCompleted) {
        return done(std::move(result));
      }
      Result<RecordPtr> record = DecryptRecord(*keys, std::move(result->record));
      if (!record.ok()) return done(record.status());
      result->record = std::move(record).value();
      done(std::move(result));
    });
  }

  void Complete(CompleteRequest request, Callback<Status> done) override {
    Result<StoredResponse> sealed = EncryptResponse(*keys_, request.key, request.response);
    if (!sealed.ok()) return done(sealed.status());
    request.response = std::move(sealed).value();
    inner().Complete(std::move(request), std::move(done));
  }

  void Get(std::string key, Callback<Result<RecordPtr>> done) override {
    inner().Get(std::move(key), Opener(std::move(done)));
  }

  void WaitForCompletion(std::string key, std::chrono::milliseconds timeout,
                         Callback<Result<RecordPtr>> done) override {
    inner().WaitForCompletion(std::move(key), timeout, Opener(std::move(done)));
  }

 private:
  Callback<Result<RecordPtr>> Opener(Callback<Result<RecordPtr>> done) const {
    return [keys = keys_, done = std::move(done)](Result<RecordPtr> record) {
      if (!record.ok()) return done(std::move(record));
      done(DecryptRecord(*keys, std::move(record).value()));
    };
  }

  std::shared_ptr<const EncryptionKeys> keys_;
};

}  // namespace

bool IsEncryptedResponse(const StoredResponse& stored) {
  return stored.headers.empty() && stored.body.size() >= kMagic.size() &&
         std::string_view(stored.body).substr(0, kMagic.size()) == kMagic;
}

Result<std::vector<EncryptionKey>> ParseEncryptionKeys(std::string_view text) {
  std::vector<EncryptionKey> keys;
  size_t number = 0;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find_first_of(",\n", start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view entry = Trim(text.substr(start, end - start));
    start = end + 1;
    if (entry.empty() || entry.front() == '#') continue;
    ++number;
    const std::string where = "encryption key entry " + std::to_string(number);
    const size_t colon = entry.find(':');
    if (colon == std::string_view::npos) {
      return InvalidArgument(where + ": expected ID:KEY");
    }
    EncryptionKey key;
    key.id = std::string(Trim(entry.substr(0, colon)));
    if (!ValidId(key.id)) {
      return InvalidArgument(where + ": the id must be 1 to 64 letters, digits, '.', '_' or '-'");
    }
    std::optional<std::string> bytes = DecodeKey(Trim(entry.substr(colon + 1)));
    if (!bytes) {
      return InvalidArgument(where + " (id \"" + key.id +
                             "\"): the key must be 32 bytes, as 64 hex digits or base64 "
                             "(e.g. from `openssl rand -base64 32`)");
    }
    key.bytes = std::move(*bytes);
    keys.push_back(std::move(key));
  }
  return keys;
}

Status CheckEncryptionKeys(const EncryptionKeys& keys) {
  for (size_t i = 0; i < keys.keys.size(); ++i) {
    if (!ValidId(keys.keys[i].id)) return InvalidArgument("an encryption key id is malformed");
    if (keys.keys[i].bytes.size() != kKeyBytes) {
      return InvalidArgument("encryption key \"" + keys.keys[i].id + "\" is not 32 bytes");
    }
    for (size_t j = 0; j < i; ++j) {
      if (keys.keys[j].id == keys.keys[i].id) {
        return InvalidArgument("encryption key id \"" + keys.keys[i].id + "\" is given twice");
      }
    }
  }
  if (FindKey(keys, keys.active_id) == nullptr) {
    return InvalidArgument("the active encryption key \"" + keys.active_id +
                           "\" is not among the keys");
  }
  return Status::Ok();
}

Result<StoredResponse> EncryptResponse(const EncryptionKeys& keys, std::string_view scope_key,
                                       const StoredResponse& plain) {
  const EncryptionKey* key = FindKey(keys, keys.active_id);
  if (key == nullptr) return FailedPrecondition("no active encryption key");
  const std::string text = Serialize(plain);
  const std::string aad = Aad(key->id, scope_key, plain.status);

  StoredResponse sealed;
  sealed.status = plain.status;
  std::string& out = sealed.body;
  out.reserve(kMagic.size() + 1 + key->id.size() + kNonceBytes + text.size() + kTagBytes);
  out += kMagic;
  out.push_back(static_cast<char>(key->id.size()));
  out += key->id;
  const size_t nonce_at = out.size();
  out.resize(nonce_at + kNonceBytes + text.size() + kTagBytes);
  unsigned char* nonce = Bytes(out) + nonce_at;
  unsigned char* cipher = nonce + kNonceBytes;
  if (RAND_bytes(nonce, static_cast<int>(kNonceBytes)) != 1) {
    return Internal("no random bytes for an encryption nonce");
  }
  CipherContext c;
  int n = 0;
  int total = 0;
  const bool ok =
      c.ctx != nullptr &&
      EVP_EncryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, Bytes(key->bytes), nonce) == 1 &&
      EVP_EncryptUpdate(c.ctx, nullptr, &n, Bytes(aad), static_cast<int>(aad.size())) == 1 &&
      EVP_EncryptUpdate(c.ctx, cipher, &n, Bytes(text), static_cast<int>(text.size())) == 1 &&
      (total = n, EVP_EncryptFinal_ex(c.ctx, cipher + total, &n) == 1) &&
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagBytes),
                          cipher + total + n) == 1;
  if (!ok) return Internal("AES-256-GCM encryption failed");
  return sealed;
}

Result<StoredResponse> DecryptResponse(const EncryptionKeys& keys, std::string_view scope_key,
                                       const StoredResponse& stored) {
  std::string_view in(stored.body);
  if (!IsEncryptedResponse(stored)) return stored;
  in.remove_prefix(kMagic.size());
  if (in.empty()) return DataLoss("encrypted response is truncated");
  const size_t id_length = static_cast<unsigned char>(in.front());
  in.remove_prefix(1);
  if (in.size() < id_length + kNonceBytes + kTagBytes) {
    return DataLoss("encrypted response is truncated");
  }
  const std::string_view id = in.substr(0, id_length);
  in.remove_prefix(id_length);
  const EncryptionKey* key = FindKey(keys, id);
  if (key == nullptr) {
    return DataLoss("stored response was encrypted with key \"" + std::string(id) +
                    "\", which is not configured (store.encryption)");
  }
  const std::string_view nonce = in.substr(0, kNonceBytes);
  in.remove_prefix(kNonceBytes);
  const std::string_view cipher = in.substr(0, in.size() - kTagBytes);
  std::string tag(in.substr(in.size() - kTagBytes));
  const std::string aad = Aad(id, scope_key, stored.status);
  std::string text(cipher.size(), '\0');
  CipherContext c;
  int n = 0;
  const bool ok =
      c.ctx != nullptr &&
      EVP_DecryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, Bytes(key->bytes),
                         Bytes(nonce)) == 1 &&
      EVP_DecryptUpdate(c.ctx, nullptr, &n, Bytes(aad), static_cast<int>(aad.size())) == 1 &&
      EVP_DecryptUpdate(c.ctx, Bytes(text), &n, Bytes(cipher),
                        static_cast<int>(cipher.size())) == 1 &&
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagBytes),
                          Bytes(tag)) == 1 &&
      EVP_DecryptFinal_ex(c.ctx, Bytes(text) + n, &n) == 1;
  if (!ok) {
    return DataLoss("stored response does not authenticate with key \"" + std::string(id) +
                    "\" (tampered, or copied from another key)");
  }
  StoredResponse plain;
  plain.status = stored.status;
  if (!Deserialize(text, plain)) return DataLoss("decrypted response is malformed");
  return plain;
}

std::shared_ptr<Store> NewEncryptingStore(std::shared_ptr<Store> inner, EncryptionKeys keys) {
  return std::make_shared<EncryptingStore>(std::move(inner), std::move(keys));
}

}  // namespace idem
