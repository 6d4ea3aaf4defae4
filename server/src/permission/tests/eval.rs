//! The evaluator: JavaScript semantics of values, operators, methods and variables.
//! Rules compare a result with its expected value, so one `Allow` checks one result.

use serde_json::json;

use super::super::RuleError;
use super::{Fixture, assert_allows, assert_denies, assert_fails, load_records};
use crate::permission::{Decision, Lookups, MessageData};

#[test]
fn truthiness() {
    for rule in [
        "!!'0'",
        "!![]",
        "!!data.nested",
        "!!data.tags",
        "!!user",
        "!!/a/",
        "!!-1",
        "!!' '",
    ] {
        assert_allows(rule);
    }
    for rule in [
        "!!''",
        "!!0",
        "!!-0",
        "!!NaN",
        "!!null",
        "!!undefined",
        "!!data.missing",
        "!!data.nothing",
    ] {
        assert_denies(rule);
    }
}

#[test]
fn rule_result_uses_truthiness() {
    assert_allows("data.title");
    assert_allows("data.price");
    assert_allows("data.nested");
    assert_denies("data.zero");
    assert_denies("data.empty");
    assert_denies("data.nothing");
    assert_denies("data.missing");
}

#[test]
fn strict_equality() {
    for rule in [
        "1 === 1",
        "'a' === 'a'",
        "data.nested === data.nested",
        "data.tags === data['tags']",
        "user === user",
        "null === null",
        "undefined === data.missing",
        "0 === -0",
        "'1' !== 1",
        "NaN !== NaN",
        "[1] !== [1]",
        "data.nested !== oldData",
        "null !== undefined",
        "/a/ !== /a/",
    ] {
        assert_allows(rule);
    }
}

#[test]
fn loose_equality() {
    // Each result checked against deepstream 7.0.2.
    for rule in [
        "'1' == 1",
        "null == undefined",
        "true == 1",
        "true == '1'",
        "'' == 0",
        "'  12 ' == 12",
        "'0x10' == 16",
        "'1e3' == 1000",
        "[1,2] == '1,2'",
        "data.nested == '[object Object]'",
        "data.tags == 'x,y'",
        "null != 0",
        "'abc' != NaN",
        "undefined != false",
        "data.nested != data.tags",
    ] {
        assert_allows(rule);
    }
}

#[test]
fn relational_comparison() {
    // Each result checked against deepstream 7.0.2.
    for rule in [
        "'10' < '9'",
        "!('10' < 9)",
        "2 < '10'",
        "null < 1",
        "!(undefined < 1)",
        "!(undefined >= 1)",
        "null >= 0",
        "[2] > 1",
        "!('a' < 'B')",
        "'a' <= 'a'",
        "!(NaN <= NaN)",
        "data.price >= oldData.price",
    ] {
        assert_allows(rule);
    }
}

#[test]
fn arithmetic() {
    for rule in [
        "1 + '2' === '12'",
        "'3' * '4' === 12",
        "7 % 3 === 1",
        "-7 % 3 === -1",
        "1 / 0 === Infinity",
        "10 - '4' === 6",
        "+true + +'  ' === 1",
        "-'3' === -3",
        "typeof (0 / 0) === 'number'",
        "data.price + 1 === 11",
        "now - 1000 === 1699999999000",
    ] {
        assert_allows(rule);
    }
}

#[test]
fn number_to_string_matches_javascript() {
    // Each result checked against deepstream 7.0.2.
    for rule in [
        "'' + 1e21 === '1e+21'",
        "'' + 1.5e-7 === '1.5e-7'",
        "'' + 0.000001 === '0.000001'",
        "'' + 123456789012345680000 === '123456789012345680000'",
        "'' + (-0) === '0'",
        "'' + 0.1 * 3 === '0.30000000000000004'",
        "'' + 42 === '42'",
        "'' + -2.5 === '-2.5'",
        "'' + 1 / 0 === 'Infinity'",
        "'' + NaN === 'NaN'",
        "'' + [1, [2, 3], null] === '1,2,3,'",
        "'' + data.nested === '[object Object]'",
        "'' + null + undefined === 'nullundefined'",
        "'' + /a/g === '/a/g'",
    ] {
        assert_allows(rule);
    }
}

#[test]
fn type_of() {
    for rule in [
        "typeof data.title === 'string'",
        "typeof data.price === 'number'",
        "typeof data.nested.deep === 'boolean'",
        "typeof data.nothing === 'object'",
        "typeof data.missing === 'undefined'",
        "typeof data.tags === 'object'",
        "typeof user === 'object'",
        "typeof /a/ === 'object'",
        "typeof typeof 1 === 'string'",
    ] {
        assert_allows(rule);
    }
}

#[test]
fn logical_operators_return_an_operand() {
    for rule in [
        "(data.zero || 'fallback') === 'fallback'",
        "(data.title && 5) === 5",
        "(data.empty && 5) === ''",
        "(data.nothing ?? 'x') === 'x'",
        "(data.zero ?? 'x') === 0",
        "(data.missing ?? data.nothing ?? 3) === 3",
        "(user.id === 'alice' ? 'yes' : 'no') === 'yes'",
    ] {
        assert_allows(rule);
    }
}

#[test]
fn short_circuit_skips_errors() {
    assert_allows("true || data.missing.x");
    assert_denies("false && data.missing.x");
    assert_allows("data.missing === undefined || data.missing.x");
    assert_allows("user.id === 'alice' ? true : data.missing.x");
}

#[test]
fn string_properties() {
    // Each result checked against deepstream 7.0.2, except where a slice splits a
    // surrogate pair: JavaScript keeps the lone half, Rust strings cannot, so it
    // becomes U+FFFD.
    for rule in [
        "data.title.length === 11",
        "'😀'.length === 2",
        "'abc'[1] === 'b'",
        "'abc'['length'] === 3",
        "'abc'[5] === undefined",
        "'abc'['1'] === 'b'",
        "data.emoji[1] === '\\uFFFD'",
    ] {
        assert_allows(rule);
    }
}

#[test]
fn string_search_methods() {
    for rule in [
        "data.title.startsWith('Hello')",
        "'abc'.startsWith('b', 1)",
        "!'abc'.startsWith('a', 1)",
        "data.title.endsWith('World')",
        "'abc'.endsWith('b', 2)",
        "data.title.includes('o W')",
        "!'abc'.includes('a', 1)",
        "'abc'.includes('')",
        "data.title.indexOf('o') === 4",
        "data.title.indexOf('o', 5) === 7",
        "data.title.indexOf('z') === -1",
        "'abcabc'.indexOf('c', 3) === 5",
        "'abc'.indexOf('', 10) === 3",
        "data.emoji.indexOf('b') === 3",
        "'é😀x'.indexOf('x', 2) === 3",
        "'a1'.indexOf(1) === 1",
        "'xundefined'.indexOf() === 1",
        "!'abc'.startsWith(undefined)",
    ] {
        assert_allows(rule);
    }
}

#[test]
fn string_transform_methods() {
    // Each result checked against deepstream 7.0.2.
    for rule in [
        "data.title.toUpperCase() === 'HELLO WORLD'",
        "data.title.toLowerCase() === 'hello world'",
        "'straße'.toUpperCase() === 'STRASSE'",
        "data.text.trim() === 'padded'",
        "data.text.trim().length === 6",
        "'abc'.substr(1) === 'bc'",
        "'abc'.substr(-2, 1) === 'b'",
        "'abc'.substr(1, 100) === 'bc'",
        "'abc'.substring(2, 0) === 'ab'",
        "'abc'.substring(-5, 2) === 'ab'",
        "'abc'.substring(1) === 'bc'",
        "'abc'.slice(-2) === 'bc'",
        "'abc'.slice(2, 1) === ''",
        "'abc'.slice(0, -1) === 'ab'",
        "data.emoji.slice(1, 3) === '😀'",
    ] {
        assert_allows(rule);
    }
}

#[test]
fn string_split() {
    // Each result checked against deepstream 7.0.2.
    for rule in [
        "'a,b,,c'.split(',').length === 4",
        "'a,b,,c'.split(',')[2] === ''",
        "'abc'.split('')[2] === 'c'",
        "'abc'.split('').length === 3",
        "'abc'.split()[0] === 'abc'",
        "'abc'.split(',', 0).length === 0",
        "'a,b,c'.split(',', 2).length === 2",
        "''.split('').length === 0",
        "''.split(',').length === 1",
        "'a b'.split(' ').includes('b')",
    ] {
        assert_allows(rule);
    }
    assert_fails(
        "'a,b'.split(/,/).length === 2",
        "regular expression is not supported",
    );
}

#[test]
fn regex_match() {
    // Each result checked against deepstream 7.0.2.
    for rule in [
        "data.title.match(/^Hello/)",
        "data.title.match(/o(.)/)[1] === ' '",
        "data.title.match(/o(.)/).length === 2",
        "data.title.match(/o/g).length === 2",
        "data.title.match(/z/) === null",
        "data.title.match(/z/g) === null",
        "'ABC'.match(/b/i)[0] === 'B'",
        "'a\\nb'.match(/^b/m)[0] === 'b'",
        "'a\\nb'.match(/^b/) === null",
        "'abc'.match('b.')[0] === 'bc'",
        "'abc'.match()[0] === ''",
        "'12345'.match(/^[0-9]{5}$/)",
        "'4111111111111111'.match(/^4[0-9]{12}(?:[0-9]{3})?$/)",
        "'ab'.match(/(a)|(z)/)[2] === undefined",
        "'٣'.match(/\\d/) === null",
    ] {
        assert_allows(rule);
    }
    assert_fails("'x'.match('(')", "invalid regular expression");
}

#[test]
fn array_methods() {
    // Each result checked against deepstream 7.0.2.
    for rule in [
        "data.tags.length === 2",
        "data.tags[1] === 'y'",
        "data.tags['1'] === 'y'",
        "data.tags[1.0] === 'y'",
        "data.tags[2] === undefined",
        "data.tags.indexOf('y') === 1",
        "data.tags.indexOf('y', -1) === 1",
        "data.tags.indexOf('z') === -1",
        "data.tags.includes('x')",
        "!data.tags.includes('x', 1)",
        "[NaN].includes(NaN)",
        "[NaN].indexOf(NaN) === -1",
        "['admin', 'owner'].includes(user.data.role)",
        "['a', 'b', 'c'].slice(1).length === 2",
        "['a', 'b', 'c'].slice(-1)[0] === 'c'",
        "[1, 2][1] === 2",
        "data['ta' + 'gs'].length === 2",
        "user.data.tags.indexOf('b') === 1",
    ] {
        assert_allows(rule);
    }
}

#[test]
fn variables() {
    for rule in [
        "user.id === 'alice'",
        "user.isAuthenticated === true",
        "user.data.role === 'admin'",
        "user.data.level > 2",
        "user.other === undefined",
        "now === 1700000000000",
        "action === 18",
        "name === 'items/alice/42'",
        "$owner === 'alice'",
        "$item === '42'",
        "$owner === user.id",
        "oldData.owner === 'alice'",
        "data.price > oldData.price",
    ] {
        assert_allows(rule);
    }
}

#[test]
fn open_user_is_not_authenticated() {
    let permissions = load_records(
        "  '*':\n    write: \"!user.isAuthenticated && user.id === 'open' && user.data === null\"\n",
    );
    let fixture = Fixture::new();
    let mut request = fixture.request("open", MessageData::Absent);
    request.user.data = None;
    let decision = permissions.check(&request, &mut Lookups::new());
    assert_eq!(decision, Decision::Allow);
}

#[test]
fn evaluation_errors_deny_with_error() {
    // Each error checked against deepstream 7.0.2, which throws for all of them.
    assert_fails("data.missing.x", "cannot read property `x` of undefined");
    assert_fails("data.nothing.x", "cannot read property `x` of null");
    assert_fails(
        "data.missing.startsWith('a')",
        "cannot read property `startsWith` of undefined",
    );
    assert_fails(
        "data.price.startsWith('1')",
        "a number has no method `startsWith`",
    );
    assert_fails("data.tags.match(/a/)", "an array has no method `match`");
    assert_fails(
        "data.nested.includes('a')",
        "an object has no method `includes`",
    );
    assert_fails("'abc'.startsWith(/a/)", "must not be a regular expression");
    assert_fails("'abc'.includes(/a/)", "must not be a regular expression");
}

#[test]
fn optional_chaining() {
    // Each result checked against deepstream 7.0.2 (Node.js 20).
    assert_allows("data.missing?.x === undefined");
    assert_allows("data.missing?.x.y === undefined");
    assert_allows("data.missing?.startsWith('a') === undefined");
    assert_allows("data.missing?.[0] === undefined");
    assert_allows("data.nested?.deep");
    assert_fails(
        "(data.missing?.x).y",
        "cannot read property `y` of undefined",
    );
}

#[test]
fn data_is_parsed_only_when_read() {
    let permissions = load_records(
        "  '*': { write: true }\n  lazy:\n    write: \"user.id === 'alice' || data.x\"\n  eager:\n    write: \"data.x === 1\"\n",
    );
    let fixture = Fixture::new();
    let invalid = MessageData::Json(b"{not json");

    let mut request = fixture.request("alice", invalid);
    request.name = "lazy";
    assert_eq!(
        permissions.check(&request, &mut Lookups::new()),
        Decision::Allow
    );

    request.name = "eager";
    let decision = permissions.check(&request, &mut Lookups::new());
    assert!(
        matches!(decision, Decision::Error(RuleError::InvalidData(_))),
        "{decision:?}"
    );

    request.data = MessageData::Json(br#"{"x": 1}"#);
    assert_eq!(
        permissions.check(&request, &mut Lookups::new()),
        Decision::Allow
    );
}

#[test]
fn absent_data_is_undefined() {
    let permissions = load_records("  '*':\n    write: \"data === undefined\"\n");
    let fixture = Fixture::new();
    let request = fixture.request("alice", MessageData::Absent);
    assert_eq!(
        permissions.check(&request, &mut Lookups::new()),
        Decision::Allow
    );
}

#[test]
fn scalar_data() {
    let permissions =
        load_records("  '*':\n    write: \"data === 'hello' && data.length === 5\"\n");
    let fixture = Fixture::new();
    let request = fixture.request("alice", MessageData::Json(br#""hello""#));
    assert_eq!(
        permissions.check(&request, &mut Lookups::new()),
        Decision::Allow
    );
    let parsed = json!("hello");
    let request = fixture.request("alice", MessageData::Parsed(&parsed));
    assert_eq!(
        permissions.check(&request, &mut Lookups::new()),
        Decision::Allow
    );
}

#[test]
fn long_chain_evaluates() {
    let mut alternatives: Vec<String> = (0..200)
        .map(|id| format!("user.id === 'user{id}'"))
        .collect();
    alternatives.push("user.id === 'alice'".to_owned());
    assert_allows(&alternatives.join(" || "));
}
