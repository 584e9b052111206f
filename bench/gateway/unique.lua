-- wrk script: POST /payments, every request with an Idempotency-Key no other
-- request of the run uses ("bench-<run>-<thread>-<counter>"), so the gateway
-- takes a lease, forwards, stores and answers each one.
-- Usage: wrk -s unique.lua URL -- RUN_ID
local body = '{"amount":1000,"currency":"eur"}'
local next_id = 1
local counter = 0

function setup(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
end

function init(args)
  run_id = args[1] or tostring(os.time())
  prefix = '"bench-' .. run_id .. '-' .. tostring(thread_id) .. '-'
end

function request()
  counter = counter + 1
  return wrk.format("POST", "/payments", {
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = prefix .. counter .. '"',
  }, body)
end
