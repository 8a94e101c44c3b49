//! Who may read what: the API's read-scoping rules, one per endpoint ([`RULES`]).
//!
//! Competing exchanges share the consortium, so an exchange reads only its own books
//! (balances, customers' sub-accounts, orders, top-ups, deposits, withdrawals, its own
//! transactions and daily statement). Market data (books and trades, which carry no
//! customer detail), the membership and governance, evidence against validators and
//! the consortium's aggregates (supply, reserves) are for every member. The clearing
//! house operates custody, the bank link and settlement, and observers (regulators,
//! auditors) audit them: both read everything.
//!
//! The node enforces [`Access`] for each route before the handler runs; the handlers of
//! [`Access::Filtered`] endpoints show a member only its own entries (or refuse, for a
//! single item that is not its own). An endpoint missing from [`RULES`] is for
//! operators only, so a new endpoint is closed until someone opens it here.

use seisan_types::genesis::Role;
use seisan_types::ids::MemberId;

/// Who may call an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without credentials: health, the public status, the API description,
    /// the Prometheus metrics (which carry no member's balances or orders) and the web
    /// console's static files.
    Public,
    /// Any current member.
    AnyMember,
    /// The member the path names (`{member}`), and operators.
    OwnerOrOperator,
    /// Any member; the answer holds only what the caller may see (its own entries,
    /// everything for operators), and a single item that is not the caller's is refused.
    Filtered,
    /// The clearing house and observers only.
    Operators,
    /// Only the member that runs this node (its own administration: the backup, which
    /// holds everything the node stores).
    ThisNode,
}

/// One endpoint's rule, as documented in the README and the OpenAPI document.
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    pub method: &'static str,
    /// The route as the node registers it (`{name}` for a path parameter).
    pub path: &'static str,
    pub access: Access,
}

const fn rule(method: &'static str, path: &'static str, access: Access) -> Rule {
    Rule {
        method,
        path,
        access,
    }
}

/// Every endpoint's rule.
pub const RULES: &[Rule] = &[
    rule("GET", "/v1/health", Access::Public),
    rule("GET", "/v1/status", Access::Public),
    rule("GET", "/v1/openapi.json", Access::Public),
    rule("GET", "/metrics", Access::Public),
    // The web console's page, script and style sheet: no member's data (it reads the
    // API with the member's own token).
    rule("GET", "/", Access::Public),
    rule("GET", "/console/{file}", Access::Public),
    rule("POST", "/v1/transactions", Access::AnyMember),
    rule("POST", "/v1/transactions/batch", Access::AnyMember),
    rule("GET", "/v1/transactions/{id}", Access::Filtered),
    rule("GET", "/v1/blocks/{height}", Access::Filtered),
    rule("GET", "/v1/members", Access::AnyMember),
    rule("GET", "/v1/members/{member}/nonce", Access::OwnerOrOperator),
    rule(
        "GET",
        "/v1/members/{member}/balances",
        Access::OwnerOrOperator,
    ),
    rule(
        "GET",
        "/v1/members/{member}/customers/{asset}",
        Access::OwnerOrOperator,
    ),
    rule(
        "GET",
        "/v1/members/{member}/orders",
        Access::OwnerOrOperator,
    ),
    rule(
        "GET",
        "/v1/members/{member}/topups",
        Access::OwnerOrOperator,
    ),
    rule("GET", "/v1/orders/{id}", Access::Filtered),
    rule("GET", "/v1/book/{base}/{quote}", Access::AnyMember),
    rule("GET", "/v1/trades", Access::AnyMember),
    rule("GET", "/v1/trades/{id}/certificate", Access::Filtered),
    rule("GET", "/v1/topups", Access::Filtered),
    rule("GET", "/v1/quotes", Access::AnyMember),
    rule("GET", "/v1/confirmations", Access::Filtered),
    rule("GET", "/v1/cycles", Access::Operators),
    rule("GET", "/v1/cycles/current", Access::Operators),
    rule("GET", "/v1/cycles/{n}/certificate", Access::Operators),
    rule("GET", "/v1/reports/{height}", Access::Operators),
    rule("GET", "/v1/supply", Access::AnyMember),
    rule("GET", "/v1/evidence", Access::AnyMember),
    rule("GET", "/v1/events", Access::Operators),
    rule("GET", "/v1/reconciliation", Access::Operators),
    // The whole store of the node (seisan backup): only the member that runs it.
    rule("GET", "/v1/admin/backup", Access::ThisNode),
    rule("GET", "/v1/mirrors/{height}", Access::Operators),
    rule("GET", "/v1/reserves", Access::AnyMember),
    rule("GET", "/v1/deposits", Access::Filtered),
    rule("GET", "/v1/withdrawals", Access::Filtered),
    rule("GET", "/v1/governance", Access::AnyMember),
    rule("GET", "/v1/governance/{id}", Access::AnyMember),
    rule("GET", "/v1/compliance/days", Access::Operators),
    rule("GET", "/v1/compliance/{date}", Access::Operators),
    rule(
        "GET",
        "/v1/compliance/{date}/statements/{member}",
        Access::OwnerOrOperator,
    ),
];

/// The rule of a route (its registered path); [`Access::Operators`] for one not listed.
pub fn access(method: &str, path: &str) -> Access {
    // A HEAD is a GET without the body (axum answers it from the GET route).
    let method = if method.eq_ignore_ascii_case("HEAD") {
        "GET"
    } else {
        method
    };
    RULES
        .iter()
        .find(|rule| rule.method.eq_ignore_ascii_case(method) && rule.path == path)
        .map_or(Access::Operators, |rule| rule.access)
}

/// An authenticated member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub member: MemberId,
    pub name: String,
    pub role: Role,
}

/// Why a member may not read something: the node answers 403 `forbidden` with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{caller} may not read this: {reason}")]
pub struct Refusal {
    pub caller: String,
    pub reason: String,
}

impl Caller {
    /// The clearing house and observers read everything.
    pub fn is_operator(&self) -> bool {
        matches!(self.role, Role::ClearingHouse | Role::Observer)
    }

    /// Whether this caller may read what belongs to `owner`.
    pub fn may_read(&self, owner: MemberId) -> bool {
        self.is_operator() || self.member == owner
    }

    /// Whether this caller may read what belongs to any of `parties`.
    pub fn may_read_any(&self, parties: &[MemberId]) -> bool {
        self.is_operator() || parties.contains(&self.member)
    }

    /// Refuses unless this caller may read what belongs to `owner` (named `owner_name`).
    pub fn check_owner(&self, owner: MemberId, owner_name: &str) -> Result<(), Refusal> {
        if self.may_read(owner) {
            return Ok(());
        }
        Err(self.refuse(format!(
            "it belongs to {owner_name}, and an exchange reads only its own books (the clearing house and observers read every member's)"
        )))
    }

    /// A refusal of this caller for `reason`.
    pub fn refuse(&self, reason: impl Into<String>) -> Refusal {
        Refusal {
            caller: self.name.clone(),
            reason: reason.into(),
        }
    }

    /// Refuses what only the member running this node (`node_member`, named
    /// `node_name`) may do.
    pub fn check_this_node(&self, node_member: MemberId, node_name: &str) -> Result<(), Refusal> {
        if self.member == node_member {
            return Ok(());
        }
        Err(self.refuse(format!(
            "only {node_name}, whose node this is, administers it (back up your own node)"
        )))
    }

    /// Refuses an operators-only endpoint to anyone else.
    pub fn check_operator(&self, what: &str) -> Result<(), Refusal> {
        if self.is_operator() {
            return Ok(());
        }
        Err(self.refuse(format!(
            "{what} is for the clearing house and observers (it shows every member's positions)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(member: u32, role: Role) -> Caller {
        Caller {
            member: MemberId(member),
            name: format!("member-{member}"),
            role,
        }
    }

    #[test]
    fn an_exchange_reads_only_its_own_and_operators_read_all() {
        let exchange = caller(1, Role::Exchange);
        assert!(exchange.check_owner(MemberId(1), "exchange-a").is_ok());
        let refusal = exchange.check_owner(MemberId(2), "exchange-b").unwrap_err();
        assert!(
            refusal.to_string().contains("belongs to exchange-b"),
            "{refusal}"
        );
        assert!(exchange.check_operator("the reconciliation").is_err());
        assert!(exchange.check_this_node(MemberId(1), "exchange-a").is_ok());
        assert!(exchange
            .check_this_node(MemberId(0), "clearing-house")
            .is_err());
        for role in [Role::ClearingHouse, Role::Observer] {
            let operator = caller(0, role);
            assert!(operator.check_owner(MemberId(2), "exchange-b").is_ok());
            assert!(operator.check_operator("the reconciliation").is_ok());
        }
    }

    #[test]
    fn an_unlisted_endpoint_is_for_operators_and_rules_are_unique() {
        assert_eq!(access("GET", "/v1/something-new"), Access::Operators);
        assert_eq!(access("GET", "/v1/status"), Access::Public);
        assert_eq!(access("get", "/v1/trades"), Access::AnyMember);
        assert_eq!(access("HEAD", "/v1/health"), Access::Public);
        assert_eq!(access("HEAD", "/v1/trades"), Access::AnyMember);
        for (index, rule) in RULES.iter().enumerate() {
            assert!(
                !RULES[index + 1..]
                    .iter()
                    .any(|other| other.method == rule.method && other.path == rule.path),
                "{} {} listed twice",
                rule.method,
                rule.path
            );
        }
    }
}
