//! Request extractors whose rejections are this API's typed errors (`ErrorBody`), not axum's plain
//! text. Put [`crate::http::caller::Caller`] before them: a request without a valid token is a 401
//! whatever else is wrong with it.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// The query string, deserialized; a malformed one is a typed 400.
#[derive(Debug, Clone)]
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(QueryParams(value)),
            Err(e) => Err(Error::BadRequest(e.body_text())),
        }
    }
}

/// The JSON request body, deserialized; a malformed one is a typed 400, one sent without
/// `Content-Type: application/json` a typed 415, one over the route's limit a 413.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self> {
        let limit = req.extensions().get::<crate::BodyLimit>().map(|l| l.0);
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(JsonBody(value)),
            Err(JsonRejection::MissingJsonContentType(e)) => Err(Error::UnsupportedMediaType(e.body_text())),
            Err(e) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                Err(Error::TooLarge(limit.unwrap_or_default()))
            }
            Err(e) => Err(Error::BadRequest(e.body_text())),
        }
    }
}
