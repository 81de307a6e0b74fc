//! The connection of a session to one of its peers, plain or TLS, and its two halves.
//!
//! Protocols upgrade in band: PostgreSQL's SSLRequest, MySQL's SSL capability and
//! SMTP's STARTTLS all start in clear on the same socket. A tap holds a
//! [`PeerStream`], upgrades it where its protocol says so, and splits it for its two
//! pumps. A plain stream splits into the socket's own halves, so a session without
//! TLS pays nothing for the abstraction.

use super::cert_identity::fingerprint;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tapline_store::SessionTls;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::{TlsAcceptor, TlsConnector, client, server};

/// A session's connection to its client or its upstream.
pub enum PeerStream {
    Plain(TcpStream),
    /// TLS in which the gateway is the server (towards a client).
    TlsServer(Box<server::TlsStream<TcpStream>>),
    /// TLS in which the gateway is the client (towards an upstream).
    TlsClient(Box<client::TlsStream<TcpStream>>),
    /// No connection any more: what an upgrade that failed midway leaves. Reads see
    /// the end of the stream, writes fail.
    Closed,
}

/// What a session's TLS connection turned out to be, for its recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// `TLSv1.3`, `TLSv1.2`.
    pub version: String,
    /// The IANA name of the cipher suite.
    pub cipher: String,
    /// The protocol agreed by ALPN, if any.
    pub alpn: Option<String>,
    /// The peer's certificate chain, leaf first (empty when it sent none).
    pub peer_certificates: Vec<CertificateDer<'static>>,
}

impl TlsInfo {
    /// The connection as a session's recording names it: version, cipher, ALPN and
    /// the client certificate's subject, if any.
    pub fn describe(&self) -> String {
        let mut out = format!("{} cipher {}", self.version, self.cipher);
        if let Some(alpn) = &self.alpn {
            out.push_str(&format!(" alpn {alpn}"));
        }
        if let Some(leaf) = self.peer_certificates.first() {
            out.push_str(&format!(" client_cert {}", fingerprint(leaf)));
        }
        out
    }

    /// The facts the session's row in `sessions` keeps: version, cipher, and the
    /// client certificate by subject and fingerprint, so an auditor can list who
    /// connected with which certificate without reading event text.
    pub fn recorded(&self) -> SessionTls {
        let client_cert = self.peer_certificates.first().map(|leaf| {
            let fingerprint = fingerprint(leaf);
            match x509_parser::parse_x509_certificate(leaf.as_ref()) {
                Ok((_, cert)) => format!("{} {fingerprint}", cert.subject()),
                Err(_) => fingerprint,
            }
        });
        SessionTls {
            version: self.version.clone(),
            cipher: self.cipher.clone(),
            client_cert,
        }
    }
}

impl PeerStream {
    /// The underlying socket, unless the stream is closed.
    pub fn tcp(&self) -> Option<&TcpStream> {
        match self {
            PeerStream::Plain(s) => Some(s),
            PeerStream::TlsServer(s) => Some(s.get_ref().0),
            PeerStream::TlsClient(s) => Some(s.get_ref().0),
            PeerStream::Closed => None,
        }
    }

    /// Upgrades this stream in place to TLS with the gateway as the client, for
    /// `name`; a failed handshake leaves it closed.
    pub async fn start_tls_client(
        &mut self,
        connector: &TlsConnector,
        name: ServerName<'static>,
    ) -> io::Result<()> {
        let plain = std::mem::replace(self, PeerStream::Closed);
        *self = plain.connect_tls(connector, name).await?;
        Ok(())
    }

    /// Upgrades this stream in place to TLS with the gateway as the server; a failed
    /// handshake leaves it closed.
    pub async fn start_tls_server(&mut self, acceptor: &TlsAcceptor) -> io::Result<()> {
        let plain = std::mem::replace(self, PeerStream::Closed);
        *self = plain.accept_tls(acceptor).await?;
        Ok(())
    }

    /// Runs the TLS handshake as the server on a plain stream.
    pub async fn accept_tls(self, acceptor: &TlsAcceptor) -> io::Result<Self> {
        match self {
            PeerStream::Plain(s) => Ok(PeerStream::TlsServer(Box::new(acceptor.accept(s).await?))),
            PeerStream::Closed => Err(closed()),
            _ => Err(already_tls()),
        }
    }

    /// Runs the TLS handshake as the client on a plain stream, for `name` (checked
    /// against the server's certificate as the connector's verifier says, and sent
    /// as SNI when it is a DNS name).
    pub async fn connect_tls(
        self,
        connector: &TlsConnector,
        name: ServerName<'static>,
    ) -> io::Result<Self> {
        match self {
            PeerStream::Plain(s) => Ok(PeerStream::TlsClient(Box::new(
                connector.connect(name, s).await?,
            ))),
            PeerStream::Closed => Err(closed()),
            _ => Err(already_tls()),
        }
    }

    /// The TLS version, cipher and peer certificates, when TLS is up.
    pub fn tls(&self) -> Option<TlsInfo> {
        let common: &tokio_rustls::rustls::CommonState = match self {
            PeerStream::Plain(_) | PeerStream::Closed => return None,
            PeerStream::TlsServer(s) => s.get_ref().1,
            PeerStream::TlsClient(s) => s.get_ref().1,
        };
        Some(TlsInfo {
            version: common
                .protocol_version()
                .and_then(|v| v.as_str())
                .unwrap_or("TLS")
                .replace('_', "."),
            cipher: common
                .negotiated_cipher_suite()
                .and_then(|c| c.suite().as_str())
                .unwrap_or("unknown")
                .to_string(),
            alpn: common
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            peer_certificates: common
                .peer_certificates()
                .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
                .unwrap_or_default(),
        })
    }

    /// Splits the stream for two pumps, one per direction.
    pub fn into_split(self) -> (PeerReader, PeerWriter) {
        match self {
            PeerStream::Plain(s) => {
                let (r, w) = s.into_split();
                (PeerReader::Plain(r), PeerWriter::Plain(w))
            }
            tls => {
                let (r, w) = tokio::io::split(tls);
                (PeerReader::Tls(r), PeerWriter::Tls(w))
            }
        }
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the connection is closed")
}

fn already_tls() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "the connection already runs TLS",
    )
}

impl From<TcpStream> for PeerStream {
    fn from(s: TcpStream) -> Self {
        PeerStream::Plain(s)
    }
}

/// The reading half of a [`PeerStream`].
pub enum PeerReader {
    Plain(OwnedReadHalf),
    Tls(tokio::io::ReadHalf<PeerStream>),
}

/// The writing half of a [`PeerStream`].
pub enum PeerWriter {
    Plain(OwnedWriteHalf),
    Tls(tokio::io::WriteHalf<PeerStream>),
}

impl AsyncRead for PeerStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PeerStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            PeerStream::TlsServer(s) => Pin::new(s).poll_read(cx, buf),
            PeerStream::TlsClient(s) => Pin::new(s).poll_read(cx, buf),
            PeerStream::Closed => Poll::Ready(Ok(())),
        }
    }
}

impl AsyncWrite for PeerStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            PeerStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            PeerStream::TlsServer(s) => Pin::new(s).poll_write(cx, buf),
            PeerStream::TlsClient(s) => Pin::new(s).poll_write(cx, buf),
            PeerStream::Closed => Poll::Ready(Err(closed())),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            PeerStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            PeerStream::TlsServer(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            PeerStream::TlsClient(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            PeerStream::Closed => Poll::Ready(Err(closed())),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            PeerStream::Plain(s) => s.is_write_vectored(),
            PeerStream::TlsServer(s) => s.is_write_vectored(),
            PeerStream::TlsClient(s) => s.is_write_vectored(),
            PeerStream::Closed => false,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PeerStream::Plain(s) => Pin::new(s).poll_flush(cx),
            PeerStream::TlsServer(s) => Pin::new(s).poll_flush(cx),
            PeerStream::TlsClient(s) => Pin::new(s).poll_flush(cx),
            PeerStream::Closed => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PeerStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            PeerStream::TlsServer(s) => Pin::new(s).poll_shutdown(cx),
            PeerStream::TlsClient(s) => Pin::new(s).poll_shutdown(cx),
            PeerStream::Closed => Poll::Ready(Ok(())),
        }
    }
}

impl AsyncRead for PeerReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PeerReader::Plain(s) => Pin::new(s).poll_read(cx, buf),
            PeerReader::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for PeerWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            PeerWriter::Plain(s) => Pin::new(s).poll_write(cx, buf),
            PeerWriter::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            PeerWriter::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            PeerWriter::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            PeerWriter::Plain(s) => s.is_write_vectored(),
            PeerWriter::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PeerWriter::Plain(s) => Pin::new(s).poll_flush(cx),
            PeerWriter::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PeerWriter::Plain(s) => Pin::new(s).poll_shutdown(cx),
            PeerWriter::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls;

    /// A loopback listener that runs one TLS handshake as the server with
    /// `acceptor`; its address.
    pub(crate) async fn serve_one_handshake(acceptor: TlsAcceptor) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            let _ = PeerStream::from(s).accept_tls(&acceptor).await;
        });
        addr
    }

    /// A TLS client configuration that trusts exactly `roots`.
    pub(crate) fn connector_trusting(
        roots: &[CertificateDer<'static>],
    ) -> io::Result<TlsConnector> {
        let mut store = tokio_rustls::rustls::RootCertStore::empty();
        for r in roots {
            store
                .add(r.clone())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
        let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(Arc::new(
            tokio_rustls::rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| io::Error::other(e.to_string()))?
        .with_root_certificates(store)
        .with_no_client_auth();
        Ok(TlsConnector::from(Arc::new(config)))
    }

    fn acceptor_for(name: &str) -> (TlsAcceptor, CertificateDer<'static>) {
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
        let der = cert.der().clone();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(signing_key.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![der.clone()], key)
        .unwrap();
        (TlsAcceptor::from(Arc::new(config)), der)
    }

    /// A clear-text exchange, then TLS on the same socket, then split halves that
    /// carry bytes both ways: what an SSLRequest upgrade does.
    #[tokio::test]
    async fn a_plain_stream_upgrades_in_band_and_splits() {
        let (acceptor, cert) = acceptor_for("localhost");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            let mut s = PeerStream::from(s);
            let mut ask = [0u8; 4];
            s.read_exact(&mut ask).await.unwrap();
            assert_eq!(&ask, b"TLS?");
            s.write_all(b"S").await.unwrap();
            let s = s.accept_tls(&acceptor).await.unwrap();
            let info = s.tls().expect("TLS is up");
            let (mut r, mut w) = s.into_split();
            let mut got = [0u8; 5];
            r.read_exact(&mut got).await.unwrap();
            w.write_all(&got).await.unwrap();
            w.flush().await.unwrap();
            info
        });
        let mut c = PeerStream::from(tokio::net::TcpStream::connect(addr).await.unwrap());
        assert!(c.tls().is_none());
        c.write_all(b"TLS?").await.unwrap();
        let mut yes = [0u8; 1];
        c.read_exact(&mut yes).await.unwrap();
        let connector = connector_trusting(&[cert]).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let c = c.connect_tls(&connector, name).await.unwrap();
        let (mut r, mut w) = c.into_split();
        w.write_all(b"hello").await.unwrap();
        w.flush().await.unwrap();
        let mut echo = [0u8; 5];
        r.read_exact(&mut echo).await.unwrap();
        assert_eq!(&echo, b"hello");
        let info = server.await.unwrap();
        assert!(info.version.starts_with("TLSv1."), "{info:?}");
        assert!(info.cipher.starts_with("TLS"), "{info:?}");
        assert!(info.peer_certificates.is_empty(), "no client certificate");
    }

    /// A certificate for another name fails the handshake, and a TLS stream is not
    /// upgraded twice.
    #[tokio::test]
    async fn a_wrong_name_fails_the_handshake() {
        let (acceptor, cert) = acceptor_for("db.example");
        let addr = serve_one_handshake(acceptor).await;
        let c = PeerStream::from(tokio::net::TcpStream::connect(addr).await.unwrap());
        let connector = connector_trusting(&[cert]).unwrap();
        let err = c
            .connect_tls(&connector, ServerName::try_from("localhost").unwrap())
            .await
            .err()
            .expect("the name does not match");
        assert!(err.to_string().contains("certificate"), "{err}");
    }
}
