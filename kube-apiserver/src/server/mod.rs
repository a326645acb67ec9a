//! HTTPS serving: TLS (rustls), authentication, HTTP/1.1 + HTTP/2, graceful shutdown.
//! The REST logic lives behind the [`Handler`] trait so this module knows nothing about resources.

pub mod auth;
pub mod serve;
pub mod tls;

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;

/// Response body type used everywhere: full bodies and streamed watch bodies alike.
pub type Body = BoxBody<Bytes, Infallible>;

/// Who made a request (from a client certificate or a bearer token).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
}

/// The REST layer, called for every authenticated request (and for the few public paths).
#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn handle(&self, req: http::Request<hyper::body::Incoming>, user: Option<UserInfo>) -> http::Response<Body>;
}
