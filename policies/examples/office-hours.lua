-- office-hours.lua: keep the office tunnel up on weekdays from 08:00 to 18:00 only.
-- Rather than polling, it sets one timer for the next 08:00 or 18:00 and checks again
-- then; os.date is the only clock a policy needs (local time on the agent).

local CONNECTION = "office"
local OPEN, CLOSE = 8, 18        -- hours

local function office_hours(t)
  return t.wday >= 2 and t.wday <= 6 and t.hour >= OPEN and t.hour < CLOSE
end

-- Seconds until the next full hour that is OPEN or CLOSE.
local function until_next_change()
  local now = os.time()
  local t = os.date("*t", now)
  local secs = 3600 - (t.min * 60 + t.sec)
  local hour = (t.hour + 1) % 24
  while hour ~= OPEN and hour ~= CLOSE do
    secs = secs + 3600
    hour = (hour + 1) % 24
  end
  return secs
end

local function check()
  local c = burrow.connection(CONNECTION)
  local open = office_hours(os.date("*t"))
  if c and open and (c.state == "down" or c.state == "failed") then
    burrow.start(CONNECTION)
  elseif c and not open and c.state == "up" then
    burrow.stop(CONNECTION)
  end
  burrow.after(until_next_change(), check)
end

burrow.on("start", check)
