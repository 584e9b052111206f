// RespWriter: builds a command in the Redis protocol (RESP: an array of bulk
// strings) straight into one buffer.
//
// hiredis would format the command itself (redisAsyncCommandArgv), but its
// formatter goes through sdscatfmt per argument and was the largest single
// cost of the store in the gateway's profile (about 7,600 instructions per
// command); the finished buffer is handed to hiredis with
// redisAsyncFormattedCommand instead. The writer sizes its buffer once from
// the caller's estimate and then writes through a cursor (inline, since it
// runs for every argument of every command). Not thread-safe; a plain value.
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <string_view>

namespace idem::redis_internal {

class RespWriter {
 public:
  // `arguments`: how many Bulk/Number calls follow; `payload_bytes`: about
  // how many bytes they hold (more is reserved as needed).
  RespWriter(size_t arguments, size_t payload_bytes) {
    buffer_.resize(payload_bytes + kPerArgument * arguments + kPerArgument);
    cursor_ = buffer_.data();
    Header('*', arguments);
  }

  RespWriter& Bulk(std::string_view value) {
    Reserve(value.size() + kPerArgument);
    Header('$', value.size());
    std::memcpy(cursor_, value.data(), value.size());
    cursor_ += value.size();
    *cursor_++ = '\r';
    *cursor_++ = '\n';
    return *this;
  }

  // A decimal integer argument.
  RespWriter& Number(int64_t value) {
    char digits[24];
    const char* end = std::to_chars(digits, digits + sizeof digits, value).ptr;
    return Bulk(std::string_view(digits, static_cast<size_t>(end - digits)));
  }

  size_t size() const { return static_cast<size_t>(cursor_ - buffer_.data()); }

  std::string Take() {
    buffer_.resize(size());
    cursor_ = nullptr;
    return std::move(buffer_);
  }

 private:
  // "$" or "*", up to 20 digits, "\r\n" and a value's "\r\n".
  static constexpr size_t kPerArgument = 25;

  void Header(char type, size_t count) {
    *cursor_++ = type;
    cursor_ = std::to_chars(cursor_, cursor_ + 20, count).ptr;
    *cursor_++ = '\r';
    *cursor_++ = '\n';
  }

  void Reserve(size_t bytes) {
    const size_t used = size();
    if (buffer_.size() - used >= bytes) return;
    buffer_.resize(2 * (used + bytes));
    cursor_ = buffer_.data() + used;
  }

  std::string buffer_;
  char* cursor_ = nullptr;
};

// A whole command from its arguments.
std::string Resp(std::initializer_list<std::string_view> arguments);

}  // namespace idem::redis_internal
