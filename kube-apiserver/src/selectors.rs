//! Label and field selectors as upstream kube-apiserver parses and applies them to list, watch
//! and deletecollection requests, and as controllers evaluate `metav1.LabelSelector`s.
//!
//! The grammar, the normalisation (requirements sorted by key, `in` values as a sorted set) and
//! the error texts follow apimachinery's `labels` and `fields` packages, because clients (kubectl,
//! conformance tests) show or compare those messages verbatim. Field selectors are restricted
//! per resource to the fields upstream v1.33 lets clients select on.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;
use serde_json::Value;

/// A malformed selector, or a field selector naming a field the resource does not offer.
/// Both map to 400 Bad Request; the message is upstream's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error("{0}")]
    Invalid(String),
    #[error("{message}")]
    UnsupportedField { field: String, message: String },
}

fn invalid(msg: impl Into<String>) -> SelectorError {
    SelectorError::Invalid(msg.into())
}

// ---------------------------------------------------------------------------------------------
// Validation of label keys and values (apimachinery/pkg/util/validation).
// ---------------------------------------------------------------------------------------------

const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const NAME_MAX: usize = 63;
const SUBDOMAIN_MAX: usize = 253;

fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    let mut out = format!("{msg} (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push_str(&format!("'{e}', "));
    }
    out.push_str(&format!("regex used for validation is '{fmt}')"));
    out
}

fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => {
            f.is_ascii_alphanumeric()
                && l.is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*`
fn is_dns1123_subdomain_syntax(s: &str) -> bool {
    let label_ok = |l: &str| {
        let b = l.as_bytes();
        let edge = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        match (b.first(), b.last()) {
            (Some(f), Some(e)) => edge(f) && edge(e) && b.iter().all(|c| edge(c) || *c == b'-'),
            _ => false,
        }
    };
    s.split('.').all(label_ok)
}

fn dns1123_subdomain_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > SUBDOMAIN_MAX {
        errs.push(max_len_error(SUBDOMAIN_MAX));
    }
    if !is_dns1123_subdomain_syntax(value) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// Upstream `IsQualifiedName`: the syntax of label keys.
fn qualified_name_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                errs.extend(
                    dns1123_subdomain_errors(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(QUALIFIED_NAME_ERR, QUALIFIED_NAME_FMT, &["MyName", "my.name", "123-abc"])
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > NAME_MAX {
        errs.push(format!("name part {}", max_len_error(NAME_MAX)));
    }
    if !is_qualified_name_part(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_ERR,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// Upstream `IsValidLabelValue`.
fn label_value_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > NAME_MAX {
        errs.push(max_len_error(NAME_MAX));
    }
    if !value.is_empty() && !is_qualified_name_part(value) {
        errs.push(regex_error(
            LABEL_VALUE_ERR,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// Go's `%q` for the strings that appear in messages.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `%#v` of a `[]string`, as `field.Invalid` prints a bad value list.
fn go_string_slice(values: &[String]) -> String {
    if values.is_empty() {
        return "[]string(nil)".to_string();
    }
    let items: Vec<String> = values.iter().map(|v| go_quote(v)).collect();
    format!("[]string{{{}}}", items.join(", "))
}

/// `field.Invalid(path, value, detail).Error()` for a string value.
fn field_invalid(path: &str, value: &str, detail: &str) -> String {
    format!("{path}: Invalid value: {}: {detail}", go_quote(value))
}

/// `utilerrors.NewAggregate(errs).Error()`: one message alone, several deduplicated in brackets.
fn aggregate(errs: Vec<String>) -> Option<String> {
    let mut seen: Vec<String> = Vec::new();
    for e in errs {
        if !seen.contains(&e) {
            seen.push(e);
        }
    }
    match seen.len() {
        0 => None,
        1 => seen.pop(),
        _ => Some(format!("[{}]", seen.join(", "))),
    }
}

// ---------------------------------------------------------------------------------------------
// Label selectors.
// ---------------------------------------------------------------------------------------------

/// A label requirement operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    In,
    NotIn,
    Equals,
    DoubleEquals,
    NotEquals,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

/// One ANDed term of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

impl Requirement {
    /// Build a requirement, validating key, values and arity as upstream `NewRequirement` does.
    pub fn new(key: &str, operator: Operator, values: Vec<String>) -> Result<Self, SelectorError> {
        let mut errs = Vec::new();
        let key_errs = qualified_name_errors(key);
        if !key_errs.is_empty() {
            errs.push(field_invalid("key", key, &key_errs.join("; ")));
        }
        let arity = |detail: &str| {
            format!(
                "values: Invalid value: {}: {detail}",
                go_string_slice(&values)
            )
        };
        match operator {
            Operator::In | Operator::NotIn => {
                if values.is_empty() {
                    errs.push(arity(
                        "for 'in', 'notin' operators, values set can't be empty",
                    ));
                }
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals => {
                if values.len() != 1 {
                    errs.push(arity("exact-match compatibility requires one single value"));
                }
            }
            Operator::Exists | Operator::DoesNotExist => {
                if !values.is_empty() {
                    errs.push(arity(
                        "values set must be empty for exists and does not exist",
                    ));
                }
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errs.push(arity(
                        "for 'Gt', 'Lt' operators, exactly one value is required",
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errs.push(field_invalid(
                            &format!("values[{i}]"),
                            v,
                            "for 'Gt', 'Lt' operators, the value must be an integer",
                        ));
                    }
                }
            }
        }
        for (i, v) in values.iter().enumerate() {
            let v_errs = label_value_errors(v);
            if !v_errs.is_empty() {
                errs.push(field_invalid(
                    &format!("values[{i}][{key}]"),
                    v,
                    &v_errs.join("; "),
                ));
            }
        }
        match aggregate(errs) {
            Some(msg) => Err(invalid(msg)),
            None => Ok(Self {
                key: key.to_string(),
                operator,
                values,
            }),
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn operator(&self) -> Operator {
        self.operator
    }

    pub fn values(&self) -> &[String] {
        &self.values
    }

    fn has_value(&self, v: &str) -> bool {
        self.values.iter().any(|x| x == v)
    }

    /// Whether `labels` satisfy this requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                value.is_some_and(|v| self.has_value(v))
            }
            Operator::NotIn | Operator::NotEquals => value.is_none_or(|v| !self.has_value(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(actual) = value.and_then(|v| v.parse::<i64>().ok()) else {
                    return false;
                };
                let [wanted] = self.values.as_slice() else {
                    return false;
                };
                let Ok(wanted) = wanted.parse::<i64>() else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    actual > wanted
                } else {
                    actual < wanted
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let op = match self.operator {
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => " in ",
            Operator::NotIn => " notin ",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
        };
        f.write_str(op)?;
        let set = matches!(self.operator, Operator::In | Operator::NotIn);
        if set {
            f.write_str("(")?;
        }
        let mut values = self.values.clone();
        values.sort();
        f.write_str(&values.join(","))?;
        if set {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// A parsed label selector: requirements ANDed, or the selector that matches nothing (what a
/// missing `metav1.LabelSelector` means to controllers).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
    nothing: bool,
}

impl LabelSelector {
    /// Matches every object.
    pub fn everything() -> Self {
        Self::default()
    }

    /// Matches no object.
    pub fn nothing() -> Self {
        Self {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// Parse the `labelSelector` query syntax; "" (or blanks) selects everything.
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        let tokens = lex(selector);
        let mut requirements = Parser { tokens, pos: 0 }.parse()?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Self {
            requirements,
            nothing: false,
        })
    }

    /// Convert a `metav1.LabelSelector` (matchLabels and matchExpressions ANDed); an empty one
    /// selects everything.
    pub fn from_label_selector(ls: &metav1::LabelSelector) -> Result<Self, SelectorError> {
        let mut requirements = Vec::new();
        for (k, v) in ls.match_labels.iter().flatten() {
            requirements.push(Requirement::new(k, Operator::Equals, vec![v.clone()])?);
        }
        for expr in ls.match_expressions.iter().flatten() {
            let op = match expr.operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => {
                    return Err(invalid(format!(
                        "{} is not a valid label selector operator",
                        go_quote(other)
                    )));
                }
            };
            let values = expr.values.clone().unwrap_or_default();
            requirements.push(Requirement::new(&expr.key, op, values)?);
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Self {
            requirements,
            nothing: false,
        })
    }

    /// Like [`Self::from_label_selector`], but a missing selector matches nothing.
    pub fn from_optional(ls: Option<&metav1::LabelSelector>) -> Result<Self, SelectorError> {
        match ls {
            Some(ls) => Self::from_label_selector(ls),
            None => Ok(Self::nothing()),
        }
    }

    /// True for the selector that matches everything.
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether a label set satisfies every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Apply the selector to an object's `metadata.labels` (absent labels are an empty set).
    pub fn matches_value(&self, obj: &Value) -> bool {
        self.matches(&labels_of(obj))
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.requirements.iter().map(|r| r.to_string()).collect();
        f.write_str(&parts.join(","))
    }
}

impl std::str::FromStr for LabelSelector {
    type Err = SelectorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// `metadata.labels` of a JSON object; non-string values are ignored.
pub fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Identifier,
    DoesNotExist,
    Equals,
    DoubleEquals,
    NotEquals,
    GreaterThan,
    LessThan,
    In,
    NotIn,
    OpenPar,
    ClosedPar,
    Comma,
    End,
}

fn is_special(c: u8) -> bool {
    matches!(c, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

fn is_blank(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn literal_token(s: &str) -> Option<Token> {
    Some(match s {
        ")" => Token::ClosedPar,
        "," => Token::Comma,
        "!" => Token::DoesNotExist,
        "==" => Token::DoubleEquals,
        "=" => Token::Equals,
        ">" => Token::GreaterThan,
        "in" => Token::In,
        "<" => Token::LessThan,
        "!=" => Token::NotEquals,
        "notin" => Token::NotIn,
        "(" => Token::OpenPar,
        _ => return None,
    })
}

/// Split a label selector into tokens the way upstream's lexer does: runs of special symbols
/// take the longest known operator, everything else up to a blank or symbol is an identifier.
/// A NUL byte ends the input, as in upstream.
fn lex(s: &str) -> Vec<(Token, &str)> {
    let b = s.as_bytes();
    let at = |i: usize| if i < b.len() { b[i] } else { 0 };
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while is_blank(at(i)) {
            i += 1;
        }
        let c = at(i);
        if c == 0 {
            out.push((Token::End, ""));
            return out;
        }
        let start = i;
        if is_special(c) {
            let mut best: Option<(Token, usize)> = None;
            while is_special(at(i)) {
                i += 1;
                match literal_token(&s[start..i]) {
                    Some(t) => best = Some((t, i)),
                    None if best.is_some() => break,
                    None => {}
                }
            }
            // Every single symbol is a token, so `best` is always set here.
            let (tok, end) = best.unwrap_or((Token::Identifier, i));
            i = end;
            out.push((tok, &s[start..end]));
        } else {
            while at(i) != 0 && !is_special(at(i)) && !is_blank(at(i)) {
                i += 1;
            }
            let word = &s[start..i];
            let tok = match literal_token(word) {
                Some(t @ (Token::In | Token::NotIn)) => t,
                _ => Token::Identifier,
            };
            out.push((tok, word));
        }
    }
}

/// Where a token is read: in values `in`/`notin` are plain identifiers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    KeyAndOperator,
    Values,
}

struct Parser<'a> {
    tokens: Vec<(Token, &'a str)>,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn item(&self, idx: usize, ctx: Ctx) -> (Token, &'a str) {
        let (tok, lit) = self.tokens.get(idx).cloned().unwrap_or((Token::End, ""));
        match tok {
            Token::In | Token::NotIn if ctx == Ctx::Values => (Token::Identifier, lit),
            t => (t, lit),
        }
    }

    fn lookahead(&self, ctx: Ctx) -> (Token, &'a str) {
        self.item(self.pos, ctx)
    }

    fn consume(&mut self, ctx: Ctx) -> (Token, &'a str) {
        let item = self.item(self.pos, ctx);
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        item
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, SelectorError> {
        let mut requirements = Vec::new();
        loop {
            let (tok, lit) = self.lookahead(Ctx::Values);
            match tok {
                Token::Identifier | Token::DoesNotExist => {
                    let r = self
                        .parse_requirement()
                        .map_err(|e| invalid(format!("unable to parse requirement: {e}")))?;
                    requirements.push(r);
                    let (t, l) = self.consume(Ctx::Values);
                    match t {
                        Token::End => return Ok(requirements),
                        Token::Comma => {
                            let (t2, l2) = self.lookahead(Ctx::Values);
                            if t2 != Token::Identifier && t2 != Token::DoesNotExist {
                                return Err(invalid(format!(
                                    "found '{l2}', expected: identifier after ','"
                                )));
                            }
                        }
                        _ => {
                            return Err(invalid(format!(
                                "found '{l}', expected: ',' or 'end of string'"
                            )));
                        }
                    }
                }
                Token::End => return Ok(requirements),
                _ => {
                    return Err(invalid(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    )));
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, SelectorError> {
        let (key, inferred) = self.parse_key_and_infer_operator()?;
        if let Some(op) = inferred {
            return Requirement::new(key, op, Vec::new());
        }
        let op = self.parse_operator()?;
        let values = match op {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        Requirement::new(key, op, values)
    }

    fn parse_key_and_infer_operator(
        &mut self,
    ) -> Result<(&'a str, Option<Operator>), SelectorError> {
        let mut op = None;
        let (mut tok, mut lit) = self.consume(Ctx::Values);
        if tok == Token::DoesNotExist {
            op = Some(Operator::DoesNotExist);
            (tok, lit) = self.consume(Ctx::Values);
        }
        if tok != Token::Identifier {
            return Err(invalid(format!("found '{lit}', expected: identifier")));
        }
        let errs = qualified_name_errors(lit);
        if !errs.is_empty() {
            return Err(invalid(field_invalid("<nil>", lit, &errs.join("; "))));
        }
        let (next, _) = self.lookahead(Ctx::Values);
        if (next == Token::End || next == Token::Comma) && op.is_none() {
            op = Some(Operator::Exists);
        }
        Ok((lit, op))
    }

    fn parse_operator(&mut self) -> Result<Operator, SelectorError> {
        let (tok, lit) = self.consume(Ctx::KeyAndOperator);
        Ok(match tok {
            Token::In => Operator::In,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            _ => {
                return Err(invalid(format!(
                    "found '{lit}', expected: in, notin, =, ==, !=, gt, lt"
                )));
            }
        })
    }

    fn parse_values(&mut self) -> Result<Vec<String>, SelectorError> {
        let (tok, lit) = self.consume(Ctx::Values);
        if tok != Token::OpenPar {
            return Err(invalid(format!("found '{lit}' expected: '('")));
        }
        let (tok, lit) = self.lookahead(Ctx::Values);
        match tok {
            Token::Identifier | Token::Comma => {
                let set = self.parse_identifiers_list()?;
                let (tok, _) = self.consume(Ctx::Values);
                if tok != Token::ClosedPar {
                    return Err(invalid(format!("found '{lit}', expected: ')'")));
                }
                Ok(set)
            }
            Token::ClosedPar => {
                self.consume(Ctx::Values);
                Ok(vec![String::new()])
            }
            _ => Err(invalid(format!(
                "found '{lit}', expected: ',', ')' or identifier"
            ))),
        }
    }

    /// The values inside parentheses, as a sorted set; empty items count as "".
    fn parse_identifiers_list(&mut self) -> Result<Vec<String>, SelectorError> {
        let mut set = std::collections::BTreeSet::new();
        loop {
            let (tok, lit) = self.consume(Ctx::Values);
            match tok {
                Token::Identifier => {
                    set.insert(lit.to_string());
                    let (tok2, lit2) = self.lookahead(Ctx::Values);
                    match tok2 {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(set.into_iter().collect()),
                        _ => {
                            return Err(invalid(format!("found '{lit2}', expected: ',' or ')'")));
                        }
                    }
                }
                Token::Comma => {
                    if set.is_empty() {
                        set.insert(String::new());
                    }
                    let (tok2, _) = self.lookahead(Ctx::Values);
                    if tok2 == Token::ClosedPar {
                        set.insert(String::new());
                        return Ok(set.into_iter().collect());
                    }
                    if tok2 == Token::Comma {
                        self.consume(Ctx::Values);
                        set.insert(String::new());
                    }
                }
                _ => {
                    return Err(invalid(format!(
                        "found '{lit}', expected: ',', or identifier"
                    )));
                }
            }
        }
    }

    fn parse_exact_value(&mut self) -> Result<Vec<String>, SelectorError> {
        let (tok, _) = self.lookahead(Ctx::Values);
        if tok == Token::End || tok == Token::Comma {
            return Ok(vec![String::new()]);
        }
        let (tok, lit) = self.consume(Ctx::Values);
        if tok == Token::Identifier {
            return Ok(vec![lit.to_string()]);
        }
        Err(invalid(format!("found '{lit}', expected: identifier")))
    }
}

// ---------------------------------------------------------------------------------------------
// Field selectors.
// ---------------------------------------------------------------------------------------------

/// A field requirement operator; `==` parses as [`FieldOperator::Equals`], as upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldOperator {
    Equals,
    NotEquals,
}

/// One ANDed term of a field selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub operator: FieldOperator,
    pub value: String,
}

impl FieldRequirement {
    fn matches(&self, fields: &BTreeMap<String, String>) -> bool {
        let actual = fields.get(&self.field).map(String::as_str).unwrap_or("");
        match self.operator {
            FieldOperator::Equals => actual == self.value,
            FieldOperator::NotEquals => actual != self.value,
        }
    }
}

impl fmt::Display for FieldRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.operator {
            FieldOperator::Equals => "=",
            FieldOperator::NotEquals => "!=",
        };
        write!(f, "{}{op}{}", self.field, escape_field_value(&self.value))
    }
}

/// A parsed field selector: terms ANDed, sorted as upstream sorts them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    terms: Vec<FieldRequirement>,
}

/// Escape `\`, `,` and `=` in a field selector value.
pub fn escape_field_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Undo [`escape_field_value`]; unknown escapes and bare `,`/`=` are errors, as upstream.
fn unescape_field_value(s: &str) -> Result<String, SelectorError> {
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            if matches!(c, '\\' | ',' | '=') {
                out.push(c);
            } else {
                return Err(invalid(format!("invalid escape sequence: \\{c}")));
            }
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            // Go prints the rune with %v, i.e. its code point.
            ',' | '=' => {
                return Err(invalid(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                )));
            }
            c => out.push(c),
        }
    }
    if in_slash {
        return Err(invalid("invalid escape sequence: \\"));
    }
    Ok(out)
}

/// Split on commas not escaped by a backslash.
fn split_field_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in s.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&s[start..i]);
            start = i + 1;
        }
    }
    terms.push(&s[start..]);
    terms
}

/// The first `!=`, `==` or `=` in a term splits it; operators are tried in that order at each
/// position, as upstream does.
fn split_field_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (op, kind) in [
            ("!=", FieldOperator::NotEquals),
            ("==", FieldOperator::Equals),
            ("=", FieldOperator::Equals),
        ] {
            if rest.starts_with(op) {
                return Some((&term[..i], kind, &term[i + op.len()..]));
            }
        }
    }
    None
}

impl FieldSelector {
    /// Matches every object.
    pub fn everything() -> Self {
        Self::default()
    }

    /// Parse the `fieldSelector` query syntax (no whitespace trimming, as upstream).
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        let mut parts = split_field_terms(selector);
        parts.sort_unstable();
        let mut terms = Vec::new();
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let Some((field, operator, raw)) = split_field_term(part) else {
                return Err(invalid(format!(
                    "invalid selector: '{selector}'; can't understand '{part}'"
                )));
            };
            terms.push(FieldRequirement {
                field: field.to_string(),
                operator,
                value: unescape_field_value(raw)?,
            });
        }
        Ok(Self { terms })
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The terms, so callers can check which fields are used.
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.terms
    }

    /// Whether a field set satisfies every term; absent fields read as "".
    pub fn matches(&self, fields: &BTreeMap<String, String>) -> bool {
        self.terms.iter().all(|t| t.matches(fields))
    }

    /// Whether an object of `group`/`plural` satisfies the selector (see [`field_set`]).
    pub fn matches_object(&self, group: &str, plural: &str, obj: &Value) -> bool {
        self.is_empty() || self.matches(&field_set(group, plural, obj))
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.terms.iter().map(|t| t.to_string()).collect();
        f.write_str(&parts.join(","))
    }
}

impl std::str::FromStr for FieldSelector {
    type Err = SelectorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// How a resource words the rejection of an unknown field label.
#[derive(Clone, Copy)]
enum Rejection {
    /// `field label not supported: <label>` (kinds with their own conversion function).
    NotSupported,
    /// The default for kinds selectable by metadata only.
    NotKnown,
    /// batch/v1 Job's own wording.
    Job,
}

const META_ONLY: &[&str] = &["metadata.name", "metadata.namespace"];
const POD_FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.podIPs",
    "status.nominatedNodeName",
];
const CORE_EVENT_FIELDS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
    "metadata.namespace",
    "metadata.name",
];
const EVENTS_V1_FIELDS: &[&str] = &[
    "reason",
    "regarding.kind",
    "regarding.namespace",
    "regarding.name",
    "regarding.uid",
    "regarding.apiVersion",
    "regarding.resourceVersion",
    "regarding.fieldPath",
    "reportingController",
    "type",
    "metadata.namespace",
    "metadata.name",
];

/// Selectable field labels, legacy aliases and rejection wording per resource.
fn field_rules(
    group: &str,
    plural: &str,
) -> (
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
    Rejection,
) {
    use Rejection::*;
    match (group, plural) {
        ("", "pods") => (POD_FIELDS, &[("spec.host", "spec.nodeName")], NotSupported),
        ("", "nodes") => (&["metadata.name", "spec.unschedulable"], &[], NotSupported),
        ("", "replicationcontrollers") => (
            &["metadata.name", "metadata.namespace", "status.replicas"],
            &[],
            NotSupported,
        ),
        ("", "events") => (CORE_EVENT_FIELDS, &[], NotSupported),
        ("", "namespaces") => (&["status.phase", "metadata.name"], &[], NotSupported),
        ("", "secrets") => (
            &["type", "metadata.namespace", "metadata.name"],
            &[],
            NotSupported,
        ),
        ("", "services") => (
            &[
                "metadata.namespace",
                "metadata.name",
                "spec.clusterIP",
                "spec.type",
            ],
            &[],
            NotSupported,
        ),
        ("batch", "jobs") => (
            &["metadata.name", "metadata.namespace", "status.successful"],
            &[],
            Job,
        ),
        ("certificates.k8s.io", "certificatesigningrequests") => {
            (&["metadata.name", "spec.signerName"], &[], NotSupported)
        }
        ("events.k8s.io", "events") => (EVENTS_V1_FIELDS, &[], NotSupported),
        _ => (META_ONLY, &[], NotKnown),
    }
}

/// The field labels a client may select on for `group`/`plural` (without legacy aliases).
pub fn supported_fields(group: &str, plural: &str) -> &'static [&'static str] {
    field_rules(group, plural).0
}

/// Validate a field selector against what `group`/`plural` supports and rewrite legacy labels
/// (pods' `spec.host` becomes `spec.nodeName`), as upstream's field label conversion does.
pub fn convert_field_selector(
    sel: &FieldSelector,
    group: &str,
    plural: &str,
) -> Result<FieldSelector, SelectorError> {
    let (allowed, aliases, rejection) = field_rules(group, plural);
    let mut terms = Vec::with_capacity(sel.terms.len());
    for term in &sel.terms {
        let field = if allowed.contains(&term.field.as_str()) {
            term.field.clone()
        } else if let Some((_, to)) = aliases.iter().find(|(from, _)| *from == term.field) {
            to.to_string()
        } else {
            let message = match rejection {
                Rejection::NotSupported => format!("field label not supported: {}", term.field),
                Rejection::NotKnown => format!(
                    "{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
                    go_quote(&term.field)
                ),
                Rejection::Job => {
                    format!(
                        "field label {} not supported for Job",
                        go_quote(&term.field)
                    )
                }
            };
            return Err(SelectorError::UnsupportedField {
                field: term.field.clone(),
                message,
            });
        };
        terms.push(FieldRequirement {
            field,
            ..term.clone()
        });
    }
    Ok(FieldSelector { terms })
}

/// Reject a selector naming a field `group`/`plural` cannot be selected on.
pub fn check_supported(
    sel: &FieldSelector,
    group: &str,
    plural: &str,
) -> Result<(), SelectorError> {
    convert_field_selector(sel, group, plural).map(|_| ())
}

fn str_at(obj: &Value, pointer: &str) -> String {
    match obj.pointer(pointer) {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    }
}

fn bool_at(obj: &Value, pointer: &str) -> String {
    obj.pointer(pointer)
        .and_then(Value::as_bool)
        .unwrap_or(false)
        .to_string()
}

fn int_at(obj: &Value, pointer: &str) -> String {
    obj.pointer(pointer)
        .and_then(Value::as_i64)
        .unwrap_or(0)
        .to_string()
}

/// The first pointer that holds a non-empty string.
fn first_str(obj: &Value, pointers: &[&str]) -> String {
    pointers
        .iter()
        .map(|p| str_at(obj, p))
        .find(|s| !s.is_empty())
        .unwrap_or_default()
}

const OBJECT_REFERENCE_FIELDS: &[(&str, &str)] = &[
    ("kind", "kind"),
    ("namespace", "namespace"),
    ("name", "name"),
    ("uid", "uid"),
    ("apiVersion", "apiVersion"),
    ("resourceVersion", "resourceVersion"),
    ("fieldPath", "fieldPath"),
];

/// Whether objects of `group`/`plural` live in namespaces; unknown resources (custom ones)
/// are judged by the object itself.
fn is_namespaced(group: &str, plural: &str, obj: &Value) -> bool {
    match crate::resources::all()
        .iter()
        .find(|r| r.group == group && r.plural == plural)
    {
        Some(r) => r.namespaced,
        None => obj.pointer("/metadata/namespace").is_some(),
    }
}

/// The selectable fields of an object, as upstream computes them for `group`/`plural`:
/// `metadata.name`, `metadata.namespace` for namespaced resources, plus the resource's own
/// fields. Absent string fields read as "", absent booleans as "false", absent counts as "0".
/// Event objects are read in either their core or events.k8s.io shape.
pub fn field_set(group: &str, plural: &str, obj: &Value) -> BTreeMap<String, String> {
    let mut set = BTreeMap::new();
    set.insert("metadata.name".to_string(), str_at(obj, "/metadata/name"));
    if is_namespaced(group, plural, obj) {
        set.insert(
            "metadata.namespace".to_string(),
            str_at(obj, "/metadata/namespace"),
        );
    }
    let mut put = |k: &str, v: String| {
        set.insert(k.to_string(), v);
    };
    match (group, plural) {
        ("", "pods") => {
            put("spec.nodeName", str_at(obj, "/spec/nodeName"));
            put("spec.restartPolicy", str_at(obj, "/spec/restartPolicy"));
            put("spec.schedulerName", str_at(obj, "/spec/schedulerName"));
            put(
                "spec.serviceAccountName",
                str_at(obj, "/spec/serviceAccountName"),
            );
            put("spec.hostNetwork", bool_at(obj, "/spec/hostNetwork"));
            put("status.phase", str_at(obj, "/status/phase"));
            // Upstream reads the first of status.podIPs, which v1 fills from status.podIP.
            put(
                "status.podIP",
                first_str(obj, &["/status/podIPs/0/ip", "/status/podIP"]),
            );
            put(
                "status.nominatedNodeName",
                str_at(obj, "/status/nominatedNodeName"),
            );
        }
        ("", "nodes") => put("spec.unschedulable", bool_at(obj, "/spec/unschedulable")),
        ("", "replicationcontrollers") | ("apps", "replicasets") => {
            put("status.replicas", int_at(obj, "/status/replicas"));
        }
        ("", "namespaces") => put("status.phase", str_at(obj, "/status/phase")),
        ("", "secrets") => put("type", str_at(obj, "/type")),
        ("", "services") => {
            put("spec.clusterIP", str_at(obj, "/spec/clusterIP"));
            put("spec.type", str_at(obj, "/spec/type"));
        }
        ("batch", "jobs") => put("status.successful", int_at(obj, "/status/succeeded")),
        ("certificates.k8s.io", "certificatesigningrequests") => {
            put("spec.signerName", str_at(obj, "/spec/signerName"));
        }
        ("", "events") => {
            for (label, json) in OBJECT_REFERENCE_FIELDS {
                put(
                    &format!("involvedObject.{label}"),
                    first_str(
                        obj,
                        &[
                            &format!("/involvedObject/{json}"),
                            &format!("/regarding/{json}"),
                        ],
                    ),
                );
            }
            put("reason", str_at(obj, "/reason"));
            put("type", str_at(obj, "/type"));
            let controller = first_str(obj, &["/reportingComponent", "/reportingController"]);
            let source = first_str(obj, &["/source/component", "/deprecatedSource/component"]);
            put(
                "source",
                if source.is_empty() {
                    controller.clone()
                } else {
                    source
                },
            );
            put("reportingComponent", controller);
        }
        ("events.k8s.io", "events") => {
            for (label, json) in OBJECT_REFERENCE_FIELDS {
                put(
                    &format!("regarding.{label}"),
                    first_str(
                        obj,
                        &[
                            &format!("/regarding/{json}"),
                            &format!("/involvedObject/{json}"),
                        ],
                    ),
                );
            }
            put("reason", str_at(obj, "/reason"));
            put("type", str_at(obj, "/type"));
            put(
                "reportingController",
                first_str(obj, &["/reportingController", "/reportingComponent"]),
            );
        }
        _ => {}
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn parse_err(s: &str) -> String {
        LabelSelector::parse(s).expect_err(s).to_string()
    }

    fn sel(s: &str) -> LabelSelector {
        LabelSelector::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    const NAME_PART_REGEX: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    const VALUE_REGEX: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

    #[test]
    fn label_parse_operators() {
        let cases: &[(&str, Operator, &[&str])] = &[
            ("a=b", Operator::Equals, &["b"]),
            ("a==b", Operator::DoubleEquals, &["b"]),
            ("a!=b", Operator::NotEquals, &["b"]),
            ("a in (y,x)", Operator::In, &["x", "y"]),
            ("a notin (x)", Operator::NotIn, &["x"]),
            ("a", Operator::Exists, &[]),
            ("!a", Operator::DoesNotExist, &[]),
            ("a>5", Operator::GreaterThan, &["5"]),
            ("a<5", Operator::LessThan, &["5"]),
            ("a=", Operator::Equals, &[""]),
            ("a in ()", Operator::In, &[""]),
            ("a in (,)", Operator::In, &[""]),
            ("a in (x,,y)", Operator::In, &["", "x", "y"]),
            ("a in (x,x)", Operator::In, &["x"]),
        ];
        for (s, op, values) in cases {
            let parsed = sel(s);
            let [r] = parsed.requirements() else {
                panic!("{s}: {:?}", parsed.requirements());
            };
            assert_eq!(r.key(), "a", "{s}");
            assert_eq!(r.operator(), *op, "{s}");
            assert_eq!(r.values(), *values, "{s}");
        }
    }

    #[test]
    fn label_parse_whitespace_keywords_and_order() {
        let parsed = sel("  z = 1 ,\tb in ( x , y ),!c,in in (in),notin notin (notin) ");
        let keys: Vec<&str> = parsed.requirements().iter().map(|r| r.key()).collect();
        assert_eq!(keys, ["b", "c", "in", "notin", "z"]);
        assert_eq!(
            parsed.to_string(),
            "b in (x,y),!c,in in (in),notin notin (notin),z=1"
        );
        assert!(sel("").is_empty());
        assert!(sel("   ").is_empty());
        assert!(!sel("a").is_empty());
        assert_eq!(
            sel("example.com/app-name=v1.2_3").requirements()[0].key(),
            "example.com/app-name"
        );
        // A NUL byte ends the input, as upstream's lexer reads it.
        assert_eq!(sel("a\0b=c").requirements().len(), 1);
    }

    #[test]
    fn label_parse_errors() {
        assert_eq!(
            parse_err(",a"),
            "found ',', expected: !, identifier, or 'end of string'"
        );
        assert_eq!(parse_err("a,"), "found '', expected: identifier after ','");
        assert_eq!(
            parse_err("a=b=c"),
            "found '=', expected: ',' or 'end of string'"
        );
        assert_eq!(
            parse_err("!a=b"),
            "found '=', expected: ',' or 'end of string'"
        );
        assert_eq!(
            parse_err("a b"),
            "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"
        );
        assert_eq!(
            parse_err("!"),
            "unable to parse requirement: found '', expected: identifier"
        );
        assert_eq!(
            parse_err("a in b"),
            "unable to parse requirement: found 'b' expected: '('"
        );
        assert_eq!(
            parse_err("a in (b"),
            "unable to parse requirement: found '', expected: ',' or ')'"
        );
        assert_eq!(
            parse_err("a in (b c)"),
            "unable to parse requirement: found 'c', expected: ',' or ')'"
        );
        assert_eq!(
            parse_err("a in (="),
            "unable to parse requirement: found '=', expected: ',', ')' or identifier"
        );
        assert_eq!(
            parse_err("a=(b)"),
            "unable to parse requirement: found '(', expected: identifier"
        );
        assert_eq!(
            parse_err("a$b=c"),
            format!(
                "unable to parse requirement: <nil>: Invalid value: \"a$b\": {NAME_PART_REGEX}"
            )
        );
        assert_eq!(
            parse_err("a=b$"),
            format!(
                "unable to parse requirement: values[0][a]: Invalid value: \"b$\": {VALUE_REGEX}"
            )
        );
        assert_eq!(
            parse_err("a>b"),
            "unable to parse requirement: values[0]: Invalid value: \"b\": for 'Gt', 'Lt' operators, the value must be an integer"
        );
        assert_eq!(
            parse_err("a<b$"),
            format!(
                "unable to parse requirement: [values[0]: Invalid value: \"b$\": for 'Gt', 'Lt' operators, the value must be an integer, values[0][a]: Invalid value: \"b$\": {VALUE_REGEX}]"
            )
        );
    }

    #[test]
    fn label_key_and_value_validation() {
        let long = "a".repeat(64);
        assert_eq!(
            parse_err(&long),
            format!(
                "unable to parse requirement: <nil>: Invalid value: \"{long}\": name part must be no more than 63 characters"
            )
        );
        assert!(LabelSelector::parse(&"a".repeat(63)).is_ok());
        assert_eq!(
            parse_err("/a"),
            "unable to parse requirement: <nil>: Invalid value: \"/a\": prefix part must be non-empty"
        );
        assert_eq!(
            parse_err("a/"),
            format!(
                "unable to parse requirement: <nil>: Invalid value: \"a/\": name part must be non-empty; {NAME_PART_REGEX}"
            )
        );
        assert_eq!(
            parse_err("Example.com/a"),
            "unable to parse requirement: <nil>: Invalid value: \"Example.com/a\": prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        );
        assert!(parse_err("a/b/c").contains("a qualified name must consist of"));
        assert!(parse_err("-a").contains("name part must consist"));
        assert!(parse_err("a.").contains("name part must consist"));
        assert!(LabelSelector::parse("a.b_c-d").is_ok());
        assert!(LabelSelector::parse(&format!("a={}", "v".repeat(63))).is_ok());
        assert_eq!(
            parse_err(&format!("a={}", "v".repeat(64))),
            format!(
                "unable to parse requirement: values[0][a]: Invalid value: \"{}\": must be no more than 63 characters",
                "v".repeat(64)
            )
        );
        assert!(parse_err("a in (ok,-bad)").contains("values[0][a]: Invalid value: \"-bad\""));
    }

    #[test]
    fn label_matching() {
        let l = labels(&[("app", "web"), ("tier", "front"), ("n", "7")]);
        let yes = [
            "",
            "app=web",
            "app==web",
            "app!=db",
            "missing!=x",
            "app in (web,db)",
            "app notin (db)",
            "missing notin (x)",
            "app",
            "!missing",
            "app=web,tier=front",
            "n>6",
            "n<8",
        ];
        for s in yes {
            assert!(sel(s).matches(&l), "{s} should match");
        }
        let no = [
            "app=db",
            "missing=",
            "app!=web",
            "app in (db)",
            "missing in (x)",
            "app notin (web)",
            "missing",
            "!app",
            "app=web,tier=back",
            "n>7",
            "n<7",
            "app>1",
            "missing>1",
        ];
        for s in no {
            assert!(!sel(s).matches(&l), "{s} should not match");
        }
        assert!(sel("a=").matches(&labels(&[("a", "")])));
        assert!(!sel("a=").matches(&labels(&[])));
    }

    #[test]
    fn label_matches_value_reads_metadata_labels() {
        let obj = json!({"metadata": {"name": "x", "labels": {"app": "web", "bad": 3}}});
        assert!(sel("app=web").matches_value(&obj));
        assert!(sel("!bad").matches_value(&obj));
        assert!(!sel("app=db").matches_value(&obj));
        let bare = json!({"metadata": {"name": "x"}});
        assert!(sel("!app").matches_value(&bare));
        assert!(!sel("app").matches_value(&bare));
        assert!(sel("").matches_value(&json!(null)));
    }

    #[test]
    fn from_metav1_label_selector() {
        let ls: metav1::LabelSelector = serde_json::from_value(json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["front", "edge"]},
                {"key": "env", "operator": "NotIn", "values": ["prod"]},
                {"key": "owner", "operator": "Exists"},
                {"key": "legacy", "operator": "DoesNotExist"}
            ]
        }))
        .expect("label selector");
        let s = LabelSelector::from_label_selector(&ls).expect("valid");
        assert_eq!(s.requirements().len(), 5);
        let good = labels(&[("app", "web"), ("tier", "edge"), ("owner", "me")]);
        assert!(s.matches(&good));
        let mut bad = good.clone();
        bad.insert("legacy".into(), "1".into());
        assert!(!s.matches(&bad));
        let mut bad = good.clone();
        bad.insert("env".into(), "prod".into());
        assert!(!s.matches(&bad));

        let empty = metav1::LabelSelector::default();
        let everything = LabelSelector::from_label_selector(&empty).expect("empty");
        assert!(everything.is_empty() && everything.matches(&labels(&[])));
        let nothing = LabelSelector::from_optional(None).expect("none");
        assert!(!nothing.is_empty() && !nothing.matches(&labels(&[])));
        assert!(!LabelSelector::nothing().matches_value(&json!({"metadata": {}})));
    }

    #[test]
    fn from_metav1_label_selector_errors() {
        let expr = |op: &str, values: Option<Vec<&str>>| metav1::LabelSelector {
            match_expressions: Some(vec![metav1::LabelSelectorRequirement {
                key: "k".into(),
                operator: op.into(),
                values: values.map(|v| v.into_iter().map(String::from).collect()),
            }]),
            match_labels: None,
        };
        let err = |ls: metav1::LabelSelector| {
            LabelSelector::from_label_selector(&ls)
                .expect_err("invalid")
                .to_string()
        };
        assert_eq!(
            err(expr("Foo", None)),
            "\"Foo\" is not a valid label selector operator"
        );
        assert_eq!(
            err(expr("In", None)),
            "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty"
        );
        assert_eq!(
            err(expr("Exists", Some(vec!["a"]))),
            "values: Invalid value: []string{\"a\"}: values set must be empty for exists and does not exist"
        );
        let bad_key = metav1::LabelSelector {
            match_labels: Some([("bad key".to_string(), "v".to_string())].into()),
            match_expressions: None,
        };
        assert_eq!(
            err(bad_key),
            format!("key: Invalid value: \"bad key\": {NAME_PART_REGEX}")
        );
    }

    fn fsel(s: &str) -> FieldSelector {
        FieldSelector::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn field_parse() {
        let s = fsel("spec.nodeName=n1,status.phase!=Running,metadata.name==x");
        let terms: Vec<(&str, FieldOperator, &str)> = s
            .requirements()
            .iter()
            .map(|t| (t.field.as_str(), t.operator, t.value.as_str()))
            .collect();
        assert_eq!(
            terms,
            [
                ("metadata.name", FieldOperator::Equals, "x"),
                ("spec.nodeName", FieldOperator::Equals, "n1"),
                ("status.phase", FieldOperator::NotEquals, "Running"),
            ]
        );
        assert_eq!(
            s.to_string(),
            "metadata.name=x,spec.nodeName=n1,status.phase!=Running"
        );
        assert!(fsel("").is_empty());
        assert!(fsel(",,").is_empty());
        assert_eq!(fsel("a=").requirements()[0].value, "");
        // No trimming: blanks are part of the label and value.
        assert_eq!(fsel("a = b").requirements()[0].field, "a ");
        assert_eq!(fsel("a = b").requirements()[0].value, " b");
    }

    #[test]
    fn field_parse_escapes() {
        let s = fsel(r"metadata.name=a\,b\=c\\d,type=x");
        assert_eq!(s.requirements()[0].value, r"a,b=c\d");
        assert_eq!(s.requirements()[1].value, "x");
        assert_eq!(s.to_string(), r"metadata.name=a\,b\=c\\d,type=x");
        assert_eq!(escape_field_value(r"a,b=c\"), r"a\,b\=c\\");
        assert_eq!(
            FieldSelector::parse(r"a=b\x")
                .expect_err("bad escape")
                .to_string(),
            r"invalid escape sequence: \x"
        );
        assert_eq!(
            FieldSelector::parse(r"a=b\")
                .expect_err("trailing")
                .to_string(),
            r"invalid escape sequence: \"
        );
        assert_eq!(
            FieldSelector::parse("a=b=c")
                .expect_err("bare =")
                .to_string(),
            "invalid field selector: unescaped character in value: 61"
        );
        assert_eq!(
            FieldSelector::parse("a=b,c")
                .expect_err("no op")
                .to_string(),
            "invalid selector: 'a=b,c'; can't understand 'c'"
        );
        // `!=` wins over `=` only where it starts first.
        let parsed = fsel("a!=b");
        let t = &parsed.requirements()[0];
        assert_eq!(
            (t.field.as_str(), t.operator),
            ("a", FieldOperator::NotEquals)
        );
    }

    #[test]
    fn field_matching() {
        let fields: BTreeMap<String, String> = [
            ("metadata.name".to_string(), "p".to_string()),
            ("status.phase".to_string(), "Running".to_string()),
        ]
        .into();
        assert!(fsel("").matches(&fields));
        assert!(fsel("metadata.name=p").matches(&fields));
        assert!(fsel("metadata.name=p,status.phase!=Pending").matches(&fields));
        assert!(!fsel("metadata.name=q").matches(&fields));
        assert!(!fsel("status.phase!=Running").matches(&fields));
        // Absent fields read as "".
        assert!(fsel("spec.nodeName=").matches(&fields));
        assert!(!fsel("spec.nodeName!=").matches(&fields));
    }

    #[test]
    fn field_support_and_messages() {
        let check = |s: &str, g: &str, p: &str| check_supported(&fsel(s), g, p);
        assert!(check("spec.nodeName=n,status.podIP=1.2.3.4", "", "pods").is_ok());
        assert!(check("metadata.namespace=x", "apps", "deployments").is_ok());
        assert_eq!(
            check("spec.foo=x", "", "pods")
                .expect_err("pods")
                .to_string(),
            "field label not supported: spec.foo"
        );
        assert_eq!(
            check("metadata.namespace=x", "", "nodes")
                .expect_err("nodes")
                .to_string(),
            "field label not supported: metadata.namespace"
        );
        assert_eq!(
            check("spec.replicas=1", "apps", "deployments")
                .expect_err("deploy")
                .to_string(),
            "\"spec.replicas\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
        );
        // Upstream registers no field label conversion for apps/v1 ReplicaSet.
        assert!(check("status.replicas=1", "apps", "replicasets").is_err());
        assert!(check("status.replicas=1", "", "replicationcontrollers").is_ok());
        assert_eq!(
            check("status.failed=1", "batch", "jobs")
                .expect_err("jobs")
                .to_string(),
            "field label \"status.failed\" not supported for Job"
        );
        assert!(check("status.successful=1", "batch", "jobs").is_ok());
        assert!(check("involvedObject.name=p,source=kubelet", "", "events").is_ok());
        assert!(check("regarding.name=p", "", "events").is_err());
        assert!(
            check(
                "regarding.name=p,reportingController=c",
                "events.k8s.io",
                "events"
            )
            .is_ok()
        );
        assert!(check("involvedObject.name=p", "events.k8s.io", "events").is_err());
        assert!(
            check(
                "spec.signerName=x",
                "certificates.k8s.io",
                "certificatesigningrequests"
            )
            .is_ok()
        );
        assert!(check("spec.clusterIP=None,spec.type=ClusterIP", "", "services").is_ok());
        assert!(check("type=Opaque", "", "secrets").is_ok());
        assert!(check("status.phase=Active", "", "namespaces").is_ok());
        assert!(check("metadata.namespace=x", "", "namespaces").is_err());
        match check("bogus=1", "", "configmaps") {
            Err(SelectorError::UnsupportedField { field, .. }) => assert_eq!(field, "bogus"),
            other => panic!("{other:?}"),
        }
        assert!(supported_fields("", "pods").contains(&"spec.hostNetwork"));

        // The legacy pods label is rewritten.
        let converted = convert_field_selector(&fsel("spec.host=n1"), "", "pods").expect("alias");
        assert_eq!(converted.requirements()[0].field, "spec.nodeName");
    }

    #[test]
    fn pod_field_set() {
        let pod = json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"nodeName": "n1", "restartPolicy": "Always", "schedulerName": "default-scheduler",
                     "serviceAccountName": "sa", "hostNetwork": true},
            "status": {"phase": "Running", "podIP": "10.0.0.9", "podIPs": [{"ip": "10.0.0.1"}]}
        });
        let f = field_set("", "pods", &pod);
        assert_eq!(f["metadata.name"], "p");
        assert_eq!(f["metadata.namespace"], "ns");
        assert_eq!(f["spec.nodeName"], "n1");
        assert_eq!(f["spec.restartPolicy"], "Always");
        assert_eq!(f["spec.schedulerName"], "default-scheduler");
        assert_eq!(f["spec.serviceAccountName"], "sa");
        assert_eq!(f["spec.hostNetwork"], "true");
        assert_eq!(f["status.phase"], "Running");
        assert_eq!(f["status.podIP"], "10.0.0.1");
        assert_eq!(f["status.nominatedNodeName"], "");

        let bare = field_set("", "pods", &json!({"metadata": {"name": "q"}}));
        assert_eq!(bare["spec.hostNetwork"], "false");
        assert_eq!(bare["spec.nodeName"], "");
        assert_eq!(bare["metadata.namespace"], "");
        let only_ip = json!({"metadata": {"name": "q"}, "status": {"podIP": "10.1.1.1"}});
        assert_eq!(field_set("", "pods", &only_ip)["status.podIP"], "10.1.1.1");

        // The usual kubelet query: pods bound to this node.
        let kubelet = convert_field_selector(&fsel("spec.host=n1"), "", "pods").expect("alias");
        assert!(kubelet.matches_object("", "pods", &pod));
        assert!(!fsel("spec.nodeName=n2").matches_object("", "pods", &pod));
        assert!(fsel("spec.nodeName=").matches_object("", "pods", &json!({"metadata": {}})));
    }

    #[test]
    fn other_field_sets() {
        let node = json!({"metadata": {"name": "n"}, "spec": {"unschedulable": true}});
        let f = field_set("", "nodes", &node);
        assert_eq!(f["spec.unschedulable"], "true");
        assert!(!f.contains_key("metadata.namespace"));
        assert_eq!(
            field_set("", "nodes", &json!({"metadata": {"name": "n"}}))["spec.unschedulable"],
            "false"
        );

        let rc = json!({"metadata": {"name": "r", "namespace": "d"}, "status": {"replicas": 3}});
        assert_eq!(
            field_set("", "replicationcontrollers", &rc)["status.replicas"],
            "3"
        );
        assert_eq!(
            field_set("apps", "replicasets", &json!({"metadata": {}}))["status.replicas"],
            "0"
        );
        let job = json!({"metadata": {"name": "j"}, "status": {"succeeded": 2}});
        assert_eq!(field_set("batch", "jobs", &job)["status.successful"], "2");
        let secret = json!({"metadata": {"name": "s"}, "type": "kubernetes.io/tls"});
        assert_eq!(
            field_set("", "secrets", &secret)["type"],
            "kubernetes.io/tls"
        );
        let ns = json!({"metadata": {"name": "x"}, "status": {"phase": "Terminating"}});
        let f = field_set("", "namespaces", &ns);
        assert_eq!(f["status.phase"], "Terminating");
        assert!(!f.contains_key("metadata.namespace"));
        let svc =
            json!({"metadata": {"name": "s"}, "spec": {"clusterIP": "None", "type": "ClusterIP"}});
        let f = field_set("", "services", &svc);
        assert_eq!(
            (f["spec.clusterIP"].as_str(), f["spec.type"].as_str()),
            ("None", "ClusterIP")
        );
        let csr = json!({"metadata": {"name": "c"}, "spec": {"signerName": "kubernetes.io/kubelet-serving"}});
        assert_eq!(
            field_set("certificates.k8s.io", "certificatesigningrequests", &csr)["spec.signerName"],
            "kubernetes.io/kubelet-serving"
        );
        // Resources outside the table (custom ones) are judged by their metadata.
        let cr = json!({"metadata": {"name": "w", "namespace": "d"}});
        assert_eq!(
            field_set("example.com", "widgets", &cr)["metadata.namespace"],
            "d"
        );
        let cm = json!({"metadata": {"name": "c", "namespace": "d"}, "data": {"k": "v"}});
        assert_eq!(field_set("", "configmaps", &cm).len(), 2);
    }

    #[test]
    fn event_field_sets() {
        let core = json!({
            "metadata": {"name": "e", "namespace": "d"},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "d", "uid": "u1",
                               "apiVersion": "v1", "resourceVersion": "5", "fieldPath": "spec"},
            "reason": "Started", "type": "Normal", "source": {"component": "kubelet"},
            "reportingComponent": "kubelet-x"
        });
        let f = field_set("", "events", &core);
        assert_eq!(f["involvedObject.kind"], "Pod");
        assert_eq!(f["involvedObject.name"], "p");
        assert_eq!(f["involvedObject.uid"], "u1");
        assert_eq!(f["involvedObject.apiVersion"], "v1");
        assert_eq!(f["involvedObject.resourceVersion"], "5");
        assert_eq!(f["involvedObject.fieldPath"], "spec");
        assert_eq!(f["reason"], "Started");
        assert_eq!(f["type"], "Normal");
        assert_eq!(f["source"], "kubelet");
        assert_eq!(f["reportingComponent"], "kubelet-x");
        assert!(fsel("involvedObject.name=p,involvedObject.namespace=d").matches(&f));

        // Source falls back to the reporting controller, as upstream.
        let no_source = json!({"metadata": {"name": "e"}, "reportingComponent": "sched"});
        assert_eq!(field_set("", "events", &no_source)["source"], "sched");

        let v1 = json!({
            "metadata": {"name": "e", "namespace": "d"},
            "regarding": {"kind": "Node", "name": "n1"},
            "reason": "Ready", "type": "Normal", "reportingController": "kubelet"
        });
        let f = field_set("events.k8s.io", "events", &v1);
        assert_eq!(f["regarding.kind"], "Node");
        assert_eq!(f["regarding.name"], "n1");
        assert_eq!(f["regarding.uid"], "");
        assert_eq!(f["reportingController"], "kubelet");
        // Either shape is understood by either resource.
        assert_eq!(field_set("", "events", &v1)["involvedObject.name"], "n1");
        assert_eq!(
            field_set("events.k8s.io", "events", &core)["regarding.name"],
            "p"
        );
    }
}
