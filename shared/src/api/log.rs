//! The one place a request's error is logged: a refusal at info, our own failures at error
//! with their cause, both with the request id.

use crate::platform::error::{Error, Kind};

pub fn error(error: &Error, request_id: &str) {
    match error.kind() {
        Kind::Internal | Kind::Unavailable => tracing::error!(
            request_id,
            code = error.code(),
            cause = %error.causes(),
            "request failed"
        ),
        _ => tracing::info!(
            request_id,
            code = error.code(),
            message = error.message(),
            "request refused"
        ),
    }
}
