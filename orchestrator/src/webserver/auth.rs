//! Basic authentication, as Kestra's `kestra.server.basic-auth` (`AuthenticationFilter` and
//! `BasicAuthService` at 58c1ca2d0): when a username and password are configured, every
//! request but those to an open URL must carry them in an `Authorization: Basic` header, or
//! is answered 401 with `WWW-Authenticate: Basic realm="Kestra"`.
//!
//! The open URLs are Kestra's default `open-urls` and its management endpoints: the health
//! checks (`/health`, `/api/v1/health`) and the webhook triggers
//! (`/api/v1/executions/webhook/…`), which carry their own key. The credentials are compared
//! in constant time, and the password is never logged, echoed, nor shown by `Debug`.
//!
//! Kestra also requires the username to be an email address, since its UI signs in with one;
//! flowbench has no UI and takes any username without a `:`, which Basic authentication
//! cannot carry.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use subtle::ConstantTimeEq;

/// Kestra's `BasicAuthConfiguration` default realm.
const REALM: &str = "Kestra";

/// Paths served without credentials, by prefix (Kestra's default `open-urls`, with the
/// health checks Kestra leaves open as management endpoints).
const OPEN_PATHS: &[&str] = &["/health", "/api/v1/health", "/api/v1/executions/webhook/"];

/// Kestra's `EMAIL_PASSWORD_MAX_LEN`.
const MAX_LEN: usize = 256;

/// The username and password every request must carry.
#[derive(Clone)]
pub struct BasicAuth {
    username: String,
    password: String,
}

/// Why a username and password cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BasicAuthError {
    /// The username is empty.
    #[error("the basic-auth username is empty")]
    EmptyUsername,
    /// The username holds a `:`, which ends the username in a Basic `Authorization` header.
    #[error("the basic-auth username must not contain `:`")]
    ColonInUsername,
    /// The password is empty.
    #[error("the basic-auth password is empty")]
    EmptyPassword,
    /// The username or password is longer than Kestra allows.
    #[error("the basic-auth {0} is longer than 256 characters")]
    TooLong(&'static str),
}

impl BasicAuth {
    pub fn new(username: String, password: String) -> Result<Self, BasicAuthError> {
        if username.is_empty() {
            return Err(BasicAuthError::EmptyUsername);
        }
        if username.contains(':') {
            return Err(BasicAuthError::ColonInUsername);
        }
        if password.is_empty() {
            return Err(BasicAuthError::EmptyPassword);
        }
        if username.chars().count() > MAX_LEN {
            return Err(BasicAuthError::TooLong("username"));
        }
        if password.chars().count() > MAX_LEN {
            return Err(BasicAuthError::TooLong("password"));
        }
        Ok(BasicAuth { username, password })
    }

    pub fn username(&self) -> &str {
        &self.username
    }

    /// Whether an `Authorization` header's value carries these credentials. Both parts are
    /// compared in full whatever the other's outcome, in time that does not depend on where
    /// they differ.
    fn accepts(&self, authorization: &HeaderValue) -> bool {
        let Some((username, password)) = decode(authorization) else {
            return false;
        };
        let user_ok = username.as_bytes().ct_eq(self.username.as_bytes());
        let password_ok = password.as_bytes().ct_eq(self.password.as_bytes());
        (user_ok & password_ok).into()
    }
}

/// The password is left out, so that a configuration printed with `{:?}` does not leak it.
impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuth")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// `(username, password)` of a `Basic` header value (the scheme's name in any case).
fn decode(authorization: &HeaderValue) -> Option<(String, String)> {
    let value = authorization.to_str().ok()?;
    let (scheme, credentials) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(credentials.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (username, password) = decoded.split_once(':')?;
    Some((username.to_string(), password.to_string()))
}

/// Whether `path` is served without credentials.
pub(crate) fn is_open(path: &str) -> bool {
    OPEN_PATHS.iter().any(|open| {
        if open.ends_with('/') {
            path.starts_with(open)
        } else {
            path == *open
        }
    })
}

/// The middleware: passes a request to an open path, or one with the right credentials, and
/// answers any other 401.
pub(crate) async fn require(
    State(auth): State<Arc<BasicAuth>>,
    request: Request,
    next: Next,
) -> Response {
    if is_open(request.uri().path())
        || request
            .headers()
            .get(header::AUTHORIZATION)
            .is_some_and(|h| auth.accepts(h))
    {
        return next.run(request).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_str(&format!("Basic realm=\"{REALM}\""))
                .expect("the realm is a valid header value"),
        )],
        axum::Json(super::ErrorBody {
            message: "authentication required: give the server's basic-auth username and password"
                .into(),
        }),
    )
        .into_response()
}

/// Declares the OpenAPI document's `basicAuth` security scheme (a `Modify` on `ApiDoc`).
pub(crate) struct SecurityScheme;

impl utoipa::Modify for SecurityScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{self, HttpAuthScheme, HttpBuilder};
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "basicAuth",
                security::SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Basic)
                        .description(Some(format!(
                            "The server's `--basic-auth-username` and `--basic-auth-password` \
                             (realm `{REALM}`), when it is started with them."
                        )))
                        .build(),
                ),
            );
    }
}

/// Marks every operation but those on an open path as requiring `basicAuth`.
pub(crate) fn mark_guarded(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::security::SecurityRequirement;
    for (path, item) in openapi.paths.paths.iter_mut() {
        if is_open(path) {
            continue;
        }
        for op in operations(item) {
            op.security = Some(vec![SecurityRequirement::new::<_, _, &str>(
                "basicAuth",
                [],
            )]);
            super::document_error(
                op,
                "401",
                "Basic authentication is on and the request's credentials are missing or wrong",
            );
        }
    }
}

pub(super) fn operations(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(user: &str, password: &str) -> HeaderValue {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {encoded}")).unwrap()
    }

    #[test]
    fn accepts_only_the_configured_credentials() {
        let auth = BasicAuth::new("admin@kestra.io".into(), "kestra".into()).unwrap();
        assert!(auth.accepts(&header("admin@kestra.io", "kestra")));
        assert!(!auth.accepts(&header("admin@kestra.io", "kestr")));
        assert!(!auth.accepts(&header("admin@kestra.io", "kestra2")));
        assert!(!auth.accepts(&header("admin", "kestra")));
        assert!(!auth.accepts(&HeaderValue::from_static("Bearer abc")));
        assert!(!auth.accepts(&HeaderValue::from_static("Basic !!!")));
        // The scheme's name is case-insensitive (RFC 7617), as Kestra's filter reads it.
        let lower = header("admin@kestra.io", "kestra")
            .to_str()
            .unwrap()
            .replacen("Basic", "basic", 1);
        assert!(auth.accepts(&HeaderValue::from_str(&lower).unwrap()));
    }

    #[test]
    fn a_password_with_a_colon_is_kept_whole() {
        let auth = BasicAuth::new("u".into(), "a:b".into()).unwrap();
        assert!(auth.accepts(&header("u", "a:b")));
        assert!(!auth.accepts(&header("u", "a")));
    }

    #[test]
    fn debug_output_leaves_the_password_out() {
        let auth = BasicAuth::new("admin".into(), "s3cr3t-pa55".into()).unwrap();
        let shown = format!("{auth:?}");
        assert!(shown.contains("admin"), "{shown}");
        assert!(!shown.contains("s3cr3t-pa55"), "{shown}");
    }

    #[test]
    fn bad_credentials_are_refused_with_the_reason() {
        assert_eq!(
            BasicAuth::new(String::new(), "p".into()).unwrap_err(),
            BasicAuthError::EmptyUsername
        );
        assert_eq!(
            BasicAuth::new("a:b".into(), "p".into()).unwrap_err(),
            BasicAuthError::ColonInUsername
        );
        assert_eq!(
            BasicAuth::new("a".into(), String::new()).unwrap_err(),
            BasicAuthError::EmptyPassword
        );
        assert_eq!(
            BasicAuth::new("a".into(), "p".repeat(257)).unwrap_err(),
            BasicAuthError::TooLong("password")
        );
    }

    #[test]
    fn open_paths_are_the_health_checks_and_webhooks() {
        assert!(is_open("/health"));
        assert!(is_open("/api/v1/health"));
        assert!(is_open("/api/v1/executions/webhook/ns/flow/key"));
        assert!(!is_open("/healthz"));
        assert!(!is_open("/api/v1/executions/webhook"));
        assert!(!is_open("/api/v1/executions/ns/flow"));
        assert!(!is_open("/api/v1/flows"));
        assert!(!is_open("/api/v1/openapi.json"));
    }
}
