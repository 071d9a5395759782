//! Test support: a collector started through `run()` on 127.0.0.1:0 with a temporary
//! database, a tiny HTTP/1.1 client over raw TCP (one request per connection), and
//! builders for valid events.

#![allow(dead_code)]
// each test file uses a different part of this module
// Test support, not test functions, so the allow-in-tests setting does not reach it; a
// panic here is a failed test with its message, as in the tests themselves.
#![allow(clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use audit_collector::{Config, Error, TokenSet};
use audit_event::event_uuid::encode_event_uuid;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const READ_TOKEN: &str = "read-token-for-tests";
pub const INGEST_TOKEN: &str = "ingest-token-for-tests";

/// A running collector; [`Collector::stop`] shuts it down and returns what `run` returned.
pub struct Collector {
    pub address: SocketAddr,
    pub database: PathBuf,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), Error>>,
}

pub fn config_in(dir: &tempfile::TempDir) -> Config {
    Config::new(dir.path().join("data/audit.db"), TokenSet::from_list(READ_TOKEN), TokenSet::from_list(INGEST_TOKEN))
}

impl Collector {
    pub async fn start() -> Collector {
        Collector::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Collector {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = config_in(&dir);
        config.address_file = Some(dir.path().join("collector.address"));
        adjust(&mut config);
        let database = config.database.clone();
        let address_file = config.address_file.clone();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let address = listener.local_addr().expect("local address");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(audit_collector::run(listener, config, async {
            let _ = stopped.await;
        }));
        // The address file appears once the store is open: the collector is ready.
        if let Some(path) = address_file {
            for _ in 0..200 {
                if path.exists() || task.is_finished() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        Collector { address, database, dir, stop: Some(stop), task }
    }

    /// Asks for a graceful shutdown and waits for `run` to return.
    pub async fn stop(self) -> Result<(), Error> {
        self.stop_keeping_files().await.0
    }

    /// Like [`Collector::stop`], handing back the directory so the database can be inspected.
    pub async fn stop_keeping_files(mut self) -> (Result<(), Error>, tempfile::TempDir) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let outcome = tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("run() returned within 20 s of the shutdown signal")
            .expect("run() did not panic");
        (outcome, self.dir)
    }

    pub async fn ingest(&self, events: &[Value]) -> Reply {
        let body = serde_json::to_vec(&json!({ "events": events })).expect("serializes");
        self.send("POST", "/v1/events", &[("authorization", &bearer(INGEST_TOKEN))], Some(&body)).await
    }

    pub async fn audit(&self, path_and_query: &str) -> Reply {
        self.send("GET", path_and_query, &[("authorization", &bearer(READ_TOKEN))], None).await
    }

    pub async fn send(&self, method: &str, target: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Reply {
        send(self.address, method, target, headers, body).await
    }

    /// Every stored uuid, in sequence order, read straight from the database file.
    pub fn stored_uuids(&self) -> Vec<String> {
        stored_uuids(&self.database)
    }
}

pub fn stored_uuids(database: &std::path::Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(database).expect("open the database");
    let mut select = conn.prepare("SELECT uuid FROM events ORDER BY seq").expect("prepare");
    let rows = select.query_map([], |row| row.get(0)).expect("query");
    rows.collect::<Result<_, _>>().expect("read rows")
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A distinct, valid event uuid for each `n`.
pub fn uuid(n: u32) -> String {
    let mut bytes = [0x5a; 16];
    bytes[..4].copy_from_slice(&n.to_be_bytes());
    encode_event_uuid(bytes)
}

/// A valid event with the given uuid.
pub fn event(uuid: &str) -> Value {
    json!({
        "uuid": uuid,
        "timestamp": "2030-01-02T03:04:05.678+00:00",
        "type": "PactBroker::Api::Resources::Pacticipants",
        "db_user_id": null,
        "user_email": "tester@example.com",
        "payload": {"path": "/pacticipants", "queryString": "", "method": "GET",
                    "userAgent": "test", "referer": null, "params": {"resource_name": "pacticipants"}}
    })
}

pub fn events(range: std::ops::Range<u32>) -> Vec<Value> {
    range.map(|n| event(&uuid(n))).collect()
}

/// An HTTP response as a client sees it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("body is not JSON ({error}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `detail` of a problem+json body, after checking it is one.
    pub fn problem_detail(&self) -> String {
        assert_eq!(self.header("content-type"), Some("application/problem+json"), "{}", self.text());
        let problem = self.json();
        assert_eq!(problem["status"], self.status, "problem status matches HTTP status");
        assert!(problem["type"].is_string() && problem["title"].is_string(), "{problem}");
        problem["detail"].as_str().unwrap_or_default().to_owned()
    }

    /// The uuids of the events of an /audit page.
    pub fn event_uuids(&self) -> Vec<String> {
        let page = self.json();
        page["events"]
            .as_array()
            .unwrap_or_else(|| panic!("no events array: {page}"))
            .iter()
            .map(|event| event["uuid"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

/// One request on a fresh connection (`Connection: close`), read to the end.
pub async fn send(
    address: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Reply {
    match try_send(address, method, target, headers, body).await {
        Some(reply) => reply,
        None => panic!("{method} {target}: no complete response from {address}"),
    }
}

/// Like [`send`], but `None` when the connection is refused or closed without a response
/// (as it may be while the collector shuts down).
pub async fn try_send(
    address: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Option<Reply> {
    let exchange = async {
        let mut stream = TcpStream::connect(address).await.ok()?;
        let mut request = format!("{method} {target} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(body) = body {
            request.push_str(&format!("content-type: application/json\r\ncontent-length: {}\r\n", body.len()));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        if let Some(body) = body {
            // The server may answer (413) and close before reading a body it refuses.
            let _ = stream.write_all(body).await;
        }
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw).await;
        Some(raw)
    };
    let raw = tokio::time::timeout(Duration::from_secs(20), exchange).await.expect("response within 20 s")?;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Option<Reply> {
    let split = raw.windows(4).position(|window| window == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Some(Reply { status, headers, body: raw[split + 4..].to_vec() })
}
