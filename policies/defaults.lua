-- defaults.lua: what Burrow does when no other policy says otherwise.
--   autostart = boot   the connection starts when the agent starts
--   autostart = login  the connection starts when a user logs in
--   a connection that was up and went down because of dead peer detection or a
--   network change is started again after a short delay, once the network is back.
-- Nothing else. Put a defaults.lua in /etc/burrow/policies/ to replace this file.

local RESTART_DELAY = 5          -- seconds

local function start_autostart(when)
  for _, c in ipairs(burrow.connections()) do
    if c.autostart == when then burrow.start(c.name) end
  end
end

burrow.on("start", function() start_autostart("boot") end)
burrow.on("login", function() start_autostart("login") end)

local waiting = {}               -- went down while offline: start once online

local function bring_back(name)
  local c = burrow.connection(name)
  -- Someone may have started or stopped it by hand meanwhile: leave it alone then.
  if c and (c.state == "down" or c.state == "failed") then burrow.start(name) end
end

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
