//! A throwaway PostgreSQL server for end-to-end tests, from Debian's binaries (`make test`
//! installs `postgresql` when missing): `initdb` into a temporary directory, started and
//! stopped with `pg_ctl` on its own port on 127.0.0.1, no system service. A test can stop it
//! the hard way and start it again (crash recovery, as after a host failure). Run as root,
//! the server runs as the `postgres` user, which refuses to run as root. Dropping it stops it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{anyhow, bail, Context, Result};

/// A running (or stopped) throwaway server.
pub struct Postgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

fn running_as_root() -> bool {
    Command::new("id").arg("-u").output().map(|out| out.stdout.starts_with(b"0\n")).unwrap_or(false)
}

fn as_server_user(program: &Path) -> Command {
    if running_as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn checked(what: &str, output: std::io::Result<Output>) -> Result<Output> {
    let output = output.with_context(|| format!("running {what}"))?;
    if !output.status.success() {
        bail!("{what} failed: {}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    }
    Ok(output)
}

impl Postgres {
    /// Makes a new cluster and starts it.
    pub fn start() -> Result<Postgres> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .context("PostgreSQL is not installed (no /usr/lib/postgresql); `make test` installs Debian's postgresql")?
            .filter_map(|entry| entry.ok().map(|entry| entry.path().join("bin")))
            .filter(|bin| bin.join("pg_ctl").exists())
            .max()
            .ok_or_else(|| anyhow!("no pg_ctl under /usr/lib/postgresql/*/bin"))?;
        let dir = tempfile::Builder::new().prefix("audit-e2e-pg-").tempdir()?;
        if running_as_root() {
            checked("chown", Command::new("chown").arg("postgres").arg(dir.path()).output())?;
        }
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let postgres = Postgres { bin, dir, port };
        checked(
            "initdb",
            as_server_user(&postgres.bin.join("initdb"))
                .arg("-D")
                .arg(postgres.data())
                .args(["-A", "trust", "-U", "postgres"])
                .output(),
        )?;
        postgres.resume()?;
        Ok(postgres)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts the (stopped) server again on the same port and data, waiting until it answers.
    pub fn resume(&self) -> Result<()> {
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1", self.port, self.dir.path().display());
        checked(
            "pg_ctl start",
            as_server_user(&self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(self.data())
                .args(["-w", "-t", "60", "-o", &options, "-l"])
                .arg(self.dir.path().join("server.log"))
                .arg("start")
                .output(),
        )?;
        Ok(())
    }

    /// Stops the server at once, as a crash would (`pg_ctl stop -m immediate`): open
    /// transactions are lost and recovery runs at the next start.
    pub fn crash(&self) -> Result<()> {
        checked(
            "pg_ctl stop",
            as_server_user(&self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(self.data())
                .args(["-m", "immediate", "stop"])
                .output(),
        )?;
        Ok(())
    }

    /// Creates a database and returns its URL.
    pub fn create_database(&self, name: &str) -> Result<String> {
        self.sql("postgres", &format!("CREATE DATABASE {name}"))?;
        Ok(format!("postgres://postgres@127.0.0.1:{}/{name}", self.port))
    }

    /// Runs one SQL statement with `psql` and returns its unaligned output.
    pub fn sql(&self, database: &str, statement: &str) -> Result<String> {
        let output = checked(
            "psql",
            Command::new("psql")
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", "-d", database])
                .args(["-tAc", statement])
                .output(),
        )?;
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    /// The server's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.crash();
    }
}
