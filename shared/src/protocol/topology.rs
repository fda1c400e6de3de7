//! The machine's CPU topology as a tree, the way hwloc and `lstopo` present it.
//!
//! The agent converts hwloc's view (live machine, XML file or synthetic description) into a
//! [`Topology`]; the page draws it. The tree keeps hwloc's nesting, so a picture can show which
//! hardware threads share a core and which cores share a cache, with no guessing on the page.
//! NUMA nodes are memory objects in hwloc 2, outside the CPU tree, so they are listed apart with
//! the hardware threads they are local to.
//!
//! Every index is an **OS index** (the number Linux uses in `/proc/cpuinfo`, `taskset`,
//! `sched_getcpu`), never hwloc's logical index, because that is what a learner can check.

use crate::fixed::Fixed;
use std::collections::HashSet;

use serde::Serialize;

use crate::{json_names, json_struct};

/// Most hardware threads a topology may have; larger ones are refused as implausible input.
pub const MAX_PUS: usize = 8192;
/// Deepest nesting accepted (hwloc trees are rarely deeper than 10).
pub const MAX_DEPTH: usize = 32;

/// A machine: what it is, where the description came from, and its tree of objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Topology {
    /// Names and the origin of this description.
    pub machine: MachineInfo,
    /// The root object, always of kind [`NodeKind::Machine`].
    pub root: Node,
    /// NUMA nodes (memory), each with the hardware threads local to it.
    pub numa_nodes: Vec<NumaNode>,
}

/// Descriptive facts about the machine, as far as hwloc knows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MachineInfo {
    /// Host name (hwloc's `HostName` info).
    pub hostname: Option<String>,
    /// CPU model string of the first package (hwloc's `CPUModel` info).
    pub cpu_model: Option<String>,
    /// Operating system and release (hwloc's `OSName` and `OSRelease`).
    pub os: Option<String>,
    /// Where this description came from.
    pub source: TopologySource,
}

/// Origin of a topology description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TopologySource {
    /// Probed on the machine the agent runs on.
    Live,
    /// Loaded from an hwloc XML file (as written by `lstopo file.xml`).
    Xml {
        /// The file name as given.
        file: String,
    },
    /// Built from an hwloc synthetic description such as `package:2 core:16 pu:2`.
    Synthetic {
        /// The description as given.
        description: String,
    },
}

impl TopologySource {
    /// Whether this describes the machine the agent actually runs on (only then can workloads
    /// be placed on it).
    pub fn is_live(&self) -> bool {
        matches!(self, TopologySource::Live)
    }
}

/// One object of the CPU tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    /// What the object is.
    #[serde(flatten)]
    pub kind: NodeKind,
    /// The OS index (for packages, cores and PUs, where the OS gives one).
    pub os_index: Option<u32>,
    /// OS indices of the hardware threads below this object, ascending.
    pub pus: Vec<u32>,
    /// Objects below this one, in hwloc's order.
    pub children: Vec<Node>,
}

/// Kinds of objects in the CPU tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NodeKind {
    /// The whole machine (the root).
    Machine,
    /// A physical processor package (socket).
    Package {
        /// CPU model string of this package, where hwloc gives one.
        cpu_model: Option<String>,
    },
    /// A die inside a package.
    Die,
    /// A group of objects hwloc found related (e.g. a cluster of cores).
    Group,
    /// A CPU cache.
    Cache {
        /// Cache level: 1, 2, 3, …
        level: u8,
        /// Data, instruction or unified.
        cache_type: CacheType,
        /// Size in bytes, where known.
        size_bytes: Option<u64>,
        /// Cache line size in bytes, where known.
        line_bytes: Option<u32>,
    },
    /// A physical core.
    Core,
    /// A processing unit: one hardware thread (an SMT sibling or the only thread of a core).
    Pu,
}

/// The kind of data a cache holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheType {
    /// Data and instructions.
    Unified,
    /// Data only (e.g. L1d).
    Data,
    /// Instructions only (e.g. L1i).
    Instruction,
}

/// A NUMA node: a bank of memory and the hardware threads it is local to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NumaNode {
    /// OS index of the node.
    pub os_index: u32,
    /// OS indices of the local hardware threads, ascending.
    pub pus: Vec<u32>,
    /// Local memory in bytes as reported by hwloc (can be wrong inside VMs).
    pub memory_bytes: Option<u64>,
}

/// Why a topology is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopologyError {
    /// The root is not a machine object.
    #[error("the root object is not a machine")]
    RootNotMachine,
    /// No hardware threads at all.
    #[error("the topology has no hardware threads")]
    NoPus,
    /// More hardware threads than [`MAX_PUS`].
    #[error("the topology has {0} hardware threads, more than the {MAX_PUS} supported")]
    TooManyPus(usize),
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("the topology is nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// A hardware thread without an OS index.
    #[error("a hardware thread has no OS index")]
    PuWithoutIndex,
    /// A hardware thread with children.
    #[error("hardware thread {0} has children")]
    PuWithChildren(u32),
    /// Two hardware threads with the same OS index.
    #[error("hardware thread {0} appears twice")]
    DuplicatePu(u32),
    /// An object's thread set disagrees with its children's.
    #[error("an object's set of hardware threads is not the union of its children's")]
    InconsistentPuSet,
    /// A NUMA node names a hardware thread that does not exist.
    #[error("NUMA node {0} names hardware threads that do not exist")]
    BadNumaNode(u32),
}

impl Topology {
    /// Checks the structural invariants the page and the workloads rely on.
    ///
    /// Topologies from outside (a hello from an agent, a trace file) must pass this before use.
    pub fn validate(&self) -> Result<(), TopologyError> {
        if self.root.kind != NodeKind::Machine {
            return Err(TopologyError::RootNotMachine);
        }
        let mut seen = HashSet::new();
        self.root.validate(0, &mut seen)?;
        if seen.is_empty() {
            return Err(TopologyError::NoPus);
        }
        for numa in &self.numa_nodes {
            if !numa.pus.iter().all(|pu| seen.contains(pu)) {
                return Err(TopologyError::BadNumaNode(numa.os_index));
            }
        }
        Ok(())
    }

    /// Every object of the tree, depth first, parents before children.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        let mut stack = vec![&self.root];
        std::iter::from_fn(move || {
            let node = stack.pop()?;
            stack.extend(node.children.iter().rev());
            Some(node)
        })
    }

    /// OS indices of all hardware threads, in tree order.
    pub fn pu_os_indices(&self) -> Vec<u32> {
        self.nodes()
            .filter(|n| n.kind == NodeKind::Pu)
            .filter_map(|n| n.os_index)
            .collect()
    }

    /// Number of objects matching `pred`.
    pub fn count(&self, pred: impl Fn(&NodeKind) -> bool) -> usize {
        self.nodes().filter(|n| pred(&n.kind)).count()
    }

    /// Number of packages (sockets).
    pub fn package_count(&self) -> usize {
        self.count(|k| matches!(k, NodeKind::Package { .. }))
    }

    /// Number of physical cores.
    pub fn core_count(&self) -> usize {
        self.count(|k| *k == NodeKind::Core)
    }

    /// Number of hardware threads.
    pub fn pu_count(&self) -> usize {
        self.count(|k| *k == NodeKind::Pu)
    }

    /// Caches, depth first.
    pub fn caches(&self) -> impl Iterator<Item = &Node> {
        self.nodes()
            .filter(|n| matches!(n.kind, NodeKind::Cache { .. }))
    }
}

impl Node {
    fn validate(&self, depth: usize, seen: &mut HashSet<u32>) -> Result<(), TopologyError> {
        if depth > MAX_DEPTH {
            return Err(TopologyError::TooDeep);
        }
        if self.kind == NodeKind::Pu {
            let idx = self.os_index.ok_or(TopologyError::PuWithoutIndex)?;
            if !self.children.is_empty() {
                return Err(TopologyError::PuWithChildren(idx));
            }
            if !seen.insert(idx) {
                return Err(TopologyError::DuplicatePu(idx));
            }
            if seen.len() > MAX_PUS {
                return Err(TopologyError::TooManyPus(seen.len()));
            }
            if self.pus != [idx] {
                return Err(TopologyError::InconsistentPuSet);
            }
            return Ok(());
        }
        // The node's PUs are the union of its children's, in ascending order: each child's PU
        // is one of them, and each of them is some child's. Objects without threads below them
        // (rare, e.g. an empty group) carry none either.
        if !self.pus.windows(2).all(|w| w[0] < w[1]) {
            return Err(TopologyError::InconsistentPuSet);
        }
        let mut covered = vec![false; self.pus.len()];
        for child in &self.children {
            child.validate(depth + 1, seen)?;
            for pu in &child.pus {
                let i = self
                    .pus
                    .binary_search(pu)
                    .map_err(|_| TopologyError::InconsistentPuSet)?;
                covered[i] = true;
            }
        }
        if !covered.iter().all(|&c| c) {
            return Err(TopologyError::InconsistentPuSet);
        }
        Ok(())
    }

    /// A short label as `lstopo` writes it: `Package 0`, `L3 (32MB)`, `Core 3`, `PU 7`.
    pub fn label(&self) -> String {
        let idx = |name: &str| match self.os_index {
            Some(i) => format!("{name} {i}"),
            None => name.to_string(),
        };
        match &self.kind {
            NodeKind::Machine => "Machine".to_string(),
            NodeKind::Package { .. } => idx("Package"),
            NodeKind::Die => idx("Die"),
            NodeKind::Group => "Group".to_string(),
            NodeKind::Cache {
                level,
                cache_type,
                size_bytes,
                ..
            } => {
                let suffix = match cache_type {
                    CacheType::Unified => "",
                    CacheType::Data => "d",
                    CacheType::Instruction => "i",
                };
                match size_bytes {
                    Some(size) => format!("L{level}{suffix} ({})", format_bytes(*size)),
                    None => format!("L{level}{suffix}"),
                }
            }
            NodeKind::Core => idx("Core"),
            NodeKind::Pu => idx("PU"),
        }
    }
}

/// Formats a byte count the way `lstopo` does: `48KB`, `1280KB`, `32MB`, using binary units
/// and staying exact where that keeps the number short.
pub fn format_bytes(bytes: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = KIB * 1024;
    const GIB: u64 = MIB * 1024;
    if bytes >= GIB && bytes.is_multiple_of(GIB) {
        format!("{}GB", bytes / GIB)
    } else if bytes >= 10 * GIB {
        format!("{}GB", Fixed(bytes as f64 / GIB as f64, 0))
    } else if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{}MB", bytes / MIB)
    } else if bytes >= 10 * MIB {
        format!("{}MB", Fixed(bytes as f64 / MIB as f64, 0))
    } else if bytes >= KIB {
        format!("{}KB", bytes / KIB)
    } else {
        format!("{bytes}B")
    }
}

/// Formats ascending indices as a Linux CPU list: `0-3,8,10-11`.
pub fn cpu_list(indices: &[u32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut iter = indices.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    parts.join(",")
}

json_struct!(Topology {
    machine,
    root,
    numa_nodes
});
json_struct!(MachineInfo {
    hostname,
    cpu_model,
    os,
    source
});
json_struct!(NumaNode {
    os_index,
    pus,
    memory_bytes
});
json_names!(CacheType {
    Unified = "unified",
    Data = "data",
    Instruction = "instruction"
});

#[cfg(test)]
mod tests {
    use super::*;

    fn pu(i: u32) -> Node {
        Node {
            kind: NodeKind::Pu,
            os_index: Some(i),
            pus: vec![i],
            children: vec![],
        }
    }

    fn node(kind: NodeKind, children: Vec<Node>) -> Node {
        let mut pus: Vec<u32> = children.iter().flat_map(|c| c.pus.clone()).collect();
        crate::sort::natural(&mut pus);
        Node {
            kind,
            os_index: None,
            pus,
            children,
        }
    }

    fn two_core_machine() -> Topology {
        let l2 = |i| {
            node(
                NodeKind::Cache {
                    level: 2,
                    cache_type: CacheType::Unified,
                    size_bytes: Some(1 << 20),
                    line_bytes: Some(64),
                },
                vec![node(NodeKind::Core, vec![pu(i)])],
            )
        };
        Topology {
            machine: MachineInfo {
                hostname: None,
                cpu_model: None,
                os: None,
                source: TopologySource::Live,
            },
            root: node(
                NodeKind::Machine,
                vec![node(
                    NodeKind::Package { cpu_model: None },
                    vec![l2(0), l2(1)],
                )],
            ),
            numa_nodes: vec![NumaNode {
                os_index: 0,
                pus: vec![0, 1],
                memory_bytes: None,
            }],
        }
    }

    #[test]
    fn a_machine_reads_back_what_the_encoder_wrote() {
        let machine = two_core_machine();
        let json = serde_json::to_string(&machine).expect("encode");
        assert_eq!(
            crate::json::from_str::<Topology>(&json).expect(&json),
            machine
        );
    }

    #[test]
    fn counts_and_order() {
        let t = two_core_machine();
        t.validate().expect("valid");
        assert_eq!(t.package_count(), 1);
        assert_eq!(t.core_count(), 2);
        assert_eq!(t.pu_count(), 2);
        assert_eq!(t.pu_os_indices(), vec![0, 1]);
        assert_eq!(t.caches().count(), 2);
    }

    #[test]
    fn duplicate_pu_is_rejected() {
        let mut t = two_core_machine();
        t.root.children[0].children[1].children[0].children[0] = pu(0);
        t.root.children[0].children[1].children[0].pus = vec![0];
        t.root.children[0].children[1].pus = vec![0];
        assert_eq!(t.validate(), Err(TopologyError::DuplicatePu(0)));
    }

    #[test]
    fn inconsistent_sets_are_rejected() {
        let mut t = two_core_machine();
        t.root.pus = vec![0, 1, 2];
        assert_eq!(t.validate(), Err(TopologyError::InconsistentPuSet));
    }

    #[test]
    fn numa_with_unknown_pu_is_rejected() {
        let mut t = two_core_machine();
        t.numa_nodes[0].pus.push(9);
        assert_eq!(t.validate(), Err(TopologyError::BadNumaNode(0)));
    }

    #[test]
    fn deep_nesting_is_rejected() {
        let mut t = two_core_machine();
        let mut deep = pu(0);
        for _ in 0..40 {
            deep = node(NodeKind::Group, vec![deep]);
        }
        t.root = node(NodeKind::Machine, vec![deep]);
        t.numa_nodes.clear();
        assert_eq!(t.validate(), Err(TopologyError::TooDeep));
    }

    #[test]
    fn labels_match_lstopo() {
        let t = two_core_machine();
        let labels: Vec<String> = t.nodes().map(Node::label).collect();
        assert_eq!(
            labels,
            [
                "Machine", "Package", "L2 (1MB)", "Core", "PU 0", "L2 (1MB)", "Core", "PU 1"
            ]
        );
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(cpu_list(&[0, 1, 2, 3, 8, 10, 11]), "0-3,8,10-11");
        assert_eq!(cpu_list(&[5]), "5");
        assert_eq!(cpu_list(&[]), "");
    }

    #[test]
    fn byte_formatting() {
        assert_eq!(format_bytes(48 * 1024), "48KB");
        assert_eq!(format_bytes(1280 * 1024), "1280KB");
        assert_eq!(format_bytes(32 << 20), "32MB");
        assert_eq!(format_bytes(24 << 30), "24GB");
        assert_eq!(format_bytes(512), "512B");
    }
}
