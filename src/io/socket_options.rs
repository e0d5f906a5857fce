//! Options set on a freshly connected TCP socket: `TCP_NODELAY` and the OS's TCP keepalive.

use std::io;

use mio::net::TcpStream;
use socket2::SockRef;

use crate::config::{Config, TcpKeepalive};

/// Sets the socket options that `config` asks for on a connected socket.
///
/// # Errors
/// The OS's refusal of an option.
pub(super) fn configure(stream: &TcpStream, config: &Config) -> io::Result<()> {
    stream.set_nodelay(config.tcp_nodelay())?;
    if let Some(keepalive) = config.tcp_keepalive_settings() {
        set_keepalive(stream, keepalive)?;
    }
    Ok(())
}

fn set_keepalive(stream: &TcpStream, keepalive: TcpKeepalive) -> io::Result<()> {
    let params = socket2::TcpKeepalive::new().with_time(keepalive.idle);
    #[cfg(not(any(
        target_os = "openbsd",
        target_os = "haiku",
        target_os = "redox",
        target_os = "solaris",
        target_os = "vita"
    )))]
    let params = params
        .with_interval(keepalive.interval)
        .with_retries(keepalive.probes);
    SockRef::from(stream).set_tcp_keepalive(&params)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn keepalive_reaches_the_socket() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let std_stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let stream = TcpStream::from_std(std_stream);
        let socket = SockRef::from(&stream);
        assert!(!socket.keepalive().unwrap());

        let config = Config::builder()
            .tcp_keepalive(Duration::from_secs(7), Duration::from_secs(3), 5)
            .tcp_nodelay(false)
            .build()
            .unwrap();
        configure(&stream, &config).unwrap();
        assert!(socket.keepalive().unwrap());
        assert_eq!(socket.tcp_keepalive_time().unwrap(), Duration::from_secs(7));
        assert_eq!(
            socket.tcp_keepalive_interval().unwrap(),
            Duration::from_secs(3)
        );
        assert_eq!(socket.tcp_keepalive_retries().unwrap(), 5);
        assert!(!stream.nodelay().unwrap());
    }
}
