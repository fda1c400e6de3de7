//! Messages between the page and the agent, and how they are encoded.
//!
//! Encoding: every message is one WebSocket **text** frame holding one JSON object, tagged by
//! its `"type"` field in `snake_case`: client messages carry their fields beside it
//! (`{"type":"ping","id":1}`), server messages under `"data"` (`{"type":"pong","data":{"id":1}}`). The agent's first message
//! to every client is [`ServerMsg::Hello`], which carries [`PROTOCOL_VERSION`]; a client that
//! speaks another version must stop there and say so ([`decode_server`] does the check before
//! it tries to read the rest, so a changed hello cannot hide a version mismatch).
//!
//! The exact JSON of the hello is pinned by the fixture `shared/tests/fixtures/hello.json`.

use serde::Serialize;

use crate::{
    event::{Event, Fidelity},
    json::{self, FromJson, Reader},
    json_names, json_struct,
    scenario::{Params, ScenarioId, ScenarioInfo},
    summary::Summary,
    topology::{Topology, TopologyError},
    watch::{WatchProgram, WatchTarget},
};

/// Version of this protocol. Any change to a message's JSON form bumps it; peers of different
/// versions refuse each other with a readable message. 5 added `thread_rename`; 6 added the
/// summary's `other_load`; 7 added `run_ended`'s `saved` (where the agent kept the run).
pub const PROTOCOL_VERSION: u32 = 8;

/// Largest client message the agent reads, in bytes.
pub const MAX_CLIENT_MSG_BYTES: usize = 16 * 1024;

/// Largest server message the page reads, in bytes (a topology of 8192 threads fits easily).
pub const MAX_SERVER_MSG_BYTES: usize = 32 * 1024 * 1024;

/// Messages from the agent to the page.
///
/// Adjacently tagged (`{"type":"events","data":{…}}`) rather than internally: serde must
/// buffer a whole internally tagged message before it can decode it, which made event batches
/// decode several times slower.
///
/// Decoding is written out (see `impl FromJson` below): `"data"` is read as soon as `"type"`
/// has been, and one that comes first (a JSON printer that sorts keys) is read again once the
/// type is known.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum ServerMsg {
    /// First message on every connection.
    Hello(Box<Hello>),
    /// Answer to [`ClientMsg::Ping`].
    Pong {
        /// The id of the ping.
        id: u64,
    },
    /// The agent could not act on a client message.
    Error {
        /// What kind of failure, for programs.
        code: ErrorCode,
        /// What went wrong, for people.
        message: String,
        /// The offending parameter, for [`ErrorCode::BadParam`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        field: Option<String>,
    },
    /// A run started (sent to every client: one runs, the others watch).
    RunStarted {
        /// Run number, unique for the agent's lifetime.
        run: u64,
        /// Which scenario.
        scenario: ScenarioId,
        /// Its parameters, defaults filled in.
        params: Params,
        /// How its events are obtained.
        fidelity: Fidelity,
        /// Whether this client asked for it.
        yours: bool,
        /// For a watch run (`scenario` is [`ScenarioId::Watch`]): the program followed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        watch: Option<WatchTarget>,
    },
    /// A batch of the run's events (one per tick, events of one thread in time order).
    Events {
        /// Run number.
        run: u64,
        /// The events.
        events: Vec<Event>,
        /// Events this client missed since the previous batch because it read too slowly.
        #[serde(default, skip_serializing_if = "is_zero")]
        dropped: u64,
    },
    /// The run ended; its summary.
    RunEnded {
        /// Run number.
        run: u64,
        /// Its figures.
        summary: Box<Summary>,
        /// The trace file the agent kept the run in, served at `/traces/NAME` (so a page can
        /// embed a live run once it ended); none when the agent keeps no runs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        saved: Option<String>,
    },
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The `data` of each [`ServerMsg`] variant, for decoding.
mod wire {
    use super::{ErrorCode, Event, Fidelity, Params, ScenarioId, Summary, WatchTarget};
    use crate::json_struct;

    pub struct Pong {
        pub id: u64,
    }
    json_struct!(Pong { id });

    pub struct Error {
        pub code: ErrorCode,
        pub message: String,
        pub field: Option<String>,
    }
    json_struct!(Error {
        code,
        message,
        field
    });

    pub struct RunStarted {
        pub run: u64,
        pub scenario: ScenarioId,
        pub params: Params,
        pub fidelity: Fidelity,
        pub yours: bool,
        pub watch: Option<WatchTarget>,
    }
    json_struct!(RunStarted {
        run,
        scenario,
        params,
        fidelity,
        yours,
        watch
    });

    pub struct Events {
        pub run: u64,
        pub events: Vec<Event>,
        pub dropped: u64,
    }
    json_struct!(Events {
        run,
        events,
        dropped: default
    });

    pub struct RunEnded {
        pub run: u64,
        pub summary: Box<Summary>,
        pub saved: Option<String>,
    }
    json_struct!(RunEnded {
        run,
        summary,
        saved
    });
}

/// The server messages' `"type"`s, in the order [`ServerMsg::read_data`] takes them.
const SERVER_TYPES: &[&str] = &[
    "hello",
    "pong",
    "error",
    "run_started",
    "events",
    "run_ended",
];

impl ServerMsg {
    /// Reads the `"data"` of the message of type `SERVER_TYPES[kind]`.
    fn read_data(r: &mut Reader<'_>, kind: usize) -> json::Result<ServerMsg> {
        Ok(match kind {
            0 => ServerMsg::Hello(Box::read(r)?),
            1 => ServerMsg::Pong {
                id: wire::Pong::read(r)?.id,
            },
            2 => {
                let w = wire::Error::read(r)?;
                ServerMsg::Error {
                    code: w.code,
                    message: w.message,
                    field: w.field,
                }
            }
            3 => {
                let w = wire::RunStarted::read(r)?;
                ServerMsg::RunStarted {
                    run: w.run,
                    scenario: w.scenario,
                    params: w.params,
                    fidelity: w.fidelity,
                    yours: w.yours,
                    watch: w.watch,
                }
            }
            4 => {
                let w = wire::Events::read(r)?;
                ServerMsg::Events {
                    run: w.run,
                    events: w.events,
                    dropped: w.dropped,
                }
            }
            _ => {
                let w = wire::RunEnded::read(r)?;
                ServerMsg::RunEnded {
                    run: w.run,
                    summary: w.summary,
                    saved: w.saved,
                }
            }
        })
    }
}

impl FromJson for ServerMsg {
    fn read(r: &mut Reader<'_>) -> json::Result<ServerMsg> {
        let (mut kind, mut msg, mut data_at) = (None, None, None);
        r.object(
            "a server message {\"type\": …, \"data\": …}",
            &mut |r, key| {
                match key {
                    "type" if kind.is_none() => {
                        kind = Some(r.name(SERVER_TYPES)?);
                        Ok(())
                    }
                    "data" if msg.is_none() && data_at.is_none() => match kind {
                        Some(k) => {
                            msg = Some(ServerMsg::read_data(r, k)?);
                            Ok(())
                        }
                        // Before its type: read again once the type is known.
                        None => {
                            data_at = Some(r.position());
                            r.skip()
                        }
                    },
                    "type" | "data" => Err(r.fail(format!("duplicate field `{key}`"))),
                    other => Err(r.fail(format!(
                        "unexpected field {} beside \"type\" and \"data\"",
                        json::quote(other)
                    ))),
                }
            },
        )?;
        let kind = kind.ok_or_else(|| r.missing("type"))?;
        match (msg, data_at) {
            (Some(msg), _) => Ok(msg),
            (None, Some(at)) => r.read_at(at, |r| ServerMsg::read_data(r, kind)),
            (None, None) => Err(r.missing("data")),
        }
    }
}

/// The greeting: who the agent is and the machine it describes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hello {
    /// The agent's [`PROTOCOL_VERSION`].
    pub protocol_version: u32,
    /// The agent's release (its crate version).
    pub agent_version: String,
    /// The machine the agent describes.
    pub topology: Topology,
    /// The scenarios it can run, with parameter ranges for this machine.
    pub scenarios: Vec<ScenarioInfo>,
    /// Whether runs are possible: only when the topology is the live machine's (a synthetic or
    /// XML topology is for looking at, not for running on).
    pub can_run: bool,
    /// How run events are obtained on this agent.
    pub fidelity: Fidelity,
    /// Why runs are not exact and how to make them so, when they are not.
    pub fidelity_note: Option<String>,
    /// Programs the page may start and watch ([`ClientMsg::Watch`]), fixed by the agent's
    /// operator. Watches are sampled from `/proc` unless runs here are exact.
    pub watch_programs: Vec<WatchProgram>,
}

/// Messages from the page to the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMsg {
    /// Liveness check; the agent answers [`ServerMsg::Pong`] with the same id.
    Ping {
        /// Any number the client chooses.
        id: u64,
    },
    /// Start a scenario (refused with [`ErrorCode::Busy`] while another run goes on).
    Run {
        /// Which scenario.
        scenario: ScenarioId,
        /// Parameters; missing ones take their defaults.
        params: Params,
    },
    /// Start one of the agent's [`Hello::watch_programs`] and watch it as a run (refused
    /// with [`ErrorCode::BadParam`], field `program`, for a name not in the list).
    Watch {
        /// The program's name.
        program: String,
    },
    /// Stop the current run.
    Stop,
}

/// Machine-readable kinds of [`ServerMsg::Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not valid JSON, not a known message, or a field out of its range.
    BadMessage,
    /// Larger than [`MAX_CLIENT_MSG_BYTES`].
    TooLarge,
    /// A binary frame; the protocol is text only.
    Binary,
    /// A run is going on already.
    Busy,
    /// A parameter is unknown to the scenario or out of its range.
    BadParam,
    /// Stop was asked with no run going on.
    NoRun,
    /// Runs are not possible on this agent (it shows a topology that is not the live one).
    CannotRun,
    /// The run could not start.
    RunFailed,
    /// The client sent more messages per second than allowed.
    RateLimited,
}

/// Why a message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The message exceeds the size limit.
    #[error("message of {size} bytes is larger than the limit of {limit} bytes")]
    TooLarge {
        /// Size of the message in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The peer speaks another protocol version.
    #[error(
        "the agent speaks protocol version {theirs}, this page speaks version {ours}: \
         use a page and an agent from the same coreplay release"
    )]
    VersionMismatch {
        /// Our [`PROTOCOL_VERSION`].
        ours: u32,
        /// The peer's version.
        theirs: u32,
    },
    /// Not a well-formed message.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A topology that breaks the structural rules.
    #[error("invalid topology: {0}")]
    Topology(#[from] TopologyError),
}

/// Only what a hello of *any* protocol version is guaranteed to have.
struct VersionProbe {
    kind: String,
    data: Option<VersionProbeData>,
    /// Where protocol version 1 carried it.
    protocol_version: Option<u32>,
}

impl FromJson for VersionProbe {
    fn read(r: &mut Reader<'_>) -> json::Result<VersionProbe> {
        let (mut kind, mut data, mut protocol_version) = (None, None, None);
        r.object("a message", &mut |r, key| match key {
            "type" => r.field(&mut kind, "type"),
            "data" => r.field(&mut data, "data"),
            "protocol_version" => r.field(&mut protocol_version, "protocol_version"),
            _ => r.skip(),
        })?;
        Ok(VersionProbe {
            kind: r.need(kind, "type")?,
            data: r.need(data, "data")?,
            protocol_version: r.need(protocol_version, "protocol_version")?,
        })
    }
}

struct VersionProbeData {
    protocol_version: Option<u32>,
}
json_struct!(VersionProbeData { protocol_version });

/// Decodes and validates a message from the agent (the page's side).
pub fn decode_server(text: &str) -> Result<ServerMsg, DecodeError> {
    check_size(text, MAX_SERVER_MSG_BYTES)?;
    let mismatch = |theirs| DecodeError::VersionMismatch {
        ours: PROTOCOL_VERSION,
        theirs,
    };
    match json::from_str::<ServerMsg>(text) {
        Ok(ServerMsg::Hello(hello)) if hello.protocol_version != PROTOCOL_VERSION => {
            Err(mismatch(hello.protocol_version))
        }
        Ok(msg) => {
            if let ServerMsg::Hello(hello) = &msg {
                hello.topology.validate()?;
            }
            Ok(msg)
        }
        // Only when the message does not parse is it worth asking whether it is a hello of
        // another version (whose shape may have changed): event batches stay one parse.
        Err(e) => match json::from_str::<VersionProbe>(text) {
            Ok(probe) if probe.kind == "hello" => {
                match probe
                    .data
                    .and_then(|d| d.protocol_version)
                    .or(probe.protocol_version)
                {
                    Some(theirs) if theirs != PROTOCOL_VERSION => Err(mismatch(theirs)),
                    _ => Err(DecodeError::Malformed(e.to_string())),
                }
            }
            _ => Err(DecodeError::Malformed(e.to_string())),
        },
    }
}

impl FromJson for ClientMsg {
    fn read(r: &mut Reader<'_>) -> json::Result<ClientMsg> {
        const TYPES: &[&str] = &["ping", "run", "watch", "stop"];
        let (mut kind, mut id, mut scenario, mut params, mut program) =
            (None, None, None, None, None);
        let mut stray: Option<String> = None;
        r.object("a client message {\"type\": …}", &mut |r, key| match key {
            "type" if kind.is_some() => Err(r.fail("duplicate field `type`")),
            "type" => {
                kind = Some(r.name(TYPES)?);
                Ok(())
            }
            "id" => r.field(&mut id, "id"),
            "scenario" => r.field(&mut scenario, "scenario"),
            "params" => r.field(&mut params, "params"),
            "program" => r.field(&mut program, "program"),
            other => {
                stray.get_or_insert_with(|| other.to_string());
                r.skip()
            }
        })?;
        let kind = kind.ok_or_else(|| r.missing("type"))?;
        // Each message takes its own fields only (serde's `deny_unknown_fields`).
        let takes: &[&str] = match kind {
            0 => &["id"],
            1 => &["scenario", "params"],
            2 => &["program"],
            _ => &[],
        };
        let given = [
            ("id", id.is_some()),
            ("scenario", scenario.is_some()),
            ("params", params.is_some()),
            ("program", program.is_some()),
        ];
        let other = given
            .iter()
            .find(|(name, given)| *given && !takes.contains(name))
            .map(|(name, _)| *name);
        if let Some(name) = stray.as_deref().or(other) {
            return Err(if takes.is_empty() {
                r.fail(format!("unknown field `{name}`, there are no fields"))
            } else {
                r.unknown_field(name, takes)
            });
        }
        Ok(match kind {
            0 => ClientMsg::Ping {
                id: r.need(id, "id")?,
            },
            1 => ClientMsg::Run {
                scenario: r.need(scenario, "scenario")?,
                params: params.unwrap_or_default(),
            },
            2 => ClientMsg::Watch {
                program: r.need(program, "program")?,
            },
            _ => ClientMsg::Stop,
        })
    }
}

/// Decodes a message from a client (the agent's side).
pub fn decode_client(text: &str) -> Result<ClientMsg, DecodeError> {
    check_size(text, MAX_CLIENT_MSG_BYTES)?;
    json::from_str(text).map_err(|e| DecodeError::Malformed(e.to_string()))
}

fn check_size(text: &str, limit: usize) -> Result<(), DecodeError> {
    if text.len() > limit {
        return Err(DecodeError::TooLarge {
            size: text.len(),
            limit,
        });
    }
    Ok(())
}

impl ServerMsg {
    /// Encodes the message as the JSON text of one WebSocket frame.
    pub fn to_json(&self) -> String {
        // Serialising these plain types cannot fail: no maps with non-string keys, no
        // user-defined Serialize impls that return errors.
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(r#"{{"type":"error","data":{{"code":"bad_message","message":"encode: {e}"}}}}"#)
        })
    }

    /// The error reply for a message that could not be decoded.
    pub fn from_decode_error(err: &DecodeError) -> ServerMsg {
        let code = match err {
            DecodeError::TooLarge { .. } => ErrorCode::TooLarge,
            _ => ErrorCode::BadMessage,
        };
        ServerMsg::Error {
            code,
            message: err.to_string(),
            field: None,
        }
    }

    /// An error reply without a field.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> ServerMsg {
        ServerMsg::Error {
            code,
            message: message.into(),
            field: None,
        }
    }
}

impl ClientMsg {
    /// Encodes the message as the JSON text of one WebSocket frame: what serde's derive writes
    /// (tested), written out so that the page carries no serialiser for it.
    pub fn to_json(&self) -> String {
        match self {
            ClientMsg::Ping { id } => format!(r#"{{"type":"ping","id":{id}}}"#),
            ClientMsg::Run { scenario, params } => format!(
                r#"{{"type":"run","scenario":"{}","params":{}}}"#,
                scenario.name(),
                params.to_json()
            ),
            ClientMsg::Watch { program } => {
                format!(r#"{{"type":"watch","program":{}}}"#, json::quote(program))
            }
            ClientMsg::Stop => r#"{"type":"stop"}"#.to_string(),
        }
    }
}

json_struct!(Hello {
    protocol_version,
    agent_version,
    topology,
    scenarios,
    can_run,
    fidelity,
    fidelity_note,
    watch_programs: default
});
json_names!(ErrorCode {
    BadMessage = "bad_message",
    TooLarge = "too_large",
    Binary = "binary",
    Busy = "busy",
    BadParam = "bad_param",
    NoRun = "no_run",
    CannotRun = "cannot_run",
    RunFailed = "run_failed",
    RateLimited = "rate_limited"
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_messages_decode_in_either_key_order_and_refuse_strays() {
        let a = decode_server(r#"{"type":"pong","data":{"id":7}}"#).expect("type first");
        let b = decode_server(r#"{"data":{"id":7},"type":"pong"}"#).expect("data first");
        assert_eq!(a, ServerMsg::Pong { id: 7 });
        assert_eq!(a, b);
        let e = decode_server(r#"{"type":"nope","data":{}}"#).expect_err("unknown type");
        assert!(e.to_string().contains("nope"), "{e}");
        assert!(decode_server(r#"{"type":"pong","data":{"id":7},"x":1}"#).is_err());
        assert!(decode_server(r#"{"type":"pong"}"#).is_err());
        assert!(decode_server(r#"{"data":{"id":7}}"#).is_err());
        let ev = decode_server(r#"{"type":"events","data":{"run":1,"events":[]}}"#)
            .expect("dropped defaults to 0");
        assert_eq!(
            ev,
            ServerMsg::Events {
                run: 1,
                events: vec![],
                dropped: 0
            }
        );
    }

    #[test]
    fn client_messages_are_written_as_serde_writes_them() {
        let params = Params {
            threads: Some(4),
            switch_interval_ms: Some(1),
            block_ms: Some(20),
            ..Params::default()
        };
        for msg in [
            ClientMsg::Ping { id: u64::MAX },
            ClientMsg::Run {
                scenario: ScenarioId::AsyncVsThreads,
                params,
            },
            ClientMsg::Run {
                scenario: ScenarioId::Gil,
                params: Params::default(),
            },
            ClientMsg::Watch {
                program: "a \"b\" \\ é\n".into(),
            },
            ClientMsg::Stop,
        ] {
            let text = msg.to_json();
            assert_eq!(text, serde_json::to_string(&msg).expect("encode"));
            assert_eq!(decode_client(&text), Ok(msg));
        }
    }

    #[test]
    fn ping_round_trip() {
        let text = ClientMsg::Ping { id: 7 }.to_json();
        assert_eq!(text, r#"{"type":"ping","id":7}"#);
        assert_eq!(decode_client(&text), Ok(ClientMsg::Ping { id: 7 }));
    }

    #[test]
    fn client_garbage_is_malformed() {
        for bad in [
            "",
            "null",
            "{}",
            r#"{"type":"ping"}"#,
            r#"{"type":"ping","id":-1}"#,
            r#"{"type":"ping","id":1,"extra":2}"#,
            r#"{"type":"launch_missiles"}"#,
            "\u{0}\u{1}",
        ] {
            assert!(
                matches!(decode_client(bad), Err(DecodeError::Malformed(_))),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn oversized_client_message_is_refused_before_parsing() {
        let big = format!(r#"{{"type":"ping","id":1,"pad":"{}"}}"#, "x".repeat(20_000));
        assert!(matches!(
            decode_client(&big),
            Err(DecodeError::TooLarge {
                limit: MAX_CLIENT_MSG_BYTES,
                ..
            })
        ));
    }

    #[test]
    fn other_version_hello_is_a_mismatch_even_if_its_shape_changed() {
        let text = r#"{"type":"hello","data":{"protocol_version":99,"something_new":{}}}"#;
        assert_eq!(
            decode_server(text),
            Err(DecodeError::VersionMismatch {
                ours: PROTOCOL_VERSION,
                theirs: 99
            })
        );
        let msg = decode_server(text).expect_err("mismatch").to_string();
        assert!(msg.contains("version 99"), "{msg}");
        // A version-1 agent put the version at the top level.
        let v1 = r#"{"type":"hello","protocol_version":1,"agent_version":"0.0.1"}"#;
        assert!(matches!(
            decode_server(v1),
            Err(DecodeError::VersionMismatch { theirs: 1, .. })
        ));
    }
}
