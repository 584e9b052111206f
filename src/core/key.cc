#include "idem/key.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "idem/fingerprint.h"

namespace idem {
namespace {

// Hex characters of a tenant id: 128 bits, plenty to keep tenants apart.
constexpr size_t kTenantIdHexLength = 32;

bool IsOws(char c) { return c == ' ' || c == '\t'; }

bool IsPrintableAscii(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u >= 0x20 && u <= 0x7E;
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && IsOws(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsOws(s.back())) s.remove_suffix(1);
  return s;
}

// The messages below reach clients verbatim (problem+json `detail`), so they
// describe the rule that was broken and never echo the value.
Status TooLong() {
  return InvalidArgument("Idempotency-Key must be at most 255 characters");
}
Status NotPrintable() {
  return InvalidArgument("Idempotency-Key must contain only printable ASCII characters");
}

// RFC 8941 sf-string: DQUOTE *( unescaped / "\" ( DQUOTE / "\" ) ) DQUOTE.
// `s` starts with the opening quote. The characters are checked one by one
// but copied in runs between escapes.
Result<std::string> ParseSfString(std::string_view s) {
  std::string key;
  size_t length = 0;  // characters of the key so far
  size_t run = 1;     // where the characters not copied to `key` yet start
  for (size_t i = 1; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '"') {
      if (i + 1 != s.size()) {
        return InvalidArgument(
            "Idempotency-Key has unexpected characters after the closing "
            "quote");
      }
      key.append(s, run, i - run);
      return key;
    }
    if (!IsPrintableAscii(c)) return NotPrintable();
    if (c == '\\') {
      if (++i == s.size()) break;  // unterminated
      if (s[i] != '"' && s[i] != '\\') {
        if (!IsPrintableAscii(s[i])) return NotPrintable();
        return InvalidArgument(
            "Idempotency-Key has an invalid escape sequence; only \\\" and "
            "\\\\ are allowed");
      }
      key.append(s, run, i - 1 - run);  // up to the backslash
      run = i;                          // the escaped character starts the next run
    }
    if (length == kMaxIdempotencyKeyLength) return TooLong();
    ++length;
  }
  return InvalidArgument("Idempotency-Key string is missing its closing quote");
}

Result<std::string> ParseBareToken(std::string_view s) {
  for (const char c : s) {
    if (!IsPrintableAscii(c)) return NotPrintable();
    if (c == ' ') {
      return InvalidArgument(
          "Idempotency-Key must not contain spaces unless sent as a quoted "
          "string");
    }
    if (c == '"' || c == '\\') {
      return InvalidArgument(
          "Idempotency-Key must not contain quotes or backslashes unless sent "
          "as a quoted string");
    }
  }
  if (s.size() > kMaxIdempotencyKeyLength) return TooLong();
  return std::string(s);
}

void AppendLengthPrefixed(std::string& out, std::string_view value) {
  uint64_t n = value.size();
  for (int i = 0; i < 8; ++i) {
    out.push_back(static_cast<char>(n & 0xFF));
    n >>= 8;
  }
  out.append(value);
}

}  // namespace

Result<std::string> ParseIdempotencyKey(std::string_view header_value) {
  const std::string_view value = TrimOws(header_value);
  if (value.empty()) {
    return InvalidArgument("Idempotency-Key must not be empty");
  }
  Result<std::string> key =
      value.front() == '"' ? ParseSfString(value) : ParseBareToken(value);
  if (key.ok() && key->empty()) {
    return InvalidArgument("Idempotency-Key must not be empty");
  }
  return key;
}

std::string TenantId(const std::vector<std::string>& credential_values,
                     std::string_view secret) {
  if (credential_values.empty()) return "anonymous";
  // Each value is length-prefixed so {"ab", "c"} and {"a", "bc"} differ.
  std::string joined;
  size_t total = 0;
  for (const std::string& v : credential_values) total += 8 + v.size();
  joined.reserve(total);
  for (const std::string& v : credential_values) {
    AppendLengthPrefixed(joined, v);
  }
  const std::string digest = secret.empty() ? Sha256(joined) : HmacSha256(secret, joined);
  std::string hex = HexEncode(digest);
  hex.resize(kTenantIdHexLength);
  return hex;
}

std::string BuildScopeKey(std::string_view tenant, std::string_view method,
                          std::string_view path, std::string_view key) {
  std::string scope;
  scope.reserve(tenant.size() + method.size() + path.size() + key.size() + 3);
  scope.append(tenant);
  scope.push_back(' ');
  scope.append(method);
  scope.push_back(' ');
  scope.append(path);
  scope.push_back(' ');
  scope.append(key);
  return scope;
}

}  // namespace idem
