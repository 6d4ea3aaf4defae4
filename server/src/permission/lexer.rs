//! Splits a rule's text into JavaScript tokens.
//!
//! The lexer recognizes the whole JavaScript punctuation set so that an operator rules
//! do not support (`=`, `&`, `**`, `{` ...) is reported by name rather than as a stray
//! character. Comments are skipped. A `/` starts a regular expression literal where an
//! operand is expected and is a division elsewhere, as in JavaScript.

use super::value::{is_js_whitespace, is_line_terminator};

/// One token and where it is in the rule's text.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Spanned {
    /// The token.
    pub token: Token,
    /// Byte offset of its first character.
    pub start: usize,
    /// Byte offset just past its last character.
    pub end: usize,
}

/// A JavaScript token.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Token {
    /// A number literal.
    Number(f64),
    /// A string literal, with its escapes resolved.
    String(String),
    /// A regular expression literal.
    Regex {
        /// The text between the slashes.
        source: String,
        /// The letters after the closing slash.
        flags: String,
    },
    /// An identifier or a keyword.
    Identifier(String),
    /// An operator or a bracket.
    Punct(Punct),
    /// The end of the rule.
    End,
}

/// Operators and brackets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Punct {
    LeftParen,
    RightParen,
    LeftBracket,
    RightBracket,
    Comma,
    Dot,
    OptionalDot,
    Question,
    Colon,
    Semicolon,
    Bang,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Less,
    LessEqual,
    Greater,
    GreaterEqual,
    LooseEqual,
    LooseNotEqual,
    StrictEqual,
    StrictNotEqual,
    And,
    Or,
    Coalesce,
    Arrow,
    /// A JavaScript operator that rules do not support, with its text.
    Unsupported(&'static str),
}

/// A lexical error: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LexError {
    /// Byte offset of the offending text.
    pub offset: usize,
    /// The problem, as a sentence fragment.
    pub message: String,
}

/// Every punctuator, longest first within each length so the first prefix that matches
/// is the longest one.
const PUNCTUATORS: &[(&str, Punct)] = &[
    (">>>=", Punct::Unsupported(">>>=")),
    ("===", Punct::StrictEqual),
    ("!==", Punct::StrictNotEqual),
    ("**=", Punct::Unsupported("**=")),
    ("...", Punct::Unsupported("...")),
    (">>>", Punct::Unsupported(">>>")),
    ("<<=", Punct::Unsupported("<<=")),
    (">>=", Punct::Unsupported(">>=")),
    ("&&=", Punct::Unsupported("&&=")),
    ("||=", Punct::Unsupported("||=")),
    ("??=", Punct::Unsupported("??=")),
    ("=>", Punct::Arrow),
    ("==", Punct::LooseEqual),
    ("!=", Punct::LooseNotEqual),
    ("<=", Punct::LessEqual),
    (">=", Punct::GreaterEqual),
    ("&&", Punct::And),
    ("||", Punct::Or),
    ("??", Punct::Coalesce),
    ("?.", Punct::OptionalDot),
    ("**", Punct::Unsupported("**")),
    ("++", Punct::Unsupported("++")),
    ("--", Punct::Unsupported("--")),
    ("<<", Punct::Unsupported("<<")),
    (">>", Punct::Unsupported(">>")),
    ("+=", Punct::Unsupported("+=")),
    ("-=", Punct::Unsupported("-=")),
    ("*=", Punct::Unsupported("*=")),
    ("/=", Punct::Unsupported("/=")),
    ("%=", Punct::Unsupported("%=")),
    ("&=", Punct::Unsupported("&=")),
    ("|=", Punct::Unsupported("|=")),
    ("^=", Punct::Unsupported("^=")),
    ("(", Punct::LeftParen),
    (")", Punct::RightParen),
    ("[", Punct::LeftBracket),
    ("]", Punct::RightBracket),
    (",", Punct::Comma),
    (".", Punct::Dot),
    ("?", Punct::Question),
    (":", Punct::Colon),
    (";", Punct::Semicolon),
    ("!", Punct::Bang),
    ("+", Punct::Plus),
    ("-", Punct::Minus),
    ("*", Punct::Star),
    ("/", Punct::Slash),
    ("%", Punct::Percent),
    ("<", Punct::Less),
    (">", Punct::Greater),
    ("=", Punct::Unsupported("=")),
    ("&", Punct::Unsupported("&")),
    ("|", Punct::Unsupported("|")),
    ("^", Punct::Unsupported("^")),
    ("~", Punct::Unsupported("~")),
    ("{", Punct::Unsupported("{")),
    ("}", Punct::Unsupported("}")),
    ("@", Punct::Unsupported("@")),
    ("#", Punct::Unsupported("#")),
];

/// Keywords after which a `/` starts a regular expression although they are
/// identifiers.
const OPERATOR_KEYWORDS: &[&str] = &[
    "typeof",
    "void",
    "delete",
    "in",
    "instanceof",
    "new",
    "return",
    "case",
    "do",
    "else",
    "throw",
];

/// Splits `source` into tokens, ending with [`Token::End`].
pub(super) fn tokenize(source: &str) -> Result<Vec<Spanned>, LexError> {
    let mut lexer = Lexer {
        source,
        position: 0,
        tokens: Vec::new(),
    };
    lexer.run()?;
    Ok(lexer.tokens)
}

struct Lexer<'s> {
    source: &'s str,
    position: usize,
    tokens: Vec<Spanned>,
}

impl Lexer<'_> {
    fn run(&mut self) -> Result<(), LexError> {
        while let Some(character) = self.peek() {
            let start = self.position;
            let next = self.peek_second();
            let token = match character {
                c if is_js_whitespace(c) => {
                    self.bump();
                    continue;
                }
                '/' if next == Some('/') => {
                    self.skip_line_comment();
                    continue;
                }
                '/' if next == Some('*') => {
                    self.skip_block_comment()?;
                    continue;
                }
                '0'..='9' => self.number()?,
                '.' if next.is_some_and(|c| c.is_ascii_digit()) => self.number()?,
                '"' | '\'' => self.string(character)?,
                '`' => return Err(self.error(start, "template literals are not supported")),
                '/' if self.regex_allowed() => self.regex()?,
                c if is_identifier_start(c) => self.identifier(),
                _ => self.punctuator()?,
            };
            self.tokens.push(Spanned {
                token,
                start,
                end: self.position,
            });
        }
        self.tokens.push(Spanned {
            token: Token::End,
            start: self.source.len(),
            end: self.source.len(),
        });
        Ok(())
    }

    fn peek(&self) -> Option<char> {
        self.source[self.position..].chars().next()
    }

    fn peek_second(&self) -> Option<char> {
        let mut chars = self.source[self.position..].chars();
        chars.next();
        chars.next()
    }

    fn bump(&mut self) -> Option<char> {
        let character = self.peek()?;
        self.position += character.len_utf8();
        Some(character)
    }

    fn bump_if(&mut self, predicate: impl Fn(char) -> bool) -> Option<char> {
        match self.peek() {
            Some(character) if predicate(character) => self.bump(),
            _ => None,
        }
    }

    fn error(&self, offset: usize, message: impl Into<String>) -> LexError {
        LexError {
            offset,
            message: message.into(),
        }
    }

    /// Checks whether a `/` here starts a regular expression, which it does unless the
    /// previous token ends an operand.
    fn regex_allowed(&self) -> bool {
        match self.tokens.last().map(|spanned| &spanned.token) {
            None => true,
            Some(Token::Number(_) | Token::String(_) | Token::Regex { .. }) => false,
            Some(Token::Identifier(name)) => OPERATOR_KEYWORDS.contains(&name.as_str()),
            Some(Token::Punct(punct)) => !matches!(
                punct,
                Punct::RightParen | Punct::RightBracket | Punct::Unsupported("}")
            ),
            Some(Token::End) => false,
        }
    }

    fn skip_line_comment(&mut self) {
        while self.bump_if(|c| !is_line_terminator(c)).is_some() {}
    }

    fn skip_block_comment(&mut self) -> Result<(), LexError> {
        let start = self.position;
        match self.source[start + 2..].find("*/") {
            Some(length) => {
                self.position = start + 2 + length + 2;
                Ok(())
            }
            None => Err(self.error(start, "a `/*` comment is not closed")),
        }
    }

    fn number(&mut self) -> Result<Token, LexError> {
        let start = self.position;
        let rest = &self.source[start..];
        let radix = match rest.get(..2) {
            Some("0x" | "0X") => Some(16),
            Some("0o" | "0O") => Some(8),
            Some("0b" | "0B") => Some(2),
            _ => None,
        };

        let value = if let Some(radix) = radix {
            self.position += 2;
            let digits_start = self.position;
            while self.bump_if(|c| c.is_digit(radix)).is_some() {}
            let digits = &self.source[digits_start..self.position];
            if digits.is_empty() {
                return Err(self.error(start, "a number prefix is not followed by digits"));
            }
            digits.chars().fold(0.0, |value, digit| {
                value * f64::from(radix) + f64::from(digit.to_digit(radix).unwrap_or(0))
            })
        } else {
            if rest.starts_with('0') && rest[1..].starts_with(|c: char| c.is_ascii_digit()) {
                return Err(self.error(
                    start,
                    "numbers with a leading zero (legacy octal) are not supported",
                ));
            }
            self.decimal(start)?
        };

        if self.peek().is_some_and(is_identifier_part) {
            return Err(self.error(
                self.position,
                "an identifier or digit starts right after a number",
            ));
        }
        Ok(Token::Number(value))
    }

    fn decimal(&mut self, start: usize) -> Result<f64, LexError> {
        while self.bump_if(|c| c.is_ascii_digit()).is_some() {}
        if self.peek() == Some('.') {
            self.bump();
            while self.bump_if(|c| c.is_ascii_digit()).is_some() {}
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            self.bump();
            self.bump_if(|c| c == '+' || c == '-');
            if self.bump_if(|c| c.is_ascii_digit()).is_none() {
                return Err(self.error(start, "a number's exponent has no digits"));
            }
            while self.bump_if(|c| c.is_ascii_digit()).is_some() {}
        }
        let text = &self.source[start..self.position];
        text.parse()
            .map_err(|_| self.error(start, format!("`{text}` is not a valid number")))
    }

    fn string(&mut self, quote: char) -> Result<Token, LexError> {
        let start = self.position;
        self.bump();
        let mut value = String::new();
        loop {
            let Some(character) = self.bump() else {
                return Err(self.error(start, "a string is not closed"));
            };
            match character {
                c if c == quote => break,
                '\n' | '\r' => return Err(self.error(start, "a string is not closed")),
                '\\' => self.string_escape(&mut value)?,
                other => value.push(other),
            }
        }
        Ok(Token::String(value))
    }

    fn string_escape(&mut self, value: &mut String) -> Result<(), LexError> {
        let offset = self.position - 1;
        let Some(escaped) = self.bump() else {
            return Err(self.error(offset, "a string is not closed"));
        };
        match escaped {
            'n' => value.push('\n'),
            'r' => value.push('\r'),
            't' => value.push('\t'),
            'b' => value.push('\u{8}'),
            'f' => value.push('\u{c}'),
            'v' => value.push('\u{b}'),
            '0' if !self.peek().is_some_and(|c| c.is_ascii_digit()) => value.push('\0'),
            '0'..='7' => {
                return Err(self.error(offset, "octal escapes in strings are not supported"));
            }
            'x' => {
                let code = self
                    .hex_digits(2)
                    .ok_or_else(|| self.error(offset, "`\\x` needs two hex digits"))?;
                self.push_code(value, code, offset)?;
            }
            'u' => {
                let code = self.unicode_escape(offset)?;
                self.push_code(value, code, offset)?;
            }
            '\r' => {
                self.bump_if(|c| c == '\n');
            }
            c if is_line_terminator(c) => {}
            other => value.push(other),
        }
        Ok(())
    }

    fn hex_digits(&mut self, count: usize) -> Option<u32> {
        let digits = self.source[self.position..].get(..count)?;
        let code = u32::from_str_radix(digits, 16).ok()?;
        if !digits.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        self.position += count;
        Some(code)
    }

    /// Reads the rest of `\uXXXX`, `\u{X...}` or a surrogate pair of two `\uXXXX`.
    fn unicode_escape(&mut self, offset: usize) -> Result<u32, LexError> {
        if self.bump_if(|c| c == '{').is_some() {
            let digits_start = self.position;
            while self.bump_if(|c| c.is_ascii_hexdigit()).is_some() {}
            let digits = &self.source[digits_start..self.position];
            let code = u32::from_str_radix(digits, 16)
                .ok()
                .filter(|code| *code <= 0x10FFFF);
            return match (code, self.bump_if(|c| c == '}')) {
                (Some(code), Some(_)) => Ok(code),
                _ => Err(self.error(offset, "`\\u{...}` needs hex digits up to 10FFFF")),
            };
        }

        let high = self
            .hex_digits(4)
            .ok_or_else(|| self.error(offset, "`\\u` needs four hex digits"))?;
        if !(0xD800..0xDC00).contains(&high) || !self.source[self.position..].starts_with("\\u") {
            return Ok(high);
        }
        let saved = self.position;
        self.position += 2;
        match self.hex_digits(4) {
            Some(low @ 0xDC00..0xE000) => Ok(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)),
            _ => {
                self.position = saved;
                Ok(high)
            }
        }
    }

    fn push_code(&self, value: &mut String, code: u32, offset: usize) -> Result<(), LexError> {
        let character = char::from_u32(code).ok_or_else(|| {
            self.error(
                offset,
                format!("the escape for U+{code:04X} is a lone surrogate, which is not supported"),
            )
        })?;
        value.push(character);
        Ok(())
    }

    fn regex(&mut self) -> Result<Token, LexError> {
        let start = self.position;
        self.bump();
        let mut in_class = false;
        loop {
            let Some(character) = self.bump() else {
                return Err(self.error(start, "a regular expression is not closed"));
            };
            match character {
                c if is_line_terminator(c) => {
                    return Err(self.error(start, "a regular expression is not closed"));
                }
                '\\' => {
                    let escaped = self.bump();
                    if escaped.is_none_or(is_line_terminator) {
                        return Err(self.error(start, "a regular expression is not closed"));
                    }
                }
                '[' => in_class = true,
                ']' => in_class = false,
                '/' if !in_class => break,
                _ => {}
            }
        }
        let source = self.source[start + 1..self.position - 1].to_owned();
        let flags_start = self.position;
        while self.bump_if(is_identifier_part).is_some() {}
        let flags = self.source[flags_start..self.position].to_owned();
        Ok(Token::Regex { source, flags })
    }

    fn identifier(&mut self) -> Token {
        let start = self.position;
        while self.bump_if(is_identifier_part).is_some() {}
        Token::Identifier(self.source[start..self.position].to_owned())
    }

    fn punctuator(&mut self) -> Result<Token, LexError> {
        let rest = &self.source[self.position..];
        for (text, punct) in PUNCTUATORS {
            if !rest.starts_with(text) {
                continue;
            }
            // `a?.5:1` is a conditional with the number `.5`, not an optional chain.
            let digit_follows = rest[text.len()..].starts_with(|c: char| c.is_ascii_digit());
            if *punct == Punct::OptionalDot && digit_follows {
                continue;
            }
            self.position += text.len();
            return Ok(Token::Punct(*punct));
        }
        let character = rest.chars().next().unwrap_or_default();
        Err(self.error(self.position, format!("unexpected character `{character}`")))
    }
}

fn is_identifier_start(character: char) -> bool {
    character == '$' || character == '_' || character.is_alphabetic()
}

fn is_identifier_part(character: char) -> bool {
    is_identifier_start(character) || character.is_alphanumeric()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(source: &str) -> Vec<Token> {
        tokenize(source)
            .expect("the test rule is valid")
            .into_iter()
            .map(|spanned| spanned.token)
            .collect()
    }

    fn error(source: &str) -> String {
        tokenize(source)
            .expect_err("the test rule is invalid")
            .message
    }

    fn ident(name: &str) -> Token {
        Token::Identifier(name.to_owned())
    }

    #[test]
    fn numbers_in_every_form() {
        assert_eq!(
            tokens("1 1.5 .5 1. 1e3 2E-2 0x1F 0o17 0b101 0"),
            vec![
                Token::Number(1.0),
                Token::Number(1.5),
                Token::Number(0.5),
                Token::Number(1.0),
                Token::Number(1000.0),
                Token::Number(0.02),
                Token::Number(31.0),
                Token::Number(15.0),
                Token::Number(5.0),
                Token::Number(0.0),
                Token::End,
            ]
        );
    }

    #[test]
    fn invalid_numbers() {
        assert!(error("017").contains("leading zero"));
        assert!(error("1e").contains("exponent"));
        assert!(error("0x").contains("not followed by digits"));
        assert!(error("3in").contains("right after a number"));
    }

    #[test]
    fn strings_with_both_quotes_and_escapes() {
        assert_eq!(
            tokens(
                r#"'a\'b' "c\"d" '\n\t\\' '\x41\u0042\u{43}' '\uD83D\uDE00' 'x\
y'"#
            ),
            vec![
                Token::String("a'b".into()),
                Token::String("c\"d".into()),
                Token::String("\n\t\\".into()),
                Token::String("ABC".into()),
                Token::String("😀".into()),
                Token::String("xy".into()),
                Token::End,
            ]
        );
    }

    #[test]
    fn invalid_strings() {
        assert!(error("'abc").contains("not closed"));
        assert!(error("'a\nb'").contains("not closed"));
        assert!(error(r"'\1'").contains("octal"));
        assert!(error(r"'\uD800'").contains("lone surrogate"));
        assert!(error(r"'\x4'").contains("two hex digits"));
        assert!(error("`a`").contains("template literals"));
    }

    #[test]
    fn regex_or_division_depends_on_the_previous_token() {
        assert_eq!(
            tokens("a / b"),
            vec![
                ident("a"),
                Token::Punct(Punct::Slash),
                ident("b"),
                Token::End
            ]
        );
        assert_eq!(
            tokens("x.match(/a[/]b/gi)"),
            vec![
                ident("x"),
                Token::Punct(Punct::Dot),
                ident("match"),
                Token::Punct(Punct::LeftParen),
                Token::Regex {
                    source: "a[/]b".into(),
                    flags: "gi".into()
                },
                Token::Punct(Punct::RightParen),
                Token::End,
            ]
        );
        assert_eq!(
            tokens("typeof /a/"),
            vec![
                ident("typeof"),
                Token::Regex {
                    source: "a".into(),
                    flags: String::new()
                },
                Token::End,
            ]
        );
        assert_eq!(
            tokens("(1) / 2"),
            vec![
                Token::Punct(Punct::LeftParen),
                Token::Number(1.0),
                Token::Punct(Punct::RightParen),
                Token::Punct(Punct::Slash),
                Token::Number(2.0),
                Token::End,
            ]
        );
        assert!(error("x.match(/abc)").contains("not closed"));
    }

    #[test]
    fn comments_are_skipped() {
        assert_eq!(tokens("a /* b */ // c\n"), vec![ident("a"), Token::End]);
        assert!(error("a /* b").contains("not closed"));
    }

    #[test]
    fn longest_punctuator_wins() {
        assert_eq!(
            tokens("a !== b === c ?. d ?? e"),
            vec![
                ident("a"),
                Token::Punct(Punct::StrictNotEqual),
                ident("b"),
                Token::Punct(Punct::StrictEqual),
                ident("c"),
                Token::Punct(Punct::OptionalDot),
                ident("d"),
                Token::Punct(Punct::Coalesce),
                ident("e"),
                Token::End,
            ]
        );
        assert_eq!(
            tokens("a?.5:1"),
            vec![
                ident("a"),
                Token::Punct(Punct::Question),
                Token::Number(0.5),
                Token::Punct(Punct::Colon),
                Token::Number(1.0),
                Token::End,
            ]
        );
        assert_eq!(
            tokens("a = b"),
            vec![
                ident("a"),
                Token::Punct(Punct::Unsupported("=")),
                ident("b"),
                Token::End
            ]
        );
    }

    #[test]
    fn spans_cover_tokens() {
        let spanned = tokenize("ab  'c'").expect("valid");
        assert_eq!((spanned[0].start, spanned[0].end), (0, 2));
        assert_eq!((spanned[1].start, spanned[1].end), (4, 7));
    }

    #[test]
    fn identifiers_may_contain_dollar_and_unicode() {
        assert_eq!(
            tokens("$userId _x été"),
            vec![ident("$userId"), ident("_x"), ident("été"), Token::End]
        );
        assert!(error("a ` b").contains("template"));
        assert!(error("a \\ b").contains("unexpected character"));
    }
}
