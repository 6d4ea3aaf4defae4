// A bare WebSocket that speaks the binary protocol message by message, for
// tests that need to misbehave in ways the official client never does.

import { createRequire } from 'node:module'
import WebSocket from 'ws'
import { waitFor, withTimeout } from './clients.mjs'

const require = createRequire(import.meta.url)
const { getMessage } = require('@deepstream/protobuf/dist/src/message-builder')
const { TopicMessage } = require('@deepstream/protobuf/dist/src/protobuf-map')
const { Message } = require('@deepstream/protobuf/dist/generated/protobuf')
const protocol = require('@deepstream/protobuf/dist/types/all')

export const { TOPIC, CONNECTION_ACTION, AUTH_ACTION, PARSER_ACTION, EVENT_ACTION, RECORD_ACTION } = protocol

const OPEN_TIMEOUT_MS = 3000
const REPLY_TIMEOUT_MS = 3000

/** Encodes one protocol message as the payload of one binary frame. */
export function encode (message) {
  return getMessage(message, false)
}

/**
 * Decodes one frame into a plain message object, or returns null when the
 * frame is not one length-delimited envelope of a known topic.
 */
export function decode (bytes) {
  try {
    const envelope = Message.decodeDelimited(bytes)
    const topicMessage = TopicMessage[envelope.topic]
    if (!topicMessage) {
      return null
    }
    // Own properties are the fields present on the wire, because protobufjs keeps defaults on the prototype.
    return { topic: envelope.topic, ...topicMessage.decode(envelope.message) }
  } catch {
    return null
  }
}

/** A raw WebSocket connection that records decoded messages and its close. */
export class RawSocket {
  constructor (url) {
    this.url = url
    this.messages = []
    this.undecodable = []
    this.closed = null
    this.openedAt = null
    this.socket = null
  }

  /** Opens the socket. Rejects if the upgrade fails or takes over 3 s. */
  async open () {
    this.socket = new WebSocket(this.url)
    this.socket.on('message', (data) => this.onFrame(data))
    this.socket.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString(), at: Date.now() }
    })
    // An error after opening also closes the socket, so it is only recorded
    // here instead of being thrown as an unhandled error event.
    this.socket.on('error', (error) => {
      this.lastError = error
    })
    await withTimeout(new Promise((resolve, reject) => {
      this.socket.once('open', resolve)
      this.socket.once('error', reject)
    }), OPEN_TIMEOUT_MS, `WebSocket open on ${this.url}`)
    this.openedAt = Date.now()
    return this
  }

  onFrame (data) {
    const message = typeof data === 'string' ? null : decode(Buffer.from(data))
    if (message === null) {
      this.undecodable.push(data)
      return
    }
    this.messages.push({ ...message, receivedAt: Date.now() })
  }

  /** Sends one protocol message as one binary frame. */
  send (message) {
    this.socket.send(encode(message))
  }

  /** Sends arbitrary bytes as one binary frame. */
  sendBytes (bytes) {
    this.socket.send(bytes, { binary: true })
  }

  /** Sends a text frame. */
  sendText (text) {
    this.socket.send(text, { binary: false })
  }

  /** Sends the CONNECTION CHALLENGE the official client sends, and waits for ACCEPT. */
  async challenge () {
    this.send({
      topic: TOPIC.CONNECTION,
      action: CONNECTION_ACTION.CHALLENGE,
      url: this.url,
      protocolVersion: '0.1a',
      sdkVersion: '7.0.5',
      sdkType: 'javascript'
    })
    return this.waitForMessage(
      (message) => message.topic === TOPIC.CONNECTION && message.action === CONNECTION_ACTION.ACCEPT,
      REPLY_TIMEOUT_MS, 'CONNECTION ACCEPT'
    )
  }

  /** Sends an AUTH REQUEST with `authData`, and waits for AUTH_SUCCESSFUL. */
  async authenticate (authData = {}) {
    this.send({ topic: TOPIC.AUTH, action: AUTH_ACTION.REQUEST, parsedData: authData })
    return this.waitForMessage(
      (message) => message.topic === TOPIC.AUTH && message.action === AUTH_ACTION.AUTH_SUCCESSFUL,
      REPLY_TIMEOUT_MS, 'AUTH_SUCCESSFUL'
    )
  }

  /** Waits for the first recorded message that matches `predicate`. */
  async waitForMessage (predicate, ms, description) {
    try {
      return await waitFor(() => this.messages.find(predicate), ms, `${description} on a raw socket`)
    } catch (error) {
      error.message += ` (received: ${this.describeMessages()})`
      throw error
    }
  }

  /** Waits until the server closes the socket, and returns the close details. */
  waitForClose (ms) {
    return waitFor(() => this.closed, ms, 'the server to close a raw socket')
  }

  /** Whether the socket is still open. */
  isOpen () {
    return this.closed === null && this.socket.readyState === WebSocket.OPEN
  }

  /** Lists the received messages by topic and action names. */
  describeMessages () {
    if (this.messages.length === 0) {
      return 'no messages'
    }
    return this.messages.map(describeMessage).join(', ')
  }

  /** Closes the socket from this side, at once. */
  terminate () {
    if (this.socket) {
      this.socket.terminate()
    }
  }
}

/** Names a message by its topic and action, e.g. `CONNECTION/ACCEPT`. */
export function describeMessage (message) {
  const topic = TOPIC[message.topic] ?? message.topic
  const actions = protocol[`${topic}_ACTION`]
  const action = actions ? (actions[message.action] ?? message.action) : message.action
  return `${topic}/${action}`
}
