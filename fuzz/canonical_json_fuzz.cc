// Fuzz target: CanonicalizeJson and CanonicalJsonAt (the json and fields
// fingerprints). Input: an RFC 6901 pointer, a newline, then the JSON text.
// Properties: canonical JSON is a fixed point, and a value selected by a
// pointer is itself canonical.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "idem/canonical_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t newline = input.find('\n');
  const std::string_view pointer =
      newline == std::string_view::npos ? std::string_view() : input.substr(0, newline);
  const std::string_view text =
      newline == std::string_view::npos ? input : input.substr(newline + 1);

  idem::Result<std::string> canonical = idem::CanonicalizeJson(text);
  if (canonical.ok()) {
    idem::Result<std::string> again = idem::CanonicalizeJson(canonical.value());
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(again.value() == canonical.value());
  }
  idem::Result<std::string> selected = idem::CanonicalJsonAt(text, pointer);
  if (selected.ok()) {
    FUZZ_CHECK(canonical.ok());
    idem::Result<std::string> again = idem::CanonicalizeJson(selected.value());
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(again.value() == selected.value());
  }
  return 0;
}
