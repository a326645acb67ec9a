//! Values rendered as upstream's field errors print them (Go's `%v`/`%#v` of the internal
//! types), so `Invalid value: ...` messages read exactly as from a real API server.

use serde_json::Value;

/// Go's `%q` of a string (`strconv.Quote`): printable characters as they are, the rest as
/// Go escapes them (`\n`, `\x01`, `\u00a0`, ...).
pub fn quote(s: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if is_print(c) => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// Go's `unicode.IsPrint`, closely enough: no controls, no spaces but ' ', no format or
/// private-use characters.
fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    let n = c as u32;
    !(c.is_control()
        || c.is_whitespace()
        || matches!(n, 0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x180e | 0x200b..=0x200f | 0x202a..=0x202e
            | 0x2060..=0x206f | 0xfeff | 0xfff9..=0xfffb | 0xe000..=0xf8ff | 0xf0000..=0x10ffff))
}

/// `%#v` of a `map[string]string` (keys sorted, as Go prints maps); `nil` when absent.
pub fn string_map(v: &Value) -> String {
    match v.as_object() {
        None => "map[string]string(nil)".into(),
        Some(m) => {
            let entries: Vec<String> =
                m.iter().map(|(k, v)| format!("{}:{}", quote(k), quote(v.as_str().unwrap_or("")))).collect();
            format!("map[string]string{{{}}}", entries.join(", "))
        }
    }
}

fn string_slice(v: &Value) -> String {
    match v.as_array() {
        None => "[]string(nil)".into(),
        Some(a) => {
            let items: Vec<String> = a.iter().map(|x| quote(x.as_str().unwrap_or(""))).collect();
            format!("[]string{{{}}}", items.join(", "))
        }
    }
}

/// `%#v` of a `metav1.LabelSelector` value.
pub fn label_selector(v: &Value) -> String {
    if v.is_null() {
        // A nil pointer prints as the string "null", quoted.
        return "\"null\"".into();
    }
    let exprs = match v["matchExpressions"].as_array() {
        None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
        Some(a) => {
            let items: Vec<String> = a
                .iter()
                .map(|e| {
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{}}}",
                        quote(e["key"].as_str().unwrap_or("")),
                        quote(e["operator"].as_str().unwrap_or("")),
                        string_slice(&e["values"])
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
        }
    };
    format!("v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{}}}", string_map(&v["matchLabels"]), exprs)
}

/// `%#v` of an `intstr.IntOrString` value.
pub fn int_or_string(v: &Value) -> String {
    match v {
        Value::String(s) => format!("intstr.IntOrString{{Type:1, IntVal:0, StrVal:{}}}", quote(s)),
        other => format!("intstr.IntOrString{{Type:0, IntVal:{}, StrVal:\"\"}}", other.as_i64().unwrap_or(0)),
    }
}

/// `%v` of a JSON value that upstream holds as a Go scalar (numbers and bools bare, strings
/// quoted); a missing one is a nil pointer, which field errors print as the string "null".
pub fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "\"null\"".into(),
        Value::String(s) => quote(s),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_like_go() {
        assert_eq!(string_map(&json!({"b": "2", "a": "1"})), r#"map[string]string{"a":"1", "b":"2"}"#);
        assert_eq!(string_map(&Value::Null), "map[string]string(nil)");
        assert_eq!(
            label_selector(&json!({"matchLabels": {"app": "web2"}})),
            r#"v1.LabelSelector{MatchLabels:map[string]string{"app":"web2"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"#
        );
        assert_eq!(
            label_selector(&json!({"matchExpressions": [{"key": "a", "operator": "In", "values": ["x"]}]})),
            r#"v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:"a", Operator:"In", Values:[]string{"x"}}}}"#
        );
        assert_eq!(int_or_string(&json!("25%")), r#"intstr.IntOrString{Type:1, IntVal:0, StrVal:"25%"}"#);
        assert_eq!(int_or_string(&json!(0)), r#"intstr.IntOrString{Type:0, IntVal:0, StrVal:""}"#);
        assert_eq!(scalar(&json!(5)), "5");
        assert_eq!(scalar(&Value::Null), "\"null\"");
        assert_eq!(scalar(&json!("x")), "\"x\"");
        assert_eq!(label_selector(&Value::Null), "\"null\"");
        assert_eq!(quote("a\"b\\c\n\u{1}\u{7f}é\u{a0}\u{200b}\u{1F600}"), r#""a\"b\\c\n\x01\x7fé\u00a0\u200b😀""#);
    }
}
