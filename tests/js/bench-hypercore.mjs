// bench-hypercore.mjs: the JavaScript side of the hypercore scenarios of `cargo xtask bench`
// (the Rust side is `corestore-bench` in tests/bench, with the same subcommands and flags).
//
//   node bench-hypercore.mjs append   --dir D --block-size N --total BYTES [--batch 100]
//   node bench-hypercore.mjs fill     --dir D --blocks N --block-size N
//   node bench-hypercore.mjs seq-get  --dir D
//   node bench-hypercore.mjs rand-get --dir D --count N [--seed 42]
//   node bench-hypercore.mjs open     --dir D
//
// hypercore 10.38.2 with its default storage (random-access-file in D: D/oplog, D/tree, ...).
// Prints one JSON object: scenario, impl, ops, bytes, seconds.
import { createRequire } from 'node:module'
import { performance } from 'node:perf_hooks'

const require = createRequire(import.meta.url)
const Hypercore = require('hypercore10')
const b4a = require('b4a')

const [command, ...rest] = process.argv.slice(2)
const args = {}
for (let i = 0; i < rest.length; i += 2) args[rest[i].replace(/^--/, '')] = rest[i + 1]
const num = (name, def) => {
  if (args[name] === undefined) {
    if (def === undefined) throw new Error(`missing --${name}`)
    return def
  }
  return Number(args[name])
}

// mulberry32, as `Mulberry32` in tests/bench/src/main.rs.
function mulberry32 (a) {
  return function () {
    a |= 0
    a = a + 0x6D2B79F5 | 0
    let t = Math.imul(a ^ a >>> 15, 1 | a)
    t = t + Math.imul(t ^ t >>> 7, 61 | t) ^ t
    return (t ^ t >>> 14) >>> 0
  }
}

function batch (count, size) {
  const out = []
  for (let i = 0; i < count; i++) out.push(b4a.alloc(size, i % 251))
  return out
}

async function openCore (dir) {
  const core = new Hypercore(dir)
  await core.ready()
  return core
}

async function appendBlocks (core, blocks, blockSize, perBatch) {
  const one = batch(perBatch, blockSize)
  const started = performance.now()
  let left = blocks
  while (left > 0) {
    const n = Math.min(left, perBatch)
    await core.append(n === perBatch ? one : one.slice(0, n))
    left -= n
  }
  return (performance.now() - started) / 1000
}

function report (scenario, ops, bytes, seconds, extra = {}) {
  console.log(JSON.stringify({ scenario, impl: 'js', ops, bytes, seconds, ...extra }))
}

async function main () {
  const dir = args.dir
  if (!dir) throw new Error('missing --dir')
  if (command === 'append' || command === 'fill') {
    const blockSize = num('block-size')
    const blocks = command === 'append' ? Math.floor(num('total') / blockSize) : num('blocks')
    const perBatch = command === 'append' ? num('batch', 100) : 1000
    const core = await openCore(dir)
    const seconds = await appendBlocks(core, blocks, blockSize, perBatch)
    await core.close()
    report(command, blocks, blocks * blockSize, seconds, { block_size: blockSize })
  } else if (command === 'seq-get') {
    const core = await openCore(dir)
    let bytes = 0
    const started = performance.now()
    for (let i = 0; i < core.length; i++) bytes += (await core.get(i)).byteLength
    const seconds = (performance.now() - started) / 1000
    report('seq-get', core.length, bytes, seconds)
    await core.close()
  } else if (command === 'rand-get') {
    const core = await openCore(dir)
    const count = num('count')
    const rng = mulberry32(num('seed', 42))
    let bytes = 0
    const started = performance.now()
    for (let n = 0; n < count; n++) bytes += (await core.get(rng() % core.length)).byteLength
    const seconds = (performance.now() - started) / 1000
    report('rand-get', count, bytes, seconds)
    await core.close()
  } else if (command === 'open') {
    const started = performance.now()
    const core = await openCore(dir)
    const last = await core.get(core.length - 1)
    const seconds = (performance.now() - started) / 1000
    report('open', 1, last.byteLength, seconds, { length: core.length })
    await core.close()
  } else {
    throw new Error(`unknown scenario ${command}`)
  }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
