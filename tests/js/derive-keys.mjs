// Derives core keys with the real corestore 6 and 7 packages, for the interop tests.
//
//   echo '{"cases":[{"primary_key":"<hex>","namespaces":["a","b"],"name":"log"}]}' | node derive-keys.mjs
//
// Reads one JSON object on stdin and prints one JSON array on stdout, one entry per case, in order:
// {"cs6": {"key", "discovery_key", "id"}, "cs6_compat_false": {...}, "cs7": {...}} with hex keys.
// Each case runs against fresh stores opened with the case's primary key; nothing else is printed.

import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const Corestore6 = require('corestore6')
const Corestore7 = require('corestore7')
const RAM = require('random-access-memory')
const b4a = require('b4a')

const hex = (b) => b4a.toString(b, 'hex')

async function readStdin () {
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  return JSON.parse(Buffer.concat(chunks).toString('utf8'))
}

async function describe (store, namespaces, name) {
  let ns = store
  for (const n of namespaces) ns = ns.namespace(n)
  const core = ns.get({ name })
  await core.ready()
  const out = { key: hex(core.key), discovery_key: hex(core.discoveryKey), id: core.id }
  await core.close()
  return out
}

const input = await readStdin()
const byKey = new Map()
for (const c of input.cases) {
  if (!byKey.has(c.primary_key)) byKey.set(c.primary_key, [])
  byKey.get(c.primary_key).push(c)
}

const results = new Map()
for (const [primaryHex, cases] of byKey) {
  const primaryKey = b4a.from(primaryHex, 'hex')
  const cs6 = new Corestore6(() => new RAM(), { primaryKey })
  const cs6NonCompat = new Corestore6(() => new RAM(), { primaryKey, compat: false })
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'corestore-rs-derive-'))
  const cs7 = new Corestore7(dir, { primaryKey, unsafe: true })
  try {
    for (const c of cases) {
      results.set(c, {
        cs6: await describe(cs6, c.namespaces, c.name),
        cs6_compat_false: await describe(cs6NonCompat, c.namespaces, c.name),
        cs7: await describe(cs7, c.namespaces, c.name)
      })
    }
  } finally {
    await cs6.close()
    await cs6NonCompat.close()
    await cs7.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

process.stdout.write(JSON.stringify(input.cases.map((c) => results.get(c))) + '\n')
