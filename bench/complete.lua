-- wrk script: POST .../complete, each prepared run exactly once across all threads.
-- usage: wrk -t2 -c8 -d15s -s bench/complete.lua http://127.0.0.1:8810 -- <requests file> <token> <threads>
-- The requests file has one "path<TAB>json body" line per run (bench/throughput.py writes it).
-- Thread i of n takes lines i, i+n, i+2n, ...; when its share runs out it sends /bench/ping and
-- counts it as "exhausted" (the run set was too small for the duration).

local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

function init(args)
  local file, token, n = args[1], args[2], tonumber(args[3])
  mine = {}
  local i = 0
  for line in io.lines(file) do
    if i % n == id then
      local path, body = line:match("^([^\t]+)\t(.*)$")
      table.insert(mine, {path, body})
    end
    i = i + 1
  end
  next_index = 1
  headers = {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}
  ok, conflict, other, exhausted = 0, 0, 0, 0
end

function request()
  local item = mine[next_index]
  if item == nil then
    exhausted_pending = true
    return wrk.format("GET", "/bench/ping")
  end
  next_index = next_index + 1
  return wrk.format("POST", item[1], headers, item[2])
end

function response(status, headers, body)
  if exhausted_pending then
    exhausted = exhausted + 1
  elseif status == 200 then
    ok = ok + 1
  elseif status == 409 then
    conflict = conflict + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local t = {ok = 0, conflict = 0, other = 0, exhausted = 0}
  for _, thread in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + (thread:get(k) or 0) end
  end
  io.write(string.format("COMPLETE ok=%d conflict=%d other=%d exhausted=%d\n", t.ok, t.conflict, t.other, t.exhausted))
end
