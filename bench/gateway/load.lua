-- wrk script for every HTTP workload of the benchmark: POST /payments with
-- the body read from BODY_FILE and an Idempotency-Key chosen by MODE:
--   unique  a key no other request of the run uses
--   replay  one of KEYS keys ("bench-replay-<run>-<i>") that the bench
--           executed once before the measurement
--   mix     80% new keys, 15% retries of a recent key of this thread
--           (issued 64 to 1023 requests earlier, so normally completed),
--           5% duplicates of the request just sent (normally still in
--           flight on another connection: a concurrent duplicate)
--   nokey   no Idempotency-Key at all (pass-through)
-- Usage: wrk -s load.lua URL -- MODE RUN_ID BODY_FILE [KEYS]
local next_id = 1

function setup(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
end

local mode, prefix, body, keys
local counter = 0
local recent = {}     -- ring of the last 1024 keys this thread sent
local ring = 1024

function init(args)
  mode = args[1] or "unique"
  local run_id = args[2] or tostring(os.time())
  local file = assert(io.open(args[3], "rb"))
  body = file:read("*a")
  file:close()
  prefix = '"bench-' .. run_id .. '-' .. tostring(thread_id) .. '-'
  keys = {}
  for i = 1, tonumber(args[4] or "16") do
    keys[i] = '"bench-replay-' .. run_id .. '-' .. i .. '"'
  end
  math.randomseed(thread_id * 7919 + #run_id)
end

local function fresh()
  counter = counter + 1
  local key = prefix .. counter .. '"'
  recent[counter % ring] = key
  return key
end

local function key_for_request()
  if mode == "unique" then return fresh() end
  if mode == "replay" then
    counter = counter + 1
    return keys[(counter % #keys) + 1]
  end
  if mode == "mix" and counter > ring then
    local r = math.random()
    if r >= 0.95 then return recent[counter % ring] end
    if r >= 0.80 then return recent[(counter - math.random(64, ring - 1)) % ring] end
  end
  return fresh()
end

function request()
  local headers = { ["Content-Type"] = "application/json" }
  if mode ~= "nokey" then headers["Idempotency-Key"] = key_for_request() end
  return wrk.format("POST", "/payments", headers, body)
end

-- One machine-readable line for bench/gateway/run.sh (latencies in µs).
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d %d\n", summary.requests, summary.duration,
                         latency:percentile(50), latency:percentile(99),
                         latency:percentile(99.9), e.status,
                         e.connect + e.read + e.write + e.timeout))
end
