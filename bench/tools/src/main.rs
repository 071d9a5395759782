//! `audit-bench`: the measuring tools behind `make bench`. Each subcommand does one bounded
//! job and prints one JSON object on stdout; `bench/run.py` starts the processes, calls
//! these, and writes the report.
//!
//! # Layout
//! - [`render`]: the Envoy configurations compared, all derived from the top-level `envoy.yaml`.
//! - [`events`]: realistic audit events (the shape the filter sends, ~700 bytes each).
//! - [`ingest`]: POSTs ingest batches to a running collector over N connections.
//! - [`sqlite`]: the raw-insert baseline and the fast trail generator, on a database the
//!   collector created (so the schema and pragmas are its own).
//! - [`pages`]: times sequential `GET /audit` requests.
//! - [`freshness`]: how long after its acknowledgement an event is readable (PostgreSQL
//!   replicas seal asynchronously).
//! - [`http`]: the minimal keep-alive HTTP/1.1 client the timers use.

mod args;
mod events;
mod freshness;
mod http;
mod ingest;
mod pages;
mod render;
mod sqlite;

use anyhow::{bail, Result};

const USAGE: &str = "usage: audit-bench <render|ingest|raw-insert|generate|pages|freshness> --flag value ...
  render     --variant plain|noop|audit|access-log|stage-<stage> --listen IP:PORT --admin IP:PORT
             --upstream IP:PORT --collector IP:PORT --wasm PATH [--access-log PATH] [--filter-patch JSON]
  ingest     --addr IP:PORT --token T --events N --connections C [--batch 100] [--run-id R]
             [--rate EVENTS_PER_S]
  raw-insert --db PATH --events N [--batch 100] [--batches-per-commit 1]
  generate   --db PATH --events N [--rows-per-transaction 100000]
  pages      --addr IP:PORT --token T --count N --path P [--path P2 ...]
  freshness  --addr IP:PORT --token T --read-token R --seconds S [--read-addr IP:PORT] [--run-id R]";

fn main() -> Result<()> {
    let mut argv = std::env::args().skip(1);
    let Some(command) = argv.next() else { bail!("{USAGE}") };
    let flags = args::Flags::parse(argv)?;
    let report = match command.as_str() {
        "render" => {
            print!("{}", render::run(&flags)?);
            return Ok(());
        }
        "ingest" => ingest::run(&flags)?,
        "raw-insert" => sqlite::raw_insert(&flags)?,
        "generate" => sqlite::generate(&flags)?,
        "pages" => pages::run(&flags)?,
        "freshness" => freshness::run(&flags)?,
        other => bail!("unknown subcommand `{other}`\n{USAGE}"),
    };
    println!("{report}");
    Ok(())
}
