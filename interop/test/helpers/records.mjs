// Bounded waits and observers for records, lists and the record messages a
// client exchanged with the server.

import { isDeepStrictEqual } from 'node:util'
import { C, waitFor, withTimeout } from './clients.mjs'

export const READY_TIMEOUT_MS = 3000
export const UPDATE_TIMEOUT_MS = 3000
// Time in which a message that should not come would have arrived.
export const QUIET_MS = 300

/** Client options for record tests: a discarded record is unsubscribed on the server after 20 ms, not 5 s. */
export const RECORD_CLIENT_OPTIONS = { recordDiscardTimeout: 20 }

/** Gets the record `name` on `client` and waits until it is ready. */
export async function readyRecord (client, name) {
  const record = client.record.getRecord(name)
  await withTimeout(record.whenReady(), READY_TIMEOUT_MS, `record '${name}' to be ready`)
  return record
}

/** Gets the list `name` on `client` and waits until it is ready. */
export async function readyList (client, name) {
  const list = client.record.getList(name)
  await withTimeout(list.whenReady(), READY_TIMEOUT_MS, `list '${name}' to be ready`)
  return list
}

/**
 * Subscribes to `record` (or to one `path` of it) and returns the array of
 * `{ data, version }` that each callback saw, in order. The array's
 * `callback` property is the subscribed function, for `unsubscribe`.
 */
export function recordChanges (record, path) {
  const changes = []
  const callback = (data) => changes.push({ data, version: record.version })
  if (path === undefined) {
    record.subscribe(callback)
  } else {
    record.subscribe(path, callback)
  }
  // Not enumerable, so that assertions compare only the recorded changes.
  Object.defineProperty(changes, 'callback', { value: callback })
  return changes
}

/** Waits until `changes` (from `recordChanges`) has at least `count` entries. */
export async function waitForChanges (changes, count, description) {
  await waitFor(() => changes.length >= count, UPDATE_TIMEOUT_MS,
    `${description} (${changes.length} of ${count} changes so far: ${JSON.stringify(changes)})`)
  return changes
}

/** Waits until `record.get()` deep-equals `expected`. */
export async function waitForData (record, expected, description = `record '${record.name}' data`) {
  try {
    await waitFor(() => isDeepStrictEqual(record.get(), expected), UPDATE_TIMEOUT_MS,
      `${description} to be ${JSON.stringify(expected)}`)
  } catch (error) {
    error.message += ` (last seen: ${JSON.stringify(record.get())} at version ${record.version})`
    throw error
  }
}

/** Lists the RECORD messages with `action` about `name` that `client` received, in order. */
export function receivedRecordMessages (client, action, name) {
  return client.tap.received.filter((message) =>
    message.topic === C.TOPIC.RECORD && message.action === action &&
    (name === undefined || message.name === name))
}

/** Lists the RECORD messages with `action` that `client` sent, in order. */
export function sentRecordMessages (client, action) {
  return client.tap.sent.filter((message) => message.topic === C.TOPIC.RECORD && message.action === action)
}

/** Describes recorded record messages as `ACTION name vN` for assertion messages. */
export function describeRecordMessages (messages) {
  return messages.map((message) =>
    `${C.RECORD_ACTION[message.action]} ${message.name ?? ''} v${message.version ?? ''}`.trim()).join(', ')
}
