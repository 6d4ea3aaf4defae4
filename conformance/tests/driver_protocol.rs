//! Checks the Rust driver's replies to bad input over the real driver
//! protocol: the `conformance-driver-rust` binary on stdin and stdout.

use std::net::{Ipv4Addr, TcpListener};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

const REPLY_TIMEOUT: Duration = Duration::from_secs(15);

/// Sends each line to a new driver and returns one parsed reply per line.
async fn exchange(lines: &[String]) -> Vec<Value> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_conformance-driver-rust"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the driver");
    let mut stdin = child.stdin.take().expect("stdin pipe");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout pipe")).lines();

    let mut replies = Vec::new();
    for line in lines {
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .expect("write a command");
        let reply = tokio::time::timeout(REPLY_TIMEOUT, stdout.next_line())
            .await
            .expect("reply in time")
            .expect("read a reply")
            .expect("a reply line");
        replies.push(serde_json::from_str(&reply).expect("reply is JSON"));
    }

    drop(stdin);
    let status = tokio::time::timeout(REPLY_TIMEOUT, child.wait())
        .await
        .expect("driver exits when stdin closes")
        .expect("driver status");
    assert!(status.success(), "driver exited with {status}");
    replies
}

#[tokio::test]
async fn driver_rejects_invalid_commands() {
    let lines = [
        "not json".to_owned(),
        json!({"id": 1, "op": "login"}).to_string(),
        json!({"id": 2, "op": "connect"}).to_string(),
        json!({"id": 3, "op": "connect", "url": 7}).to_string(),
    ];
    let replies = exchange(&lines).await;

    assert_eq!(replies[0]["error"], "INVALID_COMMAND");
    assert_eq!(replies[0]["id"], Value::Null);
    assert_eq!(replies[1]["id"], 1);
    assert_eq!(replies[1]["error"], "INVALID_COMMAND");
    assert!(
        replies[1]["message"]
            .as_str()
            .unwrap_or("")
            .contains("connect"),
        "{}",
        replies[1]
    );
    assert_eq!(replies[2]["error"], "INVALID_COMMAND");
    assert!(
        replies[3]["message"]
            .as_str()
            .unwrap_or("")
            .contains("must be a string"),
        "{}",
        replies[3]
    );
}

#[tokio::test]
async fn driver_reports_unreachable_server() {
    // A port that was free a moment ago has no listener.
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|probe| probe.local_addr())
        .expect("free port")
        .port();
    let url = format!("ws://127.0.0.1:{port}/deepstream");
    let lines = [
        json!({"id": 1, "op": "connect", "url": url}).to_string(),
        json!({"id": 2, "op": "emit", "name": "x"}).to_string(),
    ];
    let replies = exchange(&lines).await;

    assert_eq!(replies[0]["error"], "CONNECT_FAILED", "{}", replies[0]);
    assert_eq!(replies[1]["error"], "INVALID_COMMAND", "{}", replies[1]);
}
