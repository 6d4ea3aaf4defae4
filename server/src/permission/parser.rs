//! Parses a rule into an [`Expr`] and resolves its names.
//!
//! The grammar is the subset of JavaScript expressions that Valve rules use, with
//! JavaScript's precedence, from lowest to highest:
//!
//! ```text
//! conditional   a ? b : c
//! logical       a || b, a && b, a ?? b  (?? cannot be mixed with || or && unparenthesized)
//! equality      == != === !==
//! relational    < <= > >=
//! additive      + -
//! product       * / %
//! unary         ! - + typeof
//! postfix       a.b  a?.b  a[b]  a?.[b]  a.method(...)  _(...)
//! primary       literals, [arrays], (parentheses), variables
//! ```
//!
//! A rule may end with one `;`. Names are resolved while parsing: each identifier must
//! be a rule variable, a literal keyword or a `$` variable of the pattern, and each call
//! must be `_()` or a supported method.

use super::ast::{
    BinaryOperator, Expr, LogicalOperator, Method, Property, UnaryOperator, Variable,
};
use super::error::ProblemKind;
use super::js_regex::JsRegex;
use super::lexer::{LexError, Punct, Spanned, Token, tokenize};

/// A parsed rule and what it reads.
#[derive(Debug)]
pub(super) struct ParsedRule {
    /// The expression.
    pub expr: Expr,
    /// Whether the rule reads `data`.
    pub reads_data: bool,
    /// Whether the rule reads `oldData`.
    pub reads_old_data: bool,
    /// Whether the rule calls `_()`.
    pub reads_records: bool,
}

/// The maximum nesting of parentheses, brackets, calls, conditionals and prefix
/// operators while parsing, which bounds the parser's recursion.
const MAX_NESTING: usize = 64;

/// The maximum depth of a rule's syntax tree, which bounds the evaluator's recursion.
/// A chain such as `a || b || c` is one level deeper per operator.
const MAX_DEPTH: usize = 256;

/// Words that are JavaScript syntax rather than rule variables.
const RESERVED_WORDS: &[&str] = &[
    "this",
    "in",
    "instanceof",
    "void",
    "delete",
    "class",
    "const",
    "let",
    "var",
    "if",
    "else",
    "return",
    "for",
    "while",
    "do",
    "switch",
    "case",
    "break",
    "continue",
    "throw",
    "try",
    "catch",
    "finally",
    "yield",
    "await",
    "async",
    "import",
    "export",
    "super",
    "with",
    "debugger",
    "default",
    "enum",
    "extends",
];

/// Parses `source`. `captures` are the variable names of the rule's pattern (with their
/// `$`) in the order of the pattern's capture groups.
pub(super) fn parse_rule(source: &str, captures: &[Box<str>]) -> Result<ParsedRule, ProblemKind> {
    let tokens = tokenize(source).map_err(|error| lex_problem(source, &error))?;
    check_forbidden_syntax(&tokens)?;

    let mut parser = Parser {
        source,
        tokens,
        position: 0,
        captures,
        nesting: 0,
        reads_data: false,
        reads_old_data: false,
        reads_records: false,
    };
    let expr = parser.conditional()?;
    parser.eat(Punct::Semicolon);
    if parser.peek() != &Token::End {
        return Err(parser.unexpected("after the end of the expression"));
    }
    if expr.depth() > MAX_DEPTH {
        return Err(ProblemKind::TooDeep { max: MAX_DEPTH });
    }

    Ok(ParsedRule {
        expr,
        reads_data: parser.reads_data,
        reads_old_data: parser.reads_old_data,
        reads_records: parser.reads_records,
    })
}

/// Reports `new`, `function` and `=>` before any other error, as deepstream does. A
/// property named `new` (`data.new`) is allowed.
fn check_forbidden_syntax(tokens: &[Spanned]) -> Result<(), ProblemKind> {
    for (index, spanned) in tokens.iter().enumerate() {
        let after_dot = index > 0
            && matches!(
                tokens[index - 1].token,
                Token::Punct(Punct::Dot | Punct::OptionalDot)
            );
        match &spanned.token {
            Token::Identifier(name) if name == "new" && !after_dot => {
                return Err(ProblemKind::NewKeyword);
            }
            Token::Identifier(name) if name == "function" && !after_dot => {
                return Err(ProblemKind::FunctionDefinition);
            }
            Token::Punct(Punct::Arrow) => return Err(ProblemKind::FunctionDefinition),
            _ => {}
        }
    }
    Ok(())
}

fn lex_problem(source: &str, error: &LexError) -> ProblemKind {
    ProblemKind::Syntax {
        position: describe_position(source, error.offset),
        message: error.message.clone(),
    }
}

/// Describes a byte offset as "at column N", or "at line L, column N" in a rule of
/// several lines. Columns count characters from 1.
fn describe_position(source: &str, offset: usize) -> String {
    let before = &source[..offset.min(source.len())];
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let column = before[line_start..].chars().count() + 1;
    if source.contains('\n') {
        let line = before.matches('\n').count() + 1;
        format!("at line {line}, column {column}")
    } else {
        format!("at column {column}")
    }
}

struct Parser<'s> {
    source: &'s str,
    tokens: Vec<Spanned>,
    position: usize,
    captures: &'s [Box<str>],
    /// The current depth of nested `conditional` and `unary` calls.
    nesting: usize,
    reads_data: bool,
    reads_old_data: bool,
    reads_records: bool,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        &self.tokens[self.position].token
    }

    fn advance(&mut self) -> Token {
        let token = self.tokens[self.position].token.clone();
        if self.position + 1 < self.tokens.len() {
            self.position += 1;
        }
        token
    }

    fn eat(&mut self, punct: Punct) -> bool {
        if self.peek() == &Token::Punct(punct) {
            self.advance();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, punct: Punct, text: &str) -> Result<(), ProblemKind> {
        if self.eat(punct) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("where `{text}` was expected")))
        }
    }

    fn syntax_error(&self, message: impl Into<String>) -> ProblemKind {
        self.error_at(self.tokens[self.position].start, message)
    }

    fn error_at(&self, offset: usize, message: impl Into<String>) -> ProblemKind {
        ProblemKind::Syntax {
            position: describe_position(self.source, offset),
            message: message.into(),
        }
    }

    /// A syntax error about the current token, such as "unexpected `)` where `]` was
    /// expected".
    fn unexpected(&self, context: &str) -> ProblemKind {
        let spanned = &self.tokens[self.position];
        let found = match &spanned.token {
            Token::End => "end of the rule".to_owned(),
            Token::Punct(Punct::Unsupported(operator)) => {
                return self.syntax_error(format!("operator `{operator}` is not supported"));
            }
            _ => format!("`{}`", &self.source[spanned.start..spanned.end]),
        };
        self.syntax_error(format!("unexpected {found} {context}"))
    }

    /// Runs `parse` one nesting level deeper, or fails when that exceeds
    /// [`MAX_NESTING`].
    fn nested(
        &mut self,
        parse: impl FnOnce(&mut Self) -> Result<Expr, ProblemKind>,
    ) -> Result<Expr, ProblemKind> {
        if self.nesting >= MAX_NESTING {
            return Err(ProblemKind::TooDeep { max: MAX_NESTING });
        }
        self.nesting += 1;
        let result = parse(self);
        self.nesting -= 1;
        result
    }

    fn conditional(&mut self) -> Result<Expr, ProblemKind> {
        self.nested(Self::conditional_level)
    }

    fn conditional_level(&mut self) -> Result<Expr, ProblemKind> {
        let condition = self.short_circuit()?;
        if !self.eat(Punct::Question) {
            return Ok(condition);
        }
        let then = self.conditional()?;
        self.expect(Punct::Colon, ":")?;
        let otherwise = self.conditional()?;
        Ok(Expr::Conditional {
            condition: Box::new(condition),
            then: Box::new(then),
            otherwise: Box::new(otherwise),
        })
    }

    /// `||`, `&&` and `??`. JavaScript forbids mixing `??` with `||` or `&&` without
    /// parentheses, so a chain is either all `??` or a normal `||`/`&&` expression.
    fn short_circuit(&mut self) -> Result<Expr, ProblemKind> {
        let first = self.equality()?;
        if self.peek() == &Token::Punct(Punct::Coalesce) {
            let mut left = first;
            while self.eat(Punct::Coalesce) {
                let right = self.equality()?;
                left = logical(LogicalOperator::Coalesce, left, right);
            }
            if matches!(self.peek(), Token::Punct(Punct::And | Punct::Or)) {
                return Err(self.mixed_coalesce());
            }
            return Ok(left);
        }

        let mut left = self.and_rest(first)?;
        while self.eat(Punct::Or) {
            let first = self.equality()?;
            let right = self.and_rest(first)?;
            left = logical(LogicalOperator::Or, left, right);
        }
        if self.peek() == &Token::Punct(Punct::Coalesce) {
            return Err(self.mixed_coalesce());
        }
        Ok(left)
    }

    fn and_rest(&mut self, first: Expr) -> Result<Expr, ProblemKind> {
        let mut left = first;
        while self.eat(Punct::And) {
            let right = self.equality()?;
            left = logical(LogicalOperator::And, left, right);
        }
        Ok(left)
    }

    fn mixed_coalesce(&self) -> ProblemKind {
        self.syntax_error("`??` cannot be mixed with `||` or `&&` without parentheses")
    }

    fn equality(&mut self) -> Result<Expr, ProblemKind> {
        let mut left = self.relational()?;
        loop {
            let operator = match self.peek() {
                Token::Punct(Punct::LooseEqual) => BinaryOperator::LooseEqual,
                Token::Punct(Punct::LooseNotEqual) => BinaryOperator::LooseNotEqual,
                Token::Punct(Punct::StrictEqual) => BinaryOperator::StrictEqual,
                Token::Punct(Punct::StrictNotEqual) => BinaryOperator::StrictNotEqual,
                _ => return Ok(left),
            };
            self.advance();
            let right = self.relational()?;
            left = binary(operator, left, right);
        }
    }

    fn relational(&mut self) -> Result<Expr, ProblemKind> {
        let mut left = self.additive()?;
        loop {
            let operator = match self.peek() {
                Token::Punct(Punct::Less) => BinaryOperator::Less,
                Token::Punct(Punct::LessEqual) => BinaryOperator::LessEqual,
                Token::Punct(Punct::Greater) => BinaryOperator::Greater,
                Token::Punct(Punct::GreaterEqual) => BinaryOperator::GreaterEqual,
                Token::Identifier(word) if word == "in" || word == "instanceof" => {
                    return Err(self.syntax_error(format!("operator `{word}` is not supported")));
                }
                _ => return Ok(left),
            };
            self.advance();
            let right = self.additive()?;
            left = binary(operator, left, right);
        }
    }

    fn additive(&mut self) -> Result<Expr, ProblemKind> {
        let mut left = self.product()?;
        loop {
            let operator = match self.peek() {
                Token::Punct(Punct::Plus) => BinaryOperator::Add,
                Token::Punct(Punct::Minus) => BinaryOperator::Subtract,
                _ => return Ok(left),
            };
            self.advance();
            let right = self.product()?;
            left = binary(operator, left, right);
        }
    }

    fn product(&mut self) -> Result<Expr, ProblemKind> {
        let mut left = self.unary()?;
        loop {
            let operator = match self.peek() {
                Token::Punct(Punct::Star) => BinaryOperator::Multiply,
                Token::Punct(Punct::Slash) => BinaryOperator::Divide,
                Token::Punct(Punct::Percent) => BinaryOperator::Remainder,
                _ => return Ok(left),
            };
            self.advance();
            let right = self.unary()?;
            left = binary(operator, left, right);
        }
    }

    fn unary(&mut self) -> Result<Expr, ProblemKind> {
        let operator = match self.peek() {
            Token::Punct(Punct::Bang) => UnaryOperator::Not,
            Token::Punct(Punct::Minus) => UnaryOperator::Negate,
            Token::Punct(Punct::Plus) => UnaryOperator::Plus,
            Token::Identifier(word) if word == "typeof" => UnaryOperator::TypeOf,
            _ => return self.postfix(),
        };
        self.advance();
        let operand = self.nested(Self::unary)?;
        Ok(Expr::Unary {
            operator,
            operand: Box::new(operand),
        })
    }

    /// A primary expression followed by member accesses and method calls.
    fn postfix(&mut self) -> Result<Expr, ProblemKind> {
        let mut expr = self.primary()?;
        let mut optional_chain = false;
        loop {
            match self.peek() {
                Token::Punct(Punct::Dot) => {
                    self.advance();
                    let name = self.property_name()?;
                    expr = self.member_or_call(expr, name, false)?;
                }
                Token::Punct(Punct::OptionalDot) => {
                    self.advance();
                    optional_chain = true;
                    match self.peek() {
                        Token::Punct(Punct::LeftBracket) => {
                            self.advance();
                            expr = self.computed_member(expr, true)?;
                        }
                        Token::Punct(Punct::LeftParen) => {
                            return Err(
                                self.syntax_error("optional calls `?.()` are not supported")
                            );
                        }
                        _ => {
                            let name = self.property_name()?;
                            expr = self.member_or_call(expr, name, true)?;
                        }
                    }
                }
                Token::Punct(Punct::LeftBracket) => {
                    self.advance();
                    expr = self.computed_member(expr, false)?;
                }
                Token::Punct(Punct::LeftParen) => {
                    return Err(self.syntax_error(
                        "only _() and methods such as `.startsWith()` can be called",
                    ));
                }
                _ => break,
            }
        }
        if optional_chain {
            expr = Expr::OptionalChain(Box::new(expr));
        }
        Ok(expr)
    }

    /// The identifier after `.` or `?.`. Keywords are valid property names.
    fn property_name(&mut self) -> Result<Box<str>, ProblemKind> {
        match self.peek() {
            Token::Identifier(_) => match self.advance() {
                Token::Identifier(name) => Ok(name.into_boxed_str()),
                _ => Err(self.syntax_error("expected a property name")),
            },
            _ => Err(self.unexpected("where a property name was expected")),
        }
    }

    /// `object.name`, or `object.name(arguments)` when a `(` follows.
    fn member_or_call(
        &mut self,
        object: Expr,
        name: Box<str>,
        optional: bool,
    ) -> Result<Expr, ProblemKind> {
        if self.peek() != &Token::Punct(Punct::LeftParen) {
            return Ok(Expr::Member {
                object: Box::new(object),
                property: Property::Named(name),
                optional,
            });
        }
        let Some(method) = Method::from_name(&name) else {
            return Err(ProblemKind::UnsupportedFunction { name: name.into() });
        };
        self.advance();
        let arguments = self.arguments()?;
        Ok(Expr::MethodCall {
            object: Box::new(object),
            method,
            arguments,
            optional,
        })
    }

    /// The rest of `object[expression]` after the `[`.
    fn computed_member(&mut self, object: Expr, optional: bool) -> Result<Expr, ProblemKind> {
        let key = self.conditional()?;
        self.expect(Punct::RightBracket, "]")?;
        if self.peek() == &Token::Punct(Punct::LeftParen) {
            return Err(self.syntax_error("calling a method through `[...]` is not supported"));
        }
        Ok(Expr::Member {
            object: Box::new(object),
            property: Property::Computed(Box::new(key)),
            optional,
        })
    }

    /// The arguments of a call after its `(`, up to and including the `)`.
    fn arguments(&mut self) -> Result<Vec<Expr>, ProblemKind> {
        let mut arguments = Vec::new();
        while !self.eat(Punct::RightParen) {
            arguments.push(self.conditional()?);
            if !self.eat(Punct::Comma) {
                self.expect(Punct::RightParen, ")")?;
                break;
            }
        }
        Ok(arguments)
    }

    fn primary(&mut self) -> Result<Expr, ProblemKind> {
        let start = self.tokens[self.position].start;
        match self.peek().clone() {
            Token::Number(number) => {
                self.advance();
                Ok(Expr::Number(number))
            }
            Token::String(text) => {
                self.advance();
                Ok(Expr::String(text.into_boxed_str()))
            }
            Token::Regex { source, flags } => {
                self.advance();
                let regex = JsRegex::compile(&source, &flags).map_err(|reason| {
                    ProblemKind::InvalidRegex {
                        regex: format!("/{source}/{flags}"),
                        reason,
                    }
                })?;
                Ok(Expr::Regex(Box::new(regex)))
            }
            Token::Identifier(name) => {
                self.advance();
                self.identifier(&name, start)
            }
            Token::Punct(Punct::LeftParen) => {
                self.advance();
                let expr = self.conditional()?;
                self.expect(Punct::RightParen, ")")?;
                Ok(expr)
            }
            Token::Punct(Punct::LeftBracket) => {
                self.advance();
                self.array()
            }
            _ => Err(self.unexpected("where a value was expected")),
        }
    }

    /// The rest of an array literal after its `[`.
    fn array(&mut self) -> Result<Expr, ProblemKind> {
        let mut items = Vec::new();
        while !self.eat(Punct::RightBracket) {
            if self.peek() == &Token::Punct(Punct::Comma) {
                return Err(self.syntax_error("arrays with holes (`[a,,b]`) are not supported"));
            }
            items.push(self.conditional()?);
            if !self.eat(Punct::Comma) {
                self.expect(Punct::RightBracket, "]")?;
                break;
            }
        }
        Ok(Expr::Array(items))
    }

    /// Resolves an identifier in value position. `start` is its byte offset.
    fn identifier(&mut self, name: &str, start: usize) -> Result<Expr, ProblemKind> {
        if self.peek() == &Token::Punct(Punct::LeftParen) {
            return self.function_call(name, start);
        }
        let expr = match name {
            "true" => Expr::Bool(true),
            "false" => Expr::Bool(false),
            "null" => Expr::Null,
            "undefined" => Expr::Undefined,
            "NaN" => Expr::Number(f64::NAN),
            "Infinity" => Expr::Number(f64::INFINITY),
            "user" => Expr::Variable(Variable::User),
            "data" => {
                self.reads_data = true;
                Expr::Variable(Variable::Data)
            }
            "oldData" => {
                self.reads_old_data = true;
                Expr::Variable(Variable::OldData)
            }
            "now" => Expr::Variable(Variable::Now),
            "action" => Expr::Variable(Variable::Action),
            "name" => Expr::Variable(Variable::Name),
            "_" => {
                return Err(self.error_at(
                    start,
                    "`_` must be called with a record name, as in `_('users/' + user.id)`",
                ));
            }
            word if RESERVED_WORDS.contains(&word) => {
                return Err(self.error_at(start, format!("`{word}` is not supported in rules")));
            }
            variable if variable.starts_with('$') => {
                // A pattern may repeat a variable. deepstream passes the captures as
                // function parameters, and JavaScript binds a repeated parameter name to
                // the last of them, so the last capture of that name wins.
                let Some(index) = self
                    .captures
                    .iter()
                    .rposition(|capture| **capture == *variable)
                else {
                    return Err(ProblemKind::UncapturedVariable {
                        name: variable.to_owned(),
                    });
                };
                Expr::Variable(Variable::Capture(index))
            }
            other => {
                return Err(ProblemKind::UnknownVariable {
                    name: other.to_owned(),
                });
            }
        };
        Ok(expr)
    }

    /// A call of a plain function: only `_(name)` is allowed.
    /// `start` is the byte offset of the function's name.
    fn function_call(&mut self, name: &str, start: usize) -> Result<Expr, ProblemKind> {
        if name != "_" {
            return Err(ProblemKind::UnsupportedFunction {
                name: name.to_owned(),
            });
        }
        self.advance();
        let mut arguments = self.arguments()?;
        let (Some(argument), true) = (arguments.pop(), arguments.is_empty()) else {
            return Err(self.error_at(start, "_() takes exactly one record name"));
        };
        self.reads_records = true;
        Ok(Expr::CrossReference(Box::new(argument)))
    }
}

fn logical(operator: LogicalOperator, left: Expr, right: Expr) -> Expr {
    Expr::Logical {
        operator,
        left: Box::new(left),
        right: Box::new(right),
    }
}

fn binary(operator: BinaryOperator, left: Expr, right: Expr) -> Expr {
    Expr::Binary {
        operator,
        left: Box::new(left),
        right: Box::new(right),
    }
}
