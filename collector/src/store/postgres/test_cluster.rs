//! A throwaway PostgreSQL server for tests: `initdb` into a temporary directory, then
//! `postgres` on its own free port on 127.0.0.1, no system service. It is started once per
//! test process and stops when that process ends (a watcher shell ends it); each test gets
//! its own database from [`fresh_database`]. Run as root, the server runs as the
//! `postgres` user, which refuses to run as root. `make test` installs Debian's
//! `postgresql` when it is missing. A second server, started on first use, speaks TLS
//! with a certificate made for it by the `openssl` command ([`fresh_tls_database`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

struct Cluster {
    port: u16,
    _dir: tempfile::TempDir,
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
static TLS_CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
static DATABASES: AtomicUsize = AtomicUsize::new(0);

/// The URL of a new, empty database on the test server.
pub async fn fresh_database() -> String {
    let cluster = match CLUSTER.get_or_init(|| start(false)) {
        Ok(cluster) => cluster,
        Err(why) => panic!("no PostgreSQL for the tests: {why}"),
    };
    create_database(cluster).await
}

/// A new, empty database on the TLS test server.
pub struct TlsDatabase {
    /// The server's port on 127.0.0.1.
    pub port: u16,
    /// The database's name.
    pub name: String,
    /// The CA that signed the server's certificate (for `localhost` and `127.0.0.1`).
    pub ca: PathBuf,
    /// A CA that signed nothing the server has.
    pub other_ca: PathBuf,
}

/// A new, empty database on the test server that speaks TLS (plaintext too).
pub async fn fresh_tls_database() -> TlsDatabase {
    let cluster = match TLS_CLUSTER.get_or_init(|| start(true)) {
        Ok(cluster) => cluster,
        Err(why) => panic!("no PostgreSQL with TLS for the tests: {why}"),
    };
    let url = create_database(cluster).await;
    let name = url.rsplit('/').next().unwrap_or_default().to_owned();
    let dir = cluster._dir.path();
    TlsDatabase { port: cluster.port, name, ca: dir.join("ca.pem"), other_ca: dir.join("other-ca.pem") }
}

async fn create_database(cluster: &Cluster) -> String {
    let name = format!("audit_test_{}_{}", std::process::id(), DATABASES.fetch_add(1, Ordering::Relaxed));
    let admin = format!("postgres://postgres@127.0.0.1:{}/postgres", cluster.port);
    let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls).await.expect("connect as admin");
    let connection = tokio::spawn(connection);
    // The name is made here from digits, never from input.
    client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create the test database");
    drop(client);
    let _ = connection.await;
    format!("postgres://postgres@127.0.0.1:{}/{name}", cluster.port)
}

fn bin_dir() -> Result<PathBuf, String> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| {
            "PostgreSQL is not installed (no /usr/lib/postgresql); run `make test`, which installs Debian's postgresql"
                .to_owned()
        })?
        .filter_map(|entry| entry.ok().map(|entry| entry.path().join("bin")))
        .filter(|bin| bin.join("postgres").exists())
        .collect();
    versions.sort();
    versions.pop().ok_or_else(|| "no postgres binary under /usr/lib/postgresql/*/bin".to_owned())
}

fn running_as_root() -> bool {
    Command::new("id").arg("-u").output().map(|out| out.stdout.starts_with(b"0\n")).unwrap_or(false)
}

/// `program args…`, as the `postgres` user when this process is root.
fn as_server_user(program: &Path) -> Command {
    if running_as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|error| error.to_string())?;
    Ok(listener.local_addr().map_err(|error| error.to_string())?.port())
}

/// A CA, another CA, and a server certificate for `localhost` and 127.0.0.1 signed by the
/// first, made with the `openssl` command in `dir`; the server's files go to its user.
fn make_certificates(dir: &Path) -> Result<(), String> {
    let openssl = |args: &[&str]| -> Result<(), String> {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .map_err(|error| format!("openssl (Debian's openssl package): {error}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!("openssl {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr)))
        }
    };
    let new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    for ca in ["ca", "other-ca"] {
        let (key, pem, subject) = (format!("{ca}.key"), format!("{ca}.pem"), format!("/CN=audit test {ca}"));
        let mut args = vec!["req", "-x509", "-days", "2", "-subj", &subject, "-keyout", &key, "-out", &pem];
        args.extend(new_key);
        openssl(&args)?;
    }
    let mut request = vec!["req", "-subj", "/CN=localhost", "-keyout", "server.key", "-out", "server.csr"];
    request.extend(new_key);
    openssl(&request)?;
    std::fs::write(dir.join("server.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n").map_err(|e| e.to_string())?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        "-out",
        "server.pem",
    ])?;
    // PostgreSQL refuses a key others may read.
    let owner_only = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600);
    std::fs::set_permissions(dir.join("server.key"), owner_only).map_err(|error| error.to_string())?;
    if running_as_root() {
        let status = Command::new("chown").arg("postgres").args(["server.key", "server.pem"]).current_dir(dir).status();
        if !status.map(|status| status.success()).unwrap_or(false) {
            return Err("could not give the server's key to the postgres user".to_owned());
        }
    }
    Ok(())
}

fn start(tls: bool) -> Result<Cluster, String> {
    let bin = bin_dir()?;
    let dir = tempfile::Builder::new().prefix("audit-pg-").tempdir().map_err(|error| error.to_string())?;
    if running_as_root() {
        let status = Command::new("chown").arg("postgres").arg(dir.path()).status().map_err(|e| e.to_string())?;
        if !status.success() {
            return Err("could not give the temporary directory to the postgres user".to_owned());
        }
    }
    let data = dir.path().join("data");
    let initdb = as_server_user(&bin.join("initdb"))
        .arg("-D")
        .arg(&data)
        .args(["-A", "trust", "-U", "postgres", "--no-sync"])
        .stdout(Stdio::null())
        .output()
        .map_err(|error| format!("initdb: {error}"))?;
    if !initdb.status.success() {
        return Err(format!("initdb failed: {}", String::from_utf8_lossy(&initdb.stderr)));
    }
    let port = free_port()?;
    let mut ssl = String::new();
    if tls {
        make_certificates(dir.path())?;
        let file = |name: &str| dir.path().join(name).display().to_string();
        ssl = format!("-c ssl=on -c ssl_cert_file={} -c ssl_key_file={}", file("server.pem"), file("server.key"));
    }
    // The watcher ends the server once this test process is gone, so no server outlives it.
    let script = format!(
        "{postgres} -D {data} -p {port} -k {socket} -c listen_addresses=127.0.0.1 -c fsync=off \
           -c max_connections=300 {ssl} >{log} 2>&1 & server=$!; \
         while [ -d /proc/{pid} ]; do sleep 1; done; kill -INT $server; wait $server; rm -rf {dir}",
        postgres = bin.join("postgres").display(),
        data = data.display(),
        socket = dir.path().display(),
        log = dir.path().join("server.log").display(),
        pid = std::process::id(),
        dir = dir.path().display(),
    );
    as_server_user(Path::new("/bin/sh"))
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|error| format!("could not start postgres: {error}"))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = Command::new(bin.join("pg_isready"))
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q"])
            .status()
            .map(|status| status.success())
            .unwrap_or(false);
        if ready {
            return Ok(Cluster { port, _dir: dir });
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
            return Err(format!("postgres did not come up within 30 s; its log:\n{log}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
