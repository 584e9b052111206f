#include "payments.h"

#include <boost/json.hpp>

namespace idem::demo {

namespace json = boost::json;

namespace {

PaymentResult BadRequest(std::string_view detail) {
  json::object error;
  error["error"] = "invalid_payment";
  error["detail"] = detail;
  return {400, json::serialize(error)};
}

}  // namespace

PaymentResult CreatePayment(std::string_view body, uint64_t execution) {
  unsigned char arena[4096];
  json::monotonic_resource resource(arena, sizeof(arena));
  boost::system::error_code ec;
  json::value value = json::parse(body, ec, &resource);
  if (ec) return BadRequest("body is not JSON");
  const json::object* object = value.if_object();
  if (object == nullptr) return BadRequest("body is not a JSON object");
  const json::value* amount = object->if_contains("amount");
  const json::value* currency = object->if_contains("currency");
  if (amount == nullptr || !amount->is_number()) {
    return BadRequest("\"amount\" must be a number");
  }
  if (currency == nullptr || !currency->is_string()) {
    return BadRequest("\"currency\" must be a string");
  }
  std::string out;
  out.reserve(128);
  out += "{\"id\":\"pay_";
  out += std::to_string(execution);
  out += "\",\"amount\":";
  out += json::serialize(*amount);
  out += ",\"currency\":";
  out += json::serialize(*currency);
  out += ",\"status\":\"succeeded\",\"execution\":";
  out += std::to_string(execution);
  out += '}';
  return {201, std::move(out)};
}

}  // namespace idem::demo
