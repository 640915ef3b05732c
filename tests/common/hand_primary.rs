//! A hand-made primary for replication tests: a listener our replica connects to, the handshake
//! answered as a primary does (PING, REPLCONF, then the replica's PSYNC), and the raw stream.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};

/// Reads one RESP command (an array of bulk strings) from a replica's side of the link.
pub fn read_command(r: &mut impl BufRead) -> Option<Vec<String>> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let n: usize = line.trim_end().strip_prefix('*')?.parse().ok()?;
    let mut argv = Vec::with_capacity(n);
    for _ in 0..n {
        line.clear();
        r.read_line(&mut line).ok()?;
        let len: usize = line.trim_end().strip_prefix('$')?.parse().ok()?;
        let mut arg = vec![0u8; len + 2];
        r.read_exact(&mut arg).ok()?;
        arg.truncate(len);
        argv.push(String::from_utf8_lossy(&arg).into_owned());
    }
    Some(argv)
}

/// `argv` as a RESP command.
pub fn resp(argv: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", argv.len()).into_bytes();
    for a in argv {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

/// The listening side, before a replica connects.
pub struct HandPrimary {
    pub listener: TcpListener,
    pub port: u16,
}

impl HandPrimary {
    pub fn bind() -> HandPrimary {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        HandPrimary { listener, port }
    }

    /// Accept the replica and answer its handshake up to its PSYNC (not answered): returns the
    /// stream to write to it and the reader of what it sends, and the PSYNC's arguments.
    pub fn accept(&self) -> (TcpStream, BufReader<TcpStream>, Vec<String>) {
        use std::io::Write;
        let (stream, _) = self.listener.accept().unwrap();
        let mut to = stream.try_clone().unwrap();
        let mut from = BufReader::new(stream);
        loop {
            let argv = read_command(&mut from).expect("the replica's handshake");
            match argv[0].to_ascii_uppercase().as_str() {
                "PING" => to.write_all(b"+PONG\r\n").unwrap(),
                "PSYNC" => return (to, from, argv),
                _ => to.write_all(b"+OK\r\n").unwrap(),
            }
        }
    }
}
