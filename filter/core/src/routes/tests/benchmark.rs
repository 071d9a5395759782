//! A native micro-benchmark of `classify` over one request per API and UI data row (plus
//! an unmatched path). Ignored by default; run it optimised:
//! `cargo test --release -p audit-filter routes::tests::benchmark -- --ignored --nocapture`

use std::hint::black_box;
use std::time::Instant;

use super::generated_from_data::BROWSER_ACCEPT;
use super::tsv_fixtures::{api_rows, ui_rows};
use crate::routes::{RouteRequest, RouteTableConfig};

fn sample_path(template: &str) -> String {
    template
        .split('/')
        .map(|segment| match segment {
            "*" => "app/main.css",
            _ if segment.starts_with(':') => "Foo%20Bar",
            _ => segment,
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
#[ignore = "micro-benchmark: run with --release --ignored --nocapture"]
fn classify_nanoseconds_per_request() {
    let table = RouteTableConfig::default().build().unwrap();
    let mut requests: Vec<(String, Option<&str>)> =
        api_rows().iter().map(|row| (sample_path(&row.template), Some("application/hal+json"))).collect();
    for row in ui_rows() {
        requests.extend(row.templates.iter().map(|template| (sample_path(template), Some(BROWSER_ACCEPT))));
    }
    requests.push(("/no/such/route".to_string(), None));

    let rounds = 2_000;
    let started = Instant::now();
    let mut params_seen = 0;
    for _ in 0..rounds {
        for (path, accept) in &requests {
            let request = RouteRequest { method: "GET", path, accept: *accept, content_type: None };
            params_seen += black_box(table.classify(black_box(&request))).params.len();
        }
    }
    let elapsed = started.elapsed();
    let classified = rounds * requests.len();
    println!(
        "classify: {:.0} ns per request ({classified} requests over {} paths, {params_seen} params built)",
        elapsed.as_nanos() as f64 / classified as f64,
        requests.len()
    );
}
