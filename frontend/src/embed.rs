//! The `postMessage` API an embedding page steers the player with: typed commands in
//! ([`EmbedCommand`]), typed notices out ([`Notice`]), each a JSON object tagged by its
//! `coreplay` key (`{"coreplay":"seek","t":"5ms"}`, `{"coreplay":"state",…}`). Pure but for
//! [`post`], so tested natively; `hooks/messages.rs` listens, `store.rs` answers.

use coreplay_shared::Fixed;
use coreplay_shared::json::{self, FromJson, Reader};
use coreplay_shared::json_struct;
use coreplay_shared::{event::Ns, frame::parse_duration};
use serde::{Deserialize, Serialize};

use crate::{js, options::nearest_speed, playback::Command, state::AppState};

/// Longest message read, bytes of JSON; longer ones are not for us.
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// Largest time a bare number may give, ms.
const MAX_MS: f64 = 1e9;

/// A command from the embedding page. Encoded by serde's derive; read from a [`Message`] by
/// [`EmbedCommand::from_message`], leniently: a key's wrong type is an error in words, not a
/// message that is silently not for us.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "coreplay", rename_all = "lowercase")]
pub enum EmbedCommand {
    /// `{"coreplay":"play"}`
    Play,
    /// `{"coreplay":"pause"}`
    Pause,
    /// `{"coreplay":"toggle"}`
    Toggle,
    /// `{"coreplay":"step"}`: to the next event.
    Step,
    /// `{"coreplay":"back"}`: to the previous event.
    Back,
    /// `{"coreplay":"seek","t":"5ms"}`
    Seek {
        /// Where to.
        t: Time,
    },
    /// `{"coreplay":"speed","speed":"10us"}`: this much of the run per second on screen.
    Speed {
        /// How fast.
        speed: Time,
    },
}

/// A time as the embedding page writes it: a number of ms, or a string with its unit.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Time {
    /// `5` or `1.5`: milliseconds, like the address's `t=`.
    Ms(f64),
    /// `"40us"`, `"12.5ms"`, `"1s"`, `"300ns"`.
    Text(String),
}

impl Time {
    /// The time in ns, checked.
    pub fn ns(&self) -> Result<Ns, String> {
        match self {
            Time::Ms(ms) if ms.is_finite() && (0.0..=MAX_MS).contains(ms) => Ok((ms * 1e6) as Ns),
            Time::Ms(ms) => Err(format!(
                "{} ms is out of range (0 to {} ms)",
                Fixed(*ms, 3),
                Fixed(MAX_MS, 0)
            )),
            Time::Text(s) => parse_duration(s),
        }
    }
}

impl Time {
    /// Reads a time: a number of ms or a string.
    fn from_loose(v: &Loose) -> Result<Time, String> {
        match v {
            Loose::Number(n) => Ok(Time::Ms(*n)),
            Loose::Text(text) => Ok(Time::Text(text.clone())),
            Loose::Other => Err("expected a number of ms or a string like \"12ms\"".to_string()),
        }
    }
}

/// A value of a message as far as a command cares: a number, a string, or anything else.
#[derive(Debug, Clone, PartialEq)]
pub enum Loose {
    /// A number.
    Number(f64),
    /// A string.
    Text(String),
    /// Anything else (read and dropped).
    Other,
}

impl FromJson for Loose {
    fn read(r: &mut Reader<'_>) -> json::Result<Loose> {
        if r.is_string() {
            String::read(r).map(Loose::Text)
        } else if r.is_number() {
            r.f64().map(Loose::Number)
        } else {
            r.skip().map(|()| Loose::Other)
        }
    }
}

/// The keys of a message that a command reads; others are ignored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Message {
    coreplay: Option<Loose>,
    t: Option<Loose>,
    speed: Option<Loose>,
}
json_struct!(Message { coreplay, t, speed });

/// The commands' names, for the message about an unknown one.
const COMMANDS: &str = "`play`, `pause`, `toggle`, `step`, `back`, `seek`, `speed`";

impl EmbedCommand {
    /// Reads a command from a message already parsed: `{"coreplay": NAME, …}`, other keys
    /// ignored. Errors say what was wrong, as serde's would.
    pub fn from_message(m: &Message) -> Result<EmbedCommand, String> {
        let time = |key: &str, v: &Option<Loose>| match v {
            Some(t) => Time::from_loose(t),
            None => Err(format!("missing field `{key}`")),
        };
        let name = match &m.coreplay {
            Some(Loose::Text(name)) => Some(name.as_str()),
            _ => None,
        };
        Ok(match name {
            Some("play") => EmbedCommand::Play,
            Some("pause") => EmbedCommand::Pause,
            Some("toggle") => EmbedCommand::Toggle,
            Some("step") => EmbedCommand::Step,
            Some("back") => EmbedCommand::Back,
            Some("seek") => EmbedCommand::Seek {
                t: time("t", &m.t)?,
            },
            Some("speed") => EmbedCommand::Speed {
                speed: time("speed", &m.speed)?,
            },
            Some(other) => {
                return Err(format!(
                    "unknown variant `{other}`, expected one of {COMMANDS}"
                ));
            }
            None => return Err("missing field `coreplay`".to_string()),
        })
    }

    /// The playback command it asks for; a bad time is an error.
    pub fn command(&self) -> Result<Command, String> {
        Ok(match self {
            EmbedCommand::Play => Command::Play,
            EmbedCommand::Pause => Command::Pause,
            EmbedCommand::Toggle => Command::Toggle,
            EmbedCommand::Step => Command::StepForward,
            EmbedCommand::Back => Command::StepBack,
            EmbedCommand::Seek { t } => Command::Seek(t.ns()?),
            EmbedCommand::Speed { speed } => Command::Speed(nearest_speed(speed.ns()?)),
        })
    }
}

/// What the page tells the embedding page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "coreplay", rename_all = "lowercase")]
pub enum Notice {
    /// The run has loaded: commands now act on it.
    Ready {
        /// Events in it.
        events: u64,
        /// Its end, ns.
        end_ns: Ns,
        /// The cursor, ns.
        t: Ns,
        /// Whether it plays.
        playing: bool,
    },
    /// The answer to a command: where playback stands.
    State {
        /// Whether a run is shown (if not, the command waits for it).
        loaded: bool,
        /// The cursor, ns.
        t: Ns,
        /// Whether it plays.
        playing: bool,
        /// Ns of the run per second on screen.
        speed_ns_per_s: u64,
    },
    /// The answer to a command the page cannot carry out.
    Error {
        /// Why, in words.
        message: String,
    },
}

impl Notice {
    /// Where playback of `st` stands.
    pub fn state(st: &AppState) -> Notice {
        Notice::State {
            loaded: st.shown().is_some(),
            t: st.playback.t,
            playing: st.playback.playing,
            speed_ns_per_s: st.playback.ns_per_second(),
        }
    }

    /// That the shown run of `st` is ready, if one is shown.
    pub fn ready(st: &AppState) -> Option<Notice> {
        st.shown().map(|rec| Notice::Ready {
            events: rec.view.events,
            end_ns: rec.replay.end(),
            t: st.playback.t,
            playing: st.playback.playing,
        })
    }

    /// Its JSON text: what serde's derive writes (tested), written out so that the page
    /// carries no serialiser for it.
    pub fn to_json(&self) -> String {
        match self {
            Notice::Ready {
                events,
                end_ns,
                t,
                playing,
            } => format!(
                r#"{{"coreplay":"ready","events":{events},"end_ns":{end_ns},"t":{t},"playing":{playing}}}"#
            ),
            Notice::State {
                loaded,
                t,
                playing,
                speed_ns_per_s,
            } => format!(
                r#"{{"coreplay":"state","loaded":{loaded},"t":{t},"playing":{playing},"speed_ns_per_s":{speed_ns_per_s}}}"#
            ),
            Notice::Error { message } => {
                format!(
                    r#"{{"coreplay":"error","message":{}}}"#,
                    json::quote(message)
                )
            }
        }
    }
}

/// Reads a `postMessage` payload (as JSON text). `Ok(None)` for messages not meant for
/// coreplay (no string `coreplay` key: other scripts on the page post messages too); an error
/// in words for a command the page cannot carry out.
pub fn parse_embed_message(json: &str) -> Result<Option<Command>, String> {
    if json.len() > MAX_MESSAGE_BYTES {
        return Ok(None);
    }
    let Ok(message) = json::from_str::<Message>(json) else {
        return Ok(None);
    };
    let Some(Loose::Text(name)) = &message.coreplay else {
        return Ok(None);
    };
    let bad = |why: String| {
        let name: String = name.chars().take(40).collect();
        let why: String = why.chars().take(200).collect();
        format!("bad command {}: {why}", json::quote(&name))
    };
    let cmd = EmbedCommand::from_message(&message).map_err(bad)?;
    cmd.command().map(Some).map_err(bad)
}

/// Posts `notice` to the embedding page, if any.
pub fn post(notice: &Notice) {
    if let Ok(v) = js_sys::JSON::parse(&notice.to_json()) {
        js::post_to_parent(&v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn post_messages_are_validated() {
        assert_eq!(
            parse_embed_message(r#"{"coreplay":"play"}"#),
            Ok(Some(Command::Play))
        );
        assert_eq!(
            parse_embed_message(r#"{"coreplay":"seek","t":1.5}"#),
            Ok(Some(Command::Seek(1_500_000)))
        );
        assert_eq!(
            parse_embed_message(r#"{"coreplay":"seek","t":"40us"}"#),
            Ok(Some(Command::Seek(40_000)))
        );
        assert!(matches!(
            parse_embed_message(r#"{"coreplay":"speed","speed":"10us"}"#),
            Ok(Some(Command::Speed(_)))
        ));
        let err = |json: &str| parse_embed_message(json).expect_err(json);
        assert_eq!(
            err(r#"{"coreplay":"seek"}"#),
            r#"bad command "seek": missing field `t`"#
        );
        assert!(err(r#"{"coreplay":"rm -rf"}"#).starts_with(
            r#"bad command "rm -rf": unknown variant `rm -rf`, expected one of `play`"#
        ));
        assert_eq!(
            err(r#"{"coreplay":"speed","speed":[1]}"#),
            r#"bad command "speed": expected a number of ms or a string like "12ms""#
        );
        assert!(err(r#"{"coreplay":"seek","t":-1}"#).contains("out of range"));
        assert_eq!(parse_embed_message(r#"{"coreplay":7}"#), Ok(None));
        assert_eq!(parse_embed_message(r#"{"other":"thing"}"#), Ok(None));
        assert_eq!(parse_embed_message("not json"), Ok(None));
    }

    /// Every command reads back as what it was written as, and means the same.
    #[test]
    fn commands_round_trip() {
        let all = [
            (EmbedCommand::Play, r#"{"coreplay":"play"}"#, Command::Play),
            (
                EmbedCommand::Pause,
                r#"{"coreplay":"pause"}"#,
                Command::Pause,
            ),
            (
                EmbedCommand::Toggle,
                r#"{"coreplay":"toggle"}"#,
                Command::Toggle,
            ),
            (
                EmbedCommand::Step,
                r#"{"coreplay":"step"}"#,
                Command::StepForward,
            ),
            (
                EmbedCommand::Back,
                r#"{"coreplay":"back"}"#,
                Command::StepBack,
            ),
            (
                EmbedCommand::Seek {
                    t: Time::Text("5ms".into()),
                },
                r#"{"coreplay":"seek","t":"5ms"}"#,
                Command::Seek(5_000_000),
            ),
            (
                EmbedCommand::Seek { t: Time::Ms(2.5) },
                r#"{"coreplay":"seek","t":2.5}"#,
                Command::Seek(2_500_000),
            ),
            (
                EmbedCommand::Speed {
                    speed: Time::Text("10us".into()),
                },
                r#"{"coreplay":"speed","speed":"10us"}"#,
                Command::Speed(crate::playback::SPEEDS.len() - 1),
            ),
        ];
        for (typed, json, cmd) in all {
            assert_eq!(serde_json::to_string(&typed).ok().as_deref(), Some(json));
            let message: Message = json::from_str(json).expect(json);
            let back = EmbedCommand::from_message(&message).expect(json);
            assert_eq!(back, typed);
            assert_eq!(parse_embed_message(json), Ok(Some(cmd)), "{json}");
        }
        // A whole number of ms, as pages write it, and unknown keys beside the command.
        assert_eq!(
            parse_embed_message(r#"{"coreplay":"seek","t":5,"from":"slide 3"}"#),
            Ok(Some(Command::Seek(5_000_000)))
        );
    }

    /// What the embedding page gets back reads exactly as it always has.
    #[test]
    fn notices_keep_their_wire_form() {
        let state = Notice::State {
            loaded: true,
            t: 5_000_000,
            playing: false,
            speed_ns_per_s: 1_000_000,
        };
        assert_eq!(
            state.to_json(),
            r#"{"coreplay":"state","loaded":true,"t":5000000,"playing":false,"speed_ns_per_s":1000000}"#
        );
        let ready = Notice::Ready {
            events: 99,
            end_ns: 12_000,
            t: 0,
            playing: true,
        };
        let as_before = serde_json::json!({
            "coreplay": "ready", "events": 99, "end_ns": 12_000, "t": 0, "playing": true,
        });
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&ready.to_json()).ok(),
            Some(as_before)
        );
        let error = Notice::Error {
            message: "no \"quote\" left behind".into(),
        };
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&error.to_json()).ok(),
            Some(serde_json::json!({"coreplay": "error", "message": "no \"quote\" left behind"}))
        );
        for n in [state, ready, error] {
            assert_eq!(n.to_json(), serde_json::to_string(&n).expect("encode"));
            assert_eq!(serde_json::from_str::<Notice>(&n.to_json()).ok(), Some(n));
        }
    }

    /// A command the page cannot carry out is answered with why; anything else is not ours.
    #[test]
    fn malformed_commands_say_what_is_wrong() {
        let err = |json: &str| parse_embed_message(json).expect_err(json);
        let unknown = err(r#"{"coreplay":"fly"}"#);
        assert!(
            unknown.contains("\"fly\"") && unknown.contains("play") && unknown.contains("seek"),
            "{unknown}"
        );
        assert!(err(r#"{"coreplay":"seek"}"#).contains("missing field `t`"));
        assert!(err(r#"{"coreplay":"speed"}"#).contains("missing field `speed`"));
        let shape = err(r#"{"coreplay":"seek","t":{}}"#);
        assert!(shape.contains("a number of ms or a string"), "{shape}");
        assert!(err(r#"{"coreplay":"seek","t":1e12}"#).contains("out of range"));
        assert!(err(r#"{"coreplay":"seek","t":-3}"#).contains("out of range"));
        assert!(!err(r#"{"coreplay":"seek","t":"-3ms"}"#).is_empty());
        assert!(!err(r#"{"coreplay":"speed","speed":"warp"}"#).is_empty());
        // A long name is cut in the answer.
        let long = format!(r#"{{"coreplay":"{}"}}"#, "x".repeat(3000));
        assert!(err(&long).len() < 400);
        for not_ours in [
            r#"{"coreplay":5}"#,
            r#""just a string""#,
            "null",
            "[1,2]",
            &format!(r#"{{"coreplay":"play","pad":"{}"}}"#, "x".repeat(5000)),
        ] {
            assert_eq!(parse_embed_message(not_ours), Ok(None), "{not_ours}");
        }
    }
}
