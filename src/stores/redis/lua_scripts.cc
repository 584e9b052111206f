// Record fields (one Redis hash per scope key, key = prefix + scope key):
//   v  layout version ("1")       st  state: "1" in flight, "2" completed
//   fp fingerprint                ow  owner token
//   fe fence                      le  lease expiry (ms)
//   rp recovery phase             rs  recovery state
//   sc response status            hd  response headers (see record_fields.h)
//   bd response body              cr  created at (ms)
//   ex expires at (ms)            w   present while someone waits for it
// Every absolute time, and every PEXPIRE time-to-live (ex - now, at least
// 1 ms), is computed by the caller and passed in as text: the scripts only
// compare numbers (and add 1 to a fence). Measured on Redis 7.0 with
// callgrind, a Lua number handed to redis.call costs thousands of
// instructions to format, as does a table returned instead of an integer, so
// the common answers are integers.
#include "stores/redis/lua_scripts.h"

#include <openssl/sha.h>

#include <string>

namespace idem::redis_internal {
namespace {

// Shared by every script: the key, the clock, the channel (spliced in as
// CHANNEL) and dropping a record, waking waiters when one is registered.
constexpr std::string_view kPrelude = R"lua(
local key, now, chan = KEYS[1], tonumber(ARGV[1]), CHANNEL
local function drop(waiting)
  if waiting then redis.call('PUBLISH', chan, 'w' .. key) end
  redis.call('DEL', key)
end
local function owned(owner)
  local h = redis.call('HMGET', key, 'st', 'ow', 'ex', 'w', 'rp')
  if not h[1] then return 1, h end
  if now >= (tonumber(h[3]) or 0) then
    drop(h[4])
    return 1, h
  end
  if h[2] ~= owner then return 2, h end
  if h[1] ~= '1' then return 3, h end
  return 0, h
end
)lua";

// ARGV: now, fingerprint, owner, lease_expires_at, expires_at, ttl.
// An expired record is dropped and the key starts afresh.
constexpr std::string_view kBegin = R"lua(
local fp, owner, lease_at, exp_at = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local flat = redis.call('HGETALL', key)
if #flat > 0 then
  local r = {}
  for i = 1, #flat, 2 do r[flat[i]] = flat[i + 1] end
  if now < (tonumber(r.ex) or 0) then
    if (r.fp or '') ~= fp then return {4, flat} end
    if r.st == '2' then return {3, flat} end
    if now < (tonumber(r.le) or 0) then return {2, flat} end
    local fence = string.format('%d', (tonumber(r.fe) or 0) + 1)
    redis.call('HSET', key, 'ow', owner, 'fe', fence, 'le', lease_at, 'ex', exp_at)
    redis.call('PEXPIRE', key, ARGV[6])
    return {1, redis.call('HGETALL', key)}
  end
  drop(r.w)
end
redis.call('HSET', key, 'v', '1', 'st', '1', 'fp', fp, 'ow', owner, 'fe', '1',
           'le', lease_at, 'cr', ARGV[1], 'ex', exp_at)
redis.call('PEXPIRE', key, ARGV[6])
return 1
)lua";

// ARGV: now, owner, status, headers, body, expires_at, ttl.
constexpr std::string_view kComplete = R"lua(
local check, h = owned(ARGV[2])
if check ~= 0 then return check end
redis.call('HSET', key, 'st', '2', 'sc', ARGV[3], 'hd', ARGV[4], 'bd', ARGV[5],
           'ex', ARGV[6])
if h[4] or h[5] then redis.call('HDEL', key, 'rp', 'rs', 'w') end
redis.call('PEXPIRE', key, ARGV[7])
if h[4] then redis.call('PUBLISH', chan, 'w' .. key) end
return 0
)lua";

// ARGV: now, owner.
constexpr std::string_view kRelease = R"lua(
local check, h = owned(ARGV[2])
if check ~= 0 then return check end
drop(h[4])
return 0
)lua";

// ARGV: now, owner, lease_expires_at, ttl until lease_expires_at.
constexpr std::string_view kExtend = R"lua(
local check, h = owned(ARGV[2])
if check ~= 0 then return check end
if tonumber(ARGV[3]) > tonumber(h[3]) then
  redis.call('HSET', key, 'le', ARGV[3], 'ex', ARGV[3])
  redis.call('PEXPIRE', key, ARGV[4])
else
  redis.call('HSET', key, 'le', ARGV[3])
end
return 0
)lua";

// ARGV: now, owner, phase, state.
constexpr std::string_view kCheckpoint = R"lua(
local check = owned(ARGV[2])
if check ~= 0 then return check end
redis.call('HSET', key, 'rp', ARGV[3], 'rs', ARGV[4])
return 0
)lua";

// ARGV: now. 0 deleted, 1 absent (or expired, and dropped). Every call
// publishes the deletion, so each gateway drops its cached copy (even of
// a record Redis no longer has: `idem keys delete` also clears caches
// after a record was removed by hand).
constexpr std::string_view kDelete = R"lua(
local h = redis.call('HMGET', key, 'ex', 'w')
redis.call('DEL', key)
redis.call('PUBLISH', chan, 'd' .. key)
if not h[1] or now >= (tonumber(h[1]) or 0) then return 1 end
return 0
)lua";

// ARGV: now. Registers a waiter (field w) on an in-flight record so that
// the script ending the flight publishes; answers 0 gone, 2 in flight or
// {3, fields...} completed.
constexpr std::string_view kWatch = R"lua(
local flat = redis.call('HGETALL', key)
if #flat == 0 then return 0 end
local r = {}
for i = 1, #flat, 2 do r[flat[i]] = flat[i + 1] end
if now >= (tonumber(r.ex) or 0) then
  drop(r.w)
  return 0
end
if r.st == '2' then return {3, flat} end
redis.call('HSET', key, 'w', '1')
return 2
)lua";

// ARGV: now. 1 when the record had expired and was dropped; keys that are
// not idem records (not a hash with a field ex) are left alone.
constexpr std::string_view kSweep = R"lua(
if redis.call('TYPE', key).ok ~= 'hash' then return 0 end
local h = redis.call('HMGET', key, 'ex', 'w')
if not h[1] or now < (tonumber(h[1]) or 0) then return 0 end
drop(h[2])
return 1
)lua";

std::string Sha1Hex(std::string_view text) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (const unsigned char b : digest) {
    hex.push_back(kHex[b >> 4]);
    hex.push_back(kHex[b & 0x0F]);
  }
  return hex;
}

// A Lua string literal holding any bytes: all but a few plain characters
// become three-digit "\ddd" escapes (always three, so a digit after an
// escape cannot extend it).
std::string LuaLiteral(std::string_view bytes) {
  std::string out = "'";
  for (const char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    const bool plain = (byte >= 'a' && byte <= 'z') || (byte >= 'A' && byte <= 'Z') ||
                       (byte >= '0' && byte <= '9') || c == ':' || c == '-' || c == '_' ||
                       c == '.';
    if (plain) {
      out.push_back(c);
    } else {
      const char escape[] = {'\\', static_cast<char>('0' + byte / 100),
                             static_cast<char>('0' + byte / 10 % 10),
                             static_cast<char>('0' + byte % 10)};
      out.append(escape, sizeof escape);
    }
  }
  out.push_back('\'');
  return out;
}

LuaScript Make(std::string_view name, std::string_view body, std::string_view channel) {
  std::string prelude(kPrelude);
  constexpr std::string_view kMark = "CHANNEL";
  prelude.replace(prelude.find(kMark), kMark.size(), LuaLiteral(channel));
  LuaScript script;
  script.name = name;
  script.body = prelude + std::string(body);
  script.sha1 = Sha1Hex(script.body);
  return script;
}

}  // namespace

ScriptSet::ScriptSet(std::string_view channel)
    : scripts_{
          Make("begin", kBegin, channel),           Make("complete", kComplete, channel),
          Make("release", kRelease, channel),       Make("extend", kExtend, channel),
          Make("checkpoint", kCheckpoint, channel), Make("delete", kDelete, channel),
          Make("watch", kWatch, channel),           Make("sweep", kSweep, channel)} {}

}  // namespace idem::redis_internal
