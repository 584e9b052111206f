#include "stores/redis/command.h"

#include <array>
#include <string_view>

#include "stores/redis/cluster_slots.h"

namespace idem::redis_internal {
namespace {

// "*<n>\r\n" then the verb and the script's sha (EVALSHA) or body (EVAL).
std::string ScriptHead(const LuaScript& script, size_t arguments, bool eval) {
  const std::string& code = eval ? script.body : script.sha1;
  RespWriter head(arguments, code.size() + 16);
  head.Bulk(eval ? "EVAL" : "EVALSHA").Bulk(code);
  return head.Take();
}

}  // namespace

void Command::UseEval(bool use_eval) {
  if (script == nullptr || eval == use_eval) return;
  std::string head = ScriptHead(*script, script_arguments, use_eval);
  wire.replace(0, script_head, head);
  script_head = head.size();
  eval = use_eval;
}

ScriptCall::ScriptCall(const LuaScript& script, std::string_view key, size_t arguments,
                       bool cluster, size_t reserve_bytes)
    : script_(script),
      arguments_(4 + arguments),
      slot_(cluster ? KeySlot(key) : 0),
      writer_(arguments_, script.sha1.size() + key.size() + reserve_bytes) {
  writer_.Bulk("EVALSHA").Bulk(script.sha1);
  head_ = writer_.size();
  writer_.Bulk("1").Bulk(key);
}

std::unique_ptr<Command> ScriptCall::Finish(Command::Done done) {
  auto cmd = std::make_unique<Command>();
  cmd->wire = writer_.Take();
  cmd->script = &script_;
  cmd->script_head = head_;
  cmd->script_arguments = arguments_;
  cmd->keyed = true;
  cmd->slot = slot_;
  cmd->done = std::move(done);
  return cmd;
}

std::unique_ptr<Command> PlainCommand(std::initializer_list<std::string_view> args,
                                      Command::Done done) {
  auto cmd = std::make_unique<Command>();
  cmd->wire = Resp(args);
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
