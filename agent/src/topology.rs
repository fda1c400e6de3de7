//! hwloc → [`coreplay_shared::Topology`]: probing the live machine, loading an `lstopo` XML
//! file or building from a synthetic description, and printing the tree for the terminal.
//!
//! hwloc's default type filters keep NUMA nodes and data/unified caches and drop I/O objects;
//! we also keep instruction caches so the picture matches `lstopo`'s.

use std::{
    fmt::Write as _,
    io,
    num::NonZeroU64,
    path::{Path, PathBuf},
};

use coreplay_shared::{
    CacheType, MachineInfo, Node, NodeKind, NumaNode, Topology, TopologyError,
    topology::{TopologySource, cpu_list, format_bytes},
};
use hwlocality::{
    errors::RawHwlocError,
    object::{
        TopologyObject,
        attributes::ObjectAttributes,
        types::{CacheType as HwCacheType, ObjectType},
    },
    topology::builder::TypeFilter,
};

/// Largest XML file read (real machines with thousands of threads stay far below).
const MAX_XML_BYTES: u64 = 64 << 20;

/// Where to take the topology from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The machine the agent runs on.
    Live,
    /// An hwloc XML file as written by `lstopo file.xml`.
    Xml(PathBuf),
    /// An hwloc synthetic description such as `package:2 core:16 pu:2`.
    Synthetic(String),
}

/// Why a topology could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The XML file could not be read.
    #[error("cannot read topology file {path}: {source}")]
    ReadXml {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// The XML file is too large to be a topology.
    #[error("topology file {path} is {size} bytes, more than the {MAX_XML_BYTES} bytes accepted")]
    XmlTooLarge {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
    },
    /// hwloc refused the XML.
    #[error("{path} is not a valid hwloc XML topology (write one with `lstopo file.xml`)")]
    BadXml {
        /// The file.
        path: PathBuf,
    },
    /// hwloc refused the synthetic description.
    #[error(
        "invalid synthetic topology {description:?}: expected hwloc's syntax, \
         e.g. \"package:2 core:16 pu:2\" or \"package:1 l3:1 core:4 l2:1 l1d:1 pu:2\""
    )]
    BadSynthetic {
        /// The description as given.
        description: String,
    },
    /// hwloc failed on the live machine.
    #[error("hwloc could not probe this machine: {0}")]
    Probe(String),
    /// hwloc produced a tree we cannot use.
    #[error("the topology is not usable: {0}")]
    Invalid(#[from] TopologyError),
}

/// Loads a topology from `source` and converts it.
pub fn load(source: &Source) -> Result<Topology, ProbeError> {
    let hw = load_hwloc(source)?;
    let topology = convert(&hw, source);
    topology.validate()?;
    Ok(topology)
}

fn load_hwloc(source: &Source) -> Result<hwlocality::Topology, ProbeError> {
    let builder = hwlocality::Topology::builder();
    let builder = match source {
        Source::Live => builder,
        Source::Xml(path) => {
            // Read the file ourselves: hwlocality panics on a missing file (it only expects
            // EINVAL from hwloc), and this also bounds what we read.
            let size = std::fs::metadata(path)
                .map_err(|source| ProbeError::ReadXml {
                    path: path.clone(),
                    source,
                })?
                .len();
            if size > MAX_XML_BYTES {
                return Err(ProbeError::XmlTooLarge {
                    path: path.clone(),
                    size,
                });
            }
            let xml = std::fs::read_to_string(path).map_err(|source| ProbeError::ReadXml {
                path: path.clone(),
                source,
            })?;
            builder
                .from_xml(&xml)
                .map_err(|_| ProbeError::BadXml { path: path.clone() })?
        }
        Source::Synthetic(description) => {
            builder
                .from_synthetic(description)
                .map_err(|_| ProbeError::BadSynthetic {
                    description: description.clone(),
                })?
        }
    };
    let builder = builder
        .with_cpu_icache_type_filter(TypeFilter::KeepAll)
        .map_err(|e| ProbeError::Probe(raw_message(&e)))?;
    // Malformed XML is only noticed when hwloc loads it.
    builder.build().map_err(|e| match source {
        Source::Live => ProbeError::Probe(raw_message(&e)),
        Source::Xml(path) => ProbeError::BadXml { path: path.clone() },
        Source::Synthetic(description) => ProbeError::BadSynthetic {
            description: description.clone(),
        },
    })
}

/// hwlocality's own Display prints errno as a Debug struct; this reads better.
fn raw_message(e: &RawHwlocError) -> String {
    match e.errno {
        Some(errno) => format!("{} failed: {errno}", e.api),
        None => format!("{} failed", e.api),
    }
}

fn convert(hw: &hwlocality::Topology, source: &Source) -> Topology {
    let root = hw.root_object();
    let info =
        |obj: &TopologyObject, key: &str| obj.info(key).map(|v| v.to_string_lossy().into_owned());
    let cpu_model = hw
        .objects_with_type(ObjectType::Package)
        .find_map(|p| info(p, "CPUModel"));
    let os = match (info(root, "OSName"), info(root, "OSRelease")) {
        (Some(name), Some(release)) => Some(format!("{name} {release}")),
        (name, _) => name,
    };
    let machine = MachineInfo {
        hostname: info(root, "HostName"),
        cpu_model,
        os,
        source: match source {
            Source::Live => TopologySource::Live,
            Source::Xml(path) => TopologySource::Xml {
                file: path.display().to_string(),
            },
            Source::Synthetic(description) => TopologySource::Synthetic {
                description: description.clone(),
            },
        },
    };
    let numa_nodes = hw
        .objects_with_type(ObjectType::NUMANode)
        .map(|n| NumaNode {
            os_index: n.os_index().map_or(0, clamp_u32),
            pus: pu_set(n),
            memory_bytes: match n.attributes() {
                Some(ObjectAttributes::NUMANode(attr)) => attr.local_memory().map(NonZeroU64::get),
                _ => None,
            },
        })
        .collect();
    let mut roots = convert_object(root);
    let root = if roots.len() == 1 && roots[0].kind == NodeKind::Machine {
        roots.remove(0)
    } else {
        // hwloc's root is always a Machine; this only keeps the invariant if that changes.
        Node {
            kind: NodeKind::Machine,
            os_index: None,
            pus: pu_set(root),
            children: roots,
        }
    };
    Topology {
        machine,
        root,
        numa_nodes,
    }
}

/// Converts one object; objects of kinds we do not draw are replaced by their children.
fn convert_object(obj: &TopologyObject) -> Vec<Node> {
    let children: Vec<Node> = obj.normal_children().flat_map(convert_object).collect();
    let kind = match obj.object_type() {
        ObjectType::Machine => NodeKind::Machine,
        ObjectType::Package => NodeKind::Package {
            cpu_model: obj
                .info("CPUModel")
                .map(|v| v.to_string_lossy().into_owned()),
        },
        ObjectType::Group => NodeKind::Group,
        ObjectType::Core => NodeKind::Core,
        ObjectType::PU => NodeKind::Pu,
        ty if ty.is_cpu_cache() => match obj.attributes() {
            Some(ObjectAttributes::Cache(cache)) => NodeKind::Cache {
                level: u8::try_from(cache.depth()).unwrap_or(u8::MAX),
                cache_type: match cache.cache_type() {
                    HwCacheType::Data => CacheType::Data,
                    HwCacheType::Instruction => CacheType::Instruction,
                    _ => CacheType::Unified,
                },
                size_bytes: cache.size().map(NonZeroU64::get),
                line_bytes: cache.line_size().and_then(|l| u32::try_from(l.get()).ok()),
            },
            _ => return children,
        },
        _ => return children,
    };
    vec![Node {
        kind,
        os_index: obj.os_index().map(clamp_u32),
        pus: pu_set(obj),
        children,
    }]
}

fn pu_set(obj: &TopologyObject) -> Vec<u32> {
    obj.cpuset()
        .map(|set| set.iter_set().map(|i| clamp_u32(usize::from(i))).collect())
        .unwrap_or_default()
}

fn clamp_u32(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// Renders the topology as an indented tree for the terminal, like `lstopo --of console`.
pub fn render_tree(topology: &Topology) -> String {
    let mut out = String::new();
    let m = &topology.machine;
    let source = match &m.source {
        TopologySource::Live => "this machine".to_string(),
        TopologySource::Xml { file } => format!("XML file {file}"),
        TopologySource::Synthetic { description } => format!("synthetic \"{description}\""),
    };
    let _ = writeln!(
        out,
        "Machine{}{} ({source})",
        m.hostname
            .as_deref()
            .map(|h| format!(" {h}"))
            .unwrap_or_default(),
        m.cpu_model
            .as_deref()
            .map(|c| format!(", {c}"))
            .unwrap_or_default(),
    );
    for numa in &topology.numa_nodes {
        let memory = numa
            .memory_bytes
            .map(|b| format!("{} as reported by hwloc, ", format_bytes(b)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  NUMANode {} ({memory}local to PUs {})",
            numa.os_index,
            cpu_list(&numa.pus)
        );
    }
    for child in &topology.root.children {
        render_node(child, 1, &mut out);
    }
    let caches = topology.caches().count();
    let _ = writeln!(
        out,
        "{} package(s), {} core(s), {} hardware thread(s), {} cache(s), {} NUMA node(s)",
        topology.package_count(),
        topology.core_count(),
        topology.pu_count(),
        caches,
        topology.numa_nodes.len()
    );
    out
}

fn render_node(node: &Node, depth: usize, out: &mut String) {
    let extra = match &node.kind {
        NodeKind::Package {
            cpu_model: Some(model),
        } => format!(" {model}"),
        NodeKind::Pu => String::new(),
        _ => format!("  [PUs {}]", cpu_list(&node.pus)),
    };
    let _ = writeln!(
        out,
        "{:indent$}{}{extra}",
        "",
        node.label(),
        indent = depth * 2
    );
    for child in &node.children {
        render_node(child, depth + 1, out);
    }
}

/// Shorthand for tests and tools: a synthetic topology.
pub fn synthetic(description: &str) -> Result<Topology, ProbeError> {
    load(&Source::Synthetic(description.to_string()))
}

/// Shorthand: an XML topology.
pub fn from_xml(path: &Path) -> Result<Topology, ProbeError> {
    load(&Source::Xml(path.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(t: &Topology, pred: impl Fn(&NodeKind) -> bool) -> Vec<&Node> {
        t.nodes().filter(|n| pred(&n.kind)).collect()
    }

    #[test]
    fn synthetic_two_packages_of_sixteen_cores_with_smt() {
        let t = synthetic("package:2 core:16 pu:2").expect("loads");
        assert_eq!(t.package_count(), 2);
        assert_eq!(t.core_count(), 32);
        assert_eq!(t.pu_count(), 64);
        assert_eq!(t.pu_os_indices(), (0..64).collect::<Vec<u32>>());
        // Every core holds exactly two sibling threads.
        for core in kinds(&t, |k| *k == NodeKind::Core) {
            assert_eq!(core.children.len(), 2);
            assert_eq!(core.pus.len(), 2);
        }
        assert!(matches!(t.machine.source, TopologySource::Synthetic { .. }));
    }

    #[test]
    fn synthetic_caches_are_shared_as_described() {
        let t = synthetic("package:2 l3:1 core:8 l2:1 l1d:1 pu:2").expect("loads");
        assert_eq!(t.pu_count(), 32);
        assert_eq!(t.core_count(), 16);
        let level = |l: u8| {
            kinds(
                &t,
                move |k| matches!(k, NodeKind::Cache { level, .. } if *level == l),
            )
        };
        // One L3 per package shared by its 16 threads; one L2 and L1d per core (2 threads).
        let l3 = level(3);
        assert_eq!(l3.len(), 2);
        assert_eq!(l3[0].pus, (0..16).collect::<Vec<u32>>());
        assert_eq!(l3[1].pus, (16..32).collect::<Vec<u32>>());
        for l in [2, 1] {
            let caches = level(l);
            assert_eq!(caches.len(), 16);
            assert!(caches.iter().all(|c| c.pus.len() == 2));
        }
        assert!(
            l3.iter()
                .all(|c| matches!(c.kind, NodeKind::Cache { size_bytes: Some(s), .. } if s > 0))
        );
    }

    #[test]
    fn live_machine_matches_available_parallelism() {
        let t = load(&Source::Live).expect("probe");
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        // hwloc restricts itself to the CPUs this process may use, as does the standard library.
        assert_eq!(t.pu_count(), threads);
        assert!(t.core_count() >= 1 && t.core_count() <= t.pu_count());
        assert!(t.package_count() >= 1);
    }

    #[test]
    fn bad_synthetic_is_a_clear_error() {
        let err = synthetic("package:two").expect_err("refused");
        assert!(err.to_string().contains("package:two"), "{err}");
    }

    #[test]
    fn missing_and_malformed_xml_are_clear_errors() {
        let missing = from_xml(Path::new("/nonexistent/topo.xml")).expect_err("refused");
        assert!(matches!(missing, ProbeError::ReadXml { .. }), "{missing}");
        let dir = std::env::temp_dir().join(format!("coreplay-xml-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let bad = dir.join("bad.xml");
        std::fs::write(&bad, "<topology><object type=").expect("write");
        let err = from_xml(&bad).expect_err("refused");
        assert!(matches!(err, ProbeError::BadXml { .. }), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn tree_names_every_thread() {
        let t = synthetic("package:1 core:2 pu:2").expect("loads");
        let tree = render_tree(&t);
        for i in 0..4 {
            assert!(tree.contains(&format!("PU {i}")), "{tree}");
        }
        assert!(
            tree.contains("1 package(s), 2 core(s), 4 hardware thread(s)"),
            "{tree}"
        );
    }
}
