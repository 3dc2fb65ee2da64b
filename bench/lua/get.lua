-- GET one URL with a bearer token: wrk -s get.lua URL -- TOKEN PATH_AND_QUERY
local threads = 0
function setup(thread) threads = threads + 1; thread:set("tid", threads) end

function init(args)
  headers = {["Authorization"] = "Bearer " .. args[1]}
  target = args[2]
end

request = function()
  return wrk.format("GET", target, headers)
end
