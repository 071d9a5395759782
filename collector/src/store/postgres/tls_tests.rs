//! TLS to PostgreSQL against a real server with ssl=on and a certificate made for the test:
//! the modes that check the server connect (and the connection is encrypted), and a wrong
//! CA, a wrong host name under `verify-full`, or a server without TLS are refused.

use super::schema;
use super::test_cluster::{fresh_database, fresh_tls_database, TlsDatabase};
use super::PgStore;
use crate::chain::signing::TrailSigner;
use crate::store::trail_store::TrailStore;
use crate::verify::from_postgres::verify_postgres;

/// `postgres://postgres@<host>:<port>/<db>?<params>`.
fn url(database: &TlsDatabase, host: &str, params: &str) -> String {
    format!("postgres://postgres@{host}:{}/{}?{params}", database.port, database.name)
}

/// Whether the pool's connection is encrypted, as the server sees it.
async fn encrypted(url: &str) -> Result<bool, String> {
    let pool = schema::pool(url).map_err(|error| error.to_string())?;
    let client = pool.get().await.map_err(|error| crate::store::StoreError::from(error).to_string())?;
    let row = client
        .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
        .await
        .map_err(|error| error.to_string())?;
    Ok(row.get(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_with_the_servers_ca_connects_encrypted_and_the_store_works_over_it() {
    let database = fresh_tls_database().await;
    let ca = database.ca.display().to_string();
    let url = url(&database, "localhost", &format!("sslmode=verify-full&sslrootcert={ca}"));
    assert_eq!(encrypted(&url).await, Ok(true));
    let store = PgStore::open(&url, Some(TrailSigner::from_seed([5; 32]))).await.expect("open over TLS");
    let event = serde_json::json!({
        "uuid": "16WlpdLpDMzfMYxLTZYXYw", "timestamp": "2026-11-30T05:00:00.000+00:00",
        "type": "PactBroker::Api::Resources::Pact", "db_user_id": null, "user_email": null,
        "payload": {"path": "/pacts", "queryString": "", "method": "GET", "userAgent": null, "referer": null,
                    "params": {}}
    });
    let body = serde_json::to_vec(&serde_json::json!({ "events": [event] })).expect("JSON");
    let rows = crate::batch::parse_batch(&body).expect("a valid event").rows;
    store.ingest(rows, None).await.expect("stored");
    store.shutdown().await.expect("stop; signs a checkpoint");
    let report = verify_postgres(&url, &TrailSigner::from_seed([5; 32]).verifier()).await.expect("verify over TLS");
    assert_eq!(report.events, 1);
    let plain = url.replace(&format!("sslmode=verify-full&sslrootcert={ca}"), "sslmode=disable");
    assert_eq!(encrypted(&plain).await, Ok(false), "the same server without TLS, for contrast");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_the_ca_did_not_sign_or_that_the_certificate_does_not_name_is_refused() {
    let database = fresh_tls_database().await;
    let (ca, other) = (database.ca.display().to_string(), database.other_ca.display().to_string());
    let wrong_ca = url(&database, "127.0.0.1", &format!("sslmode=verify-full&sslrootcert={other}"));
    let refused = encrypted(&wrong_ca).await.expect_err("another CA's server");
    assert!(refused.to_lowercase().contains("certificate"), "{refused}");
    let wrong_ca_chain_only = url(&database, "127.0.0.1", &format!("sslmode=verify-ca&sslrootcert={other}"));
    assert!(encrypted(&wrong_ca_chain_only).await.is_err(), "verify-ca checks the chain too");
    // The certificate names localhost and 127.0.0.1, not this name; the address is right.
    let misnamed =
        |mode: &str| url(&database, "db.wrong.example", &format!("hostaddr=127.0.0.1&sslmode={mode}&sslrootcert={ca}"));
    let refused = encrypted(&misnamed("verify-full")).await.expect_err("a name the certificate does not hold");
    assert!(refused.to_lowercase().contains("certificate"), "{refused}");
    assert_eq!(encrypted(&misnamed("verify-ca")).await, Ok(true), "verify-ca does not check the name");
    assert_eq!(encrypted(&misnamed("require")).await, Ok(true), "require with a root file is verify-ca");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_tls_is_refused_rather_than_used_in_plaintext() {
    let plaintext_server = fresh_database().await;
    let database = fresh_tls_database().await;
    let url = format!("{plaintext_server}?sslmode=verify-full&sslrootcert={}", database.ca.display());
    assert!(encrypted(&url).await.is_err(), "TLS was asked for; the server has none");
}
