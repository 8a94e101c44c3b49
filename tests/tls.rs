//! The testnet with TLS on: `seisan genesis testnet --tls` writes a testnet CA and a
//! certificate per node and for the bank; the bank and the three validators serve
//! HTTPS only; the chain finalizes; an exchange's fiat deposit goes through the bank
//! over https (the CLI with `--ca`) and the nodes' bank watchers, which reach the bank
//! over https with `--bank-ca`, attest the credit. A client without the CA is refused
//! naming the certificate problem, plain HTTP to an HTTPS port is answered with a 400
//! saying so, and a node given a key that is not its certificate's does not start.

use anyhow::Context;
use seisan_tests::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn height(url: &str) -> Option<u64> {
    status(url).ok().map(|status| status.height)
}

/// A ureq agent with the platform's default trust (the webpki roots), as a client
/// that was not given the testnet's CA.
fn untrusting_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(REQUEST_TIMEOUT))
        .build()
        .into()
}

struct Bank(std::process::Child);

impl Drop for Bank {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_tls_bank(dir: &Path, genesis: &Path, tls: &Path, port: u16) -> Bank {
    let bank_dir = dir.join("bank");
    let status = Command::new(seisan_binary())
        .args(["bank", "init", "--out"])
        .arg(&bank_dir)
        .arg("--genesis")
        .arg(genesis)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "seisan bank init failed");
    let log = std::fs::File::create(dir.join("bank.log")).unwrap();
    let child = Command::new(seisan_binary())
        .args(["bank", "run", "--config"])
        .arg(bank_dir.join("bank.toml"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--tls-cert")
        .arg(tls.join("bank.pem"))
        .arg("--tls-key")
        .arg(tls.join("bank.key"))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    Bank(child)
}

/// Runs the CLI as `member` against `node`; returns (exit code, stdout, stderr).
fn cli(testnet: &Testnet, node: &str, member: &str, args: &[&str]) -> (i32, String, String) {
    cli_with(testnet, node, member, args, &[])
}

/// [`cli`] with more environment variables (set after the defaults are cleared).
fn cli_with(
    testnet: &Testnet,
    node: &str,
    member: &str,
    args: &[&str],
    env: &[(&str, &Path)],
) -> (i32, String, String) {
    let mut command = Command::new(seisan_binary());
    command
        .args(args)
        .env("SEISAN_NODE", node)
        .env("SEISAN_GENESIS", testnet.genesis_path())
        .env("SEISAN_KEY", testnet.key_path(member))
        .env_remove("SEISAN_CONFIG")
        .env_remove("SEISAN_CA")
        .env_remove("SEISAN_BANK_URL")
        .env_remove("SEISAN_BANK_TOKEN")
        .env("HOME", testnet.dir.path())
        .stdin(Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_tls_testnet_finalizes_and_its_bank_leg_works_over_https() {
    let mut testnet = Testnet::start(0).unwrap();
    let dir = testnet.dir.path().to_path_buf();

    // The testnet's certificates, as `scripts/testnet.sh` gets them.
    let generated = Command::new(seisan_binary())
        .args(["genesis", "testnet", "--tls", "--out"])
        .arg(dir.join("certs"))
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(generated.success(), "seisan genesis testnet --tls failed");
    let tls: PathBuf = dir.join("certs/tls");
    let ca = tls.join("ca.pem");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(tls.join("exchange-a.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "a TLS key file is private");
        assert!(
            !tls.join("ca.key").exists(),
            "the CA's key is not kept: no one can mint another trusted certificate"
        );
    }
    trust_ca(&ca).unwrap();

    // The bank over HTTPS, reached by name (the certificate covers localhost too).
    let bank_port = free_port();
    let _bank = start_tls_bank(&dir, &testnet.genesis_path(), &tls, bank_port);
    let bank_url = format!("https://localhost:{bank_port}");
    wait_until(PATIENCE, || {
        Ok(get(&format!("{bank_url}/v1/health")).is_ok_and(|(code, _)| code == 200))
    })
    .with_context(|| std::fs::read_to_string(dir.join("bank.log")).unwrap_or_default())
    .unwrap();

    // Every validator restarted with HTTPS on and the bank over https.
    for index in 0..testnet.nodes.len() {
        let name = testnet.nodes[index].name.clone();
        let mut flags = testnet.bank_flags(&bank_url, &name, false);
        for (flag, path) in [
            ("--tls-cert", tls.join(format!("{name}.pem"))),
            ("--tls-key", tls.join(format!("{name}.key"))),
            ("--bank-ca", ca.clone()),
        ] {
            flags.push(flag.to_string());
            flags.push(path.display().to_string());
        }
        testnet.nodes[index].extra_args = flags;
        testnet.launch(index).unwrap();
    }
    let urls: Vec<String> = testnet
        .nodes
        .iter()
        .map(|node| format!("https://127.0.0.1:{}", node.http_port))
        .collect();
    for (index, url) in urls.iter().enumerate() {
        wait_until(PATIENCE, || Ok(height(url).is_some()))
            .with_context(|| testnet.log_tail(index))
            .unwrap();
    }
    // The chain finalizes with TLS on.
    let start = height(&urls[0]).unwrap();
    wait_until(PATIENCE, || {
        Ok(urls
            .iter()
            .all(|url| height(url).is_some_and(|h| h >= start + 3)))
    })
    .with_context(|| testnet.log_tail(0))
    .unwrap();

    // Exchange A pays 200 yen into its trust account at the bank with the CLI, over
    // https with --ca, and waits until the ledger credits it: the nodes' bank watchers
    // read the bank over https and attested it.
    let a = &urls[1];
    let ca_arg = ca.display().to_string();
    let (code, stdout, stderr) = cli(
        &testnet,
        a,
        "exchange-a",
        &["fiat-deposit", "200", "--bank", &bank_url, "--ca", &ca_arg],
    );
    assert_eq!(code, 0, "fiat-deposit failed: {stdout}{stderr}");
    assert_eq!(ledger_jpy(a, "exchange-a"), 200);
    let (code, stdout, stderr) = cli(&testnet, a, "exchange-a", &["status", "--ca", &ca_arg]);
    assert_eq!(code, 0, "status with --ca failed: {stdout}{stderr}");
    // The CA from the environment, and from the client config file (relative to it).
    let (code, stdout, stderr) = cli_with(
        &testnet,
        a,
        "exchange-a",
        &["status"],
        &[("SEISAN_CA", &ca)],
    );
    assert_eq!(code, 0, "status with SEISAN_CA failed: {stdout}{stderr}");
    let client_config = dir.join("certs/client.toml");
    std::fs::write(&client_config, "ca = \"tls/ca.pem\"\n").unwrap();
    let (code, stdout, stderr) = cli_with(
        &testnet,
        a,
        "exchange-a",
        &["status"],
        &[("SEISAN_CONFIG", &client_config)],
    );
    assert_eq!(
        code, 0,
        "status with ca in client.toml failed: {stdout}{stderr}"
    );

    // Without the CA the CLI is refused, naming the certificate problem and the fix.
    let (code, _, stderr) = cli(&testnet, a, "exchange-a", &["status"]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("UnknownIssuer") && stderr.contains("--ca"),
        "{stderr}"
    );
    // So is any other client that does not trust the testnet's CA, node or bank.
    for url in [format!("{a}/v1/status"), format!("{bank_url}/v1/health")] {
        let error = untrusting_agent().get(&url).call().unwrap_err().to_string();
        assert!(error.contains("UnknownIssuer"), "{url}: {error}");
    }

    // Plain HTTP to an HTTPS port is answered with a 400 that says so.
    let plain = format!("http://127.0.0.1:{}/v1/status", testnet.nodes[1].http_port);
    let mut response = untrusting_agent().get(&plain).call().unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let text = response.body_mut().read_to_string().unwrap();
    assert!(text.contains("HTTPS only"), "{text}");
    let (code, _, stderr) = cli(
        &testnet,
        &format!("http://127.0.0.1:{}", testnet.nodes[1].http_port),
        "exchange-a",
        &["status"],
    );
    assert_ne!(code, 0, "the CLI over plain HTTP to an HTTPS port fails");
    assert!(stderr.contains("400"), "{stderr}");
}

#[test]
fn a_node_and_a_bank_with_a_bad_certificate_or_key_do_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let certs = seisan_tls::write_testnet_certs(dir.path(), &["exchange-a", "exchange-b"]).unwrap();
    let (cert, _) = certs.server("exchange-a");
    let (_, other_key) = certs.server("exchange-b");
    let generated = Command::new(seisan_binary())
        .args(["genesis", "testnet", "--out"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(generated.success());
    let node = |cert: &Path, key: &Path| {
        Command::new(seisan_binary())
            .arg("node")
            .arg("--genesis")
            .arg(dir.path().join("genesis.json"))
            .arg("--key")
            .arg(dir.path().join("keys/exchange-a.key"))
            .arg("--data")
            .arg(dir.path().join("data"))
            .args(["--http", &format!("127.0.0.1:{}", free_port())])
            .arg("--tls-cert")
            .arg(cert)
            .arg("--tls-key")
            .arg(key)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let mismatched = node(&cert, &other_key);
    let stderr = String::from_utf8_lossy(&mismatched.stderr);
    assert!(!mismatched.status.success());
    assert!(
        stderr.contains("exchange-a.pem")
            && stderr.contains("exchange-b.key")
            && stderr.contains("do not go together"),
        "{stderr}"
    );
    let missing = node(&dir.path().join("absent.pem"), &other_key);
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success());
    assert!(stderr.contains("absent.pem"), "{stderr}");

    let bank = Command::new(seisan_binary())
        .args(["bank", "run", "--data"])
        .arg(dir.path().join("bank-data"))
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&other_key)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&bank.stderr);
    assert!(!bank.status.success());
    assert!(
        stderr.contains("exchange-a.pem") && stderr.contains("do not go together"),
        "{stderr}"
    );
}
