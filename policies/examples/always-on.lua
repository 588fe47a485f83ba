-- always-on.lua: for a headless box: keep one tunnel up for good. It is started when the
-- agent starts; after a failure or a loss it is tried again with exponential back-off
-- (5 s, 10 s, 20 s ... at most 10 min) plus up to 20 % random jitter, so that a fleet of
-- agents behind one outage does not hit the gateway in the same second. Once up, the
-- back-off starts from 5 s again. A `burrow stop` by hand is respected (reason "stopped").

local CONNECTION = "office"
local BASE, MAX, JITTER = 5, 600, 0.2

local delay = BASE
local pending                    -- the timer of the next try, if one is set

local function try()
  pending = nil
  local c = burrow.connection(CONNECTION)
  if c and (c.state == "down" or c.state == "failed") then burrow.start(CONNECTION) end
end

local function again(why)
  if pending then return end
  local wait = delay * (1 + JITTER * math.random())
  burrow.log("info", string.format("%s %s: next try in %.1f s", CONNECTION, why, wait))
  pending = burrow.after(wait, try)
  delay = math.min(delay * 2, MAX)
end

burrow.on("start", try)

burrow.on("tunnel_up", function(ev)
  if ev.connection == CONNECTION then delay = BASE end
end)

burrow.on("tunnel_failed", function(ev)
  if ev.connection == CONNECTION then again("failed (" .. ev.error .. ")") end
end)

burrow.on("tunnel_down", function(ev)
  if ev.connection == CONNECTION and ev.reason ~= "stopped" then
    again("went down (" .. ev.reason .. ")")
  end
end)
