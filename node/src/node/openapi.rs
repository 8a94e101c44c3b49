//! The OpenAPI document `/v1/openapi.json` serves, generated: each handler declares its
//! operation (`#[utoipa::path]`) and is registered with it (`utoipa_axum::routes!`), the
//! bodies' schemas are derived from `seisan_api::v1` and the domain types, and the
//! access rules ([`seisan_api::access::RULES`]) are written into every operation here.
//! No route can go undocumented and no document can describe a route the node lacks.

use seisan_api::access::{self, Access};
use serde_json::{json, Value};
use utoipa::OpenApi;

/// The document's fixed parts: what the API is, and the security schemes.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Seisan node API",
        description = "The HTTP API of a Seisan validator node: submit signed transactions, read finalized blocks, receipts and the clearing state. Every error is JSON: {\"error\": {\"code\", \"message\"}}. Amounts are decimal strings. Integers are written without a fraction (1926, not 1926.0: JSON Schema counts both as integers, the node refuses the second with 400 malformed_json naming the field). Every endpoint but /v1/health, /v1/status, /metrics and this document answers members only: a request is signed with the member's ed25519 key (signedRequest) or carries a token the member issued itself (memberToken). Each operation's `x-seisan-access` names who may call it: Public, AnyMember, OwnerOrOperator (the member the path names, and operators), Filtered (any member; the answer holds only the caller's own entries), Operators (the clearing house and observers) or ThisNode (the member running this node)."
    ),
    components(schemas(seisan_api::v1::ErrorBody))
)]
pub struct Description;

/// The name `x-seisan-access` gives a rule.
pub fn access_name(access: Access) -> &'static str {
    match access {
        Access::Public => "Public",
        Access::AnyMember => "AnyMember",
        Access::OwnerOrOperator => "OwnerOrOperator",
        Access::Filtered => "Filtered",
        Access::Operators => "Operators",
        Access::ThisNode => "ThisNode",
    }
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    })
}

/// Completes the generated document: closes the externally tagged enums' variant
/// objects, adds the security schemes, and on every operation its
/// access rule, its security requirement and the answers the middleware gives before
/// any handler runs (401 and 403 by the rule, 429 from the rate limiter).
pub fn complete(mut document: utoipa::openapi::OpenApi) -> Value {
    // serde refuses a key beside an enum variant's; utoipa's derive cannot say so.
    if let Some(components) = document.components.as_mut() {
        for schema in components.schemas.values_mut() {
            seisan_types::schema::close_tagged_variants(schema);
        }
    }
    let mut document = serde_json::to_value(document).expect("the OpenAPI document serializes");
    document["components"]["securitySchemes"] = json!({
        "signedRequest": {
            "type": "apiKey", "in": "header", "name": "seisan-signature",
            "description": "A signed request: headers seisan-key (the member's ed25519 public key, hex), seisan-timestamp (Unix milliseconds, within 120 s of the node's clock) and seisan-signature (hex ed25519 signature over SHA-256 of the tag SEISAN_HTTP_REQUEST_V1, the method, the path with its query, the timestamp and SHA-256 of the body; see crates/api/src/auth.rs). The seisan CLI signs every request with --key."
        },
        "memberToken": {
            "type": "apiKey", "in": "header", "name": "Authorization",
            "description": "A self-issued token: \"Seisan-Token KEY.EXPIRES_MS.SIGNATURE\", the member's signature over its expiry (at most 24 h ahead), printed by `seisan auth token`."
        }
    });
    let paths = document["paths"]
        .as_object_mut()
        .expect("the document has paths");
    for (path, operations) in paths.iter_mut() {
        let operations = operations
            .as_object_mut()
            .expect("a path item is an object");
        for (method, operation) in operations.iter_mut() {
            let rule = access::access(method, path);
            operation["x-seisan-access"] = json!(access_name(rule));
            operation["security"] = if rule == Access::Public {
                json!([])
            } else {
                json!([{"signedRequest": []}, {"memberToken": []}])
            };
            let responses = operation["responses"]
                .as_object_mut()
                .expect("an operation has responses");
            responses.entry("429").or_insert_with(|| {
                error_response("`rate_limited`: this client address sent more requests than its share; wait as Retry-After says")
            });
            if rule == Access::Public {
                continue;
            }
            responses.entry("401").or_insert_with(|| {
                error_response("Not authenticated: no credentials, or they do not verify against a current member's key (the code says which)")
            });
            if rule != Access::AnyMember {
                responses.entry("403").or_insert_with(|| {
                    error_response("Authenticated, but this member may not read it (the message names the rule)")
                });
            }
        }
    }
    document
}

#[cfg(test)]
mod tests {
    use super::access_name;
    use seisan_api::access::{Access, RULES};

    /// The document states each operation's rule as the code enforces it, every rule
    /// is for an operation the document describes, and every operation is a route.
    #[test]
    fn the_openapi_document_says_every_rule_the_node_enforces() {
        let document = crate::node::api::openapi_document();
        let mut described = 0;
        for (path, operations) in document["paths"].as_object().expect("paths") {
            for (method, operation) in operations.as_object().expect("operations") {
                let access = seisan_api::access::access(method, path);
                assert_eq!(
                    operation["x-seisan-access"].as_str(),
                    Some(access_name(access)),
                    "{method} {path}"
                );
                let secured = operation["security"]
                    .as_array()
                    .is_some_and(|schemes| !schemes.is_empty());
                assert_eq!(
                    secured,
                    access != Access::Public,
                    "{method} {path} security"
                );
                if access != Access::Public {
                    assert!(operation["responses"]["401"].is_object(), "{method} {path}");
                }
                described += 1;
            }
        }
        // `/metrics` is Prometheus text and the console's files are a web page: not
        // part of the JSON API's description.
        let json_rules: Vec<_> = RULES
            .iter()
            .filter(|rule| rule.path.starts_with("/v1/"))
            .collect();
        for rule in &json_rules {
            assert!(
                document["paths"][rule.path][rule.method.to_ascii_lowercase()].is_object(),
                "{} {} has a rule but no description",
                rule.method,
                rule.path
            );
        }
        assert_eq!(described, json_rules.len());
    }

    /// Every schema the document references is in it, so a client generator (or
    /// schemathesis) can resolve each body.
    #[test]
    fn every_schema_the_document_references_is_defined() {
        let document = crate::node::api::openapi_document();
        let text = document.to_string();
        let schemas = document["components"]["schemas"]
            .as_object()
            .expect("components.schemas");
        let mut rest = text.as_str();
        let mut references = 0;
        while let Some(at) = rest.find("#/components/schemas/") {
            rest = &rest[at + "#/components/schemas/".len()..];
            let name: String = rest.chars().take_while(|c| *c != '"').collect();
            assert!(
                schemas.contains_key(&name),
                "{name} is referenced but not defined"
            );
            references += 1;
        }
        assert!(references > 40, "only {references} references");
    }

    /// A transaction body is one kind: the document refuses a second key beside it, as
    /// serde does, so a client generating from it makes only bodies the node can read.
    #[test]
    fn a_transaction_body_is_exactly_one_kind() {
        let document = crate::node::api::openapi_document();
        let kinds = document["components"]["schemas"]["TxBody"]["oneOf"]
            .as_array()
            .expect("TxBody is a oneOf");
        let objects: Vec<_> = kinds
            .iter()
            .filter(|kind| kind["type"] == "object")
            .collect();
        assert!(!objects.is_empty());
        for kind in objects {
            assert_eq!(kind["additionalProperties"], false, "{kind}");
        }
    }
}
