// Shared helpers for the disk-compatibility scripts (disk-write.mjs, disk-read.mjs).
//
// Everything here only *calls* the pinned JS packages; the one piece of local
// logic is `describeOplog`, a small frame walker that reports how the oplog file
// is laid out (slot bits, entry offsets) so the Rust tests have exact targets.
// It decodes the payloads with hypercore's own `messages.js` codecs.

import fs from 'node:fs'
import path from 'node:path'
import crypto from 'node:crypto'
import { createRequire } from 'node:module'
import b4a from 'b4a'
import hcrypto from 'hypercore-crypto'

const require = createRequire(import.meta.url)

// corestore6 loads its own copy of hypercore; resolve every internal module
// through that copy so we talk to exactly the code that wrote the files.
const corestorePath = require.resolve('corestore6')
const requireFromCorestore = createRequire(corestorePath)
const hypercorePath = requireFromCorestore.resolve('hypercore')
const requireFromHypercore = createRequire(hypercorePath)

export const hypercoreVersion = requireFromCorestore('hypercore/package.json').version
export const corestoreVersion = require('corestore6/package.json').version
export const messages = requireFromHypercore('./lib/messages.js')
export const caps = requireFromHypercore('./lib/caps.js')
const { crc32 } = requireFromHypercore('crc-universal')
const c = requireFromHypercore('compact-encoding')

export const TREE_NS = hcrypto.namespace('hypercore', 6)[0]

export function hex (buf) {
  if (buf === null || buf === undefined) return null
  return b4a.toString(buf, 'hex')
}

export function sha256 (buf) {
  return crypto.createHash('sha256').update(buf).digest('hex')
}

// All regular files below `dir`, sorted, with size and sha256.
export function listFiles (dir) {
  const out = []
  walk('')
  out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  return out

  function walk (rel) {
    const abs = path.join(dir, rel)
    for (const name of fs.readdirSync(abs).sort()) {
      const r = rel ? rel + '/' + name : name
      const st = fs.statSync(path.join(dir, r))
      if (st.isDirectory()) walk(r)
      else if (st.isFile()) {
        out.push({ path: r, size: st.size, sha256: sha256(fs.readFileSync(path.join(dir, r))) })
      }
    }
  }
}

export function coreDirOf (discoveryKey) {
  const id = hex(discoveryKey)
  return 'cores/' + id.slice(0, 2) + '/' + id.slice(2, 4) + '/' + id
}

// Compat (80 byte) signable: TREE || treeHash || u64le(length) || u64le(fork).
export function compatSignable (treeHash, length, fork) {
  const buf = b4a.alloc(80)
  const state = { start: 0, end: 80, buffer: buf }
  c.fixed32.encode(state, TREE_NS)
  c.fixed32.encode(state, treeHash)
  c.uint64.encode(state, length)
  c.uint64.encode(state, fork)
  return buf
}

function nodeJson (n) {
  return { index: n.index, size: n.size, hash: hex(n.hash) }
}

function headerJson (h) {
  if (h.external) return { external: { start: h.external.start, length: h.external.length } }
  return {
    key: hex(h.key),
    manifest: h.manifest ? hex(c.encode(messages.manifest, h.manifest)) : null,
    keyPair: h.keyPair ? { publicKey: hex(h.keyPair.publicKey), secretKey: hex(h.keyPair.secretKey) } : null,
    userData: h.userData.map(u => ({ key: u.key, value: hex(u.value) })),
    tree: { fork: h.tree.fork, length: h.tree.length, rootHash: hex(h.tree.rootHash), signature: hex(h.tree.signature) },
    hints: { reorgs: h.hints.reorgs, contiguousLength: h.hints.contiguousLength }
  }
}

function entryJson (e) {
  return {
    userData: e.userData ? { key: e.userData.key, value: hex(e.userData.value) } : null,
    treeNodes: e.treeNodes ? e.treeNodes.map(nodeJson) : null,
    treeUpgrade: e.treeUpgrade
      ? { fork: e.treeUpgrade.fork, ancestors: e.treeUpgrade.ancestors, length: e.treeUpgrade.length, signature: hex(e.treeUpgrade.signature) }
      : null,
    bitfield: e.bitfield ? { drop: e.bitfield.drop, start: e.bitfield.start, length: e.bitfield.length } : null
  }
}

// Parse one frame at `offset`: u32le crc, u32le (len<<2|partial<<1|headerBit), payload.
function frameAt (buf, offset, enc) {
  if (buf.byteLength - offset < 8) return { ok: false, reason: 'short-prefix' }
  const crc = buf.readUInt32LE(offset)
  const word = buf.readUInt32LE(offset + 4)
  const len = word >>> 2
  const end = offset + 8 + len
  const res = { offset, len, size: len + 8, headerBit: word & 1, partial: (word & 2) !== 0 }
  if (end > buf.byteLength) return { ok: false, reason: 'short-payload', ...res }
  if (crc32(buf.subarray(offset + 4, end)) !== crc) return { ok: false, reason: 'crc', ...res }
  try {
    res.message = c.decode(enc, buf.subarray(offset + 8, end))
  } catch (err) {
    return { ok: false, reason: 'decode: ' + err.message, ...res }
  }
  return { ok: true, ...res }
}

// Describe the layout of an oplog file the way hypercore 10 would interpret it.
export function describeOplog (buf) {
  const slots = [0, 4096].map(off => {
    const f = frameAt(buf, off, messages.oplog.header)
    if (!f.ok) return { offset: off, valid: false, reason: f.reason || null }
    return { offset: off, valid: true, frameLength: f.len, headerBit: f.headerBit, header: headerJson(f.message) }
  })
  const out = { fileSize: buf.byteLength, slots, currentSlot: null, entryBit: null, entries: [], goodEnd: null, stopReason: null }
  if (!slots[0].valid && !slots[1].valid) {
    out.stopReason = buf.byteLength >= 8192 ? 'no valid header (hypercore: OPLOG_CORRUPT)' : 'no header (new core)'
    return out
  }
  let b0, b1
  if (slots[0].valid && !slots[1].valid) { b0 = b1 = slots[0].headerBit } else if (!slots[0].valid) { b1 = slots[1].headerBit; b0 = (b1 + 1) & 1 } else { b0 = slots[0].headerBit; b1 = slots[1].headerBit }
  const current = (b0 + b1) & 1
  out.currentSlot = current
  out.entryBit = current
  let off = 8192
  const entries = []
  while (true) {
    const f = frameAt(buf, off, messages.oplog.entry)
    if (!f.ok) { out.stopReason = off >= buf.byteLength ? 'end-of-file' : (f.reason || 'invalid'); break }
    if (f.headerBit !== current) { out.stopReason = 'header-bit-mismatch'; break }
    entries.push({ offset: off, frameLength: f.len, headerBit: f.headerBit, partial: f.partial, entry: entryJson(f.message) })
    off += f.size
  }
  while (entries.length && entries[entries.length - 1].partial) entries.pop()
  out.entries = entries
  out.goodEnd = entries.length ? entries[entries.length - 1].offset + entries[entries.length - 1].frameLength + 8 : 8192
  return out
}

// Collect everything a reader should observe about one open hypercore session.
export async function describeCore (core, { includeUserData = true } = {}) {
  await core.ready()
  const inner = core.core
  const length = core.length
  const blocks = []
  for (let i = 0; i < length; i++) {
    const b = await core.get(i, { wait: false })
    blocks.push(b === null ? null : hex(b))
  }
  const treeHash = await core.treeHash()
  const signature = inner.tree.signature
  const out = {
    key: hex(core.key),
    discoveryKey: hex(core.discoveryKey),
    dir: coreDirOf(core.discoveryKey),
    length,
    fork: core.fork,
    byteLength: core.byteLength,
    contiguousLength: core.contiguousLength,
    treeHash: hex(treeHash),
    signature: hex(signature),
    signatureValid: length === 0 ? null : verifyCompat(core.key, treeHash, length, core.fork, signature)
  }
  if (includeUserData) {
    out.userData = inner.header.userData.map(u => ({ key: u.key, value: hex(u.value) }))
  }
  out.blocks = blocks
  return out
}

export function verifyCompat (key, treeHash, length, fork, signature) {
  if (!signature) return false
  return hcrypto.verify(compatSignable(treeHash, length, fork), signature, key)
}
