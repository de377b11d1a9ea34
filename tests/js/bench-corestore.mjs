// bench-corestore.mjs: the JavaScript side of the corestore scenarios of `cargo xtask bench`
// (the Rust side is `corestore-bench open-cores` / `open-close-cores`).
//
//   node --expose-gc bench-corestore.mjs open-cores --dir D --count N [--cap SECS]
//   node bench-corestore.mjs open-close-cores --dir D --count N [--cap SECS]
//
// corestore 6.18.4 on a directory: `store.get({ name })` + `ready()` of N named cores (created
// on first open), one after the other, every core kept open, stopping early after --cap
// seconds; VmRSS of /proc/self/status is read before and after (after a GC when --expose-gc is
// given). Prints one JSON object, then exits without closing the store (as the Rust side).
//
// open-close-cores: the same opens, then `close()` of every core, one after the other, and of
// the store, timed together with the opens (`open_seconds`: the opens alone).
import fs from 'node:fs'
import { createRequire } from 'node:module'
import { performance } from 'node:perf_hooks'

const require = createRequire(import.meta.url)
const Corestore = require('corestore6')

const [command, ...rest] = process.argv.slice(2)
const args = {}
for (let i = 0; i < rest.length; i += 2) args[rest[i].replace(/^--/, '')] = rest[i + 1]

function rss () {
  if (global.gc) global.gc()
  const line = fs.readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'))
  return Number(line.split(/\s+/)[1]) * 1024
}

// Opens the store and its warm-up core (kept open when `keepWarm`).
async function openStore (keepWarm) {
  const store = new Corestore(args.dir)
  await store.ready()
  const warm = store.get({ name: 'warm-up' })
  await warm.ready()
  if (!keepWarm) await warm.close()
  return store
}

// `store.get({ name })` + `ready()` of up to --count new named cores, one after the other,
// stopping after --cap seconds from `started`.
async function openMany (store, started) {
  const count = Number(args.count)
  const cap = Number(args.cap ?? 600) * 1000
  const cores = []
  for (let i = 0; i < count; i++) {
    const core = store.get({ name: `core-${i}` })
    await core.ready()
    cores.push(core)
    if (performance.now() - started >= cap) break
  }
  return cores
}

function report (scenario, ops, seconds, extra) {
  console.log(JSON.stringify({ scenario, impl: 'js', ops, bytes: 0, seconds, ...extra }))
  process.exit(0)
}

async function openCloseCores () {
  const store = await openStore(false)
  const started = performance.now()
  const cores = await openMany(store, started)
  const openSeconds = (performance.now() - started) / 1000
  for (const core of cores) await core.close()
  await store.close()
  const seconds = (performance.now() - started) / 1000
  report('open-close-cores', cores.length, seconds, { open_seconds: openSeconds })
}

async function openCores () {
  const store = await openStore(true)
  const rssBefore = rss()
  const started = performance.now()
  const cores = await openMany(store, started)
  const seconds = (performance.now() - started) / 1000
  const rssAfter = rss()
  report('open-cores', cores.length, seconds, {
    rss_before: rssBefore,
    rss_after: rssAfter,
    rss_per_core: Math.max(0, rssAfter - rssBefore) / cores.length
  })
}

async function main () {
  if (command === 'open-close-cores') return openCloseCores()
  if (command === 'open-cores') return openCores()
  throw new Error(`unknown scenario ${command}`)
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
