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

use serde::{Deserialize, Serialize};

use crate::{
    event::{Event, Fidelity},
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
/// Decoding is written out (see `impl Deserialize` below) and requires `"type"` before
/// `"data"`, as the agent writes them: serde's derived decoder also accepts the other order by
/// buffering the data into an intermediate tree, which compiled a second copy of every event
/// decoder into the page (tens of kB of WebAssembly) for an order nobody sends.
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
    use serde::Deserialize;

    use super::{ErrorCode, Event, Fidelity, Params, ScenarioId, Summary, WatchTarget};

    #[derive(Deserialize)]

    pub struct Pong {
        pub id: u64,
    }

    #[derive(Deserialize)]

    pub struct Error {
        pub code: ErrorCode,
        pub message: String,
        #[serde(default)]
        pub field: Option<String>,
    }

    #[derive(Deserialize)]

    pub struct RunStarted {
        pub run: u64,
        pub scenario: ScenarioId,
        pub params: Params,
        pub fidelity: Fidelity,
        pub yours: bool,
        #[serde(default)]
        pub watch: Option<WatchTarget>,
    }

    #[derive(Deserialize)]

    pub struct Events {
        pub run: u64,
        pub events: Vec<Event>,
        #[serde(default)]
        pub dropped: u64,
    }

    #[derive(Deserialize)]

    pub struct RunEnded {
        pub run: u64,
        pub summary: Box<Summary>,
        #[serde(default)]
        pub saved: Option<String>,
    }
}

impl<'de> Deserialize<'de> for ServerMsg {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{Error as _, MapAccess, Visitor};

        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ServerMsg;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(r#"a server message {"type": …, "data": …}"#)
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ServerMsg, A::Error> {
                let key: Option<std::borrow::Cow<'de, str>> = map.next_key()?;
                if key.as_deref() != Some("type") {
                    return Err(A::Error::custom(format_args!(
                        "{TYPE_FIRST} (then \"data\")"
                    )));
                }
                let kind: std::borrow::Cow<'de, str> = map.next_value()?;
                let key: Option<std::borrow::Cow<'de, str>> = map.next_key()?;
                if key.as_deref() != Some("data") {
                    return Err(A::Error::missing_field("data"));
                }
                let msg = match kind.as_ref() {
                    "hello" => ServerMsg::Hello(map.next_value()?),
                    "pong" => {
                        let w: wire::Pong = map.next_value()?;
                        ServerMsg::Pong { id: w.id }
                    }
                    "error" => {
                        let w: wire::Error = map.next_value()?;
                        ServerMsg::Error {
                            code: w.code,
                            message: w.message,
                            field: w.field,
                        }
                    }
                    "run_started" => {
                        let w: wire::RunStarted = map.next_value()?;
                        ServerMsg::RunStarted {
                            run: w.run,
                            scenario: w.scenario,
                            params: w.params,
                            fidelity: w.fidelity,
                            yours: w.yours,
                            watch: w.watch,
                        }
                    }
                    "events" => {
                        let w: wire::Events = map.next_value()?;
                        ServerMsg::Events {
                            run: w.run,
                            events: w.events,
                            dropped: w.dropped,
                        }
                    }
                    "run_ended" => {
                        let w: wire::RunEnded = map.next_value()?;
                        ServerMsg::RunEnded {
                            run: w.run,
                            summary: w.summary,
                            saved: w.saved,
                        }
                    }
                    other => {
                        return Err(A::Error::unknown_variant(
                            other,
                            &[
                                "hello",
                                "pong",
                                "error",
                                "run_started",
                                "events",
                                "run_ended",
                            ],
                        ));
                    }
                };
                if let Some(extra) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    return Err(A::Error::custom(format!(
                        "unexpected field {extra:?} after \"data\""
                    )));
                }
                Ok(msg)
            }
        }
        d.deserialize_map(V)
    }
}

/// The greeting: who the agent is and the machine it describes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    #[serde(default)]
    pub watch_programs: Vec<WatchProgram>,
}

/// Messages from the page to the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
        #[serde(default)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Deserialize)]
struct VersionProbe {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: Option<VersionProbeData>,
    /// Where protocol version 1 carried it.
    #[serde(default)]
    protocol_version: Option<u32>,
}

#[derive(Deserialize)]
struct VersionProbeData {
    #[serde(default)]
    protocol_version: Option<u32>,
}

/// Decodes and validates a message from the agent (the page's side).
pub fn decode_server(text: &str) -> Result<ServerMsg, DecodeError> {
    check_size(text, MAX_SERVER_MSG_BYTES)?;
    let mismatch = |theirs| DecodeError::VersionMismatch {
        ours: PROTOCOL_VERSION,
        theirs,
    };
    match parse_server(text) {
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
        Err(e) => match serde_json::from_str::<VersionProbe>(text) {
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

/// Parses a server message; one whose `"data"` comes before its `"type"` (as a JSON pretty
/// printer that sorts keys writes it) is put in order first (a slow path nobody needs to be
/// fast: the agent writes `"type"` first).
fn parse_server(text: &str) -> serde_json::Result<ServerMsg> {
    match serde_json::from_str::<ServerMsg>(text) {
        Err(e) if e.to_string().starts_with(TYPE_FIRST) => {
            let mut v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text)?;
            let (Some(kind), Some(data)) = (v.remove("type"), v.remove("data")) else {
                return Err(e);
            };
            if !v.is_empty() {
                return Err(e);
            }
            let ordered = format!(r#"{{"type":{kind},"data":{data}}}"#);
            serde_json::from_str(&ordered)
        }
        other => other,
    }
}

const TYPE_FIRST: &str = r#"a server message starts with "type""#;

/// Decodes a message from a client (the agent's side).
pub fn decode_client(text: &str) -> Result<ClientMsg, DecodeError> {
    check_size(text, MAX_CLIENT_MSG_BYTES)?;
    serde_json::from_str(text).map_err(|e| DecodeError::Malformed(e.to_string()))
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
    /// Encodes the message as the JSON text of one WebSocket frame.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

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
