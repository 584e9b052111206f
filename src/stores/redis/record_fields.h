// Converting between a Record and the fields of its Redis hash (layout in
// lua_scripts.cc and docs/stores.md). Pure functions, thread-safe.
#pragma once

#include <hiredis/hiredis.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "idem/record.h"
#include "idem/status.h"

namespace idem::redis_internal {

// The layout version stored in field "v".
inline constexpr std::string_view kLayoutVersion = "1";

// Field "hd": for each header line, in order, varint(name length), name,
// varint(value length), value (varint: unsigned LEB128). Empty: no headers.
std::string EncodeHeaders(
    const std::vector<std::pair<std::string, std::string>>& headers);
Result<std::vector<std::pair<std::string, std::string>>> DecodeHeaders(
    std::string_view bytes);

// Builds the record of `scope_key` from a flat HGETALL-style array
// (field, value, field, value, ...). kDataLoss when a field is malformed or
// the layout version is unknown.
Result<RecordPtr> RecordFromFields(const redisReply* flat, const std::string& scope_key);

}  // namespace idem::redis_internal
