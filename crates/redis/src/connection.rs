//! One TCP connection to a Redis server: connect (with AUTH and SELECT), send a batch of
//! commands in one write, read their replies, every step bounded by the endpoint's timeout.

use crate::resp::{self, ProtocolError, Reply};
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Where a store's Redis server is and how to log in to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub db: u32,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Bounds connecting and each read or write.
    pub timeout: Duration,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "redis://{}:{}/{}", self.host, self.port, self.db)
    }
}

/// Why a batch did not complete. `Io` with `nothing_received` is the case where the
/// server may never have seen the commands (an idle connection it had closed).
#[derive(Debug)]
pub(crate) enum Fault {
    Io {
        error: io::Error,
        nothing_received: bool,
    },
    Protocol(ProtocolError),
    /// The server refused the login or the database.
    Setup(String),
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Io { error, .. } if error.kind() == io::ErrorKind::WouldBlock => {
                f.write_str("timed out")
            }
            Fault::Io { error, .. } => write!(f, "{error}"),
            Fault::Protocol(e) => write!(f, "{e}"),
            Fault::Setup(e) => f.write_str(e),
        }
    }
}

pub(crate) struct Connection {
    stream: TcpStream,
    received: Vec<u8>,
    out: Vec<u8>,
}

fn io(error: io::Error) -> Fault {
    Fault::Io {
        error,
        nothing_received: false,
    }
}

impl Connection {
    pub fn open(endpoint: &Endpoint) -> Result<Connection, Fault> {
        let addresses = (endpoint.host.as_str(), endpoint.port)
            .to_socket_addrs()
            .map_err(io)?;
        let mut last = io::Error::new(io::ErrorKind::NotFound, "host has no address");
        let stream = addresses
            .into_iter()
            .find_map(|a| match TcpStream::connect_timeout(&a, endpoint.timeout) {
                Ok(s) => Some(s),
                Err(e) => {
                    last = e;
                    None
                }
            })
            .ok_or_else(|| io(last))?;
        stream.set_nodelay(true).map_err(io)?;
        stream
            .set_read_timeout(Some(endpoint.timeout))
            .map_err(io)?;
        stream
            .set_write_timeout(Some(endpoint.timeout))
            .map_err(io)?;
        let mut connection = Connection {
            stream,
            received: Vec::with_capacity(16 << 10),
            out: Vec::with_capacity(4 << 10),
        };
        let mut setup: Vec<Vec<&[u8]>> = Vec::new();
        if let Some(password) = &endpoint.password {
            match &endpoint.username {
                Some(user) => setup.push(vec![b"AUTH", user.as_bytes(), password.as_bytes()]),
                None => setup.push(vec![b"AUTH", password.as_bytes()]),
            }
        }
        let db = endpoint.db.to_string();
        if endpoint.db != 0 {
            setup.push(vec![b"SELECT", db.as_bytes()]);
        }
        if !setup.is_empty() {
            let commands: Vec<&[&[u8]]> = setup.iter().map(Vec::as_slice).collect();
            for reply in connection.run(&commands)? {
                if let Reply::Error(e) = reply {
                    return Err(Fault::Setup(e));
                }
            }
        }
        Ok(connection)
    }

    /// Sends `commands` in one write and returns their replies in order.
    pub fn run(&mut self, commands: &[&[&[u8]]]) -> Result<Vec<Reply>, Fault> {
        self.out.clear();
        for command in commands {
            resp::encode(&mut self.out, command);
        }
        self.stream
            .write_all(&self.out)
            .map_err(|error| Fault::Io {
                nothing_received: true,
                error,
            })?;
        let mut replies = Vec::with_capacity(commands.len());
        let mut got_bytes = false;
        while replies.len() < commands.len() {
            match resp::parse(&self.received).map_err(Fault::Protocol)? {
                Some((reply, used)) => {
                    self.received.drain(..used);
                    replies.push(reply);
                }
                None => {
                    let mut chunk = [0u8; 16 << 10];
                    let n = match self.stream.read(&mut chunk) {
                        Ok(0) => Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
                        Ok(n) => Ok(n),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => Err(e),
                    }
                    .map_err(|error| Fault::Io {
                        nothing_received: !got_bytes,
                        error,
                    })?;
                    got_bytes = true;
                    self.received.extend_from_slice(&chunk[..n]);
                }
            }
        }
        Ok(replies)
    }
}
