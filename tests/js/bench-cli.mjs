// bench-cli.mjs: the JavaScript side of the `serve`/`fetch` scenario of `cargo xtask bench`
// (the Rust side is the `corestore` command itself: `corestore serve` and `corestore fetch`).
//
//   node bench-cli.mjs serve --dir D --listen HOST:PORT
//   node bench-cli.mjs fetch --dir D --connect HOST:PORT --key HEX
//
// What a JavaScript user of corestore 6.18.4 writes for the two commands, on directory stores:
// `serve` opens the store, listens, prints `listening on HOST:PORT` (the bound address) and
// replicates the store with every peer that connects (corestore opens the cores the peer asks
// for from disk) until stdin closes or SIGTERM; `fetch` opens the core by key, connects,
// replicates, downloads every block of the remote length, closes the store and exits 0 (1 on
// any error). TCP_NODELAY is set on every socket, as the Rust command does.
import net from 'node:net'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const Corestore = require('corestore6')

const [command, ...rest] = process.argv.slice(2)
const args = {}
for (let i = 0; i < rest.length; i += 2) args[rest[i].replace(/^--/, '')] = rest[i + 1]

function split (addr) {
  const at = addr.lastIndexOf(':')
  return { host: addr.slice(0, at), port: Number(addr.slice(at + 1)) }
}

async function serve () {
  const store = new Corestore(args.dir)
  await store.ready()
  const server = net.createServer((socket) => {
    socket.setNoDelay(true)
    const stream = store.replicate(false)
    socket.pipe(stream).pipe(socket)
    const end = () => { socket.destroy(); stream.destroy() }
    socket.on('error', end)
    stream.on('error', end)
    socket.on('close', end)
  })
  const { host, port } = split(args.listen)
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, resolve)
  })
  const bound = server.address()
  console.log(`listening on ${bound.address}:${bound.port}`)
  const stop = async () => {
    server.close()
    await store.close()
    process.exit(0)
  }
  process.stdin.on('end', stop)
  process.stdin.resume()
  process.on('SIGTERM', stop)
}

async function fetch () {
  const store = new Corestore(args.dir)
  const core = store.get({ key: Buffer.from(args.key, 'hex') })
  await core.ready()
  const { host, port } = split(args.connect)
  const socket = net.connect(port, host)
  socket.setNoDelay(true)
  const stream = store.replicate(true)
  socket.pipe(stream).pipe(socket)
  socket.on('error', (err) => { console.error(err); process.exit(1) })
  // The first update learns the remote length; then every block of it is downloaded.
  const done = core.findingPeers()
  await core.update({ wait: true })
  done()
  await core.download({ start: 0, end: core.length }).done()
  const length = core.length
  socket.destroy()
  await store.close()
  console.log(JSON.stringify({ scenario: 'fetch', impl: 'js', length }))
  process.exit(0)
}

const commands = { serve, fetch }
if (!commands[command]) {
  console.error(`unknown command ${command}`)
  process.exit(2)
}
commands[command]().catch((err) => {
  console.error(err)
  process.exit(1)
})
