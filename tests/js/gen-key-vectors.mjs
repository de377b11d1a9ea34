// Generates crates/corestore-keys/tests/vectors/js-keys.json from the pinned JavaScript reference
// packages in tests/js/node_modules.
//
//   node tests/js/gen-key-vectors.mjs crates/corestore-keys/tests/vectors/js-keys.json
//
// Without an argument the JSON goes to stdout. Nothing else is printed on stdout. The output is
// deterministic: every "random" input is derived from hypercore-crypto hashes of a case index, and
// object keys are sorted.
//
// Corestore cases drive the real corestore 6 and 7 packages (store.namespace(...).get({ name })),
// not re-implementations of the derivation formulas; hypercore cases drive a real hypercore 10.

import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

const Corestore6 = require('corestore6')
const Corestore7 = require('corestore7')
const Hypercore10 = require('hypercore10')
const Verifier10 = require('hypercore10/lib/verifier.js')
const messages10 = require('hypercore10/lib/messages.js')
const caps10 = require('hypercore10/lib/caps.js')
const crypto = require('hypercore-crypto')
const hypercoreId = require('hypercore-id-encoding')
const c = require('compact-encoding')
const RAM = require('random-access-memory')
const b4a = require('b4a')
// crc-universal is hypercore's own CRC32 dependency; resolve it from there rather than relying on hoisting.
const crc = createRequire(require.resolve('hypercore10/package.json'))('crc-universal')

const hex = (buf) => b4a.toString(buf, 'hex')
const seeded = (label, i) => crypto.hash(b4a.from(`corestore-rs vectors/${label}/${i}`))
const versionOf = (pkg) => require(`${pkg}/package.json`).version

// Names: ASCII, unicode (emoji, CJK, RTL, combining marks, NUL), long.
const NAMES = [
  'test',
  'a',
  'hello world',
  'core-0',
  'with/slash',
  'tab\tand\nnewline',
  ' leading and trailing ',
  '0',
  'nul\u0000byte',
  '🦀',
  'emoji 🎉🚀 mix',
  '日本語のコア',
  '中文名字',
  '한국어',
  'שלום',
  'مرحبا',
  'e\u0301 combining acute',
  'Z\u0324\u0354\u0367\u0311\u0313a\u0308\u0356\u032d\u0308\u0307',
  'Ω≈ç√∫˜µ≤≥÷',
  'x'.repeat(1000),
  '🦀'.repeat(300),
  longPseudoRandomName(2000)
]

// Namespace paths, 0–3 levels, strings including unicode and the empty string.
const NAMESPACES = [
  [],
  ['foo'],
  ['a', 'b'],
  ['ns 🦀', '日本', 'x'],
  [''],
  ['deep', 'er', 'est'],
  ['é'],
  ['a/b', 'c']
]

function longPseudoRandomName (n) {
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -_.ü€😀'
  const chars = Array.from(alphabet)
  let out = ''
  let i = 0
  while (Array.from(out).length < n) {
    const h = seeded('long-name', i++)
    for (const byte of h) out += chars[byte % chars.length]
  }
  return Array.from(out).slice(0, n).join('')
}

async function corestoreCases () {
  const cases = []
  const primaryKeys = 12
  const perKey = 6
  for (let p = 0; p < primaryKeys; p++) {
    const primaryKey = p === 0 ? b4a.alloc(32, 0x11) : seeded('primary-key', p)
    const picks = []
    for (let j = 0; j < perKey; j++) {
      const k = p * perKey + j
      picks.push({ name: NAMES[k % NAMES.length], namespaces: NAMESPACES[(k * 5 + p) % NAMESPACES.length] })
    }
    if (p === 0) {
      picks[0] = { name: 'test', namespaces: [] }
      picks[1] = { name: 'test', namespaces: ['foo'] }
    }

    const cs6 = new Corestore6(() => new RAM(), { primaryKey })
    const cs6NonCompat = new Corestore6(() => new RAM(), { primaryKey, compat: false })
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'corestore-rs-vectors-'))
    const cs7 = new Corestore7(dir, { primaryKey, unsafe: true })
    try {
      for (const { name, namespaces } of picks) {
        const a = await open(cs6, namespaces, name)
        const b = await open(cs6NonCompat, namespaces, name)
        const d = await open(cs7, namespaces, name)
        cases.push({
          primary_key: hex(primaryKey),
          namespaces,
          name,
          namespace: hex(a.namespace),
          public_key: hex(a.core.keyPair.publicKey),
          cs6: { key: hex(a.core.key), discovery_key: hex(a.core.discoveryKey), id: a.core.id },
          cs6_compat_false: { key: hex(b.core.key), discovery_key: hex(b.core.discoveryKey), id: b.core.id },
          cs7: { key: hex(d.core.key), discovery_key: hex(d.core.discoveryKey), id: d.core.id }
        })
        await a.core.close()
        await b.core.close()
        await d.core.close()
      }
    } finally {
      await cs6.close()
      await cs6NonCompat.close()
      await cs7.close()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
  return cases
}

async function open (store, namespaces, name) {
  let ns = store
  for (const n of namespaces) ns = ns.namespace(n)
  const core = ns.get({ name })
  await core.ready()
  // corestore 6 keeps the derived namespace in `_namespace`, corestore 7 in `ns`.
  const namespace = ns._namespace || ns.ns
  return { core, namespace }
}

function namespaceCases () {
  const inputs = [
    ['hypercore', 6],
    ['corestore', 1],
    ['hyperswarm/secret-stream', 3],
    ['', 2],
    ['🦀', 3],
    ['x', 5],
    ['日本語', 1],
    ['y'.repeat(500), 2]
  ]
  return inputs.map(([name, count]) => ({ name, count, namespaces: crypto.namespace(name, count).map(hex) }))
}

function keyCases () {
  const keys = [b4a.from('37966fe2bbd8113f13fb54c571217097ab64c6140fb6694e8ef4d9f774ab935b', 'hex'), b4a.alloc(32), b4a.alloc(32, 0xff)]
  for (let i = 0; i < 12; i++) keys.push(seeded('key', i))
  return keys.map((key) => {
    const id = hypercoreId.encode(key)
    const accepted = [hex(key), hex(key).toUpperCase(), id, `pear://${id}`, `pear://${id}/some/path`, `pear://${hex(key)}`]
    for (const input of accepted) {
      if (!b4a.equals(hypercoreId.decode(input), key)) throw new Error('id decode mismatch for ' + input)
    }
    return { key: hex(key), discovery_key: hex(crypto.discoveryKey(key)), id, accepted }
  })
}

function invalidIds () {
  const key = seeded('key', 0)
  const id = hypercoreId.encode(key)
  const h = hex(key)
  const inputs = [
    '',
    'abc',
    h.slice(0, 63),
    h + '0',
    h.slice(0, 63) + 'g',
    'x' + h.slice(1),
    id.slice(0, 51),
    id + 'y',
    id.toUpperCase(),
    id.slice(0, 10) + '0' + id.slice(11),
    id.slice(0, 10) + 'l' + id.slice(11),
    id.slice(0, 10) + 'v' + id.slice(11),
    'pear://',
    'pear://abc/def',
    'PEAR://' + id,
    ' ' + h,
    h.slice(0, 32) + ' ' + h.slice(33)
  ]
  for (const input of inputs) {
    if (hypercoreId.isValid(input)) throw new Error('expected JS to reject ' + JSON.stringify(input))
  }
  return inputs
}

function merkleCases () {
  const leaves = []
  for (const len of [0, 1, 2, 3, 31, 32, 33, 64, 1000, 4096]) {
    const data = pseudoRandomBytes('leaf', len)
    leaves.push({ data: hex(data), hash: hex(crypto.data(data)) })
  }
  const parents = []
  for (let i = 0; i < 6; i++) {
    const left = { index: 4 * i + 1, size: 100 * i + 3, hash: seeded('parent-left', i) }
    const right = { index: 4 * i + 5, size: 7 * i + 1, hash: seeded('parent-right', i) }
    // hypercore-crypto orders by index, so swapping the arguments must not matter.
    const hash = crypto.parent(i % 2 ? right : left, i % 2 ? left : right)
    parents.push({ left: node(left), right: node(right), hash: hex(hash) })
  }
  const trees = []
  for (let i = 0; i < 6; i++) {
    const roots = []
    for (let j = 0; j <= i; j++) roots.push({ index: 2 ** (6 - j) * (j + 1) - 1, size: 1000 * j + i, hash: seeded('root', 10 * i + j) })
    trees.push({ roots: roots.map(node), hash: hex(crypto.tree(roots)) })
  }
  return { leaves, parents, trees }
}

function node (n) {
  return { index: n.index, size: n.size, hash: hex(n.hash) }
}

function pseudoRandomBytes (label, len) {
  const out = b4a.alloc(len)
  for (let i = 0; i * 32 < len; i++) seeded(label + '/' + len, i).copy(out, i * 32)
  return out
}

// Real hypercore 10 cores: append blocks, optionally truncate (fork 1), record the tree and its
// signature in compat, manifest-v0 and manifest-v1 modes.
async function hypercoreCases () {
  const cases = []
  const lengths = [1, 2, 3, 5, 8, 11, 16, 17]
  let n = 0
  for (const mode of ['compat', 'v0', 'v1']) {
    for (const length of lengths) {
      const seed = seeded('core-seed', n)
      const keyPair = crypto.keyPair(seed)
      const opts = { keyPair }
      if (mode !== 'compat') opts.manifest = { version: mode === 'v0' ? 0 : 1, signers: [{ publicKey: keyPair.publicKey }] }
      const core = new Hypercore10(() => new RAM(), opts)
      await core.ready()
      // Even cases append one block too many and truncate it away, which bumps the fork to 1.
      const truncate = n % 2 === 0
      const blocks = []
      for (let i = 0; i < length + (truncate ? 1 : 0); i++) blocks.push(pseudoRandomBytes('block/' + n, (i * 37 + n) % 200))
      await core.append(blocks)
      if (truncate) {
        await core.truncate(length)
        blocks.pop()
      }
      cases.push(record(core, mode, seed, blocks))
      await core.close()
      n++
    }
  }
  return cases
}

function record (core, mode, seed, blocks) {
  const tree = core.core.tree
  const manifest = core.core.header.manifest
  return {
    mode,
    seed: hex(seed),
    public_key: hex(core.keyPair.publicKey),
    key: hex(core.key),
    manifest: hex(c.encode(messages10.manifest, manifest)),
    blocks: blocks.map(hex),
    length: tree.length,
    fork: tree.fork,
    roots: tree.roots.map(node),
    tree_hash: hex(tree.hash()),
    signable: hex(mode === 'compat' ? caps10.treeSignableCompat(tree.hash(), tree.length, tree.fork) : caps10.treeSignable(mode === 'v0' ? manifest.signers[0].namespace : core.key, tree.hash(), tree.length, tree.fork)),
    signature: hex(tree.signature)
  }
}

function manifestCases () {
  const pk = (i) => crypto.keyPair(seeded('manifest-signer', i)).publicKey
  const ns = (i) => seeded('manifest-namespace', i)
  const prologue = { hash: seeded('prologue', 0), length: 70000 }
  const inputs = [
    { version: 1, signers: [{ publicKey: b4a.from('37966fe2bbd8113f13fb54c571217097ab64c6140fb6694e8ef4d9f774ab935b', 'hex') }] },
    { version: 0, signers: [{ publicKey: b4a.from('37966fe2bbd8113f13fb54c571217097ab64c6140fb6694e8ef4d9f774ab935b', 'hex') }] },
    { version: 1, signers: [{ publicKey: pk(0) }, { publicKey: pk(1), namespace: ns(1) }, { publicKey: pk(2) }] },
    { version: 1, quorum: 3, allowPatch: true, signers: [{ publicKey: pk(0) }, { publicKey: pk(1) }, { publicKey: pk(2) }] },
    { version: 1, signers: [{ publicKey: pk(3) }], prologue },
    { version: 1, signers: [], prologue: { hash: seeded('prologue', 1), length: 5 } },
    { version: 1, quorum: 0, signers: [{ publicKey: pk(4) }] },
    { version: 0, signers: [{ publicKey: pk(0) }, { publicKey: pk(1) }] },
    { version: 0, allowPatch: true, signers: [{ publicKey: pk(5), namespace: ns(5) }] },
    { version: 0, signers: [], prologue: { hash: seeded('prologue', 2), length: 0 } },
    { version: 0, quorum: 2, signers: [{ publicKey: pk(6) }] }
  ]
  return inputs.map((input) => {
    const m = Verifier10.createManifest(input)
    return {
      manifest: {
        version: m.version,
        allow_patch: m.allowPatch,
        quorum: m.quorum,
        signers: m.signers.map((s) => ({ namespace: hex(s.namespace), public_key: hex(s.publicKey) })),
        prologue: m.prologue ? { hash: hex(m.prologue.hash), length: m.prologue.length } : null
      },
      encoded: hex(c.encode(messages10.manifest, m)),
      hash: hex(Hypercore10.key(input))
    }
  })
}

function signatureCases () {
  const cases = []
  for (let i = 0; i < 10; i++) {
    const seed = seeded('sign-seed', i)
    const keyPair = crypto.keyPair(seed)
    const message = pseudoRandomBytes('sign-message/' + i, i * 13)
    const signature = crypto.sign(message, keyPair.secretKey)
    if (!crypto.verify(message, signature, keyPair.publicKey)) throw new Error('JS failed to verify')
    cases.push({ seed: hex(seed), public_key: hex(keyPair.publicKey), secret_key: hex(keyPair.secretKey), message: hex(message), signature: hex(signature) })
  }
  return cases
}

function capabilityCases () {
  const cases = []
  for (let i = 0; i < 6; i++) {
    const handshakeHash = b4a.concat([seeded('handshake', i), seeded('handshake2', i)])
    const key = i === 0 ? b4a.from('37966fe2bbd8113f13fb54c571217097ab64c6140fb6694e8ef4d9f774ab935b', 'hex') : seeded('cap-key', i)
    cases.push({
      handshake_hash: hex(handshakeHash),
      key: hex(key),
      initiator: hex(caps10.replicate(true, key, handshakeHash)),
      responder: hex(caps10.replicate(false, key, handshakeHash))
    })
  }
  return cases
}

function compactCases () {
  const uints = [0, 1, 0xfc, 0xfd, 0xfe, 0xff, 0x100, 0xffff, 0x10000, 0xffffffff, 0x100000000, 2 ** 40 + 3, Number.MAX_SAFE_INTEGER]
  const strings = ['', 'a', 'héllo', '🦀', 'x'.repeat(300), '日本語']
  return {
    uints: uints.map((n) => ({ value: n, encoded: hex(c.encode(c.uint, n)) })),
    strings: strings.map((s) => ({ value: s, encoded: hex(c.encode(c.string, s)) })),
    uint32_arrays: [[], [1], [0xdeadbeef, 7, 0]].map((a) => ({ value: a, encoded: hex(c.encode(c.uint32array, Uint32Array.from(a))) }))
  }
}

function crcCases () {
  return ['', '123456789', 'hypercore', 'a'.repeat(1000)].map((s) => ({ data: hex(b4a.from(s)), crc32: crc.crc32(b4a.from(s)) }))
}

function sortKeys (value) {
  if (Array.isArray(value)) return value.map(sortKeys)
  if (value && typeof value === 'object') {
    const out = {}
    for (const k of Object.keys(value).sort()) out[k] = sortKeys(value[k])
    return out
  }
  return value
}

async function main () {
  const out = {
    generator: 'tests/js/gen-key-vectors.mjs',
    versions: Object.fromEntries(['corestore6', 'corestore7', 'hypercore10', 'hypercore-crypto', 'hypercore-id-encoding', 'compact-encoding'].map((p) => [p, versionOf(p)])),
    corestore: await corestoreCases(),
    namespace: namespaceCases(),
    keys: keyCases(),
    invalid_ids: invalidIds(),
    merkle: merkleCases(),
    hypercore: await hypercoreCases(),
    manifests: manifestCases(),
    signatures: signatureCases(),
    capabilities: capabilityCases(),
    compact: compactCases(),
    crc32: crcCases()
  }
  const json = JSON.stringify(sortKeys(out), null, 2) + '\n'
  if (process.argv[2]) fs.writeFileSync(process.argv[2], json)
  else process.stdout.write(json)
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err)
    process.exit(1)
  }
)
