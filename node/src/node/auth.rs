//! The API's authentication and read scoping (the rules are `seisan_api::access`).
//!
//! One middleware on every route: it looks up the route's [`Access`], and for anything
//! but a public endpoint checks the request's credentials (`seisan_api::auth`) against
//! the *committed* membership, so a member added by governance can call at once, a
//! rotated-away key or a removed member never again. It then enforces the rule (an
//! operators-only endpoint, a path naming another member) and hands the [`Caller`] to
//! the handler, which filters what it returns for [`Access::Filtered`] endpoints.
//! Every refusal is a 401 (who are you?) or a 403 (not for you), naming the reason.

use super::api::{ApiContext, ApiError, MAX_REQUEST_BYTES};
use axum::body::Body;
use axum::extract::{MatchedPath, RawPathParams, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use seisan_api::access::{self, Access, Caller, Refusal};
use seisan_api::auth::{self, AuthError, Presented};

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, error.code(), error.to_string())
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", refusal.to_string())
    }
}

/// Authenticates and authorizes one request (see the module documentation).
pub async fn authorize(
    State(context): State<ApiContext>,
    request: Request,
    next: Next,
) -> Response {
    match admit(&context, request).await {
        Ok(request) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

async fn admit(context: &ApiContext, request: Request) -> Result<Request, ApiError> {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_string())
        .unwrap_or_default();
    let method = request.method().as_str().to_string();
    let rule = access::access(&method, &route);
    if rule == Access::Public {
        return Ok(request);
    }
    let (mut parts, body) = request.into_parts();
    // The signature covers the body: read it (within the API's body limit) and put it
    // back for the handler.
    let body = axum::body::to_bytes(body, MAX_REQUEST_BYTES)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("request body is larger than {MAX_REQUEST_BYTES} bytes"),
            )
        })?;
    let path_and_query = parts.uri.path_and_query().map_or_else(
        || parts.uri.path().to_string(),
        |path| path.as_str().to_string(),
    );
    let key = auth::authenticate(
        presented(&parts.headers),
        &method,
        &path_and_query,
        &body,
        super::clock::wall_clock().0,
    )?;
    let caller = caller_of(context, &key)?;
    match rule {
        Access::Public | Access::AnyMember | Access::Filtered => {}
        Access::Operators => caller.check_operator(&route)?,
        Access::ThisNode => {
            let own = seisan_types::ids::MemberId(context.status.borrow().member);
            caller.check_this_node(own, &member_name(context, own))?
        }
        Access::OwnerOrOperator => {
            if let Some(text) = member_param(&mut parts).await {
                // An unknown member is the handler's 404.
                if let Ok(owner) = super::queries::resolve_member_in(context, &text) {
                    caller.check_owner(owner, &member_name(context, owner))?;
                }
            }
        }
    }
    parts.extensions.insert(caller);
    Ok(Request::from_parts(parts, Body::from(body)))
}

/// The `{member}` path parameter of the route, if it has one.
async fn member_param(parts: &mut axum::http::request::Parts) -> Option<String> {
    use axum::extract::FromRequestParts;
    let params = RawPathParams::from_request_parts(parts, &()).await.ok()?;
    params
        .iter()
        .find(|(name, _)| *name == "member")
        .map(|(_, value)| value.to_string())
}

fn presented(headers: &HeaderMap) -> Presented<'_> {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    Presented {
        key: header(auth::KEY_HEADER),
        timestamp: header(auth::TIMESTAMP_HEADER),
        signature: header(auth::SIGNATURE_HEADER),
        authorization: header("authorization"),
    }
}

/// A member's name in the committed membership (its id if it has none).
fn member_name(context: &ApiContext, member: seisan_types::ids::MemberId) -> String {
    context
        .config
        .get(&context.db)
        .membership
        .member(member)
        .map_or_else(
            || format!("member {member}"),
            |entry| entry.member.name.clone(),
        )
}

/// The current member holding `key` (committed membership).
fn caller_of(
    context: &ApiContext,
    key: &seisan_types::bytes::PublicKey,
) -> Result<Caller, ApiError> {
    let config = context.config.get(&context.db);
    let (member, entry) = config.membership.member_by_key(key).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unknown_key",
            format!("key {key} is not the key of any current member (never added, rotated away or removed)"),
        )
    })?;
    Ok(Caller {
        member,
        name: entry.member.name.clone(),
        role: entry.member.role,
    })
}
