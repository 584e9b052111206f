// Fuzz target: ParseIdempotencyKey (the Idempotency-Key header value).
// Properties: an accepted key obeys the documented limits, and its quoted
// RFC 8941 form parses back to the same key.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "idem/key.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  idem::Result<std::string> key = idem::ParseIdempotencyKey(input);
  if (!key.ok()) return 0;
  const std::string& k = key.value();
  FUZZ_CHECK(!k.empty());
  FUZZ_CHECK(k.size() <= idem::kMaxIdempotencyKeyLength);
  for (const char c : k) FUZZ_CHECK(c >= 0x20 && c <= 0x7E);

  std::string quoted = "\"";
  for (const char c : k) {
    if (c == '"' || c == '\\') quoted.push_back('\\');
    quoted.push_back(c);
  }
  quoted.push_back('"');
  idem::Result<std::string> again = idem::ParseIdempotencyKey(quoted);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again.value() == k);
  return 0;
}
