-- mount-on-connect.lua: mount the office file share over sshfs once the office tunnel is
-- up, and unmount it while the tunnel is stopping: the agent waits (up to 10 s) for the
-- unmount before it deletes the SAs, so nothing hangs on a share whose tunnel is gone.
-- (Whatever a policy leaves mounted for a connection is unmounted by the agent itself when
-- the tunnel stops or goes down, and at the next start if the agent crashed.)
--
-- sshfs logs in as SHARE.source's user with the key in IdentityFile; add the gateway's LAN
-- host to known_hosts first, or see docs/policies.md for StrictHostKeyChecking.

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
