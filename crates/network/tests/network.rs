//! In-process tests of the network on loopback: validators from a dev genesis built
//! with `Keypair::dev` keys connect, gossip (forwarding only what was accepted),
//! answer requests, penalize a flooding member, and refuse a stranger; and the
//! allow-list follows a changed member list on the live network (a removed member,
//! an added one, a rotated key).
//!
//! Every wait polls with a generous deadline ([`PATIENCE`]) so a loaded machine only
//! makes the tests slower; no assertion depends on speed. "Never received" checks
//! watch a quiet window after an event that would have come later than the
//! forbidden one, so they cannot pass merely because the machine is slow.

use seisan_crypto::Keypair;
use seisan_network::{
    spawn, GossipMessage, Multiaddr, NetworkConfig, NetworkError, NetworkEvent, NetworkHandle,
    PeerMember, Topic, Validation, Validator,
};
use seisan_types::{ChainId, Genesis, Member, MemberId, Role};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How long any condition may take to become true.
const PATIENCE: Duration = Duration::from_secs(30);
/// How long to watch for something that must not happen.
const QUIET_WINDOW: Duration = Duration::from_secs(2);
const NAMES: [&str; 3] = ["clearing-house", "exchange-a", "exchange-b"];

struct Node {
    handle: NetworkHandle,
    events: mpsc::Receiver<NetworkEvent>,
    member: MemberId,
}

/// Distinct free loopback ports. All are held until every one is chosen, so they
/// differ; another process could still take one before the node binds it, which
/// would fail the test loudly, not wrongly.
fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..count)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    listeners
        .iter()
        .map(|listener| listener.local_addr().unwrap().port())
        .collect()
}

fn address(port: u16) -> Multiaddr {
    format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap()
}

fn dev_genesis(ports: &[u16]) -> Genesis {
    let members = NAMES
        .iter()
        .zip(ports)
        .enumerate()
        .map(|(index, (name, port))| Member {
            name: name.to_string(),
            role: if index == 0 {
                Role::ClearingHouse
            } else {
                Role::Exchange
            },
            public_key: Keypair::dev(name).public_key(),
            validator: true,
            p2p_address: Some(address(*port).to_string()),
        })
        .collect();
    let genesis = Genesis {
        chain_id: ChainId("seisan-dev-network-test".to_string()),
        genesis_time_ms: 0,
        quorum: 2,
        members,
        assets: Vec::new(),
        pairs: Vec::new(),
        opening_balances: Vec::new(),
        settlement: Default::default(),
        public_chain: None,
    };
    genesis.validate().expect("test genesis is valid");
    genesis
}

fn config_for(genesis: &Genesis, index: usize, port: u16) -> NetworkConfig {
    NetworkConfig::from_genesis(genesis, Keypair::dev(NAMES[index]), vec![address(port)])
        .expect("validator config")
}

async fn start(config: NetworkConfig) -> Node {
    let (handle, events) = spawn(config).await.expect("network starts");
    let member = handle.local_member();
    Node {
        handle,
        events,
        member,
    }
}

async fn start_all(configs: Vec<NetworkConfig>) -> Vec<Node> {
    let mut nodes = Vec::new();
    for config in configs {
        nodes.push(start(config).await);
    }
    nodes
}

/// Polls until `node` is connected to exactly `members`.
async fn wait_connected(node: &Node, members: &[MemberId]) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let connected = node.handle.connected_members().await.unwrap();
        if connected == members {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "member {} connected to {connected:?}, expected {members:?}",
            node.member
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls until `node` knows every one of `members` subscribes to both topics, so
/// its publishes and forwards reach them.
async fn wait_subscribed(node: &Node, members: &[MemberId]) {
    let deadline = Instant::now() + PATIENCE;
    for topic in Topic::ALL {
        loop {
            let subscribers = node.handle.subscribers(topic).await.unwrap();
            if members.iter().all(|member| subscribers.contains(member)) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "member {} sees {subscribers:?} on {topic:?}, expected {members:?}",
                node.member
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Waits for the first event matching `wanted`, discarding others.
async fn wait_event<T>(
    node: &mut Node,
    what: &str,
    mut wanted: impl FnMut(NetworkEvent) -> Option<T>,
) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let event = tokio::time::timeout_at(deadline, node.events.recv())
            .await
            .unwrap_or_else(|_| panic!("member {} never saw {what}", node.member))
            .expect("event channel open");
        if let Some(found) = wanted(event) {
            return found;
        }
    }
}

async fn wait_gossip(node: &mut Node, what: &str) -> GossipMessage {
    wait_event(node, what, |event| match event {
        NetworkEvent::Gossip(message) => Some(message),
        _ => None,
    })
    .await
}

/// Every gossip message `node` receives within `window`.
async fn gossip_within(node: &mut Node, window: Duration) -> Vec<GossipMessage> {
    let deadline = Instant::now() + window;
    let mut seen = Vec::new();
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, node.events.recv()).await {
        if let NetworkEvent::Gossip(message) = event {
            seen.push(message);
        }
    }
    seen
}

/// Publishes, retrying while no peer has subscribed yet (subscriptions are
/// exchanged just after connecting).
async fn publish(node: &Node, topic: Topic, payload: &[u8]) -> seisan_network::MessageId {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match node.handle.publish(topic, payload.to_vec()).await {
            Ok(id) => return id,
            Err(NetworkError::NoPeers { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(error) => panic!("publish failed: {error}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_validators_gossip_on_both_topics_and_serve_requests() {
    let ports = free_ports(3);
    let genesis = dev_genesis(&ports);
    let configs = (0..3).map(|i| config_for(&genesis, i, ports[i])).collect();
    let mut nodes = start_all(configs).await;
    let ids: Vec<MemberId> = nodes.iter().map(|node| node.member).collect();
    assert_eq!(ids, vec![MemberId(0), MemberId(1), MemberId(2)]);
    for node in &nodes {
        let others: Vec<MemberId> = ids.iter().copied().filter(|m| *m != node.member).collect();
        wait_connected(node, &others).await;
    }
    wait_subscribed(&nodes[0], &[MemberId(1), MemberId(2)]).await;

    for (topic, payload) in [
        (
            Topic::Transactions,
            b"batch of signed transactions".to_vec(),
        ),
        (Topic::Consensus, b"a signed vote".to_vec()),
    ] {
        let message_id = publish(&nodes[0], topic, &payload).await;
        for receiver in [1, 2] {
            let message = wait_gossip(&mut nodes[receiver], "the published message").await;
            assert_eq!(message.topic, topic);
            assert_eq!(message.payload, payload);
            // Normally straight from the publisher; on a loaded machine the copy
            // forwarded by the receiver that already accepted it may come first.
            let accepted_earlier = if receiver == 2 {
                MemberId(1)
            } else {
                MemberId(0)
            };
            assert!(
                message.from == MemberId(0) || message.from == accepted_earlier,
                "{message:?}"
            );
            assert_eq!(message.message_id, message_id);
            let pending = nodes[receiver]
                .handle
                .report_validation(message.message_id, message.from, Validation::Accept)
                .await
                .unwrap();
            assert!(pending, "the message was waiting for a verdict");
        }
        // Content-derived ids: the same payload again is a duplicate.
        let again = nodes[0].handle.publish(topic, payload.clone()).await;
        assert!(
            matches!(again, Err(NetworkError::DuplicatePayload { .. })),
            "{again:?}"
        );
    }

    let status = nodes[0].handle.status().await.unwrap();
    assert_eq!(status.listen_addresses, vec![address(ports[0])]);

    // Request-response: member 1 asks member 0, which answers through its handle.
    let requester = nodes[1].handle.clone();
    let ask = tokio::spawn(async move {
        requester
            .request(MemberId(0), b"blocks from 5".to_vec())
            .await
    });
    let request = wait_event(&mut nodes[0], "the request", |event| match event {
        NetworkEvent::Request(request) => Some(request),
        _ => None,
    })
    .await;
    assert_eq!(request.from, MemberId(1));
    assert_eq!(request.payload, b"blocks from 5");
    nodes[0]
        .handle
        .respond(request.id, b"block 5 with certificate".to_vec())
        .await
        .unwrap();
    let answer = ask.await.unwrap().expect("the request is answered");
    assert_eq!(answer, b"block 5 with certificate");
    // A request is answered once.
    let twice = nodes[0].handle.respond(request.id, b"again".to_vec()).await;
    assert!(
        matches!(twice, Err(NetworkError::UnknownRequest { .. })),
        "{twice:?}"
    );

    let unknown = nodes[1].handle.request(MemberId(9), Vec::new()).await;
    assert!(
        matches!(unknown, Err(NetworkError::UnknownMember { .. })),
        "{unknown:?}"
    );
    let limits = seisan_network::NetworkLimits::default();
    let oversized = nodes[1]
        .handle
        .publish(
            Topic::Transactions,
            vec![0u8; limits.max_gossip_payload_bytes + 1],
        )
        .await;
    assert!(
        matches!(oversized, Err(NetworkError::PayloadTooLarge { .. })),
        "{oversized:?}"
    );

    // A validator that stops is seen to leave; restarted on its address, it is
    // redialed and rejoins.
    let stopped = nodes.pop().unwrap();
    stopped.handle.shutdown().await;
    let after = stopped.handle.status().await;
    assert!(matches!(after, Err(NetworkError::Stopped)), "{after:?}");
    wait_event(&mut nodes[0], "member 2 leaving", |event| {
        (event
            == NetworkEvent::PeerDisconnected {
                member: MemberId(2),
            })
        .then_some(())
    })
    .await;
    wait_connected(&nodes[0], &[MemberId(1)]).await;
    let restarted = start(config_for(&genesis, 2, ports[2])).await;
    wait_connected(&restarted, &[MemberId(0), MemberId(1)]).await;
    wait_connected(&nodes[0], &[MemberId(1), MemberId(2)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_is_forwarded_only_after_it_is_accepted() {
    // A line: 0 -- 1 -- 2. Members 0 and 2 know no address for each other, so
    // everything 2 hears from 0 must pass through 1's validation.
    let ports = free_ports(3);
    let genesis = dev_genesis(&ports);
    let mut configs: Vec<NetworkConfig> =
        (0..3).map(|i| config_for(&genesis, i, ports[i])).collect();
    let forget = |config: &mut NetworkConfig, member: MemberId| {
        let validator: &mut Validator = config
            .validators
            .iter_mut()
            .find(|validator| validator.member == member)
            .unwrap();
        validator.address = None;
    };
    forget(&mut configs[0], MemberId(2));
    forget(&mut configs[2], MemberId(0));
    let mut nodes = start_all(configs).await;
    wait_connected(&nodes[1], &[MemberId(0), MemberId(2)]).await;
    wait_connected(&nodes[0], &[MemberId(1)]).await;
    wait_connected(&nodes[2], &[MemberId(1)]).await;
    wait_subscribed(&nodes[0], &[MemberId(1)]).await;
    wait_subscribed(&nodes[1], &[MemberId(0), MemberId(2)]).await;

    // Accepted: reaches 2 only after 1 accepts it.
    let first = b"first batch".to_vec();
    publish(&nodes[0], Topic::Transactions, &first).await;
    let at_relay = wait_gossip(&mut nodes[1], "the first batch").await;
    assert_eq!(at_relay.payload, first);
    assert_eq!(at_relay.from, MemberId(0));
    let early = gossip_within(&mut nodes[2], QUIET_WINDOW).await;
    assert!(early.is_empty(), "forwarded before validation: {early:?}");
    assert!(nodes[1]
        .handle
        .report_validation(at_relay.message_id, at_relay.from, Validation::Accept)
        .await
        .unwrap());
    let forwarded = wait_gossip(&mut nodes[2], "the forwarded first batch").await;
    assert_eq!(forwarded.payload, first);
    assert_eq!(forwarded.from, MemberId(1), "it came through the relay");
    assert_eq!(forwarded.message_id, at_relay.message_id);

    // Rejected: never reaches 2. A later accepted message proves the path works
    // and that the rejected one, sent earlier, was not forwarded.
    let bad = b"badly signed batch".to_vec();
    publish(&nodes[0], Topic::Transactions, &bad).await;
    let at_relay = wait_gossip(&mut nodes[1], "the bad batch").await;
    assert_eq!(at_relay.payload, bad);
    nodes[1]
        .handle
        .report_validation(at_relay.message_id, at_relay.from, Validation::Reject)
        .await
        .unwrap();
    let good = b"third batch".to_vec();
    publish(&nodes[0], Topic::Consensus, &good).await;
    let at_relay = wait_gossip(&mut nodes[1], "the third batch").await;
    assert_eq!(at_relay.payload, good);
    nodes[1]
        .handle
        .report_validation(at_relay.message_id, at_relay.from, Validation::Accept)
        .await
        .unwrap();
    let next = wait_gossip(&mut nodes[2], "the third batch").await;
    assert_eq!(
        next.payload, good,
        "the rejected batch must not be forwarded"
    );
    let later = gossip_within(&mut nodes[2], QUIET_WINDOW).await;
    assert!(
        later.iter().all(|message| message.payload != bad),
        "{later:?}"
    );
    let status = nodes[1].handle.status().await.unwrap();
    assert_eq!(status.rejected_messages, 1);
    assert!(
        status.penalized.is_empty(),
        "one reject is within the allowance"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_flooding_rejected_or_oversized_gossip_is_cut_off_for_a_while() {
    let ports = free_ports(3);
    let genesis = dev_genesis(&ports);
    let mut configs: Vec<NetworkConfig> =
        (0..3).map(|i| config_for(&genesis, i, ports[i])).collect();
    // Member 0 allows 2 rejects per minute and takes gossip of at most 100 KiB;
    // member 1 may publish up to 200 KiB.
    configs[0].limits.max_rejects_per_window = 2;
    configs[0].limits.reject_penalty = Duration::from_secs(3);
    configs[0].limits.max_gossip_payload_bytes = 100 * 1024;
    configs[1].limits.max_gossip_payload_bytes = 200 * 1024;
    let mut nodes = start_all(configs).await;
    wait_connected(&nodes[0], &[MemberId(1), MemberId(2)]).await;
    wait_connected(&nodes[1], &[MemberId(0), MemberId(2)]).await;
    wait_subscribed(&nodes[1], &[MemberId(0), MemberId(2)]).await;

    // Every gossip event member 0 sees in this test goes through this check.
    let within_limit = |event: NetworkEvent| match event {
        NetworkEvent::Gossip(message) => {
            assert!(message.payload.len() <= 100 * 1024, "delivered {message:?}");
            Some(message)
        }
        _ => None,
    };

    // Oversized for member 0: dropped before delivery, counted as a reject. The two
    // messages may arrive in either order (a pair of validators can hold two
    // connections, one per dial direction).
    let oversized = vec![7u8; 120 * 1024];
    publish(&nodes[1], Topic::Transactions, &oversized).await;
    let small = b"small batch".to_vec();
    publish(&nodes[1], Topic::Transactions, &small).await;
    let delivered = wait_event(&mut nodes[0], "the small batch", within_limit).await;
    assert_eq!(delivered.payload, small);
    let deadline = Instant::now() + PATIENCE;
    while nodes[0].handle.status().await.unwrap().rejected_messages == 0 {
        assert!(
            Instant::now() < deadline,
            "the oversized message was never rejected"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(nodes[0].handle.status().await.unwrap().rejected_messages, 1);

    // Two more rejects put member 1 over its allowance of 2.
    nodes[0]
        .handle
        .report_validation(delivered.message_id, delivered.from, Validation::Reject)
        .await
        .unwrap();
    assert!(nodes[0].handle.status().await.unwrap().penalized.is_empty());
    publish(&nodes[1], Topic::Consensus, b"forged vote").await;
    let forged = wait_event(&mut nodes[0], "the forged vote", within_limit).await;
    assert_eq!(forged.payload, b"forged vote");
    nodes[0]
        .handle
        .report_validation(forged.message_id, forged.from, Validation::Reject)
        .await
        .unwrap();
    wait_event(&mut nodes[0], "member 1 cut off", |event| {
        (event
            == NetworkEvent::PeerDisconnected {
                member: MemberId(1),
            })
        .then_some(())
    })
    .await;
    let status = nodes[0].handle.status().await.unwrap();
    assert_eq!(status.penalized, vec![MemberId(1)]);
    assert_eq!(status.rejected_messages, 3);
    let refused = nodes[0]
        .handle
        .request(MemberId(1), b"blocks".to_vec())
        .await;
    assert!(
        matches!(refused, Err(NetworkError::RequestFailed { .. })),
        "{refused:?}"
    );

    // After the penalty the member is allowed and dialed again.
    wait_event(&mut nodes[0], "member 1 back", |event| {
        (event
            == NetworkEvent::PeerConnected {
                member: MemberId(1),
            })
        .then_some(())
    })
    .await;
    assert!(nodes[0].handle.status().await.unwrap().penalized.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_outside_genesis_cannot_connect_gossip_or_request() {
    let ports = free_ports(4);
    let genesis = dev_genesis(&ports[..3]);
    let configs = (0..3).map(|i| config_for(&genesis, i, ports[i])).collect();
    let mut nodes = start_all(configs).await;

    // The outsider believes it is a validator and knows everyone's address.
    let outsider_key = Keypair::dev("outsider");
    let mut outsider_config = config_for(&genesis, 0, ports[3]);
    outsider_config.keypair = outsider_key.clone();
    outsider_config.validators.push(Validator {
        member: MemberId(3),
        name: "outsider".to_string(),
        public_key: outsider_key.public_key(),
        address: Some(address(ports[3])),
    });
    outsider_config.limits.request_timeout = Duration::from_secs(3);
    let mut outsider = start(outsider_config).await;
    assert_eq!(outsider.member, MemberId(3));

    for node in &nodes {
        let others: Vec<MemberId> = (0..3).map(MemberId).filter(|m| *m != node.member).collect();
        wait_connected(node, &others).await;
    }
    wait_subscribed(&nodes[0], &[MemberId(1), MemberId(2)]).await;
    // Every validator refuses the outsider's connections once its key is known.
    let deadline = Instant::now() + PATIENCE;
    for node in &nodes {
        loop {
            let status = node.handle.status().await.unwrap();
            if status.denied_connections > 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "member {} never refused the outsider",
                node.member
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // Gossip flows among validators but never to the outsider.
    let payload = b"members only".to_vec();
    publish(&nodes[0], Topic::Transactions, &payload).await;
    for receiver in [1, 2] {
        let message = wait_gossip(&mut nodes[receiver], "the members-only batch").await;
        assert_eq!(message.payload, payload);
        nodes[receiver]
            .handle
            .report_validation(message.message_id, message.from, Validation::Accept)
            .await
            .unwrap();
    }
    publish(&nodes[0], Topic::Consensus, b"a vote").await;

    // The outsider's request is never answered, and no validator is asked.
    let answer = outsider
        .handle
        .request(MemberId(0), b"blocks from 1".to_vec())
        .await;
    assert!(answer.is_err(), "the outsider got an answer: {answer:?}");
    let seen_by_outsider = gossip_within(&mut outsider, QUIET_WINDOW).await;
    assert!(seen_by_outsider.is_empty(), "{seen_by_outsider:?}");
    for node in &mut nodes {
        while let Ok(event) = node.events.try_recv() {
            assert!(
                !matches!(event, NetworkEvent::Request(_)),
                "member {} got a request: {event:?}",
                node.member
            );
        }
    }
    // The outsider's side may see a connection for the moment between its handshake
    // and the validator's refusal, but none lasts.
    wait_connected(&outsider, &[]).await;
}

/// The member list of `config` as [`NetworkHandle::set_members`] takes it.
fn member_list(config: &NetworkConfig) -> Vec<PeerMember> {
    config.validators.iter().map(PeerMember::from).collect()
}

/// Every event `node` receives up to and including the first one matching
/// `wanted`.
async fn events_until(
    node: &mut Node,
    what: &str,
    mut wanted: impl FnMut(&NetworkEvent) -> bool,
) -> Vec<NetworkEvent> {
    let mut seen = Vec::new();
    wait_event(node, what, |event| {
        let found = wanted(&event);
        seen.push(event);
        found.then_some(())
    })
    .await;
    seen
}

/// Polls until `node` has refused at least one connection more than `before`.
async fn wait_refused(node: &Node, before: u64, what: &str) {
    let deadline = Instant::now() + PATIENCE;
    while node.handle.status().await.unwrap().denied_connections <= before {
        assert!(
            Instant::now() < deadline,
            "member {} never refused {what}",
            node.member
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends a direct message, retrying while the connection is not up yet.
async fn send_direct(node: &Node, to: MemberId, payload: &[u8]) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match node.handle.send(to, payload.to_vec()).await {
            Ok(()) => return,
            Err(NetworkError::NotConnected { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(error) => panic!("direct send to {to} failed: {error}"),
        }
    }
}

fn is_gossip(event: &NetworkEvent, payload: &[u8]) -> bool {
    matches!(event, NetworkEvent::Gossip(message) if message.payload == payload)
}

fn is_direct(event: &NetworkEvent, payload: &[u8]) -> bool {
    matches!(event, NetworkEvent::Direct(message) if message.payload == payload)
}

/// Whether `event` is a message from `member`, or carries one of `payloads`.
fn from_or_carrying(event: &NetworkEvent, member: MemberId, payloads: &[Vec<u8>]) -> bool {
    match event {
        NetworkEvent::Gossip(message) => {
            message.from == member || payloads.contains(&message.payload)
        }
        NetworkEvent::Direct(message) => {
            message.from == member || payloads.contains(&message.payload)
        }
        NetworkEvent::Request(request) => {
            request.from == member || payloads.contains(&request.payload)
        }
        NetworkEvent::PeerConnected { member: connected } => *connected == member,
        NetworkEvent::PeerDisconnected { .. } => false,
    }
}

/// Member 1 gossips `marker` and sends it to member 0 directly; member 0 takes
/// both. Returns every event member 0 saw until then and in a quiet window after.
async fn events_until_marker(nodes: &mut [Node], marker: &[u8]) -> Vec<NetworkEvent> {
    publish(&nodes[1], Topic::Consensus, marker).await;
    send_direct(&nodes[1], MemberId(0), marker).await;
    let mut seen_gossip = false;
    let mut seen_direct = false;
    let mut seen = events_until(
        &mut nodes[0],
        "the marker by gossip and directly",
        |event| {
            seen_gossip |= is_gossip(event, marker);
            seen_direct |= is_direct(event, marker);
            seen_gossip && seen_direct
        },
    )
    .await;
    let deadline = Instant::now() + QUIET_WINDOW;
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, nodes[0].events.recv()).await {
        seen.push(event);
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_is_disconnected_and_its_later_messages_are_dropped() {
    let ports = free_ports(3);
    let genesis = dev_genesis(&ports);
    let configs: Vec<NetworkConfig> = (0..3).map(|i| config_for(&genesis, i, ports[i])).collect();
    let mut without_2 = member_list(&configs[0]);
    without_2.retain(|member| member.member != MemberId(2));
    let mut nodes = start_all(configs).await;
    wait_connected(&nodes[0], &[MemberId(1), MemberId(2)]).await;
    wait_connected(&nodes[1], &[MemberId(0), MemberId(2)]).await;
    wait_connected(&nodes[2], &[MemberId(0), MemberId(1)]).await;
    wait_subscribed(&nodes[2], &[MemberId(0), MemberId(1)]).await;

    // Before: member 2's messages arrive.
    publish(&nodes[2], Topic::Transactions, b"while a member").await;
    let message = wait_gossip(&mut nodes[0], "member 2's gossip").await;
    assert_eq!(message.payload, b"while a member");
    assert_eq!(message.from, MemberId(2));

    // Members 0 and 1 apply the block that removes member 2; member 2's node does
    // not know and keeps trying.
    for node in &nodes[..2] {
        let change = node.handle.set_members(without_2.clone()).await.unwrap();
        assert_eq!(change.removed, vec![MemberId(2)]);
        assert!(change.added.is_empty() && change.rekeyed.is_empty());
        // Idempotent: the same list again changes nothing.
        let again = node.handle.set_members(without_2.clone()).await.unwrap();
        assert!(again.is_empty(), "{again:?}");
        assert_eq!(
            node.handle.status().await.unwrap().members,
            vec![if node.member == MemberId(0) {
                MemberId(1)
            } else {
                MemberId(0)
            }]
        );
    }
    let seen = events_until(&mut nodes[0], "member 2 disconnected", |event| {
        *event
            == NetworkEvent::PeerDisconnected {
                member: MemberId(2),
            }
    })
    .await;
    // The unchanged member kept its connection.
    assert!(
        !seen.contains(&NetworkEvent::PeerDisconnected {
            member: MemberId(1)
        }),
        "{seen:?}"
    );
    wait_connected(&nodes[0], &[MemberId(1)]).await;
    wait_connected(&nodes[1], &[MemberId(0)]).await;
    // Disconnected on the wire too: member 2's own node loses both connections,
    // and its redials are refused.
    wait_connected(&nodes[2], &[]).await;
    let refused_before = nodes[0].handle.status().await.unwrap().denied_connections;
    wait_refused(&nodes[0], refused_before, "member 2's redial").await;

    // Member 2 keeps gossiping and sending directly for a while; none of it is
    // delivered to member 0 (a refused send fails on member 2's side).
    let mut forbidden = Vec::new();
    for attempt in 0..10 {
        let payload = format!("after removal {attempt}").into_bytes();
        let _ = nodes[2]
            .handle
            .publish(Topic::Transactions, payload.clone())
            .await;
        let _ = nodes[2].handle.send(MemberId(0), payload.clone()).await;
        forbidden.push(payload);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let unsent = nodes[2].handle.send(MemberId(0), b"direct".to_vec()).await;
    assert!(
        matches!(unsent, Err(NetworkError::NotConnected { .. })),
        "{unsent:?}"
    );
    // A message member 1 sends after all of those arrives; nothing of member 2's does.
    let seen = events_until_marker(&mut nodes, b"after the removal, from member 1").await;
    assert!(
        !seen
            .iter()
            .any(|event| from_or_carrying(event, MemberId(2), &forbidden)),
        "{seen:?}"
    );
    let refused = nodes[0]
        .handle
        .send(MemberId(2), b"to a former member".to_vec())
        .await;
    assert!(
        matches!(refused, Err(NetworkError::UnknownMember { .. })),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_added_member_connects_and_exchanges_messages_without_a_restart() {
    let ports = free_ports(3);
    let genesis = dev_genesis(&ports);
    let mut configs: Vec<NetworkConfig> =
        (0..3).map(|i| config_for(&genesis, i, ports[i])).collect();
    let everyone = member_list(&configs[0]);
    // Members 0 and 1 start with a set that does not hold member 2 yet; member 2's
    // node (a joining validator) knows the set it is about to join.
    for config in &mut configs[..2] {
        config
            .validators
            .retain(|validator| validator.member != MemberId(2));
    }
    let mut nodes = start_all(configs).await;
    wait_connected(&nodes[0], &[MemberId(1)]).await;
    wait_connected(&nodes[1], &[MemberId(0)]).await;
    // Refused while it is not a member.
    wait_refused(&nodes[0], 0, "the joining member").await;
    wait_refused(&nodes[1], 0, "the joining member").await;
    wait_connected(&nodes[2], &[]).await;

    for node in &nodes[..2] {
        let change = node.handle.set_members(everyone.clone()).await.unwrap();
        assert_eq!(change.added, vec![MemberId(2)]);
        assert!(change.removed.is_empty() && change.rekeyed.is_empty());
        let again = node.handle.set_members(everyone.clone()).await.unwrap();
        assert!(again.is_empty(), "{again:?}");
    }
    let seen = events_until(&mut nodes[0], "member 2 connected", |event| {
        *event
            == NetworkEvent::PeerConnected {
                member: MemberId(2),
            }
    })
    .await;
    assert!(
        !seen.contains(&NetworkEvent::PeerDisconnected {
            member: MemberId(1)
        }),
        "the unchanged member kept its connection: {seen:?}"
    );
    wait_connected(&nodes[0], &[MemberId(1), MemberId(2)]).await;
    wait_connected(&nodes[1], &[MemberId(0), MemberId(2)]).await;
    wait_connected(&nodes[2], &[MemberId(0), MemberId(1)]).await;
    wait_subscribed(&nodes[2], &[MemberId(0), MemberId(1)]).await;
    wait_subscribed(&nodes[0], &[MemberId(1), MemberId(2)]).await;

    // Gossip both ways, named by the new member id.
    publish(
        &nodes[2],
        Topic::Transactions,
        b"the newcomer's first batch",
    )
    .await;
    for receiver in [0, 1] {
        let message = wait_gossip(&mut nodes[receiver], "the newcomer's batch").await;
        assert_eq!(message.payload, b"the newcomer's first batch");
        assert_eq!(message.from, MemberId(2));
    }
    publish(&nodes[0], Topic::Consensus, b"a vote for the newcomer").await;
    let message = wait_gossip(&mut nodes[2], "member 0's vote").await;
    assert_eq!(message.payload, b"a vote for the newcomer");
    assert!(message.from == MemberId(0) || message.from == MemberId(1));

    // Direct messages both ways.
    send_direct(&nodes[2], MemberId(0), b"status of the newcomer").await;
    let direct = wait_event(
        &mut nodes[0],
        "the newcomer's direct message",
        |event| match event {
            NetworkEvent::Direct(message) => Some(message),
            _ => None,
        },
    )
    .await;
    assert_eq!(direct.from, MemberId(2));
    assert_eq!(direct.payload, b"status of the newcomer");
    send_direct(&nodes[0], MemberId(2), b"certificate for the newcomer").await;
    let direct = wait_event(
        &mut nodes[2],
        "member 0's direct message",
        |event| match event {
            NetworkEvent::Direct(message) => Some(message),
            _ => None,
        },
    )
    .await;
    assert_eq!(direct.from, MemberId(0));
    assert_eq!(direct.payload, b"certificate for the newcomer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_key_rotation_the_old_identity_is_refused_and_the_new_one_accepted() {
    let ports = free_ports(4);
    let genesis = dev_genesis(&ports[..3]);
    let configs: Vec<NetworkConfig> = (0..3).map(|i| config_for(&genesis, i, ports[i])).collect();
    let mut nodes = start_all(configs).await;
    wait_connected(&nodes[0], &[MemberId(1), MemberId(2)]).await;
    wait_connected(&nodes[1], &[MemberId(0), MemberId(2)]).await;
    let old = nodes.pop().unwrap();

    // Member 2 rotates its key; its new node listens on another port while the old
    // one keeps running (a stolen key, or an operator who forgot to stop it).
    let new_key = Keypair::dev("exchange-b-rotated");
    let mut rotated = config_for(&genesis, 2, ports[3]);
    rotated.keypair = new_key.clone();
    let entry = rotated
        .validators
        .iter_mut()
        .find(|validator| validator.member == MemberId(2))
        .unwrap();
    entry.public_key = new_key.public_key();
    entry.address = Some(address(ports[3]));
    let rotated_list = member_list(&rotated);
    for node in &nodes {
        let change = node.handle.set_members(rotated_list.clone()).await.unwrap();
        assert_eq!(change.rekeyed, vec![MemberId(2)]);
        assert!(change.added.is_empty() && change.removed.is_empty());
        let again = node.handle.set_members(rotated_list.clone()).await.unwrap();
        assert!(again.is_empty(), "{again:?}");
    }
    let seen = events_until(&mut nodes[0], "the old identity disconnected", |event| {
        *event
            == NetworkEvent::PeerDisconnected {
                member: MemberId(2),
            }
    })
    .await;
    assert!(
        !seen.contains(&NetworkEvent::PeerDisconnected {
            member: MemberId(1)
        }),
        "{seen:?}"
    );
    // The old identity is cut off and its redials refused.
    wait_connected(&old, &[]).await;
    let refused_before = nodes[0].handle.status().await.unwrap().denied_connections;
    wait_refused(&nodes[0], refused_before, "the old identity's redial").await;

    // The new identity connects (dialed by the others at its new address) and
    // speaks as member 2.
    let mut new = start(rotated).await;
    assert_eq!(new.member, MemberId(2));
    wait_connected(&new, &[MemberId(0), MemberId(1)]).await;
    wait_connected(&nodes[0], &[MemberId(1), MemberId(2)]).await;
    wait_subscribed(&new, &[MemberId(0), MemberId(1)]).await;
    publish(&new, Topic::Transactions, b"signed with the new key").await;
    let message = wait_gossip(&mut nodes[0], "the new identity's batch").await;
    assert_eq!(message.payload, b"signed with the new key");
    assert_eq!(message.from, MemberId(2));
    send_direct(&nodes[0], MemberId(2), b"to member 2 now").await;
    let direct = wait_event(&mut new, "member 0's direct message", |event| match event {
        NetworkEvent::Direct(message) => Some(message),
        _ => None,
    })
    .await;
    assert_eq!(direct.payload, b"to member 2 now");
    assert_eq!(direct.from, MemberId(0));

    // Still refused: the old identity, which keeps dialing and publishing.
    let mut old = old;
    let mut forbidden = Vec::new();
    for attempt in 0..5 {
        let payload = format!("old key {attempt}").into_bytes();
        let _ = old.handle.publish(Topic::Consensus, payload.clone()).await;
        let _ = old.handle.send(MemberId(0), payload.clone()).await;
        forbidden.push(payload);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(old.handle.connected_members().await.unwrap().is_empty());
    let seen = events_until_marker(&mut nodes, b"after the rotation, from member 1").await;
    assert!(
        !seen.iter().any(|event| match event {
            NetworkEvent::Gossip(message) => forbidden.contains(&message.payload),
            NetworkEvent::Direct(message) => forbidden.contains(&message.payload),
            _ => false,
        }),
        "{seen:?}"
    );
    let heard_by_old = gossip_within(&mut old, QUIET_WINDOW).await;
    assert!(
        heard_by_old
            .iter()
            .all(|message| message.payload != b"signed with the new key"
                && message.payload != b"after the rotation, from member 1"),
        "{heard_by_old:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_is_not_yet_a_validator_connects_gossips_and_syncs() {
    let ports = free_ports(3);
    let genesis = dev_genesis(&ports);
    let mut configs: Vec<NetworkConfig> =
        (0..3).map(|i| config_for(&genesis, i, ports[i])).collect();
    let mut with_observer = member_list(&configs[0]);
    for member in &mut with_observer {
        if member.member == MemberId(2) {
            member.validator = false;
        }
    }
    for config in &mut configs[..2] {
        config
            .validators
            .retain(|validator| validator.member != MemberId(2));
    }
    let mut nodes = start_all(configs).await;
    wait_connected(&nodes[0], &[MemberId(1)]).await;
    for node in &nodes[..2] {
        let change = node
            .handle
            .set_members(with_observer.clone())
            .await
            .unwrap();
        assert_eq!(change.added, vec![MemberId(2)]);
    }
    wait_connected(&nodes[2], &[MemberId(0), MemberId(1)]).await;
    wait_subscribed(&nodes[0], &[MemberId(1), MemberId(2)]).await;
    wait_subscribed(&nodes[2], &[MemberId(0), MemberId(1)]).await;

    publish(&nodes[0], Topic::Consensus, b"a certificate to follow").await;
    let message = wait_gossip(&mut nodes[2], "member 0's certificate").await;
    assert_eq!(message.payload, b"a certificate to follow");
    publish(&nodes[2], Topic::Transactions, b"the observer's batch").await;
    let message = wait_gossip(&mut nodes[0], "the observer's batch").await;
    assert_eq!(message.payload, b"the observer's batch");
    assert_eq!(message.from, MemberId(2));

    // It syncs: member 0 answers its request.
    let requester = nodes[2].handle.clone();
    let ask = tokio::spawn(async move {
        requester
            .request(MemberId(0), b"blocks from 1".to_vec())
            .await
    });
    let request = wait_event(
        &mut nodes[0],
        "the observer's request",
        |event| match event {
            NetworkEvent::Request(request) => Some(request),
            _ => None,
        },
    )
    .await;
    assert_eq!(request.from, MemberId(2));
    nodes[0]
        .handle
        .respond(request.id, b"blocks 1 to 9".to_vec())
        .await
        .unwrap();
    assert_eq!(ask.await.unwrap().unwrap(), b"blocks 1 to 9");

    // At its activation height it becomes a validator: same identity, so nothing
    // is added or dropped and its connection stays up.
    for member in &mut with_observer {
        member.validator = true;
    }
    let change = nodes[0].handle.set_members(with_observer).await.unwrap();
    assert!(change.is_empty(), "{change:?}");
    let deadline = Instant::now() + QUIET_WINDOW;
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, nodes[0].events.recv()).await {
        assert!(
            !matches!(event, NetworkEvent::PeerDisconnected { .. }),
            "{event:?}"
        );
    }
    assert_eq!(
        nodes[0].handle.connected_members().await.unwrap(),
        vec![MemberId(1), MemberId(2)]
    );
}
