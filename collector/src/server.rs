//! [`run`]: open the store, serve HTTP until `shutdown` resolves, then stop in order: no
//! new connections, in-flight requests finish (up to [`Config::shutdown_grace`]), the
//! writer commits everything already queued, and its thread is joined.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use audit_event::chain::TrailPublicKey;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::address_file::write_address_file;
use crate::chain::checkpoint::{expected_key_id, WrongSigner};
use crate::chain::signing::{default_key_path, TrailSigner};
use crate::completeness;
use crate::completeness::accounting::SenderPolicy;
use crate::config::Config;
use crate::error::Error;
use crate::http::{route, Shared};
use crate::metrics::Metrics;
use crate::store::open::open_trail;
use crate::store::{checkpointing, now_millis, retention, DatabaseLocation, StoreError, TrailStore};
use crate::witness_file::{WitnessFile, WitnessTask};

/// A client gets this long to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves the collector on `listener` until `shutdown` resolves, then shuts down gracefully.
///
/// Returns once every acknowledged batch is committed and the writer thread has ended.
/// Fails before serving when the configuration is invalid or the database cannot be opened
/// (for example, one written by a newer collector).
pub async fn run(listener: TcpListener, config: Config, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    config.validate()?;
    let address = listener.local_addr().map_err(Error::LocalAddress)?;
    let (store, trail_key) = open_store(&config).await?;
    let purger = retention::spawn(Arc::clone(&store), config.retention_days, config.retention_interval);
    let checkpointer = checkpointing::spawn(Arc::clone(&store), config.checkpoint_interval);
    let witness = match &config.witness_file {
        Some(path) => Some(WitnessTask::spawn(Arc::clone(&store), WitnessFile::open(path)?)),
        None => None,
    };
    let sender_checker = completeness::spawn(
        Arc::clone(&store),
        SenderPolicy {
            hole_grace_ms: millis(config.hole_grace),
            silence_ms: millis(config.sender_silence),
            started_at_ms: now_millis(),
            // A stopped sender's row is kept as long as the trail keeps events.
            forget_stopped_ms: i64::from(config.retention_days).saturating_mul(retention::MILLIS_PER_DAY),
        },
    );
    let shared = Arc::new(Shared {
        store: Arc::clone(&store),
        read_tokens: config.read_tokens.clone(),
        ingest_tokens: config.ingest_tokens.clone(),
        public_url: config.public_url.clone(),
        max_body_bytes: config.max_body_bytes,
        metrics: Arc::new(Metrics::default()),
        trail_key,
    });

    let served = match announce(&config, address) {
        Ok(()) => {
            tracing::info!(%address, database = %config.database.display(), "audit collector listening");
            serve(listener, shared, &config, shutdown).await;
            Ok(())
        }
        Err(error) => Err(error),
    };

    purger.abort();
    checkpointer.abort();
    sender_checker.abort();
    store.shutdown().await?;
    if let Some(witness) = witness {
        witness.finish(store.as_ref()).await;
    }
    tracing::info!("audit collector stopped; every acknowledged batch is committed");
    served
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Opens the store `--database` names and loads (or creates) the signing key, before
/// anything is served.
async fn open_store(config: &Config) -> Result<(Arc<dyn TrailStore>, TrailPublicKey), Error> {
    let (store, trail_key) = open_database(config).await?;
    refuse_wrong_signer(store.as_ref(), &trail_key).await?;
    Ok((store, trail_key))
}

/// A collector whose key is not the one the newest checkpoint expects would sign
/// checkpoints that `verify` rejects: it does not start, and says which key the trail
/// wants.
async fn refuse_wrong_signer(store: &dyn TrailStore, trail_key: &TrailPublicKey) -> Result<(), Error> {
    let newest = store.latest_checkpoint().await?;
    match expected_key_id(newest.as_ref()) {
        Some(expected) if expected != trail_key.key_id => {
            Err(StoreError::WrongSigningKey(WrongSigner { expected, found: trail_key.key_id.clone() }).into())
        }
        _ => Ok(()),
    }
}

async fn open_database(config: &Config) -> Result<(Arc<dyn TrailStore>, TrailPublicKey), Error> {
    let key_path = config.signing_key.clone().unwrap_or_else(|| default_key_path(&config.database));
    let load_signer = move || -> Result<TrailSigner, Error> {
        let signer = TrailSigner::load_or_create(&key_path)?;
        tracing::info!(key_id = signer.key_id(), key = %key_path.display(), "checkpoints are signed with this key");
        Ok(signer)
    };
    let location = DatabaseLocation::of(&config.database);
    open_trail(location, config.write_queue_batches, config.pg_max_unsealed_events, load_signer).await
}

fn announce(config: &Config, address: std::net::SocketAddr) -> Result<(), Error> {
    match &config.address_file {
        Some(path) => {
            write_address_file(path, address).map_err(|source| Error::AddressFile { path: path.clone(), source })
        }
        None => Ok(()),
    }
}

/// The accept loop; returns when `shutdown` resolved and open connections are done.
async fn serve(listener: TcpListener, shared: Arc<Shared>, config: &Config, shutdown: impl Future<Output = ()>) {
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(config.max_connections));
    let mut http = http1::Builder::new();
    // A batch whose sender closed the connection right after sending it (Envoy exiting
    // just after its filter's on_done) is still stored: by default hyper drops the
    // request being handled when the read side ends.
    http.timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT).half_close(true);
    tokio::pin!(shutdown);

    loop {
        // Past the connection limit, stop accepting: clients wait in the listen backlog.
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = Arc::clone(&connections).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::warn!(cause = %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let shared = Arc::clone(&shared);
        let service = service_fn(move |request| {
            let shared = Arc::clone(&shared);
            async move { Ok::<_, Infallible>(route(request, shared).await) }
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, cause = %error, "connection ended with an error");
            }
            drop(permit);
        });
    }

    drop(listener);
    tracing::info!("shutting down: no new connections; waiting for in-flight requests");
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(config.shutdown_grace) => {
            tracing::warn!(grace = ?config.shutdown_grace, "connections still open after the grace period; stopping anyway");
        }
    }
}
