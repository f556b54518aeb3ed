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
    let pagination = pagination(query, next, total);
    (
        StatusCode::OK,
        axum::Json(List {
            data: views,
            meta: Meta { pagination },
        }),
    )
        .into_response()
}

fn pagination(query: &PageQuery, next: Option<uuid::Uuid>, total: u64) -> Pagination {
    Pagination {
        limit: u32::try_from(query.limit).expect("a limit is at most MAX_LIMIT"),
        cursor: query.cursor.clone(),
        next_cursor: next.map(encode_cursor),
        total,
    }
}

/// A list page written item by item into its response body, for lists whose items are
/// copied from stored text rather than built as views (`page` writes the same JSON).
pub struct ListBody {
    buf: Vec<u8>,
    empty: bool,
}

impl ListBody {
    pub fn with_capacity(bytes: usize) -> Self {
        let mut buf = Vec::with_capacity(bytes + 128);
        buf.extend_from_slice(b"{\"data\":[");
        Self { buf, empty: true }
    }

    fn comma(&mut self) {
        if !std::mem::take(&mut self.empty) {
            self.buf.push(b',');
        }
    }

    pub fn push<T: Serialize>(&mut self, view: &T) {
        self.comma();
        serde_json::to_writer(&mut self.buf, view).expect("views serialise");
    }

    /// One item from JSON text that is known to be a whole value, given in parts.
    pub fn push_json(&mut self, parts: &[&[u8]]) {
        self.comma();
        parts.iter().for_each(|p| self.buf.extend_from_slice(p));
    }

    pub fn finish(mut self, query: &PageQuery, next: Option<uuid::Uuid>, total: u64) -> Response {
        self.buf.extend_from_slice(b"],\"meta\":");
        serde_json::to_writer(
            &mut self.buf,
            &Meta {
                pagination: pagination(query, next, total),
            },
        )
        .expect("pagination serialises");
        self.buf.push(b'}');
        let json = HeaderValue::from_static("application/json");
        (StatusCode::OK, [(header::CONTENT_TYPE, json)], self.buf).into_response()
    }
}

/// A store page as a list of views.
pub fn page_of<R, T: Serialize>(p: Page<R>, query: &PageQuery, view: impl Fn(&R) -> T) -> Response {
    page(p.items.iter().map(view).collect(), query, p.next, p.total)
}
