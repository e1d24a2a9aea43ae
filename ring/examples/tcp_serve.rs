//! Serves the messages of a ring to TCP clients, with tokio: one task reads the ring without
//! a blocked thread (`recv_async`), and every connected client receives each message that
//! arrives while it is connected, one per line.
//!
//! ```sh
//! cargo run --release --features tokio --example tcp_serve -- /dev/shm/demo 127.0.0.1:7000 &
//! nc 127.0.0.1 7000 &                                   # as many clients as you like
//! ./target/release/producer /dev/shm/demo < some-lines.txt
//! ```
//!
//! The ring is consumed whether or not clients are connected (this is a fan-out, not a
//! queue): a client that falls more than `LAG_LIMIT` messages behind is disconnected, so that a slow
//! client can never stall the producer. The server stops at the end of the stream, when the
//! producer dies, or on Ctrl-C.

use ringfile::Ring;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::broadcast;

/// How far (in messages) a client may fall behind before it is disconnected.
const LAG_LIMIT: usize = 65_536;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(addr)) = (args.next(), args.next()) else {
        eprintln!("usage: tcp_serve RING ADDRESS   (e.g. /dev/shm/demo 127.0.0.1:7000)");
        std::process::exit(2);
    };
    let mut consumer = Ring::options().open_or_create(&path)?.consumer()?;
    let listener = TcpListener::bind(&addr).await?;
    eprintln!("tcp_serve: serving {path} on {addr}");
    let (tx, _) = broadcast::channel::<Arc<[u8]>>(LAG_LIMIT);

    let accepting = {
        let tx = tx.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, peer)) = listener.accept().await else {
                    continue;
                };
                let mut rx = tx.subscribe();
                tokio::spawn(async move {
                    // Until the client goes away, falls too far behind, or the stream ends.
                    while let Ok(msg) = rx.recv().await {
                        if socket.write_all(&msg).await.is_err()
                            || socket.write_all(b"\n").await.is_err()
                        {
                            break;
                        }
                    }
                    eprintln!("tcp_serve: {peer} disconnected");
                });
            }
        })
    };

    let outcome = loop {
        tokio::select! {
            received = consumer.recv_async() => match received {
                // Copied once into a shared buffer for every client; the ring's space is
                // released when `msg` is dropped, at the end of this arm.
                Ok(Some(msg)) => {
                    let _ = tx.send(Arc::from(&*msg)); // no client connected: dropped
                }
                Ok(None) => break Ok("end of stream"),
                // The producer died or aborted the stream, or the ring is damaged.
                Err(e) => break Err(e),
            },
            _ = tokio::signal::ctrl_c() => break Ok("interrupted"),
        }
    };
    accepting.abort();
    match outcome {
        Ok(why) => {
            eprintln!("tcp_serve: {why}");
            Ok(())
        }
        Err(e) => {
            eprintln!("tcp_serve: {e}");
            std::process::exit(1);
        }
    }
}
