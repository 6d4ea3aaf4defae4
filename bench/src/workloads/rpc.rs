//! RPC round trips: several callers, several providers of one RPC name.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use deepstream_protocol::{RpcAction, RpcMessage, TopicMessage};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

use crate::conn::{self, Dialect, STEP_TIMEOUT, Ws, WsSink, now_micros};
use crate::error::BenchError;
use crate::stats::{LatencySummary, rate};

const RPC_NAME: &str = "bench/echo";

/// Parameters of the RPC workload.
#[derive(Debug, Clone, Copy)]
pub struct RpcParams {
    /// Provider connections, each replying from its own task.
    pub providers: usize,
    /// Caller connections, each with its own task.
    pub callers: usize,
    /// Requests each caller makes.
    pub requests_per_caller: usize,
    /// Requests a caller may have in flight.
    pub window: usize,
    /// Maximum time for the requests.
    pub deadline: Duration,
}

/// The measurements of the RPC workload.
#[derive(Debug, Clone, Serialize)]
pub struct RpcResult {
    /// Provider connections.
    pub providers: usize,
    /// Caller connections.
    pub callers: usize,
    /// Responses received by all callers.
    pub responses: u64,
    /// Replies other than a response, such as `NO_RPC_PROVIDER`.
    pub failures: u64,
    /// Seconds from the first request to the last response.
    pub seconds: f64,
    /// `responses / seconds`.
    pub round_trips_per_second: f64,
    /// From sending a request to receiving its response.
    pub latency: Option<LatencySummary>,
}

struct CallerOutcome {
    responses: u64,
    failures: u64,
    latencies: Vec<u64>,
    last_response_us: u64,
}

async fn provide(mut ws: Ws) -> Result<Ws, BenchError> {
    let request = TopicMessage::Rpc(RpcMessage {
        action: RpcAction::Provide.into(),
        names: vec![RPC_NAME.to_owned()],
        correlation_id: "provide".to_owned(),
        ..Default::default()
    });
    conn::send(&mut ws, &request).await?;
    conn::wait_for(
        &mut ws,
        "RPC PROVIDE acknowledgement",
        STEP_TIMEOUT,
        |m| matches!(m, TopicMessage::Rpc(r) if r.is_ack && r.action == RpcAction::Provide as i32),
    )
    .await?;
    Ok(ws)
}

/// Replies to every request with `ACCEPT` and a `RESPONSE` that echoes its data,
/// as the official client does, until the connection closes.
async fn serve(ws: Ws) {
    let (mut sink, mut stream) = ws.split();
    while let Some(Ok(message)) = stream.next().await {
        let Message::Binary(frame) = message else {
            continue;
        };
        let Ok(TopicMessage::Rpc(request)) = TopicMessage::decode_frame(frame) else {
            continue;
        };
        if request.action != RpcAction::Request as i32 {
            continue;
        }
        if let Err(error) = answer(&mut sink, request).await {
            tracing::debug!(%error, "an RPC provider stopped");
            break;
        }
    }
}

async fn answer(sink: &mut WsSink, request: RpcMessage) -> Result<(), BenchError> {
    let accept = TopicMessage::Rpc(RpcMessage {
        action: RpcAction::Accept.into(),
        name: request.name.clone(),
        correlation_id: request.correlation_id.clone(),
        ..Default::default()
    });
    let response = TopicMessage::Rpc(RpcMessage {
        action: RpcAction::Response.into(),
        name: request.name,
        correlation_id: request.correlation_id,
        data: request.data,
        ..Default::default()
    });
    sink.feed(Message::Binary(accept.encode_frame())).await?;
    sink.feed(Message::Binary(response.encode_frame())).await?;
    sink.flush().await?;
    Ok(())
}

/// Runs the RPC workload against a deepstream server at `url`.
pub async fn run(url: &str, params: RpcParams) -> Result<RpcResult, BenchError> {
    let providers = conn::open_many(url, Dialect::Deepstream, params.providers, provide).await?;
    let provider_tasks: Vec<_> = providers
        .into_iter()
        .map(|ws| tokio::spawn(serve(ws)))
        .collect();
    let callers = conn::open_many(url, Dialect::Deepstream, params.callers, |ws| async {
        Ok(ws)
    })
    .await?;

    let start_us = now_micros();
    let deadline = tokio::time::Instant::now() + params.deadline;
    let caller_tasks: Vec<_> = callers
        .into_iter()
        .enumerate()
        .map(|(index, ws)| tokio::spawn(call(ws, index, params, deadline)))
        .collect();

    let mut outcomes = Vec::new();
    let mut first_error = None;
    for task in caller_tasks {
        match task.await {
            Ok(Ok(outcome)) => outcomes.push(outcome),
            Ok(Err(error)) => first_error = first_error.or(Some(error)),
            Err(error) => tracing::error!(%error, "an RPC caller task failed"),
        }
    }
    for task in provider_tasks {
        task.abort();
    }
    if let Some(error) = first_error {
        return Err(error);
    }

    let responses = outcomes.iter().map(|o| o.responses).sum();
    let failures = outcomes.iter().map(|o| o.failures).sum();
    let end_us = outcomes
        .iter()
        .map(|o| o.last_response_us)
        .max()
        .unwrap_or(start_us)
        .max(start_us);
    let seconds = (end_us - start_us) as f64 / 1e6;
    let latencies = outcomes.into_iter().flat_map(|o| o.latencies).collect();
    Ok(RpcResult {
        providers: params.providers,
        callers: params.callers,
        responses,
        failures,
        seconds,
        round_trips_per_second: rate(responses, seconds),
        latency: LatencySummary::from_samples(latencies),
    })
}

/// Makes one caller's requests with at most `window` in flight.
async fn call(
    ws: Ws,
    caller: usize,
    params: RpcParams,
    deadline: tokio::time::Instant,
) -> Result<CallerOutcome, BenchError> {
    let (mut sink, mut stream) = ws.split();
    let window = Arc::new(Semaphore::new(params.window.max(1)));
    let total = params.requests_per_caller as u64;

    let receiver = {
        let window = Arc::clone(&window);
        tokio::spawn(async move {
            let mut outcome = CallerOutcome {
                responses: 0,
                failures: 0,
                latencies: Vec::new(),
                last_response_us: 0,
            };
            while outcome.responses + outcome.failures < total {
                let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, stream.next()).await
                else {
                    break;
                };
                let Message::Binary(frame) = message else {
                    continue;
                };
                let Ok(TopicMessage::Rpc(reply)) = TopicMessage::decode_frame(frame) else {
                    continue;
                };
                if reply.action == RpcAction::Accept as i32 {
                    continue;
                }
                if reply.action == RpcAction::Response as i32 {
                    let now = now_micros();
                    let sent = std::str::from_utf8(&reply.data)
                        .ok()
                        .and_then(|text| text.parse::<u64>().ok());
                    if let Some(sent) = sent {
                        outcome.latencies.push(now.saturating_sub(sent));
                    }
                    outcome.responses += 1;
                    outcome.last_response_us = now;
                } else {
                    tracing::debug!(?reply, "an RPC request failed");
                    outcome.failures += 1;
                }
                window.add_permits(1);
            }
            outcome
        })
    };

    for sequence in 0..total {
        let permit = tokio::time::timeout_at(deadline, window.acquire()).await;
        let Ok(Ok(permit)) = permit else {
            break;
        };
        permit.forget();
        let request = TopicMessage::Rpc(RpcMessage {
            action: RpcAction::Request.into(),
            name: RPC_NAME.to_owned(),
            correlation_id: format!("{caller}-{sequence}"),
            data: Bytes::from(now_micros().to_string()),
            ..Default::default()
        });
        conn::send_on(&mut sink, &request).await?;
    }
    receiver.await.map_err(|error| {
        BenchError::Server(format!(
            "the RPC reply reader of caller {caller} failed: {error}"
        ))
    })
}
