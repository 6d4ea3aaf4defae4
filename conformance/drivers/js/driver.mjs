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
const { DeepstreamClient } = require('@deepstream/client')

let client = null
const records = new Map()
const pendingListens = new Map()

function write (line) {
  process.stdout.write(JSON.stringify(line) + '\n')
}

class Failure extends Error {
  constructor (code, message) {
    super(message)
    this.code = code
  }
}

function text (command, field, optional = false) {
  const value = command[field]
  if (value === undefined || value === null) {
    if (optional) return undefined
    throw new Failure('INVALID_COMMAND', `\`${field}\` is missing`)
  }
  if (typeof value !== 'string') {
    throw new Failure('INVALID_COMMAND', `\`${field}\` must be a string, not ${JSON.stringify(value)}`)
  }
  return value
}

/** Returns the record `name`, opening it on first use, once it is ready. */
async function openRecord (name) {
  if (!records.has(name)) {
    records.set(name, client.record.getRecord(name))
  }
  const record = records.get(name)
  await record.whenReady()
  return record
}

const handlers = {
  connect (command) {
    // The official client reconnects by itself; it opens the socket here and
    // logs in on the `login` command.
    client = new DeepstreamClient(text(command, 'url'))
    return null
  },

  login (command) {
    return new Promise((resolve, reject) => {
      client.login(command.auth ?? {}, (success, clientData) => {
        if (success) resolve(clientData ?? null)
        else reject(new Failure('LOGIN_REJECTED', `login rejected: ${JSON.stringify(clientData ?? null)}`))
      })
    })
  },

  close () {
    client.close()
    return null
  },

  subscribe (command) {
    const name = text(command, 'name')
    client.event.subscribe(name, (data) => write({ kind: 'event', name, data: data ?? null }))
    return null
  },

  emit (command) {
    client.event.emit(text(command, 'name'), command.data)
    return null
  },

  listen (command) {
    const pattern = text(command, 'pattern')
    client.event.listen(pattern, (name, response) => {
      pendingListens.set(name, response)
      response.onStop(() => write({ kind: 'listen', pattern, name, state: 'stop' }))
      write({ kind: 'listen', pattern, name, state: 'start' })
    })
    return null
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
    if (!('reply' in command)) {
      throw new Failure('INVALID_COMMAND', '`provide` needs `reply`')
    }
    const name = text(command, 'name')
    client.rpc.provide(name, (data, response) => {
      write({ kind: 'rpc-request', name, data: data ?? null })
      response.send(command.reply)
    })
    return null
  },

  make (command) {
    return new Promise((resolve, reject) => {
      client.rpc.make(text(command, 'name'), command.data, (error, result) => {
        if (error === 'NO_RPC_PROVIDER') reject(new Failure('NO_RPC_PROVIDER', 'no provider for the RPC'))
        else if (error) reject(new Failure('FAILED', String(error)))
        else resolve(result ?? null)
      })
    })
  },

  'presence-get-all' () {
    return new Promise((resolve, reject) => {
      client.presence.getAll((error, users) => {
        if (error) reject(new Failure('FAILED', String(error)))
        else resolve([...users].sort())
      })
    })
  },

  async 'record-get' (command) {
    const record = await openRecord(text(command, 'name'))
    return record.get()
  },

  async 'record-set' (command) {
    if (!('data' in command)) {
      throw new Failure('INVALID_COMMAND', '`record-set` needs `data`')
    }
    const path = text(command, 'path', true)
    const record = await openRecord(text(command, 'name'))
    await new Promise((resolve, reject) => {
      const acknowledged = (error) => error ? reject(new Failure('FAILED', String(error))) : resolve()
      if (path === undefined) record.set(command.data, acknowledged)
      else record.set(path, command.data, acknowledged)
    })
    return null
  },

  async 'record-subscribe' (command) {
    const name = text(command, 'name')
    const path = text(command, 'path', true)
    const record = await openRecord(name)
    const changed = (data) => write({ kind: 'record', name, path: path ?? null, data: data ?? null })
    if (path === undefined) record.subscribe(changed)
    else record.subscribe(path, changed)
    record.on('delete', () => write({ kind: 'record-deleted', name }))
    return null
  },

  async 'record-delete' (command) {
    const name = text(command, 'name')
    const record = await openRecord(name)
    records.delete(name)
    await new Promise((resolve, reject) => {
      record.delete((error) => error ? reject(new Failure('FAILED', String(error))) : resolve())
    })
    return null
  },

  'record-has' (command) {
    return new Promise((resolve, reject) => {
      client.record.has(text(command, 'name'), (error, has) => {
        if (error) reject(new Failure('FAILED', String(error)))
        else resolve(has)
      })
    })
  }
}

function takeListen (name) {
  const response = pendingListens.get(name)
  if (response === undefined) {
    throw new Failure('INVALID_COMMAND', `no listen request for ${JSON.stringify(name)}`)
  }
  pendingListens.delete(name)
  return response
}

async function handle (line) {
  let command
  try {
    command = JSON.parse(line)
  } catch (error) {
    return { kind: 'reply', id: null, error: 'INVALID_COMMAND', message: `invalid command line: ${error.message}` }
  }
  const id = command.id ?? null
  try {
    const handler = Object.hasOwn(handlers, command.op) ? handlers[command.op] : undefined
    if (handler === undefined) {
      throw new Failure('INVALID_COMMAND', `unknown op ${JSON.stringify(command.op)}`)
    }
    if (client === null && command.op !== 'connect') {
      throw new Failure('INVALID_COMMAND', 'send `connect` first')
    }
    const result = await handler(command)
    return { kind: 'reply', id, result: result ?? null }
  } catch (error) {
    return { kind: 'reply', id, error: error.code ?? 'FAILED', message: error.message }
  }
}

// Commands run one at a time in arrival order, like the Rust driver's.
let queue = Promise.resolve()
const input = createInterface({ input: process.stdin })
input.on('line', (line) => {
  queue = queue.then(async () => write(await handle(line)))
})
input.on('close', () => {
  queue.then(() => {
    if (client !== null) client.close()
    process.exit(0)
  })
})
