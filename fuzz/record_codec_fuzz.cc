// Fuzz target: DecodeRecord (bytes read back from RocksDB, Redis or
// PostgreSQL; docs/record-format.md). Property: whatever decodes encodes
// to a record that decodes to the same value.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "idem/record_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  idem::Result<idem::Record> record = idem::DecodeRecord(bytes);
  if (!record.ok()) return 0;
  const std::string encoded = idem::EncodeRecord(record.value());
  idem::Result<idem::Record> again = idem::DecodeRecord(encoded);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again.value() == record.value());
  FUZZ_CHECK(idem::EncodeRecord(again.value()) == encoded);
  return 0;
}
