//! `seisan-chaos`: the chaos run's driver (see the library docs). Prints the seed, one
//! line per fault, a per-kind breakdown and then exactly one summary line
//! `chaos: minutes=M faults=F acknowledged=A lost=L invariant_violations=V divergences=D stalls_after_quorum=S`;
//! exits non-zero on any loss, violation, divergence or stall.

use anyhow::Context;
use clap::Parser;
use seisan_chaos::run::{run, Options};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    about = "Run four seisan validators (quorum 3, one lying in its attestations) under a workload while injecting faults"
)]
struct Args {
    /// How long to inject faults, in minutes.
    #[arg(long, default_value_t = 2.0)]
    minutes: f64,
    /// Seed of the fault schedule and the workload (default: from the clock).
    #[arg(long)]
    seed: Option<u64>,
    /// The `seisan` binary (default: next to this binary).
    #[arg(long)]
    seisan: Option<PathBuf>,
    /// Working directory for genesis, keys, data and logs (default: a new one in /tmp).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Funded `bench-*` members besides exchange-a and exchange-b.
    #[arg(long, default_value_t = 22)]
    members: u32,
    /// Concurrent client threads.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Network number: namespaces use 10.213.<net>.0/24 and links named sc<net>*.
    #[arg(long)]
    net: Option<u8>,
    /// The validator started with `--fault lie-attestations` (attests other amounts and
    /// invented facts; it must neither block nor forge a credit, and be on record).
    #[arg(long, default_value = seisan_chaos::cluster::DEFAULT_LIAR, conflicts_with = "no_liar")]
    liar: String,
    /// Run without a lying validator.
    #[arg(long)]
    no_liar: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let binary = match args.seisan {
        Some(path) => path,
        None => std::env::current_exe()?
            .parent()
            .context("binary folder")?
            .join("seisan"),
    };
    anyhow::ensure!(
        binary.exists(),
        "{} does not exist; build it with cargo build -p seisan-node",
        binary.display()
    );
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos() as u64)
            .unwrap_or(1)
    });
    let pid = std::process::id();
    let dir = args
        .dir
        .unwrap_or_else(|| std::env::temp_dir().join(format!("seisan-chaos-{pid}")));
    let net = args.net.unwrap_or((pid % 200) as u8 + 20);
    let summary = run(Options {
        minutes: args.minutes,
        seed,
        binary,
        dir: dir.clone(),
        extra_members: args.members,
        clients: args.clients,
        net,
        liar: (!args.no_liar).then_some(args.liar),
    })?;
    println!("{}", summary.breakdown_line());
    println!("{}", summary.summary_line());
    if summary.passed() {
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    } else {
        eprintln!(
            "chaos: FAILED (seed {seed}); logs and data kept in {}",
            dir.display()
        );
        std::process::exit(1);
    }
}
