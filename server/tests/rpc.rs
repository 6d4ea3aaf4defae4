//! Remote procedure calls: providers, requests, responses, timeouts and
//! connections that close in the middle of a request.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{QUIET, RECV_TIMEOUT, RawClient, Received, TestServer};
use deepstream_protocol::{RpcAction, RpcMessage, TopicMessage};
use deepstream_server::auth::{AuthFuture, AuthOutcome, Authenticator, ConnectionData};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

fn rpc(action: RpcAction, name: &str, correlation_id: &str) -> RpcMessage {
    RpcMessage {
        action: action.into(),
        name: name.into(),
        correlation_id: correlation_id.into(),
        ..Default::default()
    }
}

fn with_data(mut message: RpcMessage, data: &[u8]) -> RpcMessage {
    message.data = Bytes::copy_from_slice(data);
    message
}

fn rpc_error(
    action: RpcAction,
    original_action: RpcAction,
    name: &str,
    correlation_id: &str,
) -> RpcMessage {
    RpcMessage {
        original_action: original_action.into(),
        is_error: true,
        ..rpc(action, name, correlation_id)
    }
}

/// Provides `name` in a bulk PROVIDE and checks the ack.
async fn provide(provider: &mut RawClient, name: &str) {
    let message = RpcMessage {
        action: RpcAction::Provide.into(),
        names: vec![name.into()],
        correlation_id: "provide".into(),
        ..Default::default()
    };
    provider.send(TopicMessage::Rpc(message)).await;
    let ack = RpcMessage {
        action: RpcAction::Provide.into(),
        correlation_id: "provide".into(),
        is_ack: true,
        ..Default::default()
    };
    assert_eq!(
        provider.recv_rpc().await,
        ack,
        "{}: provide ack",
        provider.label()
    );
}

async fn send_rpc(client: &mut RawClient, message: RpcMessage) {
    client.send(TopicMessage::Rpc(message)).await;
}

/// Returns the client that receives a message first, the other client, and the message.
async fn first_to_receive<'a>(
    a: &'a mut RawClient,
    b: &'a mut RawClient,
) -> (&'a mut RawClient, &'a mut RawClient, RpcMessage) {
    let (first_is_a, received) = tokio::select! {
        received = a.next(RECV_TIMEOUT) => (true, received),
        received = b.next(RECV_TIMEOUT) => (false, received),
    };
    let message = match received {
        Received::Message(TopicMessage::Rpc(message)) => message,
        other => panic!("expected an RPC message at one of two providers, received {other:?}"),
    };
    if first_is_a {
        (a, b, message)
    } else {
        (b, a, message)
    }
}

/// Logs every user in under its `username` and returns `{"user": username}` as client data.
struct ClientDataPerUser;

impl Authenticator for ClientDataPerUser {
    fn authenticate<'a>(
        &'a self,
        _connection: &'a ConnectionData,
        auth_data: &'a Map<String, Value>,
    ) -> AuthFuture<'a> {
        let user = auth_data
            .get("username")
            .and_then(Value::as_str)
            .unwrap_or("nobody")
            .to_owned();
        let client_data = Some(json!({ "user": user }));
        Box::pin(std::future::ready(AuthOutcome::Accepted {
            user,
            client_data,
            server_data: None,
        }))
    }
}

#[tokio::test]
async fn provide_is_acked() {
    let server = TestServer::start(|_| {}).await;
    let mut provider = server.login("provider").await;

    provide(&mut provider, "add").await;

    provider.expect_silence(QUIET).await;
}

#[tokio::test]
async fn request_reaches_provider() {
    let server = TestServer::start(|_| {}).await;
    let mut provider = server.login("provider").await;
    provide(&mut provider, "add").await;
    let mut requestor = server.login("requestor").await;

    send_rpc(
        &mut requestor,
        with_data(rpc(RpcAction::Request, "add", "c1"), b"[1,2]"),
    )
    .await;

    assert_eq!(
        provider.recv_rpc().await,
        with_data(rpc(RpcAction::Request, "add", "c1"), b"[1,2]")
    );
    requestor.expect_silence(QUIET).await;
}

#[tokio::test]
async fn accept_and_response_forwarded() {
    let server = TestServer::start(|_| {}).await;
    let mut provider = server.login("provider").await;
    provide(&mut provider, "add").await;
    let mut requestor = server.login("requestor").await;
    send_rpc(
        &mut requestor,
        with_data(rpc(RpcAction::Request, "add", "c1"), b"[1,2]"),
    )
    .await;
    provider.recv_rpc().await;

    send_rpc(&mut provider, rpc(RpcAction::Accept, "add", "c1")).await;
    assert_eq!(
        requestor.recv_rpc().await,
        rpc(RpcAction::Accept, "add", "c1")
    );
    send_rpc(
        &mut provider,
        with_data(rpc(RpcAction::Response, "add", "c1"), b"3"),
    )
    .await;

    assert_eq!(
        requestor.recv_rpc().await,
        with_data(rpc(RpcAction::Response, "add", "c1"), b"3")
    );
    requestor.expect_silence(QUIET).await;
    provider.expect_silence(QUIET).await;
}

#[tokio::test]
async fn second_response_is_unknown() {
    let server = TestServer::start(|_| {}).await;
    let mut provider = server.login("provider").await;
    provide(&mut provider, "add").await;
    let mut requestor = server.login("requestor").await;
    send_rpc(&mut requestor, rpc(RpcAction::Request, "add", "c1")).await;
    provider.recv_rpc().await;
    send_rpc(&mut provider, rpc(RpcAction::Accept, "add", "c1")).await;
    send_rpc(
        &mut provider,
        with_data(rpc(RpcAction::Response, "add", "c1"), b"3"),
    )
    .await;
    requestor.recv_rpc().await;
    requestor.recv_rpc().await;

    send_rpc(
        &mut provider,
        with_data(rpc(RpcAction::Response, "add", "c1"), b"4"),
    )
    .await;

    assert_eq!(
        provider.recv_rpc().await,
        rpc_error(
            RpcAction::InvalidRpcCorrelationId,
            RpcAction::Response,
            "add",
            "c1"
        )
    );
    requestor.expect_silence(QUIET).await;
}

#[tokio::test]
async fn request_error_forwarded() {
    let server = TestServer::start(|_| {}).await;
    let mut provider = server.login("provider").await;
    provide(&mut provider, "divide").await;
    let mut requestor = server.login("requestor").await;
    send_rpc(
        &mut requestor,
        with_data(rpc(RpcAction::Request, "divide", "c1"), b"[1,0]"),
    )
    .await;
    provider.recv_rpc().await;
    send_rpc(&mut provider, rpc(RpcAction::Accept, "divide", "c1")).await;
    requestor.recv_rpc().await;

    let failure = with_data(
        rpc(RpcAction::RequestError, "divide", "c1"),
        br#""division by zero""#,
    );
    send_rpc(&mut provider, failure.clone()).await;

    assert_eq!(requestor.recv_rpc().await, failure);
    requestor.expect_silence(QUIET).await;
}

#[tokio::test]
async fn reject_moves_to_other_provider() {
    let server = TestServer::start(|_| {}).await;
    let mut one = server.login("provider-one").await;
    let mut two = server.login("provider-two").await;
    provide(&mut one, "add").await;
    provide(&mut two, "add").await;
    let mut requestor = server.login("requestor").await;
    let request = with_data(rpc(RpcAction::Request, "add", "c1"), b"[1,2]");
    send_rpc(&mut requestor, request.clone()).await;

    let (first, second, received) = first_to_receive(&mut one, &mut two).await;
    assert_eq!(received, request);
    send_rpc(first, rpc(RpcAction::Reject, "add", "c1")).await;

    assert_eq!(second.recv_rpc().await, request);
    send_rpc(second, rpc(RpcAction::Accept, "add", "c1")).await;
    send_rpc(
        second,
        with_data(rpc(RpcAction::Response, "add", "c1"), b"3"),
    )
    .await;
    assert_eq!(
        requestor.recv_rpc().await,
        rpc(RpcAction::Accept, "add", "c1")
    );
    assert_eq!(
        requestor.recv_rpc().await,
        with_data(rpc(RpcAction::Response, "add", "c1"), b"3")
    );
    first.expect_silence(QUIET).await;
}

#[tokio::test]
async fn reject_by_all_is_no_provider() {
    let server = TestServer::start(|_| {}).await;
    let mut one = server.login("provider-one").await;
    let mut two = server.login("provider-two").await;
    provide(&mut one, "add").await;
    provide(&mut two, "add").await;
    let mut requestor = server.login("requestor").await;
    send_rpc(&mut requestor, rpc(RpcAction::Request, "add", "c1")).await;

    let (first, second, _) = first_to_receive(&mut one, &mut two).await;
    send_rpc(first, rpc(RpcAction::Reject, "add", "c1")).await;
    assert_eq!(second.recv_rpc().await.action(), RpcAction::Request);
    send_rpc(second, rpc(RpcAction::Reject, "add", "c1")).await;

    assert_eq!(
        requestor.recv_rpc().await,
        rpc(RpcAction::NoRpcProvider, "add", "c1")
    );
    requestor.expect_silence(QUIET).await;
    first.expect_silence(QUIET).await;
    second.expect_silence(QUIET).await;
}

#[tokio::test]
async fn request_without_provider_fails() {
    let server = TestServer::start(|_| {}).await;
    let mut requestor = server.login("requestor").await;

    send_rpc(
        &mut requestor,
        rpc(RpcAction::Request, "nobody-provides", "c1"),
    )
    .await;

    assert_eq!(
        requestor.recv_rpc().await,
        rpc(RpcAction::NoRpcProvider, "nobody-provides", "c1")
    );
    requestor.expect_silence(QUIET).await;
}

#[tokio::test]
async fn unprovided_name_has_no_provider() {
    let server = TestServer::start(|_| {}).await;
    let mut provider = server.login("provider").await;
    provide(&mut provider, "add").await;
    let unprovide = RpcMessage {
        action: RpcAction::Unprovide.into(),
        names: vec!["add".into()],
        correlation_id: "u".into(),
        ..Default::default()
    };
    send_rpc(&mut provider, unprovide).await;
    let ack = RpcMessage {
        action: RpcAction::Unprovide.into(),
        correlation_id: "u".into(),
        is_ack: true,
        ..Default::default()
    };
    assert_eq!(provider.recv_rpc().await, ack);
    let mut requestor = server.login("requestor").await;

    send_rpc(&mut requestor, rpc(RpcAction::Request, "add", "c1")).await;

    assert_eq!(
        requestor.recv_rpc().await,
        rpc(RpcAction::NoRpcProvider, "add", "c1")
    );
    provider.expect_silence(QUIET).await;
}

#[tokio::test]
async fn accept_timeout_reaches_requestor() {
    let ack_timeout = Duration::from_millis(100);
    let server = TestServer::start(|config| {
        config.rpc.ack_timeout = ack_timeout;
        config.rpc.response_timeout = Duration::from_secs(3);
    })
    .await;
    let mut provider = server.login("provider").await;
    provide(&mut provider, "slow").await;
    let mut requestor = server.login("requestor").await;
    let sent = Instant::now();
    send_rpc(&mut requestor, rpc(RpcAction::Request, "slow", "c1")).await;
    provider.recv_rpc().await;

    let timeout = requestor.recv_rpc().await;

    let elapsed = sent.elapsed();
    assert_eq!(timeout, rpc(RpcAction::AcceptTimeout, "slow", "c1"));
    assert!(
        elapsed >= ack_timeout - Duration::from_millis(20),
        "timed out after only {elapsed:?}"
    );
    send_rpc(&mut provider, rpc(RpcAction::Accept, "slow", "c1")).await;
    assert_eq!(
        provider.recv_rpc().await,
        rpc_error(
            RpcAction::InvalidRpcCorrelationId,
            RpcAction::Accept,
            "slow",
            "c1"
        )
    );
    requestor.expect_silence(QUIET).await;
}

#[tokio::test]
async fn response_timeout_reaches_requestor() {
    let response_timeout = Duration::from_millis(200);
    let server = TestServer::start(|config| {
        config.rpc.ack_timeout = Duration::from_secs(3);
        config.rpc.response_timeout = response_timeout;
    })
    .await;
    let mut provider = server.login("provider").await;
    provide(&mut provider, "slow").await;
    let mut requestor = server.login("requestor").await;
    let sent = Instant::now();
    send_rpc(&mut requestor, rpc(RpcAction::Request, "slow", "c1")).await;
    provider.recv_rpc().await;
    send_rpc(&mut provider, rpc(RpcAction::Accept, "slow", "c1")).await;
    assert_eq!(
        requestor.recv_rpc().await,
        rpc(RpcAction::Accept, "slow", "c1")
    );

    let timeout = requestor.recv_rpc().await;

    let elapsed = sent.elapsed();
    assert_eq!(timeout, rpc(RpcAction::ResponseTimeout, "slow", "c1"));
    assert!(
        elapsed >= response_timeout - Duration::from_millis(20),
        "timed out after only {elapsed:?}"
    );
    requestor.expect_silence(QUIET).await;
}

#[tokio::test]
async fn second_accept_is_multiple_accept() {
    let server = TestServer::start(|_| {}).await;
    let mut provider = server.login("provider").await;
    provide(&mut provider, "add").await;
    let mut requestor = server.login("requestor").await;
    send_rpc(&mut requestor, rpc(RpcAction::Request, "add", "c1")).await;
    provider.recv_rpc().await;

    send_rpc(&mut provider, rpc(RpcAction::Accept, "add", "c1")).await;
    send_rpc(&mut provider, rpc(RpcAction::Accept, "add", "c1")).await;

    assert_eq!(
        provider.recv_rpc().await,
        rpc(RpcAction::MultipleAccept, "add", "c1")
    );
    assert_eq!(
        requestor.recv_rpc().await,
        rpc(RpcAction::Accept, "add", "c1")
    );
    requestor.expect_silence(QUIET).await;
}

#[tokio::test]
async fn unknown_correlation_id_is_rejected() {
    let server = TestServer::start(|_| {}).await;
    let mut provider = server.login("provider").await;
    provide(&mut provider, "add").await;

    send_rpc(
        &mut provider,
        with_data(rpc(RpcAction::Response, "add", "never-requested"), b"1"),
    )
    .await;

    assert_eq!(
        provider.recv_rpc().await,
        rpc_error(
            RpcAction::InvalidRpcCorrelationId,
            RpcAction::Response,
            "add",
            "never-requested"
        )
    );
    provider.expect_silence(QUIET).await;
}

#[tokio::test]
async fn response_from_non_provider_rejected() {
    let server = TestServer::start(|_| {}).await;
    let mut provider = server.login("provider").await;
    provide(&mut provider, "add").await;
    let mut requestor = server.login("requestor").await;
    let mut intruder = server.login("intruder").await;
    send_rpc(&mut requestor, rpc(RpcAction::Request, "add", "c1")).await;
    provider.recv_rpc().await;

    send_rpc(
        &mut intruder,
        with_data(rpc(RpcAction::Response, "add", "c1"), b"666"),
    )
    .await;

    assert_eq!(
        intruder.recv_rpc().await,
        rpc_error(
            RpcAction::InvalidRpcCorrelationId,
            RpcAction::Response,
            "add",
            "c1"
        )
    );
    requestor.expect_silence(QUIET).await;
    send_rpc(&mut provider, rpc(RpcAction::Accept, "add", "c1")).await;
    assert_eq!(
        requestor.recv_rpc().await,
        rpc(RpcAction::Accept, "add", "c1")
    );
}

#[tokio::test]
async fn closed_provider_before_accept_moves() {
    let server = TestServer::start(|_| {}).await;
    let mut one = server.login("provider-one").await;
    let mut two = server.login("provider-two").await;
    provide(&mut one, "add").await;
    provide(&mut two, "add").await;
    let mut requestor = server.login("requestor").await;
    let request = rpc(RpcAction::Request, "add", "c1");
    send_rpc(&mut requestor, request.clone()).await;
    let (first, second, _) = first_to_receive(&mut one, &mut two).await;

    first.close().await;

    assert_eq!(second.recv_rpc().await, request);
    send_rpc(second, rpc(RpcAction::Accept, "add", "c1")).await;
    assert_eq!(
        requestor.recv_rpc().await,
        rpc(RpcAction::Accept, "add", "c1")
    );
}

#[tokio::test]
async fn closed_provider_after_accept_fails() {
    let server = TestServer::start(|_| {}).await;
    let mut one = server.login("provider-one").await;
    let mut two = server.login("provider-two").await;
    provide(&mut one, "add").await;
    provide(&mut two, "add").await;
    let mut requestor = server.login("requestor").await;
    send_rpc(&mut requestor, rpc(RpcAction::Request, "add", "c1")).await;
    let (accepting, standby, _) = first_to_receive(&mut one, &mut two).await;
    send_rpc(accepting, rpc(RpcAction::Accept, "add", "c1")).await;
    assert_eq!(
        requestor.recv_rpc().await,
        rpc(RpcAction::Accept, "add", "c1")
    );

    accepting.close().await;

    // The provider may have started the work, so the request fails instead of
    // moving to the standby provider.
    let failure = requestor.recv_rpc().await;
    assert_eq!(failure.action(), RpcAction::RequestError, "{failure:?}");
    assert_eq!(failure.name, "add");
    assert_eq!(failure.correlation_id, "c1");
    let data: Value = serde_json::from_slice(&failure.data).expect("REQUEST_ERROR data is JSON");
    assert!(
        data.is_string(),
        "REQUEST_ERROR data is not a JSON string: {data}"
    );
    standby.expect_silence(QUIET).await;
    requestor.expect_silence(QUIET).await;
}

#[tokio::test]
async fn closed_requestor_responses_ignored() {
    let server = TestServer::start(|_| {}).await;
    let mut provider = server.login("provider").await;
    provide(&mut provider, "add").await;
    let mut requestor = server.login("requestor").await;
    send_rpc(&mut requestor, rpc(RpcAction::Request, "add", "c1")).await;
    provider.recv_rpc().await;

    requestor.close().await;
    // Give the server time to remove the connection, so the replies cannot
    // overtake the removal.
    tokio::time::sleep(QUIET).await;
    send_rpc(&mut provider, rpc(RpcAction::Accept, "add", "c1")).await;
    send_rpc(
        &mut provider,
        with_data(rpc(RpcAction::Response, "add", "c1"), b"3"),
    )
    .await;

    // The RPC handler's module docs state that when a requestor disconnects,
    // its requests are dropped and later replies for them are ignored.
    provider.expect_silence(QUIET).await;
    provider.assert_ping_gets_pong().await;
}

#[tokio::test]
async fn requestor_name_is_provided() {
    let server = TestServer::start(|config| config.rpc.provide_requestor_name = true).await;
    let mut provider = server.login("provider").await;
    provide(&mut provider, "whoami").await;
    let mut requestor = server.login("alice").await;

    send_rpc(&mut requestor, rpc(RpcAction::Request, "whoami", "c1")).await;

    let expected = RpcMessage {
        requestor_name: "alice".into(),
        ..rpc(RpcAction::Request, "whoami", "c1")
    };
    assert_eq!(provider.recv_rpc().await, expected);
}

#[tokio::test]
async fn requestor_name_hidden_by_default() {
    let server = TestServer::start(|_| {}).await;
    let mut provider = server.login("provider").await;
    provide(&mut provider, "whoami").await;
    let mut requestor = server.login("alice").await;

    send_rpc(&mut requestor, rpc(RpcAction::Request, "whoami", "c1")).await;

    let forwarded = provider.recv_rpc().await;
    assert_eq!(forwarded.requestor_name, "");
    assert!(forwarded.requestor_data.is_empty(), "{forwarded:?}");
}

#[tokio::test]
async fn requestor_data_is_provided() {
    let server = TestServer::start_with_authenticator(
        |config| config.rpc.provide_requestor_data = true,
        Arc::new(ClientDataPerUser),
    )
    .await;
    let mut provider = server.login("provider").await;
    provide(&mut provider, "whoami").await;
    let mut requestor = server.login("alice").await;

    send_rpc(&mut requestor, rpc(RpcAction::Request, "whoami", "c1")).await;

    let forwarded = provider.recv_rpc().await;
    assert_eq!(
        forwarded.requestor_name, "",
        "the name is provided only when configured"
    );
    let data: Value =
        serde_json::from_slice(&forwarded.requestor_data).expect("requestor data is JSON");
    assert_eq!(data, json!({ "user": "alice" }));
}
