-- GET listing pages, each with a cursor never asked for before (cache misses):
-- wrk -s pages.lua URL -- TOKEN CURSOR_FILE THREADS. Threads take interleaved cursors.
local threads = 0
function setup(thread) threads = threads + 1; thread:set("tid", threads) end

function init(args)
  headers = {["Authorization"] = "Bearer " .. args[1]}
  cursors = {}
  for line in io.lines(args[2]) do cursors[#cursors + 1] = line end
  index = tid
  step = tonumber(args[3])
end

request = function()
  local cursor = cursors[((index - 1) % #cursors) + 1]
  index = index + step
  return wrk.format("GET", "/api/v1/files?limit=100&cursor=" .. cursor, headers)
end
