//! A bounded load through Envoy for the tests that stop or reconfigure it mid-stream:
//! client threads send GETs on keep-alive connections, each marked `<prefix><n>` in its user agent, until a count
//! is reached or the test stops them, and remember when each 200 answer arrived, so the
//! trail can be checked against what Envoy answered ([`crate::accounting`]).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Result};

use crate::client::agent;

/// One answered request: its marker and when its answer arrived (ms since the epoch).
pub type Answered = (String, i64);

/// Milliseconds since the epoch, by this machine's clock (the one Envoy reads too).
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis() as i64)
}

/// Client threads sending requests until their count is sent or they are stopped.
pub struct Load {
    answered: Arc<Mutex<Vec<Answered>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    /// Starts `clients` threads sending `GET url`, `limit` requests in all.
    pub fn start(url: String, prefix: &str, clients: usize, limit: usize) -> Load {
        Load::paced(url, prefix, clients, limit, Duration::ZERO)
    }

    /// Like [`Load::start`], each client pausing `pause` after each answer (so a load that
    /// must last through a restart does not spend its count first).
    pub fn paced(url: String, prefix: &str, clients: usize, limit: usize, pause: Duration) -> Load {
        let answered = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let next = Arc::new(AtomicUsize::new(0));
        let threads = (0..clients)
            .map(|_| {
                let (url, answered, stop, next) = (url.clone(), answered.clone(), stop.clone(), next.clone());
                let prefix = prefix.to_owned();
                std::thread::spawn(move || {
                    let agent = agent();
                    while !stop.load(Ordering::Relaxed) {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= limit {
                            return;
                        }
                        let marker = format!("{prefix}{n}");
                        if let Ok(mut reply) = agent.get(&url).header("user-agent", &marker).call() {
                            // Read to the end, so the connection is kept for the next request.
                            let _ = reply.body_mut().read_to_vec();
                            if reply.status() == 200 {
                                answered.lock().unwrap_or_else(PoisonError::into_inner).push((marker, now_ms()));
                            }
                        }
                        std::thread::sleep(pause);
                    }
                })
            })
            .collect();
        Load { answered, stop, threads }
    }

    /// How many requests were answered 200 so far.
    pub fn count(&self) -> usize {
        self.answered.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Waits until `count` requests were answered, failing after `timeout`.
    pub fn wait_for(&self, count: usize, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while self.count() < count {
            if Instant::now() > deadline {
                bail!("only {} of {count} requests answered within {timeout:?}", self.count());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Stops the clients now and returns what was answered.
    pub fn finish(self) -> Vec<Answered> {
        self.stop.store(true, Ordering::Relaxed);
        self.join()
    }

    /// Waits for the clients to send their whole count and returns what was answered.
    pub fn join(self) -> Vec<Answered> {
        for thread in self.threads {
            let _ = thread.join();
        }
        std::mem::take(&mut *self.answered.lock().unwrap_or_else(PoisonError::into_inner))
    }
}
