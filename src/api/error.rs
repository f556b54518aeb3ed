//! The one error type of the API and its JSON envelope: every failure a client sees, from
//! routing to storage, goes through `ApiError::into_response`.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::auth::AuthError;
use crate::domain::Scope;
use crate::store::StoreError;

tokio::task_local! {
    /// The id of the request being handled, for error bodies (set by the request-id layer).
    pub static REQUEST_ID: String;
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub fields: Map<String, Value>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            fields: Map::new(),
            headers: Vec::new(),
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 422 with one message per offending field.
    pub fn invalid(code: &'static str, fields: Vec<(&'static str, String)>) -> Self {
        let message = match fields.as_slice() {
            [(field, msg)] => format!("{field}: {msg}"),
            _ => format!("{} fields are invalid", fields.len()),
        };
        let mut e = Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message);
        e.fields = fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), Value::String(v)))
            .collect();
        e
    }

    pub fn insufficient_scope(needed: Scope) -> Self {
        let mut e = Self::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            format!("this token lacks the {needed} scope"),
        );
        e.fields.insert("scope".into(), Value::String(needed.to_string()));
        e.with_header(
            header::WWW_AUTHENTICATE,
            &format!("Bearer realm=\"ipx\", error=\"insufficient_scope\", scope=\"{needed}\""),
        )
    }

    pub fn with_header(mut self, name: HeaderName, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((name, v));
        }
        self
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the request id identifies it in our logs",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::not_found(what),
            StoreError::Conflict { code, message } => Self::new(StatusCode::CONFLICT, code, message),
            StoreError::Invalid { code, field, message } => Self::invalid(code, vec![(field, message)]),
            StoreError::Forbidden { code, message } => Self::new(StatusCode::FORBIDDEN, code, message),
            StoreError::Batch(items) => {
                let mut e = Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_batch",
                    format!("{} items of the batch are invalid; nothing was applied", items.len()),
                );
                e.fields = items
                    .into_iter()
                    .map(|(item, field, msg)| (format!("{item}.{field}"), Value::String(msg)))
                    .collect();
                e
            }
            StoreError::Precondition(message) => {
                Self::new(StatusCode::PRECONDITION_FAILED, "precondition_failed", message)
            }
            StoreError::Unavailable(why) => {
                tracing::error!(problem = %why, "write refused");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "writes are refused until an operator repairs the server's data directory; nothing was changed",
                )
            }
            StoreError::Locked
            | StoreError::Storage(_)
            | StoreError::Internal(_)
            | StoreError::Missing(_)
            | StoreError::Unusable(_) => Self::internal(e),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Missing => Self::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send Authorization: Bearer ipxapi_…",
            )
            .with_header(header::WWW_AUTHENTICATE, "Bearer realm=\"ipx\""),
            AuthError::Invalid => Self::new(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the token is invalid, expired or revoked",
            )
            .with_header(
                header::WWW_AUTHENTICATE,
                "Bearer realm=\"ipx\", error=\"invalid_token\"",
            ),
            AuthError::Throttled(wait) => {
                let secs = wait.as_secs().max(1).to_string();
                Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "auth_throttled",
                    format!("too many failed token verifications; retry in {secs} s"),
                )
                .with_header(header::RETRY_AFTER, &secs)
            }
            AuthError::Busy => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "too many token verifications at once; retry shortly",
            )
            .with_header(header::RETRY_AFTER, "1"),
            AuthError::Store(e) => e.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = REQUEST_ID.try_with(|id| id.clone()).unwrap_or_default();
        let mut body = json!({
            "status": self.status.as_u16(),
            "code": self.code,
            "message": self.message,
            "request_id": request_id,
        });
        if !self.fields.is_empty() {
            body["fields"] = Value::Object(self.fields);
        }
        let mut response = (self.status, axum::Json(json!({ "error": body }))).into_response();
        for (name, value) in self.headers {
            response.headers_mut().append(name, value);
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
