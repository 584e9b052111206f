#include "stores/redis/resp.h"

namespace idem::redis_internal {

std::string Resp(std::initializer_list<std::string_view> arguments) {
  size_t bytes = 0;
  for (const std::string_view argument : arguments) bytes += argument.size();
  RespWriter writer(arguments.size(), bytes);
  for (const std::string_view argument : arguments) writer.Bulk(argument);
  return writer.Take();
}

}  // namespace idem::redis_internal
