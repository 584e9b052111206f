// Encryption at rest: a Store decorator that encrypts every stored
// response (header lines and body) with AES-256-GCM before the backend sees
// it, and decrypts it on the way out, so a dump of Redis, PostgreSQL or a
// RocksDB directory does not reveal what the upstream answered.
//
// Each stored response becomes: the status (kept, in the clear), no header
// lines, and a body of
//   "IDEMENC1" | key id length (1 byte) | key id | nonce (12) | ciphertext | tag (16)
// The nonce is random per record; the authenticated data binds the scope
// key and the status, so a ciphertext copied onto another key, or a changed
// status, fails to decrypt. New records use the active key; older keys are
// kept for reading (rotation: add a key, make it active, drop the old one
// once every record written with it has expired).
//
// Reading a record whose key id is unknown, or whose ciphertext does not
// authenticate, answers kDataLoss (never the bytes). Responses stored
// before encryption was switched on (no "IDEMENC1" body) are read as they
// are. Not encrypted: scope keys, fingerprints, statuses, timestamps, and
// library recovery points (Checkpoint). Thread-safe.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "idem/record.h"
#include "idem/status.h"
#include "idem/store.h"

namespace idem {

struct EncryptionKey {
  std::string id;     // 1 to 64 characters: letters, digits, '.', '_', '-'
  std::string bytes;  // exactly 32 bytes
};

struct EncryptionKeys {
  std::string active_id;  // the key that encrypts new records
  std::vector<EncryptionKey> keys;
};

// Parses key entries `ID:KEY`, separated by new lines or commas; blank
// lines and lines starting with '#' are skipped. KEY is 64 hex digits or
// the standard base64 of 32 bytes. Messages never contain key material.
Result<std::vector<EncryptionKey>> ParseEncryptionKeys(std::string_view text);

// kInvalidArgument when the active id is not among the keys, a key is not
// 32 bytes, or an id repeats.
Status CheckEncryptionKeys(const EncryptionKeys& keys);

// Encrypts / decrypts one response for `scope_key` (exposed for tests).
Result<StoredResponse> EncryptResponse(const EncryptionKeys& keys,
                                       std::string_view scope_key,
                                       const StoredResponse& plain);
Result<StoredResponse> DecryptResponse(const EncryptionKeys& keys,
                                       std::string_view scope_key,
                                       const StoredResponse& stored);
bool IsEncryptedResponse(const StoredResponse& stored);

// `keys` must pass CheckEncryptionKeys.
std::shared_ptr<Store> NewEncryptingStore(std::shared_ptr<Store> inner,
                                          EncryptionKeys keys);

}  // namespace idem
