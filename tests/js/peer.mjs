#!/usr/bin/env node
// Scriptable JavaScript Corestore peer for the live replication interop tests
// and benchmarks. Protocol: see PEER.md next to this file.
//
//   node peer.mjs --corestore 6|7 (--dir <path> | --memory) [--primary-key <hex>]
//                 [--no-delay true|false] [--verbose]
//
// Commands arrive on stdin as JSON lines, events leave on stdout as JSON lines
// (nothing else is ever written to stdout; diagnostics go to stderr). Every
// command is answered by exactly one {"event":"reply","id":...} line.
// Commands run concurrently; replies may arrive out of order.

import net from 'node:net'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import crypto from 'node:crypto'
import readline from 'node:readline'
import { performance } from 'node:perf_hooks'
import { createRequire } from 'node:module'
import { parseArgs } from 'node:util'

const require = createRequire(import.meta.url)

// ---------------------------------------------------------------------------
// CLI

const { values: argv } = parseArgs({
  options: {
    corestore: { type: 'string' },
    dir: { type: 'string' },
    memory: { type: 'boolean', default: false },
    'primary-key': { type: 'string' },
    'no-delay': { type: 'string', default: 'true' },
    verbose: { type: 'boolean', default: false }
  },
  strict: true
})

const CS = Number(argv.corestore)
if (CS !== 6 && CS !== 7) die('--corestore 6|7 is required')
if (!argv.dir && !argv.memory) die('either --dir <path> or --memory is required')
const NO_DELAY = argv['no-delay'] !== 'false'
const VERBOSE = argv.verbose

function die (msg) {
  process.stderr.write('peer.mjs: ' + msg + '\n')
  process.exit(2)
}

function log (...args) {
  if (VERBOSE) process.stderr.write('[peer cs' + CS + ' ' + process.pid + '] ' + args.join(' ') + '\n')
}

// ---------------------------------------------------------------------------
// Module loading: every module is resolved through the selected corestore so
// that hypercore / secret-stream are exactly the copies corestore uses.

const CS_PKG = CS === 6 ? 'corestore6' : 'corestore7'
const Corestore = require(CS_PKG)
const csRequire = createRequire(require.resolve(CS_PKG))
const Hypercore = csRequire('hypercore')
const hcRequire = createRequire(csRequire.resolve('hypercore'))
const NoiseSecretStream = hcRequire('@hyperswarm/secret-stream')
const b4a = require('b4a')
const ID = require('hypercore-id-encoding')
const RAM = require('random-access-memory')

const VERSIONS = {
  corestore: require(CS_PKG + '/package.json').version,
  hypercore: csRequire('hypercore/package.json').version,
  secret_stream: hcRequire('@hyperswarm/secret-stream/package.json').version,
  node: process.versions.node
}

// ---------------------------------------------------------------------------
// Output

let stdoutBroken = false
process.stdout.on('error', () => {
  stdoutBroken = true
  shutdown('stdout-error')
})

function emit (obj) {
  if (stdoutBroken) return
  process.stdout.write(JSON.stringify(obj) + '\n')
}

const hex = (b) => (b === null || b === undefined ? null : b4a.toString(b, 'hex'))

// Recursively turn buffers into hex so manifests etc. can be JSON-encoded.
function jsonable (v) {
  if (v === null || v === undefined) return null
  if (b4a.isBuffer(v)) return hex(v)
  if (Array.isArray(v)) return v.map(jsonable)
  if (typeof v === 'object') {
    const out = {}
    for (const [k, x] of Object.entries(v)) out[k] = jsonable(x)
    return out
  }
  return v
}

// ---------------------------------------------------------------------------
// Deterministic block content: block i = ASCII "block-<i>" repeated and
// truncated to block_size bytes (exactly "block-<i>" if no block_size).

function blockContent (i, blockSize) {
  const s = 'block-' + i
  if (blockSize === undefined || blockSize === null) return b4a.from(s)
  return Buffer.alloc(blockSize, s)
}

// ---------------------------------------------------------------------------
// State

let store = null
let memoryDir = null // cs7 --memory: temporary directory removed on exit
const extraStores = [] // cs6 sessions used for compat:false cores
const cores = new Map() // key hex -> { core, name }
const names = new Map() // name -> key hex
const creating = new Map() // name -> promise (dedupe concurrent creates)
const opening = new Map() // key hex -> promise
const conns = new Map() // conn id -> record
const servers = new Set()
const extensions = new Map() // key hex + '/' + extension name -> registered extension
const pending = new Set() // AbortControllers of running commands
let connCounter = 0
let shuttingDown = null

// ---------------------------------------------------------------------------
// Helpers for event-driven waiting

class CmdError extends Error {
  constructor (msg, code) {
    super(msg)
    this.code = code || 'ERROR'
  }
}

// Resolve when `check()` returns truthy; re-evaluated on every listed event
// of `emitter`. `kick` (optional) is called once after subscribing.
function waitUntil (emitter, events, check, signal, kick) {
  return new Promise((resolve, reject) => {
    let done = false
    const finish = (err, val) => {
      if (done) return
      done = true
      for (const e of events) emitter.off(e, onev)
      signal.removeEventListener('abort', onabort)
      if (err) reject(err)
      else resolve(val)
    }
    const onev = () => {
      let v
      try { v = check() } catch (err) { return finish(err) }
      if (v) finish(null, v)
    }
    const onabort = () => finish(signal.reason)
    if (signal.aborted) return finish(signal.reason)
    for (const e of events) emitter.on(e, onev)
    signal.addEventListener('abort', onabort)
    onev()
    if (!done && kick) kick()
  })
}

function abortable (promise, signal) {
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise((resolve, reject) => {
    const onabort = () => reject(signal.reason)
    signal.addEventListener('abort', onabort, { once: true })
    promise.then((v) => {
      signal.removeEventListener('abort', onabort)
      resolve(v)
    }, (err) => {
      signal.removeEventListener('abort', onabort)
      reject(err)
    })
  })
}

function decodeKey (k) {
  try {
    return ID.decode(k)
  } catch (err) {
    throw new CmdError('invalid key: ' + k, 'BAD_ARGUMENT')
  }
}

function isCompat (core) {
  if (core.keyPair && core.keyPair.publicKey && b4a.equals(core.keyPair.publicKey, core.key)) return true
  const m = core.manifest
  if (m && m.signers && m.signers.length === 1) return b4a.equals(m.signers[0].publicKey, core.key)
  if (core.keyPair && core.keyPair.publicKey) return false
  return null
}

function coreSummary (core) {
  return {
    key: hex(core.key),
    discovery_key: hex(core.discoveryKey),
    length: core.length,
    contiguous_length: core.contiguousLength,
    byte_length: core.byteLength,
    fork: core.fork,
    writable: core.writable,
    compat: isCompat(core),
    manifest: jsonable(core.manifest),
    peers: core.peers.length
  }
}

// Emits a `conflict` event when hypercore finds two signed versions of the core that
// disagree (it then closes every session of the core).
function reportConflicts (core) {
  const k = hex(core.key)
  core.on('conflict', (length, fork) => emit({ event: 'conflict', key: k, length, fork }))
}

async function openByKey (keyStr) {
  const key = decodeKey(keyStr)
  const k = hex(key)
  const have = cores.get(k)
  if (have) {
    await have.core.ready()
    return have.core
  }
  let p = opening.get(k)
  if (!p) {
    p = (async () => {
      const core = store.get({ key })
      try {
        await core.ready()
      } catch (err) {
        await core.close().catch(() => {})
        throw err
      }
      cores.set(k, { core, name: null })
      reportConflicts(core)
      return core
    })()
    opening.set(k, p)
    p.then(() => opening.delete(k), () => opening.delete(k))
  }
  return p
}

// Resolve the core a command refers to: by `key` (opened on demand) or by the
// `name` of a core created with `create`.
async function coreFor (msg) {
  if (msg.key !== undefined && msg.key !== null) return openByKey(msg.key)
  if (msg.name !== undefined && msg.name !== null) {
    const p = creating.get(msg.name)
    if (p) await p.catch(() => {})
    const k = names.get(msg.name)
    if (!k) throw new CmdError('no core created with name ' + JSON.stringify(msg.name), 'UNKNOWN_CORE')
    return cores.get(k).core
  }
  throw new CmdError('key or name required', 'BAD_ARGUMENT')
}

function nonNegInt (v, what) {
  if (!Number.isSafeInteger(v) || v < 0) throw new CmdError(what + ' must be a non-negative integer', 'BAD_ARGUMENT')
  return v
}

const APPEND_BATCH_BYTES = 4 * 1024 * 1024
const APPEND_BATCH_BLOCKS = 4096

// Appends to one core are serialised so that deterministic block indices
// (derived from the length at append time) stay correct under concurrency.
const appendLocks = new WeakMap()
function withAppendLock (core, fn) {
  const prev = appendLocks.get(core) || Promise.resolve()
  const next = prev.then(fn, fn)
  appendLocks.set(core, next.catch(() => {}))
  return next
}

// Append `count` deterministic blocks starting at the current length.
async function appendDeterministic (core, count, blockSize, signal) {
  let left = count
  while (left > 0) {
    if (signal.aborted) throw signal.reason
    const per = blockSize ? Math.max(1, Math.floor(APPEND_BATCH_BYTES / Math.max(1, blockSize))) : APPEND_BATCH_BLOCKS
    const n = Math.min(left, per, APPEND_BATCH_BLOCKS)
    const start = core.length
    const batch = new Array(n)
    for (let j = 0; j < n; j++) batch[j] = blockContent(start + j, blockSize)
    await core.append(batch)
    left -= n
  }
}

// sha256 over blocks [start, end) plus optional comparison with the
// deterministic content. Reads run in parallel windows.
async function hashRange (core, start, end, expect, blockSize, signal) {
  const h = crypto.createHash('sha256')
  let bytes = 0
  let mismatches = 0
  let firstMismatch = null
  const WINDOW = 256
  for (let i = start; i < end; i += WINDOW) {
    if (signal.aborted) throw signal.reason
    const stop = Math.min(end, i + WINDOW)
    const reads = []
    for (let j = i; j < stop; j++) reads.push(core.get(j, { wait: false }))
    const blocks = await Promise.all(reads)
    for (let j = 0; j < blocks.length; j++) {
      const b = blocks[j]
      const idx = i + j
      if (b === null) throw new CmdError('block ' + idx + ' missing locally after download', 'MISSING_BLOCK')
      h.update(b)
      bytes += b.byteLength
      if (expect === 'index' && !b4a.equals(b, blockContent(idx, blockSize))) {
        mismatches++
        if (firstMismatch === null) firstMismatch = idx
      }
    }
  }
  return {
    sha256: h.digest('hex'),
    bytes,
    verified: expect === 'index' ? mismatches === 0 : null,
    mismatches: expect === 'index' ? mismatches : null,
    first_mismatch: firstMismatch
  }
}

// ---------------------------------------------------------------------------
// Connections

function connInfo (c) {
  return {
    conn: c.id,
    direction: c.direction,
    initiator: c.initiator,
    transport: c.transport,
    local_port: c.localPort,
    remote_port: c.remotePort,
    opened: c.opened,
    closed: c.closed,
    bytes_read: c.socket.bytesRead,
    bytes_written: c.socket.bytesWritten
  }
}

// Wrap a TCP socket in a replication stream with the given Noise role.
// Resolves with the record once the Noise handshake completed; rejects if the
// stream closed before that.
function setupConnection (socket, direction, opts) {
  const initiator = opts.initiator
  const transport = opts.transport || 'noise'
  const keepAlive = opts.keep_alive === undefined ? 5000 : opts.keep_alive
  if (NO_DELAY) socket.setNoDelay(true)

  const c = {
    id: ++connCounter,
    direction,
    initiator,
    transport,
    socket,
    noise: null,
    localPort: socket.localPort,
    remotePort: socket.remotePort,
    opened: false,
    closed: false,
    error: null,
    closedPromise: null
  }
  conns.set(c.id, c)

  const replOpts = { keepAlive: keepAlive !== false && keepAlive !== 0 }
  if (transport === 'pipe') {
    // corestore creates the NoiseSecretStream; we pipe its raw side to TCP.
    const raw = store.replicate(!!initiator, replOpts)
    c.noise = raw.noiseStream
    socket.pipe(raw).pipe(socket)
    raw.on('error', (err) => { c.error = c.error || err })
    raw.on('close', () => socket.destroy())
  } else if (transport === 'noise') {
    // The socket is the raw stream of a NoiseSecretStream we hand to corestore.
    c.noise = new NoiseSecretStream(!!initiator, socket)
    store.replicate(c.noise, replOpts)
  } else {
    socket.destroy()
    conns.delete(c.id)
    throw new CmdError('unknown transport ' + transport, 'BAD_ARGUMENT')
  }
  if (typeof keepAlive === 'number' && keepAlive > 0 && keepAlive !== 5000) c.noise.setKeepAlive(keepAlive)

  socket.on('error', (err) => { c.error = c.error || err })
  c.noise.on('error', (err) => { c.error = c.error || err })

  c.closedPromise = new Promise((resolve) => {
    let sockClosed = false
    let noiseClosed = false
    const maybe = () => {
      if (!sockClosed || !noiseClosed || c.closed) return
      c.closed = true
      conns.delete(c.id)
      const ev = { event: 'peer-closed', ...connInfo(c) }
      if (c.error) ev.error = String(c.error.message || c.error)
      emit(ev)
      resolve()
    }
    socket.once('close', () => { sockClosed = true; c.noise.destroy(); maybe() })
    c.noise.once('close', () => { noiseClosed = true; socket.destroy(); maybe() })
  })

  return c.noise.opened.then((ok) => {
    if (!ok) throw new CmdError('noise handshake failed' + (c.error ? ': ' + c.error.message : ''), 'HANDSHAKE_FAILED')
    c.opened = true
    c.handshakeHash = hex(c.noise.handshakeHash)
    c.remotePublicKey = hex(c.noise.remotePublicKey)
    emit({ event: 'connection', ...connInfo(c), handshake_hash: c.handshakeHash, remote_public_key: c.remotePublicKey })
    return c
  })
}

// ---------------------------------------------------------------------------
// Commands

const commands = {
  async ping () {
    return { pong: true }
  },

  async create (msg, signal) {
    const name = msg.name
    if (typeof name !== 'string') throw new CmdError('name (string) required', 'BAD_ARGUMENT')
    const count = nonNegInt(msg.blocks ?? 0, 'blocks')
    const blockSize = msg.block_size === undefined || msg.block_size === null ? undefined : nonNegInt(msg.block_size, 'block_size')
    if (msg.content !== undefined && msg.content !== 'index') throw new CmdError('content must be "index"', 'BAD_ARGUMENT')

    let p = creating.get(name)
    if (!p && !names.has(name)) {
      p = (async () => {
        let s = store
        const wantCompat = msg.compat
        const mv = msg.manifest_version
        if (CS === 7) {
          if (wantCompat === true) throw new CmdError('corestore 7 always creates manifest-keyed (compat:false) cores', 'UNSUPPORTED')
          if (mv !== undefined && mv !== 1) throw new CmdError('corestore 7 only creates manifest version 1 cores', 'UNSUPPORTED')
        } else if (wantCompat === false || mv !== undefined) {
          s = store.session({ compat: wantCompat === undefined ? false : wantCompat, manifestVersion: mv === undefined ? 0 : mv })
          extraStores.push(s)
        }
        const core = s.get({ name })
        await core.ready()
        if (!core.writable) throw new CmdError('core ' + name + ' is not writable', 'NOT_WRITABLE')
        const k = hex(core.key)
        const prev = cores.get(k)
        if (prev) {
          // Already opened by key: keep the earlier session, drop the new one.
          await core.close().catch(() => {})
          prev.name = name
        } else {
          cores.set(k, { core, name })
          reportConflicts(core)
        }
        names.set(name, k)
      })()
      creating.set(name, p)
      p.then(() => creating.delete(name), () => creating.delete(name))
    }
    if (p) await p
    const core = cores.get(names.get(name)).core
    let startLength = 0
    let appendMs = 0
    await withAppendLock(core, async () => {
      startLength = core.length
      const t0 = performance.now()
      await appendDeterministic(core, count, blockSize, signal)
      appendMs = performance.now() - t0
    })
    let sha256 = null
    if (msg.hash !== false) sha256 = (await hashRange(core, 0, core.length, null, blockSize, signal)).sha256
    return { ...coreSummary(core), appended: count, first_index: startLength, append_ms: round(appendMs), sha256 }
  },

  async append (msg, signal) {
    const core = await coreFor(msg)
    if (!core.writable) throw new CmdError('core is not writable', 'NOT_WRITABLE')
    let firstIndex = 0
    if (Array.isArray(msg.blocks)) {
      const blocks = msg.blocks.map((h) => b4a.from(h, 'hex'))
      await withAppendLock(core, async () => {
        firstIndex = core.length
        if (blocks.length) await core.append(blocks)
      })
      return { ...coreSummary(core), appended: blocks.length, first_index: firstIndex }
    }
    const count = nonNegInt(msg.count ?? 0, 'count')
    const blockSize = msg.block_size === undefined || msg.block_size === null ? undefined : nonNegInt(msg.block_size, 'block_size')
    await withAppendLock(core, async () => {
      firstIndex = core.length
      await appendDeterministic(core, count, blockSize, signal)
    })
    return { ...coreSummary(core), appended: count, first_index: firstIndex }
  },

  async open (msg) {
    if (msg.key === undefined) throw new CmdError('key required', 'BAD_ARGUMENT')
    const core = await openByKey(msg.key)
    return coreSummary(core)
  },

  async 'close-core' (msg) {
    const core = await coreFor(msg)
    const k = hex(core.key)
    const rec = cores.get(k)
    cores.delete(k)
    if (rec && rec.name !== null) names.delete(rec.name)
    await core.close()
    return { key: k }
  },

  // Touches and frees `bytes` of fresh memory before a timed download (see
  // tests/bench/src/replicate.rs: on a VM whose host reclaims free guest memory, the first
  // touch of reclaimed memory costs as much as the download's crypto). Freeing needs
  // `node --expose-gc`; without it the buffer is left to the next collection.
  async prewarm (msg) {
    const bytes = nonNegInt(msg.bytes, 'bytes')
    let warm = Buffer.allocUnsafeSlow(bytes)
    warm.fill(1)
    warm = null
    const collected = typeof globalThis.gc === 'function'
    if (collected) globalThis.gc()
    return { bytes, collected }
  },

  async info (msg) {
    const core = await coreFor(msg)
    return {
      ...coreSummary(core),
      remote: core.peers.map((p) => ({
        remote_length: p.remoteLength,
        remote_fork: p.remoteFork,
        remote_contiguous_length: p.remoteContiguousLength,
        requests_received: p.stats && p.stats.wireRequest ? p.stats.wireRequest.rx : null,
        requests_sent: p.stats && p.stats.wireRequest ? p.stats.wireRequest.tx : null
      }))
    }
  },

  async 'wait-peers' (msg, signal) {
    const core = await coreFor(msg)
    const count = nonNegInt(msg.count ?? 1, 'count')
    await waitUntil(core, ['peer-add', 'peer-remove'], () => core.peers.length >= count, signal)
    return coreSummary(core)
  },

  async 'wait-length' (msg, signal) {
    const core = await coreFor(msg)
    const length = nonNegInt(msg.length, 'length')
    const t0 = performance.now()
    // Hypercore upgrades eagerly when a peer announces a longer length, so
    // 'append' normally fires by itself; update() is a nudge, repeated for
    // every new peer because update() without peers resolves immediately.
    const kick = () => { if (!core.writable) core.update({ wait: true }).catch(() => {}) }
    core.on('peer-add', kick)
    try {
      await waitUntil(core, ['append', 'truncate'], () => core.length >= length, signal, kick)
    } finally {
      core.off('peer-add', kick)
    }
    return { ...coreSummary(core), elapsed_ms: round(performance.now() - t0) }
  },

  async update (msg, signal) {
    const core = await coreFor(msg)
    if (msg.wait_peer !== false && core.peers.length === 0 && !core.writable) {
      await waitUntil(core, ['peer-add'], () => core.peers.length > 0, signal)
    }
    const updated = await abortable(core.update({ wait: true }), signal)
    return { ...coreSummary(core), updated }
  },

  async download (msg, signal) {
    const core = await coreFor(msg)
    const t0 = performance.now()
    const start = nonNegInt(msg.start ?? 0, 'start')
    let end = msg.end
    if (end === undefined || end === null) {
      if (msg.length !== undefined) {
        const length = nonNegInt(msg.length, 'length')
        await waitUntil(core, ['append', 'truncate'], () => core.length >= length, signal,
          () => core.update({ wait: true }).catch(() => {}))
        end = length
      } else {
        if (core.peers.length === 0 && !core.writable) {
          await waitUntil(core, ['peer-add'], () => core.peers.length > 0, signal)
        }
        await abortable(core.update({ wait: true }), signal)
        end = core.length
      }
    }
    end = nonNegInt(end, 'end')
    if (end < start) throw new CmdError('end < start', 'BAD_ARGUMENT')
    const tDl = performance.now()
    if (end > start) {
      const dl = core.download({ start, end })
      const onabort = () => { try { dl.destroy() } catch {} }
      signal.addEventListener('abort', onabort, { once: true })
      try {
        await abortable(dl.done(), signal)
      } finally {
        signal.removeEventListener('abort', onabort)
      }
    }
    const tDone = performance.now()
    const res = {
      ...coreSummary(core),
      start,
      end,
      blocks: end - start,
      elapsed_ms: round(tDone - t0),
      download_ms: round(tDone - tDl)
    }
    if (msg.verify !== false) {
      const blockSize = msg.block_size === undefined || msg.block_size === null ? undefined : msg.block_size
      const v = await hashRange(core, start, end, msg.expect_content, blockSize, signal)
      Object.assign(res, v)
      res.verify_ms = round(performance.now() - tDone)
      res.mib_per_s = res.elapsed_ms > 0 ? round(v.bytes / 1048576 / (res.elapsed_ms / 1000)) : null
    }
    return res
  },

  async get (msg, signal) {
    const core = await coreFor(msg)
    const index = nonNegInt(msg.index, 'index')
    const block = await abortable(core.get(index, { wait: msg.wait !== false }), signal)
    return { index, value: hex(block) }
  },

  async has (msg) {
    const core = await coreFor(msg)
    const start = nonNegInt(msg.start ?? 0, 'start')
    const end = nonNegInt(msg.end ?? start + 1, 'end')
    return { start, end, has: await core.has(start, end) }
  },

  async clear (msg) {
    const core = await coreFor(msg)
    const start = nonNegInt(msg.start ?? 0, 'start')
    const end = nonNegInt(msg.end ?? start + 1, 'end')
    await core.clear(start, end)
    return coreSummary(core)
  },

  async truncate (msg) {
    const core = await coreFor(msg)
    const length = nonNegInt(msg.length, 'length')
    await core.truncate(length)
    return coreSummary(core)
  },

  async listen (msg) {
    const port = nonNegInt(msg.port ?? 0, 'port')
    const opts = { initiator: !!msg.initiator, transport: msg.transport, keep_alive: msg.keep_alive }
    const server = net.createServer((socket) => {
      if (shuttingDown) return socket.destroy()
      try {
        setupConnection(socket, 'in', opts).catch((err) => log('incoming connection failed:', err.message))
      } catch (err) {
        log('incoming connection failed:', err.message)
      }
    })
    servers.add(server)
    server.on('close', () => servers.delete(server))
    await new Promise((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, msg.host || '127.0.0.1', () => {
        server.off('error', reject)
        resolve()
      })
    })
    server.on('error', (err) => log('server error:', err.message))
    return { port: server.address().port, host: server.address().address, initiator: opts.initiator }
  },

  async connect (msg, signal) {
    const port = nonNegInt(msg.port, 'port')
    const initiator = msg.initiator === undefined ? true : !!msg.initiator
    const socket = net.connect({ port, host: msg.host || '127.0.0.1' })
    await abortable(new Promise((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', reject)
    }), signal).catch((err) => { socket.destroy(); throw err })
    socket.removeAllListeners('error')
    const c = await abortable(setupConnection(socket, 'out', {
      initiator, transport: msg.transport, keep_alive: msg.keep_alive
    }), signal).catch((err) => { socket.destroy(); throw err })
    return { ...connInfo(c), handshake_hash: c.handshakeHash, remote_public_key: c.remotePublicKey }
  },

  async disconnect (msg, signal) {
    const c = conns.get(msg.conn)
    if (!c) throw new CmdError('unknown connection ' + msg.conn, 'UNKNOWN_CONN')
    c.noise.destroy()
    c.socket.destroy()
    await abortable(c.closedPromise, signal)
    return { conn: c.id }
  },

  async conns () {
    return { conns: [...conns.values()].map(connInfo) }
  },

  // Registers extension `extension` on a core (hypercore `registerExtension`); every message
  // a peer sends under that name is emitted as an `extension` event. `encoding: "raw"` sends
  // and receives the bytes as they are; the default is hypercore's (compact-encoding
  // `buffer`). Registering a name again replaces the earlier registration (as hypercore does
  // for one session).
  async 'register-extension' (msg) {
    const core = await coreFor(msg)
    const name = msg.extension
    if (typeof name !== 'string' || name === '') throw new CmdError('extension (non-empty string) required', 'BAD_ARGUMENT')
    const encoding = msg.encoding ?? 'buffer'
    if (encoding !== 'buffer' && encoding !== 'raw') throw new CmdError('encoding must be "buffer" or "raw"', 'BAD_ARGUMENT')
    const k = hex(core.key)
    const handlers = {
      onmessage (message, peer) {
        emit({ event: 'extension', key: k, extension: name, from: hex(peer.remotePublicKey), message: hex(message) })
      }
    }
    if (encoding === 'raw') handlers.encoding = require('compact-encoding').raw
    const ext = core.registerExtension(name, handlers)
    extensions.set(k + '/' + name, ext)
    return { key: k, extension: name, encoding, peers: core.peers.map((p) => hex(p.remotePublicKey)) }
  },

  // Sends `message` (hex) under a registered extension: to the peer whose remote public key
  // is `to` (hex), or to every peer of the core without `to`.
  async 'send-extension' (msg) {
    const core = await coreFor(msg)
    const k = hex(core.key)
    const ext = extensions.get(k + '/' + msg.extension)
    if (!ext) throw new CmdError('extension ' + JSON.stringify(msg.extension) + ' is not registered on ' + k, 'BAD_ARGUMENT')
    if (typeof msg.message !== 'string') throw new CmdError('message (hex) required', 'BAD_ARGUMENT')
    const message = b4a.from(msg.message, 'hex')
    if (msg.to === undefined || msg.to === null) {
      ext.broadcast(message)
      return { key: k, extension: msg.extension, sent: core.peers.length }
    }
    const peer = core.peers.find((p) => hex(p.remotePublicKey) === msg.to)
    if (!peer) throw new CmdError('no peer with remote public key ' + msg.to, 'BAD_ARGUMENT')
    ext.send(message, peer)
    return { key: k, extension: msg.extension, sent: 1 }
  },

  async cores () {
    return { cores: [...cores.values()].map((r) => ({ name: r.name, ...coreSummary(r.core) })) }
  }
}

const ALIASES = {
  wait_length: 'wait-length',
  wait_peers: 'wait-peers',
  close_core: 'close-core',
  register_extension: 'register-extension',
  send_extension: 'send-extension'
}

function round (x) {
  return Math.round(x * 1000) / 1000
}

async function runCommand (msg) {
  const id = msg.id === undefined ? null : msg.id
  const cmd = ALIASES[msg.cmd] || msg.cmd
  const reply = (obj) => emit({ event: 'reply', id, cmd, ...obj })

  if (cmd === 'exit') {
    await shutdown('exit', () => reply({ ok: true }))
    return
  }
  if (shuttingDown) return reply({ ok: false, error: 'peer is shutting down', code: 'SHUTDOWN' })

  const handler = Object.hasOwn(commands, cmd) ? commands[cmd] : null
  if (!handler) return reply({ ok: false, error: 'unknown command ' + JSON.stringify(msg.cmd), code: 'UNKNOWN_COMMAND' })

  const ac = new AbortController()
  pending.add(ac)
  let timer = null
  if (msg.timeout_ms !== undefined && msg.timeout_ms !== null) {
    timer = setTimeout(() => {
      ac.abort(new CmdError('timeout after ' + msg.timeout_ms + ' ms', 'TIMEOUT'))
    }, msg.timeout_ms)
  }
  try {
    const res = await abortable(handler(msg, ac.signal), ac.signal)
    reply({ ok: true, ...res })
  } catch (err) {
    log(cmd, 'failed:', (err && err.stack) || err)
    reply({ ok: false, error: String((err && err.message) || err), code: (err && err.code) || 'ERROR' })
  } finally {
    if (timer) clearTimeout(timer)
    pending.delete(ac)
  }
}

// ---------------------------------------------------------------------------
// Shutdown

function shutdown (reason, beforeExit) {
  if (shuttingDown) {
    if (beforeExit) shuttingDown.then(beforeExit)
    return shuttingDown
  }
  log('shutting down:', reason)
  shuttingDown = (async () => {
    for (const ac of pending) ac.abort(new CmdError('peer is shutting down', 'SHUTDOWN'))
    for (const s of servers) s.close()
    const closing = []
    for (const c of conns.values()) {
      c.noise.destroy()
      c.socket.destroy()
      closing.push(c.closedPromise)
    }
    await Promise.all(closing)
    try {
      for (const s of extraStores) await s.close()
      if (store) await store.close()
    } catch (err) {
      log('store close failed:', err.message)
    }
    if (memoryDir) fs.rmSync(memoryDir, { recursive: true, force: true })
  })()
  shuttingDown.then(() => {
    if (beforeExit) beforeExit()
    if (reason !== 'exit') emit({ event: 'exit', reason })
    if (stdoutBroken) process.exit(0)
    process.stdout.write('', () => process.exit(0))
  })
  return shuttingDown
}

process.on('SIGTERM', () => shutdown('SIGTERM'))
process.on('SIGINT', () => shutdown('SIGINT'))
process.on('uncaughtException', (err) => {
  process.stderr.write('peer.mjs uncaught exception: ' + ((err && err.stack) || err) + '\n')
  emit({ event: 'error', error: String((err && err.message) || err) })
})
process.on('unhandledRejection', (err) => {
  process.stderr.write('peer.mjs unhandled rejection: ' + ((err && err.stack) || err) + '\n')
  emit({ event: 'error', error: String((err && err.message) || err) })
})

// ---------------------------------------------------------------------------
// Main

async function main () {
  const opts = {}
  if (argv['primary-key']) {
    const pk = b4a.from(argv['primary-key'], 'hex')
    if (pk.byteLength !== 32) die('--primary-key must be 64 hex chars')
    opts.primaryKey = pk
    if (CS === 7) opts.unsafe = true
  }

  let storage
  if (CS === 6) {
    storage = argv.memory ? RAM : argv.dir
  } else {
    if (argv.memory) memoryDir = fs.mkdtempSync(path.join(os.tmpdir(), 'peer-cs7-'))
    storage = memoryDir || argv.dir
  }

  store = new Corestore(storage, opts)
  await store.ready()

  emit({
    event: 'ready',
    pid: process.pid,
    corestore: CS,
    versions: VERSIONS,
    storage: CS === 6 && argv.memory ? 'memory' : storage,
    primary_key: hex(store.primaryKey)
  })

  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
  rl.on('line', (line) => {
    if (!line.trim()) return
    let msg
    try {
      msg = JSON.parse(line)
    } catch (err) {
      emit({ event: 'reply', id: null, ok: false, error: 'invalid JSON: ' + err.message, code: 'BAD_JSON' })
      return
    }
    if (msg === null || typeof msg !== 'object' || typeof msg.cmd !== 'string') {
      emit({ event: 'reply', id: msg && msg.id !== undefined ? msg.id : null, ok: false, error: 'missing "cmd"', code: 'BAD_ARGUMENT' })
      return
    }
    runCommand(msg)
  })
  rl.on('close', () => shutdown('stdin-eof'))
}

main().catch((err) => {
  process.stderr.write('peer.mjs startup failed: ' + ((err && err.stack) || err) + '\n')
  emit({ event: 'fatal', error: String((err && err.message) || err) })
  process.exit(1)
})
