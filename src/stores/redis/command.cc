#include "stores/redis/command.h"

#include <array>
#include <string_view>

namespace idem::redis_internal {

std::unique_ptr<Command> PlainCommand(std::vector<std::string> args, Command::Done done) {
  auto cmd = std::make_unique<Command>();
  cmd->args = std::move(args);
  cmd->done = std::move(done);
  return cmd;
}

bool IsErrorWithPrefix(const redisReply* reply, std::string_view prefix) {
  return reply != nullptr && reply->type == REDIS_REPLY_ERROR &&
         std::string_view(reply->str, reply->len).substr(0, prefix.size()) == prefix;
}

Status ErrorReplyStatus(const redisReply* reply) {
  static constexpr std::array<std::string_view, 14> kTransient = {
      "LOADING", "BUSY", "MASTERDOWN", "CLUSTERDOWN", "READONLY", "NOAUTH",   "WRONGPASS",
      "NOPERM",  "OOM",  "TRYAGAIN",   "MOVED",       "ASK",      "NOSCRIPT", "MISCONF"};
  const std::string message = "redis: " + std::string(reply->str, reply->len);
  for (const std::string_view prefix : kTransient) {
    if (IsErrorWithPrefix(reply, prefix)) return Unavailable(message);
  }
  return Internal(message);
}

}  // namespace idem::redis_internal
