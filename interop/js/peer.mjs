// js-libp2p 2.x reference peer for p2praft's interop tests and benchmarks.
// Usage: node peer.mjs MODE [MA] [options]; see ../README.md for the contract.
import './polyfill.mjs' // must stay first: Promise.withResolvers on Node 20
import { createHash, randomBytes } from 'node:crypto'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { ping } from '@libp2p/ping'
import { identify } from '@libp2p/identify'
import { multiaddr } from '@multiformats/multiaddr'

const ECHO = '/p2praft/test/echo/1.0.0'
const SINK = '/p2praft/test/sink/1.0.0'
const STREAM_LIMIT = 1024
const CHUNK = 64 * 1024
const MiB = 1024 * 1024
const CHECK_TIMEOUT_MS = 60000 // bounds each dial check, so a stalled peer gives a FAIL line

const USAGE = `usage: node peer.mjs MODE [MA] [options]
  listen [--listen MA]...          print listen multiaddrs (with /p2p/), serve until SIGINT/SIGTERM
  dial MA [--expect-agent PREFIX] [--expect-protocol P]...
                                   ping, identify, echo 1 MiB and 64 MiB, 50 concurrent echo streams
  bench-throughput MA [--bytes N] [--proto sink|echo]
  bench-rtt MA [--count N]
  bench-connect MA [--count N]`

function parseArgs (argv) {
  const opts = { mode: argv[0], ma: undefined, listen: [], expectProtocol: [], expectAgent: undefined, bytes: 1024 * MiB, count: undefined, proto: 'sink' }
  let i = 1
  const need = (name) => {
    if (i + 1 >= argv.length) throw new Error(`${name} needs a value`)
    return argv[++i]
  }
  for (; i < argv.length; i++) {
    const a = argv[i]
    switch (a) {
      case '--listen': opts.listen.push(need(a)); break
      case '--expect-agent': opts.expectAgent = need(a); break
      case '--expect-protocol': opts.expectProtocol.push(need(a)); break
      case '--bytes': opts.bytes = Number(need(a)); break
      case '--count': opts.count = Number(need(a)); break
      case '--proto': opts.proto = need(a); break
      default:
        if (a.startsWith('-') || opts.ma !== undefined) throw new Error(`unknown argument ${a}`)
        opts.ma = a
    }
  }
  if (!['listen', 'dial', 'bench-throughput', 'bench-rtt', 'bench-connect'].includes(opts.mode)) throw new Error(`unknown mode ${opts.mode}`)
  if (opts.mode === 'listen' && opts.ma !== undefined) throw new Error('listen takes no positional multiaddr (use --listen)')
  if (opts.mode !== 'listen' && opts.ma === undefined) throw new Error(`${opts.mode} needs a multiaddr`)
  if (!Number.isSafeInteger(opts.bytes) || opts.bytes <= 0) throw new Error('--bytes must be a positive integer')
  if (opts.count !== undefined && (!Number.isSafeInteger(opts.count) || opts.count <= 0)) throw new Error('--count must be a positive integer')
  if (!['sink', 'echo'].includes(opts.proto)) throw new Error('--proto must be sink or echo')
  return opts
}

// A minimal push queue usable as a stream sink source.
function pushable () {
  const queue = []
  let wake = null
  let ended = false
  const notify = () => { if (wake !== null) { const w = wake; wake = null; w() } }
  return {
    push (buf) { queue.push(buf); notify() },
    end () { ended = true; notify() },
    async * [Symbol.asyncIterator] () {
      while (true) {
        while (queue.length > 0) yield queue.shift()
        if (ended) return
        await new Promise((resolve) => { wake = resolve })
      }
    }
  }
}

// Reads exact byte counts from a stream source.
function reader (source) {
  const it = source[Symbol.asyncIterator]()
  let pending = []
  let have = 0
  return {
    async read (n) {
      while (have < n) {
        const { value, done } = await it.next()
        if (done) throw new Error(`stream ended after ${have} of ${n} bytes`)
        const b = value.subarray()
        pending.push(b)
        have += b.byteLength
      }
      const out = new Uint8Array(n)
      let off = 0
      while (off < n) {
        const b = pending[0]
        const take = Math.min(b.byteLength, n - off)
        out.set(b.subarray(0, take), off)
        off += take
        if (take === b.byteLength) pending.shift()
        else pending[0] = b.subarray(take)
      }
      have -= n
      return out
    }
  }
}

async function makeNode (listen) {
  return createLibp2p({
    addresses: { listen },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: {
      maxConnections: 4096,
      inboundConnectionThreshold: 1e9,
      maxIncomingPendingConnections: 1024
    },
    services: {
      ping: ping({ maxInboundStreams: STREAM_LIMIT, maxOutboundStreams: STREAM_LIMIT }),
      identify: identify()
    }
  })
}

async function serveTestProtocols (node) {
  // echo: copy every byte back until the remote closes its write side, then close.
  await node.handle(ECHO, ({ stream }) => {
    stream.sink(stream.source).catch((err) => stream.abort(err))
  }, { maxInboundStreams: STREAM_LIMIT, maxOutboundStreams: STREAM_LIMIT })
  // sink: read until the remote closes its write side, reply with the byte
  // count as u64 big-endian, then close.
  await node.handle(SINK, ({ stream }) => {
    (async () => {
      let n = 0n
      for await (const chunk of stream.source) n += BigInt(chunk.byteLength)
      const reply = new Uint8Array(8)
      new DataView(reply.buffer).setBigUint64(0, n)
      await stream.sink([reply])
    })().catch((err) => stream.abort(err))
  }, { maxInboundStreams: STREAM_LIMIT, maxOutboundStreams: STREAM_LIMIT })
}

async function listen (opts) {
  const node = await makeNode(opts.listen.length > 0 ? opts.listen : ['/ip4/127.0.0.1/tcp/0'])
  await serveTestProtocols(node)
  await node.start()
  const id = node.peerId.toString()
  for (const ma of node.getMultiaddrs()) {
    const s = ma.toString()
    process.stdout.write((s.includes('/p2p/') ? s : `${s}/p2p/${id}`) + '\n')
  }
  await new Promise((resolve) => {
    process.once('SIGINT', resolve)
    process.once('SIGTERM', resolve)
  })
  await node.stop()
}

// Sends `total` random bytes on an echo stream and checks what comes back.
async function echoCheck (conn, total) {
  const stream = await conn.newStream(ECHO, { maxOutboundStreams: STREAM_LIMIT })
  const sent = createHash('sha256')
  const got = createHash('sha256')
  let received = 0
  const writer = stream.sink((async function * () {
    for (let off = 0; off < total; off += CHUNK) {
      const b = randomBytes(Math.min(CHUNK, total - off))
      sent.update(b)
      yield b
    }
  })())
  for await (const chunk of stream.source) {
    for (const b of chunk) got.update(b)
    received += chunk.byteLength
  }
  await writer
  await stream.close()
  const a = sent.digest('hex')
  const b = got.digest('hex')
  if (received !== total || a !== b) throw new Error(`sent ${total} bytes sha256 ${a}, got back ${received} bytes sha256 ${b}`)
  return a
}

async function timed (fn) {
  const t0 = process.hrtime.bigint()
  const r = await fn()
  return [r, Number(process.hrtime.bigint() - t0) / 1e6]
}

async function dialChecks (node, opts) {
  const ma = multiaddr(opts.ma)
  let failed = 0
  const check = async (name, fn) => {
    let timer
    try {
      const timeout = new Promise((resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS)
      })
      const msg = await Promise.race([fn(), timeout])
      console.log(`ok ${name}${msg ? ' ' + msg : ''}`)
    } catch (err) {
      failed++
      console.log(`FAIL ${name} ${err?.message ?? err}`)
    } finally {
      clearTimeout(timer)
    }
  }
  let conn
  await check('connect', async () => {
    const [c, ms] = await timed(() => node.dial(ma))
    conn = c
    // js-libp2p 2.10 does not always reject a remote whose Noise identity
    // differs from the /p2p/ in the address: check it here.
    if (ma.getPeerId() !== c.remotePeer.toString()) {
      conn = undefined
      c.abort(new Error('peer id mismatch'))
      throw new Error(`peer id mismatch: dialed ${ma.getPeerId()}, remote is ${c.remotePeer}`)
    }
    return `peer=${c.remotePeer} encryption=${c.encryption} muxer=${c.multiplexer} ms=${ms.toFixed(2)}`
  })
  if (conn === undefined) return 1
  await check('ping', async () => {
    const rtts = []
    for (let i = 0; i < 3; i++) rtts.push(await node.services.ping.ping(ma))
    return `rtt_ms=${rtts.map((r) => r.toFixed(2)).join(',')}`
  })
  await check('identify', async () => {
    const r = await node.services.identify.identify(conn)
    const msg = `agent=${JSON.stringify(r.agentVersion ?? '')} protocolVersion=${JSON.stringify(r.protocolVersion ?? '')} protocols=${r.protocols.join(',')}`
    if (opts.expectAgent !== undefined && !(r.agentVersion ?? '').startsWith(opts.expectAgent)) throw new Error(`agent does not start with ${JSON.stringify(opts.expectAgent)}: ${msg}`)
    const missing = opts.expectProtocol.filter((p) => !r.protocols.includes(p))
    if (missing.length > 0) throw new Error(`missing protocols ${missing.join(',')}: ${msg}`)
    return msg
  })
  for (const [name, size] of [['echo-1MiB', MiB], ['echo-64MiB', 64 * MiB]]) {
    await check(name, async () => {
      const [sum, ms] = await timed(() => echoCheck(conn, size))
      return `bytes=${size} sha256=${sum} ms=${ms.toFixed(1)}`
    })
  }
  await check('echo-50-concurrent', async () => {
    const size = 256 * 1024
    const [sums, ms] = await timed(() => Promise.all(Array.from({ length: 50 }, () => echoCheck(conn, size))))
    return `streams=${sums.length} bytes_each=${size} ms=${ms.toFixed(1)}`
  })
  if (failed === 0) await bounded(conn.close(), 5000)
  else conn.abort(new Error('checks failed'))
  return failed === 0 ? 0 : 1
}

// Waits for p at most ms (a stalled peer must not hang the exit).
function bounded (p, ms) {
  let timer
  return Promise.race([p, new Promise((resolve) => { timer = setTimeout(resolve, ms) })]).finally(() => clearTimeout(timer))
}

function percentile (sorted, p) {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))
  return sorted[i]
}

async function benchThroughput (node, opts) {
  const conn = await node.dial(multiaddr(opts.ma))
  const proto = opts.proto === 'sink' ? SINK : ECHO
  // Warm-up: 1 MiB on the same protocol, so the window has grown.
  const run = async (total) => {
    const stream = await conn.newStream(proto, { maxOutboundStreams: STREAM_LIMIT })
    const buf = randomBytes(CHUNK)
    const t0 = process.hrtime.bigint()
    const writer = stream.sink((async function * () {
      for (let off = 0; off < total; off += CHUNK) yield off + CHUNK <= total ? buf : buf.subarray(0, total - off)
    })())
    let received = 0
    const replies = []
    for await (const chunk of stream.source) {
      received += chunk.byteLength
      if (proto === SINK) replies.push(chunk.subarray())
    }
    await writer
    const secs = Number(process.hrtime.bigint() - t0) / 1e9
    if (proto === SINK) {
      const all = Buffer.concat(replies)
      if (all.length !== 8 || all.readBigUInt64BE(0) !== BigInt(total)) throw new Error(`sink replied ${all.toString('hex')}, expected count ${total}`)
    } else if (received !== total) throw new Error(`echo returned ${received} of ${total} bytes`)
    return secs
  }
  await run(MiB)
  const secs = await run(opts.bytes)
  console.log(`bench throughput ${(opts.bytes * 8 / secs / 1e9).toFixed(3)} Gbit/s bytes=${opts.bytes} seconds=${secs.toFixed(4)} proto=${proto}`)
  await conn.close()
}

async function benchRtt (node, opts) {
  const count = opts.count ?? 10000
  const conn = await node.dial(multiaddr(opts.ma))
  const stream = await conn.newStream(ECHO, { maxOutboundStreams: STREAM_LIMIT })
  const out = pushable()
  const writer = stream.sink(out)
  const rd = reader(stream.source)
  const msg = randomBytes(64)
  const samples = []
  const warmup = Math.min(1000, count)
  for (let i = 0; i < warmup + count; i++) {
    const t0 = process.hrtime.bigint()
    out.push(msg)
    const back = await rd.read(64)
    const us = Number(process.hrtime.bigint() - t0) / 1e3
    if (Buffer.compare(Buffer.from(back), msg) !== 0) throw new Error('echo returned different bytes')
    if (i >= warmup) samples.push(us)
  }
  out.end()
  await writer
  samples.sort((a, b) => a - b)
  const mean = samples.reduce((a, b) => a + b, 0) / samples.length
  console.log(`bench rtt_p50 ${percentile(samples, 0.5).toFixed(1)} us count=${count} size=64`)
  console.log(`bench rtt_p99 ${percentile(samples, 0.99).toFixed(1)} us count=${count} size=64`)
  console.log(`bench rtt_mean ${mean.toFixed(1)} us count=${count} size=64`)
  await stream.close()
  await conn.close()
}

// One sample: new TCP connection, Noise, yamux, an echo stream, one byte
// echoed back (the stream is usable); the connection is then closed.
async function benchConnect (node, opts) {
  const count = opts.count ?? 200
  const ma = multiaddr(opts.ma)
  const one = async () => {
    const t0 = process.hrtime.bigint()
    const conn = await node.dial(ma, { force: true })
    const stream = await conn.newStream(ECHO, { maxOutboundStreams: STREAM_LIMIT })
    const out = pushable()
    const writer = stream.sink(out)
    out.push(Uint8Array.of(0x2a))
    const back = await reader(stream.source).read(1)
    const ms = Number(process.hrtime.bigint() - t0) / 1e6
    if (back[0] !== 0x2a) throw new Error('echo returned a different byte')
    out.end()
    await writer
    await conn.close()
    return ms
  }
  for (let i = 0; i < Math.min(20, count); i++) await one()
  const samples = []
  for (let i = 0; i < count; i++) samples.push(await one())
  samples.sort((a, b) => a - b)
  console.log(`bench connect_p50 ${percentile(samples, 0.5).toFixed(3)} ms count=${count}`)
  console.log(`bench connect_p99 ${percentile(samples, 0.99).toFixed(3)} ms count=${count}`)
}

async function main () {
  let opts
  try {
    opts = parseArgs(process.argv.slice(2))
  } catch (err) {
    console.error(`peer.mjs: ${err.message}\n${USAGE}`)
    return 2
  }
  if (opts.mode === 'listen') {
    await listen(opts)
    return 0
  }
  const node = await makeNode([])
  await serveTestProtocols(node)
  await node.start()
  try {
    switch (opts.mode) {
      case 'dial': return await dialChecks(node, opts)
      case 'bench-throughput': await benchThroughput(node, opts); return 0
      case 'bench-rtt': await benchRtt(node, opts); return 0
      case 'bench-connect': await benchConnect(node, opts); return 0
    }
  } finally {
    await bounded(node.stop(), 5000)
  }
  return 1
}

main().then((code) => process.exit(code), (err) => {
  console.error(`peer.mjs: ${err?.stack ?? err}`)
  process.exit(1)
})
