#!/usr/bin/env node
// disk-read.mjs: open a corestore 6 directory with the real JS stack and
// report what it sees, so a store written by the Rust engine can be checked by
// corestore@6.18.4 / hypercore@10.38.2.
//
// Usage:  node disk-read.mjs [--in-place] [--no-audit] [--primary-key HEX] <dir> [KEYHEX ...]
//
//   <dir>          corestore directory (contains `primary-key` and `cores/`).
//   KEYHEX ...     hypercore keys (64 hex chars) to open. Without keys every
//                  core directory `cores/aa/bb/<discoveryKey>/` is opened by
//                  its discovery key (corestore's internal `_discoveryKey`
//                  lookup, the same path replication uses), so the key is
//                  whatever the core's own header says.
//   --in-place     operate on <dir> itself. By default the directory is first
//                  copied to a temporary directory, because merely opening a
//                  store may rewrite it (hypercore truncates a torn oplog tail)
//                  and audit() flushes; the copy is deleted afterwards.
//   --no-audit     skip phase 2.
//   --primary-key  pass this primary key to corestore instead of letting it
//                  read the `primary-key` file (normally not needed).
//
// Output (stdout, one JSON object):
//   { dir, primaryKeyFile, cores: [ per core, see below ],
//     changedByOpen: [file changes caused by phase 1],
//     changedByAudit: [file changes caused by phase 2] }
//
// Phase 1 (read): per core either { request, error: {code, message} } or
//   { request, key, discoveryKey, dir, length, fork, byteLength,
//     contiguousLength, treeHash, headerRootHash, signature,
//     signatureValid   -- Ed25519 over the 80-byte compat signable
//                         TREE || treeHash || u64le(length) || u64le(fork)
//                         with the core key as public key (spec §4.4),
//     verifierValid    -- hypercore's own Verifier on the current tree
//                         (also covers non-compat manifests),
//     writable, manifest, userData,
//     blocks: [hex | null]  -- core.get(i, {wait: false}); null = not stored,
//                              {error} if the read threw,
//     leafMismatch: [i...]  -- blocks whose leaf hash (hypercore-crypto
//                              data()) differs from tree node 2i }
// Phase 2 (audit, fresh open of the same files): per core
//   audit: { corrections: {tree, blocks}, contiguousLength, missing: [i...] }
//   where `missing` lists blocks below length that are not stored afterwards.

import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import b4a from 'b4a'
import hcrypto from 'hypercore-crypto'
import Corestore from 'corestore6'
import { hex, listFiles, coreDirOf, verifyCompat, messages } from './disk-common.mjs'
import { createRequire } from 'node:module'

const c = createRequire(import.meta.url)('compact-encoding')

function parseArgs (argv) {
  const opts = { inPlace: false, audit: true, primaryKey: null, dir: null, keys: [] }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--in-place') opts.inPlace = true
    else if (a === '--no-audit') opts.audit = false
    else if (a === '--primary-key') opts.primaryKey = b4a.from(argv[++i], 'hex')
    else if (opts.dir === null) opts.dir = a
    else opts.keys.push(a.toLowerCase())
  }
  return opts
}

function discoverCores (dir) {
  const out = []
  const root = path.join(dir, 'cores')
  if (!fs.existsSync(root)) return out
  for (const a of fs.readdirSync(root).sort()) {
    for (const b of fs.readdirSync(path.join(root, a)).sort()) {
      for (const id of fs.readdirSync(path.join(root, a, b)).sort()) {
        if (/^[0-9a-f]{64}$/.test(id)) out.push(id)
      }
    }
  }
  return out
}

function errJson (err) {
  return { code: (err && err.code) || null, message: String((err && err.message) || err) }
}

function getCore (store, req) {
  return req.key
    ? store.get({ key: b4a.from(req.key, 'hex'), createIfMissing: false })
    : store.get({ _discoveryKey: b4a.from(req.discoveryKey, 'hex') })
}

async function readCore (store, req) {
  const core = getCore(store, req)
  try {
    await core.ready()
  } catch (err) {
    await core.close().catch(() => {})
    return { request: req, error: errJson(err) }
  }
  const inner = core.core
  const length = core.length
  const blocks = []
  const leafMismatch = []
  for (let i = 0; i < length; i++) {
    let b
    try {
      b = await core.get(i, { wait: false })
    } catch (err) {
      blocks.push({ error: errJson(err) })
      continue
    }
    blocks.push(b === null ? null : hex(b))
    if (b !== null) {
      try {
        const leaf = await inner.tree.get(2 * i)
        if (!b4a.equals(leaf.hash, hcrypto.data(b))) leafMismatch.push(i)
      } catch {
        leafMismatch.push(i)
      }
    }
  }
  let treeHash = null
  let treeHashError = null
  try {
    treeHash = await core.treeHash()
  } catch (err) {
    treeHashError = errJson(err)
  }
  const signature = inner.tree.signature
  let verifierValid = null
  if (length > 0) {
    try {
      verifierValid = !!(inner.verifier && inner.verifier.verify(inner.tree.batch(), signature))
    } catch (err) {
      verifierValid = false
    }
  }
  const out = {
    request: req,
    key: hex(core.key),
    discoveryKey: hex(core.discoveryKey),
    dir: coreDirOf(core.discoveryKey),
    length,
    fork: core.fork,
    byteLength: core.byteLength,
    contiguousLength: core.contiguousLength,
    treeHash: hex(treeHash),
    treeHashError,
    headerRootHash: hex(inner.header.tree.rootHash),
    signature: hex(signature),
    signatureValid: length === 0 ? null : (treeHash !== null && verifyCompat(core.key, treeHash, length, core.fork, signature)),
    verifierValid,
    writable: core.writable,
    manifest: inner.header.manifest ? hex(c.encode(messages.manifest, inner.header.manifest)) : null,
    userData: inner.header.userData.map(u => ({ key: u.key, value: hex(u.value) })),
    blocks,
    leafMismatch
  }
  await core.close()
  return out
}

async function auditCore (store, req) {
  const core = getCore(store, req)
  try {
    await core.ready()
  } catch (err) {
    await core.close().catch(() => {})
    return { error: errJson(err) }
  }
  let corrections
  try {
    corrections = await core.core.audit()
  } catch (err) {
    await core.close().catch(() => {})
    return { error: errJson(err) }
  }
  const missing = []
  for (let i = 0; i < core.length; i++) {
    if (!(await core.has(i))) missing.push(i)
  }
  const out = { corrections, contiguousLength: core.contiguousLength, missing }
  await core.close()
  return out
}

function diffFiles (before, after) {
  const m = new Map(before.map(f => [f.path, f]))
  const out = []
  for (const f of after) {
    const b = m.get(f.path)
    m.delete(f.path)
    if (!b) out.push({ path: f.path, before: null, after: { size: f.size, sha256: f.sha256 } })
    else if (b.sha256 !== f.sha256) out.push({ path: f.path, before: { size: b.size, sha256: b.sha256 }, after: { size: f.size, sha256: f.sha256 } })
  }
  for (const b of m.values()) out.push({ path: b.path, before: { size: b.size, sha256: b.sha256 }, after: null })
  return out
}

async function main () {
  const opts = parseArgs(process.argv.slice(2))
  if (!opts.dir) {
    process.stderr.write('usage: node disk-read.mjs [--in-place] [--no-audit] [--primary-key HEX] <dir> [KEYHEX ...]\n')
    process.exitCode = 2
    return
  }
  if (!fs.existsSync(opts.dir)) throw new Error('no such directory: ' + opts.dir)

  let work = opts.dir
  let tmp = null
  if (!opts.inPlace) {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'disk-read-'))
    work = path.join(tmp, 'store')
    fs.cpSync(opts.dir, work, { recursive: true })
  }

  try {
    const pkFile = path.join(work, 'primary-key')
    const primaryKeyFile = fs.existsSync(pkFile) ? hex(fs.readFileSync(pkFile)) : null
    const requests = opts.keys.length
      ? opts.keys.map(k => ({ key: k }))
      : discoverCores(work).map(id => ({ discoveryKey: id }))

    const storeOpts = opts.primaryKey ? { primaryKey: opts.primaryKey } : {}

    const before = listFiles(work)
    let store = new Corestore(work, storeOpts)
    await store.ready()
    const cores = []
    for (const req of requests) cores.push(await readCore(store, req))
    await store.close()
    const afterOpen = listFiles(work)

    let afterAudit = afterOpen
    if (opts.audit) {
      store = new Corestore(work, storeOpts)
      await store.ready()
      for (let i = 0; i < requests.length; i++) {
        if (cores[i].error) continue
        cores[i].audit = await auditCore(store, requests[i])
      }
      await store.close()
      afterAudit = listFiles(work)
    }

    const result = {
      dir: opts.dir,
      primaryKeyFile,
      cores,
      changedByOpen: diffFiles(before, afterOpen),
      changedByAudit: opts.audit ? diffFiles(afterOpen, afterAudit) : null
    }
    process.stdout.write(JSON.stringify(result, null, 1) + '\n')
  } finally {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true })
  }
}

main().catch(err => {
  process.stderr.write((err && err.stack) || String(err))
  process.stderr.write('\n')
  process.exit(1)
})
