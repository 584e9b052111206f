// Command: one request to Redis and the callback that receives its answer.
//
// A Command is owned by exactly one place at a time (a std::unique_ptr, or
// hiredis while the request is on the wire) and its callback runs exactly
// once: with the reply, with the error that stopped it, or — if a Command is
// ever destroyed unanswered — with kUnavailable.
#pragma once

#include <hiredis/hiredis.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "idem/status.h"
#include "stores/redis/lua_scripts.h"
#include "stores/redis/resp.h"

namespace idem::redis_internal {

struct Command {
  // `reply` is non-null exactly when `status` is ok; it is only valid during
  // the call. A reply may still be a Redis error (REDIS_REPLY_ERROR).
  using Done = std::function<void(const redisReply* reply, Status status)>;

  // The whole command in RESP, as it goes on the wire.
  std::string wire;

  // Script commands: `wire` is EVALSHA sha 1 key argv... (or EVAL body 1
  // key argv... once a server said NOSCRIPT); its first `script_head`
  // bytes are the array header, the verb and the sha (or body), which
  // UseEval swaps.
  const LuaScript* script = nullptr;
  size_t script_head = 0;
  size_t script_arguments = 0;  // the array's length
  bool eval = false;

  // Keyed commands follow MOVED/ASK to the master of `slot`; others are sent
  // to one named node (SCAN, PING, CLUSTER SLOTS) and take its answer.
  bool keyed = false;
  uint16_t slot = 0;
  bool asking = false;  // send ASKING first (after an ASK redirection)
  int redirects = 0;

  Done done;

  Command() = default;
  Command(const Command&) = delete;
  Command& operator=(const Command&) = delete;
  ~Command() {
    if (done) Fail(Unavailable("the redis store is closed"));
  }

  // Script commands: EVAL (the server does not know the script) or EVALSHA.
  void UseEval(bool use_eval);

  void Finish(const redisReply* reply) {
    std::exchange(done, nullptr)(reply, Status::Ok());
  }
  void Fail(Status status) { std::exchange(done, nullptr)(nullptr, std::move(status)); }
};

// Builds a script command: EVALSHA <sha> 1 <key>, then exactly `arguments`
// calls of Arg (ARGV[1], ARGV[2], ...). `cluster`: compute the key's slot
// (a CRC16 of the key, needless for a single server).
class ScriptCall {
 public:
  ScriptCall(const LuaScript& script, std::string_view key, size_t arguments,
             bool cluster, size_t reserve_bytes = 0);

  ScriptCall& Arg(std::string_view value) {
    writer_.Bulk(value);
    return *this;
  }
  ScriptCall& Arg(int64_t value) {
    writer_.Number(value);
    return *this;
  }

  std::unique_ptr<Command> Finish(Command::Done done);

 private:
  const LuaScript& script_;
  const size_t arguments_;
  const uint16_t slot_;
  RespWriter writer_;
  size_t head_ = 0;
};

// A non-script command.
std::unique_ptr<Command> PlainCommand(std::initializer_list<std::string_view> args,
                                      Command::Done done);

// The Status for a Redis error reply: kUnavailable for the errors a healthy
// cluster recovers from (LOADING, BUSY, CLUSTERDOWN, READONLY, NOAUTH, OOM,
// TRYAGAIN, redirections, ...), kInternal otherwise.
Status ErrorReplyStatus(const redisReply* reply);

// Whether `reply` is a Redis error starting with `prefix`.
bool IsErrorWithPrefix(const redisReply* reply, std::string_view prefix);

}  // namespace idem::redis_internal
