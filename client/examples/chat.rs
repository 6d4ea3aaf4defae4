//! A small chat room on deepstream.
//!
//! ```text
//! cargo run -p deepstream-client --example chat -- ws://127.0.0.1:6020/deepstream alice
//! ```
//!
//! Each line typed on standard input is sent to the room as an event and
//! kept in a list record of the last 20 messages, which a newcomer reads
//! first. Messages of others and their coming and going are printed. The
//! program ends on Ctrl-C, at the end of standard input, or after ten minutes.

use std::time::Duration;

use deepstream_client::core::Options;
use deepstream_client::tokio::{Client, PresenceChange, ReceivedEvent};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The event every participant subscribes to.
const ROOM: &str = "chat/lobby";
/// The list record that keeps the latest messages.
const HISTORY: &str = "chat/lobby/history";
/// The number of messages the history keeps.
const HISTORY_LENGTH: usize = 20;
/// How long the program runs at most.
const MAX_RUN_TIME: Duration = Duration::from_secs(600);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(user)) = (args.next(), args.next()) else {
        eprintln!("usage: chat <ws://host:port/deepstream> <user name>");
        std::process::exit(2);
    };

    let client = Client::connect(&url, Options::default()).await?;
    client
        .login(&json!({ "username": user }).to_string())
        .await?;
    println!("connected to {url} as {user}; type a line to send it, Ctrl-D to leave");

    let history = client.record().list(HISTORY).await?;
    for line in history.entries().await? {
        println!("  (earlier) {line}");
    }
    let mut online = client.presence().get_all().await?;
    online.sort();
    println!(
        "online: {}",
        if online.is_empty() {
            "nobody else".to_owned()
        } else {
            online.join(", ")
        }
    );

    let mut room = client.event().subscribe(ROOM).await?;
    let mut presence = client.presence().subscribe_all().await?;
    let mut input = BufReader::new(tokio::io::stdin()).lines();
    let deadline = tokio::time::sleep(MAX_RUN_TIME);
    tokio::pin!(deadline);

    loop {
        tokio::select! {
            line = input.next_line() => match line? {
                Some(text) if !text.trim().is_empty() => {
                    let message = json!({ "user": user, "text": text.trim() });
                    client.event().emit(ROOM, &message.to_string()).await?;
                    let mut entries = history.entries().await?;
                    entries.push(format!("{user}: {}", text.trim()));
                    let start = entries.len().saturating_sub(HISTORY_LENGTH);
                    let kept: Vec<&str> = entries[start..].iter().map(String::as_str).collect();
                    history.set_entries(&kept).await?;
                }
                Some(_) => {}
                None => break,
            },
            event = room.next() => match event {
                Some(event) => print_message(&user, &event),
                None => break,
            },
            change = presence.next() => match change {
                Some(PresenceChange { user, online }) => {
                    println!("* {user} {}", if online { "joined" } else { "left" });
                }
                None => break,
            },
            _ = tokio::signal::ctrl_c() => break,
            () = &mut deadline => {
                println!("ten minutes are over");
                break;
            }
        }
    }

    client.close().await;
    println!("bye");
    Ok(())
}

/// Prints a room message, skipping this user's own: the client delivers an
/// emitted event to its own subscribers too.
fn print_message(me: &str, event: &ReceivedEvent) {
    let Some(data) = event.data.as_deref() else {
        return;
    };
    let Ok(message) = serde_json::from_str::<serde_json::Value>(data) else {
        println!("(unreadable message: {data})");
        return;
    };
    let user = message["user"].as_str().unwrap_or("?");
    if user != me {
        println!("{user}: {}", message["text"].as_str().unwrap_or(""));
    }
}
