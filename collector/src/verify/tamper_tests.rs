//! The randomized tamper test: an honest trail (hundreds of events, a retention purge,
//! several checkpoints) is copied in memory thousands of times; each copy gets ONE random
//! tampering, done as an attacker with the file would (triggers dropped first), and
//! `verify_database` must catch every one, and pass every untouched copy. Seeded, so a
//! failure names the seed that reproduces it (`TAMPER_SEED=<n>` runs that one seed).

use std::collections::BTreeMap;

use rusqlite::{params, Connection, TransactionBehavior};
use serde_json::{json, Value};

use super::{verify_database, VerifyError};
use crate::batch::parse_batch;
use crate::chain::signing::{TrailSigner, TrailVerifier};
use crate::store::chain_store::issue_checkpoint;
use crate::store::schema::open_for_writing;
use crate::store::write_sql::insert_batch;
use crate::store::write_sql::purge_batch;

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

/// The honest database image and the key that signed it.
fn honest_trail() -> (Vec<u8>, TrailVerifier) {
    let signer = TrailSigner::from_seed([42; 32]);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.db");
    let mut conn = open_for_writing(&path).expect("open");
    let mut random = Random(7);
    let mut n = 0;
    for round in 0..8 {
        let timestamp = if round < 3 { OLD_MS } else { RECENT_MS };
        let batch: Vec<Value> = (0..40).map(|i| event_json(n + i, timestamp, &mut random)).collect();
        n += 40;
        let rows =
            parse_batch(&serde_json::to_vec(&json!({ "events": batch })).expect("JSON")).expect("valid batch").rows;
        let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).expect("begin");
        insert_batch(&mut tx, &rows, RECENT_MS).expect("insert");
        if round == 4 {
            // Retention: the first 100 of the 120 old events (a batch limit), anchored and signed.
            assert_eq!(purge_batch(&tx, RECENT_MS - 1, 100).expect("purge"), 100);
            issue_checkpoint(&tx, &signer, RECENT_MS + round).expect("sign").expect("a checkpoint");
        }
        // In the purge round the purge's checkpoint already covers everything.
        issue_checkpoint(&tx, &signer, RECENT_MS + round).expect("sign");
        tx.commit().expect("commit");
    }
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").expect("checkpoint the WAL");
    drop(conn);
    let mut image = std::fs::read(&path).expect("read the file");
    // Bytes 18 and 19 say WAL; an in-memory copy cannot use WAL, so mark it a rollback journal.
    image[18] = 1;
    image[19] = 1;
    (image, signer.verifier())
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

const KINDS: [&str; 9] = [
    "change a field in a body",
    "change a column",
    "delete a row",
    "swap two rows' contents",
    "alter or forge a checkpoint",
    "truncate history before the last checkpoint",
    "delete or move the anchor",
    "rewrite the chain after a change",
    "remove a checkpoint that is not the newest",
];

/// Applies tampering `kind`; returns what it did, for the failure message.
fn tamper(conn: &Connection, kind: usize, random: &mut Random) -> String {
    let all = seqs(conn);
    let seq = pick(random, &all);
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
                let other = pick(random, &all);
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
                                prev_checkpoint_hash, key_id, ?1 FROM checkpoints ORDER BY number DESC LIMIT 1",
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
            // the algorithm (they do: it is in the README).
            let body: String =
                conn.query_row("SELECT body FROM events WHERE seq = ?1", [seq], |r| r.get(0)).expect("body");
            let changed = body.replacen("/pacticipants/", "/pacticipants/evil-", 1);
            conn.execute("UPDATE events SET body = ?1 WHERE seq = ?2", params![changed, seq]).expect("update");
            let mut prev: Vec<u8> =
                conn.query_row("SELECT chain_prev FROM events WHERE seq = ?1", [seq], |r| r.get(0)).expect("prev");
            for later in all.iter().filter(|later| **later >= seq) {
                let body: String =
                    conn.query_row("SELECT body FROM events WHERE seq = ?1", [later], |r| r.get(0)).expect("body");
                let prev_digest: [u8; 32] = prev.clone().try_into().expect("32 bytes");
                let hash = crate::chain::link::body_hash(&prev_digest, *later, &body).expect("hash");
                conn.execute(
                    "UPDATE events SET chain_prev = ?1, chain_hash = ?2 WHERE seq = ?3",
                    params![prev, hash.as_slice(), later],
                )
                .expect("relink");
                prev = hash.to_vec();
            }
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

#[test]
fn every_random_tampering_is_caught_and_every_untouched_copy_passes() {
    let (image, key) = honest_trail();
    let honest = verify_database(&copy_of(&image), &key).expect("the honest trail verifies");
    assert_eq!((honest.first_seq, honest.last_seq, honest.checkpoints), (Some(101), Some(320), 8), "{honest}");

    let only: Option<u64> = std::env::var("TAMPER_SEED").ok().and_then(|seed| seed.parse().ok());
    let seeds: Vec<u64> = only.map_or_else(|| (0..2700).collect(), |seed| vec![seed]);
    let outcomes = std::thread::scope(|scope| {
        let workers: Vec<_> = seeds
            .chunks(seeds.len().div_ceil(2).max(1))
            .map(|chunk| {
                let (image, key) = (&image, &key);
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|seed| {
                            let mut random = Random(*seed);
                            let conn = copy_of(image);
                            // One copy in ten stays untouched and must still pass.
                            if seed % 10 == 9 {
                                return (
                                    *seed,
                                    None,
                                    verify_database(&conn, key).map(|_| ()).map_err(|e| e.to_string()),
                                );
                            }
                            let kind = usize::try_from(random.below(KINDS.len() as u64)).unwrap_or(0);
                            let what = tamper(&conn, kind, &mut random);
                            (
                                *seed,
                                Some((kind, what)),
                                verify_database(&conn, key).map(|_| ()).map_err(|e| e.to_string()),
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers.into_iter().flat_map(|worker| worker.join().expect("worker")).collect::<Vec<_>>()
    });

    let mut caught: BTreeMap<&str, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut untouched = 0;
    for (seed, tampering, outcome) in outcomes {
        match (tampering, outcome) {
            (None, Ok(())) => untouched += 1,
            (None, Err(error)) => failures.push(format!("seed {seed}: untouched copy FAILED: {error}")),
            (Some((kind, _)), Err(error)) if error.starts_with("TRAIL NOT INTACT") => {
                *caught.entry(KINDS[kind]).or_default() += 1
            }
            (Some((kind, what)), outcome) => {
                failures.push(format!("seed {seed}: `{}` ({what}) SLIPPED THROUGH: {outcome:?}", KINDS[kind]));
            }
        }
    }
    println!("caught by kind: {caught:#?}\nuntouched copies that passed: {untouched}");
    assert!(failures.is_empty(), "{} problems:\n{}", failures.len(), failures.join("\n"));
    if only.is_none() {
        assert_eq!(caught.len(), KINDS.len(), "every kind of tampering was tried: {caught:?}");
    }
}

#[test]
fn a_verification_error_for_an_unreadable_database_is_not_a_tamper_verdict() {
    let conn = Connection::open_in_memory().expect("memory");
    let key = TrailSigner::from_seed([1; 32]).verifier();
    assert!(matches!(verify_database(&conn, &key), Err(VerifyError::Read(_))));
}
