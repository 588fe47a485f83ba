-- untrusted-wifi.lua: on any Wi-Fi that is not on the trusted list, bring up a full
-- tunnel (a host-to-everywhere connection); back on a trusted network, take it down.
--
-- A note on spoofing: an SSID is only a name, and anyone can call a hotspot "HomeNet".
-- Where you can, pin a trusted SSID to the BSSIDs (access point MACs) that really carry
-- it in TRUSTED_BSSIDS: a look-alike hotspot then still gets the tunnel. (A location
-- rule on gateway_mac, see burrow.locations, is the stronger check once you are on it.)

local TUNNEL = "everywhere"            -- a connection with topology = host-to-everywhere
local TRUSTED = { ["HomeNet"] = true, ["Office WLAN"] = true }
local TRUSTED_BSSIDS = {               -- SSID -> the access points allowed to carry it
  ["HomeNet"] = { "00:11:22:33:44:55" },
}

local function trusted(ev)
  if not TRUSTED[ev.ssid] then return false end
  local allowed = TRUSTED_BSSIDS[ev.ssid]
  if not allowed then return true end
  for _, bssid in ipairs(allowed) do
    if ev.bssid and bssid:lower() == ev.bssid:lower() then return true end
  end
  burrow.log("warn", ev.ssid .. " from an unknown access point " .. tostring(ev.bssid) ..
             ": treated as untrusted")
  return false
end

burrow.on("ssid", function(ev)
  if ev.ssid == nil then return end    -- Wi-Fi went away: keep what we have
  local c = burrow.connection(TUNNEL)
  if trusted(ev) then
    if c and c.state == "up" then burrow.stop(TUNNEL) end
  elseif not c or c.state ~= "up" then
    burrow.log("info", "untrusted Wi-Fi " .. ev.ssid .. ": bringing up " .. TUNNEL)
    burrow.start(TUNNEL)
  end
end)
