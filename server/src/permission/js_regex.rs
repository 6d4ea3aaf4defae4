//! JavaScript regular expressions, translated to `fancy_regex`.
//!
//! Rules use regular expression literals such as `/^[0-9]+$/i` with `match`, and the
//! name patterns of the permission file are regular expressions in deepstream. Most
//! JavaScript syntax means the same in `fancy_regex`. The translation rewrites what
//! differs:
//!
//! - `\d` and `\w` are ASCII-only in JavaScript and Unicode-aware in Rust, so they
//!   become explicit ASCII classes.
//! - `.` does not match `\r`, U+2028 and U+2029 in JavaScript (Rust's `.` only
//!   excludes `\n`), unless the `s` flag is set.
//! - `\uXXXX`, `\u{...}`, `\cX`, `\0` and `\v` become `\x{...}`.
//! - `[]` never matches and `[^]` matches any character.
//! - Identity escapes of letters (`\a`, `\z`) mean the letter itself in JavaScript but
//!   are escapes in Rust, so they become the plain letter.
//! - Inside a class, `[`, `&&`, `--` and `~~` are literal in JavaScript and are set
//!   operations in Rust, so they are escaped.
//!
//! Known differences that remain: `\b`, `\B` and `\s` use Unicode definitions, so
//! `\b` also finds a boundary next to letters such as `é`, which JavaScript treats as
//! non-word characters. With the `m` flag, `^` and `$` also match at `\r\n` but not at
//! U+2028 and U+2029. Case-insensitive matching uses Unicode simple case folding.
//! The `y` (sticky) and `v` (Unicode sets) flags are rejected.

use std::fmt;

use fancy_regex::{Regex, RegexBuilder};

/// The ASCII word characters of JavaScript's `\w`, as the inside of a class.
const WORD: &str = "0-9A-Za-z_";

/// A compiled JavaScript regular expression.
#[derive(Debug)]
pub(super) struct JsRegex {
    source: Box<str>,
    flags: Box<str>,
    global: bool,
    regex: Regex,
}

/// The flags of a regular expression literal that change how it is compiled.
#[derive(Debug, Default, Clone, Copy)]
struct Flags {
    global: bool,
    ignore_case: bool,
    multiline: bool,
    dot_all: bool,
    unicode: bool,
}

impl JsRegex {
    /// Compiles `source` with `flags` as JavaScript's `new RegExp(source, flags)` would.
    /// The error is a sentence describing what is invalid.
    pub(super) fn compile(source: &str, flags: &str) -> Result<JsRegex, String> {
        let parsed = parse_flags(flags)?;
        let translated = translate(source, parsed)?;
        let regex = RegexBuilder::new(&translated)
            .case_insensitive(parsed.ignore_case)
            .multi_line(parsed.multiline)
            .crlf(parsed.multiline)
            .build()
            .map_err(|error| error.to_string())?;
        Ok(JsRegex {
            source: source.into(),
            flags: flags.into(),
            global: parsed.global,
            regex,
        })
    }

    /// Whether the `g` flag is set, which makes `match` return every match.
    pub(super) fn is_global(&self) -> bool {
        self.global
    }

    /// Returns the compiled expression.
    pub(super) fn regex(&self) -> &Regex {
        &self.regex
    }
}

impl fmt::Display for JsRegex {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "/{}/{}", self.source, self.flags)
    }
}

fn parse_flags(flags: &str) -> Result<Flags, String> {
    let mut parsed = Flags::default();
    let mut seen = String::new();
    for flag in flags.chars() {
        if seen.contains(flag) {
            return Err(format!("the flag `{flag}` appears twice"));
        }
        seen.push(flag);
        match flag {
            'g' => parsed.global = true,
            'i' => parsed.ignore_case = true,
            'm' => parsed.multiline = true,
            's' => parsed.dot_all = true,
            'u' => parsed.unicode = true,
            // `d` only adds match indices, which rules cannot read.
            'd' => {}
            'y' | 'v' => return Err(format!("the flag `{flag}` is not supported")),
            other => return Err(format!("`{other}` is not a regular expression flag")),
        }
    }
    Ok(parsed)
}

/// Rewrites a JavaScript pattern into `fancy_regex` syntax (see the module docs).
fn translate(source: &str, flags: Flags) -> Result<String, String> {
    let mut output = String::with_capacity(source.len() + 16);
    let mut chars = source.chars().peekable();
    while let Some(character) = chars.next() {
        match character {
            '\\' => translate_escape(&mut chars, &mut output, flags)?,
            '[' => translate_class(&mut chars, &mut output, flags)?,
            '.' if flags.dot_all => output.push_str("(?s:.)"),
            '.' => output.push_str(r"[^\n\r\x{2028}\x{2029}]"),
            other => output.push(other),
        }
    }
    Ok(output)
}

type Chars<'s> = std::iter::Peekable<std::str::Chars<'s>>;

fn translate_escape(
    chars: &mut Chars<'_>,
    output: &mut String,
    flags: Flags,
) -> Result<(), String> {
    let Some(escaped) = chars.next() else {
        return Err("the pattern ends with `\\`".to_owned());
    };
    match escaped {
        'd' => output.push_str("[0-9]"),
        'D' => output.push_str("[^0-9]"),
        'w' => output.push_str(&format!("[{WORD}]")),
        'W' => output.push_str(&format!("[^{WORD}]")),
        's' | 'S' | 'b' | 'B' | 'n' | 'r' | 't' | 'f' => {
            output.push('\\');
            output.push(escaped);
        }
        '1'..='9' => {
            output.push('\\');
            output.push(escaped);
            while let Some(digit) = chars.next_if(char::is_ascii_digit) {
                output.push(digit);
            }
        }
        'k' if chars.peek() == Some(&'<') => output.push_str("\\k"),
        other => push_code_point_escape(chars, output, other, flags, false)?,
    }
    Ok(())
}

/// Translates the escapes that mean one character inside and outside classes.
fn push_code_point_escape(
    chars: &mut Chars<'_>,
    output: &mut String,
    escaped: char,
    flags: Flags,
    in_class: bool,
) -> Result<(), String> {
    match escaped {
        'v' => output.push_str(r"\x{0B}"),
        '0' if !chars.peek().is_some_and(char::is_ascii_digit) => output.push_str(r"\x{0}"),
        'x' => {
            let code = read_hex(chars, 2).ok_or("`\\x` must be followed by two hex digits")?;
            push_code(output, code)?;
        }
        'u' => {
            let code = read_unicode_escape(chars, flags)?;
            push_code(output, code)?;
        }
        'c' => match chars.next_if(char::is_ascii_alphabetic) {
            Some(letter) => push_code(output, u32::from(letter) % 32)?,
            None => output.push_str(r"\\c"),
        },
        'p' | 'P' if flags.unicode => {
            output.push('\\');
            output.push(escaped);
        }
        other => push_literal(output, other, in_class),
    }
    Ok(())
}

fn read_hex(chars: &mut Chars<'_>, count: usize) -> Option<u32> {
    let mut code = 0;
    for _ in 0..count {
        code = code * 16 + chars.next_if(char::is_ascii_hexdigit)?.to_digit(16)?;
    }
    Some(code)
}

/// Reads the rest of `\uXXXX`, `\u{X...}` (with the `u` flag) or a surrogate pair
/// written as two `\uXXXX` escapes.
fn read_unicode_escape(chars: &mut Chars<'_>, flags: Flags) -> Result<u32, String> {
    if flags.unicode && chars.next_if_eq(&'{').is_some() {
        let mut code: u32 = 0;
        while let Some(digit) = chars.next_if(char::is_ascii_hexdigit) {
            code = code
                .saturating_mul(16)
                .saturating_add(digit.to_digit(16).unwrap_or(0));
        }
        if chars.next_if_eq(&'}').is_none() {
            return Err("`\\u{` must be followed by hex digits and `}`".to_owned());
        }
        return Ok(code);
    }

    let high = read_hex(chars, 4).ok_or("`\\u` must be followed by four hex digits")?;
    if !(0xD800..0xDC00).contains(&high) {
        return Ok(high);
    }
    let mut lookahead = chars.clone();
    if lookahead.next() == Some('\\') && lookahead.next() == Some('u') {
        if let Some(low @ 0xDC00..0xE000) = read_hex(&mut lookahead, 4) {
            *chars = lookahead;
            return Ok(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00));
        }
    }
    Ok(high)
}

fn push_code(output: &mut String, code: u32) -> Result<(), String> {
    if char::from_u32(code).is_none() {
        return Err(format!(
            "the escape for U+{code:04X} is not a character (lone surrogates are not supported)"
        ));
    }
    output.push_str(&format!("\\x{{{code:X}}}"));
    Ok(())
}

/// Pushes a character that an identity escape made literal.
fn push_literal(output: &mut String, character: char, in_class: bool) {
    let special = if in_class {
        r"\[]^-&~"
    } else {
        r"\.+*?()|[]{}^$"
    };
    if special.contains(character) {
        output.push('\\');
    }
    output.push(character);
}

fn translate_class(chars: &mut Chars<'_>, output: &mut String, flags: Flags) -> Result<(), String> {
    let negated = chars.next_if_eq(&'^').is_some();
    if chars.next_if_eq(&']').is_some() {
        output.push_str(if negated { r"[\s\S]" } else { r"[^\s\S]" });
        return Ok(());
    }

    output.push('[');
    if negated {
        output.push('^');
    }
    let mut previous = None;
    loop {
        let Some(character) = chars.next() else {
            return Err("a character class `[` is not closed".to_owned());
        };
        match character {
            ']' => break,
            '\\' => {
                let Some(escaped) = chars.next() else {
                    return Err("the pattern ends with `\\`".to_owned());
                };
                match escaped {
                    'd' => output.push_str("0-9"),
                    'w' => output.push_str(WORD),
                    'D' => output.push_str("[^0-9]"),
                    'W' => output.push_str(&format!("[^{WORD}]")),
                    's' | 'S' | 'n' | 'r' | 't' | 'f' => {
                        output.push('\\');
                        output.push(escaped);
                    }
                    // In a class, `\b` is a backspace.
                    'b' => output.push_str(r"\x{08}"),
                    other => push_code_point_escape(chars, output, other, flags, true)?,
                }
                previous = None;
                continue;
            }
            '[' | '&' | '~' => {
                output.push('\\');
                output.push(character);
            }
            '-' if previous == Some('-') => output.push_str(r"\-"),
            other => output.push(other),
        }
        previous = Some(character);
    }
    output.push(']');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_match(source: &str, flags: &str, text: &str) -> bool {
        let regex = JsRegex::compile(source, flags).expect("the test pattern compiles");
        regex.regex().is_match(text).expect("the match finishes")
    }

    #[test]
    fn digit_and_word_classes_are_ascii() {
        assert!(is_match(r"^\d+$", "", "0123456789"));
        assert!(!is_match(r"^\d$", "", "٣"));
        assert!(is_match(r"^\w+$", "", "a_Z9"));
        assert!(!is_match(r"^\w$", "", "é"));
        assert!(is_match(r"^[\d\w]+$", "", "a1_"));
        assert!(is_match(r"^[\D]$", "", "x"));
        assert!(!is_match(r"^[\W]$", "", "x"));
    }

    #[test]
    fn dot_excludes_line_terminators() {
        assert!(!is_match("^.$", "", "\r"));
        assert!(!is_match("^.$", "", "\u{2028}"));
        assert!(is_match("^.$", "s", "\r"));
        assert!(is_match("^.$", "", "é"));
    }

    #[test]
    fn escapes_translate() {
        assert!(is_match(r"^\u0041\x42\u{43}$", "u", "ABC"));
        assert!(is_match(r"^\uD83D\uDE00$", "", "😀"));
        assert!(is_match(r"^\/\a\z$", "", "/az"));
        assert!(is_match(r"^\cJ$", "", "\n"));
        assert!(is_match(r"^a\.b$", "", "a.b"));
        assert!(!is_match(r"^a\.b$", "", "axb"));
        assert!(is_match(r"^(a)\1$", "", "aa"));
        assert!(is_match(r"^(?<x>a)\k<x>$", "", "aa"));
    }

    #[test]
    fn classes_translate() {
        assert!(!is_match("[]", "", "a"));
        assert!(is_match("^[^]$", "", "\n"));
        assert!(is_match("^[[]$", "", "["));
        assert!(is_match("^[a&&b]+$", "", "a&&b"));
        assert!(is_match(r"^[\b]$", "", "\u{8}"));
    }

    #[test]
    fn flags_apply() {
        assert!(is_match("^abc$", "i", "ABC"));
        assert!(is_match("^b$", "m", "a\nb"));
        assert!(!is_match("^b$", "", "a\nb"));
        assert!(JsRegex::compile("a", "g").expect("compiles").is_global());
    }

    #[test]
    fn invalid_flags_are_rejected() {
        assert!(JsRegex::compile("a", "gg").is_err());
        assert!(JsRegex::compile("a", "x").is_err());
        assert!(JsRegex::compile("a", "y").is_err());
    }

    #[test]
    fn invalid_patterns_are_rejected() {
        assert!(JsRegex::compile("a(", "").is_err());
        assert!(JsRegex::compile("[a", "").is_err());
        assert!(JsRegex::compile("a\\", "").is_err());
        assert!(JsRegex::compile(r"\uD800", "").is_err());
    }

    #[test]
    fn display_is_literal_syntax() {
        let regex = JsRegex::compile("^a+$", "gi").expect("compiles");
        assert_eq!(regex.to_string(), "/^a+$/gi");
    }
}
