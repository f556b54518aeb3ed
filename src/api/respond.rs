//! Success envelopes: `{"data": …}`, and lists as `{"data": […], "meta": {"pagination": …}}`.
//! The same types are the OpenAPI schemas (`Data<ZoneView>`, `List<ZoneView>`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::extract::{PageQuery, encode_cursor};
use crate::store::Page;

/// One resource.
#[derive(Serialize, ToSchema)]
pub struct Data<T> {
    pub data: T,
}

/// A page of a list.
#[derive(Serialize, ToSchema)]
pub struct List<T> {
    pub data: Vec<T>,
    pub meta: Meta,
}

#[derive(Serialize, ToSchema)]
pub struct Meta {
    pub pagination: Pagination,
}

#[derive(Serialize, ToSchema)]
pub struct Pagination {
    pub limit: u32,
    /// The cursor this page was asked with.
    pub cursor: Option<String>,
    /// Pass as `cursor` for the next page; null on the last one.
    pub next_cursor: Option<String>,
    pub total: u64,
}

/// `{"data": …}` with a status.
pub fn data<T: Serialize>(status: StatusCode, value: T) -> Response {
    (status, axum::Json(Data { data: value })).into_response()
}

/// `201 Created` with `Location`.
pub fn created<T: Serialize>(location: String, value: T) -> Response {
    with_location(data(StatusCode::CREATED, value), &location)
}

pub fn with_location(mut response: Response, location: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

/// A list page of `views`, for `query`, continuing after `next`.
pub fn page<T: Serialize>(views: Vec<T>, query: &PageQuery, next: Option<uuid::Uuid>, total: u64) -> Response {
    let pagination = Pagination {
        limit: u32::try_from(query.limit).expect("a limit is at most MAX_LIMIT"),
        cursor: query.cursor.clone(),
        next_cursor: next.map(encode_cursor),
        total,
    };
    (
        StatusCode::OK,
        axum::Json(List {
            data: views,
            meta: Meta { pagination },
        }),
    )
        .into_response()
}

/// A store page as a list of views.
pub fn page_of<R, T: Serialize>(p: Page<R>, query: &PageQuery, view: impl Fn(&R) -> T) -> Response {
    page(p.items.iter().map(view).collect(), query, p.next, p.total)
}
