//! Generates the protobuf schema table used by `src/protobuf` to decode Kubernetes protobuf
//! request bodies into Kubernetes JSON.
//!
//! Three real sources are joined, none typed by hand:
//! - the prost-generated structs of the `k8s-pb` crate: field tags, wire types, repeated/map
//!   labels and message types (the `generated.proto` files of Kubernetes);
//! - `src/protobuf/go_json_fields.tsv`, extracted from the reflection data of kubectl 1.33 by
//!   `hack/extract-go-json-fields.py`: for each Go API struct field, its JSON name, `omitempty`
//!   and whether it is a pointer (the wire format cannot tell a zero pointer from a zero value);
//! - the k8s-openapi `v1_33` sources: JSON property names and required-ness, used for the types
//!   kubectl does not link (apiextensions, apiregistration) and to check the Go data.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Scalar kinds k8s-pb uses.
#[derive(Clone, Copy, Debug)]
enum Scalar {
    String,
    Bytes,
    Bool,
    Int32,
    Int64,
    Double,
}

#[derive(Clone, Debug)]
enum Ty {
    Scalar(Scalar),
    /// Key of the referenced message ("api.core.v1.Pod").
    Message(String),
}

#[derive(Clone, Debug)]
enum Label {
    Single,
    Repeated,
    /// Map with string keys; the field's `ty` is the value type.
    Map,
}

#[derive(Debug)]
struct PbField {
    tag: u32,
    /// prost field name without `r#`.
    rust_name: String,
    ty: Ty,
    label: Label,
}

#[derive(Debug)]
struct PbMessage {
    /// Module path segments, e.g. ["api", "core", "v1"].
    module: Vec<String>,
    /// prost struct name (CamelCase, e.g. "CsiDriver").
    name: String,
    fields: Vec<PbField>,
}

/// One Go struct field from the kubectl extraction.
struct GoField {
    json: String,
    omitempty: bool,
    pointer: bool,
}

/// One k8s-openapi property.
struct OaField {
    json: String,
    required: bool,
}

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let go_tsv = manifest_dir.join("src/protobuf/go_json_fields.tsv");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={}", go_tsv.display());
    // A k8s-pb or k8s-openapi version change shows up in the workspace lock file.
    let lock = manifest_dir.join("../Cargo.lock");
    if lock.exists() {
        println!("cargo:rerun-if-changed={}", lock.display());
    }

    let (pb_root, oa_root) = locate_sources(&manifest_dir);
    let mut messages = Vec::new();
    let mut api_versions = Vec::new();
    parse_pb_dir(
        &pb_root.join("src"),
        &mut Vec::new(),
        &mut messages,
        &mut api_versions,
    );
    messages.sort_by_key(key);
    assert!(
        messages.len() > 500,
        "k8s-pb parse found only {} messages",
        messages.len()
    );

    let go = parse_go_tsv(&go_tsv);
    let oa_versions: Vec<_> = ["v1_33", "v1_34", "v1_35", "v1_36", "v1_37"]
        .iter()
        .map(|v| parse_openapi(&oa_root.join("src").join(v)))
        .collect();

    let out = generate(&messages, &api_versions, &go, &oa_versions);
    let out_path = PathBuf::from(env("OUT_DIR")).join("proto_schema.rs");
    std::fs::write(&out_path, out).expect("write proto_schema.rs");
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} not set"))
}

/// Finds the source directories of `k8s-pb` and `k8s-openapi` through `cargo metadata`.
fn locate_sources(manifest_dir: &Path) -> (PathBuf, PathBuf) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(manifest_dir.join("Cargo.toml"))
        .output()
        .expect("run cargo metadata");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let meta: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("cargo metadata output");
    let find = |name: &str, version_prefix: &str| -> PathBuf {
        meta["packages"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| {
                p["name"] == name
                    && p["version"]
                        .as_str()
                        .is_some_and(|v| v.starts_with(version_prefix))
            })
            .and_then(|p| p["manifest_path"].as_str())
            .map(|m| Path::new(m).parent().expect("manifest dir").to_path_buf())
            .unwrap_or_else(|| panic!("package {name} {version_prefix} not in cargo metadata"))
    };
    (find("k8s-pb", "0.9."), find("k8s-openapi", "0.29."))
}

fn key(m: &PbMessage) -> String {
    format!("{}.{}", m.module.join("."), m.name)
}

/// Walks a k8s-pb source directory; every `mod.rs` holds one proto package.
fn parse_pb_dir(
    dir: &Path,
    module: &mut Vec<String>,
    out: &mut Vec<PbMessage>,
    api_versions: &mut Vec<(Vec<String>, String)>,
) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read k8s-pb dir")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            module.push(path.file_name().unwrap().to_string_lossy().into_owned());
            parse_pb_dir(&path, module, out, api_versions);
            module.pop();
        } else if path.file_name().is_some_and(|n| n == "mod.rs") && !module.is_empty() {
            let src = std::fs::read_to_string(&path).expect("read k8s-pb module");
            let file = syn::parse_file(&src).expect("parse k8s-pb module");
            parse_pb_items(&file.items, module, out, api_versions);
        }
    }
}

fn parse_pb_items(
    items: &[syn::Item],
    module: &[String],
    out: &mut Vec<PbMessage>,
    api_versions: &mut Vec<(Vec<String>, String)>,
) {
    for item in items {
        match item {
            syn::Item::Struct(s) => {
                let syn::Fields::Named(named) = &s.fields else {
                    continue;
                };
                let mut fields = Vec::new();
                for f in &named.named {
                    if let Some(field) = parse_pb_field(f, module) {
                        fields.push(field);
                    }
                }
                let is_message = s.attrs.iter().any(|a| {
                    a.path().is_ident("derive") && quote_tokens(&a.meta).contains("Message")
                });
                if is_message {
                    fields.sort_by_key(|f| f.tag);
                    out.push(PbMessage {
                        module: module.to_vec(),
                        name: s.ident.to_string(),
                        fields,
                    });
                }
            }
            syn::Item::Impl(imp) => {
                let Some((_, trait_path, _)) = &imp.trait_ else {
                    continue;
                };
                if trait_path
                    .segments
                    .last()
                    .is_none_or(|s| s.ident != "Resource")
                {
                    continue;
                }
                for it in &imp.items {
                    if let syn::ImplItem::Const(c) = it
                        && c.ident == "API_VERSION"
                        && let syn::Expr::Lit(syn::ExprLit {
                            lit: syn::Lit::Str(s),
                            ..
                        }) = &c.expr
                    {
                        let entry = (module.to_vec(), s.value());
                        if !api_versions.contains(&entry) {
                            api_versions.push(entry);
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

fn quote_tokens(meta: &syn::Meta) -> String {
    match meta {
        syn::Meta::List(l) => l.tokens.to_string(),
        _ => String::new(),
    }
}

/// Reads one `#[prost(...)]` field.
fn parse_pb_field(f: &syn::Field, module: &[String]) -> Option<PbField> {
    let attr = f.attrs.iter().find(|a| a.path().is_ident("prost"))?;
    let mut kind: Option<String> = None;
    let mut repeated = false;
    let mut map: Option<String> = None;
    let mut tag: Option<u32> = None;
    attr.parse_nested_meta(|meta| {
        let ident = meta
            .path
            .get_ident()
            .map(|i| i.to_string())
            .unwrap_or_default();
        match ident.as_str() {
            "tag" => {
                let v: syn::LitStr = meta.value()?.parse()?;
                tag = Some(v.value().parse().expect("numeric tag"));
            }
            "btree_map" | "map" | "hash_map" => {
                let v: syn::LitStr = meta.value()?.parse()?;
                map = Some(v.value());
            }
            "repeated" => repeated = true,
            "optional" | "boxed" | "required" => {}
            "packed" => {
                let _: syn::LitStr = meta.value()?.parse()?;
            }
            "bytes" => {
                if meta.input.peek(syn::Token![=]) {
                    let _: syn::LitStr = meta.value()?.parse()?;
                }
                kind = Some("bytes".into());
            }
            other => kind = Some(other.to_string()),
        }
        Ok(())
    })
    .expect("parse prost attribute");
    let tag = tag.expect("prost field without tag");
    let rust_name = f
        .ident
        .as_ref()
        .expect("named field")
        .to_string()
        .trim_start_matches("r#")
        .to_string();
    let scalar = |k: &str| -> Option<Scalar> {
        Some(match k {
            "string" => Scalar::String,
            "bytes" => Scalar::Bytes,
            "bool" => Scalar::Bool,
            "int32" => Scalar::Int32,
            "int64" => Scalar::Int64,
            "double" => Scalar::Double,
            _ => return None,
        })
    };
    let message_ty = || Ty::Message(resolve_type(&innermost_type(&f.ty), module));
    if let Some(spec) = map {
        let (k, v) = spec.split_once(',').expect("map spec");
        assert_eq!(k.trim(), "string", "non-string map key in {rust_name}");
        let vty = match v.trim() {
            "message" => message_ty(),
            other => Ty::Scalar(scalar(other).unwrap_or_else(|| panic!("map value {other}"))),
        };
        return Some(PbField {
            tag,
            rust_name,
            ty: vty,
            label: Label::Map,
        });
    }
    let kind = kind.expect("prost field kind");
    let ty = if kind == "message" {
        message_ty()
    } else {
        Ty::Scalar(scalar(&kind).unwrap_or_else(|| panic!("unsupported prost kind {kind}")))
    };
    Some(PbField {
        tag,
        rust_name,
        ty,
        label: if repeated {
            Label::Repeated
        } else {
            Label::Single
        },
    })
}

/// The message path inside `Option<..>`, `Box<..>`, `Vec<..>` or `BTreeMap<String, ..>`.
fn innermost_type(ty: &syn::Type) -> syn::Path {
    let syn::Type::Path(p) = ty else {
        panic!("unexpected field type")
    };
    let last = p.path.segments.last().expect("type segment");
    let wrapper = matches!(
        last.ident.to_string().as_str(),
        "Option" | "Box" | "Vec" | "BTreeMap" | "HashMap"
    );
    if wrapper && let syn::PathArguments::AngleBracketed(args) = &last.arguments {
        let inner = args
            .args
            .iter()
            .filter_map(|a| match a {
                syn::GenericArgument::Type(t) => Some(t),
                _ => None,
            })
            .last()
            .expect("generic type argument");
        return innermost_type(inner);
    }
    p.path.clone()
}

/// Resolves a `super::super::x::Y` path relative to `module` into a message key.
fn resolve_type(path: &syn::Path, module: &[String]) -> String {
    let mut base = module.to_vec();
    let segs: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    let mut rest = Vec::new();
    for s in segs {
        if s == "super" && rest.is_empty() {
            base.pop();
        } else {
            rest.push(s);
        }
    }
    base.extend(rest);
    base.join(".")
}

/// go package path -> struct name -> protobuf tag -> field.
type GoTable = HashMap<String, HashMap<String, HashMap<u32, GoField>>>;

fn parse_go_tsv(path: &Path) -> GoTable {
    let text = std::fs::read_to_string(path).expect("read go_json_fields.tsv");
    let mut table: GoTable = HashMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), 6, "bad go_json_fields.tsv line: {line}");
        let tag: u32 = cols[2].parse().expect("protobuf tag");
        table
            .entry(cols[0].to_string())
            .or_default()
            .entry(cols[1].to_string())
            .or_default()
            .insert(
                tag,
                GoField {
                    json: cols[3].to_string(),
                    omitempty: cols[4] == "omitempty",
                    pointer: cols[5] == "ptr",
                },
            );
    }
    table
}

/// definition name ("io.k8s.api.core.v1.ServiceSpec") -> properties.
type OaTable = HashMap<String, Vec<OaField>>;

fn parse_openapi(dir: &Path) -> OaTable {
    let mut table = OaTable::new();
    if dir.is_dir() {
        walk_openapi(dir, &mut table);
    }
    table
}

fn walk_openapi(dir: &Path, table: &mut OaTable) {
    for entry in std::fs::read_dir(dir).expect("read k8s-openapi dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            walk_openapi(&path, table);
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let src = std::fs::read_to_string(&path).expect("read k8s-openapi file");
        let Some(def) = src
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("// Generated from definition "))
        else {
            continue;
        };
        // Rust field name -> required (not an Option).
        let mut required = HashMap::new();
        for line in src.lines() {
            let t = line.trim();
            if let Some(rest) = t.strip_prefix("pub ")
                && let Some((name, ty)) = rest.split_once(": ")
                && !name.contains(' ')
                && !line.starts_with("pub")
            {
                required.insert(name.to_string(), !ty.starts_with("Option<"));
            }
        }
        let mut fields = Vec::new();
        for line in src.lines() {
            let t = line.trim();
            if let Some((json, rest)) = t.split_once("\" => Field::Key_")
                && let Some(json) = json.strip_prefix('"')
            {
                let rust = rest.trim_end_matches(',');
                fields.push(OaField {
                    json: json.to_string(),
                    required: required.get(rust).copied().unwrap_or(false),
                });
            }
        }
        table.insert(def.to_string(), fields);
    }
}

/// Lower-case alphanumerics only: how prost and k8s-openapi names are compared.
fn norm(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// "apiextensions_apiserver" -> "apiextensions-apiserver" for Go and OpenAPI names.
fn repo_segment(s: &str) -> String {
    s.replace('_', "-")
}

fn go_package(module: &[String]) -> String {
    let mut parts = vec![repo_segment(&module[0])];
    parts.extend(module[1..].iter().cloned());
    format!("k8s.io/{}", parts.join("/"))
}

fn openapi_prefix(module: &[String]) -> String {
    let mut parts = vec![repo_segment(&module[0])];
    parts.extend(module[1..].iter().cloned());
    format!("io.k8s.{}.", parts.join("."))
}

fn lower_camel(snake: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Special JSON forms, by lower-cased message key.
fn special_of(key: &str) -> &'static str {
    match key.to_ascii_lowercase().as_str() {
        "apimachinery.pkg.apis.meta.v1.time" => "Time",
        "apimachinery.pkg.apis.meta.v1.microtime" => "MicroTime",
        "apimachinery.pkg.apis.meta.v1.duration" => "Duration",
        "apimachinery.pkg.api.resource.quantity" => "Quantity",
        "apimachinery.pkg.util.intstr.intorstring" => "IntOrString",
        "apimachinery.pkg.runtime.rawextension"
        | "apimachinery.pkg.apis.meta.v1.fieldsv1"
        | "apiextensions_apiserver.pkg.apis.apiextensions.v1.json"
        | "apiextensions_apiserver.pkg.apis.apiextensions.v1beta1.json" => "RawJson",
        "apiextensions_apiserver.pkg.apis.apiextensions.v1.jsonschemapropsorarray"
        | "apiextensions_apiserver.pkg.apis.apiextensions.v1beta1.jsonschemapropsorarray" => {
            "SchemaOrArray"
        }
        "apiextensions_apiserver.pkg.apis.apiextensions.v1.jsonschemapropsorbool"
        | "apiextensions_apiserver.pkg.apis.apiextensions.v1beta1.jsonschemapropsorbool" => {
            "SchemaOrBool"
        }
        "apiextensions_apiserver.pkg.apis.apiextensions.v1.jsonschemapropsorstringarray"
        | "apiextensions_apiserver.pkg.apis.apiextensions.v1beta1.jsonschemapropsorstringarray" => {
            "SchemaOrStringArray"
        }
        _ => "None",
    }
}

/// Finds a table entry by case-insensitive name (prost renames "CSIDriver" to "CsiDriver").
fn find_ci<'a, V>(map: &'a HashMap<String, V>, name: &str) -> Option<(&'a String, &'a V)> {
    map.iter().find(|(k, _)| k.eq_ignore_ascii_case(name))
}

fn generate(
    messages: &[PbMessage],
    api_versions: &[(Vec<String>, String)],
    go: &GoTable,
    oa_versions: &[OaTable],
) -> String {
    let index: HashMap<String, usize> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| (key(m), i))
        .collect();
    let oa = &oa_versions[0];
    let ty_code = |ty: &Ty| -> String {
        match ty {
            Ty::Scalar(s) => format!("Ty::{s:?}"),
            Ty::Message(k) => {
                let i = index
                    .get(k)
                    .unwrap_or_else(|| panic!("unresolved message type {k}"));
                format!("Ty::Message({i})")
            }
        }
    };
    let mut code = String::from(
        "// @generated by kube-apiserver/build.rs from k8s-pb, kubectl and k8s-openapi.\n",
    );
    code.push_str("pub(super) static MESSAGES: &[Message] = &[\n");
    let mut stats = (0usize, 0usize, Vec::<String>::new());
    for m in messages {
        let go_struct = go
            .get(&go_package(&m.module))
            .and_then(|pkg| find_ci(pkg, &m.name));
        let oa_prefix = openapi_prefix(&m.module);
        let oa_def = oa.iter().find(|(k, _)| {
            k.len() == oa_prefix.len() + m.name.len()
                && k.starts_with(&oa_prefix)
                && k[oa_prefix.len()..].eq_ignore_ascii_case(&m.name)
        });
        let mut special = special_of(&key(m));
        // A Go named slice (`type ExtraValue []string`, `Verbs`) becomes a message with one
        // repeated `items` field; it is neither a Go struct nor an OpenAPI definition, and its
        // JSON is the bare array.
        if special == "None"
            && go_struct.is_none()
            && oa_def.is_none()
            && m.fields.len() == 1
            && m.fields[0].rust_name == "items"
            && matches!(m.fields[0].label, Label::Repeated)
        {
            special = "ListWrapper";
        }
        // The proto (Go) spelling of the message name.
        let proper = go_struct
            .map(|(n, _)| n.clone())
            .or_else(|| oa_def.map(|(k, _)| k[oa_prefix.len()..].to_string()))
            .unwrap_or_else(|| m.name.clone());
        let full = format!("{}{}", oa_prefix, proper);
        let _ = write!(
            code,
            "    Message {{ name: {full:?}, special: Special::{special}, fields: &["
        );
        let mut seen_json: Vec<String> = Vec::new();
        for f in &m.fields {
            // (json name, emit zero scalars)
            let resolved: Option<(String, bool)> = if special != "None" {
                Some((lower_camel(&f.rust_name), true))
            } else if let Some((_, gfields)) = go_struct {
                match gfields.get(&f.tag) {
                    Some(g) => {
                        stats.0 += 1;
                        Some((g.json.clone(), !g.omitempty || g.pointer))
                    }
                    None => {
                        // A field kubectl 1.33 does not know is newer than the served API:
                        // skipped, as a 1.33 server skips unknown fields. It must not be a
                        // v1.33 OpenAPI property (that would mean a join error).
                        if let Some((_, props)) = oa_def {
                            assert!(
                                !props.iter().any(|p| norm(&p.json) == norm(&f.rust_name)),
                                "{full}.{} is in OpenAPI v1.33 but not in kubectl's Go types",
                                f.rust_name
                            );
                        }
                        stats.2.push(format!("{full}.{}", f.rust_name));
                        None
                    }
                }
            } else if let Some((_, props)) = oa_def {
                match props.iter().find(|p| norm(&p.json) == norm(&f.rust_name)) {
                    Some(p) => {
                        stats.1 += 1;
                        // No Go pointer data here: numbers keep explicit zeros (these are
                        // pointers in the apiextensions/apiregistration types), strings and
                        // bools drop them unless required.
                        let numeric = matches!(
                            f.ty,
                            Ty::Scalar(Scalar::Int32 | Scalar::Int64 | Scalar::Double)
                        );
                        Some((p.json.clone(), p.required || numeric))
                    }
                    None => {
                        // Must be a property added after v1.33, not a naming mismatch.
                        let later = oa_versions[1..].iter().any(|t| {
                            t.get(&full).is_some_and(|props| {
                                props.iter().any(|p| norm(&p.json) == norm(&f.rust_name))
                            })
                        });
                        assert!(
                            later,
                            "{full}.{} matches no k8s-openapi property",
                            f.rust_name
                        );
                        stats.2.push(format!("{full}.{}", f.rust_name));
                        None
                    }
                }
            } else {
                Some((lower_camel(&f.rust_name), true))
            };
            let Some((json, emit_zero)) = resolved else {
                continue;
            };
            // An empty name is a Go struct embedded with `json:",inline"`: its fields are
            // spliced into the parent object.
            assert!(
                json.is_empty() || !seen_json.contains(&json),
                "duplicate JSON name {json} in {full}"
            );
            assert!(
                !json.is_empty() || matches!((&f.ty, &f.label), (Ty::Message(_), Label::Single)),
                "inline field {} of {full} is not a single message",
                f.rust_name
            );
            seen_json.push(json.clone());
            let label = match &f.label {
                Label::Single => "Label::Single".to_string(),
                Label::Repeated => "Label::Repeated".to_string(),
                Label::Map => "Label::Map".to_string(),
            };
            let _ = write!(
                code,
                "Field {{ tag: {}, json: {:?}, ty: {}, label: {}, emit_zero: {} }}, ",
                f.tag,
                json,
                ty_code(&f.ty),
                label,
                emit_zero
            );
        }
        code.push_str("] },\n");
    }
    code.push_str("];\n\n");

    // Group versions: apiVersion -> module, so any message of a served module is a kind.
    let delete_options = index
        .get("apimachinery.pkg.apis.meta.v1.DeleteOptions")
        .expect("meta.v1.DeleteOptions in k8s-pb");
    let _ = writeln!(
        code,
        "pub(super) const DELETE_OPTIONS: u16 = {delete_options};"
    );
    code.push_str("pub(super) static KINDS: &[(&str, &str, u16)] = &[\n");
    let mut kinds: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (module, api_version) in api_versions {
        for (i, m) in messages.iter().enumerate() {
            if &m.module == module && m.fields.iter().any(|f| f.rust_name == "metadata") {
                kinds.insert((api_version.clone(), m.name.to_ascii_lowercase()), i);
            }
        }
    }
    for ((api_version, kind), i) in &kinds {
        let _ = writeln!(code, "    ({api_version:?}, {kind:?}, {i}),");
    }
    code.push_str("];\n");
    let _ = writeln!(
        code,
        "// fields named from Go: {}, from OpenAPI: {}, skipped as newer than v1.33: {}",
        stats.0,
        stats.1,
        stats.2.len()
    );
    for skipped in &stats.2 {
        let _ = writeln!(code, "//   skipped: {skipped}");
    }
    code
}
