-- wrk script for the intake benchmark: every request posts a lead with an id no other request uses.
local threads = {}
local counter = 0
local prefix = ""

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  prefix = string.format("b%d-%d-%d", os.time(), tid, math.random(1, 1000000000))
end

request = function()
  counter = counter + 1
  local body = '{"id":"' .. prefix .. '-' .. counter .. '","number":"+91 98123 45678","name":"James",' ..
    '"fields":{"Product":"Life Insurance","Source":"web"}}'
  return wrk.format("POST", "/v1/leads", {["Content-Type"] = "application/json"}, body)
end
