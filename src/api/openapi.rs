//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` annotations and
//! the schemas below, served at `GET /v1/openapi.json`. Errors, auth and the headers every
//! response carries are added to every operation in one place (`Common`).

use std::collections::BTreeMap;

use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder, schema::Type};
use utoipa::{Modify, OpenApi, ToSchema};
use uuid::Uuid;

/// The error envelope of every failure.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    pub status: u16,
    /// A stable machine-readable code (see docs/API.md).
    pub code: String,
    pub message: String,
    pub request_id: String,
    /// One message per offending field, for 422s (and `scope` for 403 insufficient_scope).
    pub fields: Option<BTreeMap<String, String>>,
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

#[derive(Serialize, ToSchema)]
pub struct SoaView {
    pub mname: String,
    pub rname: String,
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
    pub minimum: u32,
    pub ttl: u32,
}

#[derive(Serialize, ToSchema)]
pub struct ZoneView {
    pub id: Uuid,
    pub name: String,
    pub serial: u32,
    pub nameservers: Vec<String>,
    pub soa: SoaView,
    pub record_count: u64,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct RecordView {
    pub id: Uuid,
    pub zone_id: Uuid,
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: String,
    pub content: String,
    pub ttl: u32,
    pub managed: bool,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct ZoneExport {
    pub zone_id: Uuid,
    pub name: String,
    pub serial: u32,
    pub format: String,
    /// The zone as an RFC 1035 master file.
    pub text: String,
}

#[derive(Serialize, ToSchema)]
pub struct BatchResult {
    pub deleted: Vec<Uuid>,
    pub updated: Vec<RecordView>,
    pub created: Vec<RecordView>,
    pub serial: u32,
}

#[derive(Serialize, ToSchema)]
pub struct TokenView {
    pub id: Uuid,
    pub name: String,
    pub scopes: Vec<String>,
    pub zones: Option<Vec<Uuid>>,
    pub hint: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    pub created_at: String,
    pub created_by: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct TokenCreated {
    #[serde(flatten)]
    pub view: TokenView,
    /// The secret, shown this once.
    pub token: String,
}

#[derive(Serialize, ToSchema)]
pub struct WhoamiTeam {
    pub id: Uuid,
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct WhoamiToken {
    pub id: Uuid,
    pub name: String,
    pub scopes: Vec<String>,
    pub zones: Option<Vec<Uuid>>,
    pub expires_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RatePolicy {
    pub class: String,
    pub per_minute: u32,
    pub burst: u32,
}

#[derive(Serialize, ToSchema)]
pub struct WhoamiLimits {
    pub policies: Vec<RatePolicy>,
    pub read_remaining: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct Whoami {
    pub team: WhoamiTeam,
    pub token: WhoamiToken,
    pub rate_limits: WhoamiLimits,
}

macro_rules! envelopes {
    ($($one:ident, $list:ident => $t:ty;)*) => {$(
        #[derive(Serialize, ToSchema)]
        pub struct $one {
            pub data: $t,
        }
        #[derive(Serialize, ToSchema)]
        pub struct $list {
            pub data: Vec<$t>,
            pub meta: Meta,
        }
    )*};
}

envelopes! {
    ZoneData, ZoneList => ZoneView;
    RecordData, RecordList => RecordView;
    SiteData, SiteList => crate::store::Site;
    ProjectData, ProjectList => crate::store::Project;
    TokenData, TokenList => TokenView;
    EventData, EventList => crate::store::Event;
}

#[derive(Serialize, ToSchema)]
pub struct ZoneExportData {
    pub data: ZoneExport,
}
#[derive(Serialize, ToSchema)]
pub struct BatchData {
    pub data: BatchResult,
}
#[derive(Serialize, ToSchema)]
pub struct TokenCreatedData {
    pub data: TokenCreated,
}
#[derive(Serialize, ToSchema)]
pub struct WhoamiData {
    pub data: Whoami,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "ipx", description = "Hosting and authoritative DNS API. See docs/API.md for the conventions.", version = "1"),
    paths(
        super::whoami::show,
        super::zones::list, super::zones::create, super::zones::show, super::zones::export,
        super::records::list, super::records::create, super::records::show, super::records::update, super::records::remove,
        super::records::batch,
        super::sites::list, super::sites::create, super::sites::show, super::sites::update, super::sites::ssl,
        super::sites::wordpress,
        super::projects::list, super::projects::create, super::projects::show, super::projects::rename,
        super::projects::remove,
        super::tokens::list, super::tokens::create, super::tokens::revoke,
        super::events::list,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Common),
)]
pub struct ApiDoc;

/// Adds to every operation: bearer auth, the error responses every route can give, and the
/// headers every response carries.
struct Common;

const ERRORS: &[(&str, &str)] = &[
    (
        "400",
        "The request cannot be read (bad JSON, cursor, limit, filter or key)",
    ),
    ("401", "No usable bearer token"),
    (
        "403",
        "The token lacks a scope, or the resource is managed by the platform",
    ),
    ("404", "No such resource (another team's answers the same)"),
    ("405", "The route does not take this method"),
    ("408", "The body did not arrive in time"),
    ("409", "Conflicts with the current state"),
    ("412", "If-Match no longer holds"),
    ("413", "Body too large"),
    ("414", "Request target too long"),
    ("415", "The body is not application/json"),
    ("422", "Understood but invalid; `fields` says where"),
    ("429", "Rate limited, or too many failed token checks; see Retry-After"),
    ("431", "Headers too large"),
    ("500", "Internal error"),
    (
        "503",
        "Busy (token hashing, connections) or writes refused; see Retry-After",
    ),
];

impl Modify for Common {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("ipxapi_…")
                    .build(),
            ),
        );
        let string = || utoipa::openapi::ObjectBuilder::new().schema_type(Type::String).build();
        let header = |desc: &str| HeaderBuilder::new().schema(string()).description(Some(desc)).build();
        for item in api.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.patch,
                &mut item.delete,
                &mut item.put,
            ]
            .into_iter()
            .flatten()
            {
                op.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
                    "bearer",
                    Vec::<String>::new(),
                )]);
                for (code, desc) in ERRORS {
                    op.responses.responses.entry(code.to_string()).or_insert_with(|| {
                        ResponseBuilder::new()
                            .description(*desc)
                            .content(
                                "application/json",
                                ContentBuilder::new()
                                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                                    .build(),
                            )
                            .build()
                            .into()
                    });
                }
                for response in op.responses.responses.values_mut() {
                    if let utoipa::openapi::RefOr::T(r) = response {
                        r.headers
                            .insert("X-Request-Id".into(), header("Identifies the request in our logs"));
                        r.headers
                            .insert("RateLimit-Policy".into(), header("The team's quotas, per class"));
                        r.headers
                            .insert("RateLimit".into(), header("What is left of this class's quota"));
                    }
                }
            }
        }
    }
}

/// `GET /v1/openapi.json` (no auth: the contract is public).
pub async fn serve() -> Response {
    let doc: Value = serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null);
    axum::Json(doc).into_response()
}
