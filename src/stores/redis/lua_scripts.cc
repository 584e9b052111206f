// The layout (docs/stores.md, "Key layout"): an in-flight record is a
// string, the lease of lease_blob.h, which Begin creates with a plain
// SET NX GET PX when the key is new; a completed record is a hash:
//   v  layout version ("1")       st  state: "2" completed
//   fp fingerprint                ow  owner token
//   fe fence                      le  lease expiry (ms)
//   sc response status            hd  response headers (see record_fields.h)
//   bd response body              cr  created at (ms)
//   ex expires at (ms)
// (Stores before the lease string kept in-flight records as hashes too, with
// st "1", rp/rs for the recovery point and w for a waiter; the scripts still
// understand those.) Every absolute time, and every PEXPIRE time-to-live
// (ex - now, at least 1 ms), is computed by the caller and passed in as
// text: the scripts only compare numbers (and add 1 to a fence). Measured
// on Redis 7.0 with callgrind, a Lua number handed to redis.call costs
// thousands of instructions to format, as does a table returned instead of
// an integer, so the common answers are integers.
#include "stores/redis/lua_scripts.h"

#include <openssl/sha.h>

#include <string>

namespace idem::redis_internal {
namespace {

// Shared by every script: the key, the clock, the channel (spliced in as
// CHANNEL), reading the record and dropping it (waking waiters when one is
// registered).
constexpr std::string_view kPrelude = R"lua(
local key, now, chan = KEYS[1], tonumber(ARGV[1]), CHANNEL
local function drop(waiting)
  if waiting then redis.call('PUBLISH', chan, 'w' .. key) end
  redis.call('DEL', key)
end
-- What the key holds: nil, 'L' and the lease string, or 'H' (a hash).
local function fetch()
  local v = redis.pcall('GET', key)
  if type(v) == 'table' then return 'H' end
  if v then return 'L', v end
  return nil
end
-- A lease's fields up to its fingerprint; pos: where the recovery point
-- starts. nil when the string is not a lease.
local function lease(v)
  local ok, tag, w, ex, le, cr, fe, ow, fp, pos =
    pcall(struct.unpack, '>c2c1i8i8i8i8i4c0i4c0', v)
  if not ok or tag ~= 'L1' then return nil end
  return {w = w == '1', ex = ex, le = le, cr = cr, fe = fe, ow = ow, fp = fp, pos = pos}
end
local function fields(flat)
  local r = {}
  for i = 1, #flat, 2 do r[flat[i]] = flat[i + 1] end
  return r
end
-- 0, the lease and its string when `owner` holds the live in-flight
-- record; else 1 gone (absent, or expired and dropped), 2 another owner,
-- 3 completed, 4 not a record of this layout.
local function owned(owner)
  local kind, v = fetch()
  if not kind then return 1 end
  if kind == 'H' then
    local h = redis.call('HMGET', key, 'st', 'ow', 'ex', 'w')
    if not h[3] then return 4 end
    if now >= (tonumber(h[3]) or 0) then
      drop(h[4])
      return 1
    end
    if h[2] ~= owner then return 2 end
    if h[1] == '2' then return 3 end
    return 4
  end
  local l = lease(v)
  if not l then return 4 end
  if now >= l.ex then
    drop(l.w)
    return 1
  end
  if l.ow ~= owner then return 2 end
  return 0, l, v
end
-- A lease string from its parts (a takeover).
local function pack_lease(w, ex, le, cr, fe, owner, rest)
  return 'L1' .. w .. struct.pack('>i8i8i8i8i4', ex, le, cr, fe, #owner) .. owner .. rest
end
)lua";

// ARGV: now, fingerprint, owner, lease_expires_at, expires_at, ttl, and the
// lease a new key gets. The store runs it when SET NX GET found a record it
// cannot answer from alone (expired, a lapsed lease to take over, not a
// lease), and for every Begin when it keeps no cache. Answers 1 (the new
// lease is in place) or {outcome, lease string or hash fields}.
constexpr std::string_view kBegin = R"lua(
local fp, owner = ARGV[2], ARGV[3]
local lease_at, exp_at = tonumber(ARGV[4]), tonumber(ARGV[5])
local kind, v = fetch()
if kind == 'H' then
  local flat = redis.call('HGETALL', key)
  local r = fields(flat)
  if now < (tonumber(r.ex) or 0) then
    if (r.fp or '') ~= fp then return {4, flat} end
    if r.st == '2' then return {3, flat} end
    if now < (tonumber(r.le) or 0) then return {2, flat} end
    local rp, rs = r.rp or '', r.rs or ''
    local taken = pack_lease(r.w and '1' or '0', exp_at, lease_at, tonumber(r.cr) or now,
                             (tonumber(r.fe) or 0) + 1, owner,
                             struct.pack('>i4', #fp) .. fp .. struct.pack('>i4', #rp) .. rp ..
                             struct.pack('>i4', #rs) .. rs)
    redis.call('DEL', key)
    redis.call('SET', key, taken, 'PX', ARGV[6])
    return {1, taken}
  end
  drop(r.w)
elseif kind == 'L' then
  local l = lease(v)
  if l and now < l.ex then
    if l.fp ~= fp then return {4, v} end
    if now < l.le then return {2, v} end
    local taken = pack_lease(l.w and '1' or '0', exp_at, lease_at, l.cr, l.fe + 1, owner,
                             string.sub(v, 40 + #l.ow))
    redis.call('SET', key, taken, 'PX', ARGV[6])
    return {1, taken}
  end
  drop(l and l.w)
end
redis.call('SET', key, ARGV[7], 'PX', ARGV[6])
return 1
)lua";

// ARGV: now, owner, status, headers, body, expires_at, ttl. The lease
// becomes a completed hash.
constexpr std::string_view kComplete = R"lua(
local check, l = owned(ARGV[2])
if check ~= 0 then return check end
redis.call('DEL', key)
redis.call('HSET', key, 'v', '1', 'st', '2', 'fp', l.fp, 'ow', l.ow,
           'fe', string.format('%d', l.fe), 'le', string.format('%d', l.le),
           'cr', string.format('%d', l.cr), 'ex', ARGV[6], 'sc', ARGV[3], 'hd', ARGV[4],
           'bd', ARGV[5])
redis.call('PEXPIRE', key, ARGV[7])
if l.w then redis.call('PUBLISH', chan, 'w' .. key) end
return 0
)lua";

// ARGV: now, owner.
constexpr std::string_view kRelease = R"lua(
local check, l = owned(ARGV[2])
if check ~= 0 then return check end
drop(l.w)
return 0
)lua";

// ARGV: now, owner, lease_expires_at, ttl until lease_expires_at. The
// record's expiry never moves back.
constexpr std::string_view kExtend = R"lua(
local check, l, v = owned(ARGV[2])
if check ~= 0 then return check end
local lease_at = tonumber(ARGV[3])
redis.call('SET', key,
           string.sub(v, 1, 3) .. struct.pack('>i8i8', math.max(l.ex, lease_at), lease_at) ..
           string.sub(v, 20), 'KEEPTTL')
if lease_at > l.ex then redis.call('PEXPIRE', key, ARGV[4]) end
return 0
)lua";

// ARGV: now, owner, recovery point (as the lease encodes it).
constexpr std::string_view kCheckpoint = R"lua(
local check, l, v = owned(ARGV[2])
if check ~= 0 then return check end
redis.call('SET', key, string.sub(v, 1, l.pos - 1) .. ARGV[3], 'KEEPTTL')
return 0
)lua";

// ARGV: now. Read only: 0 absent, {1, hash fields} or {2, lease string};
// the client judges expiry.
constexpr std::string_view kGet = R"lua(
local kind, v = fetch()
if kind == 'H' then return {1, redis.call('HGETALL', key)} end
if kind == 'L' then return {2, v} end
return 0
)lua";

// ARGV: now. 0 deleted, 1 absent (or expired, and dropped). Every call
// publishes the deletion, so each gateway drops its cached copy (even of
// a record Redis no longer has: `idem keys delete` also clears caches
// after a record was removed by hand), and waiters look again.
constexpr std::string_view kDelete = R"lua(
local kind, v = fetch()
local live = false
if kind == 'H' then
  live = now < (tonumber(redis.call('HGET', key, 'ex')) or 0)
elseif kind == 'L' then
  local l = lease(v)
  live = l ~= nil and now < l.ex
end
redis.call('DEL', key)
redis.call('PUBLISH', chan, 'd' .. key)
if live then return 0 end
return 1
)lua";

// ARGV: now. Registers a waiter on an in-flight record (its watched flag)
// so that the script ending the flight publishes; answers 0 gone,
// 2 in flight or {3, hash fields} completed. A string that is not a lease
// counts as gone, as it does for Begin.
constexpr std::string_view kWatch = R"lua(
local kind, v = fetch()
if kind == 'H' then
  local flat = redis.call('HGETALL', key)
  local r = fields(flat)
  if now >= (tonumber(r.ex) or 0) then
    drop(r.w)
    return 0
  end
  if r.st == '2' then return {3, flat} end
  redis.call('HSET', key, 'w', '1')
  return 2
end
if not kind then return 0 end
local l = lease(v)
if not l or now >= l.ex then
  drop(l and l.w)
  return 0
end
if not l.w then redis.call('SETRANGE', key, 2, '1') end
return 2
)lua";

// ARGV: now. 1 when the record had expired and was dropped; keys that are
// not idem records (neither a hash with a field ex nor a lease) are left
// alone.
constexpr std::string_view kSweep = R"lua(
local t = redis.call('TYPE', key).ok
local ex, w
if t == 'hash' then
  local h = redis.call('HMGET', key, 'ex', 'w')
  ex, w = tonumber(h[1]), h[2]
elseif t == 'string' then
  local l = lease(redis.call('GET', key))
  if l then ex, w = l.ex, l.w end
end
if not ex or now < ex then return 0 end
drop(w)
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
    : scripts_{Make("begin", kBegin, channel),
               Make("complete", kComplete, channel),
               Make("release", kRelease, channel),
               Make("extend", kExtend, channel),
               Make("checkpoint", kCheckpoint, channel),
               Make("get", kGet, channel),
               Make("delete", kDelete, channel),
               Make("watch", kWatch, channel),
               Make("sweep", kSweep, channel)} {}

}  // namespace idem::redis_internal
