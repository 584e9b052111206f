#include "idem/record_json.h"

#include <openssl/evp.h>

#include <boost/json.hpp>

#include "idem/fingerprint.h"

namespace idem {
namespace {

std::string Base64(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                      reinterpret_cast<const unsigned char*>(bytes.data()),
                                      static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(written));
  return out;
}

// Printable ASCII plus common white space: shown as text next to base64.
bool IsPlainText(const std::string& bytes) {
  for (unsigned char c : bytes) {
    if ((c < 0x20 && c != '\n' && c != '\r' && c != '\t') || c > 0x7E) return false;
  }
  return true;
}

}  // namespace

std::string RecordToJson(const Record& record) {
  boost::json::object out;
  out["key"] = record.key;
  out["state"] = record.state == RecordState::kCompleted ? "completed" : "in_flight";
  out["fingerprint"] = HexEncode(record.fingerprint);
  out["owner"] = record.owner;
  out["fence"] = record.fence;
  out["lease_expires_at_ms"] = record.lease_expires_at_ms;
  out["created_at_ms"] = record.created_at_ms;
  out["expires_at_ms"] = record.expires_at_ms;
  if (!record.recovery.empty()) {
    out["recovery"] = {{"phase", record.recovery.phase},
                       {"state_base64", Base64(record.recovery.state)}};
  }
  if (record.state == RecordState::kCompleted) {
    boost::json::array headers;
    for (const auto& [name, value] : record.response.headers) {
      headers.push_back(boost::json::array{boost::json::string(name),
                                           boost::json::string(value)});
    }
    boost::json::object response;
    response["status"] = record.response.status;
    response["headers"] = std::move(headers);
    response["body_base64"] = Base64(record.response.body);
    if (IsPlainText(record.response.body)) response["body"] = record.response.body;
    out["response"] = std::move(response);
  }
  return boost::json::serialize(out);
}

}  // namespace idem
