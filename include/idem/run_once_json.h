// The run-once codec for Boost.JSON values (see run_once.h).
//
// A value is stored as its serialized JSON text, so `idem keys get` shows
// it as it is, and decoded with boost::json::parse. Link Boost::json.
// Thread-safe.
#pragma once

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <string>
#include <string_view>

#include "idem/run_once.h"

namespace idem {

template <>
struct Codec<boost::json::value> {
  static std::string Encode(const boost::json::value& value) {
    return boost::json::serialize(value);
  }
  static Result<boost::json::value> Decode(std::string_view bytes) {
    boost::json::error_code ec;
    boost::json::value value = boost::json::parse(bytes, ec);
    if (ec) return DataLoss("stored JSON result does not parse: " + ec.message());
    return value;
  }
};

}  // namespace idem
