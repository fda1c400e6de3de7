//! Decoders, written out, for the protocol's internally tagged enums (`{"kind":"sampled",
//! "hz":99}`) and the topology's flattened node kind. serde's derive reads those through an
//! intermediate tree of the whole object (its `Content` buffer), because the tag may come
//! after the fields: that compiled a second decoder per type into the page, plus the tree's own
//! machinery. Here each type reads one flat struct (the tag and every variant's fields,
//! optional) straight from the input, in any order, and then checks the variant's fields are
//! there, with serde's own "missing field" message. Unknown fields are ignored, as the derive
//! ignored them. Encoding stays serde's derive.

use serde::{Deserialize, Deserializer};

use super::{
    event::Fidelity,
    summary::Outcome,
    topology::{CacheType, Node, NodeKind, TopologySource},
};

/// A variant's field, or serde's "missing field" error.
fn need<T, E: serde::de::Error>(field: Option<T>, name: &'static str) -> Result<T, E> {
    field.ok_or_else(|| E::missing_field(name))
}

impl<'de> Deserialize<'de> for Fidelity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Fidelity, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "snake_case")]
        enum Kind {
            Exact,
            SelfTimed,
            Sampled,
        }
        #[derive(Deserialize)]
        struct Flat {
            kind: Kind,
            hz: Option<u32>,
        }
        let f = Flat::deserialize(d)?;
        Ok(match f.kind {
            Kind::Exact => Fidelity::Exact,
            Kind::SelfTimed => Fidelity::SelfTimed,
            Kind::Sampled => Fidelity::Sampled {
                hz: need(f.hz, "hz")?,
            },
        })
    }
}

impl<'de> Deserialize<'de> for Outcome {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Outcome, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "snake_case")]
        enum Kind {
            Completed,
            Stopped,
            TimedOut,
            Failed,
        }
        #[derive(Deserialize)]
        struct Flat {
            kind: Kind,
            cap_secs: Option<u32>,
            message: Option<String>,
        }
        let f = Flat::deserialize(d)?;
        Ok(match f.kind {
            Kind::Completed => Outcome::Completed,
            Kind::Stopped => Outcome::Stopped,
            Kind::TimedOut => Outcome::TimedOut {
                cap_secs: need(f.cap_secs, "cap_secs")?,
            },
            Kind::Failed => Outcome::Failed {
                message: need(f.message, "message")?,
            },
        })
    }
}

impl<'de> Deserialize<'de> for TopologySource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<TopologySource, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "snake_case")]
        enum Kind {
            Live,
            Xml,
            Synthetic,
        }
        #[derive(Deserialize)]
        struct Flat {
            kind: Kind,
            file: Option<String>,
            description: Option<String>,
        }
        let f = Flat::deserialize(d)?;
        Ok(match f.kind {
            Kind::Live => TopologySource::Live,
            Kind::Xml => TopologySource::Xml {
                file: need(f.file, "file")?,
            },
            Kind::Synthetic => TopologySource::Synthetic {
                description: need(f.description, "description")?,
            },
        })
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "snake_case")]
        enum Kind {
            Machine,
            Package,
            Die,
            Group,
            Cache,
            Core,
            Pu,
        }
        /// A node's own fields and its kind's, as the encoder writes them side by side.
        #[derive(Deserialize)]
        struct Flat {
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
        let f = Flat::deserialize(d)?;
        let kind = match f.kind {
            Kind::Machine => NodeKind::Machine,
            Kind::Package => NodeKind::Package {
                cpu_model: f.cpu_model,
            },
            Kind::Die => NodeKind::Die,
            Kind::Group => NodeKind::Group,
            Kind::Cache => NodeKind::Cache {
                level: need(f.level, "level")?,
                cache_type: need(f.cache_type, "cache_type")?,
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

#[cfg(test)]
mod tests {
    use serde::de::DeserializeOwned;

    use super::*;

    /// Encodes with serde's derive and reads it back here, from text and from a parsed tree.
    fn round_trip<T: serde::Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(v: &T) {
        let json = serde_json::to_string(v).expect("encode");
        assert_eq!(&serde_json::from_str::<T>(&json).expect(&json), v, "{json}");
        let tree = serde_json::to_value(v).expect("encode");
        assert_eq!(
            &serde_json::from_value::<T>(tree).expect(&json),
            v,
            "{json}"
        );
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
        let f: Fidelity =
            serde_json::from_str(r#"{"hz":7,"x":{"y":[]},"kind":"sampled"}"#).expect("decode");
        assert_eq!(f, Fidelity::Sampled { hz: 7 });
        let f: Fidelity = serde_json::from_str(r#"{"kind":"exact","hz":7}"#).expect("decode");
        assert_eq!(f, Fidelity::Exact);
        let err = |r: Result<Fidelity, serde_json::Error>| r.expect_err("refused").to_string();
        assert!(err(serde_json::from_str(r#"{"kind":"sampled"}"#)).contains("missing field `hz`"));
        assert!(err(serde_json::from_str(r#"{"hz":1}"#)).contains("missing field `kind`"));
        assert!(
            err(serde_json::from_str(r#"{"kind":"guessed"}"#))
                .contains("unknown variant `guessed`")
        );
        let o = serde_json::from_str::<Outcome>(r#"{"kind":"failed"}"#).expect_err("refused");
        assert!(o.to_string().contains("missing field `message`"), "{o}");
        let n = serde_json::from_str::<Node>(
            r#"{"kind":"cache","level":2,"cache_type":"sideways","pus":[],"children":[]}"#,
        )
        .expect_err("refused");
        assert!(n.to_string().contains("unknown variant `sideways`"), "{n}");
        let n = serde_json::from_str::<Node>(r#"{"kind":"core","pus":[]}"#).expect_err("refused");
        assert!(n.to_string().contains("missing field `children`"), "{n}");
    }
}
