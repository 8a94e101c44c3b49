//! The chaos run itself: start the cluster, the bank and anvil, fund the fiat members'
//! trust accounts and make the first crypto deposits, start the clients and the
//! checker, inject the planned faults until the time is up, then let the cluster
//! converge, let the bank and custody watchers settle, and check everything once more
//! on every node, against the bank's books and against the public chain.

use crate::chain::{self, ChainTransaction};
use crate::cluster::{funded_members, opening_total, Cluster, FIAT_MEMBERS, GAS_BUFFER_WEI};
use crate::faults::{quorum_losses_required, Fault, FaultKind, FaultPlan, QuorumLoss, Stop};
use crate::http::{self, Answer};
use crate::invariants::{
    check_account_flow, check_acknowledged, check_balances, check_bank_books,
    check_credited_within_sent, check_crypto_bounds, check_custody_exact,
    check_deposits_credited_once, check_evidence, check_fiat_bounds, check_holdings_add_up,
    check_reconciliation_settled, check_supply, check_withdrawals_paid_once, parse_reserves,
    AccountFlow, AckCheck, BankBooks, ChainDeposit, ChainRecord,
};
use crate::workload::{crypto_deposit, deposit, run_client, Endpoints, Shared};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use seisan_api::v1;
use seisan_bank::{AccountId, BankAdapter, Direction, HttpBank};
use seisan_types::custody::{DepositRecord, Withdrawal, WithdrawalStatus};
use seisan_types::{AssetId, Role};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the cluster may take to make progress again once a fault heals.
pub const RECOVERY_BOUND: Duration = Duration::from_secs(90);
/// How soon after a quorum of validators is back from a quorum-loss outage (a killed
/// one answers its API again, a paused one is continued) the chain must finalize a
/// new block: a few view timeouts (2 s each), with room for debug builds under the
/// workload on two cores. A miss counts in `stalls_after_quorum`.
pub const QUORUM_BACK_BOUND: Duration = Duration::from_secs(15);
/// How long one status poll may take while a quorum-loss outage measures (paused
/// nodes do not answer at all).
const QUICK_POLL_TIMEOUT: Duration = Duration::from_millis(1_000);
/// How long a faulted node may take to catch up with the chain (a wiped node replays
/// the whole chain from genesis).
const CATCH_UP_BOUND: Duration = Duration::from_secs(240);
/// How long the cluster may take to agree on one height after the workload stops.
const CONVERGENCE_BOUND: Duration = Duration::from_secs(120);
/// How far apart the nodes' heights may be for the cluster to count as caught up.
const CONVERGED_LAG: u64 = 3;
/// The most blocks the checker fetches from one node per tick (it catches up over ticks).
const BLOCKS_PER_TICK: u64 = 40;
/// Acknowledged transactions re-checked on every node per checker tick.
const ACKS_PER_TICK: usize = 10;
/// The fiat asset the bank holds.
const FIAT_SYMBOL: &str = "JPY";
/// What each fiat member deposits into its trust account before the workload starts.
const OPENING_DEPOSIT_JPY: u128 = 1_000_000_000;
/// How long the bank watchers may take, after the run, to attest every deposit and
/// payment, mirror every settlement and pay every withdrawal.
const BANK_SETTLE_BOUND: Duration = Duration::from_secs(240);
/// What each registered exchange deposits before the workload starts: 5 ETH and 20
/// WBTC (so the hot wallet's share of WBTC covers every WBTC payout of the run).
const OPENING_CRYPTO: [(&str, u128); 2] = [
    (chain::NATIVE_SYMBOL, 5_000_000_000_000_000_000),
    (chain::TOKEN_SYMBOL, 2_000_000_000),
];
/// How long the custody watchers may take, after the run, to credit every deposit and
/// pay and complete every withdrawal.
const CUSTODY_SETTLE_BOUND: Duration = Duration::from_secs(240);

/// What the run is asked to do.
#[derive(Clone, Debug)]
pub struct Options {
    pub minutes: f64,
    pub seed: u64,
    pub binary: PathBuf,
    pub dir: PathBuf,
    pub extra_members: u32,
    pub clients: usize,
    pub net: u8,
    /// The validator started with `--fault lie-attestations` (see
    /// [`crate::cluster::DEFAULT_LIAR`]), or none.
    pub liar: Option<String>,
}

/// Problems found, shared by the checker and the fault driver.
#[derive(Debug, Default)]
struct Findings {
    violations: Mutex<Vec<String>>,
    divergences: Mutex<Vec<String>>,
    lost: Mutex<BTreeSet<String>>,
    stalls: Mutex<Vec<String>>,
    /// Quorum-loss outages after which the chain did not finalize a new block within
    /// [`QUORUM_BACK_BOUND`] of a quorum being back.
    stalls_after_quorum: Mutex<Vec<String>>,
    /// How often member holdings could be compared with the supply at one state.
    holdings_compared: AtomicU64,
}

impl Findings {
    fn violation(&self, text: String) {
        eprintln!("chaos: INVARIANT VIOLATION: {text}");
        self.violations.lock().expect("findings lock").push(text);
    }

    fn divergence(&self, text: String) {
        eprintln!("chaos: DIVERGENCE: {text}");
        self.divergences.lock().expect("findings lock").push(text);
    }

    fn lost(&self, id: &str, text: String) {
        if self
            .lost
            .lock()
            .expect("findings lock")
            .insert(id.to_string())
        {
            eprintln!("chaos: LOST: {text}");
        }
    }
}

/// The outcome, for the summary line and the exit code.
#[derive(Debug)]
pub struct Summary {
    pub minutes: f64,
    pub injected: BTreeMap<FaultKind, u64>,
    pub skipped: BTreeMap<FaultKind, u64>,
    pub acknowledged: usize,
    pub lost: usize,
    pub violations: usize,
    pub divergences: usize,
    pub stalls: usize,
    /// Quorum-loss outages the chain took longer than [`QUORUM_BACK_BOUND`] to
    /// recover from once a quorum was back.
    pub stalls_after_quorum: usize,
    pub holdings_compared: u64,
    pub converged: bool,
    pub heights: usize,
    /// Whether the bank and the ledger settled (nothing in flight) after the run.
    pub bank_settled: bool,
    /// Whether custody settled after the run (every deposit credited, every withdrawal
    /// completed).
    pub custody_settled: bool,
}

impl Summary {
    pub fn faults(&self) -> u64 {
        self.injected.values().sum()
    }

    /// Quorum-loss outages injected.
    pub fn quorum_losses(&self) -> u64 {
        self.injected
            .get(&FaultKind::QuorumLoss)
            .copied()
            .unwrap_or(0)
    }

    pub fn passed(&self) -> bool {
        self.lost == 0
            && self.violations == 0
            && self.divergences == 0
            && self.stalls == 0
            && self.stalls_after_quorum == 0
            && self.quorum_losses() >= quorum_losses_required(self.minutes)
            && self.converged
            && self.bank_settled
            && self.custody_settled
            && self.acknowledged > 0
    }

    pub fn breakdown_line(&self) -> String {
        let mut line = String::from("chaos: faults by kind:");
        for kind in FaultKind::ALL {
            line += &format!(
                " {kind}={} ({kind} not injected={})",
                self.injected.get(&kind).copied().unwrap_or(0),
                self.skipped.get(&kind).copied().unwrap_or(0)
            );
        }
        line += &format!(
            "; progress stalls={} quorum losses={} (at least {} required) converged={} bank_settled={} custody_settled={} heights_compared={} holdings_compared={}",
            self.stalls,
            self.quorum_losses(),
            quorum_losses_required(self.minutes),
            self.converged,
            self.bank_settled,
            self.custody_settled,
            self.heights,
            self.holdings_compared
        );
        line
    }

    pub fn summary_line(&self) -> String {
        format!(
            "chaos: minutes={} faults={} acknowledged={} lost={} invariant_violations={} divergences={} stalls_after_quorum={}",
            self.minutes,
            self.faults(),
            self.acknowledged,
            self.lost,
            self.violations,
            self.divergences,
            self.stalls_after_quorum
        )
    }
}

/// Runs the whole chaos run. Errors are for setup failures; what the run finds is in
/// the summary.
pub fn run(options: Options) -> anyhow::Result<Summary> {
    println!(
        "chaos: seed={} (replay the fault schedule with --seed {})",
        options.seed, options.seed
    );
    let mut cluster = Cluster::start(
        &options.binary,
        &options.dir,
        options.extra_members,
        options.net,
        options.liar.as_deref(),
    )?;
    match cluster.liar {
        Some(liar) => println!(
            "chaos: {} validators, quorum {}; {} lies in its attestations (--fault lie-attestations)",
            cluster.nodes.len(),
            cluster.genesis.quorum,
            cluster.nodes[liar].name
        ),
        None => println!(
            "chaos: {} validators, quorum {}; no validator lies",
            cluster.nodes.len(),
            cluster.genesis.quorum
        ),
    }
    match &cluster.namespace_error {
        None => println!("chaos: nodes run in their own network namespaces; partitions cut their veth links"),
        Some(error) => println!(
            "chaos: NETWORK NAMESPACES UNAVAILABLE ({error}); nodes run on loopback and partitions are NOT injected"
        ),
    }
    let urls: Vec<String> = cluster.nodes.iter().map(|node| node.url.clone()).collect();
    let started = Instant::now();
    while !urls.iter().all(|url| http::height(url).is_some()) {
        if started.elapsed() > RECOVERY_BOUND {
            for (index, url) in urls.iter().enumerate() {
                eprintln!("---- {url} ----\n{}", cluster.log_tail(index, 30));
            }
            anyhow::bail!("the nodes never answered on {urls:?}");
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    println!(
        "chaos: nodes up at {urls:?}; bank at {}; anvil at {}",
        cluster.bank.url, cluster.anvil.chain.url
    );
    if !wait_for_bank(&cluster.bank.url) {
        eprintln!("{}", cluster.bank_log_tail(30));
        anyhow::bail!("the bank never answered on {}", cluster.bank.url);
    }

    let genesis = Arc::new(cluster.genesis.clone());
    let shared = Arc::new(Shared::default());
    fund_trust_accounts(&cluster, &urls, &shared)?;
    let custody = CustodyContext::new(&cluster)?;
    fund_custody(&cluster, &urls, &shared)?;
    let findings = Arc::new(Findings::default());
    let chain = Arc::new(Mutex::new(ChainRecord::default()));
    let wipes: Arc<Vec<AtomicU64>> = Arc::new((0..urls.len()).map(|_| AtomicU64::new(0)).collect());

    let members = funded_members(options.extra_members);
    let clients = options.clients.max(1);
    let mut threads = Vec::new();
    for client in 0..clients {
        let mine: Vec<String> = members
            .iter()
            .skip(client)
            .step_by(clients)
            .cloned()
            .collect();
        let (genesis, shared) = (genesis.clone(), shared.clone());
        let endpoints = Endpoints {
            urls: urls.clone(),
            bank_url: cluster.bank.url.clone(),
            chain: cluster.anvil.chain.clone(),
        };
        let seed = options.seed.wrapping_add(1 + client as u64);
        threads.push(std::thread::spawn(move || {
            run_client(genesis, endpoints, mine, client, seed, shared)
        }));
    }
    let checker = {
        let (urls, shared, findings, chain, wipes) = (
            urls.clone(),
            shared.clone(),
            findings.clone(),
            chain.clone(),
            wipes.clone(),
        );
        let member_names = all_member_names(&genesis);
        let seed = options.seed.wrapping_add(1000);
        let custody = custody.clone();
        std::thread::spawn(move || {
            run_checker(
                urls,
                member_names,
                &custody,
                shared,
                findings,
                chain,
                wipes,
                seed,
            )
        })
    };

    let mut injected = BTreeMap::new();
    let mut skipped = BTreeMap::new();
    let mut plan = FaultPlan::new(options.seed, urls.len());
    let deadline = started + Duration::from_secs_f64(options.minutes * 60.0);
    // Faulted nodes not yet back at the chain's height, with the time they must be.
    let mut catching_up: BTreeMap<usize, Instant> = BTreeMap::new();
    while Instant::now() < deadline {
        let mut fault = plan.next_fault();
        let began = Instant::now();
        check_catch_up(&urls, &mut catching_up, &findings, &cluster);
        // A quorum loss waits until every node is back at the chain's height: its
        // bound is on liveness once a quorum is back, and a quorum with a member
        // hundreds of blocks behind (a wiped node replaying the chain) first has to
        // sync, which is what the catch-up bound is for.
        if fault.kind == FaultKind::QuorumLoss && !catching_up.is_empty() {
            let waiting: Vec<&str> = catching_up
                .keys()
                .map(|index| cluster.nodes[*index].name.as_str())
                .collect();
            println!(
                "chaos: waiting for {} to catch up before taking quorum down",
                waiting.join(" and ")
            );
            while !catching_up.is_empty() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1_000));
                check_catch_up(&urls, &mut catching_up, &findings, &cluster);
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        // Only one validator may be out at a time for a quorum (3 of 4; quorum losses
        // take two out on purpose and are measured as such): while a node is still catching
        // up, the next fault hits that node again rather than a second one.
        // A wipe would send it back to genesis and it might never catch up, so a
        // planned wipe becomes a kill (which keeps what it synced so far).
        let lagging = catching_up.keys().next().copied();
        if let Some(lagging) = lagging.filter(|_| fault.kind.hits_node()) {
            if fault.kind == FaultKind::Wipe {
                fault.kind = FaultKind::Kill;
            }
            println!(
                "chaos: {} is still catching up; the next fault ({}) goes to it",
                cluster.nodes[lagging].name, fault.kind
            );
            fault.node = lagging;
            if let Some(outage) = fault.quorum_loss.as_mut() {
                if outage.second == lagging {
                    outage.second = (lagging + 1) % urls.len();
                }
            }
        }
        if fault.kind == FaultKind::Partition && !cluster.partitions_possible() {
            *skipped.entry(fault.kind).or_insert(0u64) += 1;
        } else {
            inject(&mut cluster, &urls, fault, &wipes, &findings)?;
            *injected.entry(fault.kind).or_insert(0u64) += 1;
            if fault.kind.hits_node() {
                catching_up.insert(fault.node, Instant::now() + CATCH_UP_BOUND);
            }
            if let Some(outage) = fault.quorum_loss {
                catching_up.insert(outage.second, Instant::now() + CATCH_UP_BOUND);
            }
        }
        let next = began + Duration::from_millis(fault.gap_ms);
        while Instant::now() < next.min(deadline) {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    println!("chaos: time is up; stopping the workload");
    shared.stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().expect("client thread");
    }
    checker.join().expect("checker thread");

    let converged = converge(&urls);
    if !converged {
        findings
            .stalls
            .lock()
            .expect("findings lock")
            .push("the nodes did not agree on one height after the workload stopped".into());
        for (index, url) in urls.iter().enumerate() {
            eprintln!("---- {url} ----\n{}", cluster.log_tail(index, 30));
        }
    }
    final_checks(&urls, &genesis, &shared, &findings, &chain);
    let bank_settled = bank_checks(&cluster, &urls[0], &shared, &findings);
    let custody_settled = custody_checks(&cluster, &urls[0], &custody, &shared, &findings);
    evidence_checks(&cluster, &urls, &findings);
    let heights = chain.lock().expect("chain lock").heights();
    let summary = Summary {
        minutes: options.minutes,
        injected,
        skipped,
        acknowledged: shared.acknowledged.lock().expect("acks").len(),
        lost: findings.lost.lock().expect("findings").len(),
        violations: findings.violations.lock().expect("findings").len(),
        divergences: findings.divergences.lock().expect("findings").len(),
        stalls: findings.stalls.lock().expect("findings").len(),
        stalls_after_quorum: findings.stalls_after_quorum.lock().expect("findings").len(),
        holdings_compared: findings.holdings_compared.load(Ordering::Relaxed),
        converged,
        heights,
        bank_settled,
        custody_settled,
    };
    println!(
        "chaos: workload submitted={} refused_at_admission={} unknown_outcome={} nonce_rereads={}",
        shared.submitted.load(Ordering::Relaxed),
        shared.refused.load(Ordering::Relaxed),
        shared.unknown.lock().expect("unknown").len(),
        shared.nonce_rereads.load(Ordering::Relaxed)
    );
    {
        let fiat = shared.fiat.lock().expect("fiat lock");
        println!(
            "chaos: fiat deposits={} (confirmed by the bank={}, asked {} JPY) withdrawals={} (asked {} JPY) failed_bank_calls={}",
            fiat.deposits.len(),
            fiat.deposits.values().filter(|deposit| deposit.confirmed).count(),
            fiat.deposits_asked,
            fiat.withdrawal_transactions,
            fiat.withdrawals_asked,
            fiat.bank_failures
        );
        let crypto = shared.crypto.lock().expect("crypto lock");
        println!(
            "chaos: crypto deposits={} (asked {:?}) withdrawals={} (asked {:?}) failed_chain_calls={}",
            crypto.deposits.len(),
            crypto.deposits_asked,
            crypto.withdrawal_transactions,
            crypto.withdrawals_asked,
            crypto.chain_failures
        );
    }
    drop(cluster);
    Ok(summary)
}

fn all_member_names(genesis: &seisan_types::genesis::Genesis) -> Vec<String> {
    genesis
        .members
        .iter()
        .map(|member| member.name.clone())
        .collect()
}

/// Whether the bank answers its health check within [`RECOVERY_BOUND`].
fn wait_for_bank(bank_url: &str) -> bool {
    seisan_tests::wait_until(RECOVERY_BOUND, || {
        Ok(matches!(
            http::get(&format!("{bank_url}/v1/health")),
            Ok((200, _))
        ))
    })
    .is_ok()
}

/// Each fiat member moves [`OPENING_DEPOSIT_JPY`] into its trust account; waits until
/// every node credited all of it (so the run starts with yen to trade, and the bank
/// watchers are known to work).
fn fund_trust_accounts(cluster: &Cluster, urls: &[String], shared: &Shared) -> anyhow::Result<()> {
    for member in FIAT_MEMBERS {
        let bank = HttpBank::new(&cluster.bank.url, &seisan_bank::dev_token(member));
        let reference = format!("chaos-{member}-opening");
        deposit(&bank, &shared.fiat, member, &reference, OPENING_DEPOSIT_JPY)
            .map_err(|error| anyhow::anyhow!("opening deposit {reference}: {error}"))?;
    }
    let expected = OPENING_DEPOSIT_JPY * FIAT_MEMBERS.len() as u128;
    let started = Instant::now();
    loop {
        let credited: Vec<Option<u128>> = urls.iter().map(|url| fiat_credited(url)).collect();
        if credited.iter().all(|credited| *credited == Some(expected)) {
            println!(
                "chaos: {expected} JPY deposited at the bank, credited on every node after {} ms",
                started.elapsed().as_millis()
            );
            return Ok(());
        }
        if started.elapsed() > RECOVERY_BOUND {
            for (index, url) in urls.iter().enumerate() {
                eprintln!("---- {url} ----\n{}", cluster.log_tail(index, 30));
            }
            anyhow::bail!("the opening deposits were not credited: {credited:?} of {expected}");
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The fiat asset's credited total on a node, if it answers.
fn fiat_credited(url: &str) -> Option<u128> {
    let answer: v1::Supply = http::get_as(&format!("{url}/v1/supply")).ok()?.document()?;
    let (_, supplies) = check_supply(&answer).ok()?;
    supplies
        .into_iter()
        .find(|supply| supply.symbol == FIAT_SYMBOL)
        .map(|supply| supply.credited)
}

/// Injects one fault, holds it, heals it and waits for progress to resume.
fn inject(
    cluster: &mut Cluster,
    urls: &[String],
    fault: Fault,
    wipes: &[AtomicU64],
    findings: &Findings,
) -> anyhow::Result<()> {
    let name = match (fault.kind.hits_node(), fault.quorum_loss) {
        (false, _) => "the bank".to_string(),
        (true, None) => cluster.nodes[fault.node].name.clone(),
        (true, Some(outage)) => format!(
            "{} and {}",
            cluster.nodes[fault.node].name, cluster.nodes[outage.second].name
        ),
    };
    println!(
        "chaos: fault {} on {name} for {} ms",
        fault.kind, fault.hold_ms
    );
    let hold = Duration::from_millis(fault.hold_ms);
    match fault.kind {
        FaultKind::Kill => {
            cluster.kill(fault.node);
            std::thread::sleep(hold);
            cluster.launch(fault.node)?;
        }
        FaultKind::Pause => {
            cluster.signal_pause(fault.node, true)?;
            std::thread::sleep(hold);
            cluster.signal_pause(fault.node, false)?;
        }
        FaultKind::Partition => {
            cluster.set_link(fault.node, false)?;
            std::thread::sleep(hold);
            cluster.set_link(fault.node, true)?;
        }
        FaultKind::Wipe => {
            cluster.wipe(fault.node)?;
            wipes[fault.node].fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(hold);
            cluster.launch(fault.node)?;
        }
        FaultKind::QuorumLoss => {
            let outage = fault
                .quorum_loss
                .expect("a quorum-loss fault names its outage");
            quorum_loss(cluster, urls, fault.node, fault.hold_ms, outage, findings)?;
        }
        FaultKind::BankRestart => {
            cluster.kill_bank();
            std::thread::sleep(hold);
            cluster.launch_bank()?;
            if !wait_for_bank(&cluster.bank.url) {
                let text =
                    format!("the bank did not answer within {RECOVERY_BOUND:?} of its restart");
                eprintln!("chaos: STALL: {text}\n{}", cluster.bank_log_tail(30));
                findings.stalls.lock().expect("findings lock").push(text);
            }
        }
    }
    // Progress resumes: the chain grows past where it stood at the heal. (Whether the
    // faulted node catches up is checked by `check_catch_up`, with a longer bound.)
    let healed_at = Instant::now();
    let stood = urls
        .iter()
        .filter_map(|url| http::height(url))
        .max()
        .unwrap_or(0);
    loop {
        let heights: Vec<Option<u64>> = urls.iter().map(|url| http::height(url)).collect();
        let highest = heights.iter().flatten().copied().max().unwrap_or(0);
        if highest > stood {
            let at = if fault.kind.hits_node() {
                format!("{name} at {}, ", heights[fault.node].unwrap_or(0))
            } else {
                String::new()
            };
            println!(
                "chaos: progress resumed {} ms after healing ({at}chain at {highest})",
                healed_at.elapsed().as_millis()
            );
            return Ok(());
        }
        if healed_at.elapsed() > RECOVERY_BOUND {
            let text = format!(
                "no progress within {RECOVERY_BOUND:?} after healing {} on {name}: heights {heights:?}, stood at {stood}",
                fault.kind
            );
            let log = if fault.kind.hits_node() {
                cluster.log_tail(fault.node, 30)
            } else {
                cluster.bank_log_tail(30)
            };
            eprintln!("chaos: STALL: {text}\n---- {name} ----\n{log}");
            findings.stalls.lock().expect("findings lock").push(text);
            let stopped = fault.quorum_loss.map(|outage| outage.second);
            for node in [Some(fault.node), stopped].into_iter().flatten() {
                if fault.kind.hits_node() && !cluster.is_running(node) {
                    cluster.launch(node)?;
                }
            }
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A quorum-loss outage: stops `first`, then `outage.second` (the chain stops: the one
/// left is short of a quorum), holds, brings them back in `outage.order`, and checks
/// that a new block is finalized within [`QUORUM_BACK_BOUND`] of a quorum being back
/// (a miss is a stall after quorum). Returns once both are back.
fn quorum_loss(
    cluster: &mut Cluster,
    urls: &[String],
    first: usize,
    hold_ms: u64,
    outage: QuorumLoss,
    findings: &Findings,
) -> anyhow::Result<()> {
    let quorum = cluster.genesis.quorum as usize;
    let stopped = [first, outage.second];
    assert!(first != outage.second, "a quorum loss stops two nodes");
    assert!(
        urls.len() - stopped.len() < quorum,
        "stopping {stopped:?} of {} leaves a quorum of {quorum}",
        urls.len()
    );
    let node_names: Vec<String> = cluster.nodes.iter().map(|node| node.name.clone()).collect();
    let names = |nodes: &[usize]| -> String {
        nodes
            .iter()
            .map(|index| node_names[*index].as_str())
            .collect::<Vec<_>>()
            .join(" and ")
    };
    let how = match outage.stop {
        Stop::Kill => "kill -9",
        Stop::Pause => "SIGSTOP",
    };
    println!(
        "chaos: quorum loss: {how} {}, {} ms later {}; back after {hold_ms} ms, {}",
        names(&[first]),
        outage.stagger_ms,
        names(&[outage.second]),
        outage.order.name()
    );
    let stop = |cluster: &mut Cluster, node: usize| -> anyhow::Result<()> {
        match outage.stop {
            Stop::Kill => {
                cluster.kill(node);
                Ok(())
            }
            Stop::Pause => cluster.signal_pause(node, true),
        }
    };
    stop(cluster, first)?;
    std::thread::sleep(Duration::from_millis(outage.stagger_ms));
    stop(cluster, outage.second)?;
    std::thread::sleep(Duration::from_millis(hold_ms));

    let mut up: Vec<usize> = (0..urls.len())
        .filter(|index| !stopped.contains(index))
        .collect();
    // Heights answered until a quorum is back were finalized before the outage (a
    // returning node's first answer is what it stored or held).
    let mut stood = up
        .iter()
        .filter_map(|index| http::height_within(&urls[*index], QUICK_POLL_TIMEOUT))
        .max()
        .unwrap_or(0);
    let mut measured = false;
    for (position, group) in outage.order.groups(stopped).into_iter().enumerate() {
        if position > 0 {
            std::thread::sleep(Duration::from_millis(outage.between_returns_ms));
        }
        let mut back_at = Vec::new();
        for &node in &group {
            match outage.stop {
                Stop::Kill => cluster.launch(node)?,
                Stop::Pause => {
                    cluster.signal_pause(node, false)?;
                    back_at.push(Instant::now());
                }
            }
        }
        if outage.stop == Stop::Kill {
            // A killed node is back when its API answers.
            let launched = Instant::now();
            let mut waiting = group.clone();
            while !waiting.is_empty() && launched.elapsed() < RECOVERY_BOUND {
                waiting.retain(|index| {
                    match http::height_within(&urls[*index], QUICK_POLL_TIMEOUT) {
                        Some(first_height) => {
                            stood = stood.max(first_height);
                            back_at.push(Instant::now());
                            false
                        }
                        None => true,
                    }
                });
                std::thread::sleep(Duration::from_millis(50));
            }
            if !waiting.is_empty() {
                let text = format!(
                    "{} did not answer within {RECOVERY_BOUND:?} of its restart",
                    names(&waiting)
                );
                eprintln!("chaos: STALL: {text}");
                findings.stalls.lock().expect("findings lock").push(text);
                continue;
            }
        } else {
            for index in &group {
                if let Some(first_height) = http::height_within(&urls[*index], QUICK_POLL_TIMEOUT) {
                    stood = stood.max(first_height);
                }
            }
        }
        let before = up.len();
        up.extend(&group);
        if measured || up.len() < quorum {
            continue;
        }
        measured = true;
        back_at.sort();
        let quorum_back = back_at[(quorum - before - 1).min(back_at.len() - 1)];
        loop {
            let top = up
                .iter()
                .filter_map(|index| http::height_within(&urls[*index], QUICK_POLL_TIMEOUT))
                .max()
                .unwrap_or(0);
            if top > stood {
                println!(
                    "chaos: quorum back ({} returned): height {top} finalized {} ms later (the chain stood at {stood})",
                    names(&group),
                    quorum_back.elapsed().as_millis()
                );
                break;
            }
            if quorum_back.elapsed() > QUORUM_BACK_BOUND {
                let text = format!(
                    "quorum loss of {} ({how}, {}): nothing finalized within {QUORUM_BACK_BOUND:?} of a quorum being back (the chain stood at {stood})",
                    names(&stopped),
                    outage.order.name()
                );
                eprintln!("chaos: STALL AFTER QUORUM: {text}");
                findings
                    .stalls_after_quorum
                    .lock()
                    .expect("findings lock")
                    .push(text);
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    Ok(())
}

/// Drops the nodes that are back within [`CONVERGED_LAG`] of the chain from
/// `catching_up`; a node past its deadline is a stall.
fn check_catch_up(
    urls: &[String],
    catching_up: &mut BTreeMap<usize, Instant>,
    findings: &Findings,
    cluster: &Cluster,
) {
    let heights: Vec<Option<u64>> = urls.iter().map(|url| http::height(url)).collect();
    let highest = heights.iter().flatten().copied().max().unwrap_or(0);
    catching_up.retain(|&node, deadline| {
        let height = heights[node].unwrap_or(0);
        if height + CONVERGED_LAG >= highest {
            return false;
        }
        if Instant::now() > *deadline {
            let text = format!(
                "{} did not catch up within {CATCH_UP_BOUND:?}: at {height}, chain at {highest}",
                cluster.nodes[node].name
            );
            eprintln!("chaos: STALL: {text}");
            findings.stalls.lock().expect("findings lock").push(text);
            return false;
        }
        true
    });
}

/// The checker thread: reads every node about once a second and checks the invariants
/// on every answer.
#[allow(clippy::too_many_arguments)]
fn run_checker(
    urls: Vec<String>,
    members: Vec<String>,
    custody: &CustodyContext,
    shared: Arc<Shared>,
    findings: Arc<Findings>,
    chain: Arc<Mutex<ChainRecord>>,
    wipes: Arc<Vec<AtomicU64>>,
    seed: u64,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut last_height = vec![0u64; urls.len()];
    let mut checked = vec![0u64; urls.len()];
    let mut seen_wipes = vec![0u64; urls.len()];
    let mut tick = 0u64;
    while !shared.stop.load(Ordering::Relaxed) {
        tick += 1;
        for (index, url) in urls.iter().enumerate() {
            let wiped = wipes[index].load(Ordering::SeqCst);
            if wiped != seen_wipes[index] {
                seen_wipes[index] = wiped;
                last_height[index] = 0;
                // Re-verify the resynced chain from the start.
                checked[index] = 0;
            }
            let Some(height) = http::height(url) else {
                continue;
            };
            if height < last_height[index] {
                findings.violation(format!(
                    "{url} went back from height {} to {height} without losing its data",
                    last_height[index]
                ));
            }
            last_height[index] = last_height[index].max(height);
            match http::get_as::<v1::Supply>(&format!("{url}/v1/supply")) {
                Ok(Answer::Document(answer)) => match check_supply(&answer) {
                    Ok((height, supplies)) => {
                        // Read after the supply: the workload's totals only grow, so
                        // they bound what the ledger could have seen.
                        let (deposits, withdrawals) = {
                            let fiat = shared.fiat.lock().expect("fiat lock");
                            (fiat.deposits_asked, fiat.withdrawals_asked)
                        };
                        for text in check_fiat_bounds(&supplies, FIAT_SYMBOL, deposits, withdrawals)
                        {
                            findings.violation(format!("{url} at height {height}: {text}"));
                        }
                        let (sent, withdrawn) = {
                            let crypto = shared.crypto.lock().expect("crypto lock");
                            (
                                crypto.deposits_asked.clone(),
                                crypto.withdrawals_asked.clone(),
                            )
                        };
                        for text in
                            check_crypto_bounds(&supplies, &custody.openings, &sent, &withdrawn)
                        {
                            findings.violation(format!("{url} at height {height}: {text}"));
                        }
                    }
                    Err(problems) => problems
                        .into_iter()
                        .for_each(|text| findings.violation(format!("{url}: {text}"))),
                },
                Ok(Answer::Unreadable(text)) => findings.violation(text),
                // Unreachable or refusing (paused, partitioned, catching up): no finding.
                Ok(Answer::Refused(..)) | Err(_) => {}
            }
            let upto = height.min(checked[index] + BLOCKS_PER_TICK);
            for h in checked[index] + 1..=upto {
                match block_root(url, h) {
                    Some((hash, root)) => {
                        if let Some(text) = chain
                            .lock()
                            .expect("chain lock")
                            .observe(url, h, &hash, &root)
                        {
                            findings.divergence(text);
                        }
                        checked[index] = h;
                    }
                    None => break,
                }
            }
            check_some_acknowledged(url, height, &shared, &findings, &mut rng);
        }
        // One node's deposit records per tick (the list grows over the run).
        let url = &urls[tick as usize % urls.len()];
        if let Some(records) = deposit_records(url) {
            let sent = shared
                .crypto
                .lock()
                .expect("crypto lock")
                .deposits_asked
                .clone();
            for text in check_credited_within_sent(&records, &custody.symbols, &sent) {
                findings.violation(format!("{url}: {text}"));
            }
        }
        if tick.is_multiple_of(5) {
            let url = &urls[(tick / 5) as usize % urls.len()];
            if check_holdings(url, &members, &findings) {
                findings.holdings_compared.fetch_add(1, Ordering::Relaxed);
            }
        }
        std::thread::sleep(Duration::from_millis(700));
    }
}

fn block_root(url: &str, height: u64) -> Option<(String, String)> {
    let document: v1::BlockDocument = http::get_as(&format!("{url}/v1/blocks/{height}"))
        .ok()?
        .document()?;
    Some((
        document.hash.to_hex(),
        document.block.header.state_root.to_hex(),
    ))
}

fn check_some_acknowledged(
    url: &str,
    height: u64,
    shared: &Shared,
    findings: &Findings,
    rng: &mut StdRng,
) {
    let sample: Vec<_> = {
        let acks = shared.acknowledged.lock().expect("acks");
        if acks.is_empty() {
            return;
        }
        (0..ACKS_PER_TICK.min(acks.len()))
            .map(|_| acks[rng.gen_range(0..acks.len())].clone())
            .collect()
    };
    for ack in sample {
        let Ok(answer) = http::get_as(&format!("{url}/v1/transactions/{}", ack.id)) else {
            return;
        };
        if let AckCheck::Lost(text) = check_acknowledged(&ack, height, &answer) {
            findings.lost(&ack.id, format!("{url}: {text}"));
        }
    }
}

/// Reads the supply, every member's balances and the supply again; if the state root
/// did not change in between (empty blocks change the height but not the state), the
/// balances were all read from one state and must add up to the supply exactly.
/// Returns whether the comparison could be made.
fn check_holdings(url: &str, members: &[String], findings: &Findings) -> bool {
    let supply = || {
        http::get_as::<v1::Supply>(&format!("{url}/v1/supply"))
            .ok()?
            .document()
    };
    let Some(before) = supply() else {
        return false;
    };
    let mut totals = Vec::new();
    let mut heights = BTreeSet::new();
    for member in members {
        let answer = match http::get_as(&format!("{url}/v1/members/{member}/balances")) {
            Ok(Answer::Document(answer)) => answer,
            Ok(Answer::Unreadable(text)) => {
                findings.violation(text);
                return false;
            }
            Ok(Answer::Refused(..)) | Err(_) => return false,
        };
        match check_balances(&answer) {
            Ok((height, member_totals)) => {
                heights.insert(height);
                totals.push(member_totals);
            }
            Err(problems) => {
                problems
                    .into_iter()
                    .for_each(|text| findings.violation(format!("{url}: {text}")));
                return false;
            }
        }
    }
    let Some(after) = supply() else {
        return false;
    };
    let (Ok((height_before, supplies)), Ok((height_after, _))) =
        (check_supply(&before), check_supply(&after))
    else {
        return false;
    };
    let same_state = before.state_root == after.state_root;
    let read_between = heights
        .iter()
        .all(|height| (height_before..=height_after).contains(height));
    if !(same_state && read_between) {
        return false;
    }
    for text in check_holdings_add_up(height_before, &supplies, &totals) {
        findings.violation(format!("{url}: {text}"));
    }
    true
}

/// Waits until every node answers and all are within [`CONVERGED_LAG`] blocks of each
/// other twice in a row (the chain keeps growing with empty blocks, so equal heights
/// are not to be expected).
fn converge(urls: &[String]) -> bool {
    let started = Instant::now();
    let mut close_before = false;
    while started.elapsed() < CONVERGENCE_BOUND {
        let heights: Vec<Option<u64>> = urls.iter().map(|url| http::height(url)).collect();
        let known: Vec<u64> = heights.iter().flatten().copied().collect();
        let close = known.len() == urls.len()
            && known.iter().max().copied().unwrap_or(0) - known.iter().min().copied().unwrap_or(0)
                <= CONVERGED_LAG;
        if close && close_before {
            println!("chaos: all nodes caught up: heights {known:?}");
            return true;
        }
        close_before = close;
        std::thread::sleep(Duration::from_millis(1_000));
    }
    false
}

/// After the run: every block on every node, every acknowledged transaction on every
/// node, every transaction of unknown outcome that did finalize is the same on every
/// node, and supplies and holdings add up on every node.
fn final_checks(
    urls: &[String],
    genesis: &seisan_types::genesis::Genesis,
    shared: &Shared,
    findings: &Findings,
    chain: &Mutex<ChainRecord>,
) {
    let heights: Vec<u64> = urls
        .iter()
        .map(|url| http::height(url).unwrap_or(0))
        .collect();
    for (index, url) in urls.iter().enumerate() {
        for h in 1..=heights[index] {
            match block_root(url, h) {
                Some((hash, root)) => {
                    if let Some(text) = chain.lock().expect("chain").observe(url, h, &hash, &root) {
                        findings.divergence(text);
                    }
                }
                None => findings.divergence(format!("{url} cannot serve block {h}")),
            }
        }
    }
    let acks = shared.acknowledged.lock().expect("acks").clone();
    println!(
        "chaos: re-checking {} acknowledged transactions on {} nodes",
        acks.len(),
        urls.len()
    );
    // One thread per node, each over one kept connection: tens of thousands of reads.
    let rechecking = Instant::now();
    std::thread::scope(|scope| {
        for (index, url) in urls.iter().enumerate() {
            let (acks, height) = (&acks, heights[index]);
            scope.spawn(move || {
                let agent = http::keep_alive_agent();
                for ack in acks {
                    let address = format!("{url}/v1/transactions/{}", ack.id);
                    // A kept connection the node closed fails once: ask again afresh.
                    let answer =
                        http::get_as_with(&agent, &address).or_else(|_| http::get_as(&address));
                    match answer {
                        Ok(answer) => {
                            if let AckCheck::Lost(text) = check_acknowledged(ack, height, &answer) {
                                findings.lost(&ack.id, format!("{url}: {text}"));
                            }
                        }
                        Err(error) => findings.lost(&ack.id, format!("{url} unreachable: {error}")),
                    }
                }
            });
        }
    });
    println!(
        "chaos: re-checked them in {} ms",
        rechecking.elapsed().as_millis()
    );
    let unknown = shared.unknown.lock().expect("unknown").clone();
    for id in &unknown {
        // Per node: where the transaction is finalized and with what receipt, or
        // `None` (pending, unknown, unreadable).
        type Outcome = Option<(
            Option<seisan_types::Height>,
            Option<seisan_types::receipt::Receipt>,
        )>;
        let answers: Vec<Outcome> = urls
            .iter()
            .filter_map(|url| {
                http::get_as::<v1::TransactionStatus>(&format!("{url}/v1/transactions/{id}")).ok()
            })
            .map(|answer| match answer {
                Answer::Document(status) if status.status == v1::TxState::Finalized => {
                    Some((status.height, status.receipt))
                }
                _ => None,
            })
            .collect();
        if answers.windows(2).any(|pair| pair[0] != pair[1]) {
            findings.divergence(format!(
                "transaction {id} (outcome unknown to its client) differs between nodes: {answers:?}"
            ));
        }
    }
    let members = all_member_names(genesis);
    for url in urls {
        match http::get_as::<v1::Supply>(&format!("{url}/v1/supply")) {
            Ok(Answer::Document(answer)) => {
                if let Err(problems) = check_supply(&answer) {
                    problems
                        .into_iter()
                        .for_each(|text| findings.violation(format!("{url}: {text}")));
                }
            }
            Ok(Answer::Unreadable(text)) => findings.violation(text),
            _ => findings.violation(format!("{url} does not answer /v1/supply after the run")),
        }
        // The workload has stopped, so the state settles; a few tries suffice.
        let compared = (0..10).any(|_| check_holdings(url, &members, findings));
        if compared {
            findings.holdings_compared.fetch_add(1, Ordering::Relaxed);
        } else {
            eprintln!(
                "chaos: warning: {url} never held one state root long enough to compare holdings"
            );
        }
    }
}

/// After the bank and custody settled: every honest node's evidence names only the
/// liar (each item verified), all honest nodes serve the same evidence, and, when a
/// validator lies, its contradicting attestations are on record.
fn evidence_checks(cluster: &Cluster, urls: &[String], findings: &Findings) {
    let liar = cluster.liar.map(|index| {
        let name = &cluster.nodes[index].name;
        let member = cluster
            .genesis
            .members
            .iter()
            .position(|member| &member.name == name)
            .expect("the liar is a genesis member");
        (name.clone(), member as u64)
    });
    let honest: Vec<&String> = urls
        .iter()
        .enumerate()
        .filter(|(index, _)| Some(*index) != cluster.liar)
        .map(|(_, url)| url)
        .collect();
    // The nodes may be a block apart: ask again until they serve the same list.
    let mut last = Vec::new();
    for attempt in 0..10 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(1_000));
        }
        let mut lists = Vec::new();
        for url in &honest {
            match http::get_as::<v1::EvidenceList>(&format!("{url}/v1/evidence")) {
                Ok(Answer::Document(answer)) => {
                    match check_evidence(&answer, liar.as_ref().map(|l| l.1)) {
                        Ok(items) => lists.push(items),
                        Err(violations) => {
                            for text in violations {
                                findings.violation(format!("{url}: {text}"));
                            }
                            return;
                        }
                    }
                }
                other => {
                    findings.violation(format!("{url} /v1/evidence answered {other:?}"));
                    return;
                }
            }
        }
        last = lists;
        if last.windows(2).all(|pair| pair[0] == pair[1]) {
            break;
        }
    }
    if !last.windows(2).all(|pair| pair[0] == pair[1]) {
        let counts: Vec<usize> = last.iter().map(Vec::len).collect();
        findings.violation(format!(
            "the honest nodes serve different evidence ({counts:?} items)"
        ));
        return;
    }
    let items = last.first().cloned().unwrap_or_default();
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for item in &items {
        *kinds.entry(item.kind.clone()).or_insert(0) += 1;
    }
    match liar {
        Some((name, _)) if items.is_empty() => findings.violation(format!(
            "{name} lied in its attestations but no honest node has evidence against it"
        )),
        Some((name, member)) => println!(
            "chaos: evidence on the {} honest nodes: {} items, all against the liar {name} (member {member}): {kinds:?}",
            honest.len(),
            items.len()
        ),
        None => println!(
            "chaos: evidence on the {} nodes: none (no validator lies)",
            honest.len()
        ),
    }
}

/// After the run: waits until the clearing house's reconciliation shows nothing in
/// flight (every deposit credited, every withdrawal paid and completed, every
/// settlement mirrored), then compares the ledger's yen with the bank's books and with
/// the deposits the workload made. Returns whether the bank and the ledger settled.
fn bank_checks(cluster: &Cluster, house_url: &str, shared: &Shared, findings: &Findings) -> bool {
    let started = Instant::now();
    let mut outstanding = String::new();
    let settled = loop {
        match http::get_as::<v1::Reconciliation>(&format!("{house_url}/v1/reconciliation")) {
            Ok(Answer::Document(answer)) => match check_reconciliation_settled(&answer) {
                Ok(()) => break true,
                Err(text) => outstanding = text,
            },
            Ok(Answer::Unreadable(text)) => outstanding = text,
            Ok(Answer::Refused(code, error)) => {
                outstanding = format!("reconciliation answered {code} {error:?}")
            }
            Err(error) => outstanding = format!("reconciliation: {error}"),
        }
        if started.elapsed() > BANK_SETTLE_BOUND {
            break false;
        }
        std::thread::sleep(Duration::from_millis(1_000));
    };
    if settled {
        println!(
            "chaos: bank and ledger settled {} ms after the run (nothing pending, unattested or unmirrored)",
            started.elapsed().as_millis()
        );
    } else {
        findings.violation(format!(
            "the bank and the ledger did not settle within {BANK_SETTLE_BOUND:?}: {outstanding}"
        ));
        eprintln!("---- clearing-house ----\n{}", cluster.log_tail(0, 30));
    }
    let house = HttpBank::new(&cluster.bank.url, &seisan_bank::dev_token("clearing-house"));
    let books = match read_books(&house, &cluster.genesis) {
        Ok(books) => books,
        Err(error) => {
            findings.violation(format!("reading the bank's books after the run: {error}"));
            return false;
        }
    };
    let ledger = match http::get_as::<v1::Supply>(&format!("{house_url}/v1/supply")) {
        Ok(Answer::Document(answer)) => check_supply(&answer).ok().and_then(|(_, supplies)| {
            supplies
                .into_iter()
                .find(|supply| supply.symbol == FIAT_SYMBOL)
        }),
        _ => None,
    };
    let Some(ledger) = ledger else {
        findings.violation(format!(
            "{house_url} gave no {FIAT_SYMBOL} supply after the run"
        ));
        return false;
    };
    let asked: BTreeMap<String, (u128, bool)> = shared
        .fiat
        .lock()
        .expect("fiat lock")
        .deposits
        .iter()
        .map(|(reference, deposit)| (reference.clone(), (deposit.amount, deposit.confirmed)))
        .collect();
    println!(
        "chaos: {FIAT_SYMBOL} ledger credited={} debited={} held={}; bank deposits={} ({} JPY) withdrawals_paid={} ({} JPY) trust_balances={}",
        ledger.credited,
        ledger.debited,
        ledger.held,
        books.deposits.len(),
        books.deposits.values().sum::<u128>(),
        books.withdrawal_payments.len(),
        books.withdrawal_payments.values().sum::<u128>(),
        books.trust_balances
    );
    let violations = check_bank_books(&ledger, &books, &asked);
    let clean = violations.is_empty();
    for text in violations {
        findings.violation(format!("bank books: {text}"));
    }
    settled && clean
}

/// Every exchange's trust account at the bank: balance, deposits and withdrawal
/// payments (read with the clearing house's token, which may read every account).
fn read_books(
    house: &HttpBank,
    genesis: &seisan_types::genesis::Genesis,
) -> Result<BankBooks, seisan_bank::BankError> {
    let mut books = BankBooks::default();
    for member in genesis
        .members
        .iter()
        .filter(|member| member.role == Role::Exchange)
    {
        let trust = AccountId::trust(&member.name);
        let operating = AccountId::operating(&member.name);
        books.trust_balances += house.balance(&trust)?.balance.0;
        let mut after = 0;
        loop {
            let entries = house.statement(&trust, after)?;
            let Some(last) = entries.last() else { break };
            after = last.sequence;
            for entry in entries
                .iter()
                .filter(|entry| entry.counterparty == operating)
            {
                let into = match entry.direction {
                    Direction::Credit => &mut books.deposits,
                    Direction::Debit if entry.reference.0.starts_with("fiat-withdrawal-") => {
                        &mut books.withdrawal_payments
                    }
                    Direction::Debit => continue,
                };
                // A reference is booked once, so a repeat here would be a bank defect;
                // adding keeps it visible as a difference instead of hiding it.
                *into.entry(entry.reference.0.clone()).or_default() += entry.amount.0;
            }
        }
    }
    Ok(books)
}

/// What the crypto checks need to know about the run's genesis and chain.
#[derive(Clone, Debug)]
struct CustodyContext {
    /// The genesis ledger's holdings of each crypto asset.
    openings: BTreeMap<&'static str, u128>,
    /// The crypto assets' ids and symbols.
    symbols: BTreeMap<AssetId, &'static str>,
    /// Each registered exchange's member id and address, and its balances of each
    /// crypto asset at the chain's start block.
    registered: Vec<(
        seisan_types::MemberId,
        &'static str,
        BTreeMap<&'static str, u128>,
    )>,
}

impl CustodyContext {
    fn new(cluster: &Cluster) -> anyhow::Result<CustodyContext> {
        let genesis = &cluster.genesis;
        let mut openings = BTreeMap::new();
        let mut symbols = BTreeMap::new();
        for symbol in [chain::NATIVE_SYMBOL, chain::TOKEN_SYMBOL] {
            openings.insert(symbol, opening_total(genesis, symbol)?);
            let (id, _) = genesis
                .asset_by_symbol(symbol)
                .ok_or_else(|| anyhow::anyhow!("genesis has no {symbol}"))?;
            symbols.insert(id, symbol);
        }
        anyhow::ensure!(
            symbols.get(&crate::workload::WBTC) == Some(&chain::TOKEN_SYMBOL),
            "the workload's WBTC id is not genesis's"
        );
        let mut registered = Vec::new();
        for (member, address) in chain::REGISTERED {
            let (id, _) = genesis
                .member_by_name(member)
                .ok_or_else(|| anyhow::anyhow!("genesis has no {member}"))?;
            let mut start = BTreeMap::new();
            for symbol in [chain::NATIVE_SYMBOL, chain::TOKEN_SYMBOL] {
                let balance =
                    cluster
                        .anvil
                        .chain
                        .balance(address, symbol, cluster.chain_start_block)?;
                start.insert(symbol, balance);
            }
            registered.push((id, address, start));
        }
        Ok(CustodyContext {
            openings,
            symbols,
            registered,
        })
    }
}

/// Every record of a paged custody list (`/v1/deposits`, `/v1/withdrawals`), following
/// `next_after`, if the node answers every page: `split` takes a page (the list's
/// `v1` type) apart into its records and its `next_after`.
fn all_pages<P: serde::de::DeserializeOwned, T>(
    url: &str,
    list: &str,
    split: impl Fn(P) -> (Vec<T>, Option<String>),
) -> Option<Vec<T>> {
    let mut records = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = match &after {
            Some(cursor) => format!("{url}/v1/{list}?after={cursor}"),
            None => format!("{url}/v1/{list}"),
        };
        let (mut page, next) = split(http::get_as::<P>(&page).ok()?.document()?);
        records.append(&mut page);
        match next {
            None => return Some(records),
            next => after = next,
        }
    }
}

/// A node's deposit records, if it answers.
fn deposit_records(url: &str) -> Option<Vec<DepositRecord>> {
    all_pages(url, "deposits", |page: v1::Deposits| {
        (page.deposits, page.next_after)
    })
}

/// A node's withdrawals, if it answers.
fn withdrawal_records(url: &str) -> Option<Vec<Withdrawal>> {
    all_pages(url, "withdrawals", |page: v1::Withdrawals| {
        (
            page.withdrawals,
            page.next_after.map(|after| after.to_string()),
        )
    })
}

/// Each registered exchange deposits [`OPENING_CRYPTO`] on the chain; waits until every
/// node credited all of it (so the hot wallet holds WBTC to pay with, and the custody
/// watchers are known to work).
fn fund_custody(cluster: &Cluster, urls: &[String], shared: &Shared) -> anyhow::Result<()> {
    let mut hashes = Vec::new();
    for (member, address) in chain::REGISTERED {
        for (symbol, amount) in OPENING_CRYPTO {
            hashes.push(crypto_deposit(
                &cluster.anvil.chain,
                &shared.crypto,
                member,
                address,
                symbol,
                amount,
            )?);
        }
    }
    let started = Instant::now();
    loop {
        let credited: Vec<usize> = urls
            .iter()
            .map(|url| {
                deposit_records(url)
                    .unwrap_or_default()
                    .iter()
                    .filter(|record| {
                        record.outcome.as_ref().is_some_and(|(fact, _)| {
                            hashes
                                .iter()
                                .any(|hash| hash.eq_ignore_ascii_case(&fact.tx_hash.0))
                        })
                    })
                    .count()
            })
            .collect();
        if credited.iter().all(|count| *count == hashes.len()) {
            println!(
                "chaos: {} opening crypto deposits sent to the hot wallet, credited on every node after {} ms",
                hashes.len(),
                started.elapsed().as_millis()
            );
            return Ok(());
        }
        if started.elapsed() > RECOVERY_BOUND {
            for (index, url) in urls.iter().enumerate() {
                eprintln!("---- {url} ----\n{}", cluster.log_tail(index, 30));
            }
            anyhow::bail!(
                "the opening crypto deposits were not credited: {credited:?} of {}",
                hashes.len()
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// After the run: waits until every deposit the workload sent is credited and every
/// withdrawal completed, then reads the whole chain since the start and checks that
/// each deposit was credited once, each withdrawal paid once, custody equals the
/// ledger exactly and each registered address moved by exactly its flows. Returns
/// whether custody settled.
fn custody_checks(
    cluster: &Cluster,
    house_url: &str,
    custody: &CustodyContext,
    shared: &Shared,
    findings: &Findings,
) -> bool {
    let sent: Vec<String> = shared
        .crypto
        .lock()
        .expect("crypto lock")
        .deposits
        .keys()
        .cloned()
        .collect();
    let started = Instant::now();
    let mut outstanding = String::new();
    let settled = loop {
        let records = deposit_records(house_url);
        let withdrawals = withdrawal_records(house_url);
        match (records, withdrawals) {
            (Some(records), Some(withdrawals)) => {
                let uncredited =
                    sent.iter()
                        .filter(|hash| {
                            !records.iter().any(|record| {
                                record.outcome.as_ref().is_some_and(|(fact, _)| {
                                    fact.tx_hash.0.eq_ignore_ascii_case(hash)
                                })
                            })
                        })
                        .count();
                let open = withdrawals
                    .iter()
                    .filter(|w| !matches!(w.status, WithdrawalStatus::Completed { .. }))
                    .count();
                if uncredited == 0 && open == 0 {
                    break true;
                }
                outstanding = format!(
                    "{uncredited} of {} deposits not credited, {open} of {} withdrawals not completed",
                    sent.len(),
                    withdrawals.len()
                );
            }
            _ => outstanding = format!("{house_url} does not answer its deposits or withdrawals"),
        }
        if started.elapsed() > CUSTODY_SETTLE_BOUND {
            break false;
        }
        std::thread::sleep(Duration::from_millis(1_000));
    };
    if settled {
        println!(
            "chaos: custody settled {} ms after the run (every deposit credited, every withdrawal completed)",
            started.elapsed().as_millis()
        );
    } else {
        findings.violation(format!(
            "custody did not settle within {CUSTODY_SETTLE_BOUND:?}: {outstanding}"
        ));
        eprintln!("---- clearing-house ----\n{}", cluster.log_tail(0, 30));
    }
    match check_against_chain(cluster, house_url, custody) {
        Ok(violations) => {
            let clean = violations.is_empty();
            for text in violations {
                findings.violation(format!("custody: {text}"));
            }
            settled && clean
        }
        Err(error) => {
            findings.violation(format!(
                "custody: reading the chain after the run: {error:#}"
            ));
            false
        }
    }
}

/// The after-run comparison of the ledger with the public chain (see
/// [`custody_checks`]); returns the violations found.
fn check_against_chain(
    cluster: &Cluster,
    house_url: &str,
    custody: &CustodyContext,
) -> anyhow::Result<Vec<String>> {
    let chain = &cluster.anvil.chain;
    let answer = match http::get_as::<v1::Reserves>(&format!("{house_url}/v1/reserves"))? {
        Answer::Document(answer) => answer,
        Answer::Unreadable(text) => anyhow::bail!(text),
        Answer::Refused(code, error) => anyhow::bail!("reserves answered {code} {error:?}"),
    };
    let lines = parse_reserves(&answer);
    let block = answer.public_chain_block;
    let records = deposit_records(house_url)
        .ok_or_else(|| anyhow::anyhow!("{house_url} gave no deposits"))?;
    let withdrawals = withdrawal_records(house_url)
        .ok_or_else(|| anyhow::anyhow!("{house_url} gave no withdrawals"))?;
    let mut senders = vec![chain::HOT_ADDRESS];
    senders.extend(custody.registered.iter().map(|(_, address, _)| *address));
    let transactions = chain.scan(cluster.chain_start_block + 1, block, &senders)?;
    let from = |address: &str| -> Vec<&ChainTransaction> {
        transactions
            .iter()
            .filter(|transaction| transaction.from.eq_ignore_ascii_case(address))
            .collect()
    };
    let payouts: Vec<ChainTransaction> = from(chain::HOT_ADDRESS).into_iter().cloned().collect();
    let hot_gas: u128 = payouts.iter().map(|payout| payout.gas_wei).sum();
    let asset_of = |symbol: &str| {
        custody
            .symbols
            .iter()
            .find(|(_, known)| **known == symbol)
            .map(|(id, _)| *id)
            .expect("every scanned symbol is a crypto asset of genesis")
    };
    let mut deposits = Vec::new();
    let mut violations = Vec::new();
    for (member, address, start) in &custody.registered {
        let mine = from(address);
        for transaction in &mine {
            match &transaction.movement {
                Some(movement) if movement.to.eq_ignore_ascii_case(chain::HOT_ADDRESS) => deposits
                    .push(ChainDeposit {
                        tx_hash: transaction.hash.clone(),
                        member: *member,
                        asset: asset_of(movement.symbol),
                        amount: movement.amount,
                    }),
                _ => violations.push(format!(
                    "{address} sent {} which is no deposit to the hot wallet",
                    transaction.hash
                )),
            }
        }
        for (symbol, start) in start {
            let asset = asset_of(symbol);
            let flow = AccountFlow {
                start: *start,
                end: chain.balance(address, symbol, block)?,
                paid_to: withdrawals
                    .iter()
                    .filter(|w| w.asset == asset && w.to.0.eq_ignore_ascii_case(address))
                    .filter(|w| matches!(w.status, WithdrawalStatus::Completed { .. }))
                    .map(|w| w.amount.0)
                    .sum(),
                sent: deposits
                    .iter()
                    .filter(|deposit| deposit.member == *member && deposit.asset == asset)
                    .map(|deposit| deposit.amount)
                    .sum(),
                gas: if *symbol == chain::NATIVE_SYMBOL {
                    mine.iter().map(|transaction| transaction.gas_wei).sum()
                } else {
                    0
                },
            };
            violations.extend(check_account_flow(&format!("{address} {symbol}"), &flow));
        }
    }
    violations.extend(check_deposits_credited_once(&deposits, &records));
    violations.extend(check_withdrawals_paid_once(
        &withdrawals,
        &payouts,
        &custody.symbols,
        chain::COLD_ADDRESS,
    ));
    violations.extend(check_custody_exact(
        &lines,
        chain::NATIVE_SYMBOL,
        hot_gas,
        GAS_BUFFER_WEI,
        &[chain::NATIVE_SYMBOL, chain::TOKEN_SYMBOL],
    ));
    let sweeps = payouts
        .iter()
        .filter(|payout| {
            payout
                .movement
                .as_ref()
                .is_some_and(|movement| movement.to.eq_ignore_ascii_case(chain::COLD_ADDRESS))
        })
        .count();
    println!(
        "chaos: chain blocks {}..={block}: deposits={} credited_records={} withdrawals={} hot_wallet_transactions={} (sweeps={sweeps}, gas {hot_gas} wei); reserves {}",
        cluster.chain_start_block + 1,
        deposits.len(),
        records.iter().filter(|record| record.outcome.is_some()).count(),
        withdrawals.len(),
        payouts.len(),
        lines
            .iter()
            .map(|line| format!(
                "{} liabilities={} hot={} cold={}",
                line.symbol, line.liabilities, line.hot, line.cold
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(violations)
}
