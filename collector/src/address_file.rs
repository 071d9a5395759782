//! The address file: once a server listening on port 0 is ready, the port it got is
//! written to a file a test harness polls for. The file appears whole or not at all
//! (written under a temporary name, synced, then renamed), so a reader never sees half an
//! address.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::Path;

/// Writes `address` as `ip:port` (no newline) to `path`, replacing any older file.
pub fn write_address_file(path: &Path, address: SocketAddr) -> io::Result<()> {
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the address file path has no file name"))?;
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut temporary_name = file_name.to_os_string();
    temporary_name.push(format!(".{}.tmp", std::process::id()));
    let temporary = path.with_file_name(temporary_name);
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(address.to_string().as_bytes())?;
    // Synced before the rename, so that after a crash the name holds the whole address.
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_ip_and_port_and_replaces_an_older_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("run/collector.addr");
        write_address_file(&path, "127.0.0.1:1".parse().expect("addr")).expect("first write");
        write_address_file(&path, "127.0.0.1:40123".parse().expect("addr")).expect("second write");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "127.0.0.1:40123");
        let leftovers = std::fs::read_dir(path.parent().expect("dir")).expect("list").count();
        assert_eq!(leftovers, 1, "temporary files were left behind");
    }
}
