-- POST /files/upload (JSON) with a fresh path each time: wrk -s intents.lua URL -- TOKEN RUN_ID
local threads = 0
function setup(thread) threads = threads + 1; thread:set("tid", threads) end

function init(args)
  headers = {["Authorization"] = "Bearer " .. args[1], ["Content-Type"] = "application/json"}
  prefix = args[2] .. "-" .. tostring(tid)
  counter = 0
end

request = function()
  counter = counter + 1
  local body = string.format('{"path": "/bench/intents/%s/%d.bin", "size": 1024}', prefix, counter)
  return wrk.format("POST", "/api/v1/files/upload", headers, body)
end
