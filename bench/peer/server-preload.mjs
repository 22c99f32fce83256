// Preloaded into the sync server process (node --import). The server's own code runs
// unmodified; this only
//  1. makes a bare `listen(port[, cb])` (the published server's `app.listen(PORT)`)
//     bind 127.0.0.1 instead of every interface, and
//  2. records the server's event-loop delay into $PROBE_FILE once a second, so a run can
//     tell whether the server or the client process stalled when devices got dropped
//     (the server's WebSocket adapter drops a client whose pong it has not read within
//     one 5 s keep-alive tick).
import fs from "node:fs"
import net from "node:net"
import { monitorEventLoopDelay } from "node:perf_hooks"

const listen = net.Server.prototype.listen
net.Server.prototype.listen = function (...args) {
  const bare = typeof args[0] === "number" || (typeof args[0] === "string" && /^\d+$/.test(args[0]))
  if (bare && (args.length === 1 || typeof args[1] === "function")) {
    args.splice(1, 0, process.env.BIND_HOST || "127.0.0.1")
  }
  return listen.apply(this, args)
}

const probeFile = process.env.PROBE_FILE
if (probeFile) {
  const h = monitorEventLoopDelay({ resolution: 20 })
  h.enable()
  const write = () => {
    const stats = {
      loop_delay_max_ms: Math.round(h.max / 1e6),
      loop_delay_p99_ms: Math.round(h.percentile(99) / 1e6),
    }
    try {
      fs.writeFileSync(probeFile + ".tmp", JSON.stringify(stats))
      fs.renameSync(probeFile + ".tmp", probeFile)
    } catch {}
  }
  setInterval(write, 1000).unref()
  // run.sh resets the histogram when the measured run starts (SIGUSR2).
  process.on("SIGUSR2", () => h.reset())
}
