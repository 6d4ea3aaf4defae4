//! A peer that logs the client in and then stops reading: the client must keep
//! its timers and end every request, however much it has queued.

use std::time::Duration;

use deepstream_client::core::{ConnectionState, Options, RpcError};
use deepstream_client::tokio::Client;
use deepstream_protocol::{
    AuthAction, AuthMessage, ConnectionAction, ConnectionMessage, TopicMessage,
};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

use crate::common::LOOPBACK;

/// Accepts one WebSocket, accepts the challenge and the login, then holds the
/// socket without reading from it until `hold` has passed.
async fn stalled_peer(listener: TcpListener, hold: Duration) {
    let (stream, _) = listener.accept().await.expect("accept failed");
    let mut socket = tokio_tungstenite::accept_async(stream)
        .await
        .expect("WebSocket handshake failed");
    let replies = [
        TopicMessage::Connection(ConnectionMessage {
            action: ConnectionAction::Accept.into(),
            ..Default::default()
        }),
        TopicMessage::Auth(AuthMessage {
            action: AuthAction::AuthSuccessful.into(),
            ..Default::default()
        }),
    ];
    for reply in replies {
        // The challenge, then the login request.
        let _ = socket.next().await;
        socket
            .send(Message::Binary(reply.encode_frame()))
            .await
            .expect("sending to the client failed");
    }
    tokio::time::sleep(hold).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_server_does_not_block_client() {
    let listener = TcpListener::bind((LOOPBACK, 0)).await.unwrap();
    let url = format!("ws://{}/deepstream", listener.local_addr().unwrap());
    let peer = tokio::spawn(stalled_peer(listener, Duration::from_secs(30)));

    let mut options = Options::default();
    options.rpc_response_timeout = Duration::from_millis(500);
    let client = Client::connect(&url, options).await.unwrap();
    client.login("{}").await.unwrap();

    // Far more than the socket buffers take, so writes stall.
    let payload = format!("\"{}\"", "x".repeat(512 * 1024));
    for _ in 0..40 {
        let emitted = tokio::time::timeout(
            Duration::from_secs(5),
            client.event().emit("flood", &payload),
        )
        .await
        .expect("emit blocked");
        assert!(emitted.is_ok() || client.state() != ConnectionState::Open);
    }

    let result = tokio::time::timeout(Duration::from_secs(5), client.rpc().make("f", "1"))
        .await
        .expect("an RPC did not end while the socket was stalled");
    assert!(
        matches!(result, Err(RpcError::Timeout | RpcError::ClientOffline)),
        "{result:?}"
    );
    tokio::time::timeout(Duration::from_secs(15), client.close())
        .await
        .expect("close blocked");
    assert_eq!(client.state(), ConnectionState::Closed);
    peer.abort();
}
