#include "stores/redis/record_fields.h"

#include <charconv>
#include <cstdint>
#include <memory>

namespace idem::redis_internal {
namespace {

void PutVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

bool GetVarint(std::string_view& in, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64 && !in.empty(); shift += 7) {
    const auto byte = static_cast<unsigned char>(in.front());
    in.remove_prefix(1);
    v |= static_cast<uint64_t>(byte & 0x7F) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

bool GetBytes(std::string_view& in, std::string& out) {
  uint64_t size = 0;
  if (!GetVarint(in, size) || size > in.size()) return false;
  out.assign(in.substr(0, size));
  in.remove_prefix(size);
  return true;
}

template <typename T>
bool ParseNumber(std::string_view text, T& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size() && !text.empty();
}

Status Corrupt(const std::string& scope_key, std::string_view what) {
  return DataLoss("redis record of \"" + scope_key + "\": malformed field " +
                  std::string(what));
}

}  // namespace

std::string EncodeHeaders(
    const std::vector<std::pair<std::string, std::string>>& headers) {
  std::string out;
  for (const auto& [name, value] : headers) {
    PutVarint(out, name.size());
    out += name;
    PutVarint(out, value.size());
    out += value;
  }
  return out;
}

Result<std::vector<std::pair<std::string, std::string>>> DecodeHeaders(
    std::string_view bytes) {
  std::vector<std::pair<std::string, std::string>> headers;
  while (!bytes.empty()) {
    std::pair<std::string, std::string> header;
    if (!GetBytes(bytes, header.first) || !GetBytes(bytes, header.second)) {
      return DataLoss("truncated header list");
    }
    headers.push_back(std::move(header));
  }
  return headers;
}

Result<RecordPtr> RecordFromFields(const redisReply* flat, const std::string& scope_key) {
  if (flat == nullptr || flat->type != REDIS_REPLY_ARRAY || flat->elements % 2 != 0) {
    return Internal("redis record of \"" + scope_key + "\": not a field list");
  }
  auto record = std::make_shared<Record>();
  record->key = scope_key;
  bool has_state = false;
  for (size_t i = 0; i < flat->elements; i += 2) {
    const redisReply* f = flat->element[i];
    const redisReply* v = flat->element[i + 1];
    if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
      return Internal("redis record of \"" + scope_key + "\": not a field list");
    }
    const std::string_view field(f->str, f->len);
    const std::string_view value(v->str, v->len);
    bool ok = true;
    if (field == "v") {
      if (value != kLayoutVersion) {
        return DataLoss("redis record of \"" + scope_key +
                        "\": unsupported layout version " + std::string(value));
      }
    } else if (field == "st") {
      has_state = true;
      if (value == "1") {
        record->state = RecordState::kInFlight;
      } else if (value == "2") {
        record->state = RecordState::kCompleted;
      } else {
        ok = false;
      }
    } else if (field == "fp") {
      record->fingerprint = value;
    } else if (field == "ow") {
      record->owner = value;
    } else if (field == "fe") {
      ok = ParseNumber(value, record->fence);
    } else if (field == "le") {
      ok = ParseNumber(value, record->lease_expires_at_ms);
    } else if (field == "rp") {
      record->recovery.phase = value;
    } else if (field == "rs") {
      record->recovery.state = value;
    } else if (field == "sc") {
      ok = ParseNumber(value, record->response.status);
    } else if (field == "hd") {
      auto headers = DecodeHeaders(value);
      ok = headers.ok();
      if (ok) record->response.headers = std::move(headers).value();
    } else if (field == "bd") {
      record->response.body = value;
    } else if (field == "cr") {
      ok = ParseNumber(value, record->created_at_ms);
    } else if (field == "ex") {
      ok = ParseNumber(value, record->expires_at_ms);
    }
    // Unknown fields (such as "w", the waiter flag) are not part of a Record.
    if (!ok) return Corrupt(scope_key, field);
  }
  if (!has_state) return Corrupt(scope_key, "st (missing)");
  return RecordPtr(std::move(record));
}

}  // namespace idem::redis_internal
