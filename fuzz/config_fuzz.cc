// Fuzz target: the configuration loader (TOML text through ParseConfig)
// and the duration and size parsers it uses. Property: an accepted
// configuration renders (`idem check-config`) to TOML that parses back to
// the same rendering.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "gateway/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)idem::gateway::ParseDuration(text);
  (void)idem::gateway::ParseSize(text);

  idem::Result<idem::gateway::GatewayConfig> config = idem::gateway::ParseConfig(text);
  if (!config.ok()) return 0;
  const std::string rendered = idem::gateway::RenderConfig(config.value());
  idem::Result<idem::gateway::GatewayConfig> again =
      idem::gateway::ParseConfig(rendered, "rendered");
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(idem::gateway::RenderConfig(again.value()) == rendered);
  return 0;
}
