// Record fields (one Redis hash per scope key, key = prefix + scope key):
//   v  layout version ("1")       st  state: "1" in flight, "2" completed
//   fp fingerprint                ow  owner token
//   fe fence                      le  lease expiry (ms)
//   rp recovery phase             rs  recovery state
//   sc response status            hd  response headers (see record_fields.h)
//   bd response body              cr  created at (ms)
//   ex expires at (ms)            w   present while someone waits for it
// Every absolute time is computed by the caller and passed in, so the
// scripts never do arithmetic beyond the fence increment and the PEXPIRE
// (ex - now, at least 1 ms) that backs the timestamps up.
#include "stores/redis/lua_scripts.h"

#include <openssl/sha.h>

#include <array>

namespace idem::redis_internal {
namespace {

// Shared by every script: the key, the clock, and dropping a record (waking
// waiters when one is registered) once its timestamps say it has expired.
constexpr std::string_view kPrelude = R"lua(
local key, now, chan = KEYS[1], tonumber(ARGV[1]), ARGV[2]
local function drop(waiting)
  if waiting then redis.call('PUBLISH', chan, key) end
  redis.call('DEL', key)
end
local function load()
  local flat = redis.call('HGETALL', key)
  if #flat == 0 then return nil, flat end
  local r = {}
  for i = 1, #flat, 2 do r[flat[i]] = flat[i + 1] end
  if now >= (tonumber(r.ex) or 0) then
    drop(r.w)
    return nil, {}
  end
  return r, flat
end
local function owned(owner)
  local h = redis.call('HMGET', key, 'st', 'ow', 'ex', 'w')
  if not h[1] then return 1, h end
  if now >= (tonumber(h[3]) or 0) then
    drop(h[4])
    return 1, h
  end
  if h[2] ~= owner then return 2, h end
  if h[1] ~= '1' then return 3, h end
  return 0, h
end
local function expire_at(at)
  redis.call('PEXPIRE', key, math.max(1, tonumber(at) - now))
end
)lua";

// ARGV: now, chan, fingerprint, owner, lease_expires_at, expires_at.
constexpr std::string_view kBegin = R"lua(
local fp, owner, lease_at, exp_at = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local r, flat = load()
if not r then
  redis.call('HSET', key, 'v', '1', 'st', '1', 'fp', fp, 'ow', owner, 'fe', '1',
             'le', lease_at, 'cr', ARGV[1], 'ex', exp_at)
  expire_at(exp_at)
  return {1}
end
if (r.fp or '') ~= fp then return {4, flat} end
if r.st == '2' then return {3, flat} end
if now < (tonumber(r.le) or 0) then return {2, flat} end
local fence = string.format('%d', (tonumber(r.fe) or 0) + 1)
redis.call('HSET', key, 'ow', owner, 'fe', fence, 'le', lease_at, 'ex', exp_at)
expire_at(exp_at)
return {1, redis.call('HGETALL', key)}
)lua";

// ARGV: now, chan, owner, status, headers, body, expires_at.
constexpr std::string_view kComplete = R"lua(
local check, h = owned(ARGV[3])
if check ~= 0 then return check end
redis.call('HSET', key, 'st', '2', 'sc', ARGV[4], 'hd', ARGV[5], 'bd', ARGV[6],
           'ex', ARGV[7])
redis.call('HDEL', key, 'rp', 'rs', 'w')
expire_at(ARGV[7])
if h[4] then redis.call('PUBLISH', chan, key) end
return 0
)lua";

// ARGV: now, chan, owner.
constexpr std::string_view kRelease = R"lua(
local check, h = owned(ARGV[3])
if check ~= 0 then return check end
drop(h[4])
return 0
)lua";

// ARGV: now, chan, owner, lease_expires_at.
constexpr std::string_view kExtend = R"lua(
local check, h = owned(ARGV[3])
if check ~= 0 then return check end
redis.call('HSET', key, 'le', ARGV[4])
if tonumber(ARGV[4]) > tonumber(h[3]) then
  redis.call('HSET', key, 'ex', ARGV[4])
  expire_at(ARGV[4])
end
return 0
)lua";

// ARGV: now, chan, owner, phase, state.
constexpr std::string_view kCheckpoint = R"lua(
local check = owned(ARGV[3])
if check ~= 0 then return check end
redis.call('HSET', key, 'rp', ARGV[4], 'rs', ARGV[5])
return 0
)lua";

// ARGV: now, chan. Read-only: an expired record reads as absent.
constexpr std::string_view kGet = R"lua(
local flat = redis.call('HGETALL', key)
if #flat == 0 then return flat end
for i = 1, #flat, 2 do
  if flat[i] == 'ex' and now >= (tonumber(flat[i + 1]) or 0) then return {} end
end
return flat
)lua";

// ARGV: now, chan. 0 deleted, 1 absent (or expired, and dropped).
constexpr std::string_view kDelete = R"lua(
local h = redis.call('HMGET', key, 'ex', 'w')
if not h[1] then return 1 end
drop(h[2])
if now >= (tonumber(h[1]) or 0) then return 1 end
return 0
)lua";

// ARGV: now, chan. Registers a waiter (field w) on an in-flight record so
// that the script ending the flight publishes; answers {0} gone,
// {2} in flight or {3, fields...} completed.
constexpr std::string_view kWatch = R"lua(
local r, flat = load()
if not r then return {0} end
if r.st == '2' then return {3, flat} end
redis.call('HSET', key, 'w', '1')
return {2}
)lua";

// ARGV: now, chan. 1 when the record had expired and was dropped; keys
// that are not idem records (no field ex) are left alone.
constexpr std::string_view kSweep = R"lua(
if redis.call('TYPE', key).ok ~= 'hash' then return 0 end
local h = redis.call('HMGET', key, 'ex', 'w')
if not h[1] or now < (tonumber(h[1]) or 0) then return 0 end
drop(h[2])
return 1
)lua";

std::string Sha1Hex(std::string_view text) {
  std::array<unsigned char, SHA_DIGEST_LENGTH> digest{};
  SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest.data());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (const unsigned char b : digest) {
    hex.push_back(kHex[b >> 4]);
    hex.push_back(kHex[b & 0x0F]);
  }
  return hex;
}

LuaScript Make(std::string_view name, std::string_view body) {
  LuaScript script;
  script.name = name;
  script.body = std::string(kPrelude) + std::string(body);
  script.sha1 = Sha1Hex(script.body);
  return script;
}

}  // namespace

const LuaScript& Script(ScriptId id) {
  static const std::array<LuaScript, 9> kScripts = {
      Make("begin", kBegin),   Make("complete", kComplete),     Make("release", kRelease),
      Make("extend", kExtend), Make("checkpoint", kCheckpoint), Make("get", kGet),
      Make("delete", kDelete), Make("watch", kWatch),           Make("sweep", kSweep),
  };
  return kScripts[static_cast<size_t>(id)];
}

}  // namespace idem::redis_internal
