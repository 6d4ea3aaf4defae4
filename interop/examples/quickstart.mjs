// A first tour of a running deepstream server with the official client.
//
// Start a server, then run:
//   node examples/quickstart.mjs ws://127.0.0.1:6020/deepstream
//
// Two clients log in, see each other come online, exchange an event, make a
// remote procedure call, and one of them provides an event on demand through
// a listener. Each step is printed; the script exits 0 when all of them
// worked, and 1 with the failed step otherwise. It never runs longer than
// TIME_LIMIT_MS.

import deepstream from '@deepstream/client'

const { DeepstreamClient } = deepstream

const TIME_LIMIT_MS = 20000
const STEP_TIMEOUT_MS = 5000

const USAGE = 'usage: node examples/quickstart.mjs [ws://HOST:PORT/deepstream]'

const url = process.argv[2] || 'ws://127.0.0.1:6020/deepstream'
const clients = []

if (!isWebSocketUrl(url)) {
  console.error(`invalid server URL '${url}': expected a ws:// or wss:// URL\n${USAGE}`)
  process.exit(2)
}

function isWebSocketUrl (text) {
  try {
    const { protocol } = new URL(text)
    return protocol === 'ws:' || protocol === 'wss:'
  } catch {
    return false
  }
}

function fail (message) {
  console.error(`FAILED: ${message}`)
  for (const client of clients) {
    client.close()
  }
  process.exit(1)
}

const hardLimit = setTimeout(() => fail(`the tour did not finish within ${TIME_LIMIT_MS} ms`), TIME_LIMIT_MS)

/** Runs one step and prints its name and result. A step that takes too long fails. */
async function step (name, action) {
  process.stdout.write(`${name} ... `)
  let timer
  const timeout = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no result within ${STEP_TIMEOUT_MS} ms`)), STEP_TIMEOUT_MS)
  })
  try {
    const result = await Promise.race([action(), timeout])
    console.log(result === undefined ? 'ok' : `ok: ${result}`)
    return result
  } catch (error) {
    console.log('failed')
    fail(`${name}: ${describe(error)}`)
  } finally {
    clearTimeout(timer)
  }
}

function describe (error) {
  // Errors and the WebSocket's error events both carry a message.
  if (error && typeof error.message === 'string') {
    return error.message
  }
  return typeof error === 'string' ? error : JSON.stringify(error)
}

/** Logs `username` in. Rejects on a connection error instead of retrying. */
function connect (username) {
  const client = new DeepstreamClient(url, { maxReconnectAttempts: 0 })
  clients.push(client)
  return new Promise((resolve, reject) => {
    client.on('error', (error, event, topic) => {
      console.log(`  (client ${username} reported ${topic} ${event}: ${describe(error)})`)
      if (event === 'CONNECTION_ERROR') {
        reject(new Error(`cannot connect to ${url}: ${describe(error)}`))
      }
    })
    client.login({ username }).then(() => resolve(client), reject)
  })
}

function pause (ms) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Resolves with the first value `subscribe(callback)` delivers. */
function once (subscribe) {
  return new Promise((resolve) => subscribe(resolve))
}

console.log(`deepstream quickstart against ${url}`)

let ada = null
let bob = null
await step('ada logs in', async () => {
  ada = await connect('ada')
})
const presenceOfBob = once((resolve) => ada.presence.subscribe('bob', (user, online) => resolve(`${user} online=${online}`)))
// Subscriptions reach the server after the client's batching delay of 100 ms.
await pause(300)
await step('bob logs in', async () => {
  bob = await connect('bob')
})

await step('ada sees bob come online', () => presenceOfBob)
await step('ada lists who is online', async () => JSON.stringify(await ada.presence.getAll()))

const greeting = once((resolve) => bob.event.subscribe('quickstart/greeting', resolve))
await pause(300)
await step('ada emits an event that bob receives', () => {
  ada.event.emit('quickstart/greeting', { text: 'hello bob' })
  return greeting.then((data) => JSON.stringify(data))
})

bob.rpc.provide('quickstart/multiply', (data, response) => response.send(data.a * data.b))
await pause(300)
await step('ada calls an RPC that bob provides', async () => {
  const product = await ada.rpc.make('quickstart/multiply', { a: 6, b: 7 })
  if (product !== 42) {
    throw new Error(`expected 42, got ${JSON.stringify(product)}`)
  }
  return `6 * 7 = ${product}`
})

const providedName = once((resolve) => {
  bob.event.listen('quickstart/prices/.*', (subscription, response) => {
    response.accept()
    bob.event.emit(subscription, { price: 12.5 })
    resolve(subscription)
  })
})
await pause(300)
const price = once((resolve) => ada.event.subscribe('quickstart/prices/acme', resolve))
await step('bob\'s listener accepts ada\'s subscription', () => providedName)
await step('ada receives the price bob provides', () => price.then((data) => JSON.stringify(data)))

const presenceOfBobLeaving = once((resolve) => ada.presence.subscribe('bob', (user, online) => {
  if (!online) {
    resolve(`${user} online=${online}`)
  }
}))
await step('ada sees bob go offline', () => {
  bob.close()
  return presenceOfBobLeaving
})

ada.close()
clearTimeout(hardLimit)
console.log('all steps passed')
