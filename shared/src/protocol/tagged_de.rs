//! Decoders, written out, for the protocol's tagged enums other than [`Event`] and the
//! messages: the internally tagged ones (`{"kind":"sampled","hz":99}`), the topology's node
//! with its kind flattened beside its own fields, and the externally tagged [`WakeBy`] and
//! [`ProcessEnd`] (`"io"` or `{"task":{"task":3}}`). Each internally tagged type reads one flat
//! struct (the tag and every variant's fields, optional) in any order, then checks that the
//! variant's fields are there, with serde's own "missing field" message. Unknown fields are
//! ignored, as serde's derive ignored them. Encoding stays serde's derive.
//!
//! [`Event`]: super::event::Event

use crate::json::{FromJson, Reader, Result};
use crate::{json_names, json_struct};

use super::{
    event::{Fidelity, ProcessEnd, WakeBy},
    summary::Outcome,
    topology::{CacheType, Node, NodeKind, TopologySource},
};

impl FromJson for Fidelity {
    fn read(r: &mut Reader<'_>) -> Result<Fidelity> {
        #[derive(Clone, Copy)]
        enum Kind {
            Exact,
            SelfTimed,
            Sampled,
        }
        json_names!(Kind {
            Exact = "exact",
            SelfTimed = "self_timed",
            Sampled = "sampled"
        });
        struct Fields {
            kind: Kind,
            hz: Option<u32>,
        }
        json_struct!(Fields { kind, hz });
        let f = Fields::read(r)?;
        Ok(match f.kind {
            Kind::Exact => Fidelity::Exact,
            Kind::SelfTimed => Fidelity::SelfTimed,
            Kind::Sampled => Fidelity::Sampled {
                hz: r.need(f.hz, "hz")?,
            },
        })
    }
}

impl FromJson for Outcome {
    fn read(r: &mut Reader<'_>) -> Result<Outcome> {
        #[derive(Clone, Copy)]
        enum Kind {
            Completed,
            Stopped,
            TimedOut,
            Failed,
        }
        json_names!(Kind {
            Completed = "completed",
            Stopped = "stopped",
            TimedOut = "timed_out",
            Failed = "failed"
        });
        struct Fields {
            kind: Kind,
            cap_secs: Option<u32>,
            message: Option<String>,
        }
        json_struct!(Fields {
            kind,
            cap_secs,
            message
        });
        let f = Fields::read(r)?;
        Ok(match f.kind {
            Kind::Completed => Outcome::Completed,
            Kind::Stopped => Outcome::Stopped,
            Kind::TimedOut => Outcome::TimedOut {
                cap_secs: r.need(f.cap_secs, "cap_secs")?,
            },
            Kind::Failed => Outcome::Failed {
                message: r.need(f.message, "message")?,
            },
        })
    }
}

impl FromJson for TopologySource {
    fn read(r: &mut Reader<'_>) -> Result<TopologySource> {
        #[derive(Clone, Copy)]
        enum Kind {
            Live,
            Xml,
            Synthetic,
        }
        json_names!(Kind {
            Live = "live",
            Xml = "xml",
            Synthetic = "synthetic"
        });
        struct Fields {
            kind: Kind,
            file: Option<String>,
            description: Option<String>,
        }
        json_struct!(Fields {
            kind,
            file,
            description
        });
        let f = Fields::read(r)?;
        Ok(match f.kind {
            Kind::Live => TopologySource::Live,
            Kind::Xml => TopologySource::Xml {
                file: r.need(f.file, "file")?,
            },
            Kind::Synthetic => TopologySource::Synthetic {
                description: r.need(f.description, "description")?,
            },
        })
    }
}

impl FromJson for Node {
    fn read(r: &mut Reader<'_>) -> Result<Node> {
        #[derive(Clone, Copy)]
        enum Kind {
            Machine,
            Package,
            Die,
            Group,
            Cache,
            Core,
            Pu,
        }
        json_names!(Kind {
            Machine = "machine",
            Package = "package",
            Die = "die",
            Group = "group",
            Cache = "cache",
            Core = "core",
            Pu = "pu"
        });
        /// A node's own fields and its kind's, as the encoder writes them side by side.
        struct Fields {
            kind: Kind,
            cpu_model: Option<String>,
            level: Option<u8>,
            cache_type: Option<CacheType>,
            size_bytes: Option<u64>,
            line_bytes: Option<u32>,
            os_index: Option<u32>,
            pus: Vec<u32>,
            children: Vec<Node>,
        }
        json_struct!(Fields {
            kind,
            cpu_model,
            level,
            cache_type,
            size_bytes,
            line_bytes,
            os_index,
            pus,
            children
        });
        let f = Fields::read(r)?;
        let kind = match f.kind {
            Kind::Machine => NodeKind::Machine,
            Kind::Package => NodeKind::Package {
                cpu_model: f.cpu_model,
            },
            Kind::Die => NodeKind::Die,
            Kind::Group => NodeKind::Group,
            Kind::Cache => NodeKind::Cache {
                level: r.need(f.level, "level")?,
                cache_type: r.need(f.cache_type, "cache_type")?,
                size_bytes: f.size_bytes,
                line_bytes: f.line_bytes,
            },
            Kind::Core => NodeKind::Core,
            Kind::Pu => NodeKind::Pu,
        };
        Ok(Node {
            kind,
            os_index: f.os_index,
            pus: f.pus,
            children: f.children,
        })
    }
}

impl FromJson for WakeBy {
    fn read(r: &mut Reader<'_>) -> Result<WakeBy> {
        const NAMES: &[&str] = &["io", "timer", "task", "other"];
        struct Task {
            task: u32,
        }
        json_struct!(Task { task });
        if r.is_string() {
            return match r.name(NAMES)? {
                0 => Ok(WakeBy::Io),
                1 => Ok(WakeBy::Timer),
                3 => Ok(WakeBy::Other),
                _ => Err(r.fail("invalid type: unit variant, expected struct variant")),
            };
        }
        let mut by = None;
        r.one_variant("enum WakeBy", NAMES, &mut |r, i| {
            by = Some(match i {
                2 => WakeBy::Task {
                    task: Task::read(r)?.task,
                },
                _ => return Err(r.unexpected("unit variant")),
            });
            Ok(())
        })?;
        by.ok_or_else(|| r.fail("expected a variant of WakeBy"))
    }
}

impl FromJson for ProcessEnd {
    fn read(r: &mut Reader<'_>) -> Result<ProcessEnd> {
        const NAMES: &[&str] = &["exited", "signaled", "unknown"];
        struct Exited {
            code: i32,
        }
        json_struct!(Exited { code });
        struct Signaled {
            signal: i32,
        }
        json_struct!(Signaled { signal });
        if r.is_string() {
            return match r.name(NAMES)? {
                2 => Ok(ProcessEnd::Unknown),
                _ => Err(r.fail("invalid type: unit variant, expected struct variant")),
            };
        }
        let mut end = None;
        r.one_variant("enum ProcessEnd", NAMES, &mut |r, i| {
            end = Some(match i {
                0 => ProcessEnd::Exited {
                    code: Exited::read(r)?.code,
                },
                1 => ProcessEnd::Signaled {
                    signal: Signaled::read(r)?.signal,
                },
                _ => return Err(r.unexpected("unit variant")),
            });
            Ok(())
        })?;
        end.ok_or_else(|| r.fail("expected a variant of ProcessEnd"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::from_str;

    /// Encodes with serde's derive and reads it back here.
    fn round_trip<T: serde::Serialize + FromJson + PartialEq + std::fmt::Debug>(v: &T) {
        let json = serde_json::to_string(v).expect("encode");
        assert_eq!(&from_str::<T>(&json).expect(&json), v, "{json}");
        // Pretty-printed (other whitespace, and no order assumed).
        let pretty = serde_json::to_string_pretty(v).expect("encode");
        assert_eq!(&from_str::<T>(&pretty).expect(&pretty), v, "{pretty}");
    }

    #[test]
    fn every_variant_reads_back_what_the_encoder_wrote() {
        for f in [
            Fidelity::Exact,
            Fidelity::SelfTimed,
            Fidelity::Sampled { hz: 99 },
        ] {
            round_trip(&f);
        }
        for o in [
            Outcome::Completed,
            Outcome::Stopped,
            Outcome::TimedOut { cap_secs: 30 },
            Outcome::Failed {
                message: "no \"luck\"".into(),
            },
        ] {
            round_trip(&o);
        }
        for s in [
            TopologySource::Live,
            TopologySource::Xml {
                file: "m.xml".into(),
            },
            TopologySource::Synthetic {
                description: "pack:2 pu:2".into(),
            },
        ] {
            round_trip(&s);
        }
        for w in [
            WakeBy::Io,
            WakeBy::Timer,
            WakeBy::Task { task: 7 },
            WakeBy::Other,
        ] {
            round_trip(&w);
        }
        for e in [
            ProcessEnd::Exited { code: -1 },
            ProcessEnd::Signaled { signal: 9 },
            ProcessEnd::Unknown,
        ] {
            round_trip(&e);
        }
        let kinds = [
            NodeKind::Machine,
            NodeKind::Package {
                cpu_model: Some("EPYC".into()),
            },
            NodeKind::Package { cpu_model: None },
            NodeKind::Die,
            NodeKind::Group,
            NodeKind::Cache {
                level: 3,
                cache_type: CacheType::Unified,
                size_bytes: Some(1 << 25),
                line_bytes: None,
            },
            NodeKind::Cache {
                level: 1,
                cache_type: CacheType::Instruction,
                size_bytes: None,
                line_bytes: Some(64),
            },
            NodeKind::Cache {
                level: 1,
                cache_type: CacheType::Data,
                size_bytes: None,
                line_bytes: Some(64),
            },
            NodeKind::Core,
            NodeKind::Pu,
        ];
        for kind in kinds {
            let leaf = Node {
                kind: NodeKind::Pu,
                os_index: Some(3),
                pus: vec![3],
                children: vec![],
            };
            round_trip(&Node {
                kind,
                os_index: None,
                pus: vec![3],
                children: vec![leaf],
            });
        }
    }

    #[test]
    fn tags_anywhere_unknown_fields_and_missing_fields_read_as_serde_read_them() {
        let f: Fidelity = from_str(r#"{"hz":7,"x":{"y":[]},"kind":"sampled"}"#).expect("decode");
        assert_eq!(f, Fidelity::Sampled { hz: 7 });
        let f: Fidelity = from_str(r#"{"kind":"exact","hz":7}"#).expect("decode");
        assert_eq!(f, Fidelity::Exact);
        let err = |r: Result<Fidelity>| r.expect_err("refused").to_string();
        assert!(err(from_str(r#"{"kind":"sampled"}"#)).contains("missing field `hz`"));
        assert!(err(from_str(r#"{"hz":1}"#)).contains("missing field `kind`"));
        assert!(err(from_str(r#"{"kind":"guessed"}"#)).contains("unknown variant `guessed`"));
        let o = from_str::<Outcome>(r#"{"kind":"failed"}"#).expect_err("refused");
        assert!(o.to_string().contains("missing field `message`"), "{o}");
        let n = from_str::<Node>(
            r#"{"kind":"cache","level":2,"cache_type":"sideways","pus":[],"children":[]}"#,
        )
        .expect_err("refused");
        assert!(n.to_string().contains("unknown variant `sideways`"), "{n}");
        let n = from_str::<Node>(r#"{"kind":"core","pus":[]}"#).expect_err("refused");
        assert!(n.to_string().contains("missing field `children`"), "{n}");
        let n = from_str::<Node>(
            r#"{"kind":"cache","level":256,"cache_type":"data","pus":[],"children":[]}"#,
        )
        .expect_err("refused");
        assert!(n.to_string().contains("expected u8"), "{n}");
    }

    #[test]
    fn externally_tagged_variants_take_their_own_form_only() {
        let bad = |json: &str| from_str::<WakeBy>(json).expect_err(json).to_string();
        assert!(bad(r#""task""#).contains("unit variant"));
        assert!(bad(r#"{"io":{}}"#).contains("unit variant"));
        assert!(bad(r#"{"task":{"task":1},"io":null}"#).contains("expected `}`"));
        assert!(bad(r#"{"sideways":{}}"#).contains("unknown variant `sideways`"));
        assert!(bad(r#"{}"#).contains("expected a variant"));
        assert!(bad("7").contains("invalid type: integer `7`"));
        let bad = |json: &str| from_str::<ProcessEnd>(json).expect_err(json).to_string();
        assert!(bad(r#""exited""#).contains("unit variant"));
        assert!(bad(r#"{"exited":{}}"#).contains("missing field `code`"));
        assert!(bad(r#"{"signaled":{"signal":2147483648}}"#).contains("expected i32"));
    }
}
