-- location.lua: a different connection per location. At home the home lab is reached
-- through its tunnel; in the office nothing is needed; anywhere else (no rule matches)
-- the full tunnel is up. Rules are tried in name order (or list order when given as a
-- list); every key of a rule must match, and an SSID is pinned to its access point's
-- BSSID because anyone can name a hotspot "HomeNet" (see untrusted-wifi.lua).

burrow.locations{
  Home   = { ssid = "HomeNet", bssid = "00:11:22:33:44:55" },
  Office = { gateway_mac = "00:aa:bb:cc:dd:ee" },
}

local WANTED = { Home = "home-lab", Office = nil }   -- no tunnel needed in the office
local ELSEWHERE = "everywhere"                       -- no location: full tunnel

local function want(location)
  if location == nil then return ELSEWHERE end
  return WANTED[location]
end

burrow.on("location", function(ev)
  local old, new = want(ev.previous), want(ev.location)
  if old == new then return end
  if old then burrow.stop(old) end
  if new then burrow.start(new) end
end)
