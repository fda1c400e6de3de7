//! The machine drawn the way `lstopo` draws it: packages holding caches, caches over the
//! cores that share them, cores holding their hardware threads, each labelled with its OS
//! index. Density adapts to the thread count so 1 to 256 threads stay legible.

use std::rc::Rc;

use crate::view::el;
use coreplay_shared::{
    Hello, Node, NodeKind, Topology,
    topology::{TopologySource, cpu_list, format_bytes},
};
use yew::prelude::*;

use crate::view::class;

/// Properties of [`TopologyView`].
#[derive(Debug, Properties, PartialEq)]
pub struct TopologyProps {
    /// The hello carrying the topology.
    pub hello: Rc<Hello>,
}

/// The topology picture with its header and caption.
#[function_component(TopologyView)]
pub fn topology_view(props: &TopologyProps) -> Html {
    let topology = &props.hello.topology;
    let pus = topology.pu_count();
    let density = density_class(pus);
    html! {
        <section class="topology-view" aria-label="CPU topology">
            { el!("h2", [], "Topology") }
            <p class="caption">
                { "What hwloc found: packages (sockets) hold caches and cores; each core runs one \
                   or more hardware threads (PU), numbered as the OS numbers CPUs." }
            </p>
            { machine_header(topology, None) }
            <div class={class("machine", Some(density))} data-pus={pus.to_string()}>
                { numa_row(topology) }
                <div class="kids">
                    { for topology.root.children.iter().map(|n| node_view(n, is_dense(pus), &plain_pu)) }
                </div>
            </div>
        </section>
    }
}

/// Whether a machine of `pus` hardware threads is drawn with one small square per hardware
/// thread rather than a labelled box.
pub fn is_dense(pus: usize) -> bool {
    pus > 32
}

/// The density class for a machine of `pus` hardware threads.
pub fn density_class(pus: usize) -> &'static str {
    match pus {
        0..=8 => "d1",
        9..=32 => "d2",
        33..=128 => "d3",
        _ => "d4",
    }
}

/// The machine's name, model, counts and where the topology came from.
pub fn machine_header(t: &Topology, recorded_on: Option<&str>) -> Html {
    let m = &t.machine;
    let source = match &m.source {
        _ if recorded_on.is_some() => html! {
            <span class="badge other" title={recorded_on.unwrap_or_default().to_string()}>{ "recorded: the machine the run was recorded on" }</span>
        },
        TopologySource::Live => el!("span", "badge live", "live: the machine the agent runs on"),
        TopologySource::Xml { file } => html! {
            { el!("span", "badge other", format!("from hwloc XML {file}, not this machine")) }
        },
        TopologySource::Synthetic { description } => html! {
            { el!("span", "badge other", format!("synthetic \"{description}\", not a real machine")) }
        },
    };
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let counts = format!(
        "{} · {} · {}",
        plural(t.package_count(), "package"),
        plural(t.core_count(), "core"),
        plural(t.pu_count(), "hardware thread"),
    );
    html! {
        <div class="machine-header">
            { el!("strong", [], m.hostname.clone().unwrap_or_else(|| "Machine".into())) }
            if let Some(model) = &m.cpu_model { { el!("span", "model", model.clone()) } }
            { el!("span", ["class" => "counts", "data-testid" => "counts"], counts) }
            { source }
        </div>
    }
}

/// The NUMA nodes row.
pub fn numa_row(t: &Topology) -> Html {
    if t.numa_nodes.is_empty() {
        return html! {};
    }
    html! {
        <div class="numa-row">
            { for t.numa_nodes.iter().map(|n| {
                let memory = n.memory_bytes
                    .map(|b| format!(" · {} (hwloc's figure)", format_bytes(b)))
                    .unwrap_or_default();
                html! {
                    <div class="numa" title="NUMA node: memory local to these hardware threads">
                        { format!("NUMA node {}{memory} · PUs {}", n.os_index, cpu_list(&n.pus)) }
                    </div>
                }
            }) }
        </div>
    }
}

fn plain_pu(idx: u32, dense: bool) -> Html {
    let text = if dense {
        idx.to_string()
    } else {
        format!("PU {idx}")
    };
    html! {
        <div class="pu" data-pu={idx.to_string()} title={format!("PU {idx}: hardware thread, OS CPU {idx}")}>
            { text }
        </div>
    }
}

/// Draws a topology node and its children; `pu` draws each hardware thread (by OS index), so
/// the static picture and the animated cores view share the layout.
pub fn node_view(node: &Node, dense: bool, pu: &dyn Fn(u32, bool) -> Html) -> Html {
    let kids = || html! { <div class="kids">{ for node.children.iter().map(|c| node_view(c, dense, pu)) }</div> };
    match &node.kind {
        NodeKind::Pu => pu(node.os_index.unwrap_or_default(), dense),
        NodeKind::Core => html! {
            <div class="obj core" title={format!("{}: PUs {}", node.label(), cpu_list(&node.pus))}>
                <div class="label">{ if dense { short_core(node) } else { node.label() } }</div>
                { kids() }
            </div>
        },
        NodeKind::Cache { level, .. } => html! {
            <div class={format!("obj cache l{level}")}
                 title={format!("{} shared by PUs {}", node.label(), cpu_list(&node.pus))}>
                { el!("div", "label", node.label()) }
                { kids() }
            </div>
        },
        NodeKind::Package { cpu_model } => html! {
            <div class="obj package">
                <div class="label">
                    { node.label() }
                    if let Some(model) = cpu_model { { el!("span", "model", model.clone()) } }
                </div>
                { kids() }
            </div>
        },
        NodeKind::Machine | NodeKind::Die | NodeKind::Group => html! {
            <div class="obj group">
                { el!("div", "label", node.label()) }
                { kids() }
            </div>
        },
    }
}

fn short_core(node: &Node) -> String {
    match node.os_index {
        Some(i) => format!("C{i}"),
        None => "Core".into(),
    }
}
