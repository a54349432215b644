//! A small raw HTTP/1.1 client: exact control over what is sent (chunked bodies, odd
//! headers) and a precise view of what comes back (framing, truncation).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// False when the body ended before its framing said it would (a short Content-Length
    /// body, or a chunked body without its final zero-length chunk).
    pub complete: bool,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub struct Connection {
    reader: BufReader<TcpStream>,
    port: u16,
}

impl Connection {
    pub fn open(port: u16) -> Connection {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to apache");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Connection {
            reader: BufReader::new(stream),
            port,
        }
    }

    pub fn send(&mut self, raw: &[u8]) {
        self.reader.get_mut().write_all(raw).expect("send request");
    }

    pub fn send_request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n",
            self.port
        );
        let has = |n: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() && !has("content-length") && !has("transfer-encoding") {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        self.send(head.as_bytes());
        if !body.is_empty() {
            self.send(body);
        }
    }

    /// One line of the head, decoded as ISO-8859-1 (what HTTP header bytes are).
    fn line(&mut self) -> Option<String> {
        let mut raw = Vec::new();
        match self.reader.read_until(b'\n', &mut raw) {
            Ok(0) | Err(_) => None,
            Ok(_) => {
                while raw.ends_with(b"\n") || raw.ends_with(b"\r") {
                    raw.pop();
                }
                Some(raw.iter().map(|&b| char::from(b)).collect())
            }
        }
    }

    /// Reads the status line and headers.
    pub fn read_head(&mut self) -> (u16, Vec<(String, String)>) {
        let status_line = self
            .line()
            .expect("connection closed before the status line");
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status code");
        let mut headers = Vec::new();
        while let Some(line) = self.line() {
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_owned(), v.trim().to_owned()));
            }
        }
        (status, headers)
    }

    /// Reads one chunk of a chunked body: `Some(data)` (empty for the final chunk) or
    /// `None` if the connection ended first.
    pub fn read_chunk(&mut self) -> Option<Vec<u8>> {
        let size_line = self.line()?;
        let size = usize::from_str_radix(size_line.split(';').next()?.trim(), 16).ok()?;
        let mut data = vec![0; size];
        self.reader.read_exact(&mut data).ok()?;
        self.line()?;
        Some(data)
    }

    /// Reads a whole response to `method`.
    pub fn read_response(&mut self, method: &str) -> Response {
        let (status, headers) = self.read_head();
        let header = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.clone())
        };
        let mut body = Vec::new();
        let no_body =
            method == "HEAD" || status == 204 || status == 304 || (100..200).contains(&status);
        let complete = if no_body {
            true
        } else if header("Transfer-Encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            loop {
                match self.read_chunk() {
                    Some(chunk) if chunk.is_empty() => break true,
                    Some(chunk) => body.extend_from_slice(&chunk),
                    None => break false,
                }
            }
        } else if let Some(len) = header("Content-Length").and_then(|v| v.parse::<usize>().ok()) {
            let mut buf = vec![0; len];
            let mut got = 0;
            while got < len {
                match self.reader.read(&mut buf[got..]) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got += n,
                }
            }
            buf.truncate(got);
            body = buf;
            got == len
        } else {
            let _ = self.reader.read_to_end(&mut body);
            true
        };
        Response {
            status,
            headers,
            body,
            complete,
        }
    }
}

pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut conn = Connection::open(port);
    conn.send_request(method, path, headers, body);
    conn.read_response(method)
}

pub fn get(port: u16, path: &str) -> Response {
    request(port, "GET", path, &[], b"")
}
