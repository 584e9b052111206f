#include "stores/postgres/pg_wire.h"

#include <spdlog/spdlog.h>

#include <bit>
#include <cstring>

#include "stores/postgres/pg_handles.h"

namespace idem::pg {
namespace {

template <typename T>
std::string BigEndian(T value) {
  using U = std::make_unsigned_t<T>;
  U bits = static_cast<U>(value);
  std::string out(sizeof(T), '\0');
  for (size_t i = 0; i < sizeof(T); ++i) {
    out[sizeof(T) - 1 - i] = static_cast<char>(bits & 0xff);
    bits = static_cast<U>(bits >> 8);
  }
  return out;
}

template <typename T>
T FromBigEndian(std::string_view bytes) {
  using U = std::make_unsigned_t<T>;
  uint64_t bits = 0;
  for (size_t i = 0; i < sizeof(T); ++i) {
    bits = (bits << 8) | static_cast<uint8_t>(bytes[i]);
  }
  return std::bit_cast<T>(static_cast<U>(bits));
}

void AppendLength(std::string& out, size_t length) {
  out += BigEndian(static_cast<uint32_t>(length));
}

bool ReadChunk(std::string_view& in, std::string* out) {
  if (in.size() < 4) return false;
  const uint32_t length = FromBigEndian<uint32_t>(in.substr(0, 4));
  in.remove_prefix(4);
  if (in.size() < length) return false;
  out->assign(in.data(), length);
  in.remove_prefix(length);
  return true;
}

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

}  // namespace

void QuietNotices(PGconn* conn) {
  if (!conn) return;
  PQsetNoticeProcessor(
      conn,
      [](void*, const char* message) {
        std::string_view text = message ? message : "";
        while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
        spdlog::debug("postgres: {}", text);
      },
      nullptr);
}

std::string Int8Param(int64_t value) { return BigEndian(value); }
std::string Int4Param(int32_t value) { return BigEndian(value); }

bool RowReader::IsNull(int column) const {
  return PQgetisnull(result_, row_, column) != 0;
}

std::string_view RowReader::Raw(int column, int expected_size) {
  if (column >= PQnfields(result_) || IsNull(column)) {
    ok_ = false;
    return {};
  }
  const int length = PQgetlength(result_, row_, column);
  if (expected_size >= 0 && length != expected_size) {
    ok_ = false;
    return {};
  }
  return {PQgetvalue(result_, row_, column), static_cast<size_t>(length)};
}

bool RowReader::Bool(int column) {
  std::string_view raw = Raw(column, 1);
  return !raw.empty() && raw[0] != 0;
}

int16_t RowReader::Int2(int column) {
  std::string_view raw = Raw(column, 2);
  return raw.empty() ? int16_t{0} : FromBigEndian<int16_t>(raw);
}

int32_t RowReader::Int4(int column) {
  std::string_view raw = Raw(column, 4);
  return raw.empty() ? 0 : FromBigEndian<int32_t>(raw);
}

int64_t RowReader::Int8(int column) {
  std::string_view raw = Raw(column, 8);
  return raw.empty() ? 0 : FromBigEndian<int64_t>(raw);
}

std::string RowReader::Bytes(int column) { return std::string(Raw(column, -1)); }

std::string EncodeHeaders(
    const std::vector<std::pair<std::string, std::string>>& headers) {
  std::string out;
  for (const auto& [name, value] : headers) {
    AppendLength(out, name.size());
    out += name;
    AppendLength(out, value.size());
    out += value;
  }
  return out;
}

bool DecodeHeaders(std::string_view bytes,
                   std::vector<std::pair<std::string, std::string>>* headers) {
  headers->clear();
  while (!bytes.empty()) {
    std::pair<std::string, std::string> line;
    if (!ReadChunk(bytes, &line.first) || !ReadChunk(bytes, &line.second)) {
      return false;
    }
    headers->push_back(std::move(line));
  }
  return true;
}

std::string SqlState(const PGresult* result) {
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  return state ? state : "";
}

bool IsRetryableRace(std::string_view sqlstate) {
  return sqlstate == "40001" || sqlstate == "40P01" || sqlstate == "23505";
}

Status StatusFromError(std::string_view sqlstate, std::string_view message,
                       std::string_view what) {
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
    message.remove_suffix(1);
  }
  std::string text = "postgres " + std::string(what) + ": " + std::string(message);
  if (!sqlstate.empty()) text += " (SQLSTATE " + std::string(sqlstate) + ")";
  if (sqlstate.empty() || StartsWith(sqlstate, "08") || StartsWith(sqlstate, "53") ||
      StartsWith(sqlstate, "57") || StartsWith(sqlstate, "58") || sqlstate == "25006" ||
      sqlstate == "55P03" || sqlstate == "42P01" || sqlstate == "3F000" ||
      sqlstate == "26000") {
    return Unavailable(std::move(text));
  }
  if (IsRetryableRace(sqlstate)) return Conflict(std::move(text));
  return Internal(std::move(text));
}

std::string QuoteIdentifier(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string QuoteLiteral(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

}  // namespace idem::pg
