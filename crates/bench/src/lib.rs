//! Seisan's benchmarks as a library: the measurement record every benchmark prints, the
//! workload (a genesis with many exchange members holding both assets, and signed
//! crossing limit orders), and small statistics helpers.
//!
//! Every figure is printed as one JSON object per line,
//! `{"name", "value", "unit", "conditions"}`, so `scripts/bench.sh` can collect and
//! tabulate them; the benchmarks assert that the work they time was really done (every
//! order filled, every signature valid), never how fast it was.

use seisan_crypto::Keypair;
use seisan_types::clearing::{OrderRequest, Pair, Side, TimeInForce};
use seisan_types::genesis::{Member, OpeningBalance};
use seisan_types::tx::{SignedTransaction, Transaction, TxBody};
use seisan_types::{Amount, AssetId, Genesis, MemberId, Nonce, Role};
use serde::Serialize;

/// One measured figure.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Measurement {
    pub name: String,
    pub value: f64,
    pub unit: String,
    pub conditions: String,
}

impl Measurement {
    /// Prints the figure as one JSON line on stdout.
    pub fn print(name: &str, value: f64, unit: &str, conditions: impl Into<String>) {
        let measurement = Measurement {
            name: name.to_string(),
            value,
            unit: unit.to_string(),
            conditions: conditions.into(),
        };
        println!(
            "{}",
            serde_json::to_string(&measurement).expect("a measurement serializes")
        );
    }
}

/// The testnet's assets: ETH (scale 18) and JPY (scale 0), pair ETH/JPY.
pub const BASE: AssetId = AssetId(0);
pub const QUOTE: AssetId = AssetId(1);
pub const PAIR: Pair = Pair {
    base: BASE,
    quote: QUOTE,
};
/// Every benchmark order: 0.001 ETH at 300,000 JPY per ETH (a value of 300 JPY).
pub const ORDER_QUANTITY_MINOR: u128 = 1_000_000_000_000_000;
pub const ORDER_PRICE_MINOR: u128 = 300_000;
/// What each benchmark member opens with, in whole units: enough for millions of
/// orders on either side.
pub const OPENING_ETH: &str = "100000";
pub const OPENING_JPY: &str = "100000000000";

/// The name of benchmark member `index` (as `seisan genesis testnet --extra-exchanges`
/// names them; their keys are `Keypair::dev(name)`).
pub fn bench_member_name(index: u32) -> String {
    format!("bench-{index}")
}

/// Opening balances of both assets for every `bench-*` member of `genesis`.
pub fn fund_bench_members(genesis: &mut Genesis) {
    let names: Vec<String> = genesis
        .members
        .iter()
        .filter(|member| member.name.starts_with("bench-"))
        .map(|member| member.name.clone())
        .collect();
    for name in names {
        for (asset, amount) in [("ETH", OPENING_ETH), ("JPY", OPENING_JPY)] {
            genesis.opening_balances.push(OpeningBalance {
                member: name.clone(),
                asset: asset.to_string(),
                amount: amount.to_string(),
            });
        }
    }
}

/// The committed testnet genesis (`genesis/testnet.json`, written by
/// `seisan genesis testnet`; three validators, ETH/JPY) with `members` funded benchmark
/// exchanges added, for benchmarks that run the contracts without a node.
pub fn bench_genesis(members: u32) -> Genesis {
    let mut genesis = Genesis::from_json(include_str!("../../../genesis/testnet.json"))
        .expect("the committed testnet genesis parses");
    for index in 0..members {
        let name = bench_member_name(index);
        genesis.members.push(Member {
            public_key: Keypair::dev(&name).public_key(),
            name,
            role: Role::Exchange,
            validator: false,
            p2p_address: None,
        });
    }
    fund_bench_members(&mut genesis);
    genesis.validate().expect("the benchmark genesis is valid");
    genesis
}

/// A good-till-cancel limit order at the one benchmark price: a buy and a sell always
/// cross, so with as many buys as sells every order fills.
pub fn crossing_order(side: Side) -> TxBody {
    TxBody::PlaceOrder(OrderRequest {
        pair: PAIR,
        side,
        quantity: Amount(ORDER_QUANTITY_MINOR),
        limit_price: Amount(ORDER_PRICE_MINOR),
        time_in_force: TimeInForce::GoodTillCancel,
        expires_at_ms: None,
    })
}

/// Signs order number `sequence` of a stream over `members` benchmark members: member
/// `sequence % members` (even members sell, odd members buy, so consecutive orders
/// cross), with the member's next nonce taken from and advanced in `nonces`.
pub fn signed_order(
    genesis: &Genesis,
    keys: &[Keypair],
    nonces: &mut [u64],
    sequence: u64,
) -> SignedTransaction {
    let slot = (sequence % keys.len() as u64) as usize;
    let name = bench_member_name(slot as u32);
    let (member, _) = genesis
        .member_by_name(&name)
        .expect("benchmark member in genesis");
    nonces[slot] += 1;
    let side = if slot.is_multiple_of(2) {
        Side::Sell
    } else {
        Side::Buy
    };
    seisan_crypto::sign_transaction(
        &keys[slot],
        &genesis.hash(),
        Transaction {
            chain_id: genesis.chain_id.clone(),
            member: MemberId(member.0),
            nonce: Nonce(nonces[slot]),
            body: crossing_order(side),
        },
    )
}

/// The dev keys of the first `members` benchmark members.
pub fn bench_keys(members: u32) -> Vec<Keypair> {
    (0..members)
        .map(|index| Keypair::dev(&bench_member_name(index)))
        .collect()
}

/// The `quantile` (0..=1) of `values` by nearest rank; 0 when empty.
pub fn quantile(values: &mut [f64], quantile: f64) -> f64 {
    assert!((0.0..=1.0).contains(&quantile));
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((values.len() as f64 * quantile).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

/// Total size of the files under `path`, in bytes.
pub fn directory_bytes(path: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(metadata) if metadata.is_dir() => directory_bytes(&entry.path()),
            Ok(metadata) => metadata.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Bytes written to the block device that holds `path` since boot, from
/// `/proc/diskstats` (sectors written x 512), or `None` when the file system is not on
/// a listed device (an overlay or tmpfs). Device-wide: whatever else writes to that
/// device counts too.
///
/// Not `/proc/<pid>/io`'s `write_bytes`: on this machine's kernel it counts a dirtied
/// page-cache folio whole, so 500 appends of 5,800 bytes (each fdatasynced) over a
/// preallocated file counted 1,050 MB while the device wrote 5 MB.
pub fn device_written_bytes(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    let device = std::fs::metadata(path).ok()?.dev();
    // Linux's encoding of a device number (glibc's gnu_dev_major / gnu_dev_minor).
    let major = ((device >> 8) & 0xfff) | ((device >> 32) & !0xfff);
    let minor = (device & 0xff) | ((device >> 12) & !0xff);
    sectors_written_of(
        &std::fs::read_to_string("/proc/diskstats").ok()?,
        major,
        minor,
    )
    .map(|sectors| sectors * 512)
}

/// The sectors written of device `major`:`minor` in a `/proc/diskstats` text.
fn sectors_written_of(diskstats: &str, major: u64, minor: u64) -> Option<u64> {
    diskstats.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let matches = fields.first()?.parse::<u64>().ok()? == major
            && fields.get(1)?.parse::<u64>().ok()? == minor;
        // Fields after the name: reads, merged, sectors read, ms, writes, merged,
        // sectors written (the tenth field of the line).
        matches.then(|| fields.get(9)?.parse().ok()).flatten()
    })
}

/// CPU seconds (user + system) a process has used so far, from `/proc/<pid>/stat`.
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name in parentheses may hold spaces: fields follow the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after ')'.
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    let ticks = clock_ticks_per_second();
    Some((user + system) / ticks)
}

fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_by_nearest_rank() {
        let mut values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&mut values, 0.5), 50.0);
        assert_eq!(quantile(&mut values, 0.99), 99.0);
        assert_eq!(quantile(&mut values, 1.0), 100.0);
        assert_eq!(quantile(&mut [], 0.5), 0.0);
    }

    #[test]
    fn consecutive_orders_cross_and_nonces_advance() {
        let genesis = bench_genesis(4);
        let keys = bench_keys(4);
        let mut nonces = vec![0; 4];
        let first = signed_order(&genesis, &keys, &mut nonces, 0);
        let second = signed_order(&genesis, &keys, &mut nonces, 1);
        let fifth = signed_order(&genesis, &keys, &mut nonces, 4);
        assert!(seisan_crypto::verify_transaction(&genesis, &first).is_ok());
        assert_eq!(fifth.tx.member, first.tx.member);
        assert_eq!(fifth.tx.nonce, Nonce(2));
        let side = |tx: &SignedTransaction| match &tx.tx.body {
            TxBody::PlaceOrder(order) => order.side,
            other => panic!("not an order: {other:?}"),
        };
        assert_ne!(side(&first), side(&second));
    }

    #[test]
    fn sectors_written_are_the_tenth_field_of_the_device_s_line() {
        let stats = "   7       0 loop0 10 0 100 1 0 0 0 0 0 4 1 0 0 0 0 0 0\n \
                     253       0 vda 1962 77 245122 1164 52147 30001 4075832 60420 0 38000\n";
        assert_eq!(sectors_written_of(stats, 253, 0), Some(4_075_832));
        assert_eq!(sectors_written_of(stats, 7, 0), Some(0));
        assert_eq!(sectors_written_of(stats, 8, 0), None);
        // This machine's data directories' device is listed, and its count grows with
        // a synced write.
        let dir = tempfile::tempdir().unwrap();
        if let Some(before) = device_written_bytes(dir.path()) {
            let file = dir.path().join("written");
            std::fs::write(&file, vec![7u8; 1 << 20]).unwrap();
            std::fs::File::open(&file).unwrap().sync_all().unwrap();
            let after = device_written_bytes(dir.path()).unwrap();
            assert!(after >= before + (1 << 20), "{before} -> {after}");
        }
    }

    #[test]
    fn own_process_uses_cpu() {
        let seconds = process_cpu_seconds(std::process::id()).expect("readable stat");
        assert!(seconds >= 0.0);
        assert!(process_cpu_seconds(u32::MAX).is_none());
    }
}
