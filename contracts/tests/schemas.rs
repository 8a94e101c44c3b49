//! The OpenAPI schemas of what the contracts' read functions return (the node's API
//! serves these) say exactly what their JSON is: values read from a ledger that ran
//! real transactions validate against their schemas resolved with every component they
//! reference, and read back.

mod common;
#[path = "../../crates/types/tests/support/schema_check.rs"]
mod schema_check;

use common::{Harness, A, B, BTC, CH, COIN, JPY};
use schema_check::{schema_types_in, SchemaCheck};
use seisan_contracts::custody::liabilities;
use seisan_contracts::mirror::MirrorSummary;
use seisan_contracts::{governance, query, Consortium};
use seisan_types::governance::{GovernanceChange, Proposal};
use seisan_types::tx::TxBody;
use seisan_types::Height;
use serde_json::json;
use std::path::Path;

#[test]
fn query_answers_serialize_as_their_schemas_say() {
    let mut h = Harness::new();
    h.seed(&[(A, BTC, 3 * COIN), (B, JPY, 9_000_000)]);
    h.ok(
        B,
        TxBody::Propose(Proposal {
            change: GovernanceChange::SetQuorum { quorum: 3 },
            expires_at_height: Height(50),
        }),
    );
    h.ok(
        CH,
        TxBody::Propose(Proposal {
            change: GovernanceChange::SetWithdrawOnly { member: B },
            expires_at_height: Height(60),
        }),
    );

    let mut check = SchemaCheck::new();
    let supplies = query::supplies(&h.view, &h.genesis);
    assert_eq!(supplies.len(), 2);
    check.samples(&supplies);
    check.samples(&[
        liabilities(&h.view, &h.genesis, BTC),
        liabilities(&h.view, &h.genesis, JPY),
    ]);
    check.samples(&[
        governance::consortium_or_genesis(&h.view, &h.genesis),
        Consortium::from_genesis(&h.genesis),
    ]);
    let proposals = governance::proposals(&h.view, None, 10);
    assert_eq!(proposals.len(), 2, "{proposals:?}");
    check.samples(&proposals);
    check.samples(&[
        seisan_contracts::mirror::summarize(&[], h.now_ms, false),
        MirrorSummary {
            pending: 2,
            stalled: 1,
            oldest_stalled: Some((Height(7), "settle-7-exchange-a-exchange-b".into())),
            truncated: true,
        },
    ]);
    // A stalled mirror is written as [height, reference], exactly two elements.
    check.refuses::<MirrorSummary>(&[json!({
        "pending": 0, "stalled": 1, "oldest_stalled": [7], "truncated": false
    })]);

    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let with_schema = schema_types_in(&source);
    assert!(
        with_schema.contains("Consortium"),
        "the source scan found only {with_schema:?}"
    );
    check.assert_every_type_sampled(&with_schema);
    check.finish();
}
