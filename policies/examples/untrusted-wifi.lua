-- untrusted-wifi.lua: on any Wi-Fi that is not on the trusted list, bring up a full
-- tunnel (a host-to-everywhere connection); back on a trusted network, take it down.
--
-- A note on spoofing: an SSID is only a name, and anyone can call a hotspot "HomeNet".
-- So a trusted SSID is pinned to the BSSIDs (access point MACs) that really carry it
-- (TRUSTED_BSSIDS), and, once the network is configured, to the MAC of its default
-- gateway (TRUSTED_GATEWAYS, from burrow.facts().gateway_mac). Both can be forged by a
-- determined attacker next to you; together they stop the look-alike hotspot in a café.
-- A network that fails a check keeps (or gets) the tunnel.

local TUNNEL = "everywhere"            -- a connection with topology = host-to-everywhere
local TRUSTED = { ["HomeNet"] = true, ["Office WLAN"] = true }
local TRUSTED_BSSIDS = {               -- SSID -> the access points allowed to carry it
  ["HomeNet"] = { "00:11:22:33:44:55" },
}
local TRUSTED_GATEWAYS = {             -- SSID -> the router MACs expected behind it
  ["HomeNet"] = { "00:11:22:33:44:01" },
}

local function listed(list, mac)
  if not mac then return false end
  for _, m in ipairs(list) do
    if m:lower() == mac:lower() then return true end
  end
  return false
end

local function trusted(ssid, bssid)
  if not TRUSTED[ssid] then return false end
  if TRUSTED_BSSIDS[ssid] and not listed(TRUSTED_BSSIDS[ssid], bssid) then
    burrow.log("warn", ssid .. " from an unknown access point " .. tostring(bssid) ..
               ": treated as untrusted")
    return false
  end
  local gw = burrow.facts().gateway_mac
  if gw and TRUSTED_GATEWAYS[ssid] and not listed(TRUSTED_GATEWAYS[ssid], gw) then
    burrow.log("warn", ssid .. " with an unknown gateway " .. gw .. ": treated as untrusted")
    return false
  end
  return true
end

local function decide(ssid, bssid)
  local c = burrow.connection(TUNNEL)
  local up = c and (c.state == "up" or c.state == "connecting")
  if trusted(ssid, bssid) then
    if up then burrow.stop(TUNNEL) end
  elseif not up then
    burrow.log("info", "untrusted Wi-Fi " .. ssid .. ": bringing up " .. TUNNEL)
    burrow.start(TUNNEL)
  end
end

burrow.on("ssid", function(ev)
  if ev.ssid == nil then return end    -- Wi-Fi went away: keep what we have
  decide(ev.ssid, ev.bssid)
end)

-- The gateway's MAC is known only once the network is configured: check again then.
burrow.on("network", function(ev)
  local f = burrow.facts()
  if ev.online and f.ssid and f.gateway_mac then decide(f.ssid, f.bssid) end
end)
