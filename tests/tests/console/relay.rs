//! A loopback relay between the browser and the app that keeps every byte the app sent: what
//! the browser received over the network, headers and bodies, to search for a secret.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

/// The relay; dropping it stops accepting.
pub struct RecordingRelay {
    address: SocketAddr,
    received: Arc<Mutex<Vec<u8>>>,
    accept: JoinHandle<()>,
}

impl RecordingRelay {
    /// Listens on a free loopback port and forwards to `target` (`http://127.0.0.1:<port>`).
    pub async fn start(target: &str) -> Self {
        let target: SocketAddr = target
            .trim_start_matches("http://")
            .parse()
            .expect("the app's address");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&received);
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                tokio::spawn(relay(inbound, target, Arc::clone(&record)));
            }
        });
        Self {
            address,
            received,
            accept,
        }
    }

    /// `http://127.0.0.1:<port>`: what the browser opens.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Everything the app sent so far, as text (lossy: bodies here are JSON, HTML, CSS, JS).
    pub fn received(&self) -> String {
        String::from_utf8_lossy(&self.received.lock().unwrap()).into_owned()
    }
}

impl Drop for RecordingRelay {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn relay(inbound: TcpStream, target: SocketAddr, record: Arc<Mutex<Vec<u8>>>) {
    let Ok(outbound) = TcpStream::connect(target).await else {
        return;
    };
    let (mut from_browser, mut to_browser) = inbound.into_split();
    let (mut from_app, mut to_app) = outbound.into_split();
    let upstream = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut from_browser, &mut to_app).await;
        let _ = to_app.shutdown().await;
    });
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        match from_app.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                record.lock().unwrap().extend_from_slice(&buffer[..n]);
                if to_browser.write_all(&buffer[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = to_browser.shutdown().await;
    upstream.abort();
}
