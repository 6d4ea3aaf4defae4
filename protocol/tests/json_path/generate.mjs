// Writes cases.json next to this script: what the official @deepstream/client 7.x
// computes for record paths, which tests/json_path.rs compares with our JsonPath.
//
// Run from the repository root after `npm ci` in interop/:
//
//     node protocol/tests/json_path/generate.mjs
//
// With --check it writes nothing and exits with status 1 when the committed file differs
// from what the installed client computes now, naming the first case that differs.
//
// Each case runs the client's setValue(root, path, value) for a set, or
// setValue(root, path, undefined) for an erase, which is how the client applies PATCH and
// ERASE messages. The written case contains:
//   name, root, path, operation ("set" or "erase"), value (sets only)
//   client_result     JSON.stringify of what setValue returned, when it returned
//   client_error      "Name: message" of what setValue threw, when it threw
//   client_changed_prototype
//                     true when setValue added or changed a property of
//                     Object.prototype or Array.prototype (the script restores them)
//   expected          "result": our set or erase must give exactly client_result.
//                     "error": the client throws or computes garbage, and ours must
//                     return the PathError variant named by `rejection`.
//   rejection, reason Only for "error": the Rust variant and why the case is rejected.
//
// The script fails when, in a case not marked as rejected, the client throws, changes a
// prototype, or returns a document without the value at the path (or with a value still
// there after an erase). So a new case cannot be misfiled silently.

import { createRequire } from 'node:module';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const scriptDirectory = path.dirname(fileURLToPath(import.meta.url));
const repositoryRoot = path.resolve(scriptDirectory, '..', '..', '..');
const nodeModules = path.join(repositoryRoot, 'interop', 'node_modules');
// A trailing separator makes createRequire resolve from inside the directory itself.
const interopRequire = createRequire(nodeModules + path.sep);
const outputPath = path.join(scriptDirectory, 'cases.json');

const REJECTIONS = new Set([
  'InvalidIndex',
  'IndexTooLarge',
  'TooManyTokens',
  'EmptyPath',
  'RootNotContainer',
  'KeyOnArray',
  'PrototypeKey',
]);

function parseArguments(args) {
  const unknown = args.filter((arg) => arg !== '--check');
  if (unknown.length > 0) {
    console.error(`unknown argument ${unknown[0]}. Usage: node generate.mjs [--check]`);
    process.exit(2);
  }
  return args.includes('--check');
}

function loadClient() {
  let packageJson;
  try {
    packageJson = interopRequire('@deepstream/client/package.json');
  } catch (error) {
    throw new Error(`@deepstream/client not found under ${nodeModules}. Run "npm ci" in interop/ first. (${error.message})`);
  }
  if (!packageJson.version.startsWith('7.')) {
    throw new Error(`expected @deepstream/client 7.x, found ${packageJson.version}`);
  }
  return {
    version: packageJson.version,
    jsonPath: interopRequire('@deepstream/client/dist/src/record/json-path.js'),
  };
}

// Builders for the table. `reject(kind, reason)` marks a case where the client throws or
// computes garbage. Our implementation must return that PathError variant instead.
const set = (name, root, pathText, value, rejection) => ({ name, root, path: pathText, operation: 'set', value, rejection });
const erase = (name, root, pathText, rejection) => ({ name, root, path: pathText, operation: 'erase', rejection });
const reject = (kind, reason) => ({ kind, reason });

// JSON.parse keeps "__proto__" as an own key, which an object literal would not.
const ownProtoKey = () => JSON.parse('{"__proto__": 1, "b": 2}');
const deepPath = Array(129).fill('a').join('.');

const cases = [
  // The client's own examples.
  set('simple key', {}, 'firstname', 'Wolfram'),
  set('nested objects', {}, 'address.street', 'someStreet'),
  set('numeric key after dot', {}, 'address.street.1', 'someStreet'),
  set('several numeric keys', {}, 'address.99.street.1', 'someStreet'),
  set('mixed indexes and numeric keys', {}, 'address[2].99.street[2].1', 'someStreet'),
  set('first item of missing array', {}, 'items[0]', 51),
  set('key 0 on missing parent', {}, 'items.0', 51),
  set('object inside new array', {}, 'pastAddresses[1].street', 'someStreet'),
  set('inside array of arrays', { addresses: [null, ['street1', 'road1'], ['street2']] }, 'addresses[1][0]', 'new-Street1'),
  set('deep multi-dimensional arrays', { obj: { 101: { addresses: [[null, [null, ['s1', 'r1'], ['s2']]], null] } } }, 'obj.101.addresses[0][1][1][0]', 'new'),
  set('extends existing object', { firstname: 'Wolfram' }, 'lastname', 'Hempel'),
  set('whitespace inside brackets', { animals: ['Bear', 'Cow', 'Ostrich'] }, 'animals[ 1 ]', 'Emu'),
  set('object into null element', { animals: [null, 'Cow'] }, 'animals[0].xxx', 'Emu'),
  set('numeric key creates object', {}, 'animals.0.name', 'Emu'),
  set('index creates array', {}, 'animals[0].name', 'Emu'),
  set('key into number', { animals: 3 }, 'animals.name', 'Emu'),
  set('path through number', { animals: 3 }, 'animals.name.length', 7),
  set('index into number', { animals: 3 }, 'animals[0]', 7),

  // Creating parents and growing arrays.
  set('creates nested objects', { x: 1 }, 'a.b.c', true),
  set('grows array with null', { pets: ['cat'] }, 'pets[2]', 'dog'),
  set('grows empty array', { pets: [] }, 'pets[4]', 'dog'),
  set('appends to array', { pets: ['cat'] }, 'pets[1]', 'dog'),
  set('replaces array element', { pets: ['cat', 'dog'] }, 'pets[0]', 'emu'),
  set('nested indexes on missing parent', {}, 'a[1][2]', 7),
  set('nested indexes grow inner array', { a: [[1], [2]] }, 'a[1][2]', 7),
  set('three nested indexes', {}, 'a[0][0][0]', 'x'),
  set('index zero then key', {}, 'a[0].b[0].c', 1),
  set('index after bracket without dot', {}, 'a[1]2', 1),
  set('doubled brackets', {}, 'a[[1]]', 1),
  set('empty brackets ignored', {}, 'a[]', 1),
  set('stray closing bracket', {}, 'a]1[', 1),
  set('dot inside brackets', {}, 'a[1.5]', 1),
  set('leading zeros in index', {}, 'a[007]', 1),
  set('largest index on object', { a: {} }, 'a[4294967294]', 1),

  // Replacing values.
  set('scalar replaced by object', { a: 1 }, 'a', { x: [1, { y: 2 }] }),
  set('object replaced by scalar', { a: { b: 1 } }, 'a', 2),
  set('array value', {}, 'list', [1, [2, null], { three: 3 }]),
  set('null value', { a: 1 }, 'a', null),
  set('path through null', { a: null }, 'a.b', 1),
  set('index through null', { a: null }, 'a[1]', 1),
  set('path through string', { a: 'text' }, 'a.b', 1),
  set('index through string', { a: 'text' }, 'a[1]', 1),
  set('index through boolean', { a: true }, 'a[0].b', 1),
  set('key through array element string', { a: ['x'] }, 'a[0].b', 1),
  set('index on object is key', { a: { x: 1 } }, 'a[2]', 'two'),
  set('index into existing object element', { a: [{ x: 1 }] }, 'a[0][3]', 'three'),

  // Keys that look like numbers, on arrays and objects.
  set('numeric key on array is index', { a: [1, 2] }, 'a.1', 9),
  set('numeric key grows array', { a: [1] }, 'a.3', 9),
  set('numeric key creates element object', { a: [1] }, 'a.2.b', 9),
  set('numeric key on object', { a: { 1: 'one' } }, 'a.1', 9),
  set('key with leading zero on array', { a: [1, 2] }, 'a.01', 9,
    reject('KeyOnArray', '"01" is not an array index in JavaScript: the client writes a property that JSON.stringify drops')),
  set('named key on array', { a: [1, 2] }, 'a.foo', 9,
    reject('KeyOnArray', 'the client writes a property of the array that JSON.stringify drops')),
  set('path through named key on array', { a: [1, 2] }, 'a.foo.bar', 9,
    reject('KeyOnArray', 'the client creates an array property that JSON.stringify drops')),
  set('length of array', { a: [1, 2, 3] }, 'a.length', 1,
    reject('KeyOnArray', 'the client sets the array length, which truncates the array')),
  set('path through length of array', { a: [1, 2, 3] }, 'a.length.x', 1,
    reject('KeyOnArray', 'the client assigns an object to the array length and throws')),

  // Root arrays.
  set('root array by numeric key', [1, 2], '0', 9),
  set('root array grows', [1], '3', 9),
  set('root array element object', [null], '0.x', 9),
  set('root array nested', [[1, 2], [3]], '1.2', 9),
  set('root array by bracket', [1], '[0]', 2,
    reject('KeyOnArray', 'a leading [0] is the key "" then index 0: the client writes property "" of the root array, which JSON.stringify drops')),
  set('root array by bracket past end', [1], '[3]', 2,
    reject('KeyOnArray', 'the client writes property "" of the root array, which JSON.stringify drops')),
  set('leading bracket on root object', {}, '[0]', 2),
  set('leading bracket on existing key', { '': [1] }, '[1]', 2),

  // Whitespace and empty parts.
  set('spaces around parts', {}, '  a . b  ', 1),
  set('empty parts skipped', {}, '.a..b.', 1),
  set('space before bracket stays in key', {}, 'a [1]', 1),
  set('space inside key', {}, 'first name.x y', 1),
  set('tabs, newlines and NBSP trimmed', {}, '\ta\n.\u00a0b\u3000', 1),
  set('BOM trimmed', {}, '\ufeffa\ufeff', 1),
  set('line separator trimmed', {}, '\u2028a\u2029', 1),
  set('NEL not trimmed', {}, '\u0085a', 1),
  set('zero width space not trimmed', {}, '\u200ba', 1),
  set('whitespace around index', {}, 'a[\u00a01\t]', 1),

  // Unicode and unusual keys.
  set('unicode keys', { 名前: { ñandú: 0 } }, '名前.ñandú', 'Zoë'),
  set('emoji key with index', {}, '😀[1]', '🦘'),
  set('punctuation in keys', {}, 'a-b/c$d', 1),
  set('inherited method name as key', {}, 'constructor.name', 1),
  set('toString as key', { a: 1 }, 'toString', 'x'),
  set('own __proto__ key', ownProtoKey(), '__proto__.x', 2),
  set('__proto__ on plain object', {}, '__proto__', { x: 1 },
    reject('PrototypeKey', "the client replaces the object's prototype, which JSON.stringify does not show")),
  set('path through __proto__', {}, '__proto__.polluted', 1,
    reject('PrototypeKey', 'the client writes the key into Object.prototype')),
  set('__proto__ in new object', {}, 'a.__proto__', { x: 1 },
    reject('PrototypeKey', "the client replaces the new object's prototype, leaving {}")),

  // Empty paths and scalar roots.
  set('empty path', { a: 1 }, '', 1,
    reject('EmptyPath', 'with no tokens the client sets a key named "undefined"')),
  set('path of dots', { a: 1 }, '...', 1,
    reject('EmptyPath', 'with no tokens the client sets a key named "undefined"')),
  set('path of spaces', { a: 1 }, '  ', 1,
    reject('EmptyPath', 'with no tokens the client sets a key named "undefined"')),
  set('null root', null, 'a', 1,
    reject('RootNotContainer', 'the client cannot set a property of null and throws')),
  set('number root', 5, 'a', 1,
    reject('RootNotContainer', 'the client cannot set a property of a number and throws')),
  set('string root', 'abc', 'length', 1,
    reject('RootNotContainer', 'the client cannot set a property of a string and throws')),
  set('boolean root', true, 'a.b', 1,
    reject('RootNotContainer', 'the client cannot set a property of a boolean and throws')),

  // Indexes that are not decimal integers or are too large.
  set('word as index', {}, 'a[x]', 1,
    reject('InvalidIndex', 'Number("x") is NaN: the client creates an array of length NaN and throws')),
  set('word as index on object', { a: {} }, 'a[x]', 1,
    reject('InvalidIndex', 'Number("x") is NaN: the client writes key "NaN"')),
  set('blank index', {}, 'a[ ]', 1,
    reject('InvalidIndex', 'Number(" ") is 0 in JavaScript; a blank index is rejected as a likely mistake')),
  set('hexadecimal index', {}, 'a[0x1]', 1,
    reject('InvalidIndex', 'Number("0x1") is 1 in JavaScript; only decimal digits are accepted')),
  set('exponent index', {}, 'a[1e1]', 1,
    reject('InvalidIndex', 'Number("1e1") is 10 in JavaScript; only decimal digits are accepted')),
  set('negative index on array', { a: [1] }, 'a[-1]', 1,
    reject('InvalidIndex', 'the client writes property "-1" of the array, which JSON.stringify drops')),
  set('plus sign in index', {}, 'a[+1]', 1,
    reject('InvalidIndex', 'Number("+1") is 1 in JavaScript; only decimal digits are accepted')),
  set('closing bracket before word', { a: [] }, 'a]b', 1,
    reject('InvalidIndex', 'the piece after "]" is an index and Number("b") is NaN')),
  set('index past JavaScript arrays', { a: [1] }, 'a[4294967295]', 1,
    reject('IndexTooLarge', '4294967295 is not an array index in JavaScript: the client writes a property that JSON.stringify drops')),
  set('index too large for array length', {}, 'a[4294967296]', 1,
    reject('IndexTooLarge', 'the client cannot create an array of that length and throws')),
  set('index with twenty digits', {}, 'a[99999999999999999999]', 1,
    reject('IndexTooLarge', 'the client cannot create an array of that length and throws')),
  set('more than 128 tokens', {}, deepPath, 1,
    reject('TooManyTokens', 'our limit: the client nests 129 objects, deeper than serde_json parses by default')),

  // Erase.
  erase('object key', { a: 1, b: 2 }, 'a'),
  erase('nested key', { a: { b: 1, c: 2 } }, 'a.b'),
  erase('missing key', { a: 1 }, 'x'),
  erase('missing nested key creates parents', {}, 'x.y.z'),
  erase('missing index creates array', {}, 'items[2]'),
  erase('array element becomes null', { a: [1, 2, 3] }, 'a[1]'),
  erase('last array element becomes null', { a: [1, 2, 3] }, 'a[2]'),
  erase('index past end changes nothing', { a: [1] }, 'a[5]'),
  erase('nested array element', { a: [[1, 2], [3]] }, 'a[0][1]'),
  erase('key inside array element', { a: [{ b: 1, c: 2 }] }, 'a[0].b'),
  erase('through number', { a: 3 }, 'a.b'),
  erase('through null', { a: null }, 'a.b'),
  erase('through null with index', { a: null }, 'a[1].b'),
  erase('root array element', [1, 2, 3], '1'),
  erase('root array nested', [[1, 2]], '0.0'),
  erase('numeric key on array', { a: [1, 2] }, 'a.1'),
  erase('index on object', { a: { 1: 'one', 2: 'two' } }, 'a[1]'),
  erase('whole array', { a: [1, 2], b: 1 }, 'a'),
  erase('unicode key', { 名前: 'x', ñ: 1 }, '名前'),
  erase('key with spaces around', { a: { b: 1 } }, ' a . b '),
  erase('own __proto__ key', ownProtoKey(), '__proto__'),
  erase('empty path', { undefined: 1, a: 2 }, '',
    reject('EmptyPath', 'with no tokens the client deletes a key named "undefined"')),
  erase('number root', 5, 'a',
    reject('RootNotContainer', 'the client deletes a property of a number, which has no effect')),
  erase('null root', null, 'a',
    reject('RootNotContainer', 'the client cannot delete a property of null and throws')),
  erase('root array by bracket', [1], '[0]',
    reject('KeyOnArray', 'the client creates property "" of the root array, which JSON.stringify drops, and deletes from it')),
  erase('length of array', { a: [1] }, 'a.length',
    reject('KeyOnArray', 'the client cannot delete the array length and throws')),
  erase('named key on array', { a: [1] }, 'a.foo',
    reject('KeyOnArray', 'the client deletes an array property that does not exist, so the path names nothing')),
  erase('__proto__ on plain object', {}, '__proto__',
    reject('PrototypeKey', 'the key names the prototype accessor, which the client cannot delete, so the path names nothing')),
  erase('word as index', { a: [1] }, 'a[x]',
    reject('InvalidIndex', 'Number("x") is NaN: the client deletes property "NaN", which does not exist')),
];

// Own property names and descriptors of the prototypes that a path could change.
const watchedPrototypes = [
  ['Object.prototype', Object.prototype],
  ['Array.prototype', Array.prototype],
];

function snapshotPrototypes() {
  return watchedPrototypes.map(([, prototype]) => Object.getOwnPropertyDescriptors(prototype));
}

// Restores the prototypes to `snapshot` and returns true when anything had changed.
function restorePrototypes(snapshot) {
  let changed = false;
  watchedPrototypes.forEach(([, prototype], position) => {
    const before = snapshot[position];
    for (const name of Reflect.ownKeys(prototype)) {
      if (!Object.hasOwn(before, name)) {
        delete prototype[name];
        changed = true;
      }
    }
    for (const name of Reflect.ownKeys(before)) {
      const now = Object.getOwnPropertyDescriptor(prototype, name);
      if (now === undefined || now.value !== before[name].value || now.get !== before[name].get || now.set !== before[name].set) {
        Object.defineProperty(prototype, name, before[name]);
        changed = true;
      }
    }
  });
  return changed;
}

function copyJson(value) {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}

function runCase(jsonPath, testCase) {
  const root = copyJson(testCase.root);
  const value = testCase.operation === 'set' ? copyJson(testCase.value) : undefined;
  const record = {
    name: testCase.name,
    root,
    path: testCase.path,
    operation: testCase.operation,
  };
  if (testCase.operation === 'set') {
    record.value = value;
  }

  const prototypes = snapshotPrototypes();
  try {
    record.client_result = JSON.stringify(jsonPath.setValue(root, testCase.path, value));
  } catch (error) {
    record.client_error = `${error.name}: ${error.message}`;
  }
  if (restorePrototypes(prototypes)) {
    record.client_changed_prototype = true;
  }

  if (testCase.rejection) {
    if (!REJECTIONS.has(testCase.rejection.kind)) {
      throw new Error(`case "${testCase.name}": unknown rejection ${testCase.rejection.kind}`);
    }
    record.expected = 'error';
    record.rejection = testCase.rejection.kind;
    record.reason = testCase.rejection.reason;
  } else {
    checkWellDefined(jsonPath, testCase, record);
    record.expected = 'result';
  }
  return record;
}

// Fails unless the client returned a JSON document that contains what the case asked for.
function checkWellDefined(jsonPath, testCase, record) {
  const problem = (text) => new Error(`case "${testCase.name}": ${text}. Mark it with reject(kind, reason) or fix the case.`);
  if (record.client_error !== undefined) {
    throw problem(`the client threw ${record.client_error}`);
  }
  if (record.client_changed_prototype) {
    throw problem('the client changed a prototype');
  }

  const result = parseWithoutPrototypes(record.client_result);
  let found;
  try {
    found = jsonPath.get(result, testCase.path);
  } catch (error) {
    throw problem(`the client cannot read the path back (${error.message})`);
  }
  if (testCase.operation === 'set' && JSON.stringify(found) !== JSON.stringify(record.value)) {
    throw problem(`the client result ${record.client_result} does not contain the value at the path`);
  }
  if (testCase.operation === 'erase' && found !== undefined && found !== null) {
    throw problem(`the client result ${record.client_result} still contains a value at the path`);
  }
}

// Parses JSON into objects without a prototype, so that reading a path back finds only
// keys of the document and never inherited properties such as "__proto__".
function parseWithoutPrototypes(text) {
  return JSON.parse(text, (key, value) => {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      return value;
    }
    return Object.assign(Object.create(null), value);
  });
}

function generate() {
  const client = loadClient();
  const names = new Set();
  const records = cases.map((testCase) => {
    if (names.has(testCase.name + testCase.operation)) {
      throw new Error(`duplicate case name "${testCase.name}" for ${testCase.operation}`);
    }
    names.add(testCase.name + testCase.operation);
    return runCase(client.jsonPath, testCase);
  });
  const document = {
    generated_by: 'protocol/tests/json_path/generate.mjs',
    client_version: client.version,
    cases: records,
  };
  return `${JSON.stringify(document, null, 2)}\n`;
}

function firstDifference(committedText, generatedText) {
  let committed;
  try {
    committed = JSON.parse(committedText);
  } catch (error) {
    return `the committed file is not valid JSON (${error.message})`;
  }
  const generated = JSON.parse(generatedText);
  if (committed.client_version !== generated.client_version) {
    return `client_version is ${committed.client_version}, the installed client is ${generated.client_version}`;
  }
  const count = Math.max(committed.cases?.length ?? 0, generated.cases.length);
  for (let position = 0; position < count; position++) {
    const before = committed.cases?.[position];
    const now = generated.cases[position];
    if (JSON.stringify(before) !== JSON.stringify(now)) {
      const name = now?.name ?? before?.name;
      return `case ${position} ("${name}"): committed ${JSON.stringify(before)}, generated ${JSON.stringify(now)}`;
    }
  }
  return 'the formatting differs';
}

const checkOnly = parseArguments(process.argv.slice(2));
const text = generate();
if (checkOnly) {
  const committedText = existsSync(outputPath) ? readFileSync(outputPath, 'utf8') : '';
  if (committedText !== text) {
    const reason = committedText === '' ? `${outputPath} is missing` : firstDifference(committedText, text);
    console.error(`${path.relative(repositoryRoot, outputPath)} is out of date: ${reason}. Run node protocol/tests/json_path/generate.mjs to rewrite it.`);
    process.exit(1);
  }
  console.log(`${path.relative(repositoryRoot, outputPath)} is up to date`);
} else {
  writeFileSync(outputPath, text);
  console.log(`wrote ${cases.length} cases to ${path.relative(repositoryRoot, outputPath)}`);
}
