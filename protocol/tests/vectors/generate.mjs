// Writes deepstream-protobuf-1.0.json next to this script. The file contains frames
// encoded by the official @deepstream/protobuf package, which tests/vectors.rs decodes
// and re-encodes with our crate.
//
// Run from the repository root after `npm ci` in interop/:
//
//     node protocol/tests/vectors/generate.mjs
//
// With --check it writes nothing and exits with status 1 when the committed file differs
// from what the installed package encodes now.
//
// Each vector is { description, topic, message, frame_hex } plus these optional keys:
//   is_ack_argument      The second argument of getMessage(message, isAck) was true,
//                        so the frame carries isAck = true.
//   requestor_data_text  The JSON text that getMessage made of message.requestorData.
//   decode_only          The frame must decode to `message` but is not compared byte for
//                        byte. Either the message sets a property to its default value,
//                        which protobufjs writes and prost omits, or it has several map
//                        entries, which our encoder writes in no fixed order.
//   note                 The reason a vector is decode_only.

import { createRequire } from 'node:module';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const scriptDirectory = path.dirname(fileURLToPath(import.meta.url));
const repositoryRoot = path.resolve(scriptDirectory, '..', '..', '..');
const nodeModules = path.join(repositoryRoot, 'interop', 'node_modules');
// A trailing separator makes createRequire resolve from inside the directory itself.
const interopRequire = createRequire(nodeModules + path.sep);
const outputPath = path.join(scriptDirectory, 'deepstream-protobuf-1.0.json');

function parseArguments(args) {
  const unknown = args.filter((arg) => arg !== '--check');
  if (unknown.length > 0) {
    console.error(`unknown argument ${unknown[0]}. Usage: node generate.mjs [--check]`);
    process.exit(2);
  }
  return args.includes('--check');
}

function loadPackage() {
  let packageJson;
  try {
    packageJson = interopRequire('@deepstream/protobuf/package.json');
  } catch (error) {
    throw new Error(`@deepstream/protobuf not found under ${nodeModules}. Run "npm ci" in interop/ first. (${error.message})`);
  }
  if (!packageJson.version.startsWith('1.0.')) {
    throw new Error(`expected @deepstream/protobuf 1.0.x, found ${packageJson.version}`);
  }
  return {
    version: packageJson.version,
    builder: interopRequire('@deepstream/protobuf/dist/src/message-builder.js'),
    parser: interopRequire('@deepstream/protobuf/dist/src/message-parser.js'),
    generated: interopRequire('@deepstream/protobuf/dist/generated/protobuf.js'),
  };
}

const checkOnly = parseArguments(process.argv.slice(2));
const protobuf = loadPackage();
const { TOPIC, EVENT_ACTION, RPC_ACTION, PRESENCE_ACTION, RECORD_ACTION, CONNECTION_ACTION, AUTH_ACTION, PARSER_ACTION, CLUSTER_ACTION, LOCK_ACTION, STATE_ACTION, STATE_REGISTRY_TOPIC } = protobuf.generated;

// Fields that protobufjs writes only when non-empty, so an empty value is not a default
// that it writes explicitly.
const SKIPPED_WHEN_EMPTY = new Set(['names', 'fullState', 'versions']);
// Fields with explicit presence in our schema, which prost writes whenever they are set.
const EXPLICIT_PRESENCE = new Set(['version']);

const vectors = [];

/**
 * Encodes `message` with getMessage and records the vector.
 *
 * `options.ack` passes isAck = true to getMessage. `options.decodeOnly` gives the reason
 * why the vector is not compared byte for byte, and is required when the message sets a
 * property to its default value.
 */
function add(description, message, options = {}) {
  const recorded = structuredClone(message);
  const frame = protobuf.builder.getMessage(structuredClone(message), options.ack === true);
  pushVector(description, recorded, Buffer.from(frame), options);
}

/**
 * Encodes a STATE_REGISTRY message. getMessage has no entry for this topic, so the
 * generated StateMessage and Message (envelope) encoders are called directly, the way
 * getMessage calls them for the other topics.
 */
function addStateMessage(description, message, options = {}) {
  const recorded = structuredClone(message);
  const body = protobuf.generated.StateMessage.encode(structuredClone(message)).finish();
  const frame = protobuf.generated.Message.encodeDelimited({ topic: message.topic, message: body }).finish();
  pushVector(description, recorded, Buffer.from(frame), options);
}

function pushVector(description, message, frame, options) {
  if (vectors.some((vector) => vector.description === description)) {
    throw new Error(`duplicate vector description: ${description}`);
  }
  const defaults = defaultValuedProperties(message);
  const reason = options.decodeOnly;
  if (defaults.length > 0 && !reason) {
    throw new Error(`vector "${description}" sets ${defaults.join(', ')} to a default value. Mark it decodeOnly with a reason.`);
  }
  checkOfficialParserReadsFrame(description, message, frame);

  const vector = { description, topic: message.topic, message };
  if (options.ack === true) {
    vector.is_ack_argument = true;
  }
  if (message.requestorData !== undefined) {
    vector.requestor_data_text = JSON.stringify(message.requestorData);
  }
  if (reason) {
    vector.decode_only = true;
    vector.note = reason;
  }
  vector.frame_hex = frame.toString('hex');
  vectors.push(vector);
}

function defaultValuedProperties(message) {
  return Object.entries(message)
    .filter(([key]) => key !== 'topic' && !EXPLICIT_PRESENCE.has(key) && !SKIPPED_WHEN_EMPTY.has(key))
    .filter(([, value]) => value === 0 || value === false || value === '')
    .map(([key]) => key);
}

// The official parser must read the frame back with the same topic and action, so a
// vector never records bytes that deepstream itself would reject.
function checkOfficialParserReadsFrame(description, message, frame) {
  if (message.topic === TOPIC.STATE_REGISTRY) {
    return;
  }
  const [parsed] = protobuf.parser.parse(frame);
  // protobufjs leaves an unset action on the prototype, where the parser does not copy it.
  const parsedAction = parsed.action ?? 0;
  const expectedAction = message.action ?? 0;
  if (parsed.topic !== message.topic || parsedAction !== expectedAction) {
    throw new Error(`official parser read vector "${description}" as topic ${parsed.topic} action ${parsed.action}`);
  }
}

// ---------------------------------------------------------------- PARSER

add('parser unknown topic', { topic: TOPIC.PARSER, action: PARSER_ACTION.PARSER_UNKNOWN_TOPIC, originalTOPIC: 42 });
add('parser unknown action with original topic and action', {
  topic: TOPIC.PARSER, action: PARSER_ACTION.PARSER_UNKNOWN_ACTION, originalTOPIC: TOPIC.EVENT, originalAction: 77, data: '"unknown action 77 for topic EVENT"',
});
add('parser invalid message', { topic: TOPIC.PARSER, action: PARSER_ACTION.PARSER_INVALID_MESSAGE, data: '"message without a name"' });
add('parser message parse error', { topic: TOPIC.PARSER, action: PARSER_ACTION.PARSER_MESSAGE_PARSE_ERROR, data: '"invalid wire type 7"' });
add('parser maximum message size exceeded', {
  topic: TOPIC.PARSER, action: PARSER_ACTION.PARSER_MAXIMUM_MESSAGE_SIZE_EXCEEDED, originalTOPIC: TOPIC.RECORD, originalAction: RECORD_ACTION.RECORD_UPDATE, data: '"frame of 2097152 bytes exceeds 1048576"',
});
add('parser error', { topic: TOPIC.PARSER, action: PARSER_ACTION.PARSER_ERROR });
add('parser invalid meta params', { topic: TOPIC.PARSER, action: PARSER_ACTION.PARSER_INVALID_META_PARAMS, originalTOPIC: TOPIC.RPC, originalAction: RPC_ACTION.RPC_REQUEST });
add('parser error with non-ASCII description', { topic: TOPIC.PARSER, action: PARSER_ACTION.PARSER_MESSAGE_PARSE_ERROR, data: '"ungültige Nachricht – 無効"' });
add('parser error with explicit zero fields', {
  topic: TOPIC.PARSER, action: PARSER_ACTION.PARSER_MESSAGE_PARSE_ERROR, originalTOPIC: 0, originalAction: 0, data: '',
}, { decodeOnly: 'originalTOPIC, originalAction and data are set to their defaults' });

// ---------------------------------------------------------------- CONNECTION

add('connection challenge from the JavaScript client', {
  topic: TOPIC.CONNECTION, action: CONNECTION_ACTION.CONNECTION_CHALLENGE, url: 'ws://127.0.0.1:6020/deepstream', protocolVersion: '0.1a', sdkVersion: '7.0.5', sdkType: 'javascript',
});
add('connection challenge with url only', { topic: TOPIC.CONNECTION, action: CONNECTION_ACTION.CONNECTION_CHALLENGE, url: 'ws://127.0.0.1:6020/deepstream' });
add('connection accept', { topic: TOPIC.CONNECTION, action: CONNECTION_ACTION.CONNECTION_ACCEPT });
add('connection ping', { topic: TOPIC.CONNECTION, action: CONNECTION_ACTION.CONNECTION_PING });
add('connection pong', { topic: TOPIC.CONNECTION, action: CONNECTION_ACTION.CONNECTION_PONG });
add('connection reject', { topic: TOPIC.CONNECTION, action: CONNECTION_ACTION.CONNECTION_REJECT });
add('connection redirect', { topic: TOPIC.CONNECTION, action: CONNECTION_ACTION.CONNECTION_REDIRECT, url: 'ws://127.0.0.1:6021/deepstream' });
add('connection closing', { topic: TOPIC.CONNECTION, action: CONNECTION_ACTION.CONNECTION_CLOSING });
add('connection closed', { topic: TOPIC.CONNECTION, action: CONNECTION_ACTION.CONNECTION_CLOSED });
add('connection authentication timeout', { topic: TOPIC.CONNECTION, action: CONNECTION_ACTION.CONNECTION_AUTHENTICATION_TIMEOUT });
add('connection invalid message', { topic: TOPIC.CONNECTION, action: CONNECTION_ACTION.CONNECTION_INVALID_MESSAGE });
add('connection error with data', { topic: TOPIC.CONNECTION, action: CONNECTION_ACTION.CONNECTION_ERROR, isError: true, data: '"socket closed unexpectedly"' });
add('connection accept encoded as ack', { topic: TOPIC.CONNECTION, action: CONNECTION_ACTION.CONNECTION_ACCEPT }, { ack: true });
add('connection ping with explicit false flags', {
  topic: TOPIC.CONNECTION, action: CONNECTION_ACTION.CONNECTION_PING, isAck: false, isError: false,
}, { decodeOnly: 'isAck and isError are set to false' });
add('connection challenge with empty sdk fields', {
  topic: TOPIC.CONNECTION, action: CONNECTION_ACTION.CONNECTION_CHALLENGE, url: 'ws://127.0.0.1:6020/deepstream', protocolVersion: '0.1a', sdkVersion: '', sdkType: '',
}, { decodeOnly: 'sdkVersion and sdkType are set to empty strings' });

// ---------------------------------------------------------------- AUTH

add('auth request with credentials', { topic: TOPIC.AUTH, action: AUTH_ACTION.AUTH_REQUEST, data: '{"username":"ada","password":"s3cret"}' });
add('auth request with non-ASCII credentials', { topic: TOPIC.AUTH, action: AUTH_ACTION.AUTH_REQUEST, data: '{"username":"Zoë","password":"пароль🔑"}' });
add('auth successful with client data', { topic: TOPIC.AUTH, action: AUTH_ACTION.AUTH_AUTH_SUCCESSFUL, data: '{"role":"admin"}' });
add('auth successful without client data', { topic: TOPIC.AUTH, action: AUTH_ACTION.AUTH_AUTH_SUCCESSFUL });
add('auth unsuccessful with client data', { topic: TOPIC.AUTH, action: AUTH_ACTION.AUTH_AUTH_UNSUCCESSFUL, data: '{"reason":"account locked"}' });
add('auth unsuccessful without data', { topic: TOPIC.AUTH, action: AUTH_ACTION.AUTH_AUTH_UNSUCCESSFUL });
add('auth too many attempts', { topic: TOPIC.AUTH, action: AUTH_ACTION.AUTH_TOO_MANY_AUTH_ATTEMPTS });
add('auth invalid message', { topic: TOPIC.AUTH, action: AUTH_ACTION.AUTH_INVALID_MESSAGE });
add('auth invalid message data', { topic: TOPIC.AUTH, action: AUTH_ACTION.AUTH_INVALID_MESSAGE_DATA });
add('auth error flagged', { topic: TOPIC.AUTH, action: AUTH_ACTION.AUTH_ERROR, isError: true });
add('auth request encoded as ack', { topic: TOPIC.AUTH, action: AUTH_ACTION.AUTH_REQUEST, data: '{}' }, { ack: true });
add('auth request with explicit false flags', {
  topic: TOPIC.AUTH, action: AUTH_ACTION.AUTH_REQUEST, data: '{"username":"ada"}', isError: false, isAck: false,
}, { decodeOnly: 'isError and isAck are set to false' });

// ---------------------------------------------------------------- EVENT

add('event subscribe with names and correlation id', {
  topic: TOPIC.EVENT, action: EVENT_ACTION.EVENT_SUBSCRIBE, names: ['chat/lobby', 'chat/ünïcödé'], correlationId: '0',
});
add('event subscribe ack', { topic: TOPIC.EVENT, action: EVENT_ACTION.EVENT_SUBSCRIBE, correlationId: '0' }, { ack: true });
add('event subscribe ack with empty names', { topic: TOPIC.EVENT, action: EVENT_ACTION.EVENT_SUBSCRIBE, correlationId: '1', names: [] }, { ack: true });
add('event unsubscribe with names and correlation id', { topic: TOPIC.EVENT, action: EVENT_ACTION.EVENT_UNSUBSCRIBE, names: ['chat/lobby'], correlationId: '2' });
add('event unsubscribe ack', { topic: TOPIC.EVENT, action: EVENT_ACTION.EVENT_UNSUBSCRIBE, correlationId: '2' }, { ack: true });
add('event emit with string data', { topic: TOPIC.EVENT, action: EVENT_ACTION.EVENT_EMIT, name: 'chat/lobby', data: '"hello"' });
add('event emit with non-ASCII data', {
  topic: TOPIC.EVENT, action: EVENT_ACTION.EVENT_EMIT, name: 'chat/lobby', data: '{"text":"héllo wörld – 日本語 🎉","from":"Zoë"}',
});
add('event emit without data', { topic: TOPIC.EVENT, action: EVENT_ACTION.EVENT_EMIT, name: 'ping/empty' });
add('event emit with 300 byte data', { topic: TOPIC.EVENT, action: EVENT_ACTION.EVENT_EMIT, name: 'bulk/medium', data: JSON.stringify('x'.repeat(298)) });
add('event emit with data over 16 KiB', {
  topic: TOPIC.EVENT, action: EVENT_ACTION.EVENT_EMIT, name: 'bulk/large', data: JSON.stringify({ blob: 'abcdefghij'.repeat(1640) }),
});
add('event listen', { topic: TOPIC.EVENT, action: EVENT_ACTION.EVENT_LISTEN, name: 'chat/.*' });
add('event listen ack', { topic: TOPIC.EVENT, action: EVENT_ACTION.EVENT_LISTEN, name: 'chat/.*' }, { ack: true });
add('event unlisten', { topic: TOPIC.EVENT, action: EVENT_ACTION.EVENT_UNLISTEN, name: 'chat/.*' });
add('event subscription for pattern found', { topic: TOPIC.EVENT, action: EVENT_ACTION.EVENT_SUBSCRIPTION_FOR_PATTERN_FOUND, name: 'chat/.*', subscription: 'chat/lobby' });
add('event listen accept', { topic: TOPIC.EVENT, action: EVENT_ACTION.EVENT_LISTEN_ACCEPT, name: 'chat/.*', subscription: 'chat/lobby' });
add('event listen reject', { topic: TOPIC.EVENT, action: EVENT_ACTION.EVENT_LISTEN_REJECT, name: 'chat/.*', subscription: 'chat/lobby' });
add('event subscription for pattern removed', { topic: TOPIC.EVENT, action: EVENT_ACTION.EVENT_SUBSCRIPTION_FOR_PATTERN_REMOVED, name: 'chat/.*', subscription: 'chat/lobby' });
add('event listen response timeout', { topic: TOPIC.EVENT, action: EVENT_ACTION.EVENT_LISTEN_RESPONSE_TIMEOUT, subscription: 'chat/lobby' });
add('event invalid listen regex', { topic: TOPIC.EVENT, action: EVENT_ACTION.EVENT_INVALID_LISTEN_REGEX, name: 'chat/(unclosed' });
add('event multiple subscriptions', { topic: TOPIC.EVENT, action: EVENT_ACTION.EVENT_MULTIPLE_SUBSCRIPTIONS, originalAction: EVENT_ACTION.EVENT_SUBSCRIBE, name: 'chat/lobby' });
add('event not subscribed', { topic: TOPIC.EVENT, action: EVENT_ACTION.EVENT_NOT_SUBSCRIBED, originalAction: EVENT_ACTION.EVENT_UNSUBSCRIBE, name: 'chat/lobby' });
add('event message denied', { topic: TOPIC.EVENT, action: EVENT_ACTION.EVENT_MESSAGE_DENIED, originalAction: EVENT_ACTION.EVENT_EMIT, name: 'admin/reset', isError: true });
add('event message permission error with correlation id', {
  topic: TOPIC.EVENT, action: EVENT_ACTION.EVENT_MESSAGE_PERMISSION_ERROR, originalAction: EVENT_ACTION.EVENT_SUBSCRIBE, name: 'admin/reset', correlationId: '4', isError: true,
});
add('event error with original topic', { topic: TOPIC.EVENT, action: EVENT_ACTION.EVENT_ERROR, originalTOPIC: TOPIC.EVENT, originalAction: EVENT_ACTION.EVENT_EMIT, isError: true });
add('event emit with explicit defaults', {
  topic: TOPIC.EVENT, action: EVENT_ACTION.EVENT_EMIT, name: 'chat/lobby', data: '"hi"', correlationId: '', isAck: false, isError: false, subscription: '',
}, { decodeOnly: 'correlationId, isAck, isError and subscription are set to their defaults' });

// ---------------------------------------------------------------- RECORD

add('record subscribe create and read', { topic: TOPIC.RECORD, action: RECORD_ACTION.RECORD_SUBSCRIBECREATEANDREAD, names: ['user/ada', 'user/zoë'], correlationId: '3' });
add('record subscribe create and read ack', { topic: TOPIC.RECORD, action: RECORD_ACTION.RECORD_SUBSCRIBECREATEANDREAD, names: ['user/ada', 'user/zoë'], correlationId: '3' }, { ack: true });
add('record read response with positive version', {
  topic: TOPIC.RECORD, action: RECORD_ACTION.RECORD_READ_RESPONSE, name: 'user/ada', version: 4, data: '{"name":"Ada","city":"Zürich"}',
});
add('record read response with version zero', { topic: TOPIC.RECORD, action: RECORD_ACTION.RECORD_READ_RESPONSE, name: 'user/new', version: 0, data: '{}' });
add('record update with write ack', {
  topic: TOPIC.RECORD, action: RECORD_ACTION.RECORD_UPDATE, name: 'user/ada', version: 5, data: '{"name":"Ada","city":"Köln"}', isWriteAck: true, correlationId: 'w1',
});
add('record patch with path', { topic: TOPIC.RECORD, action: RECORD_ACTION.RECORD_PATCH, name: 'user/ada', version: 6, path: 'address.city', data: '"Köln"' });
add('record erase with array path', { topic: TOPIC.RECORD, action: RECORD_ACTION.RECORD_ERASE, name: 'user/ada', version: 7, path: 'pets[2]' });
add('record create and update with version minus one', { topic: TOPIC.RECORD, action: RECORD_ACTION.RECORD_CREATEANDUPDATE, name: 'config/main', version: -1, data: '{"debug":true}' });
add('record create and patch', { topic: TOPIC.RECORD, action: RECORD_ACTION.RECORD_CREATEANDPATCH, name: 'config/main', version: -1, path: 'debug', data: 'false' });
add('record write acknowledgement', { topic: TOPIC.RECORD, action: RECORD_ACTION.RECORD_WRITE_ACKNOWLEDGEMENT, name: 'user/ada', correlationId: 'w1', isWriteAck: true });
add('record head', { topic: TOPIC.RECORD, action: RECORD_ACTION.RECORD_HEAD, name: 'user/ada' });
add('record head response', { topic: TOPIC.RECORD, action: RECORD_ACTION.RECORD_HEAD_RESPONSE, name: 'user/ada', version: 3 });
add('record head bulk', { topic: TOPIC.RECORD, action: RECORD_ACTION.RECORD_HEAD_BULK, names: ['user/ada', 'user/zoë'], correlationId: '5' });
add('record head response bulk with one version', { topic: TOPIC.RECORD, action: RECORD_ACTION.RECORD_HEAD_RESPONSE_BULK, versions: { 'user/ada': 3 }, correlationId: '5' });
add('record head response bulk with several versions', {
  topic: TOPIC.RECORD, action: RECORD_ACTION.RECORD_HEAD_RESPONSE_BULK, versions: { 'user/ada': 3, 'user/zoë': 12, 'user/bob': 1 }, correlationId: '6',
}, { decodeOnly: 'our versions map is a HashMap, so the order of its entries on re-encoding is not fixed' });
add('record head response bulk with version zero entry', {
  topic: TOPIC.RECORD, action: RECORD_ACTION.RECORD_HEAD_RESPONSE_BULK, versions: { 'user/new': 0 }, correlationId: '7',
}, { decodeOnly: 'protobufjs writes the zero value of a map entry and prost omits it' });
add('record delete', { topic: TOPIC.RECORD, action: RECORD_ACTION.RECORD_DELETE, name: 'user/ada', correlationId: 'd1' });
add('record delete success', { topic: TOPIC.RECORD, action: RECORD_ACTION.RECORD_DELETE_SUCCESS, name: 'user/ada', correlationId: 'd1' });
add('record deleted', { topic: TOPIC.RECORD, action: RECORD_ACTION.RECORD_DELETED, name: 'user/ada' });
add('record delete bulk', { topic: TOPIC.RECORD, action: RECORD_ACTION.RECORD_DELETE_BULK, names: ['tmp/1', 'tmp/2'], correlationId: 'd2' });
add('record notify', { topic: TOPIC.RECORD, action: RECORD_ACTION.RECORD_NOTIFY, names: ['user/ada', 'user/zoë'], correlationId: 'n1' });
add('record version exists', {
  topic: TOPIC.RECORD, action: RECORD_ACTION.RECORD_VERSION_EXISTS, originalAction: RECORD_ACTION.RECORD_UPDATE, name: 'user/ada', version: 9, data: '{"name":"Ada"}', isError: true,
});
add('record listen', { topic: TOPIC.RECORD, action: RECORD_ACTION.RECORD_LISTEN, name: 'user/.*' });
add('record subscription for pattern found', { topic: TOPIC.RECORD, action: RECORD_ACTION.RECORD_SUBSCRIPTION_FOR_PATTERN_FOUND, name: 'user/.*', subscription: 'user/ada' });
add('record listen accept with pattern field', { topic: TOPIC.RECORD, action: RECORD_ACTION.RECORD_LISTEN_ACCEPT, name: 'user/.*', pattern: 'user/.*', subscription: 'user/ada' });
add('record subscription has provider', { topic: TOPIC.RECORD, action: RECORD_ACTION.RECORD_SUBSCRIPTION_HAS_PROVIDER, name: 'user/ada' });
add('record message denied', {
  topic: TOPIC.RECORD, action: RECORD_ACTION.RECORD_MESSAGE_DENIED, originalAction: RECORD_ACTION.RECORD_SUBSCRIBE, name: 'secret/1', correlationId: '8', isError: true, isWriteAck: true,
});
add('record update with explicit defaults', {
  topic: TOPIC.RECORD, action: RECORD_ACTION.RECORD_UPDATE, name: 'user/ada', version: 1, data: '{}', isWriteAck: false, path: '', correlationId: '',
}, { decodeOnly: 'isWriteAck, path and correlationId are set to their defaults' });

// ---------------------------------------------------------------- RPC

add('rpc provide with names and correlation id', { topic: TOPIC.RPC, action: RPC_ACTION.RPC_PROVIDE, names: ['math/add', 'greet/zoë'], correlationId: '0' });
add('rpc provide ack', { topic: TOPIC.RPC, action: RPC_ACTION.RPC_PROVIDE, correlationId: '0' }, { ack: true });
add('rpc unprovide', { topic: TOPIC.RPC, action: RPC_ACTION.RPC_UNPROVIDE, names: ['math/add'], correlationId: '1' });
add('rpc unprovide ack', { topic: TOPIC.RPC, action: RPC_ACTION.RPC_UNPROVIDE, correlationId: '1' }, { ack: true });
add('rpc request from client', { topic: TOPIC.RPC, action: RPC_ACTION.RPC_REQUEST, name: 'math/add', correlationId: 'k3x9q', data: '[1,2]' });
add('rpc request without data', { topic: TOPIC.RPC, action: RPC_ACTION.RPC_REQUEST, name: 'clock/now', correlationId: 'k3xa0' });
add('rpc request forwarded with requestor name and data', {
  topic: TOPIC.RPC, action: RPC_ACTION.RPC_REQUEST, name: 'math/add', correlationId: 'k3x9q', data: '[1,2]', requestorName: 'ada', requestorData: { role: 'admin', city: 'Zürich' },
});
add('rpc request forwarded with requestor name only', { topic: TOPIC.RPC, action: RPC_ACTION.RPC_REQUEST, name: 'math/add', correlationId: 'k3x9r', data: '[3,4]', requestorName: 'Zoë' });
add('rpc accept', { topic: TOPIC.RPC, action: RPC_ACTION.RPC_ACCEPT, name: 'math/add', correlationId: 'k3x9q' });
add('rpc response', { topic: TOPIC.RPC, action: RPC_ACTION.RPC_RESPONSE, name: 'math/add', correlationId: 'k3x9q', data: '3' });
add('rpc response with non-ASCII data', { topic: TOPIC.RPC, action: RPC_ACTION.RPC_RESPONSE, name: 'greet/zoë', correlationId: 'k3xb1', data: '"Grüß dich, Zoë! 👋"' });
add('rpc request error', { topic: TOPIC.RPC, action: RPC_ACTION.RPC_REQUEST_ERROR, name: 'math/div', correlationId: 'k3xc2', data: '"division by zero"' });
add('rpc reject', { topic: TOPIC.RPC, action: RPC_ACTION.RPC_REJECT, name: 'math/add', correlationId: 'k3x9q' });
add('rpc no provider', { topic: TOPIC.RPC, action: RPC_ACTION.RPC_NO_RPC_PROVIDER, name: 'math/sqrt', correlationId: 'k3xd3' });
add('rpc accept timeout', { topic: TOPIC.RPC, action: RPC_ACTION.RPC_ACCEPT_TIMEOUT, name: 'math/add', correlationId: 'k3x9q' });
add('rpc response timeout', { topic: TOPIC.RPC, action: RPC_ACTION.RPC_RESPONSE_TIMEOUT, name: 'math/add', correlationId: 'k3x9q' });
add('rpc multiple accept', { topic: TOPIC.RPC, action: RPC_ACTION.RPC_MULTIPLE_ACCEPT, name: 'math/add', correlationId: 'k3x9q' });
add('rpc invalid correlation id', {
  topic: TOPIC.RPC, action: RPC_ACTION.RPC_INVALID_RPC_CORRELATION_ID, originalAction: RPC_ACTION.RPC_RESPONSE, name: 'math/add', correlationId: 'stale', isError: true,
});
add('rpc multiple providers', { topic: TOPIC.RPC, action: RPC_ACTION.RPC_MULTIPLE_PROVIDERS, originalAction: RPC_ACTION.RPC_PROVIDE, name: 'math/add' });
add('rpc not provided', { topic: TOPIC.RPC, action: RPC_ACTION.RPC_NOT_PROVIDED, originalAction: RPC_ACTION.RPC_UNPROVIDE, name: 'math/add' });
add('rpc message denied', { topic: TOPIC.RPC, action: RPC_ACTION.RPC_MESSAGE_DENIED, originalAction: RPC_ACTION.RPC_REQUEST, name: 'admin/wipe', correlationId: 'k3xe4', isError: true });
add('rpc request with explicit defaults', {
  topic: TOPIC.RPC, action: RPC_ACTION.RPC_REQUEST, name: 'math/add', correlationId: 'k3x9s', data: '[5,6]', requestorName: '', isError: false,
}, { decodeOnly: 'requestorName and isError are set to their defaults' });

// ---------------------------------------------------------------- PRESENCE

add('presence subscribe all', { topic: TOPIC.PRESENCE, action: PRESENCE_ACTION.PRESENCE_SUBSCRIBE_ALL });
add('presence subscribe all ack', { topic: TOPIC.PRESENCE, action: PRESENCE_ACTION.PRESENCE_SUBSCRIBE_ALL }, { ack: true });
add('presence unsubscribe all', { topic: TOPIC.PRESENCE, action: PRESENCE_ACTION.PRESENCE_UNSUBSCRIBE_ALL });
add('presence unsubscribe all ack', { topic: TOPIC.PRESENCE, action: PRESENCE_ACTION.PRESENCE_UNSUBSCRIBE_ALL }, { ack: true });
add('presence subscribe named users', { topic: TOPIC.PRESENCE, action: PRESENCE_ACTION.PRESENCE_SUBSCRIBE, names: ['ada', 'Zoë'], correlationId: '0' });
add('presence subscribe ack', { topic: TOPIC.PRESENCE, action: PRESENCE_ACTION.PRESENCE_SUBSCRIBE, correlationId: '0' }, { ack: true });
add('presence unsubscribe named users', { topic: TOPIC.PRESENCE, action: PRESENCE_ACTION.PRESENCE_UNSUBSCRIBE, names: ['ada'], correlationId: '1' });
add('presence join', { topic: TOPIC.PRESENCE, action: PRESENCE_ACTION.PRESENCE_PRESENCE_JOIN, name: 'ada' });
add('presence join all', { topic: TOPIC.PRESENCE, action: PRESENCE_ACTION.PRESENCE_PRESENCE_JOIN_ALL, name: 'Zoë' });
add('presence leave', { topic: TOPIC.PRESENCE, action: PRESENCE_ACTION.PRESENCE_PRESENCE_LEAVE, name: 'ada' });
add('presence leave all', { topic: TOPIC.PRESENCE, action: PRESENCE_ACTION.PRESENCE_PRESENCE_LEAVE_ALL, name: 'Zoë' });
add('presence query all', { topic: TOPIC.PRESENCE, action: PRESENCE_ACTION.PRESENCE_QUERY_ALL });
add('presence query all response', { topic: TOPIC.PRESENCE, action: PRESENCE_ACTION.PRESENCE_QUERY_ALL_RESPONSE, names: ['ada', 'Zoë'] });
add('presence query all response with nobody online', { topic: TOPIC.PRESENCE, action: PRESENCE_ACTION.PRESENCE_QUERY_ALL_RESPONSE, names: [] });
add('presence query named users', { topic: TOPIC.PRESENCE, action: PRESENCE_ACTION.PRESENCE_QUERY, names: ['ada', 'Zoë', 'bob'], correlationId: '2' });
add('presence query response', { topic: TOPIC.PRESENCE, action: PRESENCE_ACTION.PRESENCE_QUERY_RESPONSE, correlationId: '2', data: '{"ada":true,"Zoë":true,"bob":false}' });
add('presence message denied', {
  topic: TOPIC.PRESENCE, action: PRESENCE_ACTION.PRESENCE_MESSAGE_DENIED, originalAction: PRESENCE_ACTION.PRESENCE_QUERY, name: 'bob', correlationId: '2', isError: true,
});
add('presence invalid users with original topic', {
  topic: TOPIC.PRESENCE, action: PRESENCE_ACTION.PRESENCE_INVALID_PRESENCE_USERS, originalTOPIC: TOPIC.PRESENCE, originalAction: PRESENCE_ACTION.PRESENCE_SUBSCRIBE, isError: true,
});
add('presence multiple subscriptions', { topic: TOPIC.PRESENCE, action: PRESENCE_ACTION.PRESENCE_MULTIPLE_SUBSCRIPTIONS, originalAction: PRESENCE_ACTION.PRESENCE_SUBSCRIBE, name: 'ada' });
add('presence not subscribed', { topic: TOPIC.PRESENCE, action: PRESENCE_ACTION.PRESENCE_NOT_SUBSCRIBED, originalAction: PRESENCE_ACTION.PRESENCE_UNSUBSCRIBE, name: 'ada' });
add('presence query all with explicit defaults', {
  topic: TOPIC.PRESENCE, action: PRESENCE_ACTION.PRESENCE_QUERY_ALL, correlationId: '', name: '', isAck: false,
}, { decodeOnly: 'correlationId, name and isAck are set to their defaults' });

// ---------------------------------------------------------------- MONITORING, CLUSTER, LOCK, STATE_REGISTRY

add('monitoring message without action', { topic: TOPIC.MONITORING, correlationId: 'm1', data: '{"connections":3}' });
add('monitoring message with explicit unknown action', { topic: TOPIC.MONITORING, action: 0, isAck: true }, { decodeOnly: 'action is set to 0' });
add('cluster status', { topic: TOPIC.CLUSTER, action: CLUSTER_ACTION.CLUSTER_STATUS, leaderScore: 12, role: 'leader' });
add('cluster remove', { topic: TOPIC.CLUSTER, action: CLUSTER_ACTION.CLUSTER_REMOVE, data: '"node-2"', isAck: true });
add('cluster status with negative leader score', { topic: TOPIC.CLUSTER, action: CLUSTER_ACTION.CLUSTER_STATUS, leaderScore: -3, role: 'follower', isError: true });
add('lock request', { topic: TOPIC.LOCK, action: LOCK_ACTION.LOCK_REQUEST });
add('lock response locked', { topic: TOPIC.LOCK, action: LOCK_ACTION.LOCK_RESPONSE, locked: true });
add('lock release', { topic: TOPIC.LOCK, action: LOCK_ACTION.LOCK_RELEASE });
add('lock response not locked', { topic: TOPIC.LOCK, action: LOCK_ACTION.LOCK_RESPONSE, locked: false }, { decodeOnly: 'locked is set to false' });
addStateMessage('state registry full state', {
  topic: TOPIC.STATE_REGISTRY, action: STATE_ACTION.STATE_FULL_STATE, fullState: ['ada', 'zoë'], serverName: 'node-1', registryTOPIC: STATE_REGISTRY_TOPIC.STATE_REGISTRY_ONLINE_USERS, checksum: 123456,
});
addStateMessage('state registry checksum negative', {
  topic: TOPIC.STATE_REGISTRY, action: STATE_ACTION.STATE_CHECKSUM, serverName: 'node-2', registryTOPIC: STATE_REGISTRY_TOPIC.STATE_REGISTRY_EVENT_SUBSCRIPTIONS, checksum: -5,
});
addStateMessage('state registry add with data', {
  topic: TOPIC.STATE_REGISTRY, action: STATE_ACTION.STATE_ADD, data: '"chat/lobby"', serverName: 'node-1', registryTOPIC: STATE_REGISTRY_TOPIC.STATE_REGISTRY_EVENT_SUBSCRIPTIONS, isError: true,
});

const output = `${JSON.stringify(vectors, null, 2)}\n`;
const relativeOutputPath = path.relative(process.cwd(), outputPath);
if (checkOnly) {
  checkCommittedFile(output);
} else {
  writeFileSync(outputPath, output);
  console.log(`wrote ${vectors.length} vectors from @deepstream/protobuf ${protobuf.version} to ${relativeOutputPath}`);
}

function checkCommittedFile(expected) {
  if (!existsSync(outputPath)) {
    console.error(`${relativeOutputPath} is missing. Run "node protocol/tests/vectors/generate.mjs" to create it.`);
    process.exit(1);
  }
  const committed = readFileSync(outputPath, 'utf8');
  if (committed === expected) {
    console.log(`${relativeOutputPath} matches @deepstream/protobuf ${protobuf.version} (${vectors.length} vectors)`);
    return;
  }
  const stale = describeFirstDifference(committed);
  console.error(`${relativeOutputPath} differs from what @deepstream/protobuf ${protobuf.version} encodes (${stale}). Run "node protocol/tests/vectors/generate.mjs" and review the diff.`);
  process.exit(1);
}

function describeFirstDifference(committedText) {
  let committed;
  try {
    committed = JSON.parse(committedText);
  } catch (error) {
    return `the file is not valid JSON: ${error.message}`;
  }
  if (!Array.isArray(committed)) {
    return 'the file does not contain an array';
  }
  const index = vectors.findIndex((vector, i) => JSON.stringify(vector) !== JSON.stringify(committed[i]));
  if (index >= 0) {
    return `first difference at vector ${index}, "${vectors[index].description}"`;
  }
  if (committed.length !== vectors.length) {
    return `the file has ${committed.length} vectors instead of ${vectors.length}`;
  }
  return 'only the formatting differs';
}
