//! The smallest keep-alive HTTP/1.1 client the timers need: one connection, one request at
//! a time, bodies framed by `Content-Length` (which is how the collector answers).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

/// One keep-alive connection.
pub struct Connection {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

/// A response: status, body, and the seconds of a `Retry-After` header (what a 503 asks).
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
    pub retry_after_secs: Option<u64>,
}

impl Connection {
    /// Connects, with timeouts so a stuck server ends the benchmark instead of hanging it.
    pub fn open(addr: SocketAddr) -> Result<Connection> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_write_timeout(Some(Duration::from_secs(30)))?;
        Ok(Connection { reader: BufReader::with_capacity(1 << 16, stream.try_clone()?), writer: stream })
    }

    /// Sends `head` (request line and headers, without the blank line) and `body`, and
    /// reads the whole response.
    pub fn exchange(&mut self, head: &str, body: &[u8]) -> Result<Response> {
        let mut request = Vec::with_capacity(head.len() + body.len() + 64);
        request.extend_from_slice(head.as_bytes());
        request.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        request.extend_from_slice(body);
        self.writer.write_all(&request).context("sending a request")?;
        self.read_response()
    }

    fn read_response(&mut self) -> Result<Response> {
        let mut line = String::new();
        self.reader.read_line(&mut line).context("reading the status line")?;
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| anyhow!("not an HTTP status line: {line:?}"))?;
        let mut length = None;
        let mut retry_after_secs = None;
        loop {
            line.clear();
            if self.reader.read_line(&mut line).context("reading a header")? == 0 {
                bail!("the connection closed inside the response headers");
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = Some(value.trim().parse::<usize>().context("a bad Content-Length")?);
                } else if name.eq_ignore_ascii_case("retry-after") {
                    retry_after_secs = value.trim().parse::<u64>().ok();
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    bail!("chunked responses are not supported by this timer");
                }
            }
        }
        let mut body = vec![0; length.unwrap_or(0)];
        self.reader.read_exact(&mut body).context("reading the response body")?;
        Ok(Response { status, body, retry_after_secs })
    }
}
