//! The rule parser: every construct, precedence, name resolution and syntax errors.

use super::super::ast::{
    BinaryOperator, Expr, LogicalOperator, Method, Property, UnaryOperator, Variable,
};
use super::super::error::ProblemKind;
use super::super::parser::{ParsedRule, parse_rule};

fn captures() -> Vec<Box<str>> {
    vec!["$owner".into(), "$item".into(), "$owner".into()]
}

fn parse(source: &str) -> ParsedRule {
    parse_rule(source, &captures()).unwrap_or_else(|error| panic!("`{source}` parses: {error}"))
}

fn expr(source: &str) -> Expr {
    parse(source).expr
}

fn error(source: &str) -> ProblemKind {
    match parse_rule(source, &captures()) {
        Ok(parsed) => panic!("`{source}` parsed as {:?}", parsed.expr),
        Err(error) => error,
    }
}

/// Parses `source` and returns its syntax error as position and message.
fn syntax(source: &str) -> String {
    match error(source) {
        ProblemKind::Syntax { position, message } => format!("{position}: {message}"),
        other => panic!("`{source}`: expected a syntax error, got {other:?}"),
    }
}

#[test]
fn literals() {
    assert!(matches!(expr("42"), Expr::Number(n) if n == 42.0));
    assert!(matches!(expr("'single'"), Expr::String(s) if &*s == "single"));
    assert!(matches!(expr("\"double\""), Expr::String(s) if &*s == "double"));
    assert!(matches!(expr("true"), Expr::Bool(true)));
    assert!(matches!(expr("false"), Expr::Bool(false)));
    assert!(matches!(expr("null"), Expr::Null));
    assert!(matches!(expr("undefined"), Expr::Undefined));
    assert!(matches!(expr("NaN"), Expr::Number(n) if n.is_nan()));
    assert!(matches!(expr("Infinity"), Expr::Number(n) if n == f64::INFINITY));
    assert!(matches!(expr("/a+/i"), Expr::Regex(_)));
}

#[test]
fn array_literals() {
    let Expr::Array(items) = expr("['a', 1, [true],]") else {
        panic!("expected an array");
    };
    assert_eq!(items.len(), 3);
    assert!(matches!(&items[2], Expr::Array(inner) if inner.len() == 1));
    assert!(matches!(expr("[]"), Expr::Array(items) if items.is_empty()));
}

#[test]
fn variables() {
    for (source, variable) in [
        ("user", Variable::User),
        ("data", Variable::Data),
        ("oldData", Variable::OldData),
        ("now", Variable::Now),
        ("action", Variable::Action),
        ("name", Variable::Name),
        ("$item", Variable::Capture(1)),
    ] {
        assert!(
            matches!(expr(source), Expr::Variable(found) if found == variable),
            "{source}"
        );
    }
}

#[test]
fn repeated_capture_resolves_to_the_last() {
    assert!(matches!(
        expr("$owner"),
        Expr::Variable(Variable::Capture(2))
    ));
}

#[test]
fn multiplication_binds_tighter_than_addition() {
    let Expr::Binary {
        operator: BinaryOperator::Add,
        right,
        ..
    } = expr("1 + 2 * 3")
    else {
        panic!("expected an addition at the top");
    };
    assert!(matches!(
        *right,
        Expr::Binary {
            operator: BinaryOperator::Multiply,
            ..
        }
    ));
}

#[test]
fn binary_operators_are_left_associative() {
    let Expr::Binary {
        operator: BinaryOperator::Subtract,
        left,
        ..
    } = expr("5 - 2 - 1")
    else {
        panic!("expected a subtraction at the top");
    };
    assert!(matches!(
        *left,
        Expr::Binary {
            operator: BinaryOperator::Subtract,
            ..
        }
    ));
}

#[test]
fn and_binds_tighter_than_or() {
    let Expr::Logical {
        operator: LogicalOperator::Or,
        right,
        ..
    } = expr("true || false && null")
    else {
        panic!("expected || at the top");
    };
    assert!(matches!(
        *right,
        Expr::Logical {
            operator: LogicalOperator::And,
            ..
        }
    ));
}

#[test]
fn comparison_binds_tighter_than_equality() {
    let Expr::Binary {
        operator: BinaryOperator::StrictEqual,
        left,
        ..
    } = expr("1 < 2 === true")
    else {
        panic!("expected === at the top");
    };
    assert!(matches!(
        *left,
        Expr::Binary {
            operator: BinaryOperator::Less,
            ..
        }
    ));
}

#[test]
fn unary_operators_bind_tightest() {
    let Expr::Binary {
        operator: BinaryOperator::StrictEqual,
        left,
        ..
    } = expr("!user === false")
    else {
        panic!("expected === at the top");
    };
    assert!(matches!(
        *left,
        Expr::Unary {
            operator: UnaryOperator::Not,
            ..
        }
    ));
    assert!(matches!(
        expr("-now"),
        Expr::Unary {
            operator: UnaryOperator::Negate,
            ..
        }
    ));
    assert!(matches!(
        expr("+now"),
        Expr::Unary {
            operator: UnaryOperator::Plus,
            ..
        }
    ));
    assert!(matches!(
        expr("typeof data"),
        Expr::Unary {
            operator: UnaryOperator::TypeOf,
            ..
        }
    ));
    assert!(matches!(
        expr("!!data"),
        Expr::Unary {
            operator: UnaryOperator::Not,
            ..
        }
    ));
}

#[test]
fn conditional_is_right_associative() {
    let Expr::Conditional { otherwise, .. } = expr("user ? 1 : now ? 2 : 3") else {
        panic!("expected a conditional");
    };
    assert!(matches!(*otherwise, Expr::Conditional { .. }));
}

#[test]
fn parentheses_group() {
    let Expr::Binary {
        operator: BinaryOperator::Multiply,
        left,
        ..
    } = expr("(1 + 2) * 3")
    else {
        panic!("expected a multiplication at the top");
    };
    assert!(matches!(
        *left,
        Expr::Binary {
            operator: BinaryOperator::Add,
            ..
        }
    ));
}

#[test]
fn coalesce_chains() {
    assert!(matches!(
        expr("data.a ?? data.b ?? 1"),
        Expr::Logical {
            operator: LogicalOperator::Coalesce,
            ..
        }
    ));
    assert!(matches!(
        expr("(data.a ?? 1) || 2"),
        Expr::Logical {
            operator: LogicalOperator::Or,
            ..
        }
    ));
}

#[test]
fn member_access() {
    let Expr::Member {
        object,
        property: Property::Named(name),
        optional: false,
    } = expr("user.data")
    else {
        panic!("expected a member access");
    };
    assert_eq!(&*name, "data");
    assert!(matches!(*object, Expr::Variable(Variable::User)));

    assert!(matches!(
        expr("data['a b']"),
        Expr::Member {
            property: Property::Computed(_),
            ..
        }
    ));
    // Keywords are valid property names.
    assert!(matches!(expr("data.new"), Expr::Member { .. }));
    assert!(matches!(expr("data.function"), Expr::Member { .. }));
}

#[test]
fn optional_chains_are_wrapped() {
    let Expr::OptionalChain(chain) = expr("data?.a.b") else {
        panic!("expected an optional chain");
    };
    let Expr::Member {
        object,
        optional: false,
        ..
    } = *chain
    else {
        panic!("expected `.b` outermost");
    };
    assert!(matches!(*object, Expr::Member { optional: true, .. }));
    assert!(matches!(expr("data?.['a']"), Expr::OptionalChain(_)));
    assert!(matches!(expr("data.a?.trim()"), Expr::OptionalChain(_)));
}

#[test]
fn method_calls() {
    let Expr::MethodCall {
        method, arguments, ..
    } = expr("data.title.startsWith('a', 1)")
    else {
        panic!("expected a method call");
    };
    assert_eq!(method, Method::StartsWith);
    assert_eq!(arguments.len(), 2);
    for (method, name) in Method::ALL {
        let source = format!("data.x.{name}()");
        assert!(
            matches!(expr(&source), Expr::MethodCall { method: found, .. } if found == method),
            "{source}"
        );
    }
}

#[test]
fn cross_references() {
    let parsed = parse("_('users/' + user.id).admin");
    assert!(parsed.reads_records);
    let Expr::Member { object, .. } = parsed.expr else {
        panic!("expected a member access");
    };
    assert!(matches!(*object, Expr::CrossReference(_)));
}

#[test]
fn reads_flags_follow_variables() {
    let neither = parse("user.data.x && now");
    assert!(!neither.reads_data);
    assert!(!neither.reads_old_data);
    assert!(!neither.reads_records);

    let both = parse("data.x > oldData.x");
    assert!(both.reads_data);
    assert!(both.reads_old_data);
    assert!(!both.reads_records);

    // Words inside strings are not variables.
    let quoted = parse("'data oldData _(x)' === name");
    assert!(!quoted.reads_data);
    assert!(!quoted.reads_old_data);
    assert!(!quoted.reads_records);
}

#[test]
fn trailing_semicolon_and_comments() {
    assert!(matches!(expr("true;"), Expr::Bool(true)));
    assert!(matches!(expr("/* a */ true // b"), Expr::Bool(true)));
    assert!(matches!(expr("true\n&& false"), Expr::Logical { .. }));
}

#[test]
fn new_keyword_is_rejected() {
    assert_eq!(error("new Date() > 0"), ProblemKind::NewKeyword);
    assert_eq!(error("x + new y"), ProblemKind::NewKeyword);
}

#[test]
fn function_definitions_are_rejected() {
    assert_eq!(
        error("function() { return true }"),
        ProblemKind::FunctionDefinition
    );
    assert_eq!(error("[1].some(x => x)"), ProblemKind::FunctionDefinition);
}

#[test]
fn unsupported_functions_are_rejected() {
    assert_eq!(
        error("data.x.toString()"),
        ProblemKind::UnsupportedFunction {
            name: "toString".into()
        }
    );
    assert_eq!(
        error("parseInt(data.x)"),
        ProblemKind::UnsupportedFunction {
            name: "parseInt".into()
        }
    );
    assert_eq!(
        error("user(1)"),
        ProblemKind::UnsupportedFunction {
            name: "user".into()
        }
    );
}

#[test]
fn unknown_variables_are_rejected() {
    assert_eq!(
        error("Math.PI > 3"),
        ProblemKind::UnknownVariable {
            name: "Math".into()
        }
    );
    assert_eq!(
        error("userId === 'a'"),
        ProblemKind::UnknownVariable {
            name: "userId".into()
        }
    );
}

#[test]
fn uncaptured_variables_are_rejected() {
    assert_eq!(
        error("$userId === user.id"),
        ProblemKind::UncapturedVariable {
            name: "$userId".into()
        }
    );
}

#[test]
fn invalid_regex_literals_are_rejected() {
    assert!(matches!(
        error("data.x.match(/a(/)"),
        ProblemKind::InvalidRegex { regex, .. } if regex == "/a(/"
    ));
    assert!(matches!(
        error("data.x.match(/a/gg)"),
        ProblemKind::InvalidRegex { .. }
    ));
}

#[test]
fn syntax_errors_name_the_problem_and_column() {
    assert_eq!(
        syntax("(true"),
        "at column 6: unexpected end of the rule where `)` was expected"
    );
    assert_eq!(
        syntax("true)"),
        "at column 5: unexpected `)` after the end of the expression"
    );
    assert_eq!(
        syntax("data = 1"),
        "at column 6: operator `=` is not supported"
    );
    assert_eq!(
        syntax("data & 1"),
        "at column 6: operator `&` is not supported"
    );
    assert_eq!(
        syntax("'a' in data"),
        "at column 5: operator `in` is not supported"
    );
    assert_eq!(
        syntax("this.x"),
        "at column 1: `this` is not supported in rules"
    );
    assert_eq!(
        syntax("`a`"),
        "at column 1: template literals are not supported"
    );
    assert_eq!(syntax("'abc"), "at column 1: a string is not closed");
    assert_eq!(
        syntax("true &&"),
        "at column 8: unexpected end of the rule where a value was expected"
    );
    assert_eq!(
        syntax(""),
        "at column 1: unexpected end of the rule where a value was expected"
    );
    assert_eq!(
        syntax("true\n&& )"),
        "at line 2, column 4: unexpected `)` where a value was expected"
    );
}

#[test]
fn unsupported_constructs_are_syntax_errors() {
    assert!(syntax("data.a ?? 1 || 2").contains("cannot be mixed"));
    assert!(syntax("data.a || 1 ?? 2").contains("cannot be mixed"));
    assert!(syntax("data.f?.()").contains("optional calls"));
    assert!(syntax("data['trim']()").contains("through `[...]`"));
    assert!(syntax("(data.trim)()").contains("can be called"));
    assert!(syntax("[1,,2]").contains("holes"));
    assert!(syntax("_ === 1").contains("must be called"));
    assert!(syntax("_('a', 'b')").contains("exactly one"));
    assert!(syntax("_()").contains("exactly one"));
    assert!(syntax("data.").contains("property name"));
    assert!(syntax("data ? 1").contains("`:` was expected"));
    assert!(syntax("{}").contains("operator `{`"));
}

#[test]
fn nesting_is_bounded() {
    let parens = format!("{}1{}", "(".repeat(65), ")".repeat(65));
    assert_eq!(error(&parens), ProblemKind::TooDeep { max: 64 });
    let nots = format!("{}true", "!".repeat(65));
    assert_eq!(error(&nots), ProblemKind::TooDeep { max: 64 });
    let chain = vec!["now"; 300].join(" + ");
    assert_eq!(error(&chain), ProblemKind::TooDeep { max: 256 });
}

#[test]
fn long_chains_within_bounds_parse() {
    let chain = vec!["now"; 250].join(" || ");
    assert!(parse(&chain).expr.depth() <= 256);
    let parens = format!("{}1{}", "(".repeat(60), ")".repeat(60));
    assert!(matches!(expr(&parens), Expr::Number(_)));
}
