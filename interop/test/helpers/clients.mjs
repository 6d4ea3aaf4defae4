// Official @deepstream/client instances for tests, plus bounded waits.

import { createRequire } from 'node:module'
import deepstream from '@deepstream/client'

const require = createRequire(import.meta.url)
const { socketFactory } = require('@deepstream/client/dist/src/connection/socket-factory')
const { DeepstreamClient, C } = deepstream

export { C }

const LOGIN_TIMEOUT_MS = 5000

/** Resolves after `ms` milliseconds. */
export function sleep (ms) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/**
 * Polls `predicate` (which may return a promise) every 10 ms until it returns
 * a truthy value, which is returned. Throws after `ms` milliseconds with
 * `description` of the awaited condition in the message.
 */
export async function waitFor (predicate, ms, description) {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await predicate()
    if (value) {
      return value
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${description}`)
    }
    await sleep(10)
  }
}

/** Settles like `promise`, or rejects after `ms` milliseconds with `description` in the message. */
export function withTimeout (promise, ms, description) {
  let timer
  const timeout = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${description}`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/**
 * Settles to `{ ok: true, value }` or `{ ok: false, error }` within `ms`,
 * so a test can assert on a rejection reason. Throws on timeout.
 */
export async function settle (promise, ms, description) {
  try {
    return { ok: true, value: await withTimeout(promise, ms, description) }
  } catch (error) {
    if (error instanceof Error && error.message.startsWith(`timed out after ${ms} ms waiting for ${description}`)) {
      throw error
    }
    return { ok: false, error }
  }
}

/**
 * Wraps the client's own socket factory to record every message the client
 * sends and receives, as decoded protocol objects.
 */
function tappedSocketFactory (tap) {
  return (url, options, heartbeatInterval) => {
    const socket = socketFactory(url, options, heartbeatInterval)

    const send = socket.sendParsedMessage
    socket.sendParsedMessage = (message) => {
      tap.sent.push({ ...message })
      send(message)
    }

    // The client assigns its message handler after the factory returns, so
    // the recording wrapper is installed by a setter.
    let deliver = () => {}
    Object.defineProperty(socket, 'onparsedmessages', {
      configurable: true,
      get: () => deliver,
      set: (handler) => {
        deliver = (messages) => {
          for (const message of messages) {
            tap.received.push({ ...message })
          }
          handler(messages)
        }
      }
    })
    return socket
  }
}

/**
 * A set of official clients for one test. Each client records the errors it
 * emits (`client.errors`) and its traffic (`client.tap`). `closeAll()` closes
 * every client, and should run after each test.
 */
export class ClientPool {
  constructor (url, defaults = {}) {
    this.url = url
    this.defaults = defaults
    this.clients = []
  }

  /** Creates a client without logging in. */
  create (options = {}) {
    const tap = { sent: [], received: [] }
    const client = new DeepstreamClient(this.url, {
      // A broken server should fail a test, not make the client retry for minutes.
      maxReconnectAttempts: 0,
      ...this.defaults,
      ...options,
      socketFactory: tappedSocketFactory(tap)
    })
    client.tap = tap
    client.errors = []
    client.on('error', (meta, event, topic) => {
      client.errors.push({ meta, event, topic })
    })
    this.clients.push(client)
    return client
  }

  /** Creates a client and logs it in with `authData` (e.g. `{ username: 'ada' }`). */
  async login (authData = {}, options = {}) {
    const client = this.create(options)
    await withTimeout(client.login(authData), LOGIN_TIMEOUT_MS, `login of ${JSON.stringify(authData)}`)
    return client
  }

  /** Closes every client of this pool. */
  closeAll () {
    for (const client of this.clients) {
      client.close()
    }
    this.clients = []
  }
}

/** Describes a client's recorded errors for assertion messages. */
export function describeErrors (client) {
  return JSON.stringify(client.errors.map(({ event, topic, meta }) => ({ event, topic, meta: String(meta) })))
}

/**
 * Waits until the server acknowledged the message in which `client` sent
 * `action` on `topic` for `name` (e.g. EVENT SUBSCRIBE of 'news'), which
 * means the server has applied it. Without `name`, the first such message
 * counts (e.g. PRESENCE SUBSCRIBE_ALL, which names nothing).
 */
export async function waitForAck (client, topic, action, name, ms = 3000) {
  const request = `${C.TOPIC[topic]} action ${action}` + (name === undefined ? '' : ` for '${name}'`)
  const sent = await waitFor(
    () => client.tap.sent.find((message) =>
      message.topic === topic && message.action === action &&
      (name === undefined || message.name === name || (message.names || []).includes(name))),
    ms, `the client to send ${request}`
  )
  return waitFor(
    () => client.tap.received.find((message) =>
      message.isAck && message.topic === topic && message.action === action &&
      (sent.correlationId === undefined
        ? message.name === sent.name
        : message.correlationId === sent.correlationId)),
    ms, `the server to acknowledge ${request}`
  )
}
