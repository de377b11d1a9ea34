#!/usr/bin/env node
// disk-write.mjs: write a corestore 6 directory with the real JS stack.
//
// Usage:  node disk-write.mjs <scenario> <dir>
//         node disk-write.mjs --list
//
// <dir> must not exist or be empty. The scenario writes a store into it with
// corestore@6.18.4 / hypercore@10.38.2 (the copy corestore6 itself loads),
// using a fixed primary key and fixed core names, closes everything, then
// prints ONE JSON object on stdout:
//
//   { scenario, corestore, hypercore, primaryKey, steps: [...],
//     cores: [{ label, name, namespace, key, discoveryKey, dir, length, fork,
//               byteLength, contiguousLength, treeHash, signature,
//               signatureValid, userData, blocks: [hex...] }],
//     oplogs: { <core dir>: layout as decoded by describeOplog() },
//     files: [{ path, size, sha256 }] }
//
// The per-core values are taken from the live session right before close
// (length/fork/hashes are therefore what JS had acknowledged). `oplogs` and
// `files` are taken after close, i.e. they describe the bytes on disk.
//
// Determinism: with the fixed primary key every key pair, block, tree node and
// Ed25519 signature is a pure function of the scenario, and nothing in the
// on-disk bytes depends on time or randomness, so two runs produce identical
// files (checked by running twice and diffing; file mtimes obviously differ).
//
// Scenarios: oplog-only, flushed, batches, truncated, userdata, multi.

import fs from 'node:fs'
import path from 'node:path'
import b4a from 'b4a'
import Corestore from 'corestore6'
import {
  hex, listFiles, describeCore, describeOplog, hypercoreVersion, corestoreVersion
} from './disk-common.mjs'

const PRIMARY_KEY = b4a.alloc(32, 0x11)

// Deterministic bytes: a tiny xorshift32 stream seeded per block.
function detBytes (seed, len) {
  const out = b4a.alloc(len)
  let x = (seed * 2654435761 + 0x9e3779b9) >>> 0
  if (x === 0) x = 1
  for (let i = 0; i < len; i++) {
    x ^= x << 13; x >>>= 0
    x ^= x >>> 17
    x ^= x << 5; x >>>= 0
    out[i] = x & 0xff
  }
  return out
}

function strs (...xs) { return xs.map(x => b4a.from(x)) }

class Recorder {
  constructor (dir) {
    this.dir = dir
    this.steps = []
    this.store = null
    this.cores = new Map() // label -> { session, name, namespace }
    this.final = new Map() // label -> description (last one wins)
    this.meta = new Map() // label -> { name, namespace }
  }

  step (s) { this.steps.push(s) }

  async open () {
    this.store = new Corestore(this.dir, { primaryKey: PRIMARY_KEY })
    await this.store.ready()
    this.step('open store')
  }

  async get (label, { name, ns = [], key } = {}) {
    let s = this.store
    for (const n of ns) s = s.namespace(n)
    const core = key ? s.get({ key }) : s.get({ name })
    await core.ready()
    this.cores.set(label, core)
    this.meta.set(label, { name: name || null, namespacePath: ns, namespace: name ? hex(s._namespace) : null })
    return core
  }

  async append (label, blocks) {
    const core = this.cores.get(label)
    await core.append(blocks)
    const ob = core.core.oplog.byteLength
    this.step(`${label}: append ${blocks.length} block(s) -> length ${core.length}, oplog entry bytes ${ob}${ob === 0 && blocks.length > 0 ? ' (flushed)' : ''}`)
  }

  async close () {
    for (const [label, core] of this.cores) {
      this.final.set(label, await describeCore(core))
    }
    await this.store.close()
    this.cores.clear()
    this.store = null
    this.step('close store')
  }

  result (scenario) {
    const cores = []
    for (const [label, d] of this.final) {
      const m = this.meta.get(label)
      cores.push({ label, name: m.name, namespacePath: m.namespacePath, namespace: m.namespace, ...d })
    }
    const oplogs = {}
    for (const c of cores) {
      const p = path.join(this.dir, c.dir, 'oplog')
      oplogs[c.dir] = fs.existsSync(p) ? describeOplog(fs.readFileSync(p)) : null
    }
    return {
      scenario,
      corestore: corestoreVersion,
      hypercore: hypercoreVersion,
      primaryKey: hex(PRIMARY_KEY),
      steps: this.steps,
      cores,
      oplogs,
      files: listFiles(this.dir)
    }
  }
}

const scenarios = {
  // One core, one batch, close. hypercore flushes the header once at creation
  // and once for the first userData write; the namespace userData and the
  // append stay as oplog entries, so the core dir holds only oplog + data.
  async 'oplog-only' (r) {
    await r.open()
    await r.get('test', { name: 'test' })
    await r.append('test', strs('a', 'bb', 'ccc'))
    await r.close()
  },

  // Several batches over three sessions. The first mutation after every open
  // flushes (bitfield -> tree -> header), later ones stay in the oplog.
  async flushed (r) {
    await r.open()
    await r.get('test', { name: 'test' })
    await r.append('test', strs('a', 'bb', 'ccc'))
    await r.close()

    await r.open()
    await r.get('test', { name: 'test' })
    await r.append('test', strs('dddd', 'eeeee')) // flushes
    await r.append('test', strs('ffffff'))
    await r.close()

    await r.open()
    await r.get('test', { name: 'test' })
    await r.append('test', strs('ggggggg', 'hhhhhhhh', 'iiiiiiiii')) // flushes
    await r.append('test', strs('jjjjjjjjjj'))
    await r.append('test', strs('kkkkkkkkkkk', 'llllllllllll'))
    await r.close()
  },

  // ~1000 blocks in many batches of varying size, including empty batches
  // (a no-op in hypercore: no oplog entry), zero-length blocks and three
  // blocks of 64 KiB +- 1, spread over four sessions. In the last session two
  // big batches push the oplog entries past 64 KiB, which forces a flush before
  // the every-4th-mutation rule would; the small batches after it stay as
  // oplog entries. Each step records the oplog entry bytes after the append
  // (0 = the append flushed).
  async batches (r) {
    const sessions = [
      [1, 0, 2, 3, 1, 7, 0],
      [16, 31, 1, 5],
      [0, 33, 2, 9, 1, 17, 0],
      [1, 460, 460, 0, 2, 1]
    ]
    const total = sessions.flat().reduce((a, b) => a + b, 0)
    const big = new Map([[7, 65536], [300, 65535], [total - 1, 65537]])
    let idx = 0
    for (const counts of sessions) {
      await r.open()
      await r.get('batches', { name: 'batches' })
      for (const n of counts) {
        const blocks = []
        for (let k = 0; k < n; k++, idx++) {
          let len = big.get(idx)
          if (len === undefined) len = idx % 37 === 5 ? 0 : (idx * 7) % 41 + 1
          blocks.push(detBytes(idx, len))
        }
        await r.append('batches', blocks)
      }
      await r.close()
    }
  },

  // Append, truncate (fork 1), append; reopen, truncate again (fork 2), append.
  async truncated (r) {
    const blk = (p, i) => b4a.from(`${p}-${i}`)
    await r.open()
    await r.get('trunc', { name: 'trunc' })
    await r.append('trunc', [0, 1, 2, 3].map(i => blk('a', i)))
    await r.append('trunc', [4, 5, 6, 7, 8, 9].map(i => blk('a', i)))
    await r.cores.get('trunc').truncate(6)
    r.step('trunc: truncate(6) -> fork ' + r.cores.get('trunc').fork)
    await r.append('trunc', [6, 7, 8].map(i => blk('b', i)))
    await r.close()

    await r.open()
    await r.get('trunc', { name: 'trunc' })
    await r.cores.get('trunc').truncate(4)
    r.step('trunc: truncate(4) -> fork ' + r.cores.get('trunc').fork)
    await r.append('trunc', [4, 5].map(i => blk('c', i)))
    await r.append('trunc', [blk('c', 6)])
    await r.close()
  },

  // Large userData: the header no longer fits in a 4096 byte oplog slot, so it
  // moves to the `header` file and the slot keeps only {start, length}.
  async userdata (r) {
    await r.open()
    const core = await r.get('ud', { name: 'ud' })
    await r.append('ud', strs('one', 'two'))
    await core.setUserData('big', detBytes(1, 6000), { flush: true })
    r.step('ud: setUserData big (6000 B), flush')
    await core.setUserData('small', b4a.from('x'))
    r.step('ud: setUserData small')
    await r.append('ud', strs('three'))
    await core.setUserData('big2', detBytes(2, 3000), { flush: true })
    r.step('ud: setUserData big2 (3000 B), flush')
    await r.close()

    await r.open()
    const core2 = await r.get('ud', { name: 'ud' })
    await r.append('ud', strs('four')) // first mutation: flushes
    await core2.setUserData('small', null)
    r.step('ud: delete small')
    await core2.setUserData('big', detBytes(3, 5000))
    r.step('ud: setUserData big (5000 B), no flush')
    await r.close()
  },

  // Several named cores in different namespaces plus an empty core and a
  // key-only (non-writable) core.
  async multi (r) {
    await r.open()
    await r.get('alpha', { name: 'alpha' })
    await r.append('alpha', strs('alpha-0', 'alpha-1', 'alpha-2'))
    await r.get('empty', { name: 'empty' })
    await r.get('foo/test', { name: 'test', ns: ['foo'] })
    await r.append('foo/test', strs('foo-test-0', 'foo-test-1'))
    await r.get('foo/bar/alpha', { name: 'alpha', ns: ['foo', 'bar'] })
    await r.append('foo/bar/alpha', strs('x'))
    await r.append('foo/bar/alpha', strs('yy', 'zzz', 'wwww'))
    // a reader core: key only, no secret key, nothing downloaded
    const foreign = await r.store.session({ primaryKey: b4a.alloc(32, 0x22) }).createKeyPair('foreign')
    await r.get('reader', { key: foreign.publicKey })
    r.step('reader: created by key ' + hex(foreign.publicKey))
    await r.close()
  }
}

async function main () {
  const [scenario, dir] = process.argv.slice(2)
  if (scenario === '--list') {
    process.stdout.write(JSON.stringify(Object.keys(scenarios)) + '\n')
    return
  }
  if (!scenario || !dir || !scenarios[scenario]) {
    process.stderr.write('usage: node disk-write.mjs <' + Object.keys(scenarios).join('|') + '> <dir>\n')
    process.exitCode = 2
    return
  }
  if (fs.existsSync(dir) && fs.readdirSync(dir).length > 0) {
    process.stderr.write(`refusing to write into non-empty directory ${dir}\n`)
    process.exitCode = 2
    return
  }
  fs.mkdirSync(dir, { recursive: true })
  const r = new Recorder(dir)
  await scenarios[scenario](r)
  process.stdout.write(JSON.stringify(r.result(scenario), null, 1) + '\n')
}

main().catch(err => {
  process.stderr.write((err && err.stack) || String(err))
  process.stderr.write('\n')
  process.exit(1)
})
