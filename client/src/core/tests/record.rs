//! Records against the simulated server.

use super::*;

fn record_message(action: RecordAction, name: &str) -> RecordMessage {
    RecordMessage {
        action: action.into(),
        name: name.to_owned(),
        ..Default::default()
    }
}

fn read_response(name: &str, version: i32, data: &str) -> TopicMessage {
    TopicMessage::Record(RecordMessage {
        version: Some(version),
        data: Bytes::copy_from_slice(data.as_bytes()),
        ..record_message(RecordAction::ReadResponse, name)
    })
}

fn records_sent(harness: &mut Harness) -> Vec<RecordMessage> {
    harness
        .sent()
        .into_iter()
        .filter_map(|message| match message {
            TopicMessage::Record(record) => Some(record),
            _ => None,
        })
        .collect()
}

/// Creates a logged-in session with `name` open and ready at `version` with `data`.
fn ready_record(name: &str, version: i32, data: &str) -> (Harness, RecordId) {
    let mut harness = Harness::logged_in(quick_options());
    let record = harness.session.record_get(name, harness.time()).unwrap();
    let sent = records_sent(&mut harness);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].action, RecordAction::Subscribecreateandread as i32);
    assert_eq!(sent[0].names, [name]);
    harness.receive(TopicMessage::Record(RecordMessage {
        correlation_id: sent[0].correlation_id.clone(),
        is_ack: true,
        ..record_message(RecordAction::Subscribecreateandread, "")
    }));
    harness.receive(read_response(name, version, data));
    let events = harness.events();
    assert!(
        events.contains(&Event::RecordReady { record }),
        "{events:?}"
    );
    (harness, record)
}

fn data_of(harness: &Harness, record: RecordId) -> serde_json::Value {
    serde_json::from_str(&harness.session.record_data(record, None).unwrap().unwrap()).unwrap()
}

#[test]
fn get_reads_then_ready() {
    let (harness, record) = ready_record("todo/1", 3, r#"{"a":1}"#);
    assert_eq!(harness.session.record_version(record), Ok(Some(3)));
    assert_eq!(data_of(&harness, record), serde_json::json!({"a":1}));
    assert_eq!(
        harness.session.record_data(record, Some("a")),
        Ok(Some("1".to_owned()))
    );
    assert_eq!(harness.session.record_data(record, Some("b")), Ok(None));
}

#[test]
fn second_handle_is_ready_at_once() {
    let (mut harness, _) = ready_record("r", 0, "{}");
    let second = harness.session.record_get("r", harness.time()).unwrap();
    assert_eq!(
        harness.events(),
        vec![Event::RecordReady { record: second }]
    );
    assert!(harness.sent().is_empty(), "second handle subscribed again");
}

#[test]
fn set_sends_next_version() {
    let (mut harness, record) = ready_record("r", 4, "{}");
    harness
        .session
        .record_set(record, None, r#"{"x":1}"#, false, harness.time())
        .unwrap();
    harness
        .session
        .record_set(record, Some("y"), "2", false, harness.time())
        .unwrap();
    harness
        .session
        .record_erase(record, "x", false, harness.time())
        .unwrap();
    let sent = records_sent(&mut harness);
    let summary: Vec<(i32, Option<i32>, String, String)> = sent
        .iter()
        .map(|m| {
            (
                m.action,
                m.version,
                m.path.clone(),
                String::from_utf8(m.data.to_vec()).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                RecordAction::Update as i32,
                Some(5),
                String::new(),
                r#"{"x":1}"#.to_owned()
            ),
            (
                RecordAction::Patch as i32,
                Some(6),
                "y".to_owned(),
                "2".to_owned()
            ),
            (
                RecordAction::Erase as i32,
                Some(7),
                "x".to_owned(),
                String::new()
            ),
        ]
    );
    assert_eq!(data_of(&harness, record), serde_json::json!({"y":2}));
}

#[test]
fn set_of_equal_data_sends_nothing() {
    let (mut harness, record) = ready_record("r", 1, r#"{"a":1}"#);
    let request = harness
        .session
        .record_set(record, Some("a"), "1", true, harness.time())
        .unwrap()
        .unwrap();
    assert!(harness.sent().is_empty());
    assert_eq!(
        harness.events(),
        vec![Event::RecordWriteResult {
            request,
            result: Ok(())
        }]
    );
}

#[test]
fn set_bad_input_is_refused() {
    let (mut harness, record) = ready_record("r", 1, "{}");
    let now = harness.time();
    assert_eq!(
        harness.session.record_set(record, None, "3", false, now),
        Err(RecordError::NotAContainer)
    );
    assert!(matches!(
        harness.session.record_set(record, None, "{", false, now),
        Err(RecordError::InvalidJson { .. })
    ));
    assert!(matches!(
        harness
            .session
            .record_set(record, Some("a[x]"), "1", false, now),
        Err(RecordError::InvalidPath { .. })
    ));
    assert_eq!(
        harness.session.record_get("", now),
        Err(RecordError::EmptyName)
    );
    assert!(harness.sent().is_empty());
}

#[test]
fn write_ack_resolves_once() {
    let (mut harness, record) = ready_record("r", 0, "{}");
    let request = harness
        .session
        .record_set(record, None, r#"{"a":1}"#, true, harness.time())
        .unwrap()
        .unwrap();
    let sent = records_sent(&mut harness);
    assert!(sent[0].is_write_ack);
    let correlation_id = sent[0].correlation_id.clone();
    harness.receive(TopicMessage::Record(RecordMessage {
        correlation_id: correlation_id.clone(),
        is_write_ack: true,
        ..record_message(RecordAction::WriteAcknowledgement, "r")
    }));
    assert_eq!(
        harness.events(),
        vec![Event::RecordWriteResult {
            request,
            result: Ok(())
        }]
    );
    harness.advance(60_000);
    assert!(
        !harness
            .events()
            .iter()
            .any(|e| matches!(e, Event::RecordWriteResult { .. })),
        "second result"
    );
}

#[test]
fn write_ack_timeout_fires_once() {
    let (mut harness, record) = ready_record("r", 0, "{}");
    let request = harness
        .session
        .record_set(record, None, r#"{"a":1}"#, true, harness.time())
        .unwrap()
        .unwrap();
    harness.sent();
    harness.advance(14_999);
    assert!(harness.events().is_empty());
    harness.advance(1);
    assert_eq!(
        harness.events(),
        vec![Event::RecordWriteResult {
            request,
            result: Err(RecordError::Timeout)
        }]
    );
    harness.advance(20_000);
    assert!(
        !harness
            .events()
            .iter()
            .any(|e| matches!(e, Event::RecordWriteResult { .. })),
        "second result"
    );
}

#[test]
fn writes_before_ready_are_applied_once_ready() {
    let mut harness = Harness::logged_in(quick_options());
    let record = harness.session.record_get("r", harness.time()).unwrap();
    harness.sent();
    let request = harness
        .session
        .record_set(record, Some("a"), "1", true, harness.time())
        .unwrap()
        .unwrap();
    assert!(harness.sent().is_empty(), "sent before the record was read");
    harness.receive(read_response("r", 2, r#"{"b":2}"#));
    let sent = records_sent(&mut harness);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].action, RecordAction::Update as i32);
    assert_eq!(sent[0].version, Some(3));
    assert!(sent[0].is_write_ack);
    assert_eq!(data_of(&harness, record), serde_json::json!({"a":1,"b":2}));
    harness.receive(TopicMessage::Record(RecordMessage {
        correlation_id: sent[0].correlation_id.clone(),
        is_write_ack: true,
        ..record_message(RecordAction::WriteAcknowledgement, "r")
    }));
    assert!(harness.events().contains(&Event::RecordWriteResult {
        request,
        result: Ok(())
    }));
}

#[test]
fn remote_writes_are_applied_in_order() {
    let (mut harness, record) = ready_record("r", 1, r#"{"a":1}"#);
    let whole = harness
        .session
        .record_subscribe(record, None, false)
        .unwrap();
    let path = harness
        .session
        .record_subscribe(record, Some("b"), false)
        .unwrap();
    harness.receive(TopicMessage::Record(RecordMessage {
        version: Some(2),
        path: "b".to_owned(),
        data: Bytes::from_static(b"[1]"),
        ..record_message(RecordAction::Patch, "r")
    }));
    assert_eq!(
        harness.events(),
        vec![
            Event::RecordChanged {
                subscription: whole,
                data: Some(r#"{"a":1,"b":[1]}"#.to_owned())
            },
            Event::RecordChanged {
                subscription: path,
                data: Some("[1]".to_owned())
            },
        ]
    );
    // The Node.js server forwards an erase as a PATCH without data.
    harness.receive(TopicMessage::Record(RecordMessage {
        version: Some(3),
        path: "b".to_owned(),
        ..record_message(RecordAction::Patch, "r")
    }));
    assert_eq!(data_of(&harness, record), serde_json::json!({"a":1}));
    assert_eq!(harness.session.record_version(record), Ok(Some(3)));
}

#[test]
fn skipped_version_reads_again() {
    let (mut harness, record) = ready_record("r", 1, "{}");
    harness.receive(TopicMessage::Record(RecordMessage {
        version: Some(5),
        path: "a".to_owned(),
        data: Bytes::from_static(b"1"),
        ..record_message(RecordAction::Patch, "r")
    }));
    let sent = records_sent(&mut harness);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].action, RecordAction::Read as i32);
    harness.receive(read_response("r", 5, r#"{"a":1,"z":0}"#));
    assert_eq!(data_of(&harness, record), serde_json::json!({"a":1,"z":0}));
    assert_eq!(harness.session.record_version(record), Ok(Some(5)));
}

#[test]
fn version_exists_remote_wins_by_default() {
    let (mut harness, record) = ready_record("r", 1, "{}");
    let request = harness
        .session
        .record_set(record, None, r#"{"mine":true}"#, true, harness.time())
        .unwrap()
        .unwrap();
    let sent = records_sent(&mut harness);
    harness.receive(TopicMessage::Record(RecordMessage {
        version: Some(2),
        data: Bytes::from_static(br#"{"theirs":true}"#),
        correlation_id: sent[0].correlation_id.clone(),
        is_write_ack: true,
        original_action: RecordAction::Update.into(),
        ..record_message(RecordAction::VersionExists, "r")
    }));
    assert_eq!(
        data_of(&harness, record),
        serde_json::json!({"theirs":true})
    );
    assert_eq!(harness.session.record_version(record), Ok(Some(2)));
    assert!(
        records_sent(&mut harness).is_empty(),
        "remote wins needs no write"
    );
    let events = harness.events();
    let results: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e, Event::RecordWriteResult { .. }))
        .collect();
    assert_eq!(
        results,
        vec![&Event::RecordWriteResult {
            request,
            result: Err(RecordError::VersionExists {
                name: "r".to_owned(),
                remote_version: 2
            })
        }]
    );
}

#[test]
fn version_exists_custom_merge_writes_result() {
    let (mut harness, record) = ready_record("r", 1, "{}");
    let strategy = MergeStrategy::custom(|input| {
        assert_eq!(input.local_version, 2);
        assert_eq!(input.remote_version, 2);
        let mut local: serde_json::Value = serde_json::from_str(&input.local).unwrap();
        let remote: serde_json::Value =
            serde_json::from_str(input.remote.as_deref().unwrap()).unwrap();
        local["remote"] = remote;
        Ok(local.to_string())
    });
    harness
        .session
        .record_set_merge_strategy(record, strategy)
        .unwrap();
    harness
        .session
        .record_set(record, None, r#"{"mine":1}"#, false, harness.time())
        .unwrap();
    harness.sent();
    harness.receive(TopicMessage::Record(RecordMessage {
        version: Some(2),
        data: Bytes::from_static(br#"{"theirs":1}"#),
        ..record_message(RecordAction::VersionExists, "r")
    }));
    let sent = records_sent(&mut harness);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].action, RecordAction::Update as i32);
    assert_eq!(sent[0].version, Some(3));
    let merged = serde_json::json!({"mine":1,"remote":{"theirs":1}});
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&sent[0].data).unwrap(),
        merged
    );
    assert_eq!(data_of(&harness, record), merged);
}

#[test]
fn stale_version_exists_is_ignored() {
    let (mut harness, record) = ready_record("r", 1, "{}");
    harness
        .session
        .record_set(record, None, r#"{"n":1}"#, false, harness.time())
        .unwrap();
    harness
        .session
        .record_set(record, None, r#"{"n":2}"#, false, harness.time())
        .unwrap();
    harness.sent();
    // The first write (version 2) lost to another client's version 2; the
    // second write (version 3) is still in flight.
    harness.receive(TopicMessage::Record(RecordMessage {
        version: Some(2),
        data: Bytes::from_static(br#"{"other":true}"#),
        ..record_message(RecordAction::VersionExists, "r")
    }));
    assert_eq!(data_of(&harness, record), serde_json::json!({"n":2}));
    assert_eq!(harness.session.record_version(record), Ok(Some(3)));
}

#[test]
fn read_timeout_fails_get() {
    let mut harness = Harness::logged_in(quick_options());
    let record = harness.session.record_get("slow", harness.time()).unwrap();
    harness.sent();
    harness.advance(15_000);
    let failures: Vec<Event> = harness
        .events()
        .into_iter()
        .filter(|event| !matches!(event, Event::Error(SessionError::AckTimeout { .. })))
        .collect();
    assert_eq!(
        failures,
        vec![Event::RecordReadFailed {
            record,
            error: RecordError::Timeout
        }]
    );
}

#[test]
fn discard_of_last_handle_unsubscribes() {
    let (mut harness, first) = ready_record("r", 0, "{}");
    let second = harness.session.record_get("r", harness.time()).unwrap();
    harness.events();
    harness
        .session
        .record_discard(first, harness.time())
        .unwrap();
    assert!(harness.sent().is_empty());
    harness
        .session
        .record_discard(second, harness.time())
        .unwrap();
    let sent = records_sent(&mut harness);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].action, RecordAction::Unsubscribe as i32);
    assert_eq!(sent[0].names, ["r"]);
    assert_eq!(
        harness.session.record_discard(second, harness.time()),
        Err(RecordError::UnknownHandle)
    );
}

#[test]
fn deleted_remotely_closes_handles() {
    let (mut harness, record) = ready_record("r", 0, "{}");
    harness.receive(TopicMessage::Record(record_message(
        RecordAction::Deleted,
        "r",
    )));
    assert_eq!(harness.events(), vec![Event::RecordDeleted { record }]);
    assert_eq!(
        harness.session.record_data(record, None),
        Err(RecordError::UnknownHandle)
    );
}

#[test]
fn delete_resolves_then_closes() {
    let (mut harness, record) = ready_record("r", 0, "{}");
    let request = harness
        .session
        .record_delete(record, harness.time())
        .unwrap();
    let sent = records_sent(&mut harness);
    assert_eq!(sent[0].action, RecordAction::Delete as i32);
    harness.receive(TopicMessage::Record(record_message(
        RecordAction::DeleteSuccess,
        "r",
    )));
    assert_eq!(
        harness.events(),
        vec![
            Event::RecordDeleteResult {
                request,
                result: Ok(())
            },
            Event::RecordDeleted { record }
        ]
    );
}

#[test]
fn snapshot_and_head_share_requests() {
    let mut harness = Harness::logged_in(quick_options());
    let first = harness
        .session
        .record_snapshot("s", harness.time())
        .unwrap();
    let second = harness
        .session
        .record_snapshot("s", harness.time())
        .unwrap();
    let head = harness.session.record_head("s", harness.time()).unwrap();
    let sent = records_sent(&mut harness);
    let actions: Vec<i32> = sent.iter().map(|m| m.action).collect();
    assert_eq!(
        actions,
        vec![RecordAction::Read as i32, RecordAction::Head as i32],
        "one READ for two snapshots"
    );
    harness.receive(read_response("s", 4, r#"{"k":"v"}"#));
    harness.receive(TopicMessage::Record(RecordMessage {
        version: Some(4),
        ..record_message(RecordAction::HeadResponse, "s")
    }));
    let events = harness.events();
    assert_eq!(
        events,
        vec![
            Event::RecordSnapshotResult {
                request: first,
                result: Ok(r#"{"k":"v"}"#.to_owned())
            },
            Event::RecordSnapshotResult {
                request: second,
                result: Ok(r#"{"k":"v"}"#.to_owned())
            },
            Event::RecordHeadResult {
                request: head,
                result: Ok(4)
            },
        ]
    );
}

#[test]
fn snapshot_of_missing_record_fails() {
    let mut harness = Harness::logged_in(quick_options());
    let request = harness
        .session
        .record_snapshot("none", harness.time())
        .unwrap();
    harness.receive(TopicMessage::Record(RecordMessage {
        original_action: RecordAction::Read.into(),
        is_error: true,
        ..record_message(RecordAction::RecordNotFound, "none")
    }));
    assert_eq!(
        harness.events(),
        vec![Event::RecordSnapshotResult {
            request,
            result: Err(RecordError::NotFound {
                name: "none".to_owned()
            })
        }]
    );
}

#[test]
fn set_data_without_record_uses_create_actions() {
    let mut harness = Harness::logged_in(quick_options());
    let now = harness.time();
    harness
        .session
        .record_set_data("w", None, Some(r#"{"a":1}"#), false, now)
        .unwrap();
    harness
        .session
        .record_set_data("w", Some("b"), Some("2"), false, now)
        .unwrap();
    harness
        .session
        .record_set_data("w", Some("a"), None, false, now)
        .unwrap();
    let sent = records_sent(&mut harness);
    let actions: Vec<(i32, Option<i32>)> = sent.iter().map(|m| (m.action, m.version)).collect();
    assert_eq!(
        actions,
        vec![
            (RecordAction::Createandupdate as i32, Some(-1)),
            (RecordAction::Createandpatch as i32, Some(-1)),
            (RecordAction::Erase as i32, Some(-1)),
        ]
    );
}

#[test]
fn notify_ack_and_error() {
    let mut harness = Harness::logged_in(quick_options());
    let ok = harness
        .session
        .record_notify(&["a", "b"], harness.time())
        .unwrap();
    let failing = harness
        .session
        .record_notify(&["c"], harness.time())
        .unwrap();
    let sent = records_sent(&mut harness);
    assert_eq!(sent[0].names, ["a", "b"]);
    harness.receive(TopicMessage::Record(RecordMessage {
        correlation_id: sent[0].correlation_id.clone(),
        is_ack: true,
        ..record_message(RecordAction::Notify, "")
    }));
    harness.receive(TopicMessage::Record(RecordMessage {
        correlation_id: sent[1].correlation_id.clone(),
        is_error: true,
        ..record_message(RecordAction::RecordNotifyError, "")
    }));
    assert_eq!(
        harness.events(),
        vec![
            Event::RecordNotifyResult {
                request: ok,
                result: Ok(())
            },
            Event::RecordNotifyResult {
                request: failing,
                result: Err(RecordError::Server {
                    action: "RECORD_NOTIFY_ERROR".to_owned()
                })
            },
        ]
    );
}

#[test]
fn reconnect_resubscribes_with_head() {
    let (mut harness, record) = ready_record("r", 2, r#"{"a":1}"#);
    harness.reconnect();
    harness.advance(100);
    let sent = records_sent(&mut harness);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].action, RecordAction::Subscribeandhead as i32);
    assert_eq!(sent[0].names, ["r"]);

    // Same version: nothing to do.
    harness.receive(TopicMessage::Record(RecordMessage {
        versions: [("r".to_owned(), 2)].into_iter().collect(),
        ..record_message(RecordAction::HeadResponseBulk, "")
    }));
    assert!(records_sent(&mut harness).is_empty());
    assert_eq!(harness.session.record_version(record), Ok(Some(2)));
}

#[test]
fn reconnect_reads_changed_record() {
    let (mut harness, record) = ready_record("r", 2, r#"{"a":1}"#);
    harness.reconnect();
    harness.advance(100);
    harness.sent();
    harness.receive(TopicMessage::Record(RecordMessage {
        version: Some(4),
        ..record_message(RecordAction::HeadResponse, "r")
    }));
    let sent = records_sent(&mut harness);
    assert_eq!(sent[0].action, RecordAction::Read as i32);
    harness.receive(read_response("r", 4, r#"{"a":4}"#));
    assert_eq!(data_of(&harness, record), serde_json::json!({"a":4}));
}

#[test]
fn offline_write_is_sent_after_reconnect() {
    let (mut harness, record) = ready_record("r", 2, "{}");
    harness.session.connection_lost(harness.time());
    harness
        .session
        .record_set(record, Some("x"), "1", false, harness.time())
        .unwrap();
    harness.drain();
    harness.reconnect();
    harness.advance(100);
    harness.sent();
    harness.receive(TopicMessage::Record(RecordMessage {
        version: Some(2),
        ..record_message(RecordAction::HeadResponse, "r")
    }));
    let sent = records_sent(&mut harness);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].action, RecordAction::Update as i32);
    assert_eq!(sent[0].version, Some(3));
    assert_eq!(&sent[0].data[..], br#"{"x":1}"#);
}

#[test]
fn record_gone_after_reconnect_is_deleted() {
    let (mut harness, record) = ready_record("r", 2, "{}");
    harness.reconnect();
    harness.advance(100);
    harness.drain();
    harness.receive(TopicMessage::Record(RecordMessage {
        version: Some(-1),
        ..record_message(RecordAction::HeadResponse, "r")
    }));
    assert_eq!(harness.events(), vec![Event::RecordDeleted { record }]);
}

#[test]
fn record_gone_after_reconnect_local_wins_writes_again() {
    let (mut harness, record) = ready_record("r", 2, r#"{"kept":true}"#);
    harness
        .session
        .record_set_merge_strategy(record, MergeStrategy::LocalWins)
        .unwrap();
    harness.reconnect();
    harness.advance(100);
    harness.drain();
    harness.receive(TopicMessage::Record(RecordMessage {
        version: Some(-1),
        ..record_message(RecordAction::HeadResponse, "r")
    }));
    let sent = records_sent(&mut harness);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].action(), RecordAction::Createandupdate);
    assert_eq!(sent[0].version, Some(1));
    assert_eq!(&sent[0].data[..], br#"{"kept":true}"#);
    assert_eq!(harness.session.record_version(record).unwrap(), Some(1));
}

#[test]
fn lists_edit_entries() {
    let (mut harness, list) = ready_record("l", 0, "[]");
    let now = harness.time();
    harness
        .session
        .list_add_entry(list, "b", None, false, now)
        .unwrap();
    harness
        .session
        .list_add_entry(list, "a", Some(0), false, now)
        .unwrap();
    harness
        .session
        .list_add_entry(list, "b", None, false, now)
        .unwrap();
    assert_eq!(harness.session.list_entries(list).unwrap(), ["a", "b", "b"]);
    harness
        .session
        .list_remove_entry(list, "b", Some(2), false, now)
        .unwrap();
    assert_eq!(harness.session.list_entries(list).unwrap(), ["a", "b"]);
    harness
        .session
        .list_remove_entry(list, "a", None, false, now)
        .unwrap();
    assert_eq!(harness.session.list_entries(list).unwrap(), ["b"]);
    assert_eq!(
        harness
            .session
            .list_add_entry(list, "x", Some(5), false, now),
        Err(RecordError::InvalidIndex { index: 5 })
    );
    let versions: Vec<Option<i32>> = records_sent(&mut harness)
        .iter()
        .map(|m| m.version)
        .collect();
    assert_eq!(versions, vec![Some(1), Some(2), Some(3), Some(4), Some(5)]);
}

#[test]
fn invalid_record_data_is_error_event() {
    let mut harness = Harness::logged_in(quick_options());
    let record = harness.session.record_get("r", harness.time()).unwrap();
    harness.receive(read_response("r", 1, "{not json"));
    let events = harness.events();
    assert!(
        matches!(
            &events[..],
            [Event::Error(SessionError::InvalidPayload { .. })]
        ),
        "{events:?}"
    );
    assert_eq!(
        harness.session.record_data(record, None),
        Err(RecordError::NotReady {
            name: "r".to_owned()
        })
    );
}

#[test]
fn get_before_login_times_out() {
    let mut harness = Harness::connected(quick_options());
    harness.events();
    let record = harness
        .session
        .record_get("todo/1", harness.time())
        .unwrap();
    harness.advance(14_999);
    assert_eq!(harness.events(), vec![]);
    harness.advance(1);
    assert_eq!(
        harness.events(),
        vec![Event::RecordReadFailed {
            record,
            error: RecordError::Timeout
        }]
    );
}

#[test]
fn get_waiting_fails_on_close() {
    let mut harness = Harness::logged_in(quick_options());
    let record = harness
        .session
        .record_get("todo/1", harness.time())
        .unwrap();
    let write = harness
        .session
        .record_set(record, None, r#"{"a":1}"#, true, harness.time())
        .unwrap()
        .expect("a write with acknowledgement returns a request");
    harness.drain();
    harness.session.close(harness.time());
    let events = harness.events();
    assert!(
        events.contains(&Event::RecordReadFailed {
            record,
            error: RecordError::ClientOffline
        }),
        "{events:?}"
    );
    assert!(
        events.contains(&Event::RecordWriteResult {
            request: write,
            result: Err(RecordError::ClientOffline)
        }),
        "{events:?}"
    );
    harness.advance(100_000);
    assert_eq!(harness.events(), vec![], "the read timer was stopped");
}

#[test]
fn get_after_close_fails_fast() {
    let mut harness = Harness::logged_in(quick_options());
    harness.session.close(harness.time());
    assert_eq!(
        harness.session.record_get("todo/1", harness.time()),
        Err(RecordError::ClientOffline)
    );
}

/// Builds the error that the server sends when its permissions deny
/// `original` for `name`.
fn denial(
    action: RecordAction,
    original: RecordAction,
    name: &str,
    correlation_id: &str,
) -> TopicMessage {
    TopicMessage::Record(RecordMessage {
        original_action: original.into(),
        correlation_id: correlation_id.to_owned(),
        is_error: true,
        ..record_message(action, name)
    })
}

/// Opens `name` and returns the handle and the correlation id of the
/// `SUBSCRIBECREATEANDREAD` sent for it.
fn open_unanswered(harness: &mut Harness, name: &str) -> (RecordId, String) {
    let record = harness.session.record_get(name, harness.time()).unwrap();
    let sent = records_sent(harness);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].action, RecordAction::Subscribecreateandread as i32);
    assert_eq!(sent[0].names, [name]);
    (record, sent[0].correlation_id.clone())
}

#[test]
fn denied_open_fails_at_once() {
    for (action, action_text) in [
        (RecordAction::MessageDenied, "MESSAGE_DENIED"),
        (
            RecordAction::MessagePermissionError,
            "MESSAGE_PERMISSION_ERROR",
        ),
    ] {
        let mut harness = Harness::logged_in(quick_options());
        let (record, correlation_id) = open_unanswered(&mut harness, "vault/key");
        let second = harness
            .session
            .record_get("vault/key", harness.time())
            .unwrap();
        assert!(harness.sent().is_empty(), "second handle subscribed again");

        harness.receive(denial(
            action,
            RecordAction::Subscribecreateandread,
            "vault/key",
            &correlation_id,
        ));
        let error = RecordError::Server {
            action: action_text.to_owned(),
        };
        assert_eq!(
            harness.events(),
            vec![
                Event::RecordReadFailed {
                    record,
                    error: error.clone()
                },
                Event::RecordReadFailed {
                    record: second,
                    error
                }
            ],
            "one failure per handle and nothing on the error stream"
        );
        assert_eq!(
            harness.session.record_version(record),
            Err(RecordError::UnknownHandle)
        );

        // Past the acknowledgement timeout and the read timeout.
        harness.advance(20_000);
        assert_eq!(harness.events(), vec![], "a denied open ends once");
    }
}

#[test]
fn open_after_denial_subscribes_again() {
    let mut harness = Harness::logged_in(quick_options());
    let (first, correlation_id) = open_unanswered(&mut harness, "vault/key");
    harness.receive(denial(
        RecordAction::MessageDenied,
        RecordAction::Subscribecreateandread,
        "vault/key",
        &correlation_id,
    ));
    harness.events();

    let (second, _) = open_unanswered(&mut harness, "vault/key");
    assert_ne!(first, second);
    harness.receive(read_response("vault/key", 2, r#"{"pin":1}"#));
    assert_eq!(
        harness.events(),
        vec![Event::RecordReady { record: second }]
    );
    assert_eq!(data_of(&harness, second), serde_json::json!({"pin":1}));
}

#[test]
fn denied_open_fails_waiting_writes() {
    let mut harness = Harness::logged_in(quick_options());
    let (record, correlation_id) = open_unanswered(&mut harness, "vault/key");
    let write = harness
        .session
        .record_set(record, None, r#"{"a":1}"#, true, harness.time())
        .unwrap()
        .expect("a write with acknowledgement returns a request");
    harness.receive(denial(
        RecordAction::MessageDenied,
        RecordAction::Subscribecreateandread,
        "vault/key",
        &correlation_id,
    ));
    let error = RecordError::Server {
        action: "MESSAGE_DENIED".to_owned(),
    };
    let events = harness.events();
    assert!(
        events.contains(&Event::RecordWriteResult {
            request: write,
            result: Err(error)
        }),
        "{events:?}"
    );
    assert!(records_sent(&mut harness).is_empty(), "the write was sent");
}

#[test]
fn bulk_denial_fails_only_its_name() {
    let mut harness = Harness::logged_in(options());
    let allowed = harness
        .session
        .record_get("open/a", harness.time())
        .unwrap();
    let denied = harness
        .session
        .record_get("vault/key", harness.time())
        .unwrap();
    harness.advance(100);
    let sent = records_sent(&mut harness);
    let [bulk] = &sent[..] else {
        panic!("expected one bulk message: {sent:?}");
    };
    assert_eq!(bulk.names, ["open/a", "vault/key"]);

    // Each denied name gets its own error with the bulk's correlation id,
    // and the allowed names go on to be acknowledged and read.
    harness.receive(denial(
        RecordAction::MessageDenied,
        RecordAction::Subscribecreateandread,
        "vault/key",
        &bulk.correlation_id,
    ));
    harness.receive(TopicMessage::Record(RecordMessage {
        correlation_id: bulk.correlation_id.clone(),
        is_ack: true,
        ..record_message(RecordAction::Subscribecreateandread, "")
    }));
    harness.receive(read_response("open/a", 1, "{}"));
    assert_eq!(
        harness.events(),
        vec![
            Event::RecordReadFailed {
                record: denied,
                error: RecordError::Server {
                    action: "MESSAGE_DENIED".to_owned()
                }
            },
            Event::RecordReady { record: allowed }
        ]
    );
}

#[test]
fn denial_without_waiting_open_is_session_error() {
    let (mut harness, record) = ready_record("r", 1, "{}");
    harness.receive(denial(
        RecordAction::MessageDenied,
        RecordAction::Subscribeandhead,
        "r",
        "0",
    ));
    assert_eq!(
        harness.errors(),
        vec![SessionError::Server {
            topic: Topic::Record,
            action: "MESSAGE_DENIED".to_owned(),
            name: "r".to_owned(),
            original_action: Some("SUBSCRIBEANDHEAD".to_owned()),
        }]
    );
    assert_eq!(harness.session.record_version(record), Ok(Some(1)));
}

/// Reconnects, and returns the one `SUBSCRIBEANDHEAD` that subscribes the
/// open records again.
fn resubscribe(harness: &mut Harness) -> RecordMessage {
    harness.reconnect();
    harness.advance(100);
    harness.events();
    let sent = records_sent(harness);
    let [head] = &sent[..] else {
        panic!("expected one SUBSCRIBEANDHEAD: {sent:?}");
    };
    assert_eq!(head.action, RecordAction::Subscribeandhead as i32);
    head.clone()
}

fn head_response(name: &str, version: i32) -> TopicMessage {
    TopicMessage::Record(RecordMessage {
        version: Some(version),
        ..record_message(RecordAction::HeadResponse, name)
    })
}

#[test]
fn get_while_resubscribing_waits_for_head() {
    let (mut harness, _) = ready_record("r", 2, r#"{"a":1}"#);
    resubscribe(&mut harness);
    let second = harness.session.record_get("r", harness.time()).unwrap();
    assert_eq!(harness.events(), vec![], "ready before the head response");
    assert!(harness.sent().is_empty(), "second handle subscribed again");

    harness.receive(head_response("r", 2));
    assert_eq!(
        harness.events(),
        vec![Event::RecordReady { record: second }]
    );
    assert_eq!(data_of(&harness, second), serde_json::json!({"a":1}));
}

#[test]
fn get_while_merging_waits_for_read() {
    let (mut harness, _) = ready_record("r", 2, r#"{"a":1}"#);
    resubscribe(&mut harness);
    harness.receive(head_response("r", 4));
    let sent = records_sent(&mut harness);
    assert_eq!(sent[0].action, RecordAction::Read as i32);
    let second = harness.session.record_get("r", harness.time()).unwrap();
    assert_eq!(harness.events(), vec![], "ready before the merge");

    harness.receive(read_response("r", 4, r#"{"a":4}"#));
    assert_eq!(
        harness.events(),
        vec![Event::RecordReady { record: second }]
    );
    assert_eq!(data_of(&harness, second), serde_json::json!({"a":4}));
}

#[test]
fn get_while_resubscribing_times_out() {
    let (mut harness, first) = ready_record("r", 2, "{}");
    resubscribe(&mut harness);
    harness.advance(1000);
    let second = harness.session.record_get("r", harness.time()).unwrap();
    harness.advance(14_999);
    let failures = |harness: &mut Harness| -> Vec<Event> {
        harness
            .events()
            .into_iter()
            .filter(|event| !matches!(event, Event::Error(SessionError::AckTimeout { .. })))
            .collect()
    };
    assert_eq!(failures(&mut harness), vec![]);
    harness.advance(1);
    assert_eq!(
        failures(&mut harness),
        vec![Event::RecordReadFailed {
            record: second,
            error: RecordError::Timeout
        }],
        "the timeout counts from the open and fails only the new handle"
    );

    harness.receive(head_response("r", 2));
    assert_eq!(harness.events(), vec![], "an open ends once");
    assert_eq!(harness.session.record_version(first), Ok(Some(2)));
}

#[test]
fn get_while_resubscribing_fails_on_close() {
    let (mut harness, _) = ready_record("r", 2, "{}");
    resubscribe(&mut harness);
    let second = harness.session.record_get("r", harness.time()).unwrap();
    harness.session.close(harness.time());
    let opens: Vec<Event> = harness
        .events()
        .into_iter()
        .filter(|event| {
            matches!(
                event,
                Event::RecordReady { .. } | Event::RecordReadFailed { .. }
            )
        })
        .collect();
    assert_eq!(
        opens,
        vec![Event::RecordReadFailed {
            record: second,
            error: RecordError::ClientOffline
        }]
    );
    harness.advance(100_000);
    assert_eq!(harness.events(), vec![], "the read timer was stopped");
}

#[test]
fn get_while_resubscribing_fails_when_record_gone() {
    let (mut harness, first) = ready_record("r", 2, "{}");
    resubscribe(&mut harness);
    let second = harness.session.record_get("r", harness.time()).unwrap();
    harness.receive(head_response("r", -1));
    assert_eq!(
        harness.events(),
        vec![
            Event::RecordDeleted { record: first },
            Event::RecordReadFailed {
                record: second,
                error: RecordError::Deleted {
                    name: "r".to_owned()
                }
            }
        ]
    );
}

#[test]
fn get_after_read_timeout_waits_again() {
    let mut harness = Harness::logged_in(quick_options());
    let first = harness.session.record_get("slow", harness.time()).unwrap();
    harness.sent();
    harness.advance(15_000);
    harness.events();

    let second = harness.session.record_get("slow", harness.time()).unwrap();
    assert!(harness.sent().is_empty(), "second handle subscribed again");
    harness.advance(15_000);
    let failures: Vec<Event> = harness
        .events()
        .into_iter()
        .filter(|event| !matches!(event, Event::Error(_)))
        .collect();
    assert_eq!(
        failures,
        vec![Event::RecordReadFailed {
            record: second,
            error: RecordError::Timeout
        }],
        "each open gets its own timeout and ends once"
    );

    harness.receive(read_response("slow", 1, "{}"));
    assert_eq!(harness.events(), vec![]);
    assert_eq!(harness.session.record_version(first), Ok(Some(1)));
}

#[test]
fn denied_resubscribe_closes_record() {
    for (action, action_text) in [
        (RecordAction::MessageDenied, "MESSAGE_DENIED"),
        (
            RecordAction::MessagePermissionError,
            "MESSAGE_PERMISSION_ERROR",
        ),
    ] {
        let (mut harness, ready) = ready_record("vault/key", 2, r#"{"a":1}"#);
        let subscription = harness
            .session
            .record_subscribe(ready, None, false)
            .unwrap();
        let head = resubscribe(&mut harness);
        let waiting = harness
            .session
            .record_get("vault/key", harness.time())
            .unwrap();
        let write = harness
            .session
            .record_set(ready, Some("a"), "2", true, harness.time())
            .unwrap()
            .expect("a write with acknowledgement returns a request");
        assert_eq!(harness.events(), vec![]);

        harness.receive(denial(
            action,
            RecordAction::Subscribeandhead,
            "vault/key",
            &head.correlation_id,
        ));
        let error = RecordError::Server {
            action: action_text.to_owned(),
        };
        assert_eq!(
            harness.events(),
            vec![
                Event::RecordClosed {
                    record: ready,
                    error: error.clone()
                },
                Event::RecordReadFailed {
                    record: waiting,
                    error: error.clone()
                },
                Event::RecordWriteResult {
                    request: write,
                    result: Err(error)
                },
                Event::Error(SessionError::Server {
                    topic: Topic::Record,
                    action: action_text.to_owned(),
                    name: "vault/key".to_owned(),
                    original_action: Some("SUBSCRIBEANDHEAD".to_owned()),
                })
            ],
            "each handle and write told once, and the denial reported once"
        );
        assert!(records_sent(&mut harness).is_empty(), "the write was sent");
        for handle in [ready, waiting] {
            assert_eq!(
                harness.session.record_version(handle),
                Err(RecordError::UnknownHandle)
            );
        }
        assert_eq!(
            harness.session.record_unsubscribe(subscription),
            Err(RecordError::UnknownHandle)
        );

        // Past the acknowledgement timeout and the read timeout.
        harness.advance(20_000);
        assert_eq!(
            harness.events(),
            vec![],
            "a denied resubscription ends once"
        );
    }
}

#[test]
fn open_after_denied_resubscribe_subscribes_again() {
    let (mut harness, _) = ready_record("vault/key", 2, "{}");
    let head = resubscribe(&mut harness);
    harness.receive(denial(
        RecordAction::MessageDenied,
        RecordAction::Subscribeandhead,
        "vault/key",
        &head.correlation_id,
    ));
    harness.events();

    let (record, _) = open_unanswered(&mut harness, "vault/key");
    harness.receive(read_response("vault/key", 3, r#"{"pin":1}"#));
    assert_eq!(harness.events(), vec![Event::RecordReady { record }]);
    assert_eq!(data_of(&harness, record), serde_json::json!({"pin":1}));
}

#[test]
fn bulk_resubscribe_denial_closes_only_its_name() {
    let mut harness = Harness::logged_in(options());
    let allowed = harness
        .session
        .record_get("open/a", harness.time())
        .unwrap();
    let denied = harness
        .session
        .record_get("vault/key", harness.time())
        .unwrap();
    harness.advance(100);
    harness.sent();
    harness.receive(read_response("open/a", 1, "{}"));
    harness.receive(read_response("vault/key", 1, "{}"));
    harness.events();

    let head = resubscribe(&mut harness);
    assert_eq!(head.names, ["open/a", "vault/key"]);
    harness.receive(denial(
        RecordAction::MessageDenied,
        RecordAction::Subscribeandhead,
        "vault/key",
        &head.correlation_id,
    ));
    harness.receive(TopicMessage::Record(RecordMessage {
        correlation_id: head.correlation_id.clone(),
        is_ack: true,
        ..record_message(RecordAction::Subscribeandhead, "")
    }));
    harness.receive(head_response("open/a", 1));
    let events = harness.events();
    assert!(
        events.contains(&Event::RecordClosed {
            record: denied,
            error: RecordError::Server {
                action: "MESSAGE_DENIED".to_owned()
            }
        }),
        "{events:?}"
    );
    assert_eq!(harness.session.record_version(allowed), Ok(Some(1)));
    harness
        .session
        .record_set(allowed, Some("b"), "1", false, harness.time())
        .unwrap();
    let sent = records_sent(&mut harness);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].action(), RecordAction::Patch, "the record is ready");
}
