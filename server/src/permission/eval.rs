//! Evaluates a parsed rule for one request.
//!
//! Records behave as in deepstream 7.0: a record that `_()` or `oldData` needs and the
//! [`Lookups`] do not have yet reads as `undefined` and is added to the list of needed
//! records, and evaluation goes on. If the rule then throws (for example by reading a
//! property of that `undefined`) or finishes while records are missing, the result is
//! [`Decision::NeedRecords`] instead of a decision, and the caller evaluates again once
//! they are loaded.

use std::borrow::Cow;
use std::cell::{OnceCell, RefCell};
use std::cmp::Ordering;
use std::rc::Rc;

use deepstream_protocol::json_path::JsonPath;
use serde_json::Value as Json;

use super::ast::{BinaryOperator, Expr, LogicalOperator, Property, UnaryOperator, Variable};
use super::error::RuleError;
use super::methods;
use super::parser::ParsedRule;
use super::value::{
    Value, add, array_index, compare, loose_equals, number_to_string, strict_equals,
};
use super::{Decision, Lookups, MessageData, Request};

/// The reasons an expression can produce no value.
#[derive(Debug)]
pub(super) enum Failure {
    /// A `?.` met `null` or `undefined`, so the enclosing optional chain is `undefined`.
    ShortCircuit,
    /// An exception JavaScript would throw, such as reading a property of `undefined`.
    /// It denies the action unless records are still loading, in which case the rule
    /// runs again once they are loaded.
    Thrown(String),
    /// A failure that ends the check at once, as deepstream's direct rule errors do:
    /// invalid message data, a bad `_()` argument, a patch of a missing record.
    Fatal(RuleError),
}

/// The result of evaluating an expression.
pub(super) type Outcome<'e> = Result<Value<'e>, Failure>;

/// The message data once parsed, or why it could not be.
type LoadedData = Result<Json, RuleError>;

/// Evaluates `rule` once. `captures` are the texts of the pattern's capture groups in
/// the request's name.
pub(super) fn evaluate(
    rule: &ParsedRule,
    request: &Request<'_>,
    lookups: &Lookups,
    captures: &[Option<&str>],
) -> Decision {
    let data = OnceCell::new();
    let evaluator = Evaluator {
        request,
        lookups,
        captures,
        data: &data,
        pending: RefCell::new(Vec::new()),
    };
    // deepstream starts loading the record for `oldData` before the rule runs, whether
    // or not the evaluation reaches `oldData`.
    if rule.reads_old_data && !lookups.contains(request.name) {
        evaluator.request_record(request.name);
    }

    let result = evaluator.eval(&rule.expr);
    let pending = evaluator.pending.into_inner();
    match result {
        Err(Failure::Fatal(error)) => Decision::Error(error),
        _ if !pending.is_empty() => Decision::NeedRecords(pending),
        Err(Failure::Thrown(message)) => Decision::Error(RuleError::Evaluation(message)),
        // Every `?.` is inside an optional chain, which turns this into `undefined`.
        Err(Failure::ShortCircuit) => Decision::Deny,
        Ok(value) if value.is_truthy() => Decision::Allow,
        Ok(_) => Decision::Deny,
    }
}

struct Evaluator<'e> {
    request: &'e Request<'e>,
    lookups: &'e Lookups,
    captures: &'e [Option<&'e str>],
    data: &'e OnceCell<LoadedData>,
    /// Records needed but not in the lookups, in the order they were first needed.
    pending: RefCell<Vec<String>>,
}

impl<'e> Evaluator<'e> {
    fn eval(&self, expr: &'e Expr) -> Outcome<'e> {
        match expr {
            Expr::Undefined => Ok(Value::Undefined),
            Expr::Null => Ok(Value::Null),
            Expr::Bool(value) => Ok(Value::Bool(*value)),
            Expr::Number(number) => Ok(Value::Number(*number)),
            Expr::String(text) => Ok(Value::String(Cow::Borrowed(text))),
            Expr::Regex(regex) => Ok(Value::Regex(regex)),
            Expr::Array(items) => {
                let values = items
                    .iter()
                    .map(|item| self.eval(item))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Value::Array(Rc::new(values)))
            }
            Expr::Variable(variable) => self.variable(*variable),
            Expr::Member {
                object,
                property,
                optional,
            } => self.member(object, property, *optional),
            Expr::CrossReference(argument) => {
                let name = self.eval(argument)?;
                self.cross_reference(name)
            }
            Expr::MethodCall {
                object,
                method,
                arguments,
                optional,
            } => {
                let receiver = self.eval(object)?;
                if receiver.is_nullish() {
                    if *optional {
                        return Err(Failure::ShortCircuit);
                    }
                    return Err(read_of_nullish(&receiver, method.name()));
                }
                // Methods take at most two arguments. Later ones are evaluated and
                // ignored, as in JavaScript.
                let mut values = [Value::Undefined, Value::Undefined];
                for (index, argument) in arguments.iter().enumerate() {
                    let value = self.eval(argument)?;
                    if let Some(slot) = values.get_mut(index) {
                        *slot = value;
                    }
                }
                methods::call(&receiver, *method, &values)
            }
            Expr::Unary { operator, operand } => {
                let operand = self.eval(operand)?;
                Ok(unary(*operator, &operand))
            }
            Expr::Binary {
                operator,
                left,
                right,
            } => {
                let left = self.eval(left)?;
                let right = self.eval(right)?;
                Ok(binary(*operator, &left, &right))
            }
            Expr::Logical {
                operator,
                left,
                right,
            } => {
                let left = self.eval(left)?;
                let take_left = match operator {
                    LogicalOperator::And => !left.is_truthy(),
                    LogicalOperator::Or => left.is_truthy(),
                    LogicalOperator::Coalesce => !left.is_nullish(),
                };
                if take_left {
                    Ok(left)
                } else {
                    self.eval(right)
                }
            }
            Expr::Conditional {
                condition,
                then,
                otherwise,
            } => {
                if self.eval(condition)?.is_truthy() {
                    self.eval(then)
                } else {
                    self.eval(otherwise)
                }
            }
            Expr::OptionalChain(chain) => match self.eval(chain) {
                Err(Failure::ShortCircuit) => Ok(Value::Undefined),
                other => other,
            },
        }
    }

    fn variable(&self, variable: Variable) -> Outcome<'e> {
        let request = self.request;
        Ok(match variable {
            Variable::User => Value::User,
            Variable::Data => return self.data(),
            Variable::OldData => self.record(request.name).unwrap_or(Value::Undefined),
            Variable::Now => Value::Number(request.now_ms as f64),
            Variable::Action => Value::Number(f64::from(request.message_action)),
            Variable::Name => Value::String(Cow::Borrowed(request.name)),
            Variable::Capture(index) => match self.captures.get(index).copied().flatten() {
                Some(text) => Value::String(Cow::Borrowed(text)),
                None => Value::Undefined,
            },
        })
    }

    fn member(&self, object: &'e Expr, property: &'e Property, optional: bool) -> Outcome<'e> {
        let object = self.eval(object)?;
        if optional && object.is_nullish() {
            return Err(Failure::ShortCircuit);
        }
        let key = match property {
            Property::Named(name) => Cow::Borrowed(&**name),
            Property::Computed(key) => property_key(&self.eval(key)?),
        };
        self.property(&object, &key)
    }

    /// Reads `object[key]`.
    fn property(&self, object: &Value<'e>, key: &str) -> Outcome<'e> {
        Ok(match object {
            Value::Undefined | Value::Null => return Err(read_of_nullish(object, key)),
            Value::String(text) => string_property(text, key),
            Value::Json(json) => match *json {
                Json::Object(map) => map.get(key).map_or(Value::Undefined, Value::from_json),
                Json::Array(items) => {
                    array_property(items.len(), key, |index| Value::from_json(&items[index]))
                }
                _ => Value::Undefined,
            },
            Value::Array(items) => array_property(items.len(), key, |index| items[index].clone()),
            Value::User => self.user_property(key),
            Value::Bool(_) | Value::Number(_) | Value::Regex(_) => Value::Undefined,
        })
    }

    fn user_property(&self, key: &str) -> Value<'e> {
        let user = &self.request.user;
        match key {
            "id" => Value::String(Cow::Borrowed(user.id)),
            "isAuthenticated" => Value::Bool(user.id != "open"),
            "data" => user.data.map_or(Value::Null, Value::from_json),
            _ => Value::Undefined,
        }
    }

    /// Returns the message data, parsing it on first use.
    fn data(&self) -> Outcome<'e> {
        let loaded = match self.request.data {
            MessageData::Absent => return Ok(Value::Undefined),
            MessageData::Parsed(json) => return Ok(Value::from_json(json)),
            MessageData::Json(bytes) => self.data.get_or_init(|| parse_data(bytes)),
            MessageData::Patch { path, value } => {
                let name = self.request.name;
                let Some(current) = self.lookups.get(name) else {
                    self.request_record(name);
                    return Ok(Value::Undefined);
                };
                self.data
                    .get_or_init(|| apply_patch(current, path, value, name))
            }
        };
        match loaded {
            Ok(json) => Ok(Value::from_json(json)),
            Err(error) => Err(Failure::Fatal(error.clone())),
        }
    }

    /// Evaluates `_(name)` with deepstream's rules for its argument.
    fn cross_reference(&self, argument: Value<'e>) -> Outcome<'e> {
        let name = match argument {
            Value::Undefined => return Ok(Value::Undefined),
            Value::String(name) => name,
            other => {
                return Err(Failure::Fatal(RuleError::InvalidCrossReference {
                    found: other.type_of(),
                }));
            }
        };
        // deepstream does not load a name containing "undefined", which is usually
        // a missing property joined into the name, and reads it as `undefined`.
        if name.contains("undefined") {
            return Ok(Value::Undefined);
        }
        match self.record(&name) {
            Some(value) => Ok(value),
            None => {
                self.request_record(&name);
                Ok(Value::Undefined)
            }
        }
    }

    /// Returns a loaded record as a value (`null` when it does not exist), or `None`
    /// when it has not been loaded.
    fn record(&self, name: &str) -> Option<Value<'e>> {
        self.lookups
            .get(name)
            .map(|record| record.map_or(Value::Null, Value::from_json))
    }

    fn request_record(&self, name: &str) {
        let mut pending = self.pending.borrow_mut();
        if !pending.iter().any(|pending| pending == name) {
            pending.push(name.to_owned());
        }
    }
}

fn parse_data(bytes: &[u8]) -> Result<Json, RuleError> {
    serde_json::from_slice(bytes).map_err(|error| RuleError::InvalidData(error.to_string()))
}

/// Builds the data a rule reads for a patch: the current record with the patch applied.
fn apply_patch(
    current: Option<&Json>,
    path: &JsonPath,
    value: &[u8],
    name: &str,
) -> Result<Json, RuleError> {
    let value = parse_data(value)?;
    let Some(current) = current else {
        return Err(RuleError::PatchOfMissingRecord(name.to_owned()));
    };
    let mut patched = current.clone();
    path.set(&mut patched, value)?;
    Ok(patched)
}

/// Builds the error JavaScript throws for `object.key` when `object` is `null` or
/// `undefined`.
fn read_of_nullish(object: &Value<'_>, key: &str) -> Failure {
    Failure::Thrown(format!(
        "cannot read property `{key}` of {}",
        object.describe()
    ))
}

/// Converts a value to a property name, as JavaScript's `ToPropertyKey` does.
fn property_key<'e>(key: &Value<'e>) -> Cow<'e, str> {
    match key {
        Value::String(text) => text.clone(),
        Value::Number(number) => Cow::Owned(number_to_string(*number)),
        other => other.to_js_string(),
    }
}

fn string_property<'e>(text: &str, key: &str) -> Value<'e> {
    if key == "length" {
        return Value::Number(methods::utf16_length(text) as f64);
    }
    match array_index(key) {
        Some(index) if index < methods::utf16_length(text) => {
            Value::String(Cow::Owned(methods::utf16_slice(text, index, index + 1)))
        }
        _ => Value::Undefined,
    }
}

fn array_property<'e>(length: usize, key: &str, element: impl Fn(usize) -> Value<'e>) -> Value<'e> {
    if key == "length" {
        return Value::Number(length as f64);
    }
    match array_index(key) {
        Some(index) if index < length => element(index),
        _ => Value::Undefined,
    }
}

fn unary<'e>(operator: UnaryOperator, operand: &Value<'e>) -> Value<'e> {
    match operator {
        UnaryOperator::Not => Value::Bool(!operand.is_truthy()),
        UnaryOperator::Negate => Value::Number(-operand.to_number()),
        UnaryOperator::Plus => Value::Number(operand.to_number()),
        UnaryOperator::TypeOf => Value::String(Cow::Borrowed(operand.type_of())),
    }
}

fn binary<'e>(operator: BinaryOperator, left: &Value<'e>, right: &Value<'e>) -> Value<'e> {
    let ordering = || compare(left, right);
    match operator {
        BinaryOperator::Add => add(left, right),
        BinaryOperator::Subtract
        | BinaryOperator::Multiply
        | BinaryOperator::Divide
        | BinaryOperator::Remainder => arithmetic(operator, left.to_number(), right.to_number()),
        BinaryOperator::Less => Value::Bool(ordering() == Some(Ordering::Less)),
        BinaryOperator::LessEqual => {
            Value::Bool(matches!(ordering(), Some(Ordering::Less | Ordering::Equal)))
        }
        BinaryOperator::Greater => Value::Bool(ordering() == Some(Ordering::Greater)),
        BinaryOperator::GreaterEqual => Value::Bool(matches!(
            ordering(),
            Some(Ordering::Greater | Ordering::Equal)
        )),
        BinaryOperator::LooseEqual => Value::Bool(loose_equals(left, right)),
        BinaryOperator::LooseNotEqual => Value::Bool(!loose_equals(left, right)),
        BinaryOperator::StrictEqual => Value::Bool(strict_equals(left, right)),
        BinaryOperator::StrictNotEqual => Value::Bool(!strict_equals(left, right)),
    }
}

fn arithmetic<'e>(operator: BinaryOperator, left: f64, right: f64) -> Value<'e> {
    Value::Number(match operator {
        BinaryOperator::Subtract => left - right,
        BinaryOperator::Multiply => left * right,
        BinaryOperator::Divide => left / right,
        // Rust's `%` on floats truncates like C's fmod, which is JavaScript's `%`.
        _ => left % right,
    })
}
