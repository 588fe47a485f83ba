-- office-hours.lua: keep the office tunnel up on weekdays from 08:00 to 18:00 only.
-- Checks once a minute; os.date is the only clock a policy needs.

local CONNECTION = "office"

local function office_hours()
  local t = os.date("*t")
  return t.wday >= 2 and t.wday <= 6 and t.hour >= 8 and t.hour < 18
end

local function check()
  local c = burrow.connection(CONNECTION)
  if not c then return end
  if office_hours() and c.state == "down" then
    burrow.start(CONNECTION)
  elseif not office_hours() and c.state == "up" then
    burrow.stop(CONNECTION)
  end
end

burrow.on("start", check)
burrow.every(60, check)
