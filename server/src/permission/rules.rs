//! Loads a permission file into a table of compiled rules, and finds the rule for a
//! name.

use std::collections::HashMap;
use std::sync::Arc;

use serde_yaml::Value as Yaml;

use super::ast::Expr;
use super::error::{Location, Problem, ProblemKind};
use super::eval::evaluate;
use super::parser::{ParsedRule, parse_rule};
use super::pattern::Pattern;
use super::{Action, Decision, Lookups, Request, Section};

/// The compiled permission file.
#[derive(Debug)]
pub(super) struct RuleTable {
    /// Indexed by [`Section::index`], then by [`Section::action_slot`].
    actions: [Vec<ActionRules>; 4],
    pattern_count: usize,
}

/// The patterns that have a rule for one action, ranked as deepstream ranks them.
#[derive(Debug, Default)]
struct ActionRules {
    /// Most specific first: longer patterns first, and of equally long ones the later
    /// in the file first.
    ranked: Vec<Rule>,
    /// Positions in `ranked` of the patterns without wildcards, by their text.
    exact: HashMap<Box<str>, usize>,
    /// Positions in `ranked` of the patterns with wildcards, in increasing order.
    wildcards: Vec<usize>,
}

/// A compiled rule and the pattern it belongs to.
#[derive(Debug)]
pub(super) struct Rule {
    /// `None` for the built-in rule that denies when no pattern has a rule.
    pattern: Option<Arc<Pattern>>,
    body: RuleBody,
}

#[derive(Debug)]
enum RuleBody {
    /// `true`, `false`, or a rule that is a literal.
    Constant(bool),
    Expression(ParsedRule),
}

/// A rule before ranking, with deepstream's ranking keys.
struct Candidate {
    /// The pattern's length in UTF-16 code units.
    length: usize,
    /// The pattern's position in its section.
    order: usize,
    rule: Rule,
}

/// The rule that applies when no pattern has a rule for an action: deny.
static DENY: Rule = Rule {
    pattern: None,
    body: RuleBody::Constant(false),
};

impl RuleTable {
    /// Compiles a permission document, or returns every problem found in it.
    pub(super) fn compile(document: &Yaml) -> Result<RuleTable, Vec<Problem>> {
        let mut loader = Loader::default();
        loader.document(document);
        if !loader.problems.is_empty() {
            return Err(loader.problems);
        }
        Ok(RuleTable {
            actions: loader
                .candidates
                .map(|section| section.into_iter().map(rank).collect()),
            pattern_count: loader.pattern_count,
        })
    }

    /// Returns the number of patterns in all sections.
    pub(super) fn pattern_count(&self) -> usize {
        self.pattern_count
    }

    /// Finds the rule for `action` on `name`, or `None` when no pattern of the section
    /// has a rule for the action and matches the name.
    pub(super) fn select(&self, section: Section, action: Action, name: &str) -> Option<&Rule> {
        let rules = self.actions[section.index()].get(section.action_slot(action)?)?;

        // An exact pattern matches only the name equal to it, but a wildcard pattern
        // ranked above it can still win, so those are tried first, in rank order.
        let exact = rules.exact.get(name).copied();
        let limit = exact.unwrap_or(usize::MAX);
        for &position in rules
            .wildcards
            .iter()
            .take_while(|position| **position < limit)
        {
            let rule = &rules.ranked[position];
            if rule
                .pattern
                .as_ref()
                .is_some_and(|pattern| pattern.matches(name))
            {
                return Some(rule);
            }
        }
        exact.map(|position| &rules.ranked[position])
    }
}

impl Rule {
    /// Returns the rule that denies.
    pub(super) fn deny() -> &'static Rule {
        &DENY
    }

    /// Returns the text of the pattern the rule belongs to.
    pub(super) fn pattern(&self) -> Option<&str> {
        self.pattern.as_deref().map(Pattern::text)
    }

    /// Returns the result of a rule that does not depend on the request.
    pub(super) fn constant(&self) -> Option<bool> {
        match self.body {
            RuleBody::Constant(allowed) => Some(allowed),
            RuleBody::Expression(_) => None,
        }
    }

    pub(super) fn reads_data(&self) -> bool {
        matches!(&self.body, RuleBody::Expression(parsed) if parsed.reads_data)
    }

    pub(super) fn reads_old_data(&self) -> bool {
        matches!(&self.body, RuleBody::Expression(parsed) if parsed.reads_old_data)
    }

    pub(super) fn reads_records(&self) -> bool {
        matches!(&self.body, RuleBody::Expression(parsed) if parsed.reads_records)
    }

    /// Evaluates the rule once.
    pub(super) fn evaluate(&self, request: &Request<'_>, lookups: &Lookups) -> Decision {
        match &self.body {
            RuleBody::Constant(true) => Decision::Allow,
            RuleBody::Constant(false) => Decision::Deny,
            RuleBody::Expression(parsed) => {
                let captures = self
                    .pattern
                    .as_ref()
                    .map(|pattern| pattern.captures(request.name))
                    .unwrap_or_default();
                evaluate(parsed, request, lookups, &captures)
            }
        }
    }
}

/// Walks the document, compiling what is valid and collecting problems.
#[derive(Default)]
struct Loader {
    /// Indexed like [`RuleTable::actions`].
    candidates: [Vec<Vec<Candidate>>; 4],
    pattern_count: usize,
    problems: Vec<Problem>,
}

impl Loader {
    fn problem(&mut self, location: Location, kind: ProblemKind) {
        self.problems.push(Problem { location, kind });
    }

    fn document(&mut self, document: &Yaml) {
        let Some(mapping) = document.as_mapping() else {
            let found = describe_yaml(document);
            let kind = ProblemKind::NotAMapping {
                expected: "sections",
                found,
            };
            self.problem(Location::Document, kind);
            return;
        };

        for key in mapping.keys() {
            if key.as_str().and_then(Section::from_key).is_none() {
                let section = render_key(key);
                self.problem(Location::Section { section }, ProblemKind::UnknownSection);
            }
        }
        for section in Section::ALL {
            match mapping.get(section.as_str()) {
                Some(value) => self.section(section, value),
                None => {
                    let kind = ProblemKind::MissingSection {
                        section: section.as_str(),
                    };
                    self.problem(Location::Document, kind);
                }
            }
        }
    }

    fn section(&mut self, section: Section, value: &Yaml) {
        self.candidates[section.index()] = section.actions().iter().map(|_| Vec::new()).collect();
        let location = Location::Section {
            section: section.as_str().to_owned(),
        };
        let Some(patterns) = value.as_mapping() else {
            let found = describe_yaml(value);
            let kind = ProblemKind::NotAMapping {
                expected: "patterns",
                found,
            };
            self.problem(location, kind);
            return;
        };
        if patterns.is_empty() {
            self.problem(location, ProblemKind::EmptySection);
            return;
        }
        if !patterns.contains_key("*") {
            self.problem(location, ProblemKind::MissingRootPattern);
        }

        for (order, (key, actions)) in patterns.iter().enumerate() {
            self.pattern(section, order, key, actions);
        }
    }

    fn pattern(&mut self, section: Section, order: usize, key: &Yaml, actions: &Yaml) {
        let text = match key {
            Yaml::String(text) => text.clone(),
            // YAML reads `123:` as a number; deepstream's JavaScript turns it into the
            // key "123".
            Yaml::Number(number) => number.to_string(),
            other => {
                let location = Location::Section {
                    section: section.as_str().to_owned(),
                };
                let found = describe_yaml(other);
                self.problem(location, ProblemKind::InvalidPatternKey { found });
                return;
            }
        };
        let location = Location::Pattern {
            section: section.as_str().to_owned(),
            pattern: text.clone(),
        };
        let pattern = match Pattern::parse(&text) {
            Ok(pattern) => Arc::new(pattern),
            Err(kind) => {
                self.problem(location, kind);
                return;
            }
        };
        let Some(actions) = actions.as_mapping() else {
            let found = describe_yaml(actions);
            let kind = ProblemKind::NotAMapping {
                expected: "actions",
                found,
            };
            self.problem(location, kind);
            return;
        };
        self.pattern_count += 1;

        for (action_key, rule) in actions {
            let location = Location::Rule {
                section: section.as_str().to_owned(),
                pattern: text.clone(),
                action: render_key(action_key),
            };
            let Some((slot, action)) = find_action(section, action_key) else {
                let kind = ProblemKind::UnknownAction {
                    section: section.as_str(),
                    expected: section.action_list(),
                };
                self.problem(location, kind);
                continue;
            };
            match compile_rule(rule, action, pattern.variables()) {
                Ok(body) => {
                    let rule = Rule {
                        pattern: Some(Arc::clone(&pattern)),
                        body,
                    };
                    let candidate = Candidate {
                        length: pattern.length(),
                        order,
                        rule,
                    };
                    self.candidates[section.index()][slot].push(candidate);
                }
                Err(kind) => self.problem(location, kind),
            }
        }
    }
}

/// Finds an action key among the section's actions, with its slot.
fn find_action(section: Section, key: &Yaml) -> Option<(usize, Action)> {
    let name = key.as_str()?;
    section
        .actions()
        .iter()
        .enumerate()
        .find(|(_, action)| action.as_str() == name)
        .map(|(slot, action)| (slot, *action))
}

/// Orders the rules of one action by deepstream's precedence and indexes them.
fn rank(mut candidates: Vec<Candidate>) -> ActionRules {
    candidates.sort_by(|a, b| b.length.cmp(&a.length).then(b.order.cmp(&a.order)));

    let mut rules = ActionRules::default();
    for (position, candidate) in candidates.into_iter().enumerate() {
        match candidate.rule.pattern.as_deref() {
            Some(pattern) if pattern.is_exact() => {
                // Of two patterns with the same text (`123` and `"123"`), the
                // higher ranked wins.
                rules.exact.entry(pattern.text().into()).or_insert(position);
            }
            _ => rules.wildcards.push(position),
        }
        rules.ranked.push(candidate.rule);
    }
    rules
}

/// Compiles one rule value of the file.
fn compile_rule(
    rule: &Yaml,
    action: Action,
    variables: &[Box<str>],
) -> Result<RuleBody, ProblemKind> {
    let source = match rule {
        Yaml::Bool(allowed) => return Ok(RuleBody::Constant(*allowed)),
        Yaml::String(source) => source,
        other => {
            return Err(ProblemKind::InvalidRuleType {
                found: describe_yaml(other),
            });
        }
    };
    if source.is_empty() {
        return Err(ProblemKind::EmptyRule);
    }

    let parsed = parse_rule(source, variables)?;
    if parsed.reads_old_data && !action.has_old_data() {
        return Err(ProblemKind::OldDataNotAvailable {
            action: action.as_str(),
        });
    }
    if parsed.reads_data && !action.carries_data() {
        return Err(ProblemKind::DataNotCarried {
            action: action.as_str(),
        });
    }
    Ok(match literal_truthiness(&parsed.expr) {
        Some(allowed) => RuleBody::Constant(allowed),
        None => RuleBody::Expression(parsed),
    })
}

/// Returns the truthiness of a rule that is a single literal, such as `"true"`.
fn literal_truthiness(expr: &Expr) -> Option<bool> {
    match expr {
        Expr::Undefined | Expr::Null => Some(false),
        Expr::Bool(value) => Some(*value),
        Expr::Number(number) => Some(*number != 0.0 && !number.is_nan()),
        Expr::String(text) => Some(!text.is_empty()),
        _ => None,
    }
}

/// Describes a YAML value's type for error messages.
fn describe_yaml(value: &Yaml) -> &'static str {
    match value {
        Yaml::Null => "nothing (null)",
        Yaml::Bool(_) => "a boolean",
        Yaml::Number(_) => "a number",
        Yaml::String(_) => "a string",
        Yaml::Sequence(_) => "a list",
        Yaml::Mapping(_) => "a mapping",
        Yaml::Tagged(_) => "a tagged value",
    }
}

/// Renders a mapping key for a location: strings as they are, other scalars in their
/// YAML form.
fn render_key(key: &Yaml) -> String {
    match key {
        Yaml::String(text) => text.clone(),
        Yaml::Number(number) => number.to_string(),
        Yaml::Bool(value) => value.to_string(),
        Yaml::Null => "null".to_owned(),
        other => format!("<{}>", describe_yaml(other)),
    }
}
