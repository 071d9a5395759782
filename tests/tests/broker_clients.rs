//! Real Pact Broker clients through Envoy: each `pact broker ...` command (and a `pact verifier`
//! replay of `tests/pacts/broker-client-replay.json`) runs against the audited listener, must
//! exit 0, and every request it made must be exactly one event in the trail, typed as the Pact
//! Broker would dispatch it (`type` = resource class, `payload.params` = resource name and the
//! percent-decoded path params; see the table in `tests/pacts/README.md`).
//!
//! Each command sends its own `User-Agent`, so its events are told apart from anything else.

// The helpers below are test code too: a panic in them is a failed test with a message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use audit_e2e::client::wait_for_trail;
use audit_e2e::{paths, AuditStack, StackOptions};
use audit_event::AuditEvent;

const TRAIL_TIMEOUT: Duration = Duration::from_secs(30);
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// The environment the stub's `pb:record-deployment` link names (see the broker pact).
const PRODUCTION_UUID: &str = "16926ef3-590f-4e3f-838e-719717aa88c9";

/// One request a client is expected to make, and the event it must become.
struct Expected {
    method: &'static str,
    path: &'static str,
    query: &'static str,
    status: u16,
    event_type: &'static str,
    params: Vec<(&'static str, &'static str)>,
}

fn request(
    method: &'static str,
    target: &'static str,
    status: u16,
    resource_class: &'static str,
    params: &[(&'static str, &'static str)],
) -> Expected {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Expected { method, path, query, status, event_type: resource_class, params: params.to_vec() }
}

fn index() -> Expected {
    request("GET", "/", 200, "PactBroker::Api::Resources::Index", &[("resource_name", "index")])
}

fn pacticipant_version() -> Expected {
    request(
        "GET",
        "/pacticipants/Foo/versions/1.0.0",
        200,
        "PactBroker::Api::Resources::Version",
        &[
            ("resource_name", "pacticipant_version"),
            ("pacticipant_name", "Foo"),
            ("pacticipant_version_number", "1.0.0"),
        ],
    )
}

/// Runs `pact <args>` to completion (killed after [`CLIENT_TIMEOUT`]); returns its exit status
/// and its output. The broker credentials of whoever runs the tests are not passed on, and the
/// CLI does not phone home.
fn run_pact(args: &[&str], log_dir: &Path, name: &str) -> (std::process::ExitStatus, String) {
    let log_path = log_dir.join(format!("{name}.client.log"));
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(paths::pact_binary().unwrap())
        .args(args)
        .env("PACT_DO_NOT_TRACK", "true")
        .env_remove("PACT_BROKER_BASE_URL")
        .env_remove("PACT_BROKER_USERNAME")
        .env_remove("PACT_BROKER_PASSWORD")
        .env_remove("PACT_BROKER_TOKEN")
        .env_remove("PACT_BROKER_HTTP_RETRIES")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|error| panic!("starting pact {args:?}: {error}"));
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "pact {args:?} did not finish within {CLIENT_TIMEOUT:?}:\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status, std::fs::read_to_string(&log_path).unwrap_or_default())
}

/// Runs `pact broker <command> <args>` against the audited listener with `user_agent`,
/// asserts it exits 0 and prints `success_text`, then checks the trail.
fn check_broker_command(command: &str, args: &[&str], success_text: &str, expected: &[Expected]) {
    let stack = AuditStack::start(StackOptions::default()).expect("the stack starts");
    let user_agent = format!("e2e-broker-{command}");
    let broker = stack.envoy_url();
    let header = format!("User-Agent: {user_agent}");
    let mut full_args = vec!["broker", command];
    full_args.extend_from_slice(args);
    full_args.extend_from_slice(&["--broker-base-url", &broker, "--custom-header", &header, "--retries", "0"]);
    let (status, output) = run_pact(&full_args, stack.dir(), command);
    assert!(status.success(), "pact broker {command} through Envoy exited with {status}:\n{output}");
    assert!(
        output.contains(success_text),
        "pact broker {command} should print {success_text:?}; it printed:\n{output}"
    );
    check_trail(&stack, &user_agent, expected);
}

/// Waits until every expected request is in the trail under `user_agent`, then asserts each
/// is exactly one event with the right method, path, query, status, type and params, and
/// that the client made no other request.
fn check_trail(stack: &AuditStack, user_agent: &str, expected: &[Expected]) {
    let is_expected = |event: &AuditEvent, want: &Expected| {
        event.payload.method == want.method
            && event.payload.path == want.path
            && event.payload.query_string == want.query
    };
    let events = wait_for_trail(&stack.collector_url(), stack.read_token(), TRAIL_TIMEOUT, |events| {
        let mine: Vec<&AuditEvent> =
            events.iter().filter(|e| e.payload.user_agent.as_deref() == Some(user_agent)).collect();
        expected.iter().all(|want| mine.iter().any(|event| is_expected(event, want)))
    })
    .unwrap_or_else(|error| panic!("the trail misses requests of user agent {user_agent}: {error:#}"));
    let mine: Vec<&AuditEvent> =
        events.iter().filter(|e| e.payload.user_agent.as_deref() == Some(user_agent)).collect();

    let mut problems = Vec::new();
    for want in expected {
        let target =
            if want.query.is_empty() { want.path.to_string() } else { format!("{}?{}", want.path, want.query) };
        let matching: Vec<&&AuditEvent> = mine.iter().filter(|event| is_expected(event, want)).collect();
        if matching.len() != 1 {
            problems.push(format!("{} {target}: {} events, expected exactly 1", want.method, matching.len()));
            continue;
        }
        let event = matching[0];
        let status = event.response.as_ref().map(|r| r.status);
        if status != Some(want.status) {
            problems.push(format!("{} {target}: response.status {status:?}, expected {}", want.method, want.status));
        }
        if event.event_type != want.event_type {
            problems
                .push(format!("{} {target}: type {:?}, expected {:?}", want.method, event.event_type, want.event_type));
        }
        let params: BTreeMap<String, String> =
            want.params.iter().map(|(key, value)| ((*key).to_string(), (*value).to_string())).collect();
        if event.payload.params != params {
            problems.push(format!("{} {target}: params {:?}, expected {params:?}", want.method, event.payload.params));
        }
    }
    if mine.len() != expected.len() {
        let seen: Vec<String> = mine
            .iter()
            .map(|e| format!("{} {}?{} {}", e.payload.method, e.payload.path, e.payload.query_string, e.event_type))
            .collect();
        problems.push(format!(
            "{} events for user agent {user_agent}, expected {}:\n  {}",
            mine.len(),
            expected.len(),
            seen.join("\n  ")
        ));
    }
    assert!(problems.is_empty(), "the trail of {user_agent} is wrong:\n{}", problems.join("\n"));
}

#[test]
fn publish_is_audited_as_index_then_publish_contracts() {
    let consumer_pacts = tempfile::tempdir().unwrap();
    std::fs::write(
        consumer_pacts.path().join("Foo-Bar.json"),
        serde_json::json!({
            "consumer": {"name": "Foo"},
            "provider": {"name": "Bar"},
            "interactions": [{
                "description": "a request for the thing",
                "request": {"method": "GET", "path": "/thing"},
                "response": {"status": 200, "headers": {"Content-Type": "application/json"}, "body": {"id": 1}}
            }],
            "metadata": {"pactSpecification": {"version": "2.0.0"}}
        })
        .to_string(),
    )
    .unwrap();
    let dir = consumer_pacts.path().to_str().unwrap();
    check_broker_command(
        "publish",
        &[dir, "--consumer-app-version", "1.0.0", "--branch", "main"],
        "Created Foo version 1.0.0 with branch main",
        &[
            index(),
            request(
                "POST",
                "/contracts/publish",
                200,
                "PactBroker::Api::Resources::PublishContracts",
                &[("resource_name", "publish_contracts")],
            ),
        ],
    );
}

#[test]
fn create_or_update_version_is_audited_as_a_branch_version() {
    check_broker_command(
        "create-or-update-version",
        &["--pacticipant", "Foo", "--version", "1.0.0", "--branch", "main"],
        "Branch 'main' created for version '1.0.0'",
        &[request(
            "PUT",
            "/pacticipants/Foo/branches/main/versions/1.0.0",
            200,
            "PactBroker::Api::Resources::BranchVersion",
            &[
                ("resource_name", "branch_version"),
                ("pacticipant_name", "Foo"),
                ("branch_name", "main"),
                ("version_number", "1.0.0"),
            ],
        )],
    );
}

#[test]
fn create_environment_is_audited_as_environments() {
    check_broker_command(
        "create-environment",
        &["--name", "production"],
        "Created production environment",
        &[
            index(),
            request(
                "POST",
                "/environments",
                201,
                "PactBroker::Api::Resources::Environments",
                &[("resource_name", "environments")],
            ),
        ],
    );
}

#[test]
fn list_environments_is_audited_as_environments() {
    check_broker_command(
        "list-environments",
        &[],
        PRODUCTION_UUID,
        &[
            index(),
            request(
                "GET",
                "/environments",
                200,
                "PactBroker::Api::Resources::Environments",
                &[("resource_name", "environments")],
            ),
        ],
    );
}

#[test]
fn record_deployment_is_audited_as_version_then_deployed_versions() {
    check_broker_command(
        "record-deployment",
        &["--pacticipant", "Foo", "--version", "1.0.0", "--environment", "production"],
        "Recorded deployment of",
        &[
            pacticipant_version(),
            request(
                "POST",
                "/pacticipants/Foo/versions/1.0.0/deployed-versions/environment/16926ef3-590f-4e3f-838e-719717aa88c9",
                201,
                "PactBroker::Api::Resources::DeployedVersionsForVersionAndEnvironment",
                &[
                    ("resource_name", "deployed_versions_for_version_and_environment"),
                    ("pacticipant_name", "Foo"),
                    ("pacticipant_version_number", "1.0.0"),
                    ("environment_uuid", PRODUCTION_UUID),
                ],
            ),
        ],
    );
}

#[test]
fn can_i_deploy_is_audited_as_matrix_with_its_query() {
    check_broker_command(
        "can-i-deploy",
        &["--pacticipant", "Foo", "--version", "1.0.0", "--to-environment", "production"],
        "Computer says yes",
        &[request(
            "GET",
            "/matrix?q[][pacticipant]=Foo&q[][version]=1.0.0&latestby=cvpv&environment=production",
            200,
            "PactBroker::Api::Resources::Matrix",
            &[("resource_name", "matrix")],
        )],
    );
}

#[test]
fn describe_version_is_audited_as_index_then_version() {
    check_broker_command(
        "describe-version",
        &["--pacticipant", "Foo", "--version", "1.0.0"],
        "main",
        &[index(), pacticipant_version()],
    );
}

#[test]
fn list_latest_pact_versions_is_audited_as_latest_pacts() {
    check_broker_command(
        "list-latest-pact-versions",
        &[],
        "Foo",
        &[
            index(),
            request(
                "GET",
                "/pacts/latest",
                200,
                "PactBroker::Api::Resources::LatestPacts",
                &[("resource_name", "latest_pacts")],
            ),
        ],
    );
}

#[test]
fn a_pact_verifier_replay_is_audited_request_by_request() {
    let stack = AuditStack::start(StackOptions::default()).expect("the stack starts");
    let user_agent = "e2e-broker-verifier";
    let port = stack.envoy_url().rsplit(':').next().unwrap().to_string();
    let replay = paths::repo_root().join("tests/pacts/broker-client-replay.json");
    let header = format!("User-Agent={user_agent}");
    let (status, output) = run_pact(
        &[
            "verifier",
            "--file",
            replay.to_str().unwrap(),
            "--hostname",
            "127.0.0.1",
            "--port",
            &port,
            "--header",
            &header,
            "--no-colour",
        ],
        stack.dir(),
        "verifier",
    );
    assert!(
        status.success(),
        "pact verifier of broker-client-replay.json through Envoy exited with {status}:\n{output}"
    );

    let pacticipant = |method, target, status, name| {
        request(
            method,
            target,
            status,
            "PactBroker::Api::Resources::Pacticipant",
            &[("resource_name", "pacticipant"), ("pacticipant_name", name)],
        )
    };
    check_trail(
        &stack,
        user_agent,
        &[
            request(
                "GET",
                "/diagnostic/status/heartbeat",
                200,
                "PactBroker::Diagnostic::Resources::Heartbeat",
                &[("resource_name", "diagnostic_heartbeat")],
            ),
            request(
                "GET",
                "/pacticipants",
                200,
                "PactBroker::Api::Resources::Pacticipants",
                &[("resource_name", "pacticipants")],
            ),
            pacticipant("GET", "/pacticipants/Foo", 200, "Foo"),
            pacticipant("GET", "/pacticipants/Foo%20Bar", 200, "Foo Bar"),
            request(
                "POST",
                "/pacticipants",
                201,
                "PactBroker::Api::Resources::Pacticipants",
                &[("resource_name", "pacticipants")],
            ),
            pacticipant("PATCH", "/pacticipants/Foo", 200, "Foo"),
            request(
                "PUT",
                "/pacticipants/Foo/versions/1.0.0/tags/main",
                201,
                "PactBroker::Api::Resources::Tag",
                &[
                    ("resource_name", "pacticipant_version_tag"),
                    ("pacticipant_name", "Foo"),
                    ("pacticipant_version_number", "1.0.0"),
                    ("tag_name", "main"),
                ],
            ),
            request(
                "GET",
                "/pacts/provider/Bar/consumer/Foo/latest",
                200,
                "PactBroker::Api::Resources::LatestPact",
                &[("resource_name", "latest_pact_publication"), ("provider_name", "Bar"), ("consumer_name", "Foo")],
            ),
            pacticipant("DELETE", "/pacticipants/Baz", 204, "Baz"),
            pacticipant("GET", "/pacticipants/Nope", 404, "Nope"),
            // No broker route: the filter's built-in fallback type, not a routes.tsv row.
            request(
                "GET",
                "/no/such/route",
                404,
                "PactBroker::Api::Resources::NotFound",
                &[("resource_name", "not_found")],
            ),
        ],
    );
}
