//! Response compression, as upstream does it with the APIResponseCompression feature (on by
//! default): the one place where a finished response body may be gzipped.
//!
//! Upstream compresses in two unrelated places, with different rules, and this module keeps both:
//! - API responses (objects, lists, Tables, Status errors, discovery) go through apiserver's
//!   `SerializeObject`, which gzips a body larger than 128 KiB at level 1 (`gzip.BestSpeed`) when
//!   an `Accept-Encoding` token is exactly `gzip`, and then adds `Vary: Accept-Encoding`.
//! - `/openapi/v2` is wrapped by kube-openapi in NYTimes' gziphandler: `Vary: Accept-Encoding` on
//!   every answer, and gzip at the default level (6) from 1400 bytes on when the client accepts
//!   gzip with a non-zero q-value. The ETag stays the one of the uncompressed document, and a 304
//!   has no body to compress.
//!
//! Never compressed: watches (streamed), HEAD, `/openapi/v3` (kube-openapi's handler3 has no
//! gzip), and the raw non-API endpoints (`/version`, health checks, `/metrics`).

use std::collections::VecDeque;
use std::io::Write;
use std::sync::Mutex;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use http::{HeaderValue, Method, Response, header};
use http_body_util::BodyExt;
use hyper::body::Body as _;

use crate::handler::full;
use crate::server::Body;

/// Upstream's `defaultGzipThresholdBytes`: an API body must be larger than this to be gzipped.
pub const API_THRESHOLD_BYTES: usize = 128 * 1024;
/// Upstream's `gzipContentEncodingLevel` for API responses (`gzip.BestSpeed`).
const API_LEVEL: u32 = 1;
/// Bodies larger than this are compressed on a blocking thread.
const BLOCKING_THRESHOLD_BYTES: usize = 1024 * 1024;
/// gziphandler's `DefaultMinSize`, the smallest `/openapi/v2` body it gzips.
pub const OPENAPI_V2_MIN_BYTES: usize = 1400;
/// gziphandler's level (`gzip.DefaultCompression`).
const OPENAPI_V2_LEVEL: u32 = 6;

/// What a request's response may get, decided from the request before it is routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Sent as is.
    Identity,
    /// An API response: gzip when the client asked for it and the body is large.
    Api { gzip: bool },
    /// `/openapi/v2`: always `Vary: Accept-Encoding`, gzip when the client accepts it.
    OpenApiV2 { gzip: bool },
}

impl Policy {
    /// `accept_encoding` is the first `Accept-Encoding` header (upstream reads only that one).
    pub fn for_request(method: &Method, path: &str, accept_encoding: Option<&str>, watch: bool) -> Policy {
        let head_or_watch = *method == Method::HEAD || watch;
        match path {
            "/openapi/v2" | "/openapi/v2/" => {
                Policy::OpenApiV2 { gzip: !head_or_watch && accept_encoding.is_some_and(gziphandler_accepts_gzip) }
            }
            "/version" | "/version/" | "/metrics" => Policy::Identity,
            p if p == "/openapi/v3" || p.starts_with("/openapi/v3/") => Policy::Identity,
            p if ["/healthz", "/livez", "/readyz"]
                .iter()
                .any(|h| p.strip_prefix(h).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))) =>
            {
                Policy::Identity
            }
            _ if head_or_watch => Policy::Identity,
            _ => Policy::Api { gzip: accept_encoding.is_some_and(apiserver_accepts_gzip) },
        }
    }
}

/// apiserver's `ContentEncodingSupported`: one comma-separated token is exactly `gzip` (no
/// parameters, case-sensitive), as Go's HTTP client sends it.
fn apiserver_accepts_gzip(accept_encoding: &str) -> bool {
    accept_encoding.split(',').any(|t| t.trim() == "gzip")
}

/// gziphandler's `acceptsGzip`: a `gzip` coding (any case) whose q-value is above zero. Like
/// gziphandler, only the last parameter of a coding is read as its q-value.
fn gziphandler_accepts_gzip(accept_encoding: &str) -> bool {
    accept_encoding.split(',').any(|coding| {
        let mut parts = coding.split(';');
        let name = parts.next().unwrap_or("").trim();
        if !name.eq_ignore_ascii_case("gzip") {
            return false;
        }
        let q = match parts.last().map(str::trim) {
            Some(last) => match last.strip_prefix("q=") {
                Some(v) => match v.parse::<f64>() {
                    Ok(q) => q,
                    Err(_) => return false,
                },
                None => 1.0,
            },
            None => 1.0,
        };
        q > 0.0
    })
}

/// Apply `policy` to a finished response. Only bodies whose whole length is known are touched:
/// a streamed body (a watch) never is, whatever the policy says.
pub async fn apply(policy: Policy, mut resp: Response<Body>) -> Response<Body> {
    let (min_len, level) = match policy {
        Policy::Identity | Policy::Api { gzip: false } => return resp,
        Policy::OpenApiV2 { gzip } => {
            // gziphandler adds its Vary before the handler adds `Vary: Accept`.
            let headers = resp.headers_mut();
            let others: Vec<HeaderValue> = headers.get_all(header::VARY).iter().cloned().collect();
            headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
            for v in others {
                headers.append(header::VARY, v);
            }
            if !gzip {
                return resp;
            }
            (OPENAPI_V2_MIN_BYTES, OPENAPI_V2_LEVEL)
        }
        Policy::Api { gzip: true } => (API_THRESHOLD_BYTES + 1, API_LEVEL),
    };
    let len = match resp.body().size_hint().exact() {
        Some(n) => n as usize,
        None => return resp,
    };
    if len < min_len || resp.headers().contains_key(header::CONTENT_ENCODING) {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(collected) = body.collect().await;
    let body = collected.to_bytes();
    let etag = parts.headers.get(header::ETAG).and_then(|v| v.to_str().ok());
    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let compressed = match etag {
        // A document named by its ETag (the OpenAPI v2 forms) is compressed once.
        Some(etag) => memoized(etag, content_type, level, &body),
        // A large body is compressed off the async workers, so other requests keep being served.
        None if body.len() > BLOCKING_THRESHOLD_BYTES => {
            let input = body.clone();
            tokio::task::spawn_blocking(move || gzip(&input, level))
                .await
                .unwrap_or_else(|_| gzip(&body, level))
        }
        None => gzip(&body, level),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    if matches!(policy, Policy::Api { .. }) {
        parts.headers.append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    Response::from_parts(parts, full(compressed))
}

fn gzip(body: &[u8], level: u32) -> Bytes {
    let mut enc = GzEncoder::new(Vec::with_capacity(body.len() / 4 + 64), Compression::new(level));
    enc.write_all(body).expect("writing to a Vec cannot fail");
    Bytes::from(enc.finish().expect("writing to a Vec cannot fail"))
}

/// Compressed bodies of the few documents that carry an ETag, by ETag, media type, level and
/// length (one ETag names both forms of the v2 document).
static MEMO: Mutex<VecDeque<(String, String, u32, usize, Bytes)>> = Mutex::new(VecDeque::new());
const MEMO_ENTRIES: usize = 4;

fn memoized(etag: &str, content_type: &str, level: u32, body: &[u8]) -> Bytes {
    let hit = |e: &(String, String, u32, usize, Bytes)| e.0 == etag && e.1 == content_type && e.2 == level && e.3 == body.len();
    if let Some(e) = MEMO.lock().expect("memo lock").iter().find(|e| hit(e)) {
        return e.4.clone();
    }
    let compressed = gzip(body, level);
    let mut memo = MEMO.lock().expect("memo lock");
    if !memo.iter().any(hit) {
        if memo.len() == MEMO_ENTRIES {
            memo.pop_front();
        }
        memo.push_back((etag.to_string(), content_type.to_string(), level, body.len(), compressed.clone()));
    }
    compressed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn response(body: Vec<u8>) -> Response<Body> {
        Response::builder()
            .status(200)
            .header(header::CONTENT_TYPE, "application/json")
            .body(full(body))
            .unwrap()
    }

    async fn body_of(resp: Response<Body>) -> Bytes {
        resp.into_body().collect().await.unwrap().to_bytes()
    }

    fn gunzip(b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(b).read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn policies() {
        let get = Method::GET;
        let p = |m: &Method, path, ae, watch| Policy::for_request(m, path, ae, watch);
        assert_eq!(p(&get, "/api/v1/configmaps", Some("gzip"), false), Policy::Api { gzip: true });
        assert_eq!(p(&get, "/api/v1/configmaps", Some("deflate, gzip"), false), Policy::Api { gzip: true });
        assert_eq!(p(&get, "/api/v1/configmaps", Some("gzip;q=1.0"), false), Policy::Api { gzip: false });
        assert_eq!(p(&get, "/api/v1/configmaps", Some("GZIP"), false), Policy::Api { gzip: false });
        assert_eq!(p(&get, "/api/v1/configmaps", Some("br"), false), Policy::Api { gzip: false });
        assert_eq!(p(&get, "/api/v1/configmaps", None, false), Policy::Api { gzip: false });
        assert_eq!(p(&get, "/api/v1/configmaps", Some("gzip"), true), Policy::Identity);
        assert_eq!(p(&Method::HEAD, "/api/v1/configmaps", Some("gzip"), false), Policy::Identity);
        assert_eq!(p(&get, "/openapi/v2", Some("gzip"), false), Policy::OpenApiV2 { gzip: true });
        assert_eq!(p(&get, "/openapi/v2", Some("GZIP;q=0.5"), false), Policy::OpenApiV2 { gzip: true });
        assert_eq!(p(&get, "/openapi/v2", Some("gzip;q=0"), false), Policy::OpenApiV2 { gzip: false });
        assert_eq!(p(&get, "/openapi/v2", None, false), Policy::OpenApiV2 { gzip: false });
        assert_eq!(p(&Method::HEAD, "/openapi/v2", Some("gzip"), false), Policy::OpenApiV2 { gzip: false });
        for path in ["/openapi/v3", "/openapi/v3/api/v1", "/version", "/healthz", "/readyz/etcd", "/metrics"] {
            assert_eq!(p(&get, path, Some("gzip"), false), Policy::Identity, "{path}");
        }
        assert_eq!(p(&get, "/healthzx", Some("gzip"), false), Policy::Api { gzip: true });
    }

    #[tokio::test]
    async fn api_bodies_are_gzipped_only_above_the_threshold() {
        let at = vec![b'a'; API_THRESHOLD_BYTES];
        let resp = apply(Policy::Api { gzip: true }, response(at.clone())).await;
        assert!(resp.headers().get(header::CONTENT_ENCODING).is_none());
        assert!(resp.headers().get(header::VARY).is_none());
        assert_eq!(body_of(resp).await, at);

        let above = vec![b'a'; API_THRESHOLD_BYTES + 1];
        let resp = apply(Policy::Api { gzip: true }, response(above.clone())).await;
        assert_eq!(resp.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(resp.headers()[header::VARY], "Accept-Encoding");
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
        let body = body_of(resp).await;
        assert!(body.len() < above.len());
        assert_eq!(gunzip(&body), above);

        let resp = apply(Policy::Api { gzip: false }, response(above.clone())).await;
        assert!(resp.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(body_of(resp).await, above);

        // Bodies compressed on a blocking thread come out the same.
        let large: Vec<u8> = (0..BLOCKING_THRESHOLD_BYTES + 7).map(|i| (i % 251) as u8).collect();
        let resp = apply(Policy::Api { gzip: true }, response(large.clone())).await;
        assert_eq!(resp.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(gunzip(&body_of(resp).await), large);
    }

    #[tokio::test]
    async fn streamed_bodies_are_never_gzipped() {
        let chunks = vec![Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(Bytes::from(vec![b'a'; 200_000])))];
        let body = http_body_util::StreamBody::new(futures::stream::iter(chunks)).boxed();
        let resp = apply(Policy::Api { gzip: true }, Response::new(body)).await;
        assert!(resp.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(body_of(resp).await.len(), 200_000);
    }

    #[tokio::test]
    async fn openapi_v2_varies_always_and_keeps_its_etag() {
        let doc = br#"{"swagger":"2.0","paths":{}}"#.repeat(100);
        let mut resp = response(doc.clone());
        resp.headers_mut().insert(header::ETAG, HeaderValue::from_static("\"ABC\""));
        resp.headers_mut().insert(header::VARY, HeaderValue::from_static("Accept"));
        let plain = apply(Policy::OpenApiV2 { gzip: false }, resp).await;
        let vary: Vec<_> = plain.headers().get_all(header::VARY).iter().collect();
        assert_eq!(vary, ["Accept-Encoding", "Accept"]);
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());

        for _ in 0..2 {
            let mut resp = response(doc.clone());
            resp.headers_mut().insert(header::ETAG, HeaderValue::from_static("\"ABC\""));
            resp.headers_mut().insert(header::VARY, HeaderValue::from_static("Accept"));
            let gz = apply(Policy::OpenApiV2 { gzip: true }, resp).await;
            assert_eq!(gz.headers()[header::CONTENT_ENCODING], "gzip");
            assert_eq!(gz.headers()[header::ETAG], "\"ABC\"");
            let vary: Vec<_> = gz.headers().get_all(header::VARY).iter().collect();
            assert_eq!(vary, ["Accept-Encoding", "Accept"]);
            assert_eq!(gunzip(&body_of(gz).await), doc);
        }

        // Below gziphandler's minimum size, and a 304's empty body: sent as is.
        let small = apply(Policy::OpenApiV2 { gzip: true }, response(vec![b'{'; OPENAPI_V2_MIN_BYTES - 1])).await;
        assert!(small.headers().get(header::CONTENT_ENCODING).is_none());
        let not_modified = apply(Policy::OpenApiV2 { gzip: true }, response(Vec::new())).await;
        assert!(not_modified.headers().get(header::CONTENT_ENCODING).is_none());
    }
}
