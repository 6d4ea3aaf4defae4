//! Errors of the permission engine: problems in a permission file, found when it is
//! loaded, and failures while a rule is evaluated.

use std::fmt;
use std::path::{Path, PathBuf};

use deepstream_protocol::json_path::PathError;

/// A permission file that cannot be used. It lists every problem found, each with the
/// place in the file it concerns.
///
/// Displayed as one line per problem, such as
/// `permissions.yml: record."users/$id".delete: rule uses `data`, but delete carries no data`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render_problems(.file, .problems))]
pub struct PermissionConfigError {
    file: PathBuf,
    problems: Vec<Problem>,
}

/// One problem in a permission file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The place in the file that has the problem.
    pub location: Location,
    /// The kind of problem.
    pub kind: ProblemKind,
}

/// A place in a permission file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Location {
    /// The document as a whole.
    Document,
    /// A top-level section such as `record`.
    Section {
        /// The section's key as written.
        section: String,
    },
    /// A name pattern of a section, such as `"users/$id"`.
    Pattern {
        /// The section's key.
        section: String,
        /// The pattern as written.
        pattern: String,
    },
    /// The rule of one action of a pattern.
    Rule {
        /// The section's key.
        section: String,
        /// The pattern.
        pattern: String,
        /// The action's key as written.
        action: String,
    },
}

/// The kinds of problems a permission file can have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProblemKind {
    /// A value that must contain keys is something else.
    #[error("expected a mapping of {expected}, found {found}")]
    NotAMapping {
        /// The entries the mapping should contain, such as "sections" or "actions".
        expected: &'static str,
        /// The type found in the file, such as "a string".
        found: &'static str,
    },
    /// A missing section. deepstream requires all four.
    #[error(
        "missing section `{section}`; a permission file needs the sections record, event, \
         rpc and presence"
    )]
    MissingSection {
        /// The missing section.
        section: &'static str,
    },
    /// A top-level key that is not a section.
    #[error("unknown section; expected record, event, rpc or presence")]
    UnknownSection,
    /// A section without patterns.
    #[error("the section has no patterns; it needs at least the pattern \"*\"")]
    EmptySection,
    /// A section without the `"*"` pattern, which deepstream requires.
    #[error("missing the pattern \"*\", which deepstream requires in every section")]
    MissingRootPattern,
    /// A pattern key that is not a string or a number.
    #[error("a pattern must be a string, found {found}")]
    InvalidPatternKey {
        /// The type found in the file.
        found: &'static str,
    },
    /// An empty pattern.
    #[error("the pattern is empty")]
    EmptyPattern,
    /// A pattern that starts with `/`.
    #[error("a pattern must not start with `/`")]
    PatternStartsWithSlash,
    /// A `$` not followed by a letter or digit.
    #[error("invalid variable `{variable}`: a variable is `$` followed by letters and digits")]
    InvalidVariableName {
        /// The `$` and the character after it.
        variable: String,
    },
    /// A pattern whose regular expression characters do not form a valid expression.
    #[error("invalid pattern: deepstream reads it as a regular expression, and {reason}")]
    InvalidPatternRegex {
        /// The reason the expression is invalid.
        reason: String,
    },
    /// An action key that the section does not have.
    #[error("unknown action; the actions of {section} are {expected}")]
    UnknownAction {
        /// The section.
        section: &'static str,
        /// The section's actions, comma separated.
        expected: &'static str,
    },
    /// A rule that is neither a boolean nor a string.
    #[error("a rule must be true, false or a string, found {found}")]
    InvalidRuleType {
        /// The type found in the file.
        found: &'static str,
    },
    /// An empty rule string.
    #[error("the rule is empty")]
    EmptyRule,
    /// A rule using `new`.
    #[error("rule uses the `new` keyword, which rules cannot use")]
    NewKeyword,
    /// A rule defining a function with `function` or `=>`.
    #[error("rule defines a function (`function` or `=>`), which rules cannot do")]
    FunctionDefinition,
    /// A call of a function or method that rules do not support.
    #[error(
        "function `{name}` is not supported; rules can call _() and the methods startsWith, \
         endsWith, includes, indexOf, match, toUpperCase, toLowerCase, trim, substr, \
         substring, slice and split"
    )]
    UnsupportedFunction {
        /// The function's name.
        name: String,
    },
    /// A rule that is not a valid expression.
    #[error("syntax error {position}: {message}")]
    Syntax {
        /// Where, as "at column 7" or "at line 2, column 3".
        position: String,
        /// The problem.
        message: String,
    },
    /// A rule nested so deeply that evaluating it could exhaust the stack.
    #[error("the rule nests deeper than {max} levels; split it into simpler expressions")]
    TooDeep {
        /// The maximum depth.
        max: usize,
    },
    /// A regular expression literal that does not compile.
    #[error("invalid regular expression {regex}: {reason}")]
    InvalidRegex {
        /// The literal as written, with slashes and flags.
        regex: String,
        /// The reason it is invalid.
        reason: String,
    },
    /// A name that is not one of the rule variables.
    #[error(
        "unknown variable `{name}`; rules can use user, data, oldData, now, action, name, \
         _() and the `$` variables of their pattern"
    )]
    UnknownVariable {
        /// The name.
        name: String,
    },
    /// A `$variable` that the pattern does not capture.
    #[error("`{name}` is not a variable of this pattern")]
    UncapturedVariable {
        /// The variable, with its `$`.
        name: String,
    },
    /// A rule reading `data` for an action whose messages carry none.
    #[error("rule uses `data`, but {action} carries no data")]
    DataNotCarried {
        /// The action.
        action: &'static str,
    },
    /// A rule reading `oldData` for an action that has no stored record to compare with.
    #[error("rule uses `oldData`, but {action} has no old data")]
    OldDataNotAvailable {
        /// The action.
        action: &'static str,
    },
}

/// The reason the evaluation of a rule failed. deepstream replies to such a failure
/// with `MESSAGE_PERMISSION_ERROR` instead of `MESSAGE_DENIED`, and either way the
/// action is not performed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    /// The expression failed, as JavaScript would throw: a property read on `undefined`,
    /// a method called on a value that does not have it, a regular expression that
    /// exceeded its backtracking limit.
    #[error("rule failed: {0}")]
    Evaluation(String),
    /// `_()` was called with something other than a string or `undefined`.
    #[error("_() takes a record name, but got {found}")]
    InvalidCrossReference {
        /// The `typeof` of the argument.
        found: &'static str,
    },
    /// The message's data is not valid JSON.
    #[error("the message data is not valid JSON: {0}")]
    InvalidData(String),
    /// A patch targets a record that does not exist, so the patched data cannot be built.
    #[error("cannot apply a patch to record `{0}`, which does not exist")]
    PatchOfMissingRecord(String),
    /// A patch's path cannot be applied to the record's current data.
    #[error("cannot apply the patch to the current record data: {0}")]
    InvalidPatch(#[from] PathError),
    /// A record the rule reads could not be loaded from the cache or the storage.
    #[error("record `{name}` could not be loaded: {reason}")]
    RecordUnavailable {
        /// The record name.
        name: String,
        /// The reason the load failed.
        reason: String,
    },
    /// The rule still needed records after `maxRuleIterations` evaluations.
    #[error("rule still needed records after {max} evaluations (maxRuleIterations)")]
    TooManyIterations {
        /// The configured maximum.
        max: u32,
    },
}

impl PermissionConfigError {
    /// Creates the error for `file` from at least one problem.
    pub(super) fn new(file: &Path, problems: Vec<Problem>) -> PermissionConfigError {
        PermissionConfigError {
            file: file.to_owned(),
            problems,
        }
    }

    /// Returns the path of the permission file.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Returns every problem found, in the order of the file.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Location::Document => write!(formatter, "{}", self.kind),
            location => write!(formatter, "{location}: {}", self.kind),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Document => Ok(()),
            Location::Section { section } => write!(formatter, "{section}"),
            Location::Pattern { section, pattern } => write!(formatter, "{section}.{pattern:?}"),
            Location::Rule {
                section,
                pattern,
                action,
            } => write!(formatter, "{section}.{pattern:?}.{action}"),
        }
    }
}

fn render_problems(file: &Path, problems: &[Problem]) -> String {
    let lines: Vec<String> = problems
        .iter()
        .map(|problem| format!("{}: {problem}", file.display()))
        .collect();
    lines.join("\n")
}
