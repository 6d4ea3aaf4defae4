// Driver for the official JavaScript client, @deepstream/client 7.x, taken
// from interop/node_modules. It reads one JSON command per line on stdin and
// writes replies and observations, one JSON object per line, to stdout, as
// conformance/README.md specifies. It exits when stdin closes.

import { createRequire } from 'node:module'
import { createInterface } from 'node:readline'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const INTEROP_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'interop')
const require = createRequire(join(INTEROP_DIR, 'package.json'))
const { DeepstreamClient, C } = require('@deepstream/client')

const MAX_BULK_COUNT = 10000

// Time the client gets to finish its closing handshake before the driver exits.
const CLOSE_TIMEOUT_MS = 1000

// Time that commands still queued when stdin closes get to finish. The runner
// kills a driver that has not exited 3 seconds after closing its stdin, and
// a command left waiting then is one whose step already timed out.
const DRAIN_TIMEOUT_MS = 1000

// Connection states in which the client never talks to the server again.
const DEAD_STATES = new Set([
  C.CONNECTION_STATE.CLOSING,
  C.CONNECTION_STATE.CLOSED,
  C.CONNECTION_STATE.CHALLENGE_DENIED,
  C.CONNECTION_STATE.TOO_MANY_AUTH_ATTEMPTS,
  C.CONNECTION_STATE.AUTHENTICATION_TIMEOUT
])

// Error texts that the client itself passes to `rpc.make` callbacks. Any
// other text comes from a provider's `response.error(text)`.
const RPC_CLIENT_ERRORS = new Map([
  ['NO_RPC_PROVIDER', 'NO_RPC_PROVIDER'],
  ['MESSAGE_DENIED', 'MESSAGE_DENIED'],
  ['MESSAGE_PERMISSION_ERROR', 'MESSAGE_DENIED'],
  ['RESPONSE_TIMEOUT', 'FAILED'],
  ['ACCEPT_TIMEOUT', 'FAILED'],
  [C.EVENT.CLIENT_OFFLINE, 'FAILED']
])

/** A command's failure: a protocol error code and a message. */
class Failure extends Error {
  constructor (code, message) {
    super(message)
    this.code = code
  }
}

function invalid (message) {
  return new Failure('INVALID_COMMAND', message)
}

/** Converts an error text from a client callback into a Failure. */
function clientFailure (error, operation) {
  const detail = typeof error === 'string' ? error : JSON.stringify(error)
  const denied = error === 'MESSAGE_DENIED' || error === 'MESSAGE_PERMISSION_ERROR'
  return new Failure(denied ? 'MESSAGE_DENIED' : 'FAILED', `${operation} failed: ${detail}`)
}

/** Returns a node-style callback that settles a promise, mapping errors with clientFailure. */
function settle (resolve, reject, operation) {
  return (error, value) => error ? reject(clientFailure(error, operation)) : resolve(value)
}

// ---- Reading command arguments ----

function has (command, field) {
  return Object.hasOwn(command, field) && command[field] !== null
}

function text (command, field) {
  if (!has(command, field)) throw invalid(`\`${field}\` is missing`)
  const value = command[field]
  if (typeof value !== 'string') {
    throw invalid(`\`${field}\` must be a string, not ${JSON.stringify(value)}`)
  }
  if (value.length === 0) throw invalid(`\`${field}\` must not be empty`)
  return value
}

function optionalText (command, field) {
  return has(command, field) ? text(command, field) : undefined
}

function textArray (command, field) {
  const value = command[field]
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
    throw invalid(`\`${field}\` must be an array of strings, not ${JSON.stringify(value ?? null)}`)
  }
  return value
}

function object (command, field) {
  const value = command[field]
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid(`\`${field}\` must be an object, not ${JSON.stringify(value ?? null)}`)
  }
  return value
}

function bulkCount (command) {
  const value = command.count
  if (!Number.isInteger(value) || value < 1 || value > MAX_BULK_COUNT) {
    throw invalid(`\`count\` must be an integer from 1 to ${MAX_BULK_COUNT}, not ${JSON.stringify(value ?? null)}`)
  }
  return value
}

function optionalIndex (command) {
  if (!has(command, 'index')) return undefined
  const value = command.index
  if (!Number.isInteger(value) || value < 0) {
    throw invalid(`\`index\` must be a non-negative integer, not ${JSON.stringify(value)}`)
  }
  return value
}

function optionalBoolean (command, field, fallback) {
  if (!has(command, field)) return fallback
  if (typeof command[field] !== 'boolean') {
    throw invalid(`\`${field}\` must be true or false, not ${JSON.stringify(command[field])}`)
  }
  return command[field]
}

/** Returns `data`, which record writes need. The client takes only an object or array as a whole record. */
function recordData (command, path) {
  if (!Object.hasOwn(command, 'data')) throw invalid(`\`${command.op}\` needs \`data\``)
  const data = command.data
  if (path === undefined && (typeof data !== 'object' || data === null)) {
    throw invalid(`\`data\` must be an object or array when \`path\` is missing, not ${JSON.stringify(data)}`)
  }
  return data
}

// ---- Driver state ----

/** The client and what the driver opened with it. Each `connect` replaces it. */
let session = null

function newSession (client) {
  return {
    client,
    // Opened records and lists by name: { kind, handle, ready }.
    records: new Map(),
    // Record handles that already write `record-deleted` observations.
    reportingDeletion: new WeakSet(),
    // Listen requests waiting for `accept` or `reject`, by subscription name.
    listens: new Map(),
    // Functions that take a client error for a pending command; see claimErrors.
    errorClaims: new Set()
  }
}

function write (line) {
  process.stdout.write(JSON.stringify(line) + '\n')
}

function connectionState () {
  return session.client.getConnectionState()
}

/**
 * Routes an error of the client of `owner` to the first pending command that
 * claims it, or writes it as an error observation. The client passes the
 * message (or a text) as `meta`, the error action or event name, and the
 * topic name.
 */
function onClientError (owner, meta, code, topic) {
  // A replaced client may still report errors while it closes, and no command waits for them.
  if (owner !== session) return
  const error = { topic, code, name: typeof meta?.name === 'string' ? meta.name : null }
  for (const claim of session.errorClaims) {
    if (claim(error)) return
  }
  write({ kind: 'error', ...error })
}

/**
 * Hands client errors that `matches` accepts to `onError` instead of writing
 * them as observations. Returns the function that ends the claim.
 */
function claimErrors (matches, onError) {
  const claim = (error) => {
    if (!matches(error)) return false
    onError(error)
    return true
  }
  session.errorClaims.add(claim)
  return () => session.errorClaims.delete(claim)
}

/** Calls `listener` with each new connection state until the returned function is called. */
function watchConnectionState (listener) {
  const client = session.client
  client.on(C.EVENT.CONNECTION_STATE_CHANGED, listener)
  return () => client.off(C.EVENT.CONNECTION_STATE_CHANGED, listener)
}

/** Waits until the server accepted the connection, so that `login` can follow. */
function waitForChallenge () {
  return new Promise((resolve, reject) => {
    const finish = (error) => {
      stopWatching()
      releaseErrors()
      if (error) reject(error)
      else resolve()
    }
    const onState = (state) => {
      if (state === C.CONNECTION_STATE.AWAITING_AUTHENTICATION) finish()
      else if (DEAD_STATES.has(state)) {
        finish(new Failure('CONNECT_FAILED', `the connection ended in state ${state}`))
      }
    }
    const stopWatching = watchConnectionState(onState)
    const releaseErrors = claimErrors(
      (error) => error.topic === 'CONNECTION' && error.code === C.EVENT.CONNECTION_ERROR,
      () => finish(new Failure('CONNECT_FAILED', 'the server is unreachable'))
    )
    onState(connectionState())
  })
}

/** Closes the current client, waiting a short time for its closing handshake. */
async function closeSession () {
  if (session === null) return
  const closing = session
  session = null
  const state = closing.client.getConnectionState()
  if (state === C.CONNECTION_STATE.CLOSED || state === C.CONNECTION_STATE.CLOSING) return
  if (DEAD_STATES.has(state) || state === C.CONNECTION_STATE.RECONNECTING) {
    // The socket is gone already, so no handshake follows. Closing stops
    // the client's timers, which would otherwise open a new socket.
    closing.client.close()
    return
  }
  await new Promise((resolve) => {
    const timer = setTimeout(resolve, CLOSE_TIMEOUT_MS)
    closing.client.on(C.EVENT.CONNECTION_STATE_CHANGED, (state) => {
      if (state === C.CONNECTION_STATE.CLOSED) {
        clearTimeout(timer)
        resolve()
      }
    })
    closing.client.close()
  })
}

// ---- Records and lists ----

/**
 * Returns the driver's entry for the record or list `name`, opening it as
 * `kind` on first use. Its `ready` promise resolves with the handle once the
 * client has the record's data and rejects when the server denies it.
 */
function openEntry (name, kind) {
  const existing = session.records.get(name)
  if (existing !== undefined) {
    if (existing.kind !== kind) {
      throw invalid(`${JSON.stringify(name)} is open as a ${existing.kind}, not a ${kind}`)
    }
    return existing
  }

  const { client, records } = session
  const handle = kind === 'list' ? client.record.getList(name) : client.record.getRecord(name)
  const entry = { kind, handle, ready: waitUntilReady(name, handle) }
  // Commands that await `ready` receive its failure, so this catch only
  // stops Node from reporting the rejection as unhandled.
  entry.ready.catch(() => {})
  handle.on('delete', () => {
    if (records.get(name) === entry) records.delete(name)
  })
  handle.on('error', (code, originalAction) => reportRecordError(name, code, originalAction))
  records.set(name, entry)
  return entry
}

/**
 * Waits for the record to be ready. A denied read never makes it ready.
 * The client reports the denial only as an error with the record's name, so
 * that error fails the wait instead of becoming an observation.
 */
function waitUntilReady (name, handle) {
  return new Promise((resolve, reject) => {
    const releaseErrors = claimErrors(
      (error) => error.topic === 'RECORD' && error.name === name,
      (error) => {
        releaseErrors()
        reject(clientFailure(error.code, `opening ${JSON.stringify(name)}`))
      }
    )
    handle.whenReady(() => {
      releaseErrors()
      resolve(handle)
    })
  })
}

/**
 * Writes record errors that no command receives. A denied subscription also
 * reaches onClientError, and a denied delete reaches `record-delete`, so
 * those are left out here to avoid reporting one error twice.
 */
function reportRecordError (name, code, originalAction) {
  const reportedElsewhere = originalAction === 'DELETE' ||
    (typeof originalAction === 'string' && originalAction.startsWith('SUBSCRIBE'))
  if (reportedElsewhere) return
  write({ kind: 'error', topic: 'RECORD', code, name })
}

async function openRecord (name) {
  return openEntry(name, 'record').ready
}

async function openList (name) {
  return openEntry(name, 'list').ready
}

/** Returns the record or list `name` that the driver has open, or opens it as a record. */
async function openAny (name) {
  return (session.records.get(name) ?? openEntry(name, 'record')).ready
}

/**
 * Fails with the earlier failure when the driver's open of `name` failed.
 * The client keeps such a record waiting for data forever, and its requests
 * on that name would wait too.
 */
async function checkNotFailed (name) {
  const entry = session.records.get(name)
  if (entry !== undefined) await entry.ready
}

function subscribeRecord (name, record, path) {
  const changed = (data) => write({ kind: 'record', name, path: path ?? null, data: data ?? null })
  if (path === undefined) record.subscribe(changed)
  else record.subscribe(path, changed)

  if (!session.reportingDeletion.has(record)) {
    session.reportingDeletion.add(record)
    record.on('delete', () => write({ kind: 'record-deleted', name }))
  }
}

/** Runs a write that takes an acknowledgement callback and waits for the acknowledgement. */
function acknowledged (operation, start) {
  return new Promise((resolve, reject) => start(settle(resolve, reject, operation)))
}

// ---- Login ----

/**
 * Logs in. The client calls the login callback only for success and for
 * AUTH_UNSUCCESSFUL. The TOO_MANY_AUTH_ATTEMPTS that both servers send right
 * after the last rejection reaches the client's error event, which becomes an
 * observation.
 */
function login (auth) {
  return new Promise((resolve, reject) => {
    const finish = (error, clientData) => {
      stopWatching()
      if (error) reject(error)
      else resolve(clientData ?? null)
    }
    const stopWatching = watchConnectionState((state) => {
      if (DEAD_STATES.has(state)) {
        finish(new Failure('FAILED', `the connection ended in state ${state} during login`))
      }
    })

    session.client.login(auth, (success, data) => {
      if (success) finish(null, data)
      else finish(new Failure('LOGIN_REJECTED', `login rejected: ${JSON.stringify(data ?? null)}`))
    })
  })
}

// ---- Command handlers, one per op ----

const handlers = {
  async connect (command) {
    const url = text(command, 'url')
    await closeSession()
    let client
    try {
      client = new DeepstreamClient(url)
    } catch (error) {
      throw new Failure('CONNECT_FAILED', `cannot connect to ${url}: ${error.message}`)
    }
    session = newSession(client)
    const owner = session
    client.on('error', (meta, code, topic) => onClientError(owner, meta, code, topic))
    try {
      await waitForChallenge()
    } catch (error) {
      await closeSession()
      throw error
    }
    return null
  },

  login (command) {
    const auth = object(command, 'auth')
    if (connectionState() === C.CONNECTION_STATE.OPEN) {
      throw new Failure('FAILED', 'already logged in')
    }
    return login(auth)
  },

  close () {
    const state = connectionState()
    // Closing again would only make the client report IS_CLOSED.
    if (state !== C.CONNECTION_STATE.CLOSING && state !== C.CONNECTION_STATE.CLOSED) {
      session.client.close()
    }
    return null
  },

  subscribe (command) {
    subscribeEvent(text(command, 'name'))
    return null
  },

  'subscribe-many' (command) {
    const prefix = text(command, 'prefix')
    const count = bulkCount(command)
    for (let index = 0; index < count; index++) subscribeEvent(`${prefix}${index}`)
    return null
  },

  unsubscribe (command) {
    session.client.event.unsubscribe(text(command, 'name'))
    return null
  },

  emit (command) {
    session.client.event.emit(text(command, 'name'), command.data)
    return null
  },

  listen (command) {
    return listenTo(session.client.event, text(command, 'pattern'))
  },

  'record-listen' (command) {
    return listenTo(session.client.record, text(command, 'pattern'))
  },

  accept (command) {
    takeListen(text(command, 'name')).accept()
    return null
  },

  reject (command) {
    takeListen(text(command, 'name')).reject()
    return null
  },

  provide (command) {
    const name = text(command, 'name')
    const answer = providerAnswer(command)
    session.client.rpc.provide(name, (data, response) => {
      write({ kind: 'rpc-request', name, data: data ?? null })
      answer(response)
    })
    return null
  },

  make (command) {
    const name = text(command, 'name')
    return new Promise((resolve, reject) => {
      session.client.rpc.make(name, command.data, (error, result) => {
        if (error) reject(rpcFailure(error))
        else resolve(result ?? null)
      })
    })
  },

  'presence-get-all' () {
    return new Promise((resolve, reject) => {
      session.client.presence.getAll(settle((users) => resolve([...users].sort()), reject, 'presence query'))
    })
  },

  'presence-get' (command) {
    const users = textArray(command, 'users')
    return new Promise((resolve, reject) => {
      session.client.presence.getAll(users, settle(resolve, reject, 'presence query'))
    })
  },

  'presence-subscribe' (command) {
    const user = optionalText(command, 'user')
    const changed = (name, online) => write({ kind: 'presence', user: name, online })
    if (user === undefined) session.client.presence.subscribe(changed)
    else session.client.presence.subscribe(user, changed)
    return null
  },

  async 'record-get' (command) {
    const record = await openRecord(text(command, 'name'))
    return record.get()
  },

  async 'record-version' (command) {
    const record = await openAny(text(command, 'name'))
    return record.version
  },

  async 'record-set' (command) {
    const name = text(command, 'name')
    const path = optionalText(command, 'path')
    const data = recordData(command, path)
    const ack = optionalBoolean(command, 'ack', true)
    const record = await openRecord(name)

    if (!ack) {
      if (path === undefined) record.set(data)
      else record.set(path, data)
      return null
    }
    await acknowledged(`writing ${JSON.stringify(name)}`, (callback) => {
      if (path === undefined) record.set(data, callback)
      else record.set(path, data, callback)
    })
    return null
  },

  async 'record-erase' (command) {
    const name = text(command, 'name')
    const path = text(command, 'path')
    const record = await openRecord(name)
    await acknowledged(`erasing ${path} of ${JSON.stringify(name)}`, (callback) => record.eraseWithAck(path, callback))
    return null
  },

  async 'record-subscribe' (command) {
    const name = text(command, 'name')
    const path = optionalText(command, 'path')
    const record = await openRecord(name)
    subscribeRecord(name, record, path)
    return null
  },

  async 'record-subscribe-many' (command) {
    const prefix = text(command, 'prefix')
    const count = bulkCount(command)
    const names = Array.from({ length: count }, (_, index) => `${prefix}${index}`)
    // Opening every record before waiting lets the client batch the
    // subscriptions into a few messages.
    const entries = names.map((name) => openEntry(name, 'record'))
    const records = await Promise.all(entries.map((entry) => entry.ready))
    records.forEach((record, index) => subscribeRecord(names[index], record, undefined))
    return null
  },

  async 'record-delete' (command) {
    const name = text(command, 'name')
    // The entry stays until the client reports the deletion, so a denied
    // delete leaves the record open.
    const record = await openAny(name)
    await acknowledged(`deleting ${JSON.stringify(name)}`, (callback) => record.delete(callback))
    return null
  },

  async 'record-has' (command) {
    const name = text(command, 'name')
    await checkNotFailed(name)
    return new Promise((resolve, reject) => {
      session.client.record.has(name, settle(resolve, reject, `checking ${JSON.stringify(name)}`))
    })
  },

  async 'record-snapshot' (command) {
    const name = text(command, 'name')
    await checkNotFailed(name)
    return new Promise((resolve, reject) => {
      session.client.record.snapshot(name, (error, data) => {
        if (error === 'RECORD_NOT_FOUND') reject(notFound(name))
        else if (error) reject(clientFailure(error, `snapshot of ${JSON.stringify(name)}`))
        else resolve(data ?? null)
      })
    })
  },

  async 'record-head' (command) {
    const name = text(command, 'name')
    await checkNotFailed(name)
    return new Promise((resolve, reject) => {
      session.client.record.head(name, (error, version) => {
        // Both servers return version -1 as the head of a missing record, and
        // the error RECORD_NOT_FOUND would mean the same.
        if (error === 'RECORD_NOT_FOUND' || version === -1) reject(notFound(name))
        else if (error) reject(clientFailure(error, `head of ${JSON.stringify(name)}`))
        else resolve(version)
      })
    })
  },

  async 'record-set-data' (command) {
    const name = text(command, 'name')
    const path = optionalText(command, 'path')
    const data = recordData(command, path)
    await checkNotFailed(name)
    await acknowledged(`writing ${JSON.stringify(name)}`, (callback) => {
      if (path === undefined) session.client.record.setDataWithAck(name, data, callback)
      else session.client.record.setDataWithAck(name, path, data, callback)
    })
    return null
  },

  async 'record-notify' (command) {
    const names = textArray(command, 'names')
    await new Promise((resolve, reject) => {
      session.client.record.notify(names, settle(resolve, reject, 'notify'))
    })
    return null
  },

  async 'list-get' (command) {
    const list = await openList(text(command, 'name'))
    return list.getEntries()
  },

  async 'list-set' (command) {
    const name = text(command, 'name')
    const entries = textArray(command, 'entries')
    const list = await openList(name)
    await acknowledged(`setting the entries of ${JSON.stringify(name)}`, (callback) => list.setEntries(entries, callback))
    return null
  },

  async 'list-add' (command) {
    const name = text(command, 'name')
    const entry = requiredString(command, 'entry')
    const index = optionalIndex(command)
    const list = await openList(name)
    await acknowledged(`adding to ${JSON.stringify(name)}`, (callback) => list.addEntry(entry, index, callback))
    return null
  },

  async 'list-remove' (command) {
    const name = text(command, 'name')
    const entry = requiredString(command, 'entry')
    const list = await openList(name)
    await acknowledged(`removing from ${JSON.stringify(name)}`, (callback) => list.removeEntry(entry, undefined, callback))
    return null
  },

  async 'list-subscribe' (command) {
    const name = text(command, 'name')
    const list = await openList(name)
    list.subscribe((entries) => write({ kind: 'list', name, entries }))
    return null
  }
}

// ---- Helpers of the handlers ----

/** Reads a string argument that, unlike a name, may be empty. */
function requiredString (command, field) {
  if (typeof command[field] !== 'string') {
    throw invalid(`\`${field}\` must be a string, not ${JSON.stringify(command[field] ?? null)}`)
  }
  return command[field]
}

function subscribeEvent (name) {
  session.client.event.subscribe(name, (data) => write({ kind: 'event', name, data: data ?? null }))
}

/** Listens to `pattern` on the event or record handler and writes listen observations. */
function listenTo (handler, pattern) {
  handler.listen(pattern, (name, response) => {
    session.listens.set(name, response)
    response.onStop(() => write({ kind: 'listen', pattern, name, state: 'stop' }))
    write({ kind: 'listen', pattern, name, state: 'start' })
  })
  return null
}

function takeListen (name) {
  const response = session.listens.get(name)
  if (response === undefined) {
    throw invalid(`no listen request for ${JSON.stringify(name)}`)
  }
  session.listens.delete(name)
  return response
}

/** Returns how the provider responds to each request, from exactly one of `reply`, `fail` or `reject: true`. */
function providerAnswer (command) {
  const responseFields = ['reply', 'fail', 'reject'].filter((field) => Object.hasOwn(command, field))
  if (responseFields.length !== 1) {
    throw invalid(`\`provide\` needs exactly one of \`reply\`, \`fail\` or \`reject\`, not ${responseFields.length}`)
  }
  switch (responseFields[0]) {
    case 'reply':
      return (response) => response.send(command.reply)
    case 'fail': {
      const message = requiredString(command, 'fail')
      return (response) => response.error(message)
    }
    default:
      if (command.reject !== true) {
        throw invalid(`\`reject\` must be true, not ${JSON.stringify(command.reject)}`)
      }
      return (response) => response.reject()
  }
}

/**
 * Converts a `rpc.make` error. The client passes a provider's error text
 * unchanged, so it can be distinguished only from the client's own texts.
 * NOTE: a provider error whose text equals one of RPC_CLIENT_ERRORS is
 * reported as that client error.
 */
function rpcFailure (error) {
  const code = RPC_CLIENT_ERRORS.get(error)
  if (code !== undefined) return new Failure(code, `RPC failed: ${error}`)
  return new Failure('RPC_ERROR', typeof error === 'string' ? error : JSON.stringify(error))
}

function notFound (name) {
  return new Failure('RECORD_NOT_FOUND', `record ${JSON.stringify(name)} does not exist`)
}

// ---- The command loop ----

async function handle (line) {
  let command
  try {
    command = JSON.parse(line)
  } catch (error) {
    return { kind: 'reply', id: null, error: 'INVALID_COMMAND', message: `invalid command line: ${error.message}` }
  }
  if (typeof command !== 'object' || command === null || Array.isArray(command)) {
    return { kind: 'reply', id: null, error: 'INVALID_COMMAND', message: 'a command must be a JSON object' }
  }

  const id = command.id ?? null
  try {
    return { kind: 'reply', id, result: (await run(command)) ?? null }
  } catch (error) {
    const code = error instanceof Failure ? error.code : 'FAILED'
    return { kind: 'reply', id, error: code, message: error?.message ?? String(error) }
  }
}

function run (command) {
  const op = command.op
  if (typeof op !== 'string') throw invalid('`op` must be a string')
  const handler = Object.hasOwn(handlers, op) ? handlers[op] : undefined
  if (handler === undefined) throw invalid(`unknown op ${JSON.stringify(op)}`)

  if (op !== 'connect') {
    if (session === null) throw invalid('send `connect` first')
    // The client neither reconnects nor sends requests once its connection
    // ended like this, so commands would wait forever.
    const state = connectionState()
    if (op !== 'close' && DEAD_STATES.has(state)) {
      throw new Failure('FAILED', `the client is closed (connection state ${state})`)
    }
  }
  return handler(command)
}

// Errors thrown from the client's own callbacks would otherwise end the
// process and every later command with it.
process.on('uncaughtException', (error) => console.error('driver: uncaught exception:', error))
process.on('unhandledRejection', (error) => console.error('driver: unhandled rejection:', error))

// Commands run one at a time in arrival order, like the Rust driver's.
let queue = Promise.resolve()
const input = createInterface({ input: process.stdin })
input.on('line', (line) => {
  queue = queue.then(async () => write(await handle(line)))
})
input.on('close', () => {
  const drainTimeout = new Promise((resolve) => setTimeout(resolve, DRAIN_TIMEOUT_MS))
  Promise.race([queue, drainTimeout])
    .then(closeSession)
    .finally(() => process.exit(0))
})
