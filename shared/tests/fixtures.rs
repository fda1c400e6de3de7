//! Pins the wire form of the protocol: a change here is a protocol change and must come with a
//! bump of `PROTOCOL_VERSION` and a new fixture.

use coreplay_shared::{
    CacheType, ClientMsg, Hello, MachineInfo, Node, NodeKind, NumaNode, PROTOCOL_VERSION,
    ServerMsg, Topology, decode_client, decode_server, topology::TopologySource,
};

fn pu(i: u32) -> Node {
    Node {
        kind: NodeKind::Pu,
        os_index: Some(i),
        pus: vec![i],
        children: vec![],
    }
}

fn hello() -> ServerMsg {
    let core = |i: u32| Node {
        kind: NodeKind::Core,
        os_index: Some(i),
        pus: vec![i],
        children: vec![pu(i)],
    };
    ServerMsg::Hello(Box::new(Hello {
        protocol_version: PROTOCOL_VERSION,
        agent_version: "0.1.0".into(),
        scenarios: coreplay_shared::scenario::catalog(2),
        can_run: true,
        fidelity: coreplay_shared::event::Fidelity::SelfTimed,
        fidelity_note: Some("perf_event_open refused".into()),
        watch_programs: vec![coreplay_shared::watch::WatchProgram {
            name: "cpu_threads".into(),
            title: "CPU-bound work on 4 threads (the GIL)".into(),
            command: vec!["python3".into(), "examples/python/cpu_threads.py".into()],
        }],
        topology: Topology {
            machine: MachineInfo {
                hostname: Some("box".into()),
                cpu_model: Some("Example CPU".into()),
                os: Some("Linux 6.1".into()),
                source: TopologySource::Live,
            },
            root: Node {
                kind: NodeKind::Machine,
                os_index: Some(0),
                pus: vec![0, 1],
                children: vec![Node {
                    kind: NodeKind::Package {
                        cpu_model: Some("Example CPU".into()),
                    },
                    os_index: Some(0),
                    pus: vec![0, 1],
                    children: vec![Node {
                        kind: NodeKind::Cache {
                            level: 3,
                            cache_type: CacheType::Unified,
                            size_bytes: Some(32 << 20),
                            line_bytes: Some(64),
                        },
                        os_index: None,
                        pus: vec![0, 1],
                        children: vec![core(0), core(1)],
                    }],
                }],
            },
            numa_nodes: vec![NumaNode {
                os_index: 0,
                pus: vec![0, 1],
                memory_bytes: Some(1 << 30),
            }],
        },
    }))
}

#[test]
fn hello_json_is_pinned() {
    let fixture = include_str!("fixtures/hello.json");
    let expected: serde_json::Value = serde_json::from_str(fixture).expect("fixture is JSON");
    let actual = serde_json::to_value(hello()).expect("encodes");
    assert_eq!(
        actual,
        expected,
        "the hello's JSON changed; if on purpose, bump PROTOCOL_VERSION and update the fixture to:\n{}",
        serde_json::to_string_pretty(&actual).unwrap_or_default()
    );
    assert_eq!(decode_server(fixture).expect("fixture decodes"), hello());
}

#[test]
fn run_messages_are_pinned() {
    use coreplay_shared::{
        event::Event,
        scenario::{Params, ScenarioId},
    };
    assert_eq!(
        decode_client(r#"{"type":"run","scenario":"gil","params":{"threads":4}}"#),
        Ok(ClientMsg::Run {
            scenario: ScenarioId::Gil,
            params: Params {
                threads: Some(4),
                ..Params::default()
            }
        })
    );
    assert_eq!(decode_client(r#"{"type":"stop"}"#), Ok(ClientMsg::Stop));
    assert_eq!(
        decode_client(r#"{"type":"watch","program":"pools"}"#),
        Ok(ClientMsg::Watch {
            program: "pools".into()
        })
    );
    assert!(decode_client(r#"{"type":"watch","command":["sh"]}"#).is_err());
    let started = ServerMsg::RunStarted {
        run: 2,
        scenario: ScenarioId::Watch,
        params: Params::default(),
        fidelity: coreplay_shared::event::Fidelity::Sampled { hz: 1000 },
        yours: true,
        watch: Some(coreplay_shared::watch::WatchTarget {
            program: Some("pools".into()),
            command: vec!["python3".into(), "pools.py".into()],
            pid: 42,
        }),
    };
    assert_eq!(
        started.to_json(),
        r#"{"type":"run_started","data":{"run":2,"scenario":"watch","params":{},"fidelity":{"kind":"sampled","hz":1000},"yours":true,"watch":{"program":"pools","command":["python3","pools.py"],"pid":42}}}"#
    );
    assert_eq!(decode_server(&started.to_json()), Ok(started));
    let batch = ServerMsg::Events {
        run: 3,
        events: vec![Event::OnCpu {
            tid: 1,
            cpu: 0,
            start: 10,
            end: 90,
        }],
        dropped: 0,
    };
    assert_eq!(
        batch.to_json(),
        r#"{"type":"events","data":{"run":3,"events":[{"on_cpu":{"tid":1,"cpu":0,"start":10,"end":90}}]}}"#
    );
    let bad_param = ServerMsg::Error {
        code: coreplay_shared::ErrorCode::BadParam,
        message: "m".into(),
        field: Some("threads".into()),
    };
    assert_eq!(
        bad_param.to_json(),
        r#"{"type":"error","data":{"code":"bad_param","message":"m","field":"threads"}}"#
    );
}

#[test]
fn the_fixture_carries_the_current_version() {
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/hello.json")).expect("fixture is JSON");
    assert_eq!(fixture["data"]["protocol_version"], PROTOCOL_VERSION);
}

#[test]
fn client_messages_are_pinned() {
    assert_eq!(
        ClientMsg::Ping { id: 3 }.to_json(),
        r#"{"type":"ping","id":3}"#
    );
    assert_eq!(
        decode_client(r#"{"type":"ping","id":3}"#),
        Ok(ClientMsg::Ping { id: 3 })
    );
    let error = ServerMsg::error(coreplay_shared::ErrorCode::TooLarge, "m");
    assert_eq!(
        error.to_json(),
        r#"{"type":"error","data":{"code":"too_large","message":"m"}}"#
    );
}
