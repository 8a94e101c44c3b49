//! Backup and restore (issue 20 item 5), with real `seisan node` processes on loopback.
//!
//! The drill: three validators; `seisan backup` of exchange-b's running node; the chain
//! advances with exchange-b voting, so its real last vote is later than the backup;
//! exchange-b is killed, its data directory wiped and rebuilt with `seisan restore`
//! from the old backup, and restarted. It must say it is fenced, then that the fence
//! lifted; catch up to the others with the same block hash and state root at every
//! height; no node may hold evidence of a double signature; and it must vote again:
//! with another validator killed, the chain (q = 2) still finalizes. Also: a restore
//! into a non-empty directory, of an archive of another genesis, and of a truncated or
//! altered archive is refused, naming what is wrong, and leaves nothing behind. And the
//! restore that would fork the chain if the fence trusted a single peer: a stale
//! exchange-b started beside the one validator that missed its last votes stays fenced
//! until the other is back (it fails with a fence that lifts on q - 1 peers).

use seisan_api::v1;
use seisan_tests::*;
use std::path::Path;
use std::process::{Command, Output};

/// Blocks the chain finalizes after the backup before exchange-b is stopped: its
/// signing record on disk is then well past the backup's.
const BLOCKS_AFTER_BACKUP: u64 = 6;

fn seisan(args: &[&str], paths: &[(&str, &Path)]) -> Output {
    let mut command = Command::new(seisan_binary());
    command.args(args);
    for (flag, path) in paths {
        command.arg(flag).arg(path);
    }
    command.output().expect("running seisan")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Consensus evidence (double signatures) any node holds.
fn consensus_evidence(testnet: &Testnet, nodes: &[usize]) -> Vec<String> {
    let mut found = Vec::new();
    for &index in nodes {
        let list: v1::EvidenceList =
            get_typed(&format!("{}/v1/evidence", testnet.nodes[index].url()));
        for item in list.evidence {
            if item.view.is_some() {
                found.push(format!("{}: {item:?}", testnet.nodes[index].name));
            }
        }
    }
    found
}

#[test]
fn a_stale_backup_restored_never_double_signs_and_catches_up() {
    let mut testnet = Testnet::start(0).expect("testnet");
    let b = testnet
        .nodes
        .iter()
        .position(|node| node.name == "exchange-b")
        .expect("exchange-b runs");
    let others: Vec<usize> = (0..testnet.nodes.len())
        .filter(|index| *index != b)
        .collect();
    testnet.wait_for_height(&[b], 2).expect("the chain runs");
    let dir = testnet.dir.path().to_path_buf();
    let archive = dir.join("exchange-b.seisan-backup");
    let url = testnet.nodes[b].url();
    // Only the member running a node may back it up: the clearing house is refused,
    // exchange-b's own key is not.
    let refused = seisan(
        &["backup", "--node", &url, "--json"],
        &[
            ("--out", &dir.join("refused.seisan-backup")),
            ("--key", &testnet.key_path("clearing-house")),
        ],
    );
    assert!(
        !refused.status.success() && stderr(&refused).contains("whose node this is"),
        "the clearing house backed up exchange-b's node: {}",
        stderr(&refused)
    );
    let own_key = testnet.key_path("exchange-b");
    let taken = seisan(
        &["backup", "--node", &url, "--json"],
        &[("--out", &archive), ("--key", &own_key)],
    );
    assert!(taken.status.success(), "backup failed: {}", stderr(&taken));
    let summary: serde_json::Value =
        serde_json::from_slice(&taken.stdout).expect("backup --json prints JSON");
    let backup_height = summary["header"]["height"].as_u64().expect("height");
    assert_eq!(summary["header"]["member_name"], "exchange-b");
    assert_eq!(summary["header"]["includes_key"], false);
    assert!(summary["records"].as_u64().unwrap() > 0);
    let files: Vec<String> = serde_json::from_value(summary["files"].clone()).unwrap();
    assert!(files.contains(&"consensus-record".to_string()), "{files:?}");
    eprintln!(
        "backup at height {backup_height}: {} bytes, {} records",
        summary["bytes"], summary["records"]
    );

    // exchange-b keeps voting after the backup.
    let record_at_backup = std::fs::read(testnet.nodes[b].data.join("consensus-record")).ok();
    testnet
        .wait_for_height(&[b], backup_height + BLOCKS_AFTER_BACKUP)
        .expect("the chain advances after the backup");
    testnet.nodes[b].kill();
    let last_record =
        std::fs::read(testnet.nodes[b].data.join("consensus-record")).expect("exchange-b signed");
    assert_ne!(
        record_at_backup.as_deref(),
        Some(last_record.as_slice()),
        "exchange-b's last vote is later than the backup"
    );

    // Refusals first: each names its reason and leaves no directory behind.
    let genesis = testnet.genesis_path();
    let not_empty = seisan(
        &["restore"],
        &[
            ("--from", &archive),
            ("--data", &testnet.nodes[b].data),
            ("--genesis", &genesis),
        ],
    );
    assert!(!not_empty.status.success());
    assert!(
        stderr(&not_empty).contains("is not empty"),
        "{}",
        stderr(&not_empty)
    );
    let bytes = std::fs::read(&archive).unwrap();
    let truncated = dir.join("truncated.seisan-backup");
    std::fs::write(&truncated, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let altered = dir.join("altered.seisan-backup");
    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    std::fs::write(&altered, &flipped).unwrap();
    let mut other_genesis = testnet.genesis.clone();
    other_genesis.genesis_time_ms += 1;
    let other_genesis_path = dir.join("other-genesis.json");
    std::fs::write(&other_genesis_path, other_genesis.to_json()).unwrap();
    let scratch = dir.join("scratch-restore");
    for (archive, genesis, reason) in [
        (&truncated, &genesis, "truncated"),
        (&altered, &genesis, "checksum does not match"),
        (&archive, &other_genesis_path, "another chain's data"),
    ] {
        let refused = seisan(
            &["restore"],
            &[
                ("--from", archive),
                ("--data", &scratch),
                ("--genesis", genesis),
            ],
        );
        assert!(!refused.status.success(), "{reason}: restored anyway");
        assert!(
            stderr(&refused).contains(reason),
            "{reason}: {}",
            stderr(&refused)
        );
        assert!(!scratch.exists(), "{reason}: left {}", scratch.display());
    }
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_name().to_string_lossy().contains("restoring"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "half-built directories: {leftovers:?}"
    );

    // Wipe and restore the stale backup; the chain moves on meanwhile.
    testnet.wipe(b).expect("wipe");
    let restored = seisan(
        &["restore"],
        &[
            ("--from", &archive),
            ("--data", &testnet.nodes[b].data),
            ("--genesis", &genesis),
        ],
    );
    assert!(
        restored.status.success(),
        "restore failed: {}",
        stderr(&restored)
    );
    assert!(testnet.nodes[b].data.join("restored").exists());
    let tip_before_restart = testnet.highest(&others).expect("the others answer");
    testnet.launch(b).expect("relaunch exchange-b");
    testnet.wait_in_sync(&[b]).expect("exchange-b catches up");
    wait_until(PATIENCE, || {
        let log = std::fs::read_to_string(&testnet.nodes[b].log).unwrap_or_default();
        Ok(log.contains("fence lifted"))
    })
    .expect("the fence lifts");
    let log = std::fs::read_to_string(&testnet.nodes[b].log).unwrap();
    let fenced_at = log
        .find("restored from a backup: fenced")
        .expect("it says it is fenced");
    let lifted_at = log.find("fence lifted").unwrap();
    assert!(fenced_at < lifted_at, "fenced, then lifted");
    assert!(
        !testnet.nodes[b].data.join("restored").exists(),
        "the marker goes once the fence lifted"
    );
    let lifted = status(&testnet.nodes[b].url()).expect("exchange-b answers");
    assert!(!lifted.fenced, "{lifted:?}");
    assert!(lifted.voting, "{lifted:?}");

    // Same chain: the same hash and root at every height, up to a height above the tip
    // the others had when exchange-b came back.
    let target = tip_before_restart + 2;
    testnet
        .wait_for_height(&[0, 1, 2], target)
        .expect("every node reaches the target height");
    testnet.assert_same_blocks(&[0, 1, 2], 1..=target);

    // It votes again: with another validator down, the chain (q = 2) still finalizes.
    let stopped = others[0];
    testnet.nodes[stopped].kill();
    let running = [b, others[1]];
    let height = testnet.highest(&running).expect("the two answer");
    testnet
        .wait_for_height(&running, height + 3)
        .expect("exchange-b and one other validator finalize together");
    testnet.launch(stopped).expect("relaunch");
    testnet
        .wait_in_sync(&[stopped])
        .expect("the stopped validator catches up");
    let top = testnet.highest(&[0, 1, 2]).unwrap();
    testnet.wait_for_height(&[0, 1, 2], top).unwrap();
    testnet.assert_same_blocks(&[0, 1, 2], 1..=top);
    let evidence = consensus_evidence(&testnet, &[0, 1, 2]);
    assert!(evidence.is_empty(), "double signatures: {evidence:?}");
}

#[test]
fn a_backup_with_its_key_restores_the_key_file_private() {
    let testnet = Testnet::start(0).expect("testnet");
    let node = &testnet.nodes[0];
    let dir = testnet.dir.path().to_path_buf();
    let key = testnet.key_path(&node.name);
    let archive = dir.join("with-key.seisan-backup");
    let taken = seisan(
        &["backup", "--include-keys", "--node", &node.url()],
        &[("--out", &archive), ("--key", &key)],
    );
    assert!(taken.status.success(), "backup failed: {}", stderr(&taken));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&archive).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the archive holds every member's books");
    let data = dir.join("restored-with-key");
    let restored = seisan(
        &["restore"],
        &[
            ("--from", &archive),
            ("--data", &data),
            ("--genesis", &testnet.genesis_path()),
        ],
    );
    assert!(
        restored.status.success(),
        "restore failed: {}",
        stderr(&restored)
    );
    let restored_key = data.join("node.key");
    assert_eq!(
        std::fs::read(&restored_key).unwrap(),
        std::fs::read(&key).unwrap()
    );
    let mode = std::fs::metadata(&restored_key)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "the restored key is private");
    // Without the flag no key travels.
    let again = dir.join("without-key.seisan-backup");
    let taken = seisan(
        &["backup", "--node", &node.url()],
        &[("--out", &again), ("--key", &key)],
    );
    assert!(taken.status.success(), "{}", stderr(&taken));
    let bytes = std::fs::read(&again).unwrap();
    let key_bytes = std::fs::read(&key).unwrap();
    assert!(
        !bytes
            .windows(key_bytes.len())
            .any(|window| window == key_bytes),
        "the key file's bytes are not in an archive taken without --include-keys"
    );
}

/// The restore that would fork the chain if the fence trusted one peer: exchange-b's
/// backup is taken, the third validator is stopped, exchange-b and the clearing house
/// finalize blocks the third never sees, then both stop. exchange-b is restored from
/// the stale backup and started beside the third alone: together they are a quorum,
/// and signing from the stale record they could finalize other blocks at those
/// heights. It stays fenced (it has heard only one of the two others), the third
/// finalizes nothing; once the clearing house is back the fence lifts and all three
/// hold the same blocks, with no evidence anywhere.
#[test]
fn a_stale_restore_beside_a_validator_that_missed_its_votes_waits_and_never_forks() {
    let mut testnet = Testnet::start(0).expect("testnet");
    let index = |name: &str| {
        testnet
            .nodes
            .iter()
            .position(|node| node.name == name)
            .expect("validator runs")
    };
    let (house, b) = (index("clearing-house"), index("exchange-b"));
    let third = 3 - house - b;
    testnet.wait_for_height(&[b], 2).expect("the chain runs");
    let dir = testnet.dir.path().to_path_buf();
    let archive = dir.join("exchange-b.seisan-backup");
    let taken = seisan(
        &["backup", "--node", &testnet.nodes[b].url()],
        &[
            ("--out", &archive),
            ("--key", &testnet.key_path("exchange-b")),
        ],
    );
    assert!(taken.status.success(), "backup failed: {}", stderr(&taken));
    testnet.nodes[third].kill();
    let left_behind = testnet.highest(&[house, b]).expect("the two answer");
    testnet
        .wait_for_height(&[house, b], left_behind + 4)
        .expect("the two finalize without the third");
    testnet.nodes[house].kill();
    testnet.nodes[b].kill();
    let third_height = {
        testnet.launch(third).expect("relaunch the third");
        wait_until(
            PATIENCE,
            || Ok(node_height(&testnet.nodes[third]).is_some()),
        )
        .expect("the third answers");
        node_height(&testnet.nodes[third]).unwrap()
    };
    testnet.wipe(b).expect("wipe");
    let restored = seisan(
        &["restore"],
        &[
            ("--from", &archive),
            ("--data", &testnet.nodes[b].data),
            ("--genesis", &testnet.genesis_path()),
        ],
    );
    assert!(
        restored.status.success(),
        "restore failed: {}",
        stderr(&restored)
    );
    testnet.launch(b).expect("relaunch exchange-b");
    wait_until(PATIENCE, || Ok(node_height(&testnet.nodes[b]).is_some())).expect("it answers");
    // Ten view timeouts: with the third it is a quorum, but it must not sign.
    std::thread::sleep(std::time::Duration::from_secs(20));
    let log = std::fs::read_to_string(&testnet.nodes[b].log).unwrap();
    assert!(log.contains("restored from a backup: fenced"));
    assert!(
        !log.contains("fence lifted"),
        "lifted having heard one of two others"
    );
    let fenced = status(&testnet.nodes[b].url()).expect("exchange-b answers");
    assert!(fenced.fenced, "{fenced:?}");
    assert_eq!(
        node_height(&testnet.nodes[third]),
        Some(third_height),
        "the third finalized something with a fenced exchange-b"
    );
    testnet.launch(house).expect("relaunch the clearing house");
    wait_until(PATIENCE, || {
        let log = std::fs::read_to_string(&testnet.nodes[b].log).unwrap_or_default();
        Ok(log.contains("fence lifted"))
    })
    .expect("the fence lifts once both others are heard");
    let top = testnet.highest(&[0, 1, 2]).unwrap() + 2;
    testnet
        .wait_for_height(&[0, 1, 2], top)
        .expect("all three finalize together again");
    testnet.assert_same_blocks(&[0, 1, 2], 1..=top);
    let evidence = consensus_evidence(&testnet, &[0, 1, 2]);
    assert!(evidence.is_empty(), "double signatures: {evidence:?}");
}
