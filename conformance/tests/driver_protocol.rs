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

/// Commands of the extended protocol whose arguments are invalid, each with
/// the field its error message must name.
fn invalid_arguments() -> Vec<(Value, &'static str)> {
    vec![
        (
            json!({"op": "subscribe-many", "prefix": "p/", "count": 0}),
            "count",
        ),
        (
            json!({"op": "subscribe-many", "prefix": "p/", "count": 10_001}),
            "count",
        ),
        (
            json!({"op": "subscribe-many", "prefix": "p/", "count": 2.5}),
            "count",
        ),
        (
            json!({"op": "subscribe-many", "prefix": "p/", "count": "3"}),
            "count",
        ),
        (json!({"op": "subscribe-many", "prefix": "p/"}), "count"),
        (json!({"op": "subscribe-many", "count": 3}), "prefix"),
        (
            json!({"op": "record-subscribe-many", "prefix": "r/", "count": 0}),
            "count",
        ),
        (
            json!({"op": "record-subscribe-many", "prefix": "r/", "count": 10_001}),
            "count",
        ),
        (
            json!({"op": "record-subscribe-many", "prefix": "r/", "count": -1}),
            "count",
        ),
        (
            json!({"op": "record-subscribe-many", "prefix": "r/", "count": 1.0}),
            "count",
        ),
        (json!({"op": "presence-get", "users": "bob"}), "users"),
        (json!({"op": "presence-get", "users": ["bob", 7]}), "users"),
        (json!({"op": "presence-get"}), "users"),
        (json!({"op": "presence-subscribe", "user": 7}), "user"),
        (
            json!({"op": "list-set", "name": "l", "entries": ["a", 1]}),
            "entries",
        ),
        (
            json!({"op": "list-set", "name": "l", "entries": "a"}),
            "entries",
        ),
        (
            json!({"op": "list-add", "name": "l", "entry": "a", "index": -1}),
            "index",
        ),
        (
            json!({"op": "list-add", "name": "l", "entry": "a", "index": "0"}),
            "index",
        ),
        (json!({"op": "list-remove", "name": "l"}), "entry"),
        (json!({"op": "record-notify", "names": [1, 2]}), "names"),
        (json!({"op": "record-erase", "name": "r"}), "path"),
        (json!({"op": "record-set", "name": "r"}), "data"),
        (
            json!({"op": "record-set", "name": "r", "data": 1, "ack": "yes"}),
            "ack",
        ),
        (
            json!({"op": "record-set-data", "name": "r", "path": 3, "data": 1}),
            "path",
        ),
        (json!({"op": "unsubscribe"}), "name"),
        (json!({"op": "login", "auth": "alice"}), "auth"),
        (json!({"op": "provide", "name": "p"}), "provide"),
        (
            json!({"op": "provide", "name": "p", "reply": 1, "fail": "no"}),
            "provide",
        ),
        (
            json!({"op": "provide", "name": "p", "reply": 1, "reject": true}),
            "provide",
        ),
        (
            json!({"op": "provide", "name": "p", "fail": "no", "reject": true}),
            "provide",
        ),
        (
            json!({"op": "provide", "name": "p", "reject": false}),
            "reject",
        ),
        (json!({"op": "provide", "name": "p", "fail": 3}), "fail"),
    ]
}

#[tokio::test]
async fn driver_rejects_invalid_arguments() {
    let cases = invalid_arguments();
    let lines: Vec<String> = cases
        .iter()
        .enumerate()
        .map(|(id, (command, _))| {
            let mut command = command.clone();
            command["id"] = json!(id);
            command.to_string()
        })
        .collect();
    let replies = exchange(&lines).await;

    for ((command, field), (id, reply)) in cases.iter().zip(replies.iter().enumerate()) {
        assert_eq!(reply["id"], id, "{command} got {reply}");
        assert_eq!(reply["error"], "INVALID_COMMAND", "{command} got {reply}");
        let message = reply["message"].as_str().unwrap_or("");
        assert!(
            message.contains(field),
            "{command}: message does not name `{field}`: {reply}"
        );
    }
}

#[tokio::test]
async fn driver_replies_after_invalid_arguments() {
    // Arguments are checked before the driver needs a client, so these
    // replies need no server. The last command shows the driver still works.
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|probe| probe.local_addr())
        .expect("free port")
        .port();
    let url = format!("ws://127.0.0.1:{port}/deepstream");
    let lines = [
        json!({"id": 1, "op": "subscribe-many", "prefix": "p/", "count": 0}).to_string(),
        "{\"id\": 2, \"op\"".to_owned(),
        json!({"id": 3, "op": "provide", "name": "p"}).to_string(),
        json!({"id": 4, "op": "subscribe-many", "prefix": "p/", "count": 10}).to_string(),
        json!({"id": 5, "op": "connect", "url": url}).to_string(),
    ];
    let replies = exchange(&lines).await;

    assert_eq!(replies[0]["error"], "INVALID_COMMAND", "{}", replies[0]);
    assert_eq!(replies[1]["id"], Value::Null, "{}", replies[1]);
    assert_eq!(replies[1]["error"], "INVALID_COMMAND", "{}", replies[1]);
    assert_eq!(replies[2]["id"], 3, "{}", replies[2]);
    assert_eq!(replies[2]["error"], "INVALID_COMMAND", "{}", replies[2]);
    assert_eq!(replies[3]["id"], 4, "{}", replies[3]);
    assert!(
        replies[3]["message"]
            .as_str()
            .unwrap_or("")
            .contains("connect"),
        "valid arguments reach the connect check: {}",
        replies[3]
    );
    assert_eq!(replies[4]["id"], 5, "{}", replies[4]);
    assert_eq!(replies[4]["error"], "CONNECT_FAILED", "{}", replies[4]);
}

#[tokio::test]
async fn driver_rejects_unknown_op() {
    let lines = [json!({"id": 1, "op": "record-teleport", "name": "r"}).to_string()];
    let replies = exchange(&lines).await;

    assert_eq!(replies[0]["error"], "INVALID_COMMAND", "{}", replies[0]);
    assert!(
        replies[0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("record-teleport"),
        "{}",
        replies[0]
    );
}
