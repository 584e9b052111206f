// The demo "payments" service: turns a POST /payments JSON body into the
// payment the service created.
//
// Pure function; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace idem::demo {

struct PaymentResult {
  unsigned status = 201;  // 201, or 400 for a body that is not a payment
  std::string body;       // application/json
};

// `body` must be a JSON object with a numeric "amount" and a string
// "currency"; `execution` numbers the payment ("pay_<execution>").
PaymentResult CreatePayment(std::string_view body, uint64_t execution);

}  // namespace idem::demo
