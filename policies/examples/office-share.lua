-- office-share.lua: mount the office file share over sshfs once the office tunnel is
-- up, and unmount it while the tunnel is stopping, before its SAs are deleted.
-- (Burrow also unmounts it by itself if the tunnel goes down without stopping.)

local CONNECTION = "office"
local SHARE = {
  source  = "alice@10.1.0.10:/srv/share",
  target  = "/mnt/office",
  type    = "sshfs",
  options = "reconnect,ServerAliveInterval=15,IdentityFile=/root/.ssh/id_ed25519",
}

burrow.on("tunnel_up", function(ev)
  if ev.connection ~= CONNECTION then return end
  burrow.mount{
    source = SHARE.source, target = SHARE.target, type = SHARE.type, options = SHARE.options,
    on_exit = function(status, output)
      if status ~= 0 then
        burrow.notify("Office share", "could not mount " .. SHARE.target .. ": " .. output)
      end
    end,
  }
end)

burrow.on("tunnel_stopping", function(ev)
  if ev.connection == CONNECTION then burrow.unmount(SHARE.target) end
end)
