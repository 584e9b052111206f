#include "stores/redis/resp.h"

#include <charconv>

namespace idem::redis_internal {

RespWriter::RespWriter(size_t arguments, size_t reserve_bytes) {
  out_.reserve(reserve_bytes + 16 * arguments + 16);
  out_.push_back('*');
  AppendDecimal(static_cast<int64_t>(arguments));
  out_.append("\r\n");
}

void RespWriter::AppendDecimal(int64_t value) {
  char digits[24];
  const auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
  out_.append(digits, end);
}

RespWriter& RespWriter::Bulk(std::string_view value) {
  out_.push_back('$');
  AppendDecimal(static_cast<int64_t>(value.size()));
  out_.append("\r\n");
  out_.append(value);
  out_.append("\r\n");
  return *this;
}

RespWriter& RespWriter::Number(int64_t value) {
  char digits[24];
  const auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
  return Bulk(std::string_view(digits, static_cast<size_t>(end - digits)));
}

std::string Resp(std::initializer_list<std::string_view> arguments) {
  size_t bytes = 0;
  for (const std::string_view argument : arguments) bytes += argument.size();
  RespWriter writer(arguments.size(), bytes);
  for (const std::string_view argument : arguments) writer.Bulk(argument);
  return writer.Take();
}

}  // namespace idem::redis_internal
