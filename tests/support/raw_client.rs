//! A hand-written PostgreSQL client for the messages real drivers do not send
//! (fast-path calls, Execute without Describe, pipelined raw queries).

/// A client speaking the protocol by hand, for what real drivers never send.
pub struct RawClient(pub std::net::TcpStream);

impl RawClient {
    pub fn connect(port: u16) -> RawClient {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        s.write_all(&super::startup_packet("agent", "shop"))
            .unwrap();
        let mut c = RawClient(s);
        c.until_ready();
        c
    }

    /// (tag, body) of every message up to and including ReadyForQuery, or up to the
    /// end of the connection.
    pub fn until_ready(&mut self) -> Vec<(u8, Vec<u8>)> {
        use std::io::Read;
        let mut out = Vec::new();
        loop {
            let mut head = [0u8; 5];
            if self.0.read_exact(&mut head).is_err() {
                // The gateway closed the session (after a FATAL).
                return out;
            }
            let len = i32::from_be_bytes(head[1..5].try_into().unwrap()) as usize;
            let mut body = vec![0u8; len - 4];
            self.0.read_exact(&mut body).unwrap();
            let done = head[0] == b'Z';
            out.push((head[0], body));
            if done {
                return out;
            }
        }
    }

    /// Sends simple queries of raw bytes in one write (pipelined), and returns each
    /// one's reply.
    pub fn pipelined(&mut self, queries: &[&[u8]]) -> Vec<Vec<(u8, Vec<u8>)>> {
        use std::io::Write;
        let mut out = Vec::new();
        for q in queries {
            out.push(b'Q');
            out.extend_from_slice(&((q.len() + 5) as i32).to_be_bytes());
            out.extend_from_slice(q);
            out.push(0);
        }
        self.0.write_all(&out).unwrap();
        queries.iter().map(|_| self.until_ready()).collect()
    }

    /// Calls function `oid` with no arguments, text result.
    pub fn call(&mut self, oid: u32) -> Vec<(u8, Vec<u8>)> {
        use std::io::Write;
        self.0.write_all(&function_call(oid)).unwrap();
        self.until_ready()
    }

    /// Sends raw message bytes as they are, in one write.
    pub fn send(&mut self, bytes: &[u8]) {
        use std::io::Write;
        self.0.write_all(bytes).unwrap();
    }

    /// Runs `sql` with text parameters as Parse, Bind, Execute, Sync, and no
    /// Describe (as some drivers do): the reply up to ReadyForQuery.
    pub fn extended_without_describe(&mut self, sql: &str, params: &[&str]) -> Vec<(u8, Vec<u8>)> {
        use std::io::Write;
        let msg = |tag: u8, body: &[u8]| {
            let mut m = vec![tag];
            m.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
            m.extend_from_slice(body);
            m
        };
        let mut parse = vec![0u8];
        parse.extend_from_slice(sql.as_bytes());
        parse.push(0);
        parse.extend_from_slice(&0i16.to_be_bytes());
        let mut bind = vec![0u8, 0u8];
        bind.extend_from_slice(&0i16.to_be_bytes());
        bind.extend_from_slice(&(params.len() as i16).to_be_bytes());
        for p in params {
            bind.extend_from_slice(&(p.len() as i32).to_be_bytes());
            bind.extend_from_slice(p.as_bytes());
        }
        bind.extend_from_slice(&0i16.to_be_bytes());
        let mut out = msg(b'P', &parse);
        out.extend(msg(b'B', &bind));
        out.extend(msg(b'E', &[0, 0, 0, 0, 0]));
        out.extend(msg(b'S', &[]));
        self.0.write_all(&out).unwrap();
        self.until_ready()
    }

    /// The text values of every DataRow of a reply.
    pub fn rows(reply: &[(u8, Vec<u8>)]) -> Vec<Vec<Option<String>>> {
        reply
            .iter()
            .filter(|(t, _)| *t == b'D')
            .map(|(_, body)| {
                let n = i16::from_be_bytes([body[0], body[1]]) as usize;
                let mut at = 2;
                (0..n)
                    .map(|_| {
                        let len = i32::from_be_bytes(body[at..at + 4].try_into().unwrap());
                        at += 4;
                        if len < 0 {
                            return None;
                        }
                        let v = String::from_utf8_lossy(&body[at..at + len as usize]).into_owned();
                        at += len as usize;
                        Some(v)
                    })
                    .collect()
            })
            .collect()
    }
}

/// One message: its tag, length and body.
pub fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

/// A FunctionCall of `oid` with no arguments and a text result.
pub fn function_call(oid: u32) -> Vec<u8> {
    let mut body = oid.to_be_bytes().to_vec();
    body.extend_from_slice(&0i16.to_be_bytes()); // argument formats
    body.extend_from_slice(&0i16.to_be_bytes()); // arguments
    body.extend_from_slice(&0i16.to_be_bytes()); // result format: text
    message(b'F', &body)
}

/// Parse, Bind and Execute of `sql` (unnamed, no parameters), without Sync.
pub fn parse_bind_execute(sql: &str) -> Vec<u8> {
    let mut parse = vec![0u8];
    parse.extend_from_slice(sql.as_bytes());
    parse.push(0);
    parse.extend_from_slice(&0i16.to_be_bytes());
    let mut out = message(b'P', &parse);
    out.extend(message(b'B', &[0, 0, 0, 0, 0, 0, 0, 0]));
    out.extend(message(b'E', &[0, 0, 0, 0, 0]));
    out
}

/// The SQLSTATE of the first ErrorResponse of a reply.
pub fn sqlstate_of(reply: &[(u8, Vec<u8>)]) -> Option<String> {
    let (_, body) = reply.iter().find(|(t, _)| *t == b'E')?;
    body.split(|b| *b == 0)
        .find(|f| f.first() == Some(&b'C'))
        .map(|f| String::from_utf8_lossy(&f[1..]).into_owned())
}
