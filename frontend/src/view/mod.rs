//! One component per picture on the page.

pub mod compare;
pub mod controls;
pub mod cores;
pub mod event_loop;
pub mod gallery;
pub mod now_showing;
pub mod player;
pub mod run;
pub mod status;
pub mod summary;
pub mod timeline;
pub mod topology;

use yew::AttrValue;

/// A class attribute: `base`, and `extra` after it when given. What `classes!` makes, without
/// the set it builds at run time (and the hashing code it brings into the page).
pub fn class(base: &'static str, extra: Option<&'static str>) -> AttrValue {
    match extra {
        Some(extra) => AttrValue::from(format!("{base} {extra}")),
        None => AttrValue::Static(base),
    }
}

/// A table's header row: one `<th>` per name. (One function builds every table's rows: a row
/// written out in `html!` is built by code of its own, cell by cell, where it stands.)
pub fn header_row(names: &[&'static str]) -> yew::Html {
    yew::html! { <tr>{ for names.iter().map(|n| el!("th", [], *n)) }</tr> }
}

/// A table row: one `<td>` per cell, each written as text.
pub fn row(cells: &[&dyn std::fmt::Display]) -> yew::Html {
    yew::html! { <tr>{ for cells.iter().map(|c| el!("td", [], c.to_string())) }</tr> }
}

/// A plain element holding text: `el!("p", "note", text)` is `<p class="note">{ text }</p>`,
/// `el!("h3", [], text)` an element without attributes, and
/// `el!("span", ["class" => "gil", "title" => "…"], text)` one with several (all written in
/// the source, as in `html!`). The page's plain elements are written with this rather than in
/// `html!`, where every element is built by code of its own where it stands: one function for
/// them all instead of about a hundred and twenty copies.
macro_rules! el {
    ($tag:literal, [$($key:literal => $value:literal),* $(,)?], $text:expr) => {
        $crate::view::element(
            $tag,
            &[$(($key, ::yew::virtual_dom::AttributeOrProperty::Static($value))),*],
            $text,
        )
    };
    ($tag:literal, $class:literal, $text:expr) => {
        $crate::view::el!($tag, ["class" => $class], $text)
    };
}
pub(crate) use el;

/// What [`el!`] builds: the element `html!` would make (with the same constructor, the one
/// `html!` uses for a tag known when the page is built, and the same static attribute list).
pub fn element(
    tag: &'static str,
    attributes: &'static [(&'static str, yew::virtual_dom::AttributeOrProperty)],
    text: impl Into<AttrValue>,
) -> yew::Html {
    plain_element(tag, attributes, text.into())
}

#[inline(never)]
fn plain_element(
    tag: &'static str,
    attributes: &'static [(&'static str, yew::virtual_dom::AttributeOrProperty)],
    text: AttrValue,
) -> yew::Html {
    use yew::virtual_dom::{Attributes, Listeners, VNode, VTag, VText};
    VNode::from(VTag::__new_other(
        AttrValue::Static(tag),
        yew::NodeRef::default(),
        None,
        Attributes::Static(attributes),
        Listeners::None,
        VNode::from(VText::new(text)),
    ))
}

#[cfg(test)]
mod tests {
    use yew::virtual_dom::{VNode, VTag};

    use super::*;

    fn tag(node: &yew::Html) -> &VTag {
        match node {
            VNode::VTag(t) => t,
            other => panic!("not an element: {other:?}"),
        }
    }

    fn text(node: &VTag) -> String {
        match node.children() {
            Some(VNode::VText(t)) => t.text.to_string(),
            Some(VNode::VList(l)) => l
                .iter()
                .map(|c| match c {
                    VNode::VText(t) => t.text.to_string(),
                    other => panic!("not text: {other:?}"),
                })
                .collect(),
            other => panic!("no text: {other:?}"),
        }
    }

    #[test]
    fn a_plain_element_is_what_html_would_make() {
        let p = el!("p", "note", "3 hand-overs");
        assert_eq!(tag(&p).tag(), "p");
        assert_eq!(
            tag(&p).attributes.iter().collect::<Vec<_>>(),
            [("class", "note")]
        );
        assert_eq!(text(tag(&p)), "3 hand-overs");
        let h = el!("h3", [], String::from("Look"));
        assert_eq!(tag(&h).attributes.iter().count(), 0, "no class attribute");
        assert_eq!(text(tag(&h)), "Look");
        let g = el!("span", ["class" => "gil", "title" => "the lock token"], "GIL");
        assert_eq!(
            tag(&g).attributes.iter().collect::<Vec<_>>(),
            [("class", "gil"), ("title", "the lock token")]
        );
    }

    /// A row's cells: (tag, text) each.
    fn cells(row: &yew::Html) -> Vec<(String, String)> {
        match tag(row).children() {
            Some(VNode::VList(l)) => l
                .iter()
                .map(|c| (tag(c).tag().to_string(), text(tag(c))))
                .collect(),
            other => panic!("no cells: {other:?}"),
        }
    }

    #[test]
    fn rows_hold_one_cell_per_value() {
        let cell = |t: &str, s: &str| (t.to_string(), s.to_string());
        let r = row(&[&"main", &7u32, &String::from("1.5 ms")]);
        assert_eq!(
            cells(&r),
            [cell("td", "main"), cell("td", "7"), cell("td", "1.5 ms")]
        );
        let h = header_row(&["thread", "pid"]);
        assert_eq!(cells(&h), [cell("th", "thread"), cell("th", "pid")]);
    }
}
