//! Discord's error shapes: `{"code", "message"}` with the matching HTTP status, and for form
//! errors (`50035`) the per-field `errors` tree of `_errors` lists. Internal failures are logged
//! with where they were raised and answered with a bare 500; their details never reach a client.
//! A database that cannot be reached (down, restarting, or no pooled connection free in time)
//! is no bug: that is 503 with `Retry-After`, decided here for every route.

use std::panic::Location;

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::{json, Map, Value};

use crate::credentials::password::PasswordError;

/// Objects a route can fail to find, with Discord's codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unknown {
    Application = 10002,
    Channel = 10003,
    Guild = 10004,
    Invite = 10006,
    Member = 10007,
    Message = 10008,
    Overwrite = 10009,
    Role = 10011,
    User = 10013,
    Emoji = 10014,
    Webhook = 10015,
    Ban = 10026,
    Sticker = 10060,
    VoiceState = 10065,
    Attachment = 10090,
}

impl Unknown {
    fn message(self) -> &'static str {
        match self {
            Self::Application => "Unknown Application",
            Self::Channel => "Unknown Channel",
            Self::Guild => "Unknown Guild",
            Self::Invite => "Unknown Invite",
            Self::Member => "Unknown Member",
            Self::Message => "Unknown Message",
            Self::Overwrite => "Unknown Overwrite",
            Self::Role => "Unknown Role",
            Self::User => "Unknown User",
            Self::Emoji => "Unknown Emoji",
            Self::Webhook => "Unknown Webhook",
            Self::Ban => "Unknown Ban",
            Self::Sticker => "Unknown Sticker",
            Self::VoiceState => "Unknown Voice State",
            Self::Attachment => "Unknown Attachment",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("401: Unauthorized")]
    Unauthorized,
    #[error("404: Not Found")]
    NotFound,
    #[error("{}", .0.message())]
    Unknown(Unknown),
    /// The caller may not see the resource at all (403, 50001).
    #[error("Missing Access")]
    MissingAccess,
    /// The caller lacks a guild or channel permission (403, 50013).
    #[error("Missing Permissions")]
    MissingPermissions,
    #[error("Invalid Form Body")]
    Form(FormErrors),
    /// The account lacks an instance right (see `rights`).
    #[error("You are missing the following rights: {}", .0.name)]
    MissingRight(crate::rights::Right),
    #[error("The request body contains invalid JSON.")]
    InvalidJson,
    #[error("Request entity too large")]
    TooLarge,
    /// Anything else Discord answers with a code and a message.
    #[error("{message}")]
    Plain {
        status: StatusCode,
        code: u32,
        message: &'static str,
    },
    /// In a cluster, the rooms-service room the call acts on is served by the node at `url`
    /// (421, 10204): the call must be sent there.
    #[error("The room is on another node")]
    RoomElsewhere { url: String },
    /// The database cannot be reached now; the request may simply be sent again.
    #[error("503: Service Unavailable")]
    Unavailable {
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("500: Internal Server Error")]
    Internal {
        source: Box<dyn std::error::Error + Send + Sync>,
        location: &'static Location<'static>,
    },
}

impl ApiError {
    /// `Ok` when `rights` include `right`.
    pub fn require(rights: i64, right: crate::rights::Right) -> Result<(), Self> {
        if crate::rights::has(rights, right) {
            Ok(())
        } else {
            Err(Self::MissingRight(right))
        }
    }

    /// 50024, as Discord answers an action on a channel that does not carry it (a voice action
    /// on a text channel, a call in a guild, recipients of a DM).
    pub fn wrong_channel_type() -> Self {
        Self::Plain {
            status: StatusCode::BAD_REQUEST,
            code: 50024,
            message: "Cannot execute action on this channel type",
        }
    }

    /// An internal failure, recording where it was raised.
    #[track_caller]
    pub fn internal(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal {
            source: source.into(),
            location: Location::caller(),
        }
    }

    fn code(&self) -> u32 {
        match self {
            Self::Unauthorized | Self::NotFound | Self::Internal { .. } => 0,
            Self::Unavailable { .. } => 0,
            Self::Unknown(unknown) => *unknown as u32,
            Self::Form(_) => 50035,
            Self::MissingAccess => 50001,
            Self::MissingPermissions => 50013,
            Self::MissingRight(_) => 50013,
            Self::InvalidJson => 50109,
            Self::TooLarge => 40005,
            Self::Plain { code, .. } => *code,
            Self::RoomElsewhere { .. } => 10204,
        }
    }
}

/// Internal failures convert with `?`, remembering the line of the `?`.
macro_rules! internal_from {
    ($($source:ty),*) => {$(
        impl From<$source> for ApiError {
            #[track_caller]
            fn from(source: $source) -> Self {
                Self::internal(source)
            }
        }
    )*};
}
internal_from!(jsonwebtoken::errors::Error, serde_json::Error);

/// Seconds a client is told to wait (`Retry-After`) when the database cannot be reached: an
/// embedded cluster restarts well within it.
const RETRY_AFTER_SECS: u32 = 1;

/// The `Retry-After` header every 503 carries.
pub fn retry_after() -> (header::HeaderName, u32) {
    (header::RETRY_AFTER, RETRY_AFTER_SECS)
}

/// A query that failed because the database went away is 503; any other is a bug (500).
impl From<diesel::result::Error> for ApiError {
    #[track_caller]
    fn from(error: diesel::result::Error) -> Self {
        if lost_database(&error) {
            Self::Unavailable {
                source: error.into(),
            }
        } else {
            Self::internal(error)
        }
    }
}

/// No connection in time, or none could be made: 503.
impl From<crate::db::PoolError> for ApiError {
    #[track_caller]
    fn from(error: crate::db::PoolError) -> Self {
        use deadpool::managed::PoolError;
        match error {
            PoolError::Timeout(_) | PoolError::Backend(_) => Self::Unavailable {
                source: error.into(),
            },
            other => Self::internal(other),
        }
    }
}

/// The request threads stopped under the request: the server is stopping (503, try again).
impl From<crate::request_threads::Stopped> for ApiError {
    fn from(stopped: crate::request_threads::Stopped) -> Self {
        Self::Unavailable {
            source: stopped.into(),
        }
    }
}

/// The protocol-neutral failures, answered as the routes always answered them.
impl From<crate::error::Error> for ApiError {
    #[track_caller]
    fn from(error: crate::error::Error) -> Self {
        use crate::cdn::work::WorkError;
        use crate::error::Error;
        match error {
            Error::Database(error) => error.into(),
            Error::Pool(error) => error.into(),
            Error::InvalidImage { field } => {
                FormErrors::field(&field, "IMAGE_INVALID", "Invalid image data").into()
            }
            Error::FileTooLarge { field, max_bytes } => FormErrors::field(
                &field,
                "BINARY_TYPE_MAX_SIZE",
                format!("File cannot be larger than {} kb.", max_bytes / 1024),
            )
            .into(),
            Error::BodyTooLarge => Self::TooLarge,
            // Every image worker busy and the queue full: come back shortly.
            Error::Work(WorkError::Busy) => Self::Plain {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: 0,
                message: "The server is busy; try again shortly.",
            },
            error @ (Error::Work(WorkError::Failed)
            | Error::Storage(_)
            | Error::Actor(_)
            | Error::Redis(_)) => Self::internal(error),
        }
    }
}

/// Busy hashers are a 503 the client may retry; anything else a bug.
impl From<PasswordError> for ApiError {
    #[track_caller]
    fn from(error: PasswordError) -> Self {
        match error {
            PasswordError::Work(crate::cdn::work::WorkError::Busy) => Self::Unavailable {
                source: error.into(),
            },
            other => Self::internal(other),
        }
    }
}

/// Whether a query failed because its connection or the database server went away, rather
/// than because of the query.
fn lost_database(error: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match error {
        Error::DatabaseError(
            DatabaseErrorKind::UnableToSendCommand | DatabaseErrorKind::ClosedConnection,
            _,
        ) => true,
        // PostgreSQL's class 57 (operator intervention): the server ended this connection, or
        // is shutting down or starting up. diesel passes these on by message only.
        Error::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            let message = info.message();
            message.starts_with("terminating connection")
                || message.starts_with("the database system is")
        }
        Error::RollbackErrorOnCommit { commit_error, .. } => lost_database(commit_error),
        _ => false,
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::MissingRight(_) | Self::MissingAccess | Self::MissingPermissions => {
                StatusCode::FORBIDDEN
            }
            Self::NotFound | Self::Unknown(_) => StatusCode::NOT_FOUND,
            Self::Form(_) | Self::InvalidJson => StatusCode::BAD_REQUEST,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Plain { status, .. } => *status,
            Self::RoomElsewhere { .. } => StatusCode::MISDIRECTED_REQUEST,
            Self::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut body = json!({ "code": self.code(), "message": self.to_string() });
        match self {
            Self::Form(errors) => body["errors"] = Value::Object(errors.0.clone()),
            Self::RoomElsewhere { url } => body["url"] = json!(url),
            Self::Internal { source, location } => {
                tracing::error!(error = %source, %location, "request failed");
            }
            Self::Unavailable { source } => {
                tracing::warn!(error = %source, "unavailable for now");
            }
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        if self.status_code() == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header(retry_after());
        }
        response.json(body)
    }
}

/// Per-field errors of a form body, keyed by the field's path (`a.b.0.c`).
#[derive(Debug, Clone, Default)]
pub struct FormErrors(Map<String, Value>);

impl FormErrors {
    pub fn field(path: &str, code: &str, message: impl Into<String>) -> Self {
        let mut errors = Self::default();
        errors.add(path, code, message);
        errors
    }

    pub fn add(&mut self, path: &str, code: &str, message: impl Into<String>) {
        let segments: Vec<&str> = path.split('.').filter(|s| !s.is_empty()).collect();
        self.add_at(&segments, code, message);
    }

    /// [`FormErrors::add`] with the path given segment by segment (for names with dots).
    pub fn add_at(&mut self, segments: &[&str], code: &str, message: impl Into<String>) {
        let mut node = &mut self.0;
        for segment in segments.iter().filter(|s| !s.is_empty()) {
            let child = node
                .entry(segment.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !child.is_object() {
                *child = Value::Object(Map::new());
            }
            let Value::Object(child) = child else {
                return;
            };
            node = child;
        }
        let list = node
            .entry("_errors".to_string())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = list {
            list.push(json!({ "code": code, "message": message.into() }));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok` when no field failed, else the 50035 error.
    pub fn into_result(self) -> Result<(), ApiError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Form(self))
        }
    }
}

impl From<FormErrors> for ApiError {
    fn from(errors: FormErrors) -> Self {
        Self::Form(errors)
    }
}

/// What a deletion found: nothing (someone else deleted it first) is `unknown`, and rolls back
/// the change, so no entry is written and no event told.
pub fn existed(deleted: bool, unknown: Unknown) -> Result<(), ApiError> {
    if deleted {
        Ok(())
    } else {
        Err(ApiError::Unknown(unknown))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_database_is_503_and_a_bad_query_500() {
        use diesel::result::{DatabaseErrorKind, Error};
        let error = |kind, message: &str| Error::DatabaseError(kind, Box::new(message.to_string()));
        let status = |error: Error| ApiError::from(error).status_code();
        let lost = [
            error(DatabaseErrorKind::UnableToSendCommand, "connection closed"),
            error(
                DatabaseErrorKind::Unknown,
                "terminating connection due to administrator command",
            ),
            error(
                DatabaseErrorKind::Unknown,
                "the database system is starting up",
            ),
        ];
        for lost in lost {
            assert_eq!(status(lost), StatusCode::SERVICE_UNAVAILABLE);
        }
        let bugs = [
            error(DatabaseErrorKind::UniqueViolation, "duplicate key"),
            error(DatabaseErrorKind::Unknown, "syntax error at or near"),
            Error::NotFound,
        ];
        for bug in bugs {
            assert_eq!(status(bug), StatusCode::INTERNAL_SERVER_ERROR);
        }
    }

    #[test]
    fn busy_image_workers_say_when_to_retry() {
        let busy = crate::error::Error::Work(crate::cdn::work::WorkError::Busy);
        let response = ApiError::from(busy).error_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response
                .headers()
                .get(header::RETRY_AFTER)
                .map(|v| v.as_bytes()),
            Some(b"1".as_slice())
        );
    }

    #[test]
    fn form_errors_nest_by_path() {
        let mut errors =
            FormErrors::field("login", "INVALID_LOGIN", "Login or password is invalid.");
        errors.add("a.0.b", "BASE_TYPE_REQUIRED", "This field is required");
        errors.add("login", "SECOND", "again");
        let value = Value::Object(errors.0);
        assert_eq!(value["login"]["_errors"][1]["code"], "SECOND");
        assert_eq!(
            value["a"]["0"]["b"]["_errors"][0]["code"],
            "BASE_TYPE_REQUIRED"
        );
    }
}
