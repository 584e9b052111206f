#include "lib/stored_outcome.h"

#include <utility>

namespace idem::internal {
namespace {

constexpr StatusCode kLastCode = StatusCode::kInternal;

StatusCode CodeNamed(std::string_view name) {
  for (int i = 1; i <= static_cast<int>(kLastCode); ++i) {
    const auto code = static_cast<StatusCode>(i);
    if (StatusCodeName(code) == name) return code;
  }
  return StatusCode::kInternal;
}

}  // namespace

StoredResponse StoredValue(std::string bytes) {
  StoredResponse response;
  response.status = 200;
  response.body = std::move(bytes);
  return response;
}

StoredResponse StoredError(const Status& status) {
  StoredResponse response;
  response.status = HttpStatusFor(status.code());
  response.headers.emplace_back(kErrorHeader, std::string(StatusCodeName(status.code())));
  response.body = status.message();
  return response;
}

Result<std::string> DecodeStored(const StoredResponse& response) {
  for (const auto& [name, value] : response.headers) {
    if (name == kErrorHeader) return Status(CodeNamed(value), response.body);
  }
  if (response.status != 200) {
    return DataLoss("stored run-once result has status " +
                    std::to_string(response.status) + " and no error code");
  }
  return response.body;
}

}  // namespace idem::internal
