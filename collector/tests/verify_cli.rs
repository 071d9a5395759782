//! The auditor's commands, run as the `audit-collector` binary against a collector started
//! through `run()`: `verify`'s exit codes (0 every event signed, 3 an uncovered tail or no
//! checkpoint at all, 1 not intact, 2 unreadable), a checkpoint signed on demand with an
//! `admin` token, `tail` and `--witness-file` keeping checkpoints as a witness, a
//! truncation only the witness catches, and a key rotation `verify` follows (after which the
//! old key neither signs nor starts a collector).

// The helpers below are test support, not test functions, so the allow-in-tests setting
// does not reach them; a failed `expect` there is a failed test with its message.
#![allow(clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{events, Collector, READ_TOKEN};
use rusqlite::Connection;

fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_audit-collector"));
    command.env_remove("AUDIT_TOKEN").env("RUST_LOG", "warn");
    command
}

/// Runs the binary off the async runtime; (exit code, stdout, stderr).
async fn run(mut command: Command) -> (i32, String, String) {
    let output: Output =
        tokio::task::spawn_blocking(move || command.output()).await.expect("join").expect("the binary runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn verify(target: &[&str], key: &str, extra: &[&str]) -> Command {
    let mut command = binary();
    command.arg("verify").args(target).args(["--public-key", key]).args(extra).env("AUDIT_TOKEN", READ_TOKEN);
    command
}

/// An `admin` token made with `token create` on the database, before the collector starts.
fn admin_token(database: &Path) -> String {
    let output = binary()
        .args(["token", "create", "--scope", "admin", "--name", "auditor", "--database"])
        .arg(database)
        .output()
        .expect("token create runs");
    assert!(output.status.success(), "token create: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_says_what_is_signed_and_a_witness_catches_what_the_chain_cannot() {
    let mut admin = String::new();
    let mut witness_file = PathBuf::new();
    let collector = Collector::start_with(|config| {
        config.checkpoint_interval = Duration::from_secs(3600);
        admin = admin_token(&config.database);
        witness_file = config.database.with_file_name("witness.ndjson");
        config.witness_file = Some(witness_file.clone());
    })
    .await;
    let url = format!("http://{}/audit", collector.address);
    let api = ["--url", url.as_str()];
    assert_eq!(collector.ingest(&events(0..10)).await.status, 200);
    let key = collector.send("GET", "/audit/public-key", &[], None).await.json()["publicKeyHex"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let stranger = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"; // RFC 8032's test key

    // No checkpoint yet: never a pass, whatever key is given.
    for any_key in [key.as_str(), stranger] {
        let (code, out, _) = run(verify(&api, any_key, &[])).await;
        assert_eq!(code, 3, "no checkpoint, key {any_key}: {out}");
        assert!(out.starts_with("TRAIL NOT PROVEN") && out.contains("uncovered: 10 events (seq 1 to 10)"), "{out}");
    }
    let (code, out, _) = run(verify(&api, &key, &["--require-full-coverage"])).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FULL COVERAGE REQUIRED"), "{out}");

    // A checkpoint on demand needs the admin scope; then every event is signed.
    let mut refused = binary();
    refused.args(["checkpoint", "--url", &url, "--token", READ_TOKEN]);
    let (code, _, err) = run(refused).await;
    assert_ne!(code, 0);
    assert!(err.contains("403") && err.contains("admin"), "{err}");
    let mut signed = binary();
    signed.args(["checkpoint", "--url", &url]).env("AUDIT_ADMIN_TOKEN", &admin);
    let (code, out, err) = run(signed).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with(r#"{"record":"audit-sidecar/checkpoint","checkpoint":{"number":1,"lastSeq":10"#), "{out}");
    let (code, out, _) = run(verify(&api, &key, &["--require-full-coverage"])).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("TRAIL INTACT AND SIGNED") && out.contains("covered:   10 events (seq 1 to 10)"), "{out}");
    let (code, out, _) = run(verify(&api, stranger, &[])).await;
    assert_eq!(code, 1, "another key: {out}");
    assert!(out.contains("SIGNATURE INVALID"), "{out}");

    // Newer events are reported as uncovered, never as intact.
    assert_eq!(collector.ingest(&events(10..15)).await.status, 200);
    let (code, out, _) = run(verify(&api, &key, &[])).await;
    assert_eq!(code, 3, "{out}");
    assert!(out.starts_with("TRAIL NOT FULLY SIGNED") && out.contains("uncovered: 5 events (seq 11 to 15)"), "{out}");
    // 64 hex digits that are not an Ed25519 key are told apart from text that is no key.
    let (code, _, err) = run(verify(&api, &"02".repeat(32), &[])).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("has the right form (64 hex digits) but is not a valid Ed25519 public key"), "{err}");

    // The tail prints the checkpoint among the events, in every format.
    let dir = tempfile::tempdir().expect("temp dir");
    let mut tails = Vec::new();
    for format in ["native", "ocsf", "ecs"] {
        let mut tail = binary();
        tail.args(["tail", "--url", &format!("http://{}", collector.address), "--exit-at-end", "--format", format])
            .env("AUDIT_TAIL_TOKEN", READ_TOKEN);
        let (code, out, err) = run(tail).await;
        assert_eq!(code, 0, "tail --format {format}: {err}");
        assert_eq!(out.lines().count(), 16, "15 events and 1 checkpoint: {out}");
        let path = dir.path().join(format!("siem-{format}.ndjson"));
        std::fs::write(&path, out).expect("write");
        tails.push(path);
    }

    // A witness over the API, with the tail uncovered: it is checked and said so.
    // (the SIEM's native copy, which holds checkpoint 1; the witness file is written every 2 s)
    let witness = tails[0].to_str().unwrap_or_default();
    let (code, out, _) = run(verify(&api, &key, &["--witness", witness])).await;
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("witness: all 1 witnessed checkpoints are in the trail unchanged")
            && !out.contains("no witness given"),
        "{out}"
    );
    let empty = witness_file.with_file_name("empty-witness.ndjson");
    std::fs::write(&empty, "not a checkpoint\n").expect("write");
    let (code, out, _) = run(verify(&api, &key, &["--witness", empty.to_str().unwrap_or_default()])).await;
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("witness: the witness holds no checkpoint") && !out.contains("no witness given"), "{out}");

    let (stopped, collector_dir) = collector.stop_keeping_files().await;
    stopped.expect("clean stop");
    let database = collector_dir.path().join("data/audit.db");
    let witnessed = std::fs::read_to_string(&witness_file).expect("the witness file");
    assert_eq!(witnessed.lines().count(), 2, "the on-demand and the shutdown checkpoint: {witnessed}");
    let db = ["--database", database.to_str().unwrap_or_default()];
    let mut with_witnesses: Vec<String> = Vec::new();
    for path in tails.iter().chain([&witness_file]) {
        with_witnesses.extend(["--witness".to_owned(), path.display().to_string()]);
    }
    let with_witnesses: Vec<&str> = with_witnesses.iter().map(String::as_str).collect();
    let (code, out, _) = run(verify(&db, &key, &with_witnesses)).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("witness: all 2 witnessed checkpoints are in the trail unchanged"), "{out}");

    // Cut back to checkpoint 1 (checkpoint 2 and the events it alone signed deleted): the
    // chain and checkpoint 1 still agree; only a witness of checkpoint 2 can tell.
    let cut = cut_copy(&database, &collector_dir.path().join("cut.db"), 2, 10);
    let cut_db = ["--database", cut.to_str().unwrap_or_default()];
    let (code, out, _) = run(verify(&cut_db, &key, &[])).await;
    assert_eq!(code, 0, "without a witness the cut trail looks whole: {out}");
    let (code, out, _) = run(verify(&cut_db, &key, &["--witness", witness_file.to_str().unwrap_or_default()])).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("history TRUNCATED") && out.contains("checkpoint 2 signed for seq 15"), "{out}");
    // Cut back to before checkpoint 1: never a pass without a witness; the SIEM's copy of
    // checkpoint 1, in any format, shows the cut.
    let cut = cut_copy(&database, &collector_dir.path().join("cut-all.db"), 1, 5);
    let cut_db = ["--database", cut.to_str().unwrap_or_default()];
    let (code, out, _) = run(verify(&cut_db, &key, &[])).await;
    assert_eq!(code, 3, "{out}");
    for siem in &tails {
        let (code, out, _) = run(verify(&cut_db, &key, &["--witness", siem.to_str().unwrap_or_default()])).await;
        assert_eq!(code, 1, "{}: {out}", siem.display());
        assert!(out.contains("checkpoint 1 signed for seq 10"), "{out}");
    }
    let (code, _, err) = run(verify(&["--database", "/nonexistent/audit.db"], &key, &[])).await;
    assert_eq!(code, 2, "{err}");

    // Key rotation: the old key signs a handover; the one old key still verifies it all,
    // and the old key can no longer sign.
    let new_key = collector_dir.path().join("next.signing-key.pem");
    let mut rotate = binary();
    rotate.args(["rotate-key", "--database"]).arg(&database).arg("--new-signing-key").arg(&new_key);
    let (code, out, err) = run(rotate).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("checkpoint 3 (seq 15), signed by key"), "{out}");
    let mut again = binary();
    again
        .args(["rotate-key", "--database"])
        .arg(&database)
        .arg("--new-signing-key")
        .arg(collector_dir.path().join("third.pem"));
    let (code, _, err) = run(again).await;
    assert_ne!(code, 0, "the old key signed again after its handover");
    assert!(err.contains("must now be signed by key"), "{err}");
    // Nor does a collector start with it: it would sign checkpoints `verify` rejects.
    let mut serve = Command::new("timeout");
    serve
        .arg("30")
        .arg(env!("CARGO_BIN_EXE_audit-collector"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database"])
        .arg(&database)
        .env("AUDIT_TOKEN", READ_TOKEN)
        .env("AUDIT_INGEST_TOKEN", "ingest-token-for-this-test")
        .env("RUST_LOG", "warn");
    let (code, _, err) = run(serve).await;
    assert!(
        code != 0 && code != 124,
        "a collector started with the key the trail handed over from (exit {code}): {err}"
    );
    assert!(err.contains("must now be signed by key"), "{err}");
    let (code, out, _) = run(verify(&db, &key, &[])).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("newest checkpoint: 3 at seq 15"), "{out}");
}

/// A copy of `database` with checkpoints from `first_deleted` on and events after
/// `keep_up_to` deleted, as someone with the file would (triggers dropped first).
fn cut_copy(database: &Path, copy: &Path, first_deleted: i64, keep_up_to: i64) -> PathBuf {
    let conn = Connection::open(database).expect("open");
    conn.execute_batch(&format!("VACUUM INTO '{}'", copy.display())).expect("copy");
    let conn = Connection::open(copy).expect("open the copy");
    conn.execute_batch(
        "DROP TRIGGER checkpoints_are_never_deleted; DROP TRIGGER events_are_deleted_only_by_retention;",
    )
    .expect("drop triggers");
    conn.execute("DELETE FROM checkpoints WHERE number >= ?1", [first_deleted]).expect("cut checkpoints");
    conn.execute("DELETE FROM events WHERE seq > ?1", [keep_up_to]).expect("cut events");
    copy.to_path_buf()
}
