//! The floor's invocation loop: std only, HTTP/1.1 to the Runtime API by hand, the event
//! bytes echoed back without parsing them, each answer and the next `/next` in one write
//! (pipelined, as ironlambda does). No real function should be written like this; it shows
//! how close the runtimes get to what the machine allows.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Reads a response head; returns its Content-Length and request id, or `None` at EOF.
fn read_head(
    reader: &mut impl BufRead,
    line: &mut String,
) -> std::io::Result<Option<(usize, String)>> {
    let (mut length, mut id) = (0usize, String::new());
    loop {
        line.clear();
        if reader.read_line(line)? == 0 {
            return Ok(None);
        }
        let l = line.trim_end();
        if l.is_empty() {
            return Ok(Some((length, id)));
        }
        if let Some((name, value)) = l.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            } else if name.eq_ignore_ascii_case("lambda-runtime-aws-request-id") {
                id = value.trim().to_owned();
            }
        }
    }
}

/// Serves invocations on one connection to `api` until it closes, sleeping the thread for
/// `wait` (if any) before each answer.
pub fn serve(api: &str, wait: Option<Duration>) -> std::io::Result<()> {
    let stream = TcpStream::connect(api)?;
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let next = format!("GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: {api}\r\n\r\n");
    let mut line = String::new();
    let mut body = Vec::new();
    let mut out = Vec::new();
    writer.write_all(next.as_bytes())?;
    loop {
        let Some((length, id)) = read_head(&mut reader, &mut line)? else {
            return Ok(());
        };
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
        if let Some(wait) = wait {
            std::thread::sleep(wait);
        }
        out.clear();
        write!(
            out,
            "POST /2018-06-01/runtime/invocation/{id}/response HTTP/1.1\r\nHost: {api}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
        )?;
        out.extend_from_slice(&body);
        out.extend_from_slice(next.as_bytes());
        writer.write_all(&out)?;
        // Read (and ignore) the 202.
        let Some((reply_length, _)) = read_head(&mut reader, &mut line)? else {
            return Ok(());
        };
        let mut sink = vec![0u8; reply_length];
        reader.read_exact(&mut sink)?;
    }
}
