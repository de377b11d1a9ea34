#!/usr/bin/env node
// proof-gen.mjs: Merkle proofs built by the real hypercore@10.38.2, as JSON
// fixtures for the Rust proof generator/verifier.
//
// Usage:  node proof-gen.mjs <out.json>
//
// Cores are created in memory (random-access-memory) by corestore@6.18.4 with
// primaryKey = 32 x 0x11 and the name `proof-<L>`; core L holds the blocks
// "block-0" .. "block-(L-1)" (utf-8), appended in a single batch. One extra core
// `proof-fork` has a non-zero fork: 12 blocks "block-i", truncate(7) (fork 1),
// then "fork-7" .. "fork-10" appended (length 11).
//
// For each request the script calls the responder-side proof builder exactly as
// the replicator does (`core.core.tree.proof(msg)` = merkle-tree.js
// generateProof), fills `block.value` from local storage like
// Replicator._getProof, and records:
//   request  -- {block, hash, seek, upgrade} given to tree.proof (null = absent)
//   proof    -- {fork, block {index, value, nodes}, hash {index, nodes},
//               seek {bytes, nodes}, upgrade {start, length, nodes,
//               additionalNodes, signature}}; node = {index, size, hash};
//               binary values as lowercase hex.
//   error    -- {code, message} instead of proof when tree.proof throws (the
//               replicator would then tear down the stream, spec §9.5).
//   wire     -- request: bytes of messages.wire.request for
//                 {id, fork, block, hash, seek, upgrade, manifest: false, priority: 0}
//               data:    bytes of messages.wire.data for
//                 {request: id, fork, block, hash, seek, upgrade, manifest: null}
//               (these are protomux message payloads: no channel id / type prefix).
// Output is deterministic (fixed keys, Ed25519 is deterministic).

import fs from 'node:fs'
import b4a from 'b4a'
import RAM from 'random-access-memory'
import Corestore from 'corestore6'
import { hex, messages, hypercoreVersion, corestoreVersion } from './disk-common.mjs'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const c = require('compact-encoding')
const flat = createRequire(require.resolve('hypercore10'))('flat-tree')

const PRIMARY_KEY = b4a.alloc(32, 0x11)
const LENGTHS = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33]
const SMALL = new Set([1, 2, 3, 4, 5, 7, 8, 9])

const nodeJson = n => ({ index: n.index, size: n.size, hash: hex(n.hash) })
const nodesJson = ns => ns.map(nodeJson)

function proofJson (p) {
  return {
    fork: p.fork,
    block: p.block ? { index: p.block.index, value: hex(p.block.value), nodes: nodesJson(p.block.nodes) } : null,
    hash: p.hash ? { index: p.hash.index, nodes: nodesJson(p.hash.nodes) } : null,
    seek: p.seek ? { bytes: p.seek.bytes, nodes: nodesJson(p.seek.nodes) } : null,
    upgrade: p.upgrade
      ? {
          start: p.upgrade.start,
          length: p.upgrade.length,
          nodes: nodesJson(p.upgrade.nodes),
          additionalNodes: nodesJson(p.upgrade.additionalNodes),
          signature: hex(p.upgrade.signature)
        }
      : null
  }
}

// Largest `nodes` value a requester may send for block `i` against a tree of
// `length` blocks: walk up while the ancestor does not cover the head.
function maxNodes (index, length) {
  const head = 2 * length
  const ite = flat.iterator(index)
  let n = 0
  while (true) {
    ite.parent()
    if (ite.contains(head)) return n
    n++
  }
}

function uniq (xs) { return [...new Set(xs)] }

function requestsFor (L) {
  const reqs = []
  // block requests without upgrade: every block and every legal `nodes` value
  // for small trees; fewer for the larger ones
  const blockIdx = L <= 17 ? [...Array(L).keys()] : uniq([0, 1, 2, Math.floor(L / 2), L - 2, L - 1])
  for (const i of blockIdx) {
    const top = maxNodes(2 * i, L)
    const ks = L <= 9 ? [...Array(top + 1).keys()] : uniq([0, 1, top]).filter(k => k <= top)
    for (const k of ks) reqs.push({ block: { index: i, nodes: k } })
  }
  // hash requests without upgrade (every complete node of the tree)
  if ([5, 9, 17].includes(L)) {
    for (let idx = 0; idx < 2 * L; idx++) {
      if (flat.rightSpan(idx) >= 2 * L) continue // not a complete node of this tree
      const top = maxNodes(idx, L)
      for (const k of uniq([0, top])) reqs.push({ hash: { index: idx, nodes: k } })
    }
  }
  // upgrades: full (start .. L) from every remote length ...
  const starts = L <= 9 ? [...Array(L).keys()] : uniq([0, ...LENGTHS.filter(x => x < L), L - 1])
  for (const s of starts) reqs.push({ upgrade: { start: s, length: L - s } })
  // ... and partial ones (start .. e < L), which need additionalNodes
  if (L <= 9) {
    for (const s of starts) for (let e = s + 1; e < L; e++) reqs.push({ upgrade: { start: s, length: e - s } })
  } else {
    for (const s of [0, 1, 3, 7, 8, 9, 15, 16]) {
      for (const e of uniq([s + 1, 9, 16, 17, 31, 32])) if (e > s && e < L) reqs.push({ upgrade: { start: s, length: e - s } })
    }
  }
  // block + upgrade: block inside the upgrade (nodes 0), and block below the
  // requester's length with the requester's missing-node count
  if ([3, 5, 8, 9, 16, 17, 33].includes(L)) {
    for (const s of uniq([0, 1, Math.floor(L / 2), L - 1])) {
      if (s >= L) continue
      for (const i of uniq([s, Math.floor((s + L) / 2), L - 1])) {
        if (i >= s && i < L) reqs.push({ block: { index: i, nodes: 0 }, upgrade: { start: s, length: L - s } })
      }
      if (s > 0) {
        for (const i of uniq([0, s - 1])) reqs.push({ block: { index: i, nodes: maxNodes(2 * i, s) }, upgrade: { start: s, length: L - s } })
      }
      if (s > 0 && L - s > 1) reqs.push({ block: { index: s, nodes: 0 }, upgrade: { start: s, length: 1 } })
    }
  }
  return reqs
}

function seekRequestsFor (L, byteLength) {
  const reqs = []
  if (![3, 5, 8, 9, 16, 17, 33].includes(L)) return reqs
  const offsets = uniq([0, 1, 7, 13, Math.floor(byteLength / 2), byteLength - 1]).filter(b => b < byteLength)
  for (const b of offsets) {
    reqs.push({ seek: { bytes: b, padding: 0 }, upgrade: { start: 0, length: L } })
    if (L > 2) reqs.push({ seek: { bytes: b, padding: 0 }, upgrade: { start: Math.floor(L / 2), length: L - Math.floor(L / 2) } })
  }
  // hash + seek inside the verified tree (how a requester narrows a seek);
  // some of these ask for a byte offset outside the hashed subtree and fail
  if ([5, 9, 17].includes(L)) {
    const top = flat.fullRoots(2 * L)[0]
    const span = flat.spans(top)
    for (const b of offsets) {
      for (let i = span[0] / 2; i <= span[1] / 2; i += Math.max(1, Math.floor(L / 3))) {
        reqs.push({ hash: { index: 2 * i, nodes: maxNodes(2 * i, L) }, seek: { bytes: b, padding: 0 } })
      }
    }
  }
  return reqs
}

function invalidRequestsFor (L) {
  if (L !== 9) return []
  return [
    { upgrade: { start: 0, length: L + 1 } },
    { upgrade: { start: L, length: 1 } },
    { upgrade: { start: 3, length: 0 } },
    { block: { index: 2, nodes: maxNodes(4, L) + 1 } },
    { block: { index: 8, nodes: 0 }, seek: { bytes: 3, padding: 0 }, upgrade: { start: 4, length: 5 } },
    { hash: { index: 17, nodes: 0 } },
    { seek: { bytes: 10000, padding: 0 }, upgrade: { start: 0, length: L } }
  ]
}

let nextId = 0

async function runCase (core, request) {
  const id = (nextId++ % 300) + 1
  const msg = {
    id,
    fork: core.fork,
    block: request.block || null,
    hash: request.hash || null,
    seek: request.seek || null,
    upgrade: request.upgrade || null,
    manifest: false,
    priority: 0
  }
  const out = { request: { block: msg.block, hash: msg.hash, seek: msg.seek, upgrade: msg.upgrade } }
  let proof
  try {
    // tree.proof may rewrite upgrade.start/length for prologue cores; pass copies
    proof = await core.core.tree.proof({
      block: msg.block && { ...msg.block },
      hash: msg.hash && { ...msg.hash },
      seek: msg.seek && { ...msg.seek },
      upgrade: msg.upgrade && { ...msg.upgrade }
    })
  } catch (err) {
    out.error = { code: err.code || null, message: err.message }
    out.wire = { request: hex(c.encode(messages.wire.request, msg)), data: null }
    return out
  }
  if (proof.block) proof.block.value = await core.get(proof.block.index)
  out.proof = proofJson(proof)
  const data = {
    request: id,
    fork: proof.fork,
    block: proof.block,
    hash: proof.hash,
    seek: proof.seek,
    upgrade: proof.upgrade,
    manifest: null
  }
  out.id = id
  out.wire = { request: hex(c.encode(messages.wire.request, msg)), data: hex(c.encode(messages.wire.data, data)) }
  return out
}

async function coreJson (label, core) {
  const roots = await core.core.tree.getRoots(core.length)
  return {
    label,
    key: hex(core.key),
    length: core.length,
    fork: core.fork,
    byteLength: core.byteLength,
    treeHash: hex(await core.treeHash()),
    signature: hex(core.core.tree.signature),
    roots: nodesJson(roots)
  }
}

async function main () {
  const outPath = process.argv[2]
  if (!outPath) {
    process.stderr.write('usage: node proof-gen.mjs <out.json>\n')
    process.exitCode = 2
    return
  }
  const store = new Corestore(RAM, { primaryKey: PRIMARY_KEY })
  await store.ready()

  const cores = []
  const cases = []

  for (const L of [...LENGTHS, 100]) {
    const core = store.get({ name: 'proof-' + L })
    await core.ready()
    const blocks = []
    for (let i = 0; i < L; i++) blocks.push(b4a.from('block-' + i))
    await core.append(blocks)
    const label = 'proof-' + L
    cores.push(await coreJson(label, core))
    let reqs
    if (L === 100) {
      reqs = [
        { block: { index: 0, nodes: maxNodes(0, 100) } },
        { block: { index: 50, nodes: maxNodes(100, 100) } },
        { block: { index: 99, nodes: 0 } },
        { upgrade: { start: 0, length: 100 } },
        { upgrade: { start: 33, length: 67 } },
        { upgrade: { start: 64, length: 36 } },
        { upgrade: { start: 99, length: 1 } },
        { upgrade: { start: 1, length: 63 } },
        { block: { index: 70, nodes: 0 }, upgrade: { start: 64, length: 36 } },
        { block: { index: 10, nodes: maxNodes(20, 64) }, upgrade: { start: 64, length: 36 } },
        { seek: { bytes: 500, padding: 0 }, upgrade: { start: 0, length: 100 } },
        { hash: { index: 63, nodes: 1 } }
      ]
    } else {
      reqs = [...requestsFor(L), ...seekRequestsFor(L, core.byteLength), ...invalidRequestsFor(L)]
    }
    for (const r of reqs) cases.push({ core: label, ...(await runCase(core, r)) })
  }

  {
    const core = store.get({ name: 'proof-fork' })
    await core.ready()
    const blocks = []
    for (let i = 0; i < 12; i++) blocks.push(b4a.from('block-' + i))
    await core.append(blocks)
    await core.truncate(7)
    await core.append([7, 8, 9, 10].map(i => b4a.from('fork-' + i)))
    cores.push(await coreJson('proof-fork', core))
    const reqs = [
      { block: { index: 3, nodes: 0 } },
      { block: { index: 8, nodes: 1 } },
      { upgrade: { start: 0, length: 11 } },
      { upgrade: { start: 7, length: 4 } },
      { upgrade: { start: 4, length: 3 } },
      { block: { index: 9, nodes: 0 }, upgrade: { start: 7, length: 4 } },
      { hash: { index: 3, nodes: 1 } }
    ]
    for (const r of reqs) cases.push({ core: 'proof-fork', ...(await runCase(core, r)) })
  }

  await store.close()

  const out = {
    generator: 'tests/js/proof-gen.mjs',
    corestore: corestoreVersion,
    hypercore: hypercoreVersion,
    primaryKey: hex(PRIMARY_KEY),
    cores,
    cases
  }
  fs.writeFileSync(outPath, JSON.stringify(out) + '\n')
}

main().catch(err => {
  process.stderr.write((err && err.stack) || String(err))
  process.stderr.write('\n')
  process.exit(1)
})
