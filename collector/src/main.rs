//! The `audit-collector` binary: parse the command line, start logging to stderr, bind,
//! and run until Ctrl-C or SIGTERM. Everything else lives in the library.

use std::io::IsTerminal;

use anyhow::Context;
use audit_collector::cli::{Cli, Command};
use clap::Parser;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    match cli.command {
        Command::Serve(args) => {
            let settings = args.into_settings()?;
            let listener = TcpListener::bind(settings.listen).await.with_context(|| {
                format!("could not listen on {} (--listen / AUDIT_LISTEN); is the port in use?", settings.listen)
            })?;
            audit_collector::run(listener, settings.config, shutdown_signal()).await?;
        }
        Command::Token(args) => {
            audit_collector::token_command::run(args, &mut std::io::stdout(), &mut std::io::stderr()).await?;
        }
        Command::Tail(args) => {
            tokio::task::spawn_blocking(move || audit_collector::tail::run(&args, &mut std::io::stdout().lock()))
                .await??;
        }
        Command::Verify(args) => {
            let require_full_coverage = args.require_full_coverage;
            let outcome = audit_collector::verify::command::verify(args).await;
            let (text, code) = audit_collector::verify::command::verify_outcome(require_full_coverage, &outcome);
            if code == audit_collector::verify::exit_code::UNREADABLE {
                eprint!("{text}");
            } else {
                print!("{text}");
            }
            std::io::Write::flush(&mut std::io::stdout())?;
            std::process::exit(code);
        }
        Command::EnvoyDrain(args) => {
            let drained =
                tokio::task::spawn_blocking(move || audit_collector::envoy_drain::run(&args, &mut std::io::stdout()))
                    .await?;
            if let Err(error) = drained {
                eprintln!("audit-collector envoy-drain: {error}");
                std::process::exit(error.exit_code());
            }
        }
        Command::Migrate(args) => print!("{}", audit_collector::migrate_command::run(&args).await?),
        Command::PublicKey(args) => print!("{}", audit_collector::verify::command::run_public_key(&args)?),
        Command::Checkpoint(args) => {
            let line =
                tokio::task::spawn_blocking(move || audit_collector::verify::checkpoint_command::run_checkpoint(&args))
                    .await??;
            print!("{line}");
        }
        Command::RotateKey(args) => {
            print!("{}", audit_collector::verify::rotate_key_command::run_rotate_key(&args).await?)
        }
    }
    Ok(())
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM (what `docker stop` and Kubernetes send).
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(cause = %error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(cause = %error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutdown signal received");
}
