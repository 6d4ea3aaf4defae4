//! Valve permission rules: deepstream's `permissions.yml`, compiled once and checked
//! for every message.
//!
//! A permission file has four sections, `record`, `event`, `rpc` and `presence`. Each
//! maps name patterns (`"*"`, `"users/$userId"`, `"chat/*"`) to the actions of that
//! section, and each action to `true`, `false` or a rule: a JavaScript expression such
//! as `"user.id === $userId && data.text.length < 280"`. [`Permissions::from_yaml`]
//! checks the file the way deepstream 7.0 does at start-up, plus checks of its own
//! (unknown variables, `data` or `oldData` where the action has none, `$variables` the
//! pattern does not capture), and parses every rule into a syntax tree.
//! `docs/permissions.md` describes the rule language for users.
//!
//! This module does no I/O. A check of a rule that reads other records through
//! `_('name')`, or the record's current data through `oldData`, can return
//! [`Decision::NeedRecords`] with the names it needs. The caller then loads them into
//! its [`Lookups`] and checks again:
//!
//! ```
//! use std::path::Path;
//! use deepstream_server::permission::{
//!     Action, Decision, Lookups, MessageData, PermissionOptions, Permissions, Request,
//!     Section, User,
//! };
//!
//! let file: serde_yaml::Value = serde_yaml::from_str(r#"
//! record:
//!   "*": { create: true, read: true, write: true, delete: false, listen: true, notify: false }
//!   "posts/$id":
//!     write: "_('owners/' + $id) === user.id"
//! event:
//!   "*": { publish: true, subscribe: true, listen: true }
//! rpc:
//!   "*": { provide: true, request: true }
//! presence:
//!   "*": { allow: true }
//! "#).unwrap();
//! let permissions =
//!     Permissions::from_yaml(&file, Path::new("permissions.yml"), &PermissionOptions::default())
//!         .unwrap();
//!
//! let request = Request {
//!     section: Section::Record,
//!     action: Action::Write,
//!     name: "posts/7",
//!     message_action: 18,
//!     user: User { id: "alice", data: None },
//!     data: MessageData::Json(br#"{"title": "hello"}"#),
//!     now_ms: 1_700_000_000_000,
//! };
//! let mut lookups = Lookups::new();
//! let decision = loop {
//!     match permissions.check(&request, &mut lookups) {
//!         Decision::NeedRecords(names) => {
//!             for name in names {
//!                 // A real caller reads the cache or the storage here.
//!                 lookups.insert(name, Some(serde_json::json!("alice")));
//!             }
//!         }
//!         decided => break decided,
//!     }
//! };
//! assert_eq!(decision, Decision::Allow);
//! ```
//!
//! Where this engine differs from deepstream 7.0.2 is listed in `docs/permissions.md`.
//! The main ones: a rule allows only when its result is truthy (deepstream's
//! message path allows every result except `false`), and rule checks are made on the
//! syntax tree rather than with regular expressions over the text, so `'new item'`
//! in a string is accepted and an unknown variable is an error at start-up.

mod ast;
mod error;
mod eval;
mod js_regex;
mod lexer;
mod methods;
mod parser;
mod pattern;
mod rules;
mod value;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Arc;

use deepstream_protocol::json_path::JsonPath;
use serde_json::Value as Json;

pub use error::{Location, PermissionConfigError, Problem, ProblemKind, RuleError};

use rules::{Rule, RuleTable};

/// deepstream's default for `permission.options.maxRuleIterations`.
pub const DEFAULT_MAX_RULE_ITERATIONS: NonZeroU32 = NonZeroU32::new(3).expect("3 is not zero");

/// Options of the `config` permission type (`permission.options` in `config.yml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PermissionOptions {
    /// How many times one check may evaluate its rule (`maxRuleIterations`), 3 by
    /// default. Each evaluation after the first follows a [`Decision::NeedRecords`]. A
    /// rule that still needs records at its last allowed evaluation ends the check with
    /// [`RuleError::TooManyIterations`], so the caller does not load them in vain.
    pub max_rule_iterations: NonZeroU32,
}

/// The compiled rules of a permission file, or "allow everything" for permission type
/// `none`.
///
/// Cloning is cheap: the rules are shared. `Permissions` is `Send` and `Sync`, and
/// checks only read it.
#[derive(Debug, Clone)]
pub struct Permissions {
    table: Option<Arc<RuleTable>>,
    max_rule_iterations: u32,
}

/// A section of the permission file: the message topic an action belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Section {
    /// `record`.
    Record,
    /// `event`.
    Event,
    /// `rpc`.
    Rpc,
    /// `presence`.
    Presence,
}

/// An action that rules permit. deepstream maps several protocol actions to one of
/// these: a record `SUBSCRIBE`, `READ`, `HEAD` and their combinations are all [`Action::Read`],
/// `UPDATE` and `PATCH` are [`Action::Write`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// `create`: a record is created by its first request.
    Create,
    /// `read`: a record is read or subscribed to.
    Read,
    /// `write`: a record is updated or patched. Carries data and has old data.
    Write,
    /// `delete`: a record is deleted. Has old data.
    Delete,
    /// `listen`: a client listens for subscriptions to records or events.
    Listen,
    /// `notify`: a client tells the server that records changed in the storage.
    Notify,
    /// `publish`: an event is emitted. Carries data.
    Publish,
    /// `subscribe`: a client subscribes to an event. deepstream lets its rule read
    /// `data`, which is `undefined` because subscriptions carry none.
    Subscribe,
    /// `provide`: a client registers as an RPC provider.
    Provide,
    /// `request`: a client makes an RPC. Carries data.
    Request,
    /// `allow`: a client queries or subscribes to presence.
    Allow,
}

/// One permission check: who does what with which name.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The section of the action.
    pub section: Section,
    /// The action.
    pub action: Action,
    /// The record, event or RPC name, or for presence the user name queried. A presence
    /// query of all users has no name, and deepstream 7.0.2 matches patterns against
    /// the text `undefined` for it.
    pub name: &'a str,
    /// The protocol action number of the message, which rules read as `action`
    /// (deepstream 7 passes the number, such as 18 for a record `UPDATE`).
    pub message_action: i32,
    /// The connection's user.
    pub user: User<'a>,
    /// The message's data, which rules read as `data`.
    pub data: MessageData<'a>,
    /// The current time in milliseconds since the Unix epoch, which rules read as `now`.
    pub now_ms: u64,
}

/// The user of a connection, as rules see it in `user`.
#[derive(Debug, Clone, Copy)]
pub struct User<'a> {
    /// The user name from authentication, `user.id`. deepstream names users who
    /// logged in without a name `open`, and `user.isAuthenticated` is false exactly for
    /// that name.
    pub id: &'a str,
    /// The `serverData` from authentication, `user.data`; `None` reads as `null`.
    pub data: Option<&'a Json>,
}

/// The data of a message, which a rule reads as `data`. It is parsed only when a rule
/// reads `data`, so checks of other rules never touch it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum MessageData<'a> {
    /// The message has no data; `data` is `undefined`.
    Absent,
    /// JSON text, parsed when a rule first reads `data`. Invalid JSON makes the check
    /// fail with [`RuleError::InvalidData`].
    Json(&'a [u8]),
    /// Data the caller has already parsed.
    Parsed(&'a Json),
    /// A record `PATCH`: the rule reads the record's current data with the patch
    /// applied, as in deepstream. The current data is the record of the request's
    /// name in the [`Lookups`], so a check that reads `data` may return
    /// [`Decision::NeedRecords`] for it.
    Patch {
        /// The path the patch writes to.
        path: &'a JsonPath,
        /// The JSON text of the value written there.
        value: &'a [u8],
    },
}

/// The outcome of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// The action is allowed.
    Allow,
    /// The action is denied: no pattern has a rule for it, or the rule's result is
    /// falsy. deepstream replies with `MESSAGE_DENIED`.
    Deny,
    /// The rule failed, so the action is denied. deepstream replies with
    /// `MESSAGE_PERMISSION_ERROR` and logs the error as a warning.
    Error(RuleError),
    /// The rule needs these records. Load each into the [`Lookups`] (a record that
    /// does not exist as `None`) and check again with the same `Lookups`.
    NeedRecords(Vec<String>),
}

/// The records a check has loaded, and how many times it has evaluated its rule.
///
/// Use one `Lookups` per check of one name, and pass it to every call of
/// [`Permissions::check`] for that check.
#[derive(Debug, Default, Clone)]
pub struct Lookups {
    records: HashMap<String, Option<Json>>,
    evaluations: u32,
}

/// The rule that applies to one (section, action, name), found once so that the
/// caller can ask what it reads before checking it.
#[derive(Debug, Clone, Copy)]
pub struct Selected<'p> {
    rule: Option<&'p Rule>,
    max_rule_iterations: u32,
}

impl Default for PermissionOptions {
    fn default() -> Self {
        PermissionOptions {
            max_rule_iterations: DEFAULT_MAX_RULE_ITERATIONS,
        }
    }
}

impl Permissions {
    /// Loads a parsed permission file. `path` is only used in error messages.
    ///
    /// Returns every problem of the file at once; see [`ProblemKind`] for the checks.
    pub fn from_yaml(
        document: &serde_yaml::Value,
        path: &Path,
        options: &PermissionOptions,
    ) -> Result<Permissions, PermissionConfigError> {
        let table = RuleTable::compile(document)
            .map_err(|problems| PermissionConfigError::new(path, problems))?;
        tracing::debug!(
            file = %path.display(),
            patterns = table.pattern_count(),
            "loaded permission rules"
        );
        Ok(Permissions {
            table: Some(Arc::new(table)),
            max_rule_iterations: options.max_rule_iterations.get(),
        })
    }

    /// Permissions that allow every action, for permission type `none`.
    pub fn allow_all() -> Permissions {
        Permissions {
            table: None,
            max_rule_iterations: DEFAULT_MAX_RULE_ITERATIONS.get(),
        }
    }

    /// Returns true for [`Permissions::allow_all`], whose checks always allow.
    pub fn is_allow_all(&self) -> bool {
        self.table.is_none()
    }

    /// Finds the rule for an action on a name as deepstream does. Of the section's
    /// patterns that have a rule for the action and match the name, the longest wins,
    /// and of equally long ones the last in the file.
    pub fn select(&self, section: Section, action: Action, name: &str) -> Selected<'_> {
        let rule = self
            .table
            .as_ref()
            .map(|table| table.select(section, action, name).unwrap_or(Rule::deny()));
        Selected {
            rule,
            max_rule_iterations: self.max_rule_iterations,
        }
    }

    /// Checks a request. See [`Decision`] for what to do with the result.
    pub fn check(&self, request: &Request<'_>, lookups: &mut Lookups) -> Decision {
        self.select(request.section, request.action, request.name)
            .check(request, lookups)
    }

    /// Returns whether the rule for this action on this name reads `data`, which
    /// means the check will parse the message's data.
    pub fn reads_data(&self, section: Section, action: Action, name: &str) -> bool {
        self.select(section, action, name).reads_data()
    }

    /// Returns whether the rule for this action on this name reads `oldData`, so the
    /// caller can load the record's current data into the [`Lookups`] before the first
    /// check.
    pub fn reads_old_data(&self, section: Section, action: Action, name: &str) -> bool {
        self.select(section, action, name).reads_old_data()
    }
}

impl Selected<'_> {
    /// Returns the pattern whose rule applies, or `None` when every action is allowed or
    /// no pattern has a rule for the action.
    pub fn pattern(&self) -> Option<&str> {
        self.rule.and_then(Rule::pattern)
    }

    /// Returns whether the rule reads `data`.
    pub fn reads_data(&self) -> bool {
        self.rule.is_some_and(Rule::reads_data)
    }

    /// Returns whether the rule reads `oldData`, the current data of the record being
    /// checked.
    pub fn reads_old_data(&self) -> bool {
        self.rule.is_some_and(Rule::reads_old_data)
    }

    /// Returns whether the rule calls `_()`, in which case a check may return
    /// [`Decision::NeedRecords`] for other records.
    pub fn reads_records(&self) -> bool {
        self.rule.is_some_and(Rule::reads_records)
    }

    /// Checks a request with this rule. The request's section, action and name must be
    /// the ones the rule was selected for.
    pub fn check(&self, request: &Request<'_>, lookups: &mut Lookups) -> Decision {
        let Some(rule) = self.rule else {
            return Decision::Allow;
        };
        if let Some(allowed) = rule.constant() {
            return if allowed {
                Decision::Allow
            } else {
                Decision::Deny
            };
        }

        let too_many = Decision::Error(RuleError::TooManyIterations {
            max: self.max_rule_iterations,
        });
        if lookups.evaluations >= self.max_rule_iterations {
            return too_many;
        }
        lookups.evaluations += 1;

        // deepstream would load the records and then fail on the next evaluation.
        match rule.evaluate(request, lookups) {
            Decision::NeedRecords(_) if lookups.evaluations == self.max_rule_iterations => too_many,
            decision => decision,
        }
    }
}

impl Lookups {
    /// Creates an empty set; no memory is allocated until a record is inserted.
    pub fn new() -> Lookups {
        Lookups::default()
    }

    /// Stores a loaded record: its data, or `None` when it does not exist (rules then
    /// read it as `null`).
    pub fn insert(&mut self, name: impl Into<String>, data: Option<Json>) {
        self.records.insert(name.into(), data);
    }

    /// Returns whether the record has been loaded.
    pub fn contains(&self, name: &str) -> bool {
        self.records.contains_key(name)
    }

    /// Returns how many times the rule has been evaluated so far.
    pub fn evaluations(&self) -> u32 {
        self.evaluations
    }

    fn get(&self, name: &str) -> Option<Option<&Json>> {
        self.records.get(name).map(Option::as_ref)
    }
}

impl Section {
    /// Every section, in the order of deepstream's schema.
    pub const ALL: [Section; 4] = [
        Section::Record,
        Section::Event,
        Section::Rpc,
        Section::Presence,
    ];

    /// Returns the section's key in the permission file.
    pub fn as_str(self) -> &'static str {
        match self {
            Section::Record => "record",
            Section::Event => "event",
            Section::Rpc => "rpc",
            Section::Presence => "presence",
        }
    }

    /// Returns the actions of the section, in the order of deepstream's schema.
    pub fn actions(self) -> &'static [Action] {
        match self {
            Section::Record => &[
                Action::Write,
                Action::Read,
                Action::Create,
                Action::Delete,
                Action::Listen,
                Action::Notify,
            ],
            Section::Event => &[Action::Publish, Action::Subscribe, Action::Listen],
            Section::Rpc => &[Action::Provide, Action::Request],
            Section::Presence => &[Action::Allow],
        }
    }

    fn from_key(key: &str) -> Option<Section> {
        Section::ALL
            .into_iter()
            .find(|section| section.as_str() == key)
    }

    fn index(self) -> usize {
        self as usize
    }

    /// Returns the position of `action` in [`Section::actions`].
    fn action_slot(self, action: Action) -> Option<usize> {
        self.actions()
            .iter()
            .position(|candidate| *candidate == action)
    }

    /// Returns the actions as a sentence fragment, for error messages.
    fn action_list(self) -> &'static str {
        match self {
            Section::Record => "create, read, write, delete, listen and notify",
            Section::Event => "publish, subscribe and listen",
            Section::Rpc => "provide and request",
            Section::Presence => "allow",
        }
    }
}

impl Action {
    /// Returns the action's key in the permission file.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Read => "read",
            Action::Write => "write",
            Action::Delete => "delete",
            Action::Listen => "listen",
            Action::Notify => "notify",
            Action::Publish => "publish",
            Action::Subscribe => "subscribe",
            Action::Provide => "provide",
            Action::Request => "request",
            Action::Allow => "allow",
        }
    }

    /// Returns whether rules of this action may read `data` (deepstream's rule table).
    pub fn carries_data(self) -> bool {
        matches!(
            self,
            Action::Write | Action::Publish | Action::Subscribe | Action::Request
        )
    }

    /// Returns whether rules of this action may read `oldData` (deepstream's rule table).
    pub fn has_old_data(self) -> bool {
        matches!(self, Action::Read | Action::Write | Action::Delete)
    }
}

impl fmt::Display for Section {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl fmt::Display for Action {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}
