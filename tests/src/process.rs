//! A child process of the stack: its output goes to a log file (so a failing test can
//! show it), and it is killed and reaped when dropped, so no test leaves servers behind;
//! on Linux it also gets SIGTERM when the thread that started it ends without dropping it.
//! Each child is the leader of its own process group, so a signal meant for the program that
//! started it (a terminal's Ctrl-C, `timeout`, both of which signal the whole foreground
//! group) does not reach it: that program decides how its children stop (`make demo` drains
//! Envoy first, which Envoy cannot answer once it has exited on the same Ctrl-C).
//! A log file is appended to across runs in the same folder (`make demo` keeps its folder),
//! so each process reads back only what it wrote itself: the log from where it started.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// A running child process and the file its stdout and stderr go to.
pub struct ManagedProcess {
    name: String,
    child: Child,
    log_path: PathBuf,
    /// Where this process's output starts in the log file.
    log_start: u64,
}

impl ManagedProcess {
    /// Starts `command` with stdout and stderr appended to `<log_dir>/<name>.log`.
    pub fn spawn(name: &str, mut command: Command, log_dir: &Path) -> Result<Self> {
        let log_path = log_dir.join(format!("{name}.log"));
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let log_start = log.metadata().with_context(|| format!("reading {}", log_path.display()))?.len();
        stop_with_parent(&mut command);
        own_process_group(&mut command);
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {name}: {command:?}"))?;
        Ok(Self { name: name.to_string(), child, log_path, log_start })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process has logged so far (not what earlier runs left in the file).
    pub fn log(&self) -> String {
        let all = std::fs::read(&self.log_path).unwrap_or_default();
        let start = usize::try_from(self.log_start).unwrap_or(usize::MAX).min(all.len());
        String::from_utf8_lossy(&all[start..]).into_owned()
    }

    /// Fails when the process has exited, quoting the end of its log.
    pub fn ensure_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited ({status}); its log ends:\n{}", self.name, tail(&self.log(), 40));
        }
        Ok(())
    }

    /// Waits until `ready` returns `Some`, checking that the process is still alive.
    pub fn wait_for<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut ready: impl FnMut(&Self) -> Option<T>,
    ) -> Result<T> {
        let deadline = Instant::now() + timeout;
        loop {
            self.ensure_running()?;
            if let Some(value) = ready(self) {
                return Ok(value);
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not become ready ({what}) within {timeout:?}; its log ends:\n{}",
                    self.name,
                    tail(&self.log(), 40)
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Sends SIGTERM and waits for the process to exit (SIGKILL after `grace`).
    pub fn stop(&mut self, grace: Duration) -> Result<std::process::ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(status);
        }
        signal(self.child.id(), "TERM");
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill()
    }

    /// Waits for the process to exit by itself (SIGKILL after `timeout`, which is then an
    /// error).
    pub fn wait_for_exit(&mut self, timeout: Duration) -> Result<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill()?;
        bail!("{} did not exit within {timeout:?}; its log ends:\n{}", self.name, tail(&self.log(), 40))
    }

    /// Kills the process at once (SIGKILL) and reaps it.
    pub fn kill(&mut self) -> Result<std::process::ExitStatus> {
        let _ = self.child.kill();
        Ok(self.child.wait()?)
    }
}

impl Drop for ManagedProcess {
    fn drop(&mut self) {
        let _ = self.stop(Duration::from_secs(5));
    }
}

/// Has the child get SIGTERM when the thread that started it ends, however it ends: a demo
/// killed with SIGKILL runs no destructors, and its servers would otherwise keep its ports
/// and its database.
#[cfg(target_os = "linux")]
fn stop_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: between fork and exec the closure only calls prctl, which allocates nothing and
    // touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn stop_with_parent(_command: &mut Command) {}

/// Makes the child the leader of a new process group (see the module's doc).
#[cfg(unix)]
fn own_process_group(command: &mut Command) {
    std::os::unix::process::CommandExt::process_group(command, 0);
}

#[cfg(not(unix))]
fn own_process_group(_command: &mut Command) {}

fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status();
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
