//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` annotations and
//! their view types (each resource's file registers its own), served at `GET /v1/openapi.json`.
//! Errors, auth and the headers every response carries are added to every operation in one
//! place (`Common`).

use std::collections::BTreeMap;

use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder, schema::Type};
use utoipa::{Modify, OpenApi, ToSchema};

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

/// The document's frame: what it is, and the schemas no handler names.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "ipx",
        description = "Hosting and authoritative DNS API. See docs/API.md for the conventions.",
        version = "1"
    ),
    components(schemas(ErrorBody))
)]
struct ApiDoc;

pub fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The finished document: what every operation has (errors, auth, headers) added once the
/// routes are in, and the schemas under their published names.
pub fn finish(mut doc: utoipa::openapi::OpenApi) -> serde_json::Value {
    Common.modify(&mut doc);
    let mut doc = serde_json::to_value(doc).expect("the OpenAPI document serialises");
    if let Some(schemas) = doc.pointer_mut("/components/schemas").and_then(|s| s.as_object_mut()) {
        refer_to_views(schemas);
        for (generated, published) in PUBLISHED_NAMES {
            if let Some(schema) = schemas.remove(*generated) {
                schemas.insert(published.to_string(), schema);
            }
        }
    }
    rename_refs(&mut doc);
    doc
}

/// utoipa copies a generic argument's whole schema into each envelope (juhaku/utoipa#1586);
/// the envelopes refer to the view instead, so a client generator makes one type per view.
fn refer_to_views(schemas: &mut serde_json::Map<String, serde_json::Value>) {
    let envelopes: Vec<String> = schemas
        .keys()
        .filter(|k| k.starts_with("Data_") || k.starts_with("List_"))
        .cloned()
        .collect();
    for name in envelopes {
        let (kind, view) = name.split_once('_').expect("an envelope name");
        if !schemas.contains_key(view) {
            continue;
        }
        let view_ref = serde_json::json!({ "$ref": format!("#/components/schemas/{view}") });
        let data = match kind {
            "Data" => view_ref,
            _ => serde_json::json!({ "type": "array", "items": view_ref }),
        };
        if let Some(properties) = schemas[&name].get_mut("properties").and_then(|p| p.as_object_mut()) {
            properties.insert("data".into(), data);
        }
    }
}

/// Schema names clients generate their types from, as the document published them before the
/// envelopes became generic (`Data<T>`, `List<T>`) and the views got one naming rule: renaming
/// them would break every generated client, so the document keeps them.
const PUBLISHED_NAMES: &[(&str, &str)] = &[
    ("Data_ZoneView", "ZoneData"),
    ("List_ZoneView", "ZoneList"),
    ("ZoneExportView", "ZoneExport"),
    ("Data_ZoneExportView", "ZoneExportData"),
    ("Data_RecordView", "RecordData"),
    ("List_RecordView", "RecordList"),
    ("BatchView", "BatchResult"),
    ("Data_BatchView", "BatchData"),
    ("SiteView", "Site"),
    ("Data_SiteView", "SiteData"),
    ("List_SiteView", "SiteList"),
    ("CertificateView", "Certificate"),
    ("Data_CertificateView", "CertificateData"),
    ("RenewalView", "CertificateRenewal"),
    ("ProjectView", "Project"),
    ("Data_ProjectView", "ProjectData"),
    ("List_ProjectView", "ProjectList"),
    ("List_TokenView", "TokenList"),
    ("CreatedTokenView", "TokenCreated"),
    ("Data_CreatedTokenView", "TokenCreatedData"),
    ("Data_TsigKeyView", "TsigKeyData"),
    ("List_TsigKeyView", "TsigKeyList"),
    ("CreatedTsigKeyView", "TsigKeyCreated"),
    ("Data_CreatedTsigKeyView", "TsigKeyCreatedData"),
    ("EventView", "Event"),
    ("List_EventView", "EventList"),
    ("WhoamiView", "Whoami"),
    ("Data_WhoamiView", "WhoamiData"),
    ("TeamView", "WhoamiTeam"),
    ("RateLimitsView", "WhoamiLimits"),
    ("DnssecView", "Dnssec"),
    ("Data_DnssecView", "DnssecData"),
    ("KeyView", "DnssecKey"),
    ("RolloverView", "DnssecRollover"),
];

fn rename_refs(value: &mut serde_json::Value) {
    const PREFIX: &str = "#/components/schemas/";
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                match v {
                    serde_json::Value::String(target) if key == "$ref" => {
                        let name = target.strip_prefix(PREFIX).unwrap_or_default();
                        if let Some((_, published)) = PUBLISHED_NAMES.iter().find(|(g, _)| *g == name) {
                            *target = format!("{PREFIX}{published}");
                        }
                    }
                    _ => rename_refs(v),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(rename_refs),
        _ => {}
    }
}

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

/// `GET /v1/openapi.json` (no auth: the contract is public), made once at start.
pub async fn serve(document: axum::body::Bytes) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], document).into_response()
}

#[cfg(test)]
mod tests {
    use super::PUBLISHED_NAMES;

    /// Every published name is in the document and nothing refers to a generated one, so the
    /// list cannot go stale when a view is renamed.
    #[test]
    fn the_document_keeps_its_published_schema_names() {
        let doc = crate::api::openapi_document();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let text = doc.to_string();
        for (generated, published) in PUBLISHED_NAMES {
            assert!(schemas.contains_key(*published), "{published} missing");
            assert!(
                !text.contains(&format!("/schemas/{generated}\"")),
                "{generated} still referenced"
            );
        }
        assert!(!schemas.keys().any(|k| k.starts_with("Data_") || k.starts_with("List_")));
        assert_eq!(
            doc["components"]["schemas"]["ZoneData"]["properties"]["data"]["$ref"],
            "#/components/schemas/ZoneView"
        );
        assert_eq!(
            doc["components"]["schemas"]["SiteList"]["properties"]["data"]["items"]["$ref"],
            "#/components/schemas/Site"
        );
    }
}
