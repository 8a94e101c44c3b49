//! The web console: a page served by every node at the root of its HTTP address.
//!
//! Plain HTML, CSS and JavaScript built into the binary (no framework, no CDN, nothing
//! fetched from elsewhere), so an operator's browser needs only the node. The page
//! itself is public and holds no member's data: it asks for a member's token
//! (`seisan auth token`) and reads the JSON API with it, so it shows exactly what that
//! member may read (`seisan_api::access`). The only facts built into the page are the
//! genesis assets (symbols and decimals, to print amounts) and pairs (to ask for their
//! books), which carry no member's balances or orders.

use super::api::ApiContext;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;

const INDEX_HTML: &str = include_str!("console/index.html");
/// Where the index page receives the genesis facts (see [`index`]).
const CHAIN_PLACEHOLDER: &str = "{{CHAIN_JSON}}";

/// The static files under `/console/`: name, content type, bytes.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("console/app.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("console/style.css"),
    ),
];

/// `GET /` (the console) and `GET /console/{file}` (its script and style sheet).
pub fn router() -> Router<ApiContext> {
    Router::new()
        .route("/", get(index))
        .route("/console/{file}", get(asset))
}

/// The console's page, with the genesis assets and pairs inlined as JSON.
async fn index(State(context): State<ApiContext>) -> Response {
    let chain = json!({
        "chain_id": context.genesis.chain_id,
        "assets": context.genesis.assets,
        "pairs": context.genesis.pairs,
    });
    // Inside a <script type="application/json">: a `<` in a name must not end it.
    let chain = chain.to_string().replace('<', "\\u003c");
    let page = INDEX_HTML.replacen(CHAIN_PLACEHOLDER, &chain, 1);
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            // Everything comes from this node; the token never leaves through a referrer.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
            ),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        page,
    )
        .into_response()
}

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            *body,
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("no console file {file:?}"),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::test_support;
    use std::net::SocketAddr;

    /// GET `path` from the node at `address` with no credentials: status, content type, body.
    fn fetch(address: SocketAddr, path: &str) -> (u16, String, String) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut response = agent
            .get(&format!("http://{address}{path}"))
            .call()
            .expect("the node answers");
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = response.body_mut().read_to_string().expect("a text body");
        (response.status().as_u16(), content_type, body)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_node_serves_its_console_to_anyone_and_its_data_only_to_members() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let genesis = test_support::genesis(0);
        let (context, _gossip) = test_support::context(dir.path(), genesis.clone());
        let router = super::super::api::router(context, Default::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let address = listener.local_addr().expect("bound");
        tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
        });
        let answers = tokio::task::spawn_blocking(move || {
            [
                "/",
                "/console/app.js",
                "/console/style.css",
                "/console/nothing.js",
                "/v1/supply",
            ]
            .map(|path| fetch(address, path))
        })
        .await
        .expect("the requests ran");
        let [page, script, style, missing, supply] = answers;

        assert_eq!((page.0, page.1.as_str()), (200, "text/html; charset=utf-8"));
        // The genesis assets and pairs, inlined for the script, and nothing left to fill.
        let inlined = page
            .2
            .split("<script id=\"chain\" type=\"application/json\">")
            .nth(1)
            .and_then(|rest| rest.split("</script>").next())
            .expect("the chain facts");
        let chain: serde_json::Value = serde_json::from_str(inlined).expect("JSON");
        assert_eq!(chain["chain_id"], serde_json::json!(genesis.chain_id));
        assert_eq!(chain["assets"][0]["symbol"], genesis.assets[0].symbol);
        assert_eq!(chain["pairs"][0]["base"], genesis.pairs[0].base);
        assert!(!page.2.contains(CHAIN_PLACEHOLDER));

        assert_eq!(
            (script.0, script.1.as_str()),
            (200, "text/javascript; charset=utf-8")
        );
        assert!(script.2.contains("Seisan-Token"));
        assert_eq!(
            (style.0, style.1.as_str()),
            (200, "text/css; charset=utf-8")
        );
        assert_eq!(missing.0, 404);
        // The console is public; what it shows is not: the API still wants a member.
        assert_eq!(supply.0, 401, "{}", supply.2);
    }

    #[test]
    fn the_page_has_one_place_for_the_genesis_facts_and_names_only_files_it_serves() {
        assert_eq!(INDEX_HTML.matches(CHAIN_PLACEHOLDER).count(), 1);
        for reference in ["/console/app.js", "/console/style.css"] {
            assert!(INDEX_HTML.contains(reference), "{reference}");
            let name = reference.trim_start_matches("/console/");
            assert!(ASSETS.iter().any(|(file, _, _)| *file == name), "{name}");
        }
        // No CDN: nothing the page loads comes from another origin.
        for file in [INDEX_HTML, ASSETS[0].2, ASSETS[1].2] {
            assert!(!file.contains("http://") && !file.contains("https://"));
        }
    }
}
