//! `make demo`, run as `make demo` runs it (the `audit-demo` binary), twice in one data
//! folder: both runs must put the broker stand-in behind Envoy (its real answer, not a 503
//! from a port an earlier run left behind), and the second run continues the first's trail.
//! The first run is killed with SIGKILL, so what it started must stop without its help; the
//! second is stopped as a terminal's Ctrl-C stops it (SIGINT to its whole process group), and
//! must still drain Envoy before stopping it.

// Test code: a panic here is a failed test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use audit_e2e::client;
use audit_event::AuditEvent;

const READ_TOKEN: &str = "demo-test-read-token";

/// A running demo; stopped with SIGTERM (so it stops what it started) when dropped.
struct Demo {
    child: Child,
    url: String,
    output: mpsc::Receiver<String>,
}

impl Demo {
    fn start(data_dir: &Path) -> Demo {
        // Its own process group, as a shell gives a foreground job, so `ctrl_c` can signal
        // the group as a terminal does.
        let mut child = Command::new(env!("CARGO_BIN_EXE_audit-demo"))
            .process_group(0)
            .current_dir(audit_e2e::paths::repo_root())
            .env("LISTEN_PORT", "0")
            .env("DEMO_DATA_DIR", data_dir)
            .env("AUDIT_TOKEN", READ_TOKEN)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the audit-demo binary starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (lines, output) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let mut demo = Demo { child, url: String::new(), output };
        let deadline = Instant::now() + Duration::from_secs(120);
        while demo.url.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = demo.output.recv_timeout(left).unwrap_or_else(|_| {
                let status = demo.child.try_wait().ok().flatten();
                panic!("the demo printed no URL within 120 s (exit: {status:?}); logs in {}", data_dir.display())
            });
            if let Some(rest) = line.split("Envoy with the audit filter at ").nth(1) {
                demo.url = rest.split(',').next().unwrap_or_default().to_owned();
            }
        }
        demo
    }

    /// SIGKILL: no shutdown code runs, so the stack must stop because its parent died.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let deadline = Instant::now() + Duration::from_secs(30);
        while client::send("GET", &format!("{}/pacticipants", self.url), &[], None).is_ok() {
            assert!(Instant::now() < deadline, "Envoy still answers 30 s after the demo was killed");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Ctrl-C in a terminal: SIGINT to every process of the demo's group. The demo must drain
    /// Envoy (which only works if Envoy did not get the SIGINT too), then exit 0 within 30 s.
    fn ctrl_c(mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-INT", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "the demo did not stop within 30 s of Ctrl-C");
            std::thread::sleep(Duration::from_millis(50));
        };
        // Everything it printed, up to the end of its output (the pipe closes when it exits).
        let mut printed = Vec::new();
        while let Ok(line) = self.output.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            printed.push(line);
        }
        assert!(status.success(), "the demo exited with {status} on Ctrl-C; it printed:\n{}", printed.join("\n"));
        assert!(
            printed.iter().any(|line| line.starts_with("drained: every event Envoy captured was delivered")),
            "Ctrl-C did not drain Envoy before stopping it; the demo printed:\n{}",
            printed.join("\n")
        );
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            signal(&self.child, "TERM");
            let deadline = Instant::now() + Duration::from_secs(20);
            while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn signal(child: &Child, name: &str) {
    let _ = Command::new("kill").arg(format!("-{name}")).arg(child.id().to_string()).status();
}

#[test]
fn the_demo_runs_twice_in_one_folder_with_the_broker_behind_envoy_both_times_even_after_a_kill() {
    let data = tempfile::Builder::new().prefix("audit-demo-test-").tempdir().expect("temp dir");
    for run in 1..=2 {
        let demo = Demo::start(data.path());
        let reply = client::send("GET", &format!("{}/pacticipants", demo.url), &[], None).expect("Envoy answers");
        assert_eq!(reply.status, 200, "run {run}: GET /pacticipants through Envoy: {}", reply.body);
        assert!(reply.body.contains("\"pacticipants\""), "run {run}: not the stand-in's answer: {}", reply.body);
        // Read through Envoy (so the read is audited too); batches arrive about every second.
        let is_broker_request = |event: &AuditEvent| event.payload.path == "/pacticipants";
        let trail = client::wait_for_trail(&demo.url, READ_TOKEN, Duration::from_secs(30), |events| {
            events.iter().filter(|event| is_broker_request(event)).count() >= run
        })
        .unwrap_or_else(|error| panic!("run {run}: {error}"));
        let stored = trail.iter().filter(|event| is_broker_request(event)).count();
        assert_eq!(stored, run, "run {run}: the trail holds one broker request per run");
        // The first run dies without a chance to clean up; the second stops on Ctrl-C.
        if run == 1 {
            demo.kill();
        } else {
            demo.ctrl_c();
        }
    }
}

#[test]
fn the_demo_refuses_to_run_from_a_directory_that_is_not_its_checkout() {
    let elsewhere = tempfile::tempdir().expect("temp dir");
    let refused = |command: &mut Command| {
        let output = command.env("LISTEN_PORT", "0").output().expect("runs");
        assert!(!output.status.success(), "it ran");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let demo = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_audit-demo"));
        command.env_remove("AUDIT_REPO_ROOT");
        command
    };
    let err = refused(demo().current_dir(elsewhere.path()));
    assert!(err.contains("is not an audit-sidecar checkout") && err.contains("make demo"), "{err}");
    let err = refused(demo().current_dir(audit_e2e::paths::repo_root()).env("AUDIT_REPO_ROOT", elsewhere.path()));
    assert!(err.contains("is not an audit-sidecar checkout"), "{err}");
    // A copy of the checkout (what the demo needs to find there), run without naming it.
    let copy = elsewhere.path().join("copy");
    std::fs::create_dir_all(copy.join("tests/pacts")).expect("mkdir");
    std::fs::copy(audit_e2e::paths::repo_root().join("envoy.yaml"), copy.join("envoy.yaml")).expect("copy");
    let err = refused(demo().current_dir(&copy));
    assert!(err.contains("was built in") && err.contains("AUDIT_REPO_ROOT"), "{err}");
}
