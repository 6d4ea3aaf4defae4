//! Name patterns such as `"*"`, `"users/$userId"` or `"chat/*"`.
//!
//! deepstream 7.0 turns a pattern into a regular expression: `*` becomes `.*`, each
//! `$variable` (a `$` followed by ASCII letters and digits) becomes `([^/]+)`, and the
//! result is anchored at both ends. Every other character is regular expression syntax,
//! so in `"a.b"` the dot matches any character.
//!
//! Most patterns contain no regular expression syntax besides `*` and `$variable`.
//! Those are matched here without a regular expression, with the same results. `*`
//! matches any run of characters except line terminators (like JavaScript's `.`), and
//! a variable matches one or more characters other than `/`. Both are greedy, so the
//! captures are those the regular expression would give. A pattern that contains any
//! of `\ ^ $ . | ? + ( ) [ ] { }` is compiled as deepstream compiles it, and its capture
//! groups map to the variables by position, as in deepstream.

use std::collections::HashSet;

use super::error::ProblemKind;
use super::js_regex::JsRegex;
use super::value::is_line_terminator;

/// A compiled name pattern.
#[derive(Debug)]
pub(super) struct Pattern {
    text: Box<str>,
    /// The length in UTF-16 code units, which deepstream compares to pick the most
    /// specific pattern.
    length: usize,
    /// The variable names with their `$`, in the order of the capture groups.
    variables: Vec<Box<str>>,
    matcher: Matcher,
}

#[derive(Debug)]
enum Matcher {
    /// No wildcards: the name must equal the pattern.
    Exact,
    /// Literal text, `*` and variables.
    Glob {
        segments: Vec<Segment>,
        /// Whether the pattern has two or more wildcards, so matching can backtrack.
        may_backtrack: bool,
    },
    /// A pattern with other regular expression syntax.
    Regex(Box<JsRegex>),
}

#[derive(Debug)]
enum Segment {
    Literal(Box<str>),
    /// `*`: any characters except line terminators, possibly none.
    Star,
    /// `$name`: one or more characters other than `/`.
    Variable,
}

/// The characters that make deepstream's pattern a regular expression beyond `*` and
/// `$variable`.
const REGEX_SYNTAX: &str = r"\^$.|?+()[]{}";

impl Pattern {
    /// Checks and compiles a pattern with deepstream's rules: not empty, not starting
    /// with `/`, and every `$` followed by a letter or digit unless it ends the pattern.
    pub(super) fn parse(text: &str) -> Result<Pattern, ProblemKind> {
        if text.is_empty() {
            return Err(ProblemKind::EmptyPattern);
        }
        if text.starts_with('/') {
            return Err(ProblemKind::PatternStartsWithSlash);
        }
        check_variable_names(text)?;

        let mut segments = Vec::new();
        let mut variables = Vec::new();
        let mut literal = String::new();
        let mut needs_regex = false;
        let mut chars = text.char_indices().peekable();
        while let Some((index, character)) = chars.next() {
            match character {
                '*' => {
                    flush_literal(&mut literal, &mut segments);
                    segments.push(Segment::Star);
                }
                '$' if chars
                    .peek()
                    .is_some_and(|(_, next)| next.is_ascii_alphanumeric()) =>
                {
                    flush_literal(&mut literal, &mut segments);
                    let name_end = text[index + 1..]
                        .find(|c: char| !c.is_ascii_alphanumeric())
                        .map_or(text.len(), |length| index + 1 + length);
                    variables.push(text[index..name_end].into());
                    segments.push(Segment::Variable);
                    while chars.next_if(|(next, _)| *next < name_end).is_some() {}
                }
                other => {
                    needs_regex |= REGEX_SYNTAX.contains(other);
                    literal.push(other);
                }
            }
        }
        flush_literal(&mut literal, &mut segments);

        let wildcards = segments
            .iter()
            .filter(|segment| !matches!(segment, Segment::Literal(_)))
            .count();
        let matcher = if needs_regex {
            Matcher::Regex(Box::new(compile_as_regex(text)?))
        } else if wildcards == 0 {
            Matcher::Exact
        } else {
            Matcher::Glob {
                segments,
                may_backtrack: wildcards > 1,
            }
        };
        Ok(Pattern {
            text: text.into(),
            length: text.encode_utf16().count(),
            variables,
            matcher,
        })
    }

    /// Returns the pattern as written.
    pub(super) fn text(&self) -> &str {
        &self.text
    }

    /// Returns the length deepstream uses to rank patterns.
    pub(super) fn length(&self) -> usize {
        self.length
    }

    /// Returns the variable names with their `$`, by capture group.
    pub(super) fn variables(&self) -> &[Box<str>] {
        &self.variables
    }

    /// Checks whether the pattern matches only the name equal to its text.
    pub(super) fn is_exact(&self) -> bool {
        matches!(self.matcher, Matcher::Exact)
    }

    /// Checks whether `name` matches the pattern.
    pub(super) fn matches(&self, name: &str) -> bool {
        match &self.matcher {
            Matcher::Exact => *self.text == *name,
            Matcher::Glob {
                segments,
                may_backtrack,
            } => {
                // Most names that a glob pattern does not match fail on its leading
                // text, so that is checked before setting up the matcher.
                if let Some(Segment::Literal(prefix)) = segments.first() {
                    if !name.starts_with(&**prefix) {
                        return false;
                    }
                }
                Glob::new(segments, *may_backtrack).run(name, &mut [])
            }
            // An expression that exceeds the backtracking limit counts as no match,
            // which falls back to a less specific pattern.
            Matcher::Regex(regex) => regex.regex().is_match(name).unwrap_or(false),
        }
    }

    /// Returns the text of each capture group for a name that matches, with `None` for
    /// a group that did not take part in the match.
    pub(super) fn captures<'n>(&self, name: &'n str) -> Vec<Option<&'n str>> {
        match &self.matcher {
            Matcher::Exact => Vec::new(),
            Matcher::Glob {
                segments,
                may_backtrack,
            } => {
                let mut spans = vec![(0, 0); self.variables.len()];
                if !Glob::new(segments, *may_backtrack).run(name, &mut spans) {
                    return Vec::new();
                }
                spans
                    .iter()
                    .map(|&(start, end)| Some(&name[start..end]))
                    .collect()
            }
            Matcher::Regex(regex) => match regex.regex().captures(name) {
                Ok(Some(captures)) => (1..captures.len())
                    .map(|group| captures.get(group).map(|found| found.as_str()))
                    .collect(),
                _ => Vec::new(),
            },
        }
    }
}

fn check_variable_names(text: &str) -> Result<(), ProblemKind> {
    let mut chars = text.chars().peekable();
    while let Some(character) = chars.next() {
        if character != '$' {
            continue;
        }
        // deepstream only checks the character after a `$`; a `$` at the end is
        // the regular expression's end anchor.
        if let Some(next) = chars.peek().filter(|next| !next.is_ascii_alphanumeric()) {
            return Err(ProblemKind::InvalidVariableName {
                variable: format!("${next}"),
            });
        }
    }
    Ok(())
}

fn flush_literal(literal: &mut String, segments: &mut Vec<Segment>) {
    if !literal.is_empty() {
        segments.push(Segment::Literal(std::mem::take(literal).into_boxed_str()));
    }
}

/// Builds the regular expression deepstream builds from a pattern.
fn compile_as_regex(text: &str) -> Result<JsRegex, ProblemKind> {
    let mut source = String::from("^");
    let mut chars = text.chars().peekable();
    while let Some(character) = chars.next() {
        match character {
            '*' => source.push_str(".*"),
            '$' if chars.peek().is_some_and(char::is_ascii_alphanumeric) => {
                while chars.next_if(char::is_ascii_alphanumeric).is_some() {}
                source.push_str("([^/]+)");
            }
            other => source.push(other),
        }
    }
    source.push('$');
    JsRegex::compile(&source, "").map_err(|reason| ProblemKind::InvalidPatternRegex { reason })
}

/// A backtracking matcher over glob segments with the search order of a regular
/// expression engine: each `*` and variable first takes as much as it can.
///
/// With two or more wildcards, backtracking can grow exponentially with the name's
/// length, so once a match has taken more than [`Glob::MEMO_AFTER_STEPS`] steps, failed
/// (segment, position) states are remembered. That bounds the work by segments ×
/// positions², and keeps ordinary matches free of allocation.
struct Glob<'p> {
    segments: &'p [Segment],
    may_backtrack: bool,
    steps: usize,
    failed: Option<HashSet<(usize, usize)>>,
}

impl<'p> Glob<'p> {
    const MEMO_AFTER_STEPS: usize = 64;

    fn new(segments: &'p [Segment], may_backtrack: bool) -> Glob<'p> {
        Glob {
            segments,
            may_backtrack,
            steps: 0,
            failed: None,
        }
    }

    /// Matches the whole name. On success, `spans` contains the byte range of each
    /// variable, unless it is empty.
    fn run(mut self, name: &str, spans: &mut [(usize, usize)]) -> bool {
        self.match_from(name, 0, 0, 0, spans)
    }

    fn match_from(
        &mut self,
        name: &str,
        segment: usize,
        variable: usize,
        position: usize,
        spans: &mut [(usize, usize)],
    ) -> bool {
        let Some(current) = self.segments.get(segment) else {
            return position == name.len();
        };
        if self
            .failed
            .as_ref()
            .is_some_and(|failed| failed.contains(&(segment, position)))
        {
            return false;
        }
        self.steps += 1;

        let rest = &name[position..];
        let matched = match current {
            Segment::Literal(literal) => {
                rest.starts_with(&**literal)
                    && self.match_from(name, segment + 1, variable, position + literal.len(), spans)
            }
            Segment::Star => {
                let longest = rest.find(is_line_terminator).unwrap_or(rest.len());
                self.try_ends(
                    name,
                    segment,
                    variable,
                    position,
                    position + longest,
                    0,
                    spans,
                )
            }
            Segment::Variable => {
                let longest = rest.find('/').unwrap_or(rest.len());
                let first = rest.chars().next().map_or(1, char::len_utf8);
                self.try_ends(
                    name,
                    segment,
                    variable,
                    position,
                    position + longest,
                    first,
                    spans,
                )
            }
        };

        if !matched && self.may_backtrack && self.steps > Self::MEMO_AFTER_STEPS {
            self.failed
                .get_or_insert_with(HashSet::new)
                .insert((segment, position));
        }
        matched
    }

    /// Tries each end of a wildcard from `longest` down to `position + minimum`.
    #[allow(clippy::too_many_arguments)]
    fn try_ends(
        &mut self,
        name: &str,
        segment: usize,
        variable: usize,
        position: usize,
        longest: usize,
        minimum: usize,
        spans: &mut [(usize, usize)],
    ) -> bool {
        let is_variable = matches!(self.segments[segment], Segment::Variable);
        let shortest = position + minimum;
        if longest < shortest {
            return false;
        }
        for end in (shortest..=longest).rev() {
            if !name.is_char_boundary(end) {
                continue;
            }
            let next_variable = variable + usize::from(is_variable);
            if self.match_from(name, segment + 1, next_variable, end, spans) {
                if is_variable {
                    if let Some(span) = spans.get_mut(variable) {
                        *span = (position, end);
                    }
                }
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> Pattern {
        Pattern::parse(text).expect("the test pattern is valid")
    }

    #[test]
    fn exact_patterns_match_only_themselves() {
        let exact = pattern("users/admin");
        assert!(exact.is_exact());
        assert!(exact.matches("users/admin"));
        assert!(!exact.matches("users/admins"));
        assert!(!exact.matches("users"));
    }

    #[test]
    fn star_matches_anything_but_line_terminators() {
        let star = pattern("chat/*");
        assert!(star.matches("chat/"));
        assert!(star.matches("chat/a/b/c"));
        assert!(!star.matches("chat"));
        assert!(!star.matches("chat/a\nb"));
        assert!(pattern("*").matches(""));
        assert!(pattern("a*c").matches("ac"));
    }

    #[test]
    fn variables_match_one_or_more_non_slash() {
        let users = pattern("users/$id");
        assert!(users.matches("users/1"));
        assert!(!users.matches("users/"));
        assert!(!users.matches("users/1/2"));
        assert!(users.matches("users/a\nb"));
        assert_eq!(users.captures("users/é1"), vec![Some("é1")]);
    }

    #[test]
    fn captures_follow_greedy_regex_order() {
        assert_eq!(pattern("a/*/$x").captures("a/b/c/d"), vec![Some("d")]);
        assert_eq!(pattern("$a$b").captures("xyz"), vec![Some("xy"), Some("z")]);
        assert_eq!(
            pattern("a/$x/b/$y").captures("a/1/b/2"),
            vec![Some("1"), Some("2")]
        );
        assert_eq!(
            pattern("a/$x/$x").captures("a/1/2"),
            vec![Some("1"), Some("2")]
        );
        assert!(pattern("a/$x/b/$y").captures("a/1/c/2").is_empty());
    }

    #[test]
    fn variable_names_are_letters_and_digits() {
        let split = pattern("a/$user_id");
        assert_eq!(split.variables(), [Box::<str>::from("$user")]);
        assert!(split.matches("a/x_id"));
        assert!(!split.matches("a/x"));
    }

    #[test]
    fn regex_syntax_is_compiled_like_deepstream() {
        let dotted = pattern("a.b");
        assert!(!dotted.is_exact());
        assert!(dotted.matches("a.b"));
        assert!(dotted.matches("axb"));
        assert!(!dotted.matches("a\nb"));

        let grouped = pattern("(a|b)/$x");
        assert!(grouped.matches("b/1"));
        // The group of the pattern comes first, so `$x` receives it, as in deepstream.
        assert_eq!(grouped.captures("b/1"), vec![Some("b"), Some("1")]);

        assert!(pattern("x$").matches("x"));
    }

    #[test]
    fn many_stars_do_not_backtrack_exponentially() {
        let stars = pattern("*a*a*a*a*a*a*a*a*a*a*a*a*b");
        let name = "a".repeat(200);
        assert!(!stars.matches(&name));
    }

    #[test]
    fn invalid_patterns() {
        assert_eq!(Pattern::parse("").unwrap_err(), ProblemKind::EmptyPattern);
        assert_eq!(
            Pattern::parse("/users").unwrap_err(),
            ProblemKind::PatternStartsWithSlash
        );
        assert_eq!(
            Pattern::parse("users/$-x").unwrap_err(),
            ProblemKind::InvalidVariableName {
                variable: "$-".into()
            }
        );
        assert!(matches!(
            Pattern::parse("users/(x").unwrap_err(),
            ProblemKind::InvalidPatternRegex { .. }
        ));
    }

    #[test]
    fn length_counts_utf16_units() {
        assert_eq!(pattern("a😀").length(), 3);
    }
}
