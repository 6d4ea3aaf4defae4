//! The syntax tree of a rule, built once when the permission file is loaded.

use super::js_regex::JsRegex;

/// A rule expression.
#[derive(Debug)]
pub(super) enum Expr {
    /// `undefined`.
    Undefined,
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number literal, `NaN` or `Infinity`.
    Number(f64),
    /// A string literal.
    String(Box<str>),
    /// A regular expression literal, compiled.
    Regex(Box<JsRegex>),
    /// An array literal.
    Array(Vec<Expr>),
    /// One of the variables a rule can read.
    Variable(Variable),
    /// `object.name`, `object[expression]` or the same with `?.`.
    Member {
        /// The object whose property is read.
        object: Box<Expr>,
        /// The property.
        property: Property,
        /// Whether the access is `?.`, which gives `undefined` for a `null` or
        /// `undefined` object instead of an error.
        optional: bool,
    },
    /// `_(name)`: the data of another record.
    CrossReference(Box<Expr>),
    /// `object.method(arguments)`.
    MethodCall {
        /// The object the method is called on.
        object: Box<Expr>,
        /// The method.
        method: Method,
        /// The arguments.
        arguments: Vec<Expr>,
        /// Whether the call is `object?.method(...)`.
        optional: bool,
    },
    /// A prefix operator.
    Unary {
        /// The operator.
        operator: UnaryOperator,
        /// Its operand.
        operand: Box<Expr>,
    },
    /// An arithmetic, comparison or equality operator.
    Binary {
        /// The operator.
        operator: BinaryOperator,
        /// The left operand.
        left: Box<Expr>,
        /// The right operand.
        right: Box<Expr>,
    },
    /// `&&`, `||` or `??`, which evaluate their right side only when needed.
    Logical {
        /// The operator.
        operator: LogicalOperator,
        /// The left operand.
        left: Box<Expr>,
        /// The right operand.
        right: Box<Expr>,
    },
    /// `condition ? then : otherwise`.
    Conditional {
        /// The condition.
        condition: Box<Expr>,
        /// The value when the condition is truthy.
        then: Box<Expr>,
        /// The value when the condition is falsy.
        otherwise: Box<Expr>,
    },
    /// A chain of member accesses and calls that contains `?.`. A `?.` on `null` or
    /// `undefined` ends the whole chain with `undefined`.
    OptionalChain(Box<Expr>),
}

/// The variables a rule can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Variable {
    /// `user`: `id`, `isAuthenticated` and `data` of the connection's user.
    User,
    /// `data`: the message's data.
    Data,
    /// `oldData`: the record's current data.
    OldData,
    /// `now`: milliseconds since the Unix epoch.
    Now,
    /// `action`: the protocol action number of the message.
    Action,
    /// `name`: the record, event or RPC name.
    Name,
    /// `$name`: a variable of the name pattern, by its position among the pattern's
    /// captures.
    Capture(usize),
}

/// The property of a member access.
#[derive(Debug)]
pub(super) enum Property {
    /// `.name`.
    Named(Box<str>),
    /// `[expression]`.
    Computed(Box<Expr>),
}

/// The methods rules can call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
    StartsWith,
    EndsWith,
    Includes,
    IndexOf,
    Match,
    ToUpperCase,
    ToLowerCase,
    Trim,
    Substr,
    Substring,
    Slice,
    Split,
}

/// Prefix operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum UnaryOperator {
    /// `!`.
    Not,
    /// `-`.
    Negate,
    /// `+`.
    Plus,
    /// `typeof`.
    TypeOf,
}

/// Binary operators other than the logical ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BinaryOperator {
    Add,
    Subtract,
    Multiply,
    Divide,
    Remainder,
    Less,
    LessEqual,
    Greater,
    GreaterEqual,
    LooseEqual,
    LooseNotEqual,
    StrictEqual,
    StrictNotEqual,
}

/// `&&`, `||` and `??`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LogicalOperator {
    And,
    Or,
    Coalesce,
}

impl Expr {
    /// Calls `visit` with each direct child expression.
    pub(super) fn for_each_child<'a>(&'a self, mut visit: impl FnMut(&'a Expr)) {
        match self {
            Expr::Undefined
            | Expr::Null
            | Expr::Bool(_)
            | Expr::Number(_)
            | Expr::String(_)
            | Expr::Regex(_)
            | Expr::Variable(_) => {}
            Expr::Array(items) => items.iter().for_each(visit),
            Expr::Member {
                object, property, ..
            } => {
                visit(object);
                if let Property::Computed(key) = property {
                    visit(key);
                }
            }
            Expr::CrossReference(argument) => visit(argument),
            Expr::MethodCall {
                object, arguments, ..
            } => {
                visit(object);
                arguments.iter().for_each(visit);
            }
            Expr::Unary { operand, .. } => visit(operand),
            Expr::Binary { left, right, .. } | Expr::Logical { left, right, .. } => {
                visit(left);
                visit(right);
            }
            Expr::Conditional {
                condition,
                then,
                otherwise,
            } => {
                visit(condition);
                visit(then);
                visit(otherwise);
            }
            Expr::OptionalChain(chain) => visit(chain),
        }
    }

    /// Returns the number of levels of the tree below and including this expression,
    /// computed without recursion so that any tree can be measured.
    pub(super) fn depth(&self) -> usize {
        let mut deepest = 0;
        let mut stack = vec![(self, 1)];
        while let Some((expr, depth)) = stack.pop() {
            deepest = deepest.max(depth);
            expr.for_each_child(|child| stack.push((child, depth + 1)));
        }
        deepest
    }
}

impl Method {
    /// Every method with its JavaScript name.
    pub(super) const ALL: [(Method, &'static str); 12] = [
        (Method::StartsWith, "startsWith"),
        (Method::EndsWith, "endsWith"),
        (Method::Includes, "includes"),
        (Method::IndexOf, "indexOf"),
        (Method::Match, "match"),
        (Method::ToUpperCase, "toUpperCase"),
        (Method::ToLowerCase, "toLowerCase"),
        (Method::Trim, "trim"),
        (Method::Substr, "substr"),
        (Method::Substring, "substring"),
        (Method::Slice, "slice"),
        (Method::Split, "split"),
    ];

    /// Finds a method by its JavaScript name.
    pub(super) fn from_name(name: &str) -> Option<Method> {
        Method::ALL
            .iter()
            .find(|(_, method_name)| *method_name == name)
            .map(|(method, _)| *method)
    }

    /// Returns the JavaScript name.
    pub(super) fn name(self) -> &'static str {
        Method::ALL
            .iter()
            .find(|(method, _)| *method == self)
            .map_or("", |(_, name)| name)
    }
}
