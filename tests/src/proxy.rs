//! A TCP proxy the test controls, to take the database away from the app and give it back
//! without touching the server the other tests share.
//!
//! While cut, every proxied connection is closed and new ones are accepted but never
//! answered (as a database host that vanished from the network: the client waits until its
//! own timeouts fire). Restoring closes those and forwards again.
//!
//! The proxy also counts round trips: each time a client speaks after the server did (or
//! first), which is what one statement's exchange costs however the bytes are split.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};

/// The proxy; dropping it closes every connection.
pub struct TcpProxy {
    address: SocketAddr,
    up: watch::Sender<bool>,
    accept: JoinHandle<()>,
    round_trips: Arc<AtomicU64>,
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
        let round_trips = Arc::new(AtomicU64::new(0));
        let counter = round_trips.clone();
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                tokio::spawn(relay(inbound, target, watch_up.clone(), counter.clone()));
            }
        });
        Self {
            address,
            up,
            accept,
            round_trips,
        }
    }

    /// Round trips over every proxied connection so far: the times a client sent after the
    /// server had answered it (or sent first on a new connection).
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::SeqCst)
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

async fn relay(
    mut inbound: TcpStream,
    target: SocketAddr,
    mut up: watch::Receiver<bool>,
    round_trips: Arc<AtomicU64>,
) {
    if !*up.borrow_and_update() {
        // Black hole: hold the connection silently until the database is back.
        let _ = up.wait_for(|up| *up).await;
        return;
    }
    let Ok(mut outbound) = TcpStream::connect(target).await else {
        return;
    };
    tokio::select! {
        _ = forward(&mut inbound, &mut outbound, &round_trips) => {}
        _ = up.wait_for(|up| !*up) => {}
    }
}

/// Copies both ways until either side closes, counting the client's turns to speak.
async fn forward(client: &mut TcpStream, server: &mut TcpStream, round_trips: &AtomicU64) {
    let (mut from_client, mut to_client) = client.split();
    let (mut from_server, mut to_server) = server.split();
    let (mut up, mut down) = (vec![0; 64 * 1024], vec![0; 64 * 1024]);
    // Whose turn it was last: a client chunk after a server one starts a round trip.
    let mut client_spoke_last = false;
    loop {
        tokio::select! {
            read = from_client.read(&mut up) => {
                let Ok(n @ 1..) = read else { return };
                if !client_spoke_last {
                    round_trips.fetch_add(1, Ordering::SeqCst);
                    client_spoke_last = true;
                }
                if to_server.write_all(&up[..n]).await.is_err() {
                    return;
                }
            }
            read = from_server.read(&mut down) => {
                let Ok(n @ 1..) = read else { return };
                client_spoke_last = false;
                if to_client.write_all(&down[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}
