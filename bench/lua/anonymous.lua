-- GET one URL with no credentials (a share link): wrk -s anonymous.lua URL -- PATH_AND_QUERY
function init(args)
  target = args[1]
end

request = function()
  return wrk.format("GET", target)
end
