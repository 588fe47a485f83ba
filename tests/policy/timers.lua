-- Timers in virtual time: after fires once, every repeats until cancelled.
local ticks = 0
burrow.on("start", function()
  burrow.after(30, function() burrow.log("info", "after 30") end)
  local never = burrow.after(40, function() burrow.log("info", "cancelled timer fired") end)
  local t
  t = burrow.every(10, function()
    ticks = ticks + 1
    burrow.log("info", "tick " .. ticks)
    if ticks == 3 then t:cancel(); never:cancel() end
  end)
end)
