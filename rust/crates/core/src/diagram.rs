//! The deployment's flows as an SVG diagram, for the report: services as boxes with their
//! hosts inside, audiences as rounded nodes, one arrow per (source, target) carrying the ports.
//! Laid out in layers, left to right (sources before targets); no script, no library.

use crate::matrix::Matrix;
use crate::plan::{Origin, Plans};
use crate::report::esc;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write;

/// How many hosts a service box lists before "and N more".
pub const BOX_HOSTS: usize = 12;
/// Box width, the gap between layers, a box's title and host rows, the gap between boxes.
const W: i32 = 210;
const GAP: i32 = 200;
const HEAD: i32 = 30;
const ROW: i32 = 22;
const VGAP: i32 = 28;
const MARGIN: i32 = 20;
/// How far an arrow between boxes of one layer (or backwards) bulges out to the right.
const BULGE: i32 = 70;
/// Names longer than this are shortened in the picture (the tooltip has them whole).
const NAME_CHARS: usize = 26;

#[derive(PartialEq, Eq, PartialOrd, Ord, Clone, Copy)]
enum Kind {
    Audience,
    Service,
    /// A service of group `all`: every host runs it, so its box lists none.
    Everywhere,
    /// A group named by an extra rule, not a service.
    Group,
}

struct Node<'a> {
    name: String,
    kind: Kind,
    hosts: Vec<&'a str>,
}

impl Node<'_> {
    fn height(&self) -> i32 {
        match self.kind {
            Kind::Audience => 44,
            Kind::Group => HEAD + 8,
            Kind::Everywhere => HEAD + ROW + 8,
            Kind::Service => {
                let shown = self.hosts.len().min(BOX_HOSTS) + usize::from(self.hosts.len() > BOX_HOSTS);
                HEAD + ROW * i32::try_from(shown).unwrap_or(i32::MAX / ROW) + 8
            }
        }
    }
}

/// One arrow: the ports it carries and, for the tooltip, each port's protocols and rule ids.
#[derive(Default)]
struct Edge {
    ports: BTreeMap<u16, (BTreeSet<&'static str>, BTreeSet<String>)>,
}

/// A name as the picture shows it: shortened with `…` past [`NAME_CHARS`].
fn short(s: &str) -> String {
    if s.chars().count() <= NAME_CHARS {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(NAME_CHARS - 1).collect();
        t.push('…');
        t
    }
}

/// The service a rule label names: `Mid-Tier (group super)` → `Mid-Tier`.
pub(crate) fn service_of(label: &str) -> &str {
    label.split(" (").next().unwrap_or(label)
}

/// The nodes under construction, one per name.
#[derive(Default)]
struct Nodes<'a> {
    list: Vec<Node<'a>>,
    index: HashMap<String, usize>,
}

impl<'a> Nodes<'a> {
    fn get(&mut self, name: &str, kind: Kind) -> usize {
        let list = &mut self.list;
        *self.index.entry(name.to_string()).or_insert_with(|| {
            list.push(Node { name: name.to_string(), kind, hosts: vec![] });
            list.len() - 1
        })
    }

    /// The node a rule label names: a service, or a group an extra rule names.
    fn labelled(&mut self, label: &str) -> usize {
        let kind = if label.starts_with("group ") { Kind::Group } else { Kind::Service };
        self.get(service_of(label), kind)
    }
}

/// The nodes and arrows of the deployment: the services hosts run, the audiences and groups
/// inbound rules name; an arrow from each source to each target, as `render::mermaid` draws.
fn graph(plans: &Plans) -> (Vec<Node<'_>>, BTreeMap<(usize, usize), Edge>) {
    let m = Matrix::embedded();
    let mut nodes = Nodes::default();
    let mut all_node = None;
    for h in &plans.hosts {
        for svc in &h.services {
            let everywhere = m.service(svc).is_some_and(|s| s.group == "all");
            let i = nodes.get(svc, if everywhere { Kind::Everywhere } else { Kind::Service });
            nodes.list[i].hosts.push(&h.name);
            if everywhere {
                all_node.get_or_insert(i);
            }
        }
    }
    let mut edges: BTreeMap<(usize, usize), Edge> = BTreeMap::new();
    for h in &plans.hosts {
        for r in &h.inbound {
            let (from, to) = match &r.origin {
                Origin::Flow { source, target } => (nodes.labelled(source), nodes.labelled(target)),
                Origin::Audience { audience, target } => (nodes.get(audience, Kind::Audience), nodes.labelled(target)),
                Origin::Management => {
                    let from = nodes.get("Management", Kind::Audience);
                    let to = match all_node {
                        Some(i) => i,
                        None => nodes.labelled(h.services.first().map_or(h.name.as_str(), String::as_str)),
                    };
                    (from, to)
                }
                Origin::Extra { target } => (nodes.get("Extra sources", Kind::Audience), nodes.labelled(target)),
            };
            let e = edges.entry((from, to)).or_default().ports.entry(r.port).or_default();
            e.0.insert(r.protocol.as_str());
            e.1.insert(r.id.to_string());
        }
    }
    (nodes.list, edges)
}

/// Each node's layer: the longest path to it from a node without arrows in, once the arrows
/// closing a cycle (found depth-first, in node order) are set aside.
fn layers(n: usize, arrows: &[(usize, usize)]) -> Vec<usize> {
    let mut out: Vec<Vec<usize>> = vec![vec![]; n];
    for &(a, b) in arrows {
        if a != b {
            out[a].push(b);
        }
    }
    // Iterative depth-first search: post-order, and which arrows go back onto the stack.
    let (mut state, mut post, mut back) = (vec![0u8; n], vec![], BTreeSet::new());
    for start in 0..n {
        if state[start] != 0 {
            continue;
        }
        let mut stack = vec![(start, 0usize)];
        state[start] = 1;
        while let Some((v, k)) = stack.pop() {
            if let Some(&w) = out[v].get(k) {
                stack.push((v, k + 1));
                match state[w] {
                    0 => {
                        state[w] = 1;
                        stack.push((w, 0));
                    }
                    1 => {
                        back.insert((v, w));
                    }
                    _ => {}
                }
            } else {
                state[v] = 2;
                post.push(v);
            }
        }
    }
    let mut layer = vec![0usize; n];
    for &v in post.iter().rev() {
        for &w in &out[v] {
            if !back.contains(&(v, w)) {
                layer[w] = layer[w].max(layer[v] + 1);
            }
        }
    }
    layer
}

/// The diagram as an inline `<svg>` element (every name escaped; a tooltip per host and arrow).
pub fn svg(plans: &Plans) -> String {
    let (nodes, edges) = graph(plans);
    let arrows: Vec<(usize, usize)> = edges.keys().copied().collect();
    let layer = layers(nodes.len(), &arrows);
    // Boxes of a layer, top to bottom: by the mean position of their sources in earlier layers.
    let depth = layer.iter().copied().max().map_or(0, |d| d + 1);
    let mut pos: Vec<(i32, i32)> = vec![(0, 0); nodes.len()];
    let mut order: Vec<f64> = vec![0.0; nodes.len()];
    let mut height = 0;
    for l in 0..depth {
        let mut col: Vec<usize> = (0..nodes.len()).filter(|&i| layer[i] == l).collect();
        let key = |i: usize| {
            let from: Vec<f64> =
                arrows.iter().filter(|&&(a, b)| b == i && layer[a] < l).map(|&(a, _)| order[a]).collect();
            if from.is_empty() {
                f64::from(u32::try_from(i).unwrap_or(u32::MAX))
            } else {
                from.iter().sum::<f64>() / from.len() as f64
            }
        };
        let keys: Vec<f64> = col.iter().map(|&i| key(i)).collect();
        let mut by: Vec<(f64, (Kind, &str), usize)> =
            col.iter().zip(keys).map(|(&i, k)| (k, (nodes[i].kind, nodes[i].name.as_str()), i)).collect();
        by.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        col = by.into_iter().map(|(_, _, i)| i).collect();
        let x = MARGIN + i32::try_from(l).unwrap_or(0) * (W + GAP);
        let mut y = MARGIN;
        for (k, &i) in col.iter().enumerate() {
            pos[i] = (x, y);
            order[i] = k as f64;
            y += nodes[i].height() + VGAP;
        }
        height = height.max(y);
    }
    let width = MARGIN * 2 + i32::try_from(depth).unwrap_or(1) * (W + GAP) - GAP + BULGE;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"diagram\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" \
         height=\"{height}\" role=\"img\" aria-label=\"Flows between services\">\
         <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" \
         orient=\"auto-start-reverse\"><path d=\"M0,0L10,5L0,10z\"/></marker></defs>"
    );
    // Where arrows meet a box: spread along its side, ordered by the other end's height. An
    // arrow leaves its source on the right; it enters its target on the left, or, going back
    // (or within a layer), on the right.
    let forward = |a: usize, b: usize| layer[b] > layer[a];
    let mid = |i: usize| pos[i].1 + nodes[i].height() / 2;
    // (node, right side) → (the other end's height, arrow, whether this is the arrow's source).
    type Ends = Vec<(i32, usize, bool)>;
    let mut sides: BTreeMap<(usize, bool), Ends> = BTreeMap::new();
    for (e, &(a, b)) in arrows.iter().enumerate() {
        sides.entry((a, true)).or_default().push((mid(b), e, true));
        sides.entry((b, !forward(a, b))).or_default().push((mid(a), e, false));
    }
    let (mut from_y, mut to_y) = (vec![0; arrows.len()], vec![0; arrows.len()]);
    for ((i, _), mut list) in sides {
        list.sort();
        let (h, count) = (nodes[i].height(), i32::try_from(list.len()).unwrap_or(1));
        for (k, (_, e, source_end)) in list.into_iter().enumerate() {
            let y = pos[i].1 + h * (i32::try_from(k).unwrap_or(0) + 1) / (count + 1);
            if source_end {
                from_y[e] = y;
            } else {
                to_y[e] = y;
            }
        }
    }
    let mut ports_layer = String::new();
    for (e, (&(a, b), edge)) in edges.iter().enumerate() {
        let (y1, y2) = (from_y[e], to_y[e]);
        let x1 = pos[a].0 + W;
        let (x2, c1, c2) = if forward(a, b) {
            let dx = (pos[b].0 - x1) / 2;
            (pos[b].0, x1 + dx, pos[b].0 - dx)
        } else {
            (pos[b].0 + W, x1 + BULGE, pos[b].0 + W + BULGE)
        };
        let ports: Vec<String> = edge.ports.keys().map(u16::to_string).collect();
        let detail: Vec<String> = edge
            .ports
            .iter()
            .map(|(p, (protos, ids))| {
                let protos: Vec<&str> = protos.iter().copied().collect();
                let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
                format!("{p}/{} ({})", protos.join("+"), ids.join(", "))
            })
            .collect();
        let label = ports.join(", ");
        // The label sits in a gap between layers, on the curve: a forward arrow's in the gap
        // before its target (staggered, as arrows into one box arrive close together), any
        // other just right of its source.
        let stagger = if e % 2 == 0 { GAP / 4 } else { GAP * 3 / 5 };
        let lx = if forward(a, b) { x2 - stagger } else { x1 + BULGE / 2 };
        let ly = y_at(lx, [(x1, y1), (c1, y1), (c2, y2), (x2, y2)]);
        let lw = 7 * i32::try_from(label.chars().count()).unwrap_or(0) + 10;
        let title = format!("{} → {}: {}", nodes[a].name, nodes[b].name, detail.join("; "));
        let _ = write!(
            s,
            "<g class=\"flow\" data-from=\"{}\" data-to=\"{}\"><title>{}</title>\
             <path d=\"M{x1},{y1} C{c1},{y1} {c2},{y2} {x2},{y2}\" marker-end=\"url(#arrow)\"/></g>",
            esc(&nodes[a].name),
            esc(&nodes[b].name),
            esc(&title),
        );
        // Port labels go on top of the boxes, after them.
        let _ = write!(
            ports_layer,
            "<g class=\"ports\"><title>{}</title><rect x=\"{}\" y=\"{}\" width=\"{lw}\" height=\"16\" rx=\"3\"/>\
             <text x=\"{lx}\" y=\"{}\">{}</text></g>",
            esc(&title),
            lx - lw / 2,
            ly - 8,
            ly + 4,
            esc(&label)
        );
    }
    // Arrows under the boxes, so that a long one passes behind the boxes it crosses.
    for (i, n) in nodes.iter().enumerate() {
        node_svg(&mut s, n, pos[i], plans);
    }
    s.push_str(&ports_layer);
    s.push_str("</svg>");
    s
}

/// The height of a cubic Bézier curve whose x grows along it (from its first point to its
/// last, through the gap), where it crosses `x`; found by bisection.
fn y_at(x: i32, p: [(i32, i32); 4]) -> i32 {
    let at = |t: f64, k: fn((i32, i32)) -> i32| {
        let u = 1.0 - t;
        let [a, b, c, d] = p.map(|q| f64::from(k(q)));
        u * u * u * a + 3.0 * u * u * t * b + 3.0 * u * t * t * c + t * t * t * d
    };
    let (mut lo, mut hi) = (0.0, 1.0);
    for _ in 0..30 {
        let mid = (lo + hi) / 2.0;
        let left = at(mid, |q| q.0) < f64::from(x);
        let rising = p[3].0 >= p[0].0;
        if left == rising {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    at(lo, |q| q.1).round() as i32
}

/// One box (or audience) and the hosts inside it.
fn node_svg(s: &mut String, n: &Node, (x, y): (i32, i32), plans: &Plans) {
    let h = n.height();
    let (class, rx) = match n.kind {
        Kind::Audience => ("audience", 22),
        Kind::Service | Kind::Everywhere => ("service", 6),
        Kind::Group => ("group", 6),
    };
    let _ = write!(
        s,
        "<g class=\"{class}\" data-name=\"{}\"><title>{}</title><rect x=\"{x}\" y=\"{y}\" width=\"{W}\" height=\"{h}\" \
         rx=\"{rx}\"/><text class=\"name\" x=\"{}\" y=\"{}\">{}</text>",
        esc(&n.name),
        esc(&n.name),
        x + W / 2,
        y + if n.kind == Kind::Audience { 27 } else { 20 },
        esc(&short(&n.name))
    );
    let row = |k: usize| y + HEAD + ROW * i32::try_from(k).unwrap_or(0);
    match n.kind {
        Kind::Everywhere => {
            let _ = write!(
                s,
                "<text class=\"note\" x=\"{}\" y=\"{}\">every host ({})</text>",
                x + W / 2,
                row(0) + 15,
                n.hosts.len()
            );
        }
        Kind::Service => {
            for (k, name) in n.hosts.iter().take(BOX_HOSTS).enumerate() {
                let addrs: Vec<String> = plans
                    .hosts
                    .iter()
                    .find(|p| p.name == *name)
                    .map(|p| p.addresses.iter().map(ToString::to_string).collect())
                    .unwrap_or_default();
                let _ = write!(
                    s,
                    "<g class=\"host\" data-host=\"{}\"><title>{} {}</title><rect x=\"{}\" y=\"{}\" width=\"{}\" \
                     height=\"{}\" rx=\"3\"/><text x=\"{}\" y=\"{}\">{}</text></g>",
                    esc(name),
                    esc(name),
                    esc(&addrs.join(", ")),
                    x + 8,
                    row(k),
                    W - 16,
                    ROW - 4,
                    x + W / 2,
                    row(k) + 13,
                    esc(&short(name))
                );
            }
            if n.hosts.len() > BOX_HOSTS {
                let _ = write!(
                    s,
                    "<text class=\"note\" x=\"{}\" y=\"{}\">and {} more</text>",
                    x + W / 2,
                    row(BOX_HOSTS) + 13,
                    n.hosts.len() - BOX_HOSTS
                );
            }
        }
        Kind::Audience | Kind::Group => {}
    }
    s.push_str("</g>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_are_broken_and_chains_are_layered() {
        // 0 → 1 → 2 → 1 (a cycle), 3 → 0.
        let l = layers(4, &[(0, 1), (1, 2), (2, 1), (3, 0)]);
        assert_eq!(l, vec![1, 2, 3, 0]);
        assert_eq!(short("a"), "a");
        assert_eq!(short(&"x".repeat(40)).chars().count(), NAME_CHARS);
    }
}
