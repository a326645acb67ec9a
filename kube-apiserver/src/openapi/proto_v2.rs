//! The swagger 2.0 document in gnostic's protobuf form (`openapi.v2.Document`), which kubectl
//! asks for (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`) when it validates
//! objects whose v3 document cannot help it (`kind: List`, create-only kinds, `Scale`).
//!
//! The messages below declare only what a Kubernetes document uses, with gnostic's field numbers;
//! free-form values (vendor extensions, `default`, `enum`, `example`) travel as
//! `Any { yaml }`, and JSON text is valid YAML, so they are carried as compact JSON.

use prost::Message;
use serde_json::{Map, Value};

/// The media type of the protobuf form, as upstream answers it (also for requests that use the
/// deprecated `...spec.v2@v1.0+protobuf` spelling, which Go's mime parser rejects).
pub const CONTENT_TYPE: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";
const SUBTYPE: &str = "com.github.proto-openapi.spec.v2.v1.0+protobuf";
const SUBTYPE_DEPRECATED: &str = "com.github.proto-openapi.spec.v2@v1.0+protobuf";

/// The forms `/openapi/v2` is served in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Protobuf,
}

/// Pick the form for an `Accept` header as upstream's handler does: clauses ordered by `q`
/// (specific types before wildcards), each tried against JSON, then protobuf; the first match
/// wins. No match means 406.
pub fn negotiate(accept: &str) -> Option<Format> {
    let accept = if accept.trim().is_empty() { "*/*" } else { accept };
    let mut clauses: Vec<(f64, &str, &str)> = accept
        .split(',')
        .map(|clause| {
            let mut parts = clause.split(';');
            let range = parts.next().unwrap_or("").trim();
            let (ty, sub) = match range.split_once('/') {
                Some((ty, sub)) => (ty.trim(), sub.trim()),
                None if range == "*" => ("*", "*"),
                None => (range, ""),
            };
            // A `q` that does not parse counts as 0, as in Go's goautoneg.
            let q = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim() == "q")
                .map_or(1.0, |(_, v)| v.trim().parse::<f64>().unwrap_or(0.0));
            (q, ty, sub)
        })
        .collect();
    // goautoneg's ordering, which is not a total order (a specific type goes before a wildcard
    // even with a lower q), applied by insertion as Go's sort does for short lists.
    let before = |a: &(f64, &str, &str), b: &(f64, &str, &str)| {
        a.0 > b.0 || (a.1 != "*" && b.1 == "*") || (a.2 != "*" && b.2 == "*")
    };
    for i in 1..clauses.len() {
        let mut j = i;
        while j > 0 && before(&clauses[j], &clauses[j - 1]) {
            clauses.swap(j, j - 1);
            j -= 1;
        }
    }
    let served = [("json", Format::Json), (SUBTYPE_DEPRECATED, Format::Protobuf), (SUBTYPE, Format::Protobuf)];
    clauses.iter().find_map(|&(_, ty, sub)| {
        served
            .iter()
            .find(|(s, _)| (ty == "application" || ty == "*") && (sub == *s || sub == "*"))
            .map(|&(_, format)| format)
    })
}

#[derive(Clone, PartialEq, Message)]
pub struct Document {
    #[prost(string, tag = "1")]
    pub swagger: String,
    #[prost(message, optional, tag = "2")]
    pub info: Option<Info>,
    #[prost(string, tag = "3")]
    pub host: String,
    #[prost(string, tag = "4")]
    pub base_path: String,
    #[prost(string, repeated, tag = "5")]
    pub schemes: Vec<String>,
    #[prost(string, repeated, tag = "6")]
    pub consumes: Vec<String>,
    #[prost(string, repeated, tag = "7")]
    pub produces: Vec<String>,
    #[prost(message, optional, tag = "8")]
    pub paths: Option<Paths>,
    #[prost(message, optional, tag = "9")]
    pub definitions: Option<Definitions>,
    #[prost(message, repeated, tag = "12")]
    pub security: Vec<SecurityRequirement>,
    #[prost(message, optional, tag = "13")]
    pub security_definitions: Option<SecurityDefinitions>,
    #[prost(message, repeated, tag = "16")]
    pub vendor_extension: Vec<NamedAny>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Info {
    #[prost(string, tag = "1")]
    pub title: String,
    #[prost(string, tag = "2")]
    pub version: String,
    #[prost(string, tag = "3")]
    pub description: String,
}

/// `google.protobuf.Any` is never used by Kubernetes documents; only `yaml` is set.
#[derive(Clone, PartialEq, Message)]
pub struct Any {
    #[prost(string, tag = "2")]
    pub yaml: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct NamedAny {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<Any>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Paths {
    #[prost(message, repeated, tag = "1")]
    pub vendor_extension: Vec<NamedAny>,
    #[prost(message, repeated, tag = "2")]
    pub path: Vec<NamedPathItem>,
}

#[derive(Clone, PartialEq, Message)]
pub struct NamedPathItem {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<PathItem>,
}

#[derive(Clone, PartialEq, Message)]
pub struct PathItem {
    #[prost(string, tag = "1")]
    pub r#ref: String,
    #[prost(message, optional, tag = "2")]
    pub get: Option<Operation>,
    #[prost(message, optional, tag = "3")]
    pub put: Option<Operation>,
    #[prost(message, optional, tag = "4")]
    pub post: Option<Operation>,
    #[prost(message, optional, tag = "5")]
    pub delete: Option<Operation>,
    #[prost(message, optional, tag = "6")]
    pub options: Option<Operation>,
    #[prost(message, optional, tag = "7")]
    pub head: Option<Operation>,
    #[prost(message, optional, tag = "8")]
    pub patch: Option<Operation>,
    #[prost(message, repeated, tag = "9")]
    pub parameters: Vec<ParametersItem>,
    #[prost(message, repeated, tag = "10")]
    pub vendor_extension: Vec<NamedAny>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Operation {
    #[prost(string, repeated, tag = "1")]
    pub tags: Vec<String>,
    #[prost(string, tag = "2")]
    pub summary: String,
    #[prost(string, tag = "3")]
    pub description: String,
    #[prost(string, tag = "5")]
    pub operation_id: String,
    #[prost(string, repeated, tag = "6")]
    pub produces: Vec<String>,
    #[prost(string, repeated, tag = "7")]
    pub consumes: Vec<String>,
    #[prost(message, repeated, tag = "8")]
    pub parameters: Vec<ParametersItem>,
    #[prost(message, optional, tag = "9")]
    pub responses: Option<Responses>,
    #[prost(string, repeated, tag = "10")]
    pub schemes: Vec<String>,
    #[prost(bool, tag = "11")]
    pub deprecated: bool,
    #[prost(message, repeated, tag = "13")]
    pub vendor_extension: Vec<NamedAny>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ParametersItem {
    #[prost(oneof = "parameters_item::Oneof", tags = "1, 2")]
    pub oneof: Option<parameters_item::Oneof>,
}

pub mod parameters_item {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Oneof {
        #[prost(message, tag = "1")]
        Parameter(super::Parameter),
        #[prost(message, tag = "2")]
        JsonReference(super::JsonReference),
    }
}

#[derive(Clone, PartialEq, Message)]
pub struct JsonReference {
    #[prost(string, tag = "1")]
    pub r#ref: String,
    #[prost(string, tag = "2")]
    pub description: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct Parameter {
    #[prost(oneof = "parameter::Oneof", tags = "1, 2")]
    pub oneof: Option<parameter::Oneof>,
}

pub mod parameter {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Oneof {
        #[prost(message, tag = "1")]
        BodyParameter(super::BodyParameter),
        #[prost(message, tag = "2")]
        NonBodyParameter(super::NonBodyParameter),
    }
}

#[derive(Clone, PartialEq, Message)]
pub struct BodyParameter {
    #[prost(string, tag = "1")]
    pub description: String,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(string, tag = "3")]
    pub r#in: String,
    #[prost(bool, tag = "4")]
    pub required: bool,
    #[prost(message, optional, tag = "5")]
    pub schema: Option<Schema>,
    #[prost(message, repeated, tag = "6")]
    pub vendor_extension: Vec<NamedAny>,
}

#[derive(Clone, PartialEq, Message)]
pub struct NonBodyParameter {
    #[prost(oneof = "non_body_parameter::Oneof", tags = "1, 3, 4")]
    pub oneof: Option<non_body_parameter::Oneof>,
}

pub mod non_body_parameter {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Oneof {
        #[prost(message, tag = "1")]
        HeaderParameterSubSchema(super::HeaderParameterSubSchema),
        #[prost(message, tag = "3")]
        QueryParameterSubSchema(super::QueryParameterSubSchema),
        #[prost(message, tag = "4")]
        PathParameterSubSchema(super::PathParameterSubSchema),
    }
}

/// Query parameters have `allowEmptyValue`, which shifts the later field numbers by one
/// relative to path and header parameters.
#[derive(Clone, PartialEq, Message)]
pub struct QueryParameterSubSchema {
    #[prost(bool, tag = "1")]
    pub required: bool,
    #[prost(string, tag = "2")]
    pub r#in: String,
    #[prost(string, tag = "3")]
    pub description: String,
    #[prost(string, tag = "4")]
    pub name: String,
    #[prost(bool, tag = "5")]
    pub allow_empty_value: bool,
    #[prost(string, tag = "6")]
    pub r#type: String,
    #[prost(string, tag = "7")]
    pub format: String,
    #[prost(message, optional, tag = "8")]
    pub items: Option<PrimitivesItems>,
    #[prost(string, tag = "9")]
    pub collection_format: String,
    #[prost(bool, tag = "20")]
    pub unique_items: bool,
    #[prost(message, repeated, tag = "21")]
    pub r#enum: Vec<Any>,
    #[prost(message, repeated, tag = "23")]
    pub vendor_extension: Vec<NamedAny>,
}

#[derive(Clone, PartialEq, Message)]
pub struct PathParameterSubSchema {
    #[prost(bool, tag = "1")]
    pub required: bool,
    #[prost(string, tag = "2")]
    pub r#in: String,
    #[prost(string, tag = "3")]
    pub description: String,
    #[prost(string, tag = "4")]
    pub name: String,
    #[prost(string, tag = "5")]
    pub r#type: String,
    #[prost(string, tag = "6")]
    pub format: String,
    #[prost(message, optional, tag = "7")]
    pub items: Option<PrimitivesItems>,
    #[prost(string, tag = "8")]
    pub collection_format: String,
    #[prost(bool, tag = "19")]
    pub unique_items: bool,
    #[prost(message, repeated, tag = "20")]
    pub r#enum: Vec<Any>,
    #[prost(message, repeated, tag = "22")]
    pub vendor_extension: Vec<NamedAny>,
}

/// Same numbering as [`PathParameterSubSchema`].
pub type HeaderParameterSubSchema = PathParameterSubSchema;

#[derive(Clone, PartialEq, Message)]
pub struct PrimitivesItems {
    #[prost(string, tag = "1")]
    pub r#type: String,
    #[prost(string, tag = "2")]
    pub format: String,
    #[prost(message, optional, boxed, tag = "3")]
    pub items: Option<Box<PrimitivesItems>>,
    #[prost(string, tag = "4")]
    pub collection_format: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct Responses {
    #[prost(message, repeated, tag = "1")]
    pub response_code: Vec<NamedResponseValue>,
    #[prost(message, repeated, tag = "2")]
    pub vendor_extension: Vec<NamedAny>,
}

#[derive(Clone, PartialEq, Message)]
pub struct NamedResponseValue {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<ResponseValue>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ResponseValue {
    #[prost(oneof = "response_value::Oneof", tags = "1, 2")]
    pub oneof: Option<response_value::Oneof>,
}

pub mod response_value {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Oneof {
        #[prost(message, tag = "1")]
        Response(super::Response),
        #[prost(message, tag = "2")]
        JsonReference(super::JsonReference),
    }
}

#[derive(Clone, PartialEq, Message)]
pub struct Response {
    #[prost(string, tag = "1")]
    pub description: String,
    #[prost(message, optional, tag = "2")]
    pub schema: Option<SchemaItem>,
    #[prost(message, repeated, tag = "5")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `SchemaItem.schema` (the `file_schema` alternative is never used).
#[derive(Clone, PartialEq, Message)]
pub struct SchemaItem {
    #[prost(message, optional, tag = "1")]
    pub schema: Option<Schema>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Definitions {
    #[prost(message, repeated, tag = "1")]
    pub additional_properties: Vec<NamedSchema>,
}

#[derive(Clone, PartialEq, Message)]
pub struct NamedSchema {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<Schema>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Schema {
    #[prost(string, tag = "1")]
    pub r#ref: String,
    #[prost(string, tag = "2")]
    pub format: String,
    #[prost(string, tag = "3")]
    pub title: String,
    #[prost(string, tag = "4")]
    pub description: String,
    #[prost(message, optional, tag = "5")]
    pub default: Option<Any>,
    #[prost(string, repeated, tag = "19")]
    pub required: Vec<String>,
    #[prost(message, repeated, tag = "20")]
    pub r#enum: Vec<Any>,
    #[prost(message, optional, boxed, tag = "21")]
    pub additional_properties: Option<Box<AdditionalPropertiesItem>>,
    #[prost(message, optional, tag = "22")]
    pub r#type: Option<TypeItem>,
    #[prost(message, optional, tag = "23")]
    pub items: Option<ItemsItem>,
    #[prost(message, repeated, tag = "24")]
    pub all_of: Vec<Schema>,
    #[prost(message, optional, tag = "25")]
    pub properties: Option<Properties>,
    #[prost(bool, tag = "27")]
    pub read_only: bool,
    #[prost(message, optional, tag = "30")]
    pub example: Option<Any>,
    #[prost(message, repeated, tag = "31")]
    pub vendor_extension: Vec<NamedAny>,
}

#[derive(Clone, PartialEq, Message)]
pub struct AdditionalPropertiesItem {
    #[prost(oneof = "additional_properties_item::Oneof", tags = "1, 2")]
    pub oneof: Option<additional_properties_item::Oneof>,
}

pub mod additional_properties_item {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Oneof {
        #[prost(message, tag = "1")]
        Schema(super::Schema),
        #[prost(bool, tag = "2")]
        Boolean(bool),
    }
}

#[derive(Clone, PartialEq, Message)]
pub struct TypeItem {
    #[prost(string, repeated, tag = "1")]
    pub value: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ItemsItem {
    #[prost(message, repeated, tag = "1")]
    pub schema: Vec<Schema>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Properties {
    #[prost(message, repeated, tag = "1")]
    pub additional_properties: Vec<NamedSchema>,
}

#[derive(Clone, PartialEq, Message)]
pub struct SecurityRequirement {
    #[prost(message, repeated, tag = "1")]
    pub additional_properties: Vec<NamedStringArray>,
}

#[derive(Clone, PartialEq, Message)]
pub struct NamedStringArray {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<StringArray>,
}

#[derive(Clone, PartialEq, Message)]
pub struct StringArray {
    #[prost(string, repeated, tag = "1")]
    pub value: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct SecurityDefinitions {
    #[prost(message, repeated, tag = "1")]
    pub additional_properties: Vec<NamedSecurityDefinitionsItem>,
}

#[derive(Clone, PartialEq, Message)]
pub struct NamedSecurityDefinitionsItem {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<SecurityDefinitionsItem>,
}

/// `SecurityDefinitionsItem.api_key_security`, the only scheme the server declares.
#[derive(Clone, PartialEq, Message)]
pub struct SecurityDefinitionsItem {
    #[prost(message, optional, tag = "2")]
    pub api_key_security: Option<ApiKeySecurity>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ApiKeySecurity {
    #[prost(string, tag = "1")]
    pub r#type: String,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(string, tag = "3")]
    pub r#in: String,
    #[prost(string, tag = "4")]
    pub description: String,
}

// ---- JSON → protobuf ----

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or_default().to_string()
}

fn flag(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    let items = v.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    items.iter().filter_map(Value::as_str).map(String::from).collect()
}

fn any(v: &Value) -> Any {
    Any { yaml: v.to_string() }
}

fn object(v: &Value) -> Option<&Map<String, Value>> {
    v.as_object()
}

/// The `x-` members of an object, in document order.
fn extensions(v: &Value) -> Vec<NamedAny> {
    object(v)
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.starts_with("x-"))
        .map(|(k, v)| NamedAny { name: k.clone(), value: Some(any(v)) })
        .collect()
}

fn schema(v: &Value) -> Schema {
    let items = match v.get("items") {
        Some(Value::Array(list)) => Some(ItemsItem { schema: list.iter().map(schema).collect() }),
        Some(one @ Value::Object(_)) => Some(ItemsItem { schema: vec![schema(one)] }),
        _ => None,
    };
    let additional_properties = match v.get("additionalProperties") {
        Some(Value::Bool(b)) => Some(additional_properties_item::Oneof::Boolean(*b)),
        Some(s @ Value::Object(_)) => Some(additional_properties_item::Oneof::Schema(schema(s))),
        _ => None,
    }
    .map(|oneof| Box::new(AdditionalPropertiesItem { oneof: Some(oneof) }));
    let r#type = match v.get("type") {
        Some(Value::String(t)) => Some(TypeItem { value: vec![t.clone()] }),
        Some(Value::Array(_)) => Some(TypeItem { value: strings(v, "type") }),
        _ => None,
    };
    let properties = v.get("properties").and_then(object).map(|props| Properties {
        additional_properties: props
            .iter()
            .map(|(name, s)| NamedSchema { name: name.clone(), value: Some(schema(s)) })
            .collect(),
    });
    let list = |key: &str| v.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    Schema {
        r#ref: text(v, "$ref"),
        format: text(v, "format"),
        title: text(v, "title"),
        description: text(v, "description"),
        default: v.get("default").map(any),
        required: strings(v, "required"),
        r#enum: list("enum").iter().map(any).collect(),
        additional_properties,
        r#type,
        items,
        all_of: list("allOf").iter().map(schema).collect(),
        properties,
        read_only: flag(v, "readOnly"),
        example: v.get("example").map(any),
        vendor_extension: extensions(v),
    }
}

fn primitives(v: &Value) -> Option<PrimitivesItems> {
    let items = v.get("items")?;
    Some(PrimitivesItems {
        r#type: text(items, "type"),
        format: text(items, "format"),
        items: primitives(items).map(Box::new),
        collection_format: text(items, "collectionFormat"),
    })
}

fn parameter(v: &Value) -> ParametersItem {
    use non_body_parameter::Oneof as NonBody;
    if let Some(r) = v.get("$ref").and_then(Value::as_str) {
        let reference = JsonReference { r#ref: r.to_string(), description: text(v, "description") };
        return ParametersItem { oneof: Some(parameters_item::Oneof::JsonReference(reference)) };
    }
    let location = text(v, "in");
    let param = if location == "body" {
        parameter::Oneof::BodyParameter(BodyParameter {
            description: text(v, "description"),
            name: text(v, "name"),
            r#in: location,
            required: flag(v, "required"),
            schema: v.get("schema").map(schema),
            vendor_extension: extensions(v),
        })
    } else {
        let enums = || v.get("enum").and_then(Value::as_array).map(|l| l.iter().map(any).collect()).unwrap_or_default();
        let sub = if location == "query" {
            NonBody::QueryParameterSubSchema(QueryParameterSubSchema {
                required: flag(v, "required"),
                r#in: location,
                description: text(v, "description"),
                name: text(v, "name"),
                allow_empty_value: flag(v, "allowEmptyValue"),
                r#type: text(v, "type"),
                format: text(v, "format"),
                items: primitives(v),
                collection_format: text(v, "collectionFormat"),
                unique_items: flag(v, "uniqueItems"),
                r#enum: enums(),
                vendor_extension: extensions(v),
            })
        } else {
            let s = PathParameterSubSchema {
                required: flag(v, "required"),
                description: text(v, "description"),
                name: text(v, "name"),
                r#type: text(v, "type"),
                format: text(v, "format"),
                items: primitives(v),
                collection_format: text(v, "collectionFormat"),
                unique_items: flag(v, "uniqueItems"),
                r#enum: enums(),
                vendor_extension: extensions(v),
                r#in: location.clone(),
            };
            if location == "header" { NonBody::HeaderParameterSubSchema(s) } else { NonBody::PathParameterSubSchema(s) }
        };
        parameter::Oneof::NonBodyParameter(NonBodyParameter { oneof: Some(sub) })
    };
    ParametersItem { oneof: Some(parameters_item::Oneof::Parameter(Parameter { oneof: Some(param) })) }
}

fn parameters(v: &Value) -> Vec<ParametersItem> {
    v.get("parameters").and_then(Value::as_array).map(|l| l.iter().map(parameter).collect()).unwrap_or_default()
}

fn operation(v: &Value) -> Operation {
    let responses = v.get("responses").and_then(object).map(|codes| Responses {
        response_code: codes
            .iter()
            .filter(|(code, _)| !code.starts_with("x-"))
            .map(|(code, r)| {
                let value = match r.get("$ref").and_then(Value::as_str) {
                    Some(reference) => response_value::Oneof::JsonReference(JsonReference {
                        r#ref: reference.to_string(),
                        description: text(r, "description"),
                    }),
                    None => response_value::Oneof::Response(Response {
                        description: text(r, "description"),
                        schema: r.get("schema").map(|s| SchemaItem { schema: Some(schema(s)) }),
                        vendor_extension: extensions(r),
                    }),
                };
                NamedResponseValue { name: code.clone(), value: Some(ResponseValue { oneof: Some(value) }) }
            })
            .collect(),
        vendor_extension: v.get("responses").map(extensions).unwrap_or_default(),
    });
    Operation {
        tags: strings(v, "tags"),
        summary: text(v, "summary"),
        description: text(v, "description"),
        operation_id: text(v, "operationId"),
        produces: strings(v, "produces"),
        consumes: strings(v, "consumes"),
        parameters: parameters(v),
        responses,
        schemes: strings(v, "schemes"),
        deprecated: flag(v, "deprecated"),
        vendor_extension: extensions(v),
    }
}

fn path_item(v: &Value) -> PathItem {
    let op = |m: &str| v.get(m).map(operation);
    PathItem {
        r#ref: text(v, "$ref"),
        get: op("get"),
        put: op("put"),
        post: op("post"),
        delete: op("delete"),
        options: op("options"),
        head: op("head"),
        patch: op("patch"),
        parameters: parameters(v),
        vendor_extension: extensions(v),
    }
}

/// Convert a swagger 2.0 JSON document into gnostic's `Document` message.
pub fn document(v: &Value) -> Document {
    let info = v.get("info").map(|i| Info {
        title: text(i, "title"),
        version: text(i, "version"),
        description: text(i, "description"),
    });
    let paths = v.get("paths").and_then(object).map(|paths| Paths {
        vendor_extension: Vec::new(),
        path: paths
            .iter()
            .map(|(name, item)| NamedPathItem { name: name.clone(), value: Some(path_item(item)) })
            .collect(),
    });
    let definitions = v.get("definitions").and_then(object).map(|defs| Definitions {
        additional_properties: defs
            .iter()
            .map(|(name, s)| NamedSchema { name: name.clone(), value: Some(schema(s)) })
            .collect(),
    });
    let security = v
        .get("security")
        .and_then(Value::as_array)
        .map(|reqs| {
            reqs.iter()
                .map(|req| SecurityRequirement {
                    additional_properties: object(req)
                        .into_iter()
                        .flatten()
                        .map(|(name, scopes)| NamedStringArray {
                            name: name.clone(),
                            value: Some(StringArray {
                                value: scopes.as_array().into_iter().flatten().filter_map(Value::as_str).map(String::from).collect(),
                            }),
                        })
                        .collect(),
                })
                .collect()
        })
        .unwrap_or_default();
    let security_definitions = v.get("securityDefinitions").and_then(object).map(|defs| SecurityDefinitions {
        additional_properties: defs
            .iter()
            .filter(|(_, d)| d["type"] == "apiKey")
            .map(|(name, d)| NamedSecurityDefinitionsItem {
                name: name.clone(),
                value: Some(SecurityDefinitionsItem {
                    api_key_security: Some(ApiKeySecurity {
                        r#type: text(d, "type"),
                        name: text(d, "name"),
                        r#in: text(d, "in"),
                        description: text(d, "description"),
                    }),
                }),
            })
            .collect(),
    });
    Document {
        swagger: text(v, "swagger"),
        info,
        host: text(v, "host"),
        base_path: text(v, "basePath"),
        schemes: strings(v, "schemes"),
        consumes: strings(v, "consumes"),
        produces: strings(v, "produces"),
        paths,
        definitions,
        security,
        security_definitions,
        vendor_extension: extensions(v),
    }
}

/// The protobuf encoding of a swagger 2.0 JSON document.
pub fn encode(v: &Value) -> Vec<u8> {
    document(v).encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // ---- protobuf → JSON, to check the served document loses nothing ----

    fn back_any(a: &Any) -> Value {
        serde_json::from_str(&a.yaml).unwrap_or_else(|e| panic!("Any.yaml {:?}: {e}", a.yaml))
    }

    fn put_text(m: &mut Map<String, Value>, key: &str, v: &str) {
        if !v.is_empty() {
            m.insert(key.into(), v.into());
        }
    }

    fn put_list(m: &mut Map<String, Value>, key: &str, v: Vec<Value>) {
        if !v.is_empty() {
            m.insert(key.into(), Value::Array(v));
        }
    }

    fn put_flag(m: &mut Map<String, Value>, key: &str, v: bool) {
        if v {
            m.insert(key.into(), true.into());
        }
    }

    fn put_extensions(m: &mut Map<String, Value>, ext: &[NamedAny]) {
        for e in ext {
            m.insert(e.name.clone(), back_any(e.value.as_ref().expect("extension value")));
        }
    }

    fn strs(v: &[String]) -> Vec<Value> {
        v.iter().map(|s| Value::from(s.as_str())).collect()
    }

    fn back_schema(s: &Schema) -> Value {
        let mut m = Map::new();
        put_text(&mut m, "$ref", &s.r#ref);
        put_text(&mut m, "format", &s.format);
        put_text(&mut m, "title", &s.title);
        put_text(&mut m, "description", &s.description);
        if let Some(d) = &s.default {
            m.insert("default".into(), back_any(d));
        }
        put_list(&mut m, "required", strs(&s.required));
        put_list(&mut m, "enum", s.r#enum.iter().map(back_any).collect());
        match s.additional_properties.as_deref().and_then(|a| a.oneof.as_ref()) {
            Some(additional_properties_item::Oneof::Schema(a)) => {
                m.insert("additionalProperties".into(), back_schema(a));
            }
            Some(additional_properties_item::Oneof::Boolean(b)) => {
                m.insert("additionalProperties".into(), (*b).into());
            }
            None => {}
        }
        match s.r#type.as_ref().map(|t| t.value.as_slice()) {
            Some([one]) => {
                m.insert("type".into(), one.as_str().into());
            }
            Some(many) => put_list(&mut m, "type", strs(many)),
            None => {}
        }
        match s.items.as_ref().map(|i| i.schema.as_slice()) {
            Some([one]) => {
                m.insert("items".into(), back_schema(one));
            }
            Some(many) => put_list(&mut m, "items", many.iter().map(back_schema).collect()),
            None => {}
        }
        put_list(&mut m, "allOf", s.all_of.iter().map(back_schema).collect());
        if let Some(p) = &s.properties {
            let props = p.additional_properties.iter().map(|p| (p.name.clone(), back_schema(p.value.as_ref().unwrap())));
            m.insert("properties".into(), Value::Object(props.collect()));
        }
        put_flag(&mut m, "readOnly", s.read_only);
        if let Some(e) = &s.example {
            m.insert("example".into(), back_any(e));
        }
        put_extensions(&mut m, &s.vendor_extension);
        Value::Object(m)
    }

    fn back_items(i: &PrimitivesItems) -> Value {
        let mut m = Map::new();
        put_text(&mut m, "type", &i.r#type);
        put_text(&mut m, "format", &i.format);
        if let Some(nested) = &i.items {
            m.insert("items".into(), back_items(nested));
        }
        put_text(&mut m, "collectionFormat", &i.collection_format);
        Value::Object(m)
    }

    fn back_parameter(p: &ParametersItem) -> Value {
        let mut m = Map::new();
        match p.oneof.as_ref().expect("parameter") {
            parameters_item::Oneof::JsonReference(r) => {
                put_text(&mut m, "$ref", &r.r#ref);
                put_text(&mut m, "description", &r.description);
            }
            parameters_item::Oneof::Parameter(Parameter { oneof: Some(parameter::Oneof::BodyParameter(b)) }) => {
                put_text(&mut m, "description", &b.description);
                put_text(&mut m, "name", &b.name);
                put_text(&mut m, "in", &b.r#in);
                put_flag(&mut m, "required", b.required);
                if let Some(s) = &b.schema {
                    m.insert("schema".into(), back_schema(s));
                }
                put_extensions(&mut m, &b.vendor_extension);
            }
            parameters_item::Oneof::Parameter(Parameter {
                oneof: Some(parameter::Oneof::NonBodyParameter(NonBodyParameter { oneof: Some(sub) })),
            }) => {
                let (q, empty) = match sub {
                    non_body_parameter::Oneof::QueryParameterSubSchema(q) => {
                        assert_eq!(q.r#in, "query");
                        let path = PathParameterSubSchema {
                            required: q.required,
                            r#in: q.r#in.clone(),
                            description: q.description.clone(),
                            name: q.name.clone(),
                            r#type: q.r#type.clone(),
                            format: q.format.clone(),
                            items: q.items.clone(),
                            collection_format: q.collection_format.clone(),
                            unique_items: q.unique_items,
                            r#enum: q.r#enum.clone(),
                            vendor_extension: q.vendor_extension.clone(),
                        };
                        (path, q.allow_empty_value)
                    }
                    non_body_parameter::Oneof::PathParameterSubSchema(p) => {
                        assert_eq!(p.r#in, "path");
                        (p.clone(), false)
                    }
                    non_body_parameter::Oneof::HeaderParameterSubSchema(h) => {
                        assert_eq!(h.r#in, "header");
                        (h.clone(), false)
                    }
                };
                put_flag(&mut m, "required", q.required);
                put_text(&mut m, "in", &q.r#in);
                put_text(&mut m, "description", &q.description);
                put_text(&mut m, "name", &q.name);
                put_flag(&mut m, "allowEmptyValue", empty);
                put_text(&mut m, "type", &q.r#type);
                put_text(&mut m, "format", &q.format);
                if let Some(items) = &q.items {
                    m.insert("items".into(), back_items(items));
                }
                put_text(&mut m, "collectionFormat", &q.collection_format);
                put_flag(&mut m, "uniqueItems", q.unique_items);
                put_list(&mut m, "enum", q.r#enum.iter().map(back_any).collect());
                put_extensions(&mut m, &q.vendor_extension);
            }
            other => panic!("parameter {other:?}"),
        }
        Value::Object(m)
    }

    fn back_operation(o: &Operation) -> Value {
        let mut m = Map::new();
        put_list(&mut m, "tags", strs(&o.tags));
        put_text(&mut m, "summary", &o.summary);
        put_text(&mut m, "description", &o.description);
        put_text(&mut m, "operationId", &o.operation_id);
        put_list(&mut m, "produces", strs(&o.produces));
        put_list(&mut m, "consumes", strs(&o.consumes));
        put_list(&mut m, "parameters", o.parameters.iter().map(back_parameter).collect());
        if let Some(r) = &o.responses {
            let mut codes = Map::new();
            for code in &r.response_code {
                let mut c = Map::new();
                match code.value.as_ref().and_then(|v| v.oneof.as_ref()).expect("response") {
                    response_value::Oneof::Response(resp) => {
                        put_text(&mut c, "description", &resp.description);
                        if let Some(s) = resp.schema.as_ref().and_then(|s| s.schema.as_ref()) {
                            c.insert("schema".into(), back_schema(s));
                        }
                        put_extensions(&mut c, &resp.vendor_extension);
                    }
                    response_value::Oneof::JsonReference(j) => put_text(&mut c, "$ref", &j.r#ref),
                }
                codes.insert(code.name.clone(), Value::Object(c));
            }
            put_extensions(&mut codes, &r.vendor_extension);
            m.insert("responses".into(), Value::Object(codes));
        }
        put_list(&mut m, "schemes", strs(&o.schemes));
        put_flag(&mut m, "deprecated", o.deprecated);
        put_extensions(&mut m, &o.vendor_extension);
        Value::Object(m)
    }

    fn back_document(d: &Document) -> Value {
        let mut m = Map::new();
        put_text(&mut m, "swagger", &d.swagger);
        if let Some(i) = &d.info {
            let mut info = Map::new();
            put_text(&mut info, "title", &i.title);
            put_text(&mut info, "version", &i.version);
            put_text(&mut info, "description", &i.description);
            m.insert("info".into(), Value::Object(info));
        }
        put_text(&mut m, "host", &d.host);
        put_text(&mut m, "basePath", &d.base_path);
        put_list(&mut m, "schemes", strs(&d.schemes));
        put_list(&mut m, "consumes", strs(&d.consumes));
        put_list(&mut m, "produces", strs(&d.produces));
        if let Some(paths) = &d.paths {
            let mut out = Map::new();
            for p in &paths.path {
                let item = p.value.as_ref().expect("path item");
                let mut i = Map::new();
                put_text(&mut i, "$ref", &item.r#ref);
                let ops = [
                    ("get", &item.get),
                    ("put", &item.put),
                    ("post", &item.post),
                    ("delete", &item.delete),
                    ("options", &item.options),
                    ("head", &item.head),
                    ("patch", &item.patch),
                ];
                for (method, op) in ops {
                    if let Some(op) = op {
                        i.insert(method.into(), back_operation(op));
                    }
                }
                put_list(&mut i, "parameters", item.parameters.iter().map(back_parameter).collect());
                put_extensions(&mut i, &item.vendor_extension);
                out.insert(p.name.clone(), Value::Object(i));
            }
            m.insert("paths".into(), Value::Object(out));
        }
        if let Some(defs) = &d.definitions {
            let defs = defs.additional_properties.iter().map(|d| (d.name.clone(), back_schema(d.value.as_ref().unwrap())));
            m.insert("definitions".into(), Value::Object(defs.collect()));
        }
        let security = d.security.iter().map(|r| {
            let reqs = r.additional_properties.iter().map(|a| (a.name.clone(), Value::Array(strs(&a.value.as_ref().unwrap().value))));
            Value::Object(reqs.collect())
        });
        put_list(&mut m, "security", security.collect());
        if let Some(defs) = &d.security_definitions {
            let mut out = Map::new();
            for def in &defs.additional_properties {
                let key = def.value.as_ref().and_then(|v| v.api_key_security.as_ref()).expect("api key scheme");
                let mut k = Map::new();
                put_text(&mut k, "type", &key.r#type);
                put_text(&mut k, "name", &key.name);
                put_text(&mut k, "in", &key.r#in);
                put_text(&mut k, "description", &key.description);
                out.insert(def.name.clone(), Value::Object(k));
            }
            m.insert("securityDefinitions".into(), Value::Object(out));
        }
        put_extensions(&mut m, &d.vendor_extension);
        Value::Object(m)
    }

    /// Drop what proto3 cannot tell from absent: `false` flags, "" and [] (never inside
    /// free-form values, which travel whole).
    fn normalize(v: &mut Value) {
        const FLAGS: [&str; 5] = ["required", "uniqueItems", "readOnly", "deprecated", "allowEmptyValue"];
        match v {
            Value::Object(m) => {
                m.retain(|k, v| {
                    !(FLAGS.contains(&k.as_str()) && *v == Value::Bool(false))
                        && *v != json!("")
                        && !(k != "enum" && *v == json!([]))
                });
                for (k, v) in m.iter_mut() {
                    if !(k.starts_with("x-") || k == "default" || k == "example" || k == "enum") {
                        normalize(v);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(normalize),
            _ => {}
        }
    }

    fn api() -> &'static crate::openapi::OpenApi {
        static API: std::sync::OnceLock<crate::openapi::OpenApi> = std::sync::OnceLock::new();
        API.get_or_init(crate::openapi::OpenApi::build)
    }

    #[test]
    fn the_served_document_decodes_back_to_its_json() {
        let api = api();
        let mut json: Value = serde_json::from_slice(api.v2()).expect("v2 JSON");
        let back = Document::decode(api.v2_protobuf().as_ref()).expect("v2 protobuf decodes");

        let json_paths = json["paths"].as_object().unwrap();
        let json_defs = json["definitions"].as_object().unwrap();
        let paths = &back.paths.as_ref().unwrap().path;
        let defs = &back.definitions.as_ref().unwrap().additional_properties;
        assert!(json_paths.len() > 100 && json_defs.len() > 400, "{} {}", json_paths.len(), json_defs.len());
        assert_eq!(paths.len(), json_paths.len());
        assert_eq!(defs.len(), json_defs.len());
        // Same order as the JSON text, as gnostic keeps it.
        assert!(paths.iter().map(|p| &p.name).eq(json_paths.keys()));
        assert!(defs.iter().map(|d| &d.name).eq(json_defs.keys()));

        // A reference, a vendor extension and a body parameter, as kubectl reads them.
        let def = |name: &str| defs.iter().find(|d| d.name == name).and_then(|d| d.value.as_ref()).unwrap();
        let deployment = def("io.k8s.api.apps.v1.Deployment");
        let spec = deployment.properties.as_ref().unwrap().additional_properties.iter().find(|p| p.name == "spec").unwrap();
        assert_eq!(spec.value.as_ref().unwrap().r#ref, "#/definitions/io.k8s.api.apps.v1.DeploymentSpec");
        let gvk = deployment.vendor_extension.iter().find(|e| e.name == "x-kubernetes-group-version-kind").unwrap();
        let gvk: Value = serde_json::from_str(&gvk.value.as_ref().unwrap().yaml).unwrap();
        assert_eq!(gvk, json!([{"group": "apps", "kind": "Deployment", "version": "v1"}]));
        let item = |name: &str| paths.iter().find(|p| p.name == name).and_then(|p| p.value.as_ref()).unwrap();
        let create = item("/apis/apps/v1/namespaces/{namespace}/deployments").post.as_ref().unwrap();
        let body = create
            .parameters
            .iter()
            .find_map(|p| match &p.oneof {
                Some(parameters_item::Oneof::Parameter(Parameter { oneof: Some(parameter::Oneof::BodyParameter(b)) })) => Some(b),
                _ => None,
            })
            .expect("body parameter");
        assert_eq!((body.name.as_str(), body.r#in.as_str(), body.required), ("body", "body", true));
        assert_eq!(body.schema.as_ref().unwrap().r#ref, "#/definitions/io.k8s.api.apps.v1.Deployment");
        // kubectl's v2 check for server-side field validation: a PATCH for the kind with a
        // `fieldValidation` query parameter.
        let patch = item("/apis/apps/v1/namespaces/{namespace}/deployments/{name}").patch.as_ref().unwrap();
        assert!(patch.vendor_extension.iter().any(|e| e.name == "x-kubernetes-group-version-kind"));
        assert!(patch.parameters.iter().any(|p| matches!(&p.oneof,
            Some(parameters_item::Oneof::Parameter(Parameter { oneof: Some(parameter::Oneof::NonBodyParameter(NonBodyParameter {
                oneof: Some(non_body_parameter::Oneof::QueryParameterSubSchema(q)),
            })) })) if q.name == "fieldValidation")));

        // And nothing is lost anywhere: decoded back to JSON, it is the served JSON document.
        let mut decoded = back_document(&back);
        normalize(&mut json);
        normalize(&mut decoded);
        for (name, schema) in json["definitions"].as_object().unwrap() {
            assert_eq!(&decoded["definitions"][name], schema, "definition {name}");
        }
        for (name, item) in json["paths"].as_object().unwrap() {
            assert_eq!(&decoded["paths"][name], item, "path {name}");
        }
        assert_eq!(decoded, json);
    }

    #[test]
    fn conditional_requests_answer_not_modified_as_go_serve_content() {
        use crate::openapi::V2Answer;
        let api = api();
        let kubectl = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
        let etag = format!("\"{}\"", api.v2_hash());
        let date = api.v2_last_modified();
        assert!(date.ends_with(" GMT"), "{date}");
        let answer = |accept, inm: Option<&str>, ims: Option<&str>| format!("{:?}", api.v2_answer(accept, inm, ims));
        let not_modified = format!("{:?}", V2Answer::NotModified);
        assert_eq!(answer(kubectl, Some(&etag), None), not_modified);
        assert_eq!(answer("application/json", Some(&format!("\"other\", W/{etag}")), None), not_modified);
        assert_eq!(answer("", Some("*"), None), not_modified);
        assert_eq!(answer("", None, Some(&date)), not_modified);
        assert_eq!(answer("", None, Some("Sun, 01 Jan 2040 00:00:00 GMT")), not_modified);
        // If-None-Match decides alone when present.
        assert!(answer("", Some("\"other\""), Some(&date)).starts_with("Document"));
        assert!(answer("", None, Some("Mon, 01 Jan 2001 00:00:00 GMT")).starts_with("Document"));
        assert!(answer("", None, Some("yesterday")).starts_with("Document"));
        match api.v2_answer(kubectl, None, None) {
            V2Answer::Document { content_type, body } => {
                assert_eq!(content_type, CONTENT_TYPE);
                assert_eq!(body, api.v2_protobuf());
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(api.v2_answer("text/plain", Some(&etag), None), V2Answer::NotAcceptable));
    }

    #[test]
    fn accept_headers_pick_the_form_as_upstream() {
        let kubectl = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
        assert_eq!(negotiate(kubectl), Some(Format::Protobuf));
        assert_eq!(negotiate(CONTENT_TYPE), Some(Format::Protobuf));
        assert_eq!(negotiate(""), Some(Format::Json));
        assert_eq!(negotiate("*/*"), Some(Format::Json));
        assert_eq!(negotiate("application/*"), Some(Format::Json));
        assert_eq!(negotiate("application/json;charset=utf-8"), Some(Format::Json));
        // The first acceptable clause wins, by q.
        assert_eq!(negotiate(&format!("application/json, {kubectl}")), Some(Format::Json));
        assert_eq!(negotiate(&format!("{kubectl}, application/json")), Some(Format::Protobuf));
        assert_eq!(negotiate(&format!("application/json;q=0.5, {kubectl}")), Some(Format::Protobuf));
        assert_eq!(negotiate(&format!("*/*;q=0.8, {kubectl};q=0.9")), Some(Format::Protobuf));
        assert_eq!(negotiate("text/plain, application/yaml"), None);
        assert_eq!(negotiate("text/plain, */*;q=0.1"), Some(Format::Json));
        assert_eq!(negotiate("application/vnd.kubernetes.protobuf"), None);
    }

    #[test]
    fn round_trips_the_parts_kubectl_reads() {
        let doc = json!({
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": "v1.33.0"},
            "paths": {"/apis/apps/v1/namespaces/{namespace}/deployments/{name}": {
                "parameters": [{"$ref": "#/parameters/name-1"}],
                "patch": {
                    "operationId": "patchAppsV1NamespacedDeployment",
                    "consumes": ["application/json-patch+json"],
                    "parameters": [
                        {"name": "body", "in": "body", "required": true, "schema": {"type": "object"}},
                        {"name": "fieldValidation", "in": "query", "type": "string", "uniqueItems": true},
                        {"name": "namespace", "in": "path", "required": true, "type": "string"},
                    ],
                    "responses": {"200": {"description": "OK", "schema": {"$ref": "#/definitions/io.k8s.api.apps.v1.Deployment"}}},
                    "x-kubernetes-group-version-kind": {"group": "apps", "kind": "Deployment", "version": "v1"},
                },
            }},
            "definitions": {"io.k8s.api.apps.v1.Deployment": {
                "type": "object",
                "required": ["spec"],
                "properties": {
                    "spec": {"$ref": "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "finalizers": {"type": "array", "items": {"type": "string"}, "x-kubernetes-patch-strategy": "merge"},
                },
                "x-kubernetes-group-version-kind": [{"group": "apps", "kind": "Deployment", "version": "v1"}],
            }},
            "security": [{"BearerToken": []}],
            "securityDefinitions": {"BearerToken": {"type": "apiKey", "name": "authorization", "in": "header"}},
        });
        let bytes = encode(&doc);
        let back = Document::decode(bytes.as_slice()).expect("decodes");
        assert_eq!(back.swagger, "2.0");
        assert_eq!(back.info.as_ref().unwrap().version, "v1.33.0");

        let def = &back.definitions.as_ref().unwrap().additional_properties[0];
        assert_eq!(def.name, "io.k8s.api.apps.v1.Deployment");
        let s = def.value.as_ref().unwrap();
        assert_eq!(s.r#type.as_ref().unwrap().value, ["object"]);
        assert_eq!(s.required, ["spec"]);
        let gvk: Value = serde_json::from_str(&s.vendor_extension[0].value.as_ref().unwrap().yaml).unwrap();
        assert_eq!(gvk[0]["kind"], "Deployment");
        let props = &s.properties.as_ref().unwrap().additional_properties;
        let prop = |n: &str| props.iter().find(|p| p.name == n).and_then(|p| p.value.clone()).unwrap();
        assert_eq!(prop("spec").r#ref, "#/definitions/io.k8s.api.apps.v1.DeploymentSpec");
        match prop("labels").additional_properties.as_deref().and_then(|a| a.oneof.clone()) {
            Some(additional_properties_item::Oneof::Schema(s)) => assert_eq!(s.r#type.unwrap().value, ["string"]),
            other => panic!("additionalProperties: {other:?}"),
        }
        let finalizers = prop("finalizers");
        assert_eq!(finalizers.items.unwrap().schema[0].r#type.as_ref().unwrap().value, ["string"]);
        assert_eq!(finalizers.vendor_extension[0].value.as_ref().unwrap().yaml, "\"merge\"");

        let item = back.paths.as_ref().unwrap().path[0].value.clone().unwrap();
        assert!(matches!(&item.parameters[0].oneof, Some(parameters_item::Oneof::JsonReference(r)) if r.r#ref == "#/parameters/name-1"));
        let patch = item.patch.unwrap();
        let kinds: Vec<String> = patch
            .parameters
            .iter()
            .map(|p| match &p.oneof {
                Some(parameters_item::Oneof::Parameter(Parameter { oneof: Some(parameter::Oneof::BodyParameter(b)) })) => {
                    format!("body:{}:{}", b.name, b.required)
                }
                Some(parameters_item::Oneof::Parameter(Parameter {
                    oneof: Some(parameter::Oneof::NonBodyParameter(NonBodyParameter { oneof: Some(sub) })),
                })) => match sub {
                    non_body_parameter::Oneof::QueryParameterSubSchema(q) => format!("query:{}:{}", q.name, q.unique_items),
                    non_body_parameter::Oneof::PathParameterSubSchema(p) => format!("path:{}:{}", p.name, p.required),
                    non_body_parameter::Oneof::HeaderParameterSubSchema(h) => format!("header:{}", h.name),
                },
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(kinds, ["body:body:true", "query:fieldValidation:true", "path:namespace:true"]);
        assert_eq!(patch.vendor_extension[0].name, "x-kubernetes-group-version-kind");
        let ok = &patch.responses.unwrap().response_code[0];
        assert_eq!(ok.name, "200");
        match ok.value.clone().and_then(|v| v.oneof) {
            Some(response_value::Oneof::Response(r)) => {
                assert_eq!(r.schema.unwrap().schema.unwrap().r#ref, "#/definitions/io.k8s.api.apps.v1.Deployment")
            }
            other => panic!("response: {other:?}"),
        }
        let sec = &back.security_definitions.unwrap().additional_properties[0];
        assert_eq!(sec.value.clone().unwrap().api_key_security.unwrap().name, "authorization");
        assert_eq!(back.security[0].additional_properties[0].name, "BearerToken");
    }
}
