//! Authentication of requests: verified client certificates (CN = user, O = groups) and static
//! bearer tokens from `--token-auth-file`, as upstream's x509 and token-file authenticators.
//! Authorization is not done here; every authenticated user gets `system:authenticated`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use http::HeaderMap;
use rustls::pki_types::CertificateDer;

use super::UserInfo;
use crate::config::Config;

/// Group added to every authenticated user.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";

/// Outcome of authenticating one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthResult {
    Authenticated(UserInfo),
    /// No credentials were presented.
    Anonymous,
    /// Credentials were presented but are not valid (unknown token, unusable certificate).
    Failed,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("reading token file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("token file {path}, line {line}: {msg}")]
    Parse { path: PathBuf, line: usize, msg: String },
}

/// Authenticates requests from their TLS peer certificates and headers.
#[derive(Debug, Default, Clone)]
pub struct Authenticator {
    tokens: HashMap<String, UserInfo>,
}

impl Authenticator {
    /// Build from `--token-auth-file` (client certificates are verified by TLS against
    /// `--client-ca-file`, so they need no set-up here). A bad token file is an error.
    pub fn from_config(cfg: &Config) -> Result<Self, AuthError> {
        match &cfg.token_auth_file {
            Some(path) => Self::from_token_file(path),
            None => Ok(Self::default()),
        }
    }

    pub fn from_token_file(path: &Path) -> Result<Self, AuthError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| AuthError::Read { path: path.to_path_buf(), source })?;
        let tokens =
            parse_token_file(&text).map_err(|(line, msg)| AuthError::Parse { path: path.to_path_buf(), line, msg })?;
        tracing::info!(path = %path.display(), tokens = tokens.len(), "loaded static tokens");
        Ok(Self { tokens })
    }

    /// An authenticator with the given token -> user table.
    pub fn with_tokens(tokens: HashMap<String, UserInfo>) -> Self {
        Self { tokens }
    }

    /// Authenticate one request. `peer_certs` must come from a TLS session that already
    /// verified them against the client CA (rustls does, see `tls::build_server_config`).
    /// A client certificate wins over a bearer token, as in upstream's authenticator chain.
    pub fn authenticate(&self, peer_certs: Option<&[CertificateDer<'_>]>, headers: &HeaderMap) -> AuthResult {
        if let Some(leaf) = peer_certs.and_then(|c| c.first()) {
            return match user_from_cert(leaf) {
                Some(user) => AuthResult::Authenticated(with_authenticated_group(user)),
                None => AuthResult::Failed,
            };
        }
        match bearer_token(headers) {
            Some(token) => match self.tokens.get(token) {
                Some(user) => AuthResult::Authenticated(with_authenticated_group(user.clone())),
                None => AuthResult::Failed,
            },
            None => AuthResult::Anonymous,
        }
    }
}

impl Authenticator {
    /// The user a bearer token belongs to (for TokenReview).
    pub fn lookup_token(&self, token: &str) -> Option<UserInfo> {
        self.tokens.get(token).cloned().map(with_authenticated_group)
    }
}

fn with_authenticated_group(mut user: UserInfo) -> UserInfo {
    if !user.groups.iter().any(|g| g == AUTHENTICATED_GROUP) {
        user.groups.push(AUTHENTICATED_GROUP.to_string());
    }
    user
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive);
/// None when absent, empty or of another scheme.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// User from a client certificate: CN is the name, each O a group. No CN -> None.
fn user_from_cert(der: &CertificateDer<'_>) -> Option<UserInfo> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let name = subject.iter_common_name().next()?.as_str().ok()?.to_string();
    if name.is_empty() {
        return None;
    }
    let groups = subject.iter_organization().filter_map(|o| o.as_str().ok()).map(str::to_string).collect();
    Some(UserInfo { name, uid: String::new(), groups })
}

/// Parse the upstream static token CSV: `token,user,uid[,"group1,group2"]` per line.
/// Blank lines and `#` comments are skipped; records with an empty token are skipped (upstream
/// warns); a later duplicate token replaces the earlier one. Errors carry the 1-based line.
pub fn parse_token_file(text: &str) -> Result<HashMap<String, UserInfo>, (usize, String)> {
    let mut tokens = HashMap::new();
    for (idx, raw) in text.lines().enumerate() {
        let line_no = idx + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields = split_csv_line(line).map_err(|msg| (line_no, msg))?;
        if fields.len() < 3 {
            return Err((
                line_no,
                format!("need at least 3 columns (token, user name, user uid), found {}", fields.len()),
            ));
        }
        let token = fields[0].trim();
        if token.is_empty() {
            tracing::warn!(line = line_no, "skipping a record with an empty token in the token file");
            continue;
        }
        let name = fields[1].trim();
        if name.is_empty() {
            return Err((line_no, "empty user name".into()));
        }
        let groups = fields
            .get(3)
            .map(|g| g.split(',').map(str::trim).filter(|g| !g.is_empty()).map(str::to_string).collect())
            .unwrap_or_default();
        let user = UserInfo { name: name.to_string(), uid: fields[2].trim().to_string(), groups };
        if tokens.insert(token.to_string(), user).is_some() {
            tracing::warn!(line = line_no, "duplicate token in the token file; the later record wins");
        }
    }
    Ok(tokens)
}

/// Split one CSV record: comma-separated, fields optionally double-quoted with `""` as an
/// escaped quote, spaces before a field ignored.
fn split_csv_line(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
            chars.next();
        }
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err("unterminated quoted field".into()),
                }
            }
            while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
                chars.next();
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(c) => return Err(format!("unexpected {c:?} after a quoted field")),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => {
                        fields.push(field);
                        break;
                    }
                    Some('"') => return Err("bare \" in an unquoted field".into()),
                    Some(c) => field.push(c),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::tls;
    use rustls::pki_types::pem::PemObject;

    fn user(name: &str, uid: &str, groups: &[&str]) -> UserInfo {
        UserInfo { name: name.into(), uid: uid.into(), groups: groups.iter().map(|g| g.to_string()).collect() }
    }

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, auth.parse().unwrap());
        h
    }

    #[test]
    fn csv_fields() {
        assert_eq!(split_csv_line("a,b,c").unwrap(), ["a", "b", "c"]);
        assert_eq!(split_csv_line(r#"a, "b,c" ,"d""e""#).unwrap(), ["a", "b,c", "d\"e"]);
        assert_eq!(split_csv_line("a,,").unwrap(), ["a", "", ""]);
        assert!(split_csv_line(r#"a,"b"#).is_err());
        assert!(split_csv_line(r#"a,"b"x"#).is_err());
        assert!(split_csv_line(r#"a,b"c"#).is_err());
    }

    #[test]
    fn token_file_formats() {
        let text = "# comment\n\
                    t1,admin,uid-1,\"system:masters,devs\"\n\
                    \n\
                    t2,bob,uid-2\n\
                    t3,carol,uid-3,ops\n\
                    ,nobody,uid-4\n\
                    t2,bobby,uid-5,\n";
        let tokens = parse_token_file(text).unwrap();
        assert_eq!(tokens.len(), 3);
        assert_eq!(tokens["t1"], user("admin", "uid-1", &["system:masters", "devs"]));
        assert_eq!(tokens["t2"], user("bobby", "uid-5", &[]));
        assert_eq!(tokens["t3"], user("carol", "uid-3", &["ops"]));
    }

    #[test]
    fn token_file_errors_carry_line() {
        assert_eq!(parse_token_file("t1,a,1\nt2,b\n").unwrap_err().0, 2);
        assert_eq!(parse_token_file("t1,a,1,\"g1,g2\n").unwrap_err().0, 1);
        assert_eq!(parse_token_file("\n\nt1,,1\n").unwrap_err().0, 3);
    }

    #[test]
    fn token_file_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("tokens.csv");
        std::fs::write(&good, "secret,alice,42,\"a,b\"\n").unwrap();
        let auth = Authenticator::from_token_file(&good).unwrap();
        assert_eq!(
            auth.authenticate(None, &headers("Bearer secret")),
            AuthResult::Authenticated(user("alice", "42", &["a", "b", AUTHENTICATED_GROUP]))
        );
        let bad = dir.path().join("bad.csv");
        std::fs::write(&bad, "only,two\n").unwrap();
        assert!(matches!(Authenticator::from_token_file(&bad), Err(AuthError::Parse { line: 1, .. })));
        assert!(matches!(Authenticator::from_token_file(&dir.path().join("missing")), Err(AuthError::Read { .. })));
    }

    #[test]
    fn bearer_tokens() {
        let auth = Authenticator::with_tokens(HashMap::from([("tok".to_string(), user("u", "1", &[]))]));
        let ok = AuthResult::Authenticated(user("u", "1", &[AUTHENTICATED_GROUP]));
        assert_eq!(auth.authenticate(None, &headers("Bearer tok")), ok);
        assert_eq!(auth.authenticate(None, &headers("bearer  tok ")), ok);
        assert_eq!(auth.authenticate(None, &headers("Bearer nope")), AuthResult::Failed);
        assert_eq!(auth.authenticate(None, &headers("Basic dTpw")), AuthResult::Anonymous);
        assert_eq!(auth.authenticate(None, &headers("Bearer ")), AuthResult::Anonymous);
        assert_eq!(auth.authenticate(None, &HeaderMap::new()), AuthResult::Anonymous);
    }

    #[test]
    fn client_certificates() {
        let auth = Authenticator::with_tokens(HashMap::from([("tok".to_string(), user("u", "1", &[]))]));
        let (ca, ca_key) = tls::generate_ca("ca").unwrap();
        let (cert, _) = tls::generate_client_cert(&ca, &ca_key, "alice", &["devs"]).unwrap();
        let der = CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
        let certs = [der];
        // The certificate wins over a token.
        assert_eq!(
            auth.authenticate(Some(&certs), &headers("Bearer tok")),
            AuthResult::Authenticated(user("alice", "", &["devs", AUTHENTICATED_GROUP]))
        );
        // Already in system:authenticated: not added twice.
        let (cert, _) = tls::generate_client_cert(&ca, &ca_key, "bob", &[AUTHENTICATED_GROUP]).unwrap();
        let certs = [CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()];
        assert_eq!(
            auth.authenticate(Some(&certs), &HeaderMap::new()),
            AuthResult::Authenticated(user("bob", "", &[AUTHENTICATED_GROUP]))
        );
        // An empty chain is no credential; garbage is a failure.
        assert_eq!(auth.authenticate(Some(&[]), &HeaderMap::new()), AuthResult::Anonymous);
        let junk = [CertificateDer::from(vec![1u8, 2, 3])];
        assert_eq!(auth.authenticate(Some(&junk), &HeaderMap::new()), AuthResult::Failed);
    }
}
