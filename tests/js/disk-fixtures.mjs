#!/usr/bin/env node
// disk-fixtures.mjs: (re)generate crates/hypercore-lite/tests/fixtures/hc10.38/.
//
// Usage:  node disk-fixtures.mjs [<fixtures-root>]
//         (default: ../../crates/hypercore-lite/tests/fixtures/hc10.38 relative to this file)
//
// For every scenario of disk-write.mjs:   <root>/<scenario>/store/   (the store)
//                                          <root>/<scenario>/expected.json (its stdout)
// For every corruption below:              <root>/<name>/store/       (damaged copy)
//                                          <root>/<name>/corruption.json
//   = { source, mutation, jsRead } where jsRead is disk-read.mjs's output on the
//   damaged store (run on a temporary copy, so the fixture stays as damaged).
// Plus <root>/proofs.json from proof-gen.mjs.
//
// Only the directories named here are deleted and rewritten. Nothing is printed
// on stdout except a final JSON summary of the written files.

import fs from 'node:fs'
import path from 'node:path'
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describeOplog, listFiles } from './disk-common.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(process.argv[2] || path.join(here, '../../crates/hypercore-lite/tests/fixtures/hc10.38'))

const SCENARIOS = ['oplog-only', 'flushed', 'batches', 'truncated', 'userdata', 'multi']

function node (script, args, cwd = here) {
  return execFileSync(process.execPath, [path.join(here, script), ...args], { cwd, encoding: 'utf8', maxBuffer: 1 << 28 })
}

function onlyCore (scenarioDir) {
  const expected = JSON.parse(fs.readFileSync(path.join(scenarioDir, 'expected.json'), 'utf8'))
  return expected.cores[0].dir
}

function flipBit (file, offset, bit) {
  const buf = fs.readFileSync(file)
  buf[offset] ^= (1 << bit)
  fs.writeFileSync(file, buf)
}

const CORRUPTIONS = {
  // Cut the oplog in the middle of its last entry (a torn append).
  'oplog-only-truncated': {
    source: 'oplog-only',
    apply (store, coreDir) {
      const file = path.join(store, coreDir, 'oplog')
      const layout = describeOplog(fs.readFileSync(file))
      const last = layout.entries[layout.entries.length - 1]
      const cut = last.offset + 8 + Math.floor(last.frameLength / 2)
      fs.truncateSync(file, cut)
      return { file: coreDir + '/oplog', op: 'truncate', newSize: cut, lastEntry: { offset: last.offset, frameSize: last.frameLength + 8 } }
    }
  },
  // Flip one payload bit of the last oplog entry (CRC mismatch).
  'oplog-bitflip': {
    source: 'flushed',
    apply (store, coreDir) {
      const file = path.join(store, coreDir, 'oplog')
      const layout = describeOplog(fs.readFileSync(file))
      const last = layout.entries[layout.entries.length - 1]
      const offset = last.offset + 8 + Math.floor(last.frameLength / 2)
      flipBit(file, offset, 3)
      return { file: coreDir + '/oplog', op: 'flip-bit', offset, bit: 3, lastEntry: { offset: last.offset, frameSize: last.frameLength + 8 } }
    }
  },
  // Flip one bit in the hash of the *current* oplog header slot: hypercore
  // then falls back to the other (older) slot.
  'oplog-header-bitflip': {
    source: 'oplog-only',
    apply (store, coreDir) {
      const file = path.join(store, coreDir, 'oplog')
      const layout = describeOplog(fs.readFileSync(file))
      const slot = layout.slots[layout.currentSlot]
      const offset = slot.offset + 8 + 2 // inside the 32-byte key, after version+flags
      flipBit(file, offset, 0)
      return { file: coreDir + '/oplog', op: 'flip-bit', offset, bit: 0, slot: layout.currentSlot }
    }
  },
  // Flip one bit in the hash of a flushed leaf node (block 2 = flat index 4).
  'flushed-tree-bitflip': {
    source: 'flushed',
    apply (store, coreDir) {
      const file = path.join(store, coreDir, 'tree')
      const offset = 4 * 40 + 8 + 5 // node 4: u64 size, then hash; byte 5 of the hash
      flipBit(file, offset, 1)
      return { file: coreDir + '/tree', op: 'flip-bit', offset, bit: 1, node: 4 }
    }
  },
  // Flip one bit in the hash of a flushed root node (flat index 7, blocks 0..7).
  'flushed-tree-root-bitflip': {
    source: 'flushed',
    apply (store, coreDir) {
      const file = path.join(store, coreDir, 'tree')
      const offset = 7 * 40 + 8 + 5
      flipBit(file, offset, 1)
      return { file: coreDir + '/tree', op: 'flip-bit', offset, bit: 1, node: 7 }
    }
  },
  // Flip one bit of block 1 ("bb") in the data file.
  'flushed-data-bitflip': {
    source: 'flushed',
    apply (store, coreDir) {
      const file = path.join(store, coreDir, 'data')
      const offset = 1 // block 0 is "a" (1 byte), block 1 starts at 1
      flipBit(file, offset, 0)
      return { file: coreDir + '/data', op: 'flip-bit', offset, bit: 0, block: 1 }
    }
  }
}

function main () {
  fs.mkdirSync(root, { recursive: true })
  const summary = {}

  for (const s of SCENARIOS) {
    const dir = path.join(root, s)
    fs.rmSync(dir, { recursive: true, force: true })
    fs.mkdirSync(dir, { recursive: true })
    const out = node('disk-write.mjs', [s, path.join(dir, 'store')])
    fs.writeFileSync(path.join(dir, 'expected.json'), out)
  }

  for (const [name, spec] of Object.entries(CORRUPTIONS)) {
    const dir = path.join(root, name)
    fs.rmSync(dir, { recursive: true, force: true })
    fs.mkdirSync(dir, { recursive: true })
    const store = path.join(dir, 'store')
    fs.cpSync(path.join(root, spec.source, 'store'), store, { recursive: true })
    const mutation = spec.apply(store, onlyCore(path.join(root, spec.source)))
    // run the reader with a relative path so the output does not depend on the checkout location
    const jsRead = JSON.parse(node('disk-read.mjs', [path.join(name, 'store')], root))
    fs.writeFileSync(path.join(dir, 'corruption.json'), JSON.stringify({ source: spec.source, mutation, jsRead }, null, 1) + '\n')
  }

  node('proof-gen.mjs', [path.join(root, 'proofs.json')])

  for (const f of listFiles(root)) {
    const top = f.path.split('/')[0]
    summary[top] = (summary[top] || 0) + f.size
  }
  process.stdout.write(JSON.stringify({ root, bytes: summary }, null, 1) + '\n')
}

main()
