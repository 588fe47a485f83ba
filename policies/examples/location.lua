-- location.lua: different connections per location. The rules are tried in name order
-- (or list order when given as a list); every key of a rule must match.

burrow.locations{
  Home   = { ssid = "HomeNet", bssid = "00:11:22:33:44:55" },
  Office = { gateway_mac = "00:aa:bb:cc:dd:ee" },
}

local WANTED = { Home = "home-lab", Office = nil }   -- no tunnel needed in the office

burrow.on("location", function(ev)
  if ev.previous and WANTED[ev.previous] then burrow.stop(WANTED[ev.previous]) end
  if ev.location and WANTED[ev.location] then burrow.start(WANTED[ev.location]) end
end)
