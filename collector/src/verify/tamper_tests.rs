//! The randomized tamper test: an honest trail (hundreds of events, a retention purge,
//! several checkpoints, two key rotations, and an uncovered tail of events after the newest
//! checkpoint) is copied in memory thousands of times; each copy gets ONE random
//! tampering, done as an attacker with the file would (triggers dropped first). Every copy
//! is verified twice, without and with a witness (the honest checkpoints, as `tail` kept
//! them), and each outcome must be exactly what the tampering allows: CAUGHT, or reported
//! with exactly N uncovered events (never as fully signed), or, only for what a key holder
//! can do unseen without a witness, a pass. Untouched copies must pass with the honest
//! coverage. Seeded, so a failure names the seed that reproduces it (`TAMPER_SEED=<n>`
//! runs that one seed).

use std::collections::BTreeMap;

use audit_event::chain::Checkpoint;
use rusqlite::{params, Connection, TransactionBehavior};
use serde_json::{json, Value};

use super::report::Coverage;
use super::witness::{check_witness, Witnessed};
use super::{verify_database, TrailReport, VerifyError};
use crate::batch::parse_batch;
use crate::chain::checkpoint::{checkpoint_hash, signed_message};
use crate::chain::link::to_hex;
use crate::chain::signing::{TrailSigner, TrailVerifier};
use crate::store::sqlite::chain_store::{issue_checkpoint, issue_handover, read_checkpoints};
use crate::store::sqlite::schema::open_for_writing;
use crate::store::sqlite::write_sql::insert_batch;
use crate::store::sqlite::write_sql::purge_batch;

/// A small deterministic generator (SplitMix64): no dependency, same numbers everywhere.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }

    fn between(&mut self, low: i64, high: i64) -> i64 {
        low + i64::try_from(self.below(u64::try_from(high - low + 1).unwrap_or(1))).unwrap_or(0)
    }
}

const OLD_MS: i64 = 946_684_800_000; // 2000-01-01: purged
const RECENT_MS: i64 = 1_893_456_000_000; // 2030-01-01: kept

fn event_json(n: u64, timestamp_ms: i64, random: &mut Random) -> Value {
    let mut uuid = [0x11u8; 16];
    uuid[..8].copy_from_slice(&n.to_be_bytes());
    let methods = ["GET", "PUT", "POST", "DELETE", "PATCH"];
    let method = methods[usize::try_from(random.below(5)).unwrap_or(0)];
    let status = [200, 201, 401, 403, 404, 500][usize::try_from(random.below(6)).unwrap_or(0)];
    json!({
        "uuid": audit_event::event_uuid::encode_event_uuid(uuid),
        "timestamp": audit_event::timestamp::format_rfc3339_millis((timestamp_ms + i64::try_from(n).unwrap_or(0)) * 1_000_000),
        "type": format!("PactBroker::Api::Resources::Thing{}", random.below(7)),
        "db_user_id": if random.below(2) == 0 { Value::Null } else { json!(random.below(1000)) },
        "user_email": if random.below(3) == 0 { Value::Null } else { json!(format!("user{}@example.com", random.below(50))) },
        "payload": {
            "path": format!("/pacticipants/Föö-{}", random.below(100)),
            "queryString": "a=1&b=\"2\"",
            "method": method,
            "userAgent": "tamper-test\u{1}",
            "referer": null,
            "params": {"resource_name": "pacticipant", "pacticipant_name": format!("Föö-{n}")}
        },
        "response": {"status": status, "durationMs": f64::from(u32::try_from(random.below(100_000)).unwrap_or(0)) / 997.0, "outcome": "success"}
    })
}

/// The seeds of the three keys that sign in turn: 1 to 3 by the first, then handed over.
const KEY_SEEDS: [[u8; 32]; 3] = [[42; 32], [43; 32], [44; 32]];
/// Events after the newest checkpoint in the honest trail.
const TAIL: u64 = 25;

/// The honest trail: its database image, the oldest key (the one an auditor holds), and
/// its checkpoints as a witness kept them.
struct Honest {
    image: Vec<u8>,
    key: TrailVerifier,
    witness: Vec<Witnessed>,
}

fn honest_trail() -> Honest {
    let signers: Vec<TrailSigner> = KEY_SEEDS.iter().map(|seed| TrailSigner::from_seed(*seed)).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.db");
    let mut conn = open_for_writing(&path).expect("open");
    let mut random = Random(7);
    let mut n = 0;
    let mut signer = 0;
    for round in 0..9 {
        let timestamp = if round < 3 { OLD_MS } else { RECENT_MS };
        let count = if round == 8 { TAIL } else { 40 };
        let batch: Vec<Value> = (0..count).map(|i| event_json(n + i, timestamp, &mut random)).collect();
        n += count;
        let rows =
            parse_batch(&serde_json::to_vec(&json!({ "events": batch })).expect("JSON")).expect("valid batch").rows;
        let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).expect("begin");
        insert_batch(&mut tx, &rows, RECENT_MS).expect("insert");
        let now = RECENT_MS + i64::from(round);
        match round {
            // Retention: the first 100 of the 120 old events (a batch limit), anchored and signed.
            4 => {
                assert_eq!(purge_batch(&tx, RECENT_MS - 1, 100).expect("purge"), 100);
                issue_checkpoint(&tx, &signers[signer], now).expect("sign").expect("a checkpoint");
            }
            // Key rotation, twice: checkpoints 3 and 6 hand over to the next key.
            2 | 5 => {
                issue_handover(&tx, &signers[signer], &signers[signer + 1].verifier(), now).expect("hand over");
                signer += 1;
                let stale = issue_checkpoint(&tx, &signers[signer - 1], now + 1);
                assert!(stale.is_err(), "after a handover the old key can no longer sign: {stale:?}");
            }
            // The tail: stored after the newest checkpoint, signed by nothing yet.
            8 => {}
            _ => {
                issue_checkpoint(&tx, &signers[signer], now).expect("sign").expect("a checkpoint");
            }
        }
        tx.commit().expect("commit");
    }
    let witness = read_checkpoints(&conn, 0, usize::MAX)
        .expect("checkpoints")
        .into_iter()
        .map(|checkpoint| Witnessed { place: format!("witness:{}", checkpoint.number), checkpoint })
        .collect();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").expect("checkpoint the WAL");
    drop(conn);
    let mut image = std::fs::read(&path).expect("read the file");
    // Bytes 18 and 19 say WAL; an in-memory copy cannot use WAL, so mark it a rollback journal.
    image[18] = 1;
    image[19] = 1;
    Honest { image, key: signers[0].verifier(), witness }
}

fn copy_of(image: &[u8]) -> Connection {
    let mut conn = Connection::open_in_memory().expect("memory");
    conn.deserialize_read_exact("main", image, image.len(), false).expect("deserialize");
    // What an attacker with the file does first.
    let triggers: Vec<String> = {
        let mut select = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'trigger'").expect("prepare");
        let names = select.query_map([], |row| row.get(0)).expect("query");
        names.collect::<Result<_, _>>().expect("names")
    };
    for name in triggers {
        conn.execute_batch(&format!("DROP TRIGGER {name}")).expect("drop trigger");
    }
    conn
}

fn seqs(conn: &Connection) -> Vec<i64> {
    let mut select = conn.prepare("SELECT seq FROM events ORDER BY seq").expect("prepare");
    let rows = select.query_map([], |row| row.get(0)).expect("query");
    rows.collect::<Result<_, _>>().expect("seqs")
}

fn pick<T: Copy>(random: &mut Random, items: &[T]) -> T {
    items[usize::try_from(random.below(u64::try_from(items.len()).unwrap_or(1))).unwrap_or(0)]
}

fn flip_byte(blob: &mut [u8], random: &mut Random) {
    let index = usize::try_from(random.below(u64::try_from(blob.len()).unwrap_or(1))).unwrap_or(0);
    blob[index] ^= 1 << random.below(8);
}

const KINDS: [&str; 13] = [
    "change a field in a body",
    "change a column",
    "delete a row",
    "swap two rows' contents",
    "alter or forge a checkpoint",
    "truncate history before the last checkpoint",
    "delete or move the anchor",
    "rewrite the chain after a change",
    "remove a checkpoint that is not the newest",
    "cut the newest checkpoint and the events after it",
    "rewrite or shorten the uncovered tail",
    "fork the history after a witnessed checkpoint, re-signed with the keys",
    "rewrite across a rotation, re-signed with only the newest key",
];

/// What verification must say about a copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// TRAIL NOT INTACT.
    Caught,
    /// Verified, with exactly this many uncovered events (so never "fully signed").
    Uncovered(u64),
}

/// The outcome without a witness, and with the honest witness.
#[derive(Debug, Clone, Copy)]
struct Expect {
    without_witness: Outcome,
    with_witness: Outcome,
}

const CAUGHT: Expect = Expect { without_witness: Outcome::Caught, with_witness: Outcome::Caught };

fn newest_checkpoint(conn: &Connection) -> Checkpoint {
    read_checkpoints(conn, 0, usize::MAX).expect("checkpoints").pop().expect("a checkpoint")
}

/// Recomputes every link from `seq` to the end, as an attacker who knows the algorithm
/// does (it is in the docs).
fn relink_from(conn: &Connection, seq: i64) {
    let mut prev: Vec<u8> =
        conn.query_row("SELECT chain_prev FROM events WHERE seq = ?1", [seq], |r| r.get(0)).expect("prev");
    for later in seqs(conn).into_iter().filter(|later| *later >= seq) {
        let body: String =
            conn.query_row("SELECT body FROM events WHERE seq = ?1", [later], |r| r.get(0)).expect("body");
        let prev_digest: [u8; 32] = prev.clone().try_into().expect("32 bytes");
        let hash = crate::chain::link::body_hash(&prev_digest, later, &body).expect("hash");
        conn.execute(
            "UPDATE events SET chain_prev = ?1, chain_hash = ?2 WHERE seq = ?3",
            params![prev, hash.as_slice(), later],
        )
        .expect("relink");
        prev = hash.to_vec();
    }
}

fn change_body(conn: &Connection, seq: i64) {
    let body: String = conn.query_row("SELECT body FROM events WHERE seq = ?1", [seq], |r| r.get(0)).expect("body");
    let changed = body.replacen("/pacticipants/", "/pacticipants/evil-", 1);
    conn.execute("UPDATE events SET body = ?1 WHERE seq = ?2", params![changed, seq]).expect("update");
}

/// Replaces checkpoints `from` and later by new ones over the (changed) events, each with
/// the same seqs and handovers, signed by `signer_of(original)`.
fn resign_from(conn: &Connection, from: i64, signer_of: impl Fn(&Checkpoint) -> TrailSigner) {
    let all = read_checkpoints(conn, 0, usize::MAX).expect("checkpoints");
    conn.execute("DELETE FROM checkpoints WHERE number >= ?1", [from]).expect("delete");
    let mut previous = all.iter().find(|checkpoint| checkpoint.number == from - 1).cloned();
    for original in all.iter().filter(|checkpoint| checkpoint.number >= from) {
        // A checkpoint of purged events keeps its hash: they are gone, and so unchanged.
        let hash: Vec<u8> = conn
            .query_row("SELECT chain_hash FROM events WHERE seq = ?1", [original.last_seq], |r| r.get(0))
            .unwrap_or_else(|_| crate::chain::link::from_hex(&original.last_hash).expect("hex"));
        let signer = signer_of(original);
        let mut forged = Checkpoint {
            last_hash: to_hex(&hash),
            prev_checkpoint_hash: to_hex(&previous.as_ref().map_or([0; 32], checkpoint_hash)),
            key_id: signer.key_id().to_owned(),
            signature: String::new(),
            ..original.clone()
        };
        let signature = signer.sign(&signed_message(&forged));
        forged.signature = to_hex(&signature);
        let blob = |hex: &str| crate::chain::link::from_hex(hex).expect("hex");
        conn.execute(
            "INSERT INTO checkpoints (number, last_seq, last_hash, anchor_seq, anchor_hash, issued_at_ms,
                                      prev_checkpoint_hash, key_id, signature, next_public_key)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                forged.number,
                forged.last_seq,
                hash,
                forged.anchor_seq,
                blob(&forged.anchor_hash),
                forged.issued_at_ms,
                blob(&forged.prev_checkpoint_hash),
                forged.key_id,
                signature.to_vec(),
                forged.next_public_key.as_deref().map(blob),
            ],
        )
        .expect("insert the forged checkpoint");
        previous = Some(forged);
    }
}

/// The key that honestly signed `checkpoint` (the attacker of a fork holds them all).
fn honest_signer(checkpoint: &Checkpoint) -> TrailSigner {
    KEY_SEEDS
        .iter()
        .map(|seed| TrailSigner::from_seed(*seed))
        .find(|signer| signer.key_id() == checkpoint.key_id)
        .expect("one of the honest keys")
}

/// Applies tampering `kind`; returns what it did, for the failure message, and what
/// verification must say.
fn tamper(conn: &Connection, kind: usize, random: &mut Random) -> (String, Expect) {
    let newest = newest_checkpoint(conn);
    let tail = i64::try_from(TAIL).unwrap_or(0);
    if kind >= 9 {
        return tamper_the_newest(conn, kind, random, &newest, tail);
    }
    // The kinds before 9 change what a signature covers: each must be caught.
    let all: Vec<i64> = seqs(conn).into_iter().filter(|seq| *seq <= newest.last_seq).collect();
    let seq = pick(random, &all);
    (tamper_signed(conn, kind, random, &all, seq), CAUGHT)
}

/// The kinds that go after the newest part of the trail.
fn tamper_the_newest(
    conn: &Connection,
    kind: usize,
    random: &mut Random,
    newest: &Checkpoint,
    tail: i64,
) -> (String, Expect) {
    let last = newest.last_seq + tail;
    match kind {
        9 => {
            let checkpoints = read_checkpoints(conn, 0, usize::MAX).expect("checkpoints");
            let before = &checkpoints[checkpoints.len() - 2];
            let kept = random.between(1, newest.last_seq - before.last_seq);
            conn.execute("DELETE FROM checkpoints WHERE number = ?1", [newest.number]).expect("delete");
            conn.execute("DELETE FROM events WHERE seq > ?1", [before.last_seq + kept]).expect("delete");
            let what = format!(
                "checkpoint {} and the events after seq {} deleted ({kept} events after checkpoint {} kept)",
                newest.number,
                before.last_seq + kept,
                before.number
            );
            let uncovered = u64::try_from(kept).unwrap_or(0);
            (what, Expect { without_witness: Outcome::Uncovered(uncovered), with_witness: Outcome::Caught })
        }
        10 => {
            let seq = random.between(newest.last_seq + 1, last);
            change_body(conn, seq);
            relink_from(conn, seq);
            let cut = random.between(seq, last);
            conn.execute("DELETE FROM events WHERE seq > ?1", [cut]).expect("delete");
            let uncovered = u64::try_from(cut - newest.last_seq).unwrap_or(0);
            let what = format!("tail: seq {seq} changed, relinked, events after {cut} deleted");
            (
                what,
                Expect { without_witness: Outcome::Uncovered(uncovered), with_witness: Outcome::Uncovered(uncovered) },
            )
        }
        11 => {
            // Keep checkpoints 1..=j (j < newest, so the witness holds a later one), change
            // an event after j, relink, and re-sign every later checkpoint with its key.
            let j = random.between(1, newest.number - 1);
            let signed_by_j: i64 = conn
                .query_row("SELECT last_seq FROM checkpoints WHERE number = ?1", [j], |r| r.get(0))
                .expect("last seq");
            let seq = random.between(signed_by_j.max(newest.anchor_seq) + 1, newest.last_seq);
            change_body(conn, seq);
            relink_from(conn, seq);
            resign_from(conn, j + 1, honest_signer);
            let what = format!("forked at seq {seq} after checkpoint {j}, checkpoints {} on re-signed", j + 1);
            (what, Expect { without_witness: Outcome::Uncovered(TAIL), with_witness: Outcome::Caught })
        }
        _ => {
            // Only the newest key leaked: rewrite an event signed under an older key and
            // re-sign from some checkpoint at or before the second handover with the new key.
            let handover: (i64, i64) = conn
                .query_row(
                    "SELECT number, last_seq FROM checkpoints WHERE next_public_key IS NOT NULL ORDER BY number DESC LIMIT 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .expect("the second handover");
            let first: i64 = conn.query_row("SELECT min(seq) FROM events", [], |r| r.get(0)).expect("first");
            let seq = random.between(first, handover.1);
            let from: i64 = conn
                .query_row("SELECT min(number) FROM checkpoints WHERE last_seq >= ?1", [seq], |r| r.get(0))
                .expect("covering checkpoint");
            change_body(conn, seq);
            relink_from(conn, seq);
            resign_from(conn, from, |_| TrailSigner::from_seed(KEY_SEEDS[2]));
            let what = format!("seq {seq} changed, checkpoints {from} on re-signed with the newest key only");
            (what, CAUGHT)
        }
    }
}

/// Applies one of the kinds 0 to 8 to `seq`, a seq some checkpoint signed.
fn tamper_signed(conn: &Connection, kind: usize, random: &mut Random, all: &[i64], seq: i64) -> String {
    match kind {
        0 => {
            let body: String =
                conn.query_row("SELECT body FROM events WHERE seq = ?1", [seq], |r| r.get(0)).expect("body");
            let mut value: Value = serde_json::from_str(&body).expect("JSON");
            let field = pick(
                random,
                &[
                    "payload.path",
                    "user_email",
                    "response.status",
                    "response.durationMs",
                    "payload.params",
                    "timestamp",
                ],
            );
            match field {
                "payload.path" => value["payload"]["path"] = json!("/pacticipants/Evil"),
                "user_email" => value["user_email"] = json!("someone-else@example.com"),
                "response.status" => value["response"]["status"] = json!(299),
                "response.durationMs" => {
                    value["response"]["durationMs"] =
                        json!(value["response"]["durationMs"].as_f64().unwrap_or(0.0) + 0.001)
                }
                "payload.params" => value["payload"]["params"]["extra"] = json!("x"),
                _ => value["timestamp"] = json!("2030-01-01T00:00:00.001+00:00"),
            }
            let changed = serde_json::to_string(&value).expect("JSON");
            conn.execute("UPDATE events SET body = ?1 WHERE seq = ?2", params![changed, seq]).expect("update");
            format!("seq {seq}: body {field}")
        }
        1 => {
            let column = pick(
                random,
                &[
                    "uuid",
                    "timestamp_ms",
                    "type",
                    "db_user_id",
                    "user_email",
                    "method",
                    "status",
                    "user_id",
                    "user_name",
                    "chain_prev",
                    "chain_hash",
                    "seq",
                ],
            );
            let sql = match column {
                "uuid" => "UPDATE events SET uuid = 'AAAAAAAAAAAAAAAAAAAAAA' WHERE seq = ?1".to_owned(),
                "timestamp_ms" => "UPDATE events SET timestamp_ms = timestamp_ms + 1 WHERE seq = ?1".to_owned(),
                "type" => "UPDATE events SET type = type || 'X' WHERE seq = ?1".to_owned(),
                "db_user_id" => "UPDATE events SET db_user_id = coalesce(db_user_id + 1, 1) WHERE seq = ?1".to_owned(),
                "user_email" => {
                    "UPDATE events SET user_email = coalesce(user_email || 'x', 'x@example.com') WHERE seq = ?1"
                        .to_owned()
                }
                "method" => "UPDATE events SET method = method || 'X' WHERE seq = ?1".to_owned(),
                "status" => "UPDATE events SET status = coalesce(status + 1, 1) WHERE seq = ?1".to_owned(),
                "user_id" => "UPDATE events SET user_id = coalesce(user_id || 'x', 'x') WHERE seq = ?1".to_owned(),
                "user_name" => {
                    "UPDATE events SET user_name = coalesce(user_name || 'x', 'x') WHERE seq = ?1".to_owned()
                }
                "seq" => format!("UPDATE events SET seq = {} WHERE seq = ?1", 1_000_000 + random.below(1000)),
                blob_column => {
                    let mut blob: Vec<u8> = conn
                        .query_row(&format!("SELECT {blob_column} FROM events WHERE seq = ?1"), [seq], |r| r.get(0))
                        .expect("blob");
                    flip_byte(&mut blob, random);
                    conn.execute(&format!("UPDATE events SET {blob_column} = ?1 WHERE seq = ?2"), params![blob, seq])
                        .expect("update");
                    return format!("seq {seq}: column {blob_column}");
                }
            };
            conn.execute(&sql, [seq]).expect("update");
            format!("seq {seq}: column {column}")
        }
        2 => {
            conn.execute("DELETE FROM events WHERE seq = ?1", [seq]).expect("delete");
            format!("seq {seq}: deleted")
        }
        3 => {
            let other = loop {
                let other = pick(random, all);
                if other != seq {
                    break other;
                }
            };
            let with_links = random.below(2) == 0;
            let columns = if with_links {
                "uuid, timestamp_ms, type, db_user_id, user_email, method, status, body, chain_prev, chain_hash"
            } else {
                "uuid, timestamp_ms, type, db_user_id, user_email, method, status, body"
            };
            // Through a scratch table, since uuid is UNIQUE.
            conn.execute_batch(&format!(
                "CREATE TEMP TABLE swap AS SELECT seq, {columns} FROM events WHERE seq IN ({seq}, {other});
                 UPDATE events SET uuid = 'swap-' || seq WHERE seq IN ({seq}, {other});
                 UPDATE events SET ({columns}) = (SELECT {columns} FROM swap WHERE swap.seq = {other}) WHERE seq = {seq};
                 UPDATE events SET ({columns}) = (SELECT {columns} FROM swap WHERE swap.seq = {seq}) WHERE seq = {other};"
            ))
            .expect("swap");
            format!("seqs {seq} and {other} swapped (links too: {with_links})")
        }
        4 => {
            let count: i64 = conn.query_row("SELECT count(*) FROM checkpoints", [], |r| r.get(0)).expect("count");
            let number = random.between(1, count);
            let field = pick(
                random,
                &[
                    "last_seq",
                    "last_hash",
                    "anchor_seq",
                    "anchor_hash",
                    "issued_at_ms",
                    "prev_checkpoint_hash",
                    "key_id",
                    "signature",
                    "forge",
                ],
            );
            match field {
                "last_seq" | "anchor_seq" | "issued_at_ms" => {
                    conn.execute(&format!("UPDATE checkpoints SET {field} = {field} + 1 WHERE number = ?1"), [number])
                        .expect("update");
                }
                "key_id" => {
                    conn.execute("UPDATE checkpoints SET key_id = 'ffffffffffffffff' WHERE number = ?1", [number])
                        .expect("update");
                }
                "forge" => {
                    // A checkpoint signed by another key, claiming the trail ends earlier.
                    let forger = TrailSigner::from_seed([9; 32]);
                    let mut signature = forger.sign(b"anything").to_vec();
                    flip_byte(&mut signature, random);
                    conn.execute(
                        "INSERT INTO checkpoints SELECT number + 1, last_seq, last_hash, anchor_seq, anchor_hash, issued_at_ms + 1,
                                prev_checkpoint_hash, key_id, ?1, NULL FROM checkpoints ORDER BY number DESC LIMIT 1",
                        [signature],
                    )
                    .expect("forge");
                }
                blob_column => {
                    let mut blob: Vec<u8> = conn
                        .query_row(&format!("SELECT {blob_column} FROM checkpoints WHERE number = ?1"), [number], |r| {
                            r.get(0)
                        })
                        .expect("blob");
                    flip_byte(&mut blob, random);
                    conn.execute(
                        &format!("UPDATE checkpoints SET {blob_column} = ?1 WHERE number = ?2"),
                        params![blob, number],
                    )
                    .expect("update");
                }
            }
            format!("checkpoint {number}: {field}")
        }
        5 => {
            let last_signed: i64 =
                conn.query_row("SELECT max(last_seq) FROM checkpoints", [], |r| r.get(0)).expect("last");
            let first = all[0];
            if random.below(2) == 0 {
                let cut = random.between(first, last_signed - 1);
                conn.execute("DELETE FROM events WHERE seq <= ?1", [cut]).expect("truncate");
                format!("events up to seq {cut} deleted from the start")
            } else {
                let cut = random.between(first, last_signed - 1);
                conn.execute("DELETE FROM events WHERE seq > ?1", [cut]).expect("truncate");
                format!("events after seq {cut} deleted from the end")
            }
        }
        6 => {
            if random.below(2) == 0 {
                conn.execute("DELETE FROM chain_anchor", []).expect("delete anchor");
                "anchor deleted".to_owned()
            } else {
                // Moved forward with the events it now claims were purged: a truncation
                // dressed up as retention.
                let cut = all[usize::try_from(random.below(50)).unwrap_or(0)];
                let hash: Vec<u8> =
                    conn.query_row("SELECT chain_hash FROM events WHERE seq = ?1", [cut], |r| r.get(0)).expect("hash");
                conn.execute("DELETE FROM events WHERE seq <= ?1", [cut]).expect("delete");
                conn.execute("UPDATE chain_anchor SET seq = ?1, hash = ?2", params![cut, hash]).expect("move anchor");
                format!("anchor moved to seq {cut}")
            }
        }
        7 => {
            // Change one event and recompute every link after it, as if the attacker had
            // the algorithm (they do: it is in the docs).
            change_body(conn, seq);
            relink_from(conn, seq);
            format!("seq {seq} changed and the chain rewritten after it")
        }
        _ => {
            let count: i64 = conn.query_row("SELECT count(*) FROM checkpoints", [], |r| r.get(0)).expect("count");
            let number = random.between(1, count - 1);
            conn.execute("DELETE FROM checkpoints WHERE number = ?1", [number]).expect("delete");
            format!("checkpoint {number} deleted")
        }
    }
}

/// What verification said, reduced to what [`Outcome`] compares; `Err` for anything else
/// (unreadable, or a pass with a coverage the test did not expect).
fn outcome_of(result: Result<TrailReport, VerifyError>) -> Result<Outcome, String> {
    match result {
        Err(VerifyError::NotIntact(_)) => Ok(Outcome::Caught),
        Err(error) => Err(error.to_string()),
        Ok(report) if report.coverage() == Coverage::UncoveredTail => Ok(Outcome::Uncovered(report.uncovered_events())),
        Ok(report) => Err(format!("passed as {:?}: {report}", report.coverage())),
    }
}

/// The outcome without the witness, and with it (the witness is checked after the trail,
/// so a trail that fails fails the same way with it).
fn verify_twice(conn: &Connection, honest: &Honest) -> (Result<Outcome, String>, Result<Outcome, String>) {
    match verify_database(conn, &honest.key) {
        Ok(report) => {
            let with = outcome_of(check_witness(report.clone(), &honest.key, &honest.witness));
            (outcome_of(Ok(report)), with)
        }
        Err(error) => {
            let outcome = outcome_of(Err(error));
            (outcome.clone(), outcome)
        }
    }
}

#[test]
fn every_random_tampering_is_caught_or_reported_as_uncovered_and_every_untouched_copy_passes() {
    let honest = honest_trail();
    let report = verify_database(&copy_of(&honest.image), &honest.key).expect("the honest trail verifies");
    assert_eq!((report.first_seq, report.last_seq, report.checkpoints.len()), (Some(101), Some(345), 8), "{report}");
    assert_eq!((report.covered_events, report.uncovered_events()), (220, TAIL), "{report}");
    let witnessed = check_witness(report, &honest.key, &honest.witness).expect("the witness agrees");
    assert!(witnessed.to_string().contains("checkpoint 8 (seq 320)"), "{witnessed}");
    let only: Option<u64> = std::env::var("TAMPER_SEED").ok().and_then(|seed| seed.parse().ok());
    let seeds: Vec<u64> = only.map_or_else(|| (0..2000).collect(), |seed| vec![seed]);
    let untouched = Expect { without_witness: Outcome::Uncovered(TAIL), with_witness: Outcome::Uncovered(TAIL) };
    let outcomes = std::thread::scope(|scope| {
        let workers: Vec<_> = seeds
            .chunks(seeds.len().div_ceil(2).max(1))
            .map(|chunk| {
                let honest = &honest;
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|seed| {
                            let mut random = Random(*seed);
                            let conn = copy_of(&honest.image);
                            // One copy in ten stays untouched and must still pass.
                            let (kind, what, expect) = if seed % 10 == 9 {
                                (None, "untouched".to_owned(), untouched)
                            } else {
                                let kind = usize::try_from(random.below(KINDS.len() as u64)).unwrap_or(0);
                                let (what, expect) = tamper(&conn, kind, &mut random);
                                (Some(kind), what, expect)
                            };
                            (*seed, kind, what, expect, verify_twice(&conn, honest))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers.into_iter().flat_map(|worker| worker.join().expect("worker")).collect::<Vec<_>>()
    });
    let mut tried: BTreeMap<&str, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for (seed, kind, what, expect, (without, with)) in outcomes {
        let name = kind.map_or("untouched", |kind| KINDS[kind]);
        *tried.entry(name).or_default() += 1;
        if without != Ok(expect.without_witness) || with != Ok(expect.with_witness) {
            failures.push(format!(
                "seed {seed}: `{name}` ({what}): expected {:?} without a witness and {:?} with one; got {without:?} and {with:?}",
                expect.without_witness, expect.with_witness
            ));
        }
    }
    println!("copies by kind: {tried:#?}");
    assert!(failures.is_empty(), "{} problems:\n{}", failures.len(), failures.join("\n"));
    if only.is_none() {
        assert_eq!(tried.len(), KINDS.len() + 1, "every kind of tampering was tried: {tried:?}");
    }
}

#[test]
fn a_removed_handover_checkpoint_is_a_broken_checkpoint_chain_and_handovers_are_numbered_as_rotate_key_does() {
    let honest = honest_trail();
    let report = verify_database(&copy_of(&honest.image), &honest.key).expect("the honest trail verifies");
    let text = report.to_string();
    assert!(text.contains("(handed over by checkpoint 3)") && text.contains("(handed over by checkpoint 6)"), "{text}");
    let conn = copy_of(&honest.image);
    conn.execute("DELETE FROM checkpoints WHERE number = 3", []).expect("delete the handover");
    let error = verify_database(&conn, &honest.key).err().map(|error| error.to_string()).unwrap_or_default();
    assert!(
        error.contains("checkpoint 4 (seq") && error.contains("checkpoint chain BROKEN: expected checkpoint 3 here"),
        "{error}"
    );
    assert!(!error.contains("SIGNATURE INVALID"), "{error}");
}

#[test]
fn a_trail_without_any_checkpoint_is_never_proven_whatever_key_is_given() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut conn = open_for_writing(&dir.path().join("audit.db")).expect("open");
    let mut random = Random(1);
    let batch: Vec<Value> = (0..5).map(|i| event_json(i, RECENT_MS, &mut random)).collect();
    let rows = parse_batch(&serde_json::to_vec(&json!({ "events": batch })).expect("JSON")).expect("valid").rows;
    let mut tx = conn.transaction().expect("begin");
    insert_batch(&mut tx, &rows, RECENT_MS).expect("insert");
    tx.commit().expect("commit");
    // A key that never signed anything here.
    let any_key = TrailSigner::from_seed([5; 32]).verifier();
    let report = verify_database(&conn, &any_key).expect("the chain is consistent");
    assert_eq!(report.coverage(), Coverage::NothingSigned, "{report}");
    assert_eq!((report.covered_events, report.uncovered_events()), (0, 5), "{report}");
    assert_eq!(report.exit_code(), super::exit_code::UNCOVERED_TAIL);
    let text = report.to_string();
    assert!(text.starts_with("TRAIL NOT PROVEN") && !text.contains("INTACT"), "{text}");
}

#[test]
fn a_verification_error_for_an_unreadable_database_is_not_a_tamper_verdict() {
    let conn = Connection::open_in_memory().expect("memory");
    let key = TrailSigner::from_seed([1; 32]).verifier();
    assert!(matches!(verify_database(&conn, &key), Err(VerifyError::Read(_))));
}
