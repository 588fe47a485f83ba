-- defaults.lua: what Burrow does when no other policy says otherwise.
--   autostart = boot   the connection starts when the agent starts
--   autostart = login  the connection starts when a user logs in
--   a connection that was up and went down because of dead peer detection or a
--   network change is started again after a short delay, once the network is back;
--   while the gateway does not answer, it retries with back-off (5 s doubling to 5 min,
--   +-20% jitter) so that many clients do not knock at once.
-- Nothing else. Put a defaults.lua in /etc/burrow/policies/ to replace this file.

local RESTART_DELAY = 5          -- seconds
local RETRY_MAX = 300            -- seconds between attempts at most

local function start_autostart(when)
  for _, c in ipairs(burrow.connections()) do
    if c.autostart == when then burrow.start(c.name) end
  end
end

burrow.on("start", function() start_autostart("boot") end)
burrow.on("login", function() start_autostart("login") end)

local waiting = {}               -- went down while offline: start once online
local reviving = {}              -- being brought back: number of failed attempts

local function bring_back(name)
  local c = burrow.connection(name)
  -- Someone may have started or stopped it by hand meanwhile: leave it alone then.
  if c and (c.state == "down" or c.state == "failed") then
    reviving[name] = reviving[name] or 0
    burrow.start(name)
  else
    reviving[name] = nil
  end
end

burrow.on("tunnel_up", function(ev) reviving[ev.connection] = nil end)

-- A restart that failed: try again later, each time waiting about twice as long.
burrow.on("tunnel_failed", function(ev)
  local n = reviving[ev.connection]
  if not n then return end
  reviving[ev.connection] = n + 1
  local delay = math.min(RESTART_DELAY * 2 ^ (n + 1), RETRY_MAX) * (0.8 + 0.4 * math.random())
  burrow.after(delay, function()
    local c = burrow.connection(ev.connection)
    -- A stop by hand turns failed into down: then we are done.
    if c and c.state == "failed" then burrow.start(ev.connection) else reviving[ev.connection] = nil end
  end)
end)

-- tunnel_down only comes from a connection that was up.
burrow.on("tunnel_down", function(ev)
  if ev.reason ~= "dpd" and ev.reason ~= "network" then return end
  if burrow.facts().online == false then
    waiting[ev.connection] = true
  else
    burrow.after(RESTART_DELAY, function() bring_back(ev.connection) end)
  end
end)

burrow.on("network", function(ev)
  if not ev.online then return end
  local names = {}
  for name in pairs(waiting) do names[#names + 1] = name end
  table.sort(names)
  waiting = {}
  for _, name in ipairs(names) do
    burrow.after(RESTART_DELAY, function() bring_back(name) end)
  end
end)
