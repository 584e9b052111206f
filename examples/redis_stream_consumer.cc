// redis_stream_consumer: a Redis Streams consumer that applies every
// message exactly once, even when consumers crash.
//
//   redis_stream_consumer --redis HOST:PORT [--stream payments]
//       [--group ledger] [--consumer NAME] [--count 10] [--block-ms 500]
//       [--claim-idle-ms 30000] [--retention-ms 604800000]
//       [--exit-when-idle-ms 0] [--crash-after N]
//
// Entries carry the fields `id` (the producer's message id: a repeated
// publish repeats it), `account` and `cents`. An entry without `id` gets
// one derived from its content with idem::DeriveKey, so identical
// re-publishes still count as one message.
//
// Delivery is at least once: an entry is acknowledged (XACK) only after it
// is applied, so a consumer killed in between leaves it pending, and it is
// delivered again: to this consumer when it restarts (XREADGROUP from 0
// returns its own pending entries) or to another once it has been idle for
// --claim-idle-ms (XAUTOCLAIM). Applying is what makes that safe: one Lua
// script, atomic in Redis, checks and sets the message's inbox key
// (SET NX PX retention) and applies the effect only if the key was new.
// The mark and the effect cannot be separated by a crash, which is the
// Redis form of the PostgreSQL transactional inbox (idem/postgres_inbox.h).
// For effects outside Redis, use idem::Inbox (idem/inbox.h) on any store
// and make the effect itself idempotent.
//
// Keys (one hash tag per stream, so this also runs on Redis Cluster):
//   {STREAM}:inbox:GROUP:ID   the mark, expiring after --retention-ms
//   {STREAM}:applied          hash: message id -> times applied (always 1)
//   {STREAM}:balances         hash: account -> cents
//
// --exit-when-idle-ms N: exit 0 once nothing arrived for N ms and the group
// has no pending entries (batch jobs, tests). --crash-after N: SIGKILL
// itself after applying N messages, before acknowledging the Nth.
// Uses hiredis' blocking API: one connection, one thread.
#include <hiredis/hiredis.h>
#include <signal.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "idem/keys.h"

namespace {

struct Args {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string stream = "payments";
  std::string group = "ledger";
  std::string consumer;
  int count = 10;
  int block_ms = 500;
  int64_t claim_idle_ms = 30'000;
  int64_t retention_ms = int64_t{7} * 86'400'000;
  int64_t exit_when_idle_ms = 0;
  int64_t crash_after = 0;
};

bool ParseArgs(int argc, char** argv, Args& a) {
  if (argc % 2 != 1) return false;
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--redis") {
      const size_t colon = value.rfind(':');
      if (colon == std::string::npos) return false;
      a.host = value.substr(0, colon);
      a.port = std::atoi(value.c_str() + colon + 1);
    } else if (flag == "--stream") {
      a.stream = value;
    } else if (flag == "--group") {
      a.group = value;
    } else if (flag == "--consumer") {
      a.consumer = value;
    } else if (flag == "--count") {
      a.count = std::atoi(value.c_str());
    } else if (flag == "--block-ms") {
      a.block_ms = std::atoi(value.c_str());
    } else if (flag == "--claim-idle-ms") {
      a.claim_idle_ms = std::atoll(value.c_str());
    } else if (flag == "--retention-ms") {
      a.retention_ms = std::atoll(value.c_str());
    } else if (flag == "--exit-when-idle-ms") {
      a.exit_when_idle_ms = std::atoll(value.c_str());
    } else if (flag == "--crash-after") {
      a.crash_after = std::atoll(value.c_str());
    } else {
      return false;
    }
  }
  if (a.consumer.empty()) a.consumer = "consumer-" + std::to_string(getpid());
  return a.count > 0 && a.port > 0;
}

struct ContextFree {
  void operator()(redisContext* c) const { redisFree(c); }
};
struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Context = std::unique_ptr<redisContext, ContextFree>;
using Reply = std::unique_ptr<redisReply, ReplyFree>;

Reply Command(redisContext* c, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  return Reply(static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(args.size()), argv.data(), lengths.data())));
}

std::string Text(const redisReply* r) {
  return r != nullptr && (r->type == REDIS_REPLY_STRING ||
                          r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR)
             ? std::string(r->str, r->len)
             : "";
}

// Marks the message and applies its effect, atomically; 1 if applied now,
// 0 if an earlier delivery did.
constexpr char kApply[] = R"lua(
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 0 end
redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
redis.call('HINCRBY', KEYS[3], ARGV[3], ARGV[4])
return 1
)lua";

struct Entry {
  std::string stream_id;
  std::vector<std::pair<std::string, std::string>> fields;
  bool deleted = false;  // trimmed from the stream while pending

  std::string Get(const std::string& name) const {
    for (const auto& [k, v] : fields) {
      if (k == name) return v;
    }
    return "";
  }
};

// [[id, [f, v, ...]], ...] as XREADGROUP and XAUTOCLAIM return them.
std::vector<Entry> ParseEntries(const redisReply* list) {
  std::vector<Entry> entries;
  if (list == nullptr || list->type != REDIS_REPLY_ARRAY) return entries;
  for (size_t i = 0; i < list->elements; ++i) {
    const redisReply* e = list->element[i];
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 2) continue;
    Entry entry;
    entry.stream_id = Text(e->element[0]);
    const redisReply* fields = e->element[1];
    if (fields->type != REDIS_REPLY_ARRAY) {
      entry.deleted = true;
    } else {
      for (size_t f = 0; f + 1 < fields->elements; f += 2) {
        entry.fields.emplace_back(Text(fields->element[f]), Text(fields->element[f + 1]));
      }
    }
    entries.push_back(std::move(entry));
  }
  return entries;
}

class Consumer {
 public:
  Consumer(Args args, Context redis) : a_(std::move(args)), redis_(std::move(redis)) {}

  bool CreateGroup() {
    auto r =
        Command(redis_.get(), {"XGROUP", "CREATE", a_.stream, a_.group, "0", "MKSTREAM"});
    if (r && (r->type != REDIS_REPLY_ERROR || Text(r.get()).rfind("BUSYGROUP", 0) == 0)) {
      return true;
    }
    std::cerr << "XGROUP CREATE: " << (r ? Text(r.get()) : redis_->errstr) << '\n';
    return false;
  }

  // This consumer's own pending entries: delivered before a restart.
  std::vector<Entry> OwnPending() { return Read("0"); }
  std::vector<Entry> New() { return Read(">"); }

  // Entries other consumers left pending for at least claim_idle_ms.
  std::vector<Entry> Reclaim() {
    std::vector<Entry> all;
    std::string cursor = "0-0";
    for (int page = 0; page < 100; ++page) {
      auto r = Command(redis_.get(), {"XAUTOCLAIM", a_.stream, a_.group, a_.consumer,
                                      std::to_string(a_.claim_idle_ms), cursor, "COUNT",
                                      std::to_string(a_.count)});
      if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2) break;
      cursor = Text(r->element[0]);
      auto entries = ParseEntries(r->element[1]);
      all.insert(all.end(), entries.begin(), entries.end());
      if (cursor == "0-0" || cursor.empty()) break;
    }
    if (!all.empty()) std::cout << "reclaimed " << all.size() << " pending entries\n";
    return all;
  }

  bool Handle(const std::vector<Entry>& entries) {
    for (const Entry& e : entries) {
      if (!e.deleted && !Apply(e)) return false;
      // Acknowledged only now: a crash before this line redelivers.
      Command(redis_.get(), {"XACK", a_.stream, a_.group, e.stream_id});
    }
    return true;
  }

  int64_t PendingCount() {
    auto r = Command(redis_.get(), {"XPENDING", a_.stream, a_.group});
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements == 0) return -1;
    return r->element[0]->integer;
  }

  int64_t applied() const { return applied_; }
  int64_t duplicates() const { return duplicates_; }

 private:
  std::vector<Entry> Read(const std::string& from) {
    auto r = Command(redis_.get(), {"XREADGROUP", "GROUP", a_.group, a_.consumer, "COUNT",
                                    std::to_string(a_.count), "BLOCK",
                                    std::to_string(from == ">" ? a_.block_ms : 1),
                                    "STREAMS", a_.stream, from});
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements == 0) return {};
    const redisReply* stream = r->element[0];
    if (stream->type != REDIS_REPLY_ARRAY || stream->elements < 2) return {};
    return ParseEntries(stream->element[1]);
  }

  std::string MessageId(const Entry& e) {
    std::string id = e.Get("id");
    if (!id.empty()) return id;
    boost::json::object content;
    for (const auto& [k, v] : e.fields) content[k] = v;
    auto derived = idem::DeriveKey("stream/" + a_.stream, "message",
                                   boost::json::serialize(content));
    return derived.ok() ? *derived : e.stream_id;
  }

  bool Apply(const Entry& e) {
    const std::string id = MessageId(e);
    const std::string tag = "{" + a_.stream + "}";
    auto r =
        Command(redis_.get(),
                {"EVAL", kApply, "3", tag + ":inbox:" + a_.group + ":" + id,
                 tag + ":applied", tag + ":balances", std::to_string(a_.retention_ms), id,
                 e.Get("account"), e.Get("cents").empty() ? "0" : e.Get("cents")});
    if (!r || r->type != REDIS_REPLY_INTEGER) {
      std::cerr << "apply " << id << ": " << (r ? Text(r.get()) : redis_->errstr) << '\n';
      return false;
    }
    if (r->integer == 1) {
      ++applied_;
      if (a_.crash_after > 0 && applied_ >= a_.crash_after) {
        std::cout << "crashing after " << applied_ << " applied, before XACK"
                  << std::endl;
        raise(SIGKILL);
      }
    } else {
      ++duplicates_;
    }
    return true;
  }

  Args a_;
  Context redis_;
  int64_t applied_ = 0;
  int64_t duplicates_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!ParseArgs(argc, argv, args)) {
    std::cerr << "usage: redis_stream_consumer --redis HOST:PORT [--stream S] [--group G]"
                 " [--consumer C] [--count N] [--block-ms MS] [--claim-idle-ms MS]"
                 " [--retention-ms MS] [--exit-when-idle-ms MS] [--crash-after N]\n";
    return 2;
  }
  const timeval connect_timeout{5, 0};
  Context redis(redisConnectWithTimeout(args.host.c_str(), args.port, connect_timeout));
  if (!redis || redis->err) {
    std::cerr << "cannot connect to " << args.host << ':' << args.port << ": "
              << (redis ? redis->errstr : "out of memory") << '\n';
    return 2;
  }
  const timeval command_timeout{10, 0};  // above --block-ms
  redisSetTimeout(redis.get(), command_timeout);

  Consumer consumer(args, std::move(redis));
  if (!consumer.CreateGroup()) return 1;
  if (!consumer.Handle(consumer.OwnPending())) return 1;

  using Clock = std::chrono::steady_clock;
  auto last_work = Clock::now();
  auto last_claim = Clock::time_point{};
  for (;;) {
    std::vector<Entry> entries;
    if (Clock::now() - last_claim >=
        std::chrono::milliseconds(args.claim_idle_ms / 2 + 1)) {
      entries = consumer.Reclaim();
      last_claim = Clock::now();
    }
    if (entries.empty()) entries = consumer.New();
    if (!entries.empty()) {
      if (!consumer.Handle(entries)) return 1;
      last_work = Clock::now();
      continue;
    }
    if (args.exit_when_idle_ms > 0 &&
        Clock::now() - last_work >= std::chrono::milliseconds(args.exit_when_idle_ms) &&
        consumer.PendingCount() == 0) {
      break;
    }
  }
  std::cout << "applied " << consumer.applied() << ", duplicates "
            << consumer.duplicates() << '\n';
  return 0;
}
