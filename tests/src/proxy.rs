//! A TCP proxy the test controls, to take the database away from the app and give it back
//! without touching the server the other tests share.
//!
//! While cut, every proxied connection is closed and new ones are accepted but never
//! answered (as a database host that vanished from the network: the client waits until its
//! own timeouts fire). Restoring closes those and forwards again.

use std::net::SocketAddr;

use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};

/// The proxy; dropping it closes every connection.
pub struct TcpProxy {
    address: SocketAddr,
    up: watch::Sender<bool>,
    accept: JoinHandle<()>,
}

impl TcpProxy {
    /// Listens on a free loopback port and forwards to `target`.
    ///
    /// # Panics
    /// When no port can be bound.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (up, watch_up) = watch::channel(true);
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                tokio::spawn(relay(inbound, target, watch_up.clone()));
            }
        });
        Self {
            address,
            up,
            accept,
        }
    }

    /// Where the app should connect.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Takes the database away.
    pub fn cut(&self) {
        self.up.send_replace(false);
    }

    /// Gives the database back.
    pub fn restore(&self) {
        self.up.send_replace(true);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        // Relays end when the sender is gone.
        self.accept.abort();
    }
}

async fn relay(mut inbound: TcpStream, target: SocketAddr, mut up: watch::Receiver<bool>) {
    if !*up.borrow_and_update() {
        // Black hole: hold the connection silently until the database is back.
        let _ = up.wait_for(|up| *up).await;
        return;
    }
    let Ok(mut outbound) = TcpStream::connect(target).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
        _ = up.wait_for(|up| !*up) => {}
    }
}
