//! A real SIM transfer's events, published to Kafka and ingested, move the SIM's later usage
//! to the target; requests accepted while the broker is away are published later, once.

use crate::common;

use chrono::{Duration, SecondsFormat, Utc};
use common::access;
use common::kafka::brokers;
use common::server::{operator_token, token};
use common::transfers::{transfer, world, ACTIVE, DELETED, IDLE, IN_DEVICE};
use common::wire;
use reqwest::StatusCode;
use serde_json::{json, Value};
use simtally::kafka::{produce, ProduceOptions, Topics};
use simtally::lake::Lake;
use simtally::pipeline::{ingest, IngestOptions, KafkaIngest};
use simtally::serve::EventsTopic;
use simtally::source::Input;
use simtally::transfer::outbox;
use tokio_util::sync::CancellationToken;

async fn ingest_kafka(lake: &Lake, topics: &Topics) -> simtally::pipeline::RunSummary {
    let options = IngestOptions {
        threads: 2,
        kafka: Some(KafkaIngest {
            brokers: brokers(),
            topics: topics.clone(),
            group: "simtally-transfer-test".into(),
            follow: None,
            metrics_address: None,
            dead_letter_topic: None,
            pass_budget: None,
            hold: Default::default(),
        }),
        ..IngestOptions::default()
    };
    ingest(lake, options, CancellationToken::new())
        .await
        .expect("ingest from Kafka succeeds")
}

/// New topics of this test's own, created on the broker; and how to produce into them.
async fn fresh_topics(prefix: &str, partitions: i32) -> (Topics, ProduceOptions) {
    let tag = format!(
        "{}-{}",
        std::process::id(),
        Utc::now().timestamp_nanos_opt().unwrap_or_default()
    );
    let topics = Topics {
        usage: format!("{prefix}-usage-{tag}"),
        events: format!("{prefix}-events-{tag}"),
    };
    let created = ProduceOptions {
        brokers: brokers(),
        topics: topics.clone(),
        usage: Vec::new(),
        events: Vec::new(),
        partitions,
    };
    produce(created.clone())
        .await
        .expect("the topics are created");
    (topics, created)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_run_moves_the_sims_later_usage_to_the_target() {
    let (topics, created) = fresh_topics("transfer", 2).await;
    let (dir, lake, server) = world(Some(EventsTopic {
        brokers: brokers(),
        topic: topics.events.clone(),
    }))
    .await;

    // Refused whole: nothing reaches the topic.
    let refused = json!({"iccids": [IDLE, DELETED], "target_workspace_id": 102, "dry_run": false});
    assert_eq!(
        transfer(&server, "adam", refused).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    let before = Utc::now();
    let real = json!({
        "iccids": [IDLE, ACTIVE, IN_DEVICE],
        "target_workspace_id": 102,
        "dry_run": false,
        "auto_detach_devices": true,
    });
    let (status, answer) = transfer(&server, "adam", real).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["published"], true);

    // Usage of the idle SIM an hour before and an hour after the move.
    let at = |offset: Duration| (before + offset).to_rfc3339_opts(SecondsFormat::Millis, true);
    let usage = access::write(
        &dir.path().join("after.ndjson"),
        &[
            wire::usage(
                9001,
                IDLE,
                &at(Duration::hours(-1)),
                &at(Duration::minutes(-50)),
                "3.00",
            ),
            wire::usage(
                9002,
                IDLE,
                &at(Duration::hours(1)),
                &at(Duration::minutes(70)),
                "5.00",
            ),
        ],
    );
    produce(ProduceOptions {
        usage: vec![Input::File(usage)],
        ..created
    })
    .await
    .unwrap();
    let summary = ingest_kafka(&lake, &topics).await;
    // IDLE: transferred; ACTIVE: transferred + suspended; IN_DEVICE: detached + transferred.
    assert_eq!(summary.events.accepted, 5, "{summary}");
    assert_eq!(summary.events.dead_letters, 0, "{summary}");

    let rows = server
        .sql(
            &token("adam"),
            &format!("SELECT workspace_id, CAST(SUM(cost) AS VARCHAR) AS cost FROM usage WHERE iccid = '{IDLE}' GROUP BY workspace_id ORDER BY workspace_id"),
        )
        .await
        .json();
    assert_eq!(
        rows,
        json!([
            {"workspace_id": 101, "cost": "3.0000000000"},
            {"workspace_id": 102, "cost": "5.0000000000"}
        ])
    );
    // The SIM is now 102's: moving it again is planned from there.
    let (_, again) = transfer(
        &server,
        "adam",
        json!({"iccids": [ACTIVE], "target_workspace_id": 101}),
    )
    .await;
    assert_eq!(again["sims"][0]["source_workspace_id"], 102, "{again}");
    assert_eq!(again["sims"][0]["status"], "SUSPENDED", "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_accepted_while_the_broker_is_away_is_published_later_once() {
    let (topics, _) = fresh_topics("outbox", 1).await;
    // Nothing listens on port 1.
    let away = EventsTopic {
        brokers: "127.0.0.1:1".into(),
        topic: topics.events.clone(),
    };
    let (_dir, lake, server) = world(Some(away)).await;
    let real = json!({"iccids": [IDLE, ACTIVE], "target_workspace_id": 102, "dry_run": false});
    let (status, answer) = transfer(&server, "adam", real).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(
        (answer["accepted"].clone(), answer["published"].clone()),
        (json!(true), json!(false))
    );
    assert_eq!(outbox::pending(&lake).await.unwrap().len(), 1);

    let published = outbox::publish_pending(&lake, &brokers(), &topics.events)
        .await
        .unwrap();
    assert_eq!(published, [answer["request_id"].as_str().unwrap()]);
    assert!(outbox::pending(&lake).await.unwrap().is_empty());
    assert!(outbox::publish_pending(&lake, &brokers(), &topics.events)
        .await
        .unwrap()
        .is_empty());
    // IDLE: transferred; ACTIVE: transferred + suspended.
    let summary = ingest_kafka(&lake, &topics).await;
    assert_eq!(summary.events.accepted, 3, "{summary}");
}

/// Directory changes through the API: checked against the caller's roles and the rules at
/// once, published as directory events naming the caller, in effect once ingested.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_changes_through_the_api_take_effect_once_ingested() {
    use reqwest::Method;
    let (topics, _) = fresh_topics("directory", 1).await;
    let (_dir, lake, server) = world(Some(EventsTopic {
        brokers: brokers(),
        topic: topics.events.clone(),
    }))
    .await;
    let call = |method: Method, path: &'static str, who: String, body: Option<Value>| {
        let server = &server;
        async move { server.call(method, path, &who, body).await }
    };
    let invite = |role: &str| Some(json!({"user_id": "ivy", "role": role}));

    // Refused at once, with the rule: nothing is published.
    let refusals = [
        // adam administers 101 and 102, not 201; olga only observes 101.
        (
            Method::POST,
            "/v1/workspaces/201/members",
            token("adam"),
            invite("User"),
            "not_allowed",
        ),
        (
            Method::POST,
            "/v1/workspaces/101/members",
            token("olga"),
            invite("User"),
            "not_allowed",
        ),
        // Only operators link; the SuperAdmin stays in her linked Workspaces.
        (
            Method::POST,
            "/v1/organizations/1/workspaces",
            token("sara"),
            Some(json!({"workspace_id": 104})),
            "not_allowed",
        ),
        (
            Method::DELETE,
            "/v1/workspaces/101/members/sara",
            token("adam"),
            None,
            "directory_rule",
        ),
        // Organization 1 has its three Workspaces (the Pro package).
        (
            Method::POST,
            "/v1/organizations/1/workspaces",
            operator_token(),
            Some(json!({"workspace_id": 104})),
            "directory_rule",
        ),
        (
            Method::POST,
            "/v1/workspaces/101/members",
            token("adam"),
            invite("SuperAdmin"),
            "bad_request",
        ),
    ];
    for (method, path, who, body, code) in refusals {
        let answer = call(method.clone(), path, who, body).await;
        assert_eq!(
            answer.error_code(),
            code,
            "{method} {path}: {}",
            answer.text()
        );
    }

    let accepted = [
        (
            Method::POST,
            "/v1/workspaces/101/members",
            token("adam"),
            invite("User"),
        ),
        (
            Method::POST,
            "/v1/workspaces",
            operator_token(),
            Some(json!({"workspace_id": 301, "name": "Depot", "organization_id": 4})),
        ),
        (
            Method::PUT,
            "/v1/workspaces/101/sso",
            token("adam"),
            Some(json!({"enabled": true})),
        ),
    ];
    for (method, path, who, body) in accepted {
        let answer = call(method.clone(), path, who, body).await;
        assert_eq!(
            answer.status,
            StatusCode::ACCEPTED,
            "{method} {path}: {}",
            answer.text()
        );
        assert_eq!(answer.json()["published"], true);
    }
    // Published, not yet ingested: ivy is not a member yet.
    let members = |who: String| {
        let server = &server;
        async move {
            let answer = server
                .get("/v1/workspaces/101/members", Some(&who), None)
                .await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
            answer.json()["members"].clone()
        }
    };
    assert!(!members(token("adam")).await.to_string().contains("ivy"));

    let summary = ingest_kafka(&lake, &topics).await;
    assert_eq!(summary.events.directory, 3, "{summary:?}");
    // (adam's password no longer signs him in: see below.)
    assert!(members(operator_token())
        .await
        .to_string()
        .contains(r#"{"role":"User","user_id":"ivy"}"#));
    let operator_view = server
        .get("/v1/workspaces", Some(&operator_token()), None)
        .await;
    assert!(
        operator_view.text().contains(r#""name":"Depot""#),
        "{}",
        operator_view.text()
    );
    // Single sign-on is on for 101, the default Workspace of adam, olga and now ivy: their
    // passwords no longer sign them in; sara's default (201) keeps hers.
    for user in ["adam", "olga", "ivy"] {
        let answer = server.get("/v1/workspaces", Some(&token(user)), None).await;
        assert_eq!(
            answer.error_code(),
            "wrong_issuer",
            "{user}: {}",
            answer.text()
        );
    }
    let sara = server
        .get("/v1/workspaces", Some(&token("sara")), None)
        .await;
    assert_eq!(sara.status, StatusCode::OK);
    assert_eq!(sara.json()["default_workspace_id"], 201);

    // The provider's team reassigns organization 1's SuperAdmin: sara keeps, as
    // Administrator, the organization's own Workspaces (101, 102) and loses 103.
    let answer = server
        .call(
            Method::PUT,
            "/v1/organizations/1/superadmin",
            &operator_token(),
            Some(json!({"user_id": "adam"})),
        )
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text());
    assert_eq!(ingest_kafka(&lake, &topics).await.events.directory, 1);
    let roles = |workspace: i64| {
        let server = &server;
        async move {
            let path = format!("/v1/workspaces/{workspace}/members");
            let answer = server.get(&path, Some(&operator_token()), None).await;
            let members = answer.json()["members"].as_array().cloned().unwrap();
            (members.iter())
                .map(|m| {
                    format!(
                        "{} {}",
                        m["user_id"].as_str().unwrap(),
                        m["role"].as_str().unwrap()
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        roles(101).await,
        [
            "adam SuperAdmin",
            "ivy User",
            "olga Observer",
            "sara Administrator"
        ]
    );
    assert_eq!(roles(103).await, ["adam SuperAdmin"]);
    let sara = server
        .get("/v1/workspaces", Some(&token("sara")), None)
        .await;
    let reached: Vec<_> = (sara.json()["workspaces"].as_array().unwrap().iter())
        .map(|w| {
            (
                w["workspace_id"].as_i64().unwrap(),
                w["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        reached,
        [
            (101, "Administrator".into()),
            (102, "Administrator".into()),
            (201, "Observer".into())
        ]
    );
}
