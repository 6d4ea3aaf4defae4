// Starts the deepstream server under test on a free loopback port.
//
// DEEPSTREAM_TARGET picks the implementation:
//   rust (default)  our binary, from DEEPSTREAM_BIN or ../target/debug/deepstream
//   node            the official @deepstream/server installed in node_modules
// Both get the same generated config.yml and the same command line, so every
// test runs unchanged against either of them.

import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'

const INTEROP_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
const HOST = '127.0.0.1'
const READY_TIMEOUT_MS = 15000
const STOP_TIMEOUT_MS = 5000
// Upper bound on a server's life: `timeout` stops it even when the test
// process dies before it can.
const MAX_SERVER_LIFETIME_S = 300
const MAX_KEPT_OUTPUT_CHARS = 20000

/** Which server implementation the suite runs against, from DEEPSTREAM_TARGET. */
export function target () {
  const value = process.env.DEEPSTREAM_TARGET || 'rust'
  if (value !== 'rust' && value !== 'node') {
    throw new Error(`invalid DEEPSTREAM_TARGET '${value}': expected 'rust' or 'node'`)
  }
  return value
}

/** Finds a free TCP port on 127.0.0.1 by binding port 0 and releasing it. */
export function freePort () {
  return new Promise((resolvePort, reject) => {
    const probe = createServer()
    probe.unref()
    probe.once('error', reject)
    probe.listen(0, HOST, () => {
      const { port } = probe.address()
      probe.close(() => resolvePort(port))
    })
  })
}

/**
 * Builds the deepstream config object. It uses only keys that deepstream's
 * own config.yml defines, so both servers accept the file.
 *
 * `overrides.endpoint` goes into the ws-binary endpoint options
 * (heartbeatInterval, unauthenticatedClientTimeout, maxMessageSize and so
 * on). `overrides.rpc` and `overrides.listen` go into the sections of that
 * name. `overrides.storage`, when given, is the whole `storage` section,
 * `overrides.auth` the whole `auth` list (`none` otherwise) and
 * `overrides.permission` the whole `permission` section (`none` otherwise).
 */
export function buildConfig (port, overrides = {}) {
  const config = {
    serverName: `interop-${port}`,
    showLogo: false,
    logLevel: 'INFO',
    httpServer: {
      type: 'default',
      options: {
        host: HOST,
        port,
        healthCheckPath: '/health-check'
      }
    },
    // Only the binary WebSocket endpoint: deepstream's defaults would also
    // start the text, JSON and HTTP endpoints and MQTT on 0.0.0.0:1883.
    connectionEndpoints: [
      {
        type: 'ws-binary',
        options: { urlPath: '/deepstream', ...overrides.endpoint }
      }
    ],
    auth: overrides.auth ?? [{ type: 'none' }],
    permission: overrides.permission ?? { type: 'none' },
    rpc: { ...overrides.rpc },
    listen: { ...overrides.listen }
  }
  if (overrides.storage !== undefined) {
    config.storage = overrides.storage
  }
  return config
}

/** A config value that deepstream replaces with the parsed content of a file. */
class FileLoad {
  constructor (fileName) {
    // deepstream strips '#' comments and then finds `fileLoad(...)` with a
    // regular expression over each line, so a name with a parenthesis, quote,
    // '#' or line break would not be read as written.
    if (!/^[\w./-]+$/.test(fileName)) {
      throw new Error(`invalid fileLoad name ${JSON.stringify(fileName)}: use letters, digits, '_', '-', '.' and '/'`)
    }
    this.fileName = fileName
  }
}

/**
 * Returns a config value written as `fileLoad(fileName)`, which both servers
 * replace with the parsed YAML or JSON of that file, relative to config.yml's
 * folder. Pair it with `overrides.files` to write the file.
 */
export function fileLoad (fileName) {
  return new FileLoad(fileName)
}

/**
 * Serializes a config object as block YAML. Strings are written as JSON
 * strings, which YAML reads as double-quoted scalars.
 */
export function toYaml (value, indent = '') {
  const lines = []
  if (Array.isArray(value)) {
    for (const item of value) {
      if (isPlainObject(item) || Array.isArray(item)) {
        const nested = toYaml(item, indent + '  ').replace(/^\s+/, '')
        lines.push(`${indent}- ${nested}`)
      } else {
        lines.push(`${indent}- ${scalar(item)}`)
      }
    }
    return lines.join('\n')
  }
  for (const [key, item] of Object.entries(value)) {
    if (isPlainObject(item) && Object.keys(item).length === 0) {
      continue
    }
    if (isPlainObject(item) || (Array.isArray(item) && item.length > 0)) {
      lines.push(`${indent}${key}:`)
      lines.push(toYaml(item, indent + '  '))
    } else {
      lines.push(`${indent}${key}: ${scalar(item)}`)
    }
  }
  return lines.join('\n')
}

function isPlainObject (value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof FileLoad)
}

function scalar (value) {
  // Unquoted, because deepstream pastes the file's content as JSON text in
  // place of the call, and inside quotes that text would end the string.
  if (value instanceof FileLoad) {
    return `fileLoad(${value.fileName})`
  }
  if (Array.isArray(value)) {
    return '[]'
  }
  if (value === null || typeof value === 'boolean' || typeof value === 'number') {
    return String(value)
  }
  if (typeof value === 'string') {
    // deepstream strips everything after '#' on every line before parsing.
    if (value.includes('#')) {
      throw new Error(`config value ${JSON.stringify(value)} contains '#', which deepstream reads as a comment`)
    }
    return JSON.stringify(value)
  }
  throw new Error(`config value of type ${typeof value} cannot be written as YAML`)
}

function serverCommand () {
  if (target() === 'node') {
    const script = join(INTEROP_DIR, 'node_modules', '@deepstream', 'server', 'dist', 'bin', 'deepstream')
    if (!existsSync(script)) {
      throw new Error(`the Node.js deepstream server is missing at ${script}: run 'npm ci' in ${INTEROP_DIR}`)
    }
    return [process.execPath, script]
  }
  const binary = process.env.DEEPSTREAM_BIN
    ? resolve(process.env.DEEPSTREAM_BIN)
    : resolve(INTEROP_DIR, '..', 'target', 'debug', 'deepstream')
  if (!existsSync(binary)) {
    throw new Error(
      `the deepstream binary is missing at ${binary}: build it with 'cargo build -p deepstream-server' ` +
      'or set DEEPSTREAM_BIN (or run with DEEPSTREAM_TARGET=node)'
    )
  }
  return [binary]
}

/** A running server process with its port and collected output. */
export class RunningServer {
  constructor ({ child, port, folder, args }) {
    this.child = child
    this.port = port
    this.folder = folder
    this.args = args
    this.url = `ws://${HOST}:${port}/deepstream`
    this.healthUrl = `http://${HOST}:${port}/health-check`
    this.exit = null
    this.outputText = ''

    const keep = (chunk) => {
      this.outputText = (this.outputText + chunk.toString()).slice(-MAX_KEPT_OUTPUT_CHARS)
    }
    child.stdout.on('data', keep)
    child.stderr.on('data', keep)
    this.exited = new Promise((resolveExit) => {
      child.once('exit', (code, signal) => {
        this.exit = { code, signal }
        resolveExit(this.exit)
      })
    })
  }

  /** Kills `timeout` and the server under it, which share a process group. */
  killGroup () {
    try {
      process.kill(-this.child.pid, 'SIGKILL')
    } catch (error) {
      if (error.code !== 'ESRCH') {
        throw error
      }
    }
  }

  /** The last part of the server's stdout and stderr, for failure messages. */
  output () {
    return this.outputText
  }

  /** Stops the server (SIGINT, then SIGKILL after a grace period) and removes its folder. */
  async stop () {
    await this.halt()
    await rm(this.folder, { recursive: true, force: true })
  }

  /**
   * Stops the server process but keeps its folder, so `restartServer` can
   * start it again on the same config and data. `SIGINT` requests a clean
   * shutdown and escalates to SIGKILL after a grace period. `SIGKILL` kills
   * at once, as a crash would. Returns the exit code and signal.
   */
  async halt (signal = 'SIGINT') {
    if (this.exit !== null) {
      return this.exit
    }
    if (signal === 'SIGKILL') {
      this.killGroup()
      return this.exited
    }
    this.child.kill(signal)
    let timer
    const gracePeriod = new Promise((resolveGrace) => {
      timer = setTimeout(() => resolveGrace(null), STOP_TIMEOUT_MS)
    })
    const stopped = await Promise.race([this.exited, gracePeriod])
    clearTimeout(timer)
    if (stopped === null) {
      this.killGroup()
      await this.exited
    }
    return this.exit
  }
}

/**
 * Writes a config.yml into a fresh temporary folder, starts the chosen server
 * with it and waits until /health-check returns 200 and /deepstream accepts a
 * WebSocket. Throws with the server's output when it does not come up in time.
 * `overrides.files` maps file names to contents written beside config.yml,
 * such as a users file.
 */
export async function startServer (overrides = {}) {
  const command = serverCommand()
  const port = await freePort()
  const folder = await mkdtemp(join(tmpdir(), 'deepstream-interop-'))
  const configPath = join(folder, 'config.yml')
  await writeFile(configPath, toYaml(buildConfig(port, overrides)) + '\n')
  for (const [name, content] of Object.entries(overrides.files ?? {})) {
    await writeFile(join(folder, name), content)
  }

  const args = [
    '--kill-after=5', String(MAX_SERVER_LIFETIME_S),
    ...command, 'start', '-c', configPath, '--host', HOST, '--port', String(port)
  ]
  return launch({ args, port, folder })
}

/**
 * Starts a server that `halt()` stopped again, with the same command line,
 * port and folder, so it reads the config and data it left behind. Returns
 * a new RunningServer, and the old one stays stopped.
 */
export async function restartServer (server) {
  if (server.exit === null) {
    throw new Error(`the server on port ${server.port} is still running: halt() it before restarting it`)
  }
  return launch({ args: server.args, port: server.port, folder: server.folder })
}

async function launch ({ args, port, folder }) {
  // detached: `timeout` leads a new process group, so one signal to the
  // group also reaches the server.
  const child = spawn('timeout', args, { cwd: folder, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  const server = new RunningServer({ child, port, folder, args })
  runningServers.add(server)
  server.exited.then(() => runningServers.delete(server))

  try {
    await waitUntilReady(server)
  } catch (error) {
    await server.stop()
    throw new Error(`${error.message}\ncommand: timeout ${args.join(' ')}\nserver output:\n${server.output()}`)
  }
  return server
}

async function waitUntilReady (server) {
  const deadline = Date.now() + READY_TIMEOUT_MS
  let lastProblem = 'no answer yet'
  while (Date.now() < deadline) {
    if (server.exit !== null) {
      throw new Error(`the ${target()} server exited early (code ${server.exit.code}, signal ${server.exit.signal})`)
    }
    try {
      const response = await fetch(server.healthUrl, { signal: AbortSignal.timeout(1000) })
      if (response.status === 200) {
        await probeWebSocket(server.url)
        return
      }
      lastProblem = `GET ${server.healthUrl} returned ${response.status}`
    } catch (error) {
      lastProblem = error.message
    }
    await sleep(50)
  }
  throw new Error(`the ${target()} server was not ready after ${READY_TIMEOUT_MS} ms: ${lastProblem}`)
}

// The health check can return 200 before the WebSocket path is registered, so
// readiness also needs one WebSocket upgrade to succeed.
function probeWebSocket (url) {
  return new Promise((resolveProbe, reject) => {
    const socket = new WebSocket(url)
    const timer = setTimeout(() => {
      socket.terminate()
      reject(new Error(`WebSocket upgrade on ${url} timed out`))
    }, 1000)
    socket.once('open', () => {
      clearTimeout(timer)
      socket.terminate()
      resolveProbe()
    })
    socket.once('error', (error) => {
      clearTimeout(timer)
      reject(new Error(`WebSocket upgrade on ${url} failed: ${error.message}`))
    })
  })
}

function sleep (ms) {
  return new Promise((resolveSleep) => setTimeout(resolveSleep, ms))
}

// Servers still running when the test process exits are killed synchronously.
const runningServers = new Set()
process.once('exit', () => {
  for (const server of runningServers) {
    server.killGroup()
  }
})
