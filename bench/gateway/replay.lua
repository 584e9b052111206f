-- wrk script: POST /payments cycling over a small fixed set of keys that
-- run.sh executed once before the measurement ("bench-replay-<run>-<i>",
-- i = 1..KEYS, same body), so behind idem every request is a replay.
-- Usage: wrk -s replay.lua URL -- RUN_ID KEYS
local body = '{"amount":1000,"currency":"eur"}'
local counter = 0
local keys = {}

function init(args)
  local run_id = args[1] or "0"
  local count = tonumber(args[2] or "16")
  for i = 1, count do
    keys[i] = '"bench-replay-' .. run_id .. '-' .. i .. '"'
  end
end

function request()
  counter = counter + 1
  return wrk.format("POST", "/payments", {
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = keys[(counter % #keys) + 1],
  }, body)
end
