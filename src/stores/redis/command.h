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
#include <utility>
#include <vector>

#include "idem/status.h"
#include "stores/redis/lua_scripts.h"

namespace idem::redis_internal {

struct Command {
  // `reply` is non-null exactly when `status` is ok; it is only valid during
  // the call. A reply may still be a Redis error (REDIS_REPLY_ERROR).
  using Done = std::function<void(const redisReply* reply, Status status)>;

  // Script commands: the key then the script's ARGV, sent as
  // EVALSHA sha 1 key argv... (or EVAL body 1 key argv... once a server said
  // NOSCRIPT). Other commands: the whole argv.
  std::vector<std::string> args;
  const LuaScript* script = nullptr;
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

  void Finish(const redisReply* reply) {
    std::exchange(done, nullptr)(reply, Status::Ok());
  }
  void Fail(Status status) { std::exchange(done, nullptr)(nullptr, std::move(status)); }
};

// A non-script command (argv as given).
std::unique_ptr<Command> PlainCommand(std::vector<std::string> args, Command::Done done);

// The Status for a Redis error reply: kUnavailable for the errors a healthy
// cluster recovers from (LOADING, BUSY, CLUSTERDOWN, READONLY, NOAUTH, OOM,
// TRYAGAIN, redirections, ...), kInternal otherwise.
Status ErrorReplyStatus(const redisReply* reply);

// Whether `reply` is a Redis error starting with `prefix`.
bool IsErrorWithPrefix(const redisReply* reply, std::string_view prefix);

}  // namespace idem::redis_internal
