// RespWriter: builds a command in the Redis protocol (RESP: an array of bulk
// strings) straight into one buffer.
//
// hiredis would format the command itself (redisAsyncCommandArgv), but its
// formatter goes through sdscatfmt per argument and was the largest single
// cost of the store in the gateway's profile (about 7,600 instructions per
// command); writing the bytes directly costs a few hundred, and the finished
// buffer is handed to hiredis with redisAsyncFormattedCommand. Not
// thread-safe; a plain value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace idem::redis_internal {

class RespWriter {
 public:
  // `arguments`: how many Bulk/Number calls follow.
  RespWriter(size_t arguments, size_t reserve_bytes);

  RespWriter& Bulk(std::string_view value);
  // A decimal integer argument.
  RespWriter& Number(int64_t value);

  size_t size() const { return out_.size(); }
  std::string Take() { return std::move(out_); }

 private:
  void AppendDecimal(int64_t value);

  std::string out_;
};

// A whole command from its arguments.
std::string Resp(std::initializer_list<std::string_view> arguments);

}  // namespace idem::redis_internal
