// Client workload driver for the automerge-repo sync server (the "peer").
// Length: one script on purpose; run.sh copies it next to node_modules as a single file.
//
// Started by bench/peer/run.sh, which copies this file next to the node_modules
// it installed in target/bench-peer/ (ESM resolves packages from the file's own
// folder). Progress goes to stderr; the result is ONE JSON object on stdout.
//
//   node driver.mjs upload  [--docs 200] [--entries 50] [--ack remote-heads|second-client] [--no-verify]
//   node driver.mjs devices [--n 10] [--lines 45] [--no-fanout] [--fanout-start all|ack]
//                           [--push-timeout S] [--fanout-inflight 50] [--evict] [--batch 50]
//   node driver.mjs idle    [--n 1000] [--idle 10] [--batch 50]
//   common: [--timeout 300]
//
// Environment (set by run.sh): PEER_URL (ws://127.0.0.1:PORT), SERVER_PID,
// SERVER_DATA_DIR, FIXTURES (path to fixtures/logs.json), CLK_TCK.

import fs from "node:fs"
import { setMaxListeners } from "node:events"
import path from "node:path"
import os from "node:os"
import { performance, monitorEventLoopDelay } from "node:perf_hooks"
import { Repo } from "@automerge/automerge-repo"
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"

// ---------------------------------------------------------------- arguments
const argv = process.argv.slice(2)
const workload = argv[0]
const opts = {}
for (let i = 1; i < argv.length; i++) {
  const a = argv[i]
  if (!a.startsWith("--")) throw new Error(`unexpected argument ${a}`)
  const key = a.slice(2)
  if (key.startsWith("no-")) {
    opts[key.slice(3)] = false
  } else if (i + 1 < argv.length && !argv[i + 1].startsWith("--")) {
    opts[key] = argv[++i]
  } else {
    opts[key] = true
  }
}
const num = (k, d) => (opts[k] === undefined ? d : Number(opts[k]))

const URL_ = process.env.PEER_URL
const SERVER_PID = process.env.SERVER_PID
const SERVER_DATA_DIR = process.env.SERVER_DATA_DIR
const FIXTURES = process.env.FIXTURES
const CLK_TCK = Number(process.env.CLK_TCK || 100)
if (!URL_ || !FIXTURES) throw new Error("PEER_URL and FIXTURES must be set (use run.sh)")
const TIMEOUT_S = num("timeout", 300)

const log = (...a) => console.error(`[driver ${((performance.now() - T_START) / 1000).toFixed(1)}s]`, ...a)
const T_START = performance.now()
// Event-loop delay of this (client simulator) process: if it stalls for seconds, the
// server's 5 s WebSocket keep-alive drops the simulated devices.
const loopDelay = monitorEventLoopDelay({ resolution: 20 })
loopDelay.enable()
let lastTick = performance.now()
const watchdog = setInterval(() => {
  const now = performance.now()
  if (now - lastTick > 2000) log(`client event loop stalled ${((now - lastTick) / 1000).toFixed(1)} s`)
  lastTick = now
}, 200)
watchdog.unref()

// ---------------------------------------------------------------- errors
const errorLog = []
const errorsByKind = {}
let errors = 0
function countError(kind, err) {
  errors++
  errorsByKind[kind] = (errorsByKind[kind] || 0) + 1
  if (errorsByKind[kind] <= 3) {
    errorLog.push(`${kind}: ${err?.message ?? err}`)
    if (kind === "uncaught" || kind === "unhandled-rejection") log(kind, err?.stack ?? err)
  }
}
process.on("uncaughtException", e => countError("uncaught", e))
process.on("unhandledRejection", e => countError("unhandled-rejection", e))

// ---------------------------------------------------------------- helpers
function serverCpuS() {
  if (!SERVER_PID) return null
  try {
    const stat = fs.readFileSync(`/proc/${SERVER_PID}/stat`, "utf8")
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    // after "pid (comm) ": f[0] is field 3 (state); utime is field 14, stime 15
    return (Number(f[11]) + Number(f[12])) / CLK_TCK
  } catch {
    return null
  }
}
function clientCpuS() {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}
const round = (x, d = 3) => (x == null || !Number.isFinite(x) ? null : Number(x.toFixed(d)))
function pct(sorted, p) {
  if (sorted.length === 0) return null
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[idx]
}
const sameHeads = (a, b) => a.length === b.length && [...a].sort().join(",") === [...b].sort().join(",")
const sleep = ms => new Promise(r => setTimeout(r, ms))
const yieldLoop = () => new Promise(r => setImmediate(r))

// ---------------------------------------------------------------- fixture data
const days = JSON.parse(fs.readFileSync(FIXTURES, "utf8"))
if (!Array.isArray(days) || days.length === 0) throw new Error("fixtures/logs.json is empty")

/** The `lines` map for fixture day `dayIdx`, exactly `count` entries keyed "<worker>|<work_item>".
 * Days with fewer labor lines are repeated; a repeat r>0 of a line gets worker "<worker>#r"
 * so its key stays unique (no fixture day has a duplicate key of its own). */
function linesFor(dayIdx, count) {
  const labor = days[dayIdx % days.length].labor
  const out = {}
  for (let i = 0; i < count; i++) {
    const src = labor[i % labor.length]
    const r = Math.floor(i / labor.length)
    const worker = r === 0 ? src.worker : `${src.worker}#${r}`
    out[`${worker}|${src.work_item}`] = {
      worker,
      work_item: src.work_item,
      work_days_centi: src.work_days_centi,
      hours_min: src.hours_min,
      overtime_min: src.overtime_min,
      kind: src.kind,
      rate_fen: src.rate_fen,
      note: src.note,
    }
  }
  return out
}
const lineCount = doc => (doc && doc.lines ? Object.keys(doc.lines).length : 0)

/** Create one document and fill it in ONE change: { site, date, lines: {...} }. */
function createDay(repo, dayIdx, count) {
  const day = days[dayIdx % days.length]
  const lines = linesFor(dayIdx, count)
  const handle = repo.create()
  handle.change(d => {
    d.site = day.site
    d.date = day.date
    d.lines = lines
  })
  return handle
}

// ---------------------------------------------------------------- connections
let disconnects = 0
/** A client Repo (no storage => ephemeral) with its own WebSocket to the server.
 * Resolves once the server peer is known, with the server's storageId (or undefined). */
function connect(label) {
  const adapter = new WebSocketClientAdapter(URL_)
  const repo = new Repo({ network: [adapter] })
  let connected = false
  const ready = new Promise(resolve => {
    repo.networkSubsystem.on("peer", ({ peerId, peerMetadata }) => {
      if (!connected) {
        connected = true
        resolve({ repo, adapter, serverPeerId: peerId, storageId: peerMetadata?.storageId })
      }
    })
  })
  repo.networkSubsystem.on("peer-disconnected", () => {
    disconnects++
    if (disconnects <= 3) log(`${label} lost its server connection`)
    countError("disconnect", `${label} lost its server connection`)
  })
  return ready
}

async function connectMany(n, batch) {
  const out = new Array(n)
  for (let i = 0; i < n; i += batch) {
    const ids = []
    for (let k = i; k < Math.min(n, i + batch); k++) ids.push(k)
    const got = await withTimeout(
      Promise.all(ids.map(k => connect(`device ${k}`))),
      60_000,
      `connecting devices ${i}..${i + ids.length - 1}`
    )
    ids.forEach((k, j) => (out[k] = got[j]))
  }
  return out
}

function withTimeout(p, ms, what) {
  let t
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise((_, rej) => (t = setTimeout(() => rej(new Error(`timed out: ${what}`)), ms))),
  ])
}

/** Resolves with the time (performance.now()) at which the server's remote heads equal
 * the handle's current local heads. */
function waitRemoteHeads(handle, storageId) {
  const target = handle.heads()
  return new Promise(resolve => {
    const check = () => {
      const rh = handle.getRemoteHeads(storageId)
      if (rh && sameHeads(rh, target)) {
        const t = performance.now()
        handle.off("remote-heads", check)
        resolve(t)
        return true
      }
      return false
    }
    if (!check()) handle.on("remote-heads", check)
  })
}

let findUnavailable = 0
/** Find `url` in `repo` and resolve when the document holds `expected` lines. If the find
 * reports the document unavailable (e.g. the device lost its connection and the server's
 * keep-alive dropped it), count that as an error and keep waiting for the handle to become
 * ready: the device's repo reconnects by itself and asks again. */
async function findFull(repo, url, expected, signal) {
  const aborted = new Promise((_, reject) => {
    if (signal?.aborted) reject(new Error("aborted"))
    signal?.addEventListener("abort", () => reject(new Error("aborted")), { once: true })
  })
  aborted.catch(() => {})
  let handle
  try {
    handle = await repo.find(url, { signal })
  } catch (e) {
    if (signal?.aborted) throw e
    findUnavailable++
    countError("find unavailable (waiting for a retry)", e)
    handle = repo.handles[url.replace(/^automerge:/, "")]
    if (!handle) throw e
    await Promise.race([handle.whenReady(["ready"]), aborted])
  }
  if (lineCount(handle.doc()) >= expected) return handle
  await Promise.race([
    new Promise(resolve => {
      const f = () => {
        if (lineCount(handle.doc()) >= expected) {
          handle.off("change", f)
          resolve()
        }
      }
      handle.on("change", f)
    }),
    aborted,
  ])
  return handle
}

/** Count documents with at least one stored chunk in the server's NodeFSStorageAdapter
 * dir (layout: DIR/<id[0:2]>/<id[2:]>/{snapshot|incremental}/<hash>). */
function docsOnDisk(docIds) {
  if (!SERVER_DATA_DIR) return null
  let n = 0
  for (const id of docIds) {
    const base = path.join(SERVER_DATA_DIR, id.slice(0, 2), id.slice(2))
    let found = false
    for (const sub of ["snapshot", "incremental"]) {
      try {
        if (fs.readdirSync(path.join(base, sub)).length > 0) found = true
      } catch {}
    }
    if (found) n++
  }
  return n
}

async function waitDisk(docIds, t0, limitMs) {
  if (!SERVER_DATA_DIR) return { disk_docs: null, disk_visible_s: null }
  const end = performance.now() + limitMs
  let n = 0
  for (;;) {
    n = docsOnDisk(docIds)
    if (n === docIds.length) return { disk_docs: n, disk_visible_s: round((performance.now() - t0) / 1000) }
    if (performance.now() > end) return { disk_docs: n, disk_visible_s: null }
    await sleep(20)
  }
}

// ---------------------------------------------------------------- upload
async function upload() {
  const docs = num("docs", 200)
  const entries = num("entries", 50)
  let ack = opts.ack || "remote-heads"
  const verify = opts.verify !== false

  const { repo, storageId } = await withTimeout(connect("uploader"), 30_000, "connecting uploader")
  if (ack === "remote-heads" && !storageId) {
    log("server shared no storageId; falling back to a second client")
    ack = "second-client"
  }
  log(`connected; server storageId=${storageId}; ack=${ack}`)

  const cpu0 = serverCpuS()
  const ccpu0 = clientCpuS()
  const t0 = performance.now()
  const handles = []
  const created = []
  const ackTimes = new Array(docs).fill(null)
  const pending = []
  for (let k = 0; k < docs; k++) {
    created.push(performance.now())
    const h = createDay(repo, k, entries)
    handles.push(h)
    if (ack === "remote-heads") pending.push(waitRemoteHeads(h, storageId).then(t => (ackTimes[k] = t)))
    await yieldLoop() // let sync traffic flow while the rest are being made
  }
  const tCreated = performance.now()
  log(`created ${docs} docs in ${((tCreated - t0) / 1000).toFixed(2)} s`)

  let checker = null
  if (ack === "second-client") {
    const c = await withTimeout(connect("checker"), 30_000, "connecting checker")
    checker = c.repo
    const ac = new AbortController()
    setMaxListeners(0, ac.signal)
    const t = setTimeout(() => ac.abort(), TIMEOUT_S * 1000)
    handles.forEach((h, k) =>
      pending.push(
        findFull(checker, h.url, entries, ac.signal).then(
          () => (ackTimes[k] = performance.now()),
          e => countError("second-client find", e)
        )
      )
    )
    pending.push(Promise.allSettled(pending.slice()).then(() => clearTimeout(t)))
  }

  let timedOut = false
  try {
    await withTimeout(Promise.all(pending), TIMEOUT_S * 1000, "acks")
  } catch (e) {
    timedOut = true
    log(String(e))
  }
  const acked = ackTimes.filter(t => t != null)
  const tDone = acked.length ? Math.max(...acked) : performance.now()
  const cpu1 = serverCpuS()
  const ccpu1 = clientCpuS()
  const wall = (tDone - t0) / 1000
  const lat = ackTimes
    .map((t, k) => (t == null ? null : t - created[k]))
    .filter(x => x != null)
    .sort((a, b) => a - b)
  log(`acked ${acked.length}/${docs} in ${wall.toFixed(3)} s`)

  const docIds = handles.map(h => h.documentId)
  const disk = await waitDisk(docIds, t0, 30_000)

  // Independent check (outside the timed window): a fresh client reads every doc back.
  let verified = null
  let verify_s = null
  if (verify && ack === "remote-heads" && !timedOut) {
    const c = await withTimeout(connect("verifier"), 30_000, "connecting verifier")
    const tv = performance.now()
    const ac = new AbortController()
    const t = setTimeout(() => ac.abort(), 120_000)
    setMaxListeners(0, ac.signal)
    const res = await Promise.allSettled(handles.map(h => findFull(c.repo, h.url, entries, ac.signal)))
    clearTimeout(t)
    verified = res.filter((r, k) => r.status === "fulfilled" && sameHeads(r.value.heads(), handles[k].heads())).length
    res.filter(r => r.status === "rejected").forEach(r => countError("verify", r.reason))
    verify_s = round((performance.now() - tv) / 1000)
  }

  return {
    workload: "upload",
    docs,
    entries,
    lines: docs * entries,
    ack,
    server_storage_id_shared: !!storageId,
    acked_docs: acked.length,
    create_s: round((tCreated - t0) / 1000),
    wall_s: round(wall),
    wall_after_create_s: acked.length ? round((tDone - tCreated) / 1000) : null,
    docs_per_s: round(acked.length / wall, 1),
    lines_per_s: round((acked.length * entries) / wall, 1),
    p50_ms: round(pct(lat, 50), 1),
    p99_ms: round(pct(lat, 99), 1),
    max_ms: round(lat[lat.length - 1], 1),
    ...disk,
    verified_docs_second_client: verified,
    verify_s,
    server_cpu_s: cpu0 != null && cpu1 != null ? round(cpu1 - cpu0, 2) : null,
    client_cpu_s: round(ccpu1 - ccpu0, 2),
    errors,
    timed_out: timedOut,
  }
}

// ---------------------------------------------------------------- devices
async function devices() {
  const n = num("n", 10)
  const linesN = num("lines", 45)
  const fanout = opts.fanout !== false
  // "all": fan-out starts once every device's push is acknowledged, so the push figures
  // (p50/p99, lines_per_s) are not mixed with this one client process loading other docs.
  // "ack": device j starts finding doc i as soon as doc i is acknowledged.
  const fanoutStart = opts["fanout-start"] || "all"
  // With "all": if some pushes are still unacknowledged after this long, start the fan-out
  // of those that are, so that a stuck device does not hide the fan-out figures.
  const pushTimeoutS = num("push-timeout", TIMEOUT_S / 2)
  if (!["all", "ack"].includes(fanoutStart)) throw new Error("--fanout-start must be all or ack")
  // Cap on finds in flight at once in this process (memory of the simulator, not the server).
  const inflightCap = num("fanout-inflight", 50)
  // A found doc costs the client ~150 KiB of JS heap plus ~200 KiB outside it (JS
  // Automerge). With --evict, once a device holds all lines of a site doc the simulator
  // drops it from that device's repo (repo.removeFromCache) to bound its memory. Off by
  // default: a dropped doc is sent again by the server whenever that device reconnects.
  const evict = opts.evict === true
  const batch = num("batch", 50)
  const SITES = 3

  const cc0 = performance.now()
  const scpuC0 = serverCpuS()
  log(`connecting ${n} devices (batches of ${batch})`)
  const devs = await connectMany(n, batch)
  const connect_s = (performance.now() - cc0) / 1000
  const storageIds = new Set(devs.map(d => d.storageId))
  if (storageIds.size !== 1 || !devs[0].storageId) throw new Error("server storageId not shared consistently")
  const storageId = devs[0].storageId
  log(`all ${n} connected in ${connect_s.toFixed(2)} s; server storageId=${storageId}`)
  const scpuC1 = serverCpuS()

  // site membership: device i -> site i % 3
  const members = Array.from({ length: SITES }, () => [])
  for (let i = 0; i < n; i++) members[i % SITES].push(i)
  let fanExpected = 0
  if (fanout) for (const m of members) fanExpected += m.length * (m.length - 1)

  const ac = new AbortController()
  setMaxListeners(0, ac.signal)
  let timedOut = false
  const created = new Array(n).fill(null)
  const ackAt = new Array(n).fill(null)
  const handles = new Array(n)
  let acked = 0
  let tAllAcked = null
  let scpuAllAcked = null
  let tFanStart = null
  let fanDone = 0
  let fanErrors = 0
  let tFanDone = null
  let resolveAll
  const allDone = new Promise(r => (resolveAll = r))
  const checkDone = () => {
    if (acked === n && fanDone + fanErrors >= fanExpected) {
      if (fanout && tFanDone == null && fanErrors === 0) tFanDone = performance.now()
      resolveAll()
    }
  }

  // fan-out work queue: [device j, url of doc i]; started from setImmediate in slices so
  // that one burst of completions cannot hold the event loop (pings!) for long.
  const queue = []
  let qHead = 0
  let inflight = 0
  let pumpScheduled = false
  const schedulePump = () => {
    if (!pumpScheduled) {
      pumpScheduled = true
      setImmediate(pump)
    }
  }
  const pump = () => {
    pumpScheduled = false
    let started = 0
    while (inflight < inflightCap && qHead < queue.length && !ac.signal.aborted && started < 25) {
      const [j, url] = queue[qHead++]
      inflight++
      started++
      findFull(devs[j].repo, url, linesN, ac.signal).then(
        handle => {
          inflight--
          fanDone++
          if (evict) devs[j].repo.removeFromCache(handle.documentId).catch(e => countError("evict", e))
          checkDone()
          schedulePump()
        },
        e => {
          inflight--
          if (!ac.signal.aborted) {
            fanErrors++
            countError("fanout find", e)
          }
          checkDone()
          schedulePump()
        }
      )
    }
    if (qHead === queue.length && qHead > 0) {
      queue.length = 0
      qHead = 0
    }
    if (inflight < inflightCap && qHead < queue.length) schedulePump()
  }
  const enqueueFanout = i => {
    if (tFanStart == null) tFanStart = performance.now()
    for (const j of members[i % SITES]) if (j !== i) queue.push([j, handles[i].url])
  }

  const onAcked = (i, t) => {
    ackAt[i] = t
    acked++
    if (acked === n) {
      tAllAcked = t
      scpuAllAcked = serverCpuS()
    }
    if (fanout && fanoutLive) {
      enqueueFanout(i)
      schedulePump()
    }
    if (fanout && !fanoutLive && acked === n) startFanout(`all ${n} pushes acknowledged`)
    checkDone()
  }
  // fan-out of every doc acknowledged so far; later acks join it as they come
  let fanoutLive = fanoutStart === "ack"
  const startFanout = why => {
    if (fanoutLive) return
    fanoutLive = true
    log(`${why}; starting fan-out (${fanExpected} finds in all)`)
    for (let k = 0; k < n; k++) if (ackAt[k] != null) enqueueFanout(k)
    schedulePump()
  }

  const scpu0 = serverCpuS()
  const ccpu0 = clientCpuS()
  const t0 = performance.now()
  const timer = setTimeout(() => {
    timedOut = true
    ac.abort()
    resolveAll()
  }, TIMEOUT_S * 1000)
  const pushTimer = setTimeout(() => {
    if (fanout && acked < n) startFanout(`push phase not done after ${pushTimeoutS} s (${acked}/${n} acked)`)
  }, pushTimeoutS * 1000)
  for (let i = 0; i < n; i++) {
    created[i] = performance.now()
    handles[i] = createDay(devs[i].repo, i, linesN)
    waitRemoteHeads(handles[i], storageId).then(t => onAcked(i, t))
    await yieldLoop() // one process simulates every device: let I/O run between devices
  }
  const tCreated = performance.now()
  log(`created ${n} day docs in ${((tCreated - t0) / 1000).toFixed(2)} s; fan-out expects ${fanExpected} finds`)
  const progress = setInterval(
    () => log(`acked ${acked}/${n}, fan-out ${fanDone}/${fanExpected} (in flight ${inflight})`),
    10_000
  )
  if (n === 0) resolveAll()
  await allDone
  clearTimeout(timer)
  clearTimeout(pushTimer)
  clearInterval(progress)
  const tEnd = performance.now()
  const scpu1 = serverCpuS()
  const ccpu1 = clientCpuS()

  const ackTimes = ackAt.filter(t => t != null)
  const tLastAck = ackTimes.length ? Math.max(...ackTimes) : null
  const wall = tLastAck != null ? (tLastAck - t0) / 1000 : null
  const lat = ackAt
    .map((t, i) => (t == null ? null : t - created[i]))
    .filter(x => x != null)
    .sort((a, b) => a - b)
  const fanPhase = tFanStart != null ? ((tFanDone ?? tEnd) - tFanStart) / 1000 : null
  log(`done: acked ${acked}/${n}, fan-out ${fanDone}/${fanExpected}, timed_out=${timedOut}`)

  const d = (a, b) => (a != null && b != null ? round(b - a, 2) : null)
  return {
    workload: "devices",
    n,
    docs: n,
    entries: linesN,
    lines: n * linesN,
    ack: "remote-heads",
    client_processes: 1,
    sites: SITES,
    connect_s: round(connect_s),
    create_s: round((tCreated - t0) / 1000),
    acked_devices: acked,
    unacked_devices: n - acked,
    wall_s: round(wall),
    wall_after_create_s: tLastAck != null ? round((tLastAck - tCreated) / 1000) : null,
    lines_per_s: wall ? round((acked * linesN) / wall, 1) : null,
    p50_ms: round(pct(lat, 50), 1),
    p99_ms: round(pct(lat, 99), 1),
    max_ms: round(lat[lat.length - 1], 1),
    fanout,
    fanout_start: fanout ? fanoutStart : null,
    push_timeout_s: fanout && fanoutStart === "all" ? pushTimeoutS : null,
    fanout_inflight_cap: fanout ? inflightCap : null,
    fanout_evict: fanout ? evict : null,
    fanout_expected: fanExpected,
    fanout_done: fanDone,
    fanout_errors: fanErrors,
    fanout_unavailable_then_waited: findUnavailable,
    fanout_drained_s: tFanDone != null ? round((tFanDone - t0) / 1000) : null,
    fanout_phase_s: round(fanPhase),
    fanout_docs_per_s: fanPhase ? round(fanDone / fanPhase, 1) : null,
    run_s: round((tEnd - t0) / 1000),
    server_cpu_s: d(scpu0, scpu1),
    server_cpu_push_s: d(scpu0, scpuAllAcked),
    server_cpu_fanout_s: d(scpuAllAcked, scpu1),
    server_cpu_connect_s: d(scpuC0, scpuC1),
    client_cpu_s: round(ccpu1 - ccpu0, 2),
    client_heap_used_mib: round(process.memoryUsage().heapUsed / 2 ** 20, 1),
    client_rss_mib: round(process.memoryUsage().rss / 2 ** 20, 1),
    disconnects,
    errors,
    timed_out: timedOut,
  }
}

// ---------------------------------------------------------------- idle
/** The server's resident memory now, KiB. */
function serverRssKib() {
  if (!SERVER_PID) return null
  try {
    const m = fs.readFileSync(`/proc/${SERVER_PID}/status`, "utf8").match(/^VmRSS:\s+(\d+)/m)
    return m ? Number(m[1]) : null
  } catch {
    return null
  }
}

/** `n` clients connect (each a Repo with its own WebSocket, no documents) and stay idle for
 * `--idle` seconds; the server's resident memory before and with all connected. */
async function idle() {
  const n = num("n", 1000)
  const idleS = num("idle", 10)
  const batch = num("batch", 50)
  // The server has just started: let its start-up garbage go before the baseline.
  await sleep(2000)
  const rssBefore = serverRssKib()
  const cpu0 = serverCpuS()
  const t0 = performance.now()
  log(`connecting ${n} idle clients (batches of ${batch})`)
  const devs = await connectMany(n, batch)
  const connect_s = (performance.now() - t0) / 1000
  const cpu1 = serverCpuS()
  await sleep(idleS * 1000)
  const rssConnected = serverRssKib()
  const connected = devs.filter(Boolean).length
  return {
    workload: "idle",
    n,
    connected,
    connect_s: round(connect_s),
    idle_s: idleS,
    server_cpu_s: cpu0 != null && cpu1 != null ? round(cpu1 - cpu0, 2) : null,
    server_rss_before_kib: rssBefore,
    server_rss_connected_kib: rssConnected,
    server_kib_per_client: rssBefore != null && rssConnected != null ? round((rssConnected - rssBefore) / Math.max(1, connected), 1) : null,
    client_rss_mib: round(process.memoryUsage().rss / 2 ** 20, 1),
    disconnects,
    errors,
  }
}

// ---------------------------------------------------------------- main
let result
try {
  if (workload === "upload") result = await upload()
  else if (workload === "devices") result = await devices()
  else if (workload === "idle") result = await idle()
  else throw new Error(`unknown workload ${workload} (upload | devices | idle)`)
} catch (e) {
  countError("fatal", e)
  result = { workload, fatal: String(e?.stack ?? e), errors }
}
result.loadavg_1m_end = round(os.loadavg()[0], 2)
result.client_loop_delay_max_ms = round(loopDelay.max / 1e6, 0)
result.client_loop_delay_p99_ms = round(loopDelay.percentile(99) / 1e6, 0)
result.errors_by_kind = errorsByKind
result.error_samples = errorLog
process.stdout.write(JSON.stringify(result) + "\n", () => process.exit(result.fatal ? 1 : 0))
