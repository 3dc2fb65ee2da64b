-- POST /files/upload (multipart form data: the bytes go through the API) with a fresh path each
-- time: wrk -s proxied.lua URL -- TOKEN RUN_ID SIZE_BYTES
local threads = 0
function setup(thread) threads = threads + 1; thread:set("tid", threads) end

function init(args)
  local boundary = "benchboundary" .. args[2]
  headers = {
    ["Authorization"] = "Bearer " .. args[1],
    ["Content-Type"] = "multipart/form-data; boundary=" .. boundary,
  }
  prefix = args[2] .. "-" .. tostring(tid)
  local size = tonumber(args[3])
  local pattern = "0123456789abcdef"
  local content = string.rep(pattern, math.floor(size / #pattern)) .. string.rep("x", size % #pattern)
  head = "--" .. boundary .. "\r\nContent-Disposition: form-data; name=\"path\"\r\n\r\n"
  tail = "\r\n--" .. boundary .. "\r\nContent-Disposition: form-data; name=\"file\"; " ..
    "filename=\"f.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n" .. content ..
    "\r\n--" .. boundary .. "--\r\n"
  counter = 0
end

request = function()
  counter = counter + 1
  local body = head .. string.format("/bench/proxied/%s/%d.bin", prefix, counter) .. tail
  return wrk.format("POST", "/api/v1/files/upload", headers, body)
end
