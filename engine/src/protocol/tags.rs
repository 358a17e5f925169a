//! Tags filters (Centrifugo 6's `tf` in subscribe): a tree of and / or /
//! not nodes over leaf comparisons of a publication's `tags` (a map of
//! strings). Parsing, Centrifugo's validation rules and matching; no I/O
//! (fuzzed: fuzz/fuzz_targets/tags_filter.rs).
//!
//! Leaf comparisons (`cmp`): `eq`, `neq`, `in`, `nin` (`vals`), `ex` and
//! `nex` (the key is there or not), `sw` / `ew` / `ct` (starts with, ends
//! with, contains), `gt` / `gte` / `lt` / `lte` (numbers: both sides parse as
//! decimals, compared as f64; a side that does not parse never matches).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Deepest nesting accepted (a filter is a client's input).
const MAX_DEPTH: usize = 16;
/// Most nodes in one filter.
const MAX_NODES: usize = 256;

/// One node of a filter, as the SDKs send it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilterNode {
    /// "" (a leaf), "and", "or", "not".
    pub op: String,
    pub key: String,
    pub cmp: String,
    pub val: String,
    pub vals: Vec<String>,
    pub nodes: Vec<FilterNode>,
}

/// A publication's tags.
pub type Tags = BTreeMap<String, String>;

impl FilterNode {
    /// Centrifugo's rules: a leaf has a known `cmp` with `val` or `vals` as
    /// that comparison needs (and a key, but for `ex`/`nex`); and/or have
    /// children, not exactly one. Plus bounds on depth and size.
    pub fn validate(&self) -> Result<(), &'static str> {
        let mut nodes = 0;
        self.check(0, &mut nodes)
    }

    fn check(&self, depth: usize, nodes: &mut usize) -> Result<(), &'static str> {
        *nodes += 1;
        if depth > MAX_DEPTH || *nodes > MAX_NODES {
            return Err("filter too large");
        }
        match self.op.as_str() {
            "" => {
                if !self.nodes.is_empty() {
                    return Err("a leaf has no nodes");
                }
                match self.cmp.as_str() {
                    "eq" | "neq" | "sw" | "ew" | "ct" | "gt" | "gte" | "lt" | "lte" => {
                        if self.val.is_empty() || !self.vals.is_empty() {
                            return Err("comparison needs val, not vals");
                        }
                    }
                    "in" | "nin" => {
                        if self.vals.is_empty() || !self.val.is_empty() {
                            return Err("in/nin need vals, not val");
                        }
                    }
                    "ex" | "nex" => {
                        if !self.val.is_empty() || !self.vals.is_empty() {
                            return Err("ex/nex take no values");
                        }
                    }
                    _ => return Err("unknown comparison"),
                }
                if self.key.is_empty() && !matches!(self.cmp.as_str(), "ex" | "nex") {
                    return Err("a leaf needs a key");
                }
                Ok(())
            }
            "and" | "or" => {
                if self.nodes.is_empty() {
                    return Err("and/or need nodes");
                }
                self.nodes
                    .iter()
                    .try_for_each(|n| n.check(depth + 1, nodes))
            }
            "not" => match self.nodes.as_slice() {
                [n] => n.check(depth + 1, nodes),
                _ => Err("not takes exactly one node"),
            },
            _ => Err("unknown op"),
        }
    }

    /// Whether a publication with `tags` passes (the filter is valid).
    pub fn matches(&self, tags: &Tags) -> bool {
        match self.op.as_str() {
            "and" => self.nodes.iter().all(|n| n.matches(tags)),
            "or" => self.nodes.iter().any(|n| n.matches(tags)),
            "not" => !self.nodes.first().is_some_and(|n| n.matches(tags)),
            _ => {
                let v = tags.get(&self.key).map(String::as_str);
                let number = |s: &str| s.trim().parse::<f64>().ok().filter(|f| f.is_finite());
                let cmp_num =
                    |f: fn(f64, f64) -> bool| match (v.and_then(number), number(&self.val)) {
                        (Some(a), Some(b)) => f(a, b),
                        _ => false,
                    };
                match self.cmp.as_str() {
                    "eq" => v == Some(self.val.as_str()),
                    "neq" => v != Some(self.val.as_str()),
                    "in" => self.vals.iter().any(|x| Some(x.as_str()) == v.or(Some(""))),
                    "nin" => !self.vals.iter().any(|x| Some(x.as_str()) == v.or(Some(""))),
                    "ex" => v.is_some(),
                    "nex" => v.is_none(),
                    "sw" => v.is_some_and(|v| v.starts_with(&self.val)),
                    "ew" => v.is_some_and(|v| v.ends_with(&self.val)),
                    "ct" => v.is_some_and(|v| v.contains(&self.val)),
                    "gt" => cmp_num(|a, b| a > b),
                    "gte" => cmp_num(|a, b| a >= b),
                    "lt" => cmp_num(|a, b| a < b),
                    "lte" => cmp_num(|a, b| a <= b),
                    _ => false,
                }
            }
        }
    }

    /// The filter's canonical text: equal filters, equal keys (subscribers
    /// with the same filter share one entry of a shard's table).
    pub fn key(&self) -> String {
        serde_json::to_string(self).expect("strings encode")
    }
}

/// The tags of an encoded publication object (none: empty).
pub fn of_object(object: &[u8]) -> Tags {
    #[derive(Deserialize)]
    struct O {
        #[serde(default)]
        tags: Tags,
    }
    serde_json::from_slice::<O>(object)
        .map(|o| o.tags)
        .unwrap_or_default()
}

/// The tags of a publication push as the hub encodes it: a complete
/// WebSocket text frame.
pub fn of_frame(frame: &[u8]) -> Tags {
    of_push(crate::ws::frame::payload_of(frame))
}

/// The tags of a publication push (`{"push":{…,"pub":{…,"tags":{…}}}}`);
/// the rest of it (`data` above all) is skipped, not built.
pub fn of_push(line: &[u8]) -> Tags {
    #[derive(Deserialize)]
    struct Pub {
        #[serde(default)]
        tags: Tags,
    }
    #[derive(Deserialize)]
    struct Push {
        #[serde(rename = "pub")]
        publication: Option<Pub>,
    }
    #[derive(Deserialize)]
    struct Line {
        push: Push,
    }
    serde_json::from_slice::<Line>(line)
        .ok()
        .and_then(|l| l.push.publication)
        .map(|p| p.tags)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(json: &str) -> FilterNode {
        let n: FilterNode = serde_json::from_str(json).unwrap();
        n.validate().unwrap();
        n
    }

    fn tags(kv: &[(&str, &str)]) -> Tags {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn leaves_and_trees_match() {
        let t = tags(&[("kind", "goal"), ("team", "home"), ("minute", "42.5")]);
        for (filter, want) in [
            (r#"{"key":"kind","cmp":"eq","val":"goal"}"#, true),
            (r#"{"key":"kind","cmp":"neq","val":"goal"}"#, false),
            (r#"{"key":"nope","cmp":"neq","val":"goal"}"#, true),
            (r#"{"key":"team","cmp":"in","vals":["away","home"]}"#, true),
            (
                r#"{"key":"team","cmp":"nin","vals":["away","home"]}"#,
                false,
            ),
            (r#"{"key":"kind","cmp":"ex"}"#, true),
            (r#"{"key":"card","cmp":"nex"}"#, true),
            (r#"{"key":"team","cmp":"sw","val":"ho"}"#, true),
            (r#"{"key":"team","cmp":"ew","val":"me"}"#, true),
            (r#"{"key":"team","cmp":"ct","val":"om"}"#, true),
            (r#"{"key":"minute","cmp":"gt","val":"42"}"#, true),
            (r#"{"key":"minute","cmp":"lte","val":"42"}"#, false),
            (r#"{"key":"kind","cmp":"gt","val":"1"}"#, false),
            (
                r#"{"op":"and","nodes":[{"key":"kind","cmp":"eq","val":"goal"},{"op":"not","nodes":[{"key":"team","cmp":"eq","val":"away"}]}]}"#,
                true,
            ),
            (
                r#"{"op":"or","nodes":[{"key":"kind","cmp":"eq","val":"card"},{"key":"minute","cmp":"lt","val":"10"}]}"#,
                false,
            ),
        ] {
            assert_eq!(f(filter).matches(&t), want, "{filter}");
        }
        // No tags at all.
        assert!(!f(r#"{"key":"kind","cmp":"eq","val":"goal"}"#).matches(&Tags::new()));
    }

    #[test]
    fn invalid_filters_are_refused() {
        for bad in [
            r#"{"key":"k","cmp":"eq"}"#,
            r#"{"key":"k","cmp":"eq","val":"v","vals":["v"]}"#,
            r#"{"key":"k","cmp":"in"}"#,
            r#"{"key":"k","cmp":"ex","val":"v"}"#,
            r#"{"cmp":"eq","val":"v"}"#,
            r#"{"key":"k","cmp":"like","val":"v"}"#,
            r#"{"op":"and"}"#,
            r#"{"op":"not","nodes":[]}"#,
            r#"{"op":"xor","nodes":[{"key":"k","cmp":"ex"}]}"#,
        ] {
            let n: FilterNode = serde_json::from_str(bad).unwrap();
            assert!(n.validate().is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<FilterNode>(r#"{"key":1}"#).is_err());
        assert!(serde_json::from_str::<FilterNode>(r#"{"what":"x"}"#).is_err());
        let mut deep = f(r#"{"key":"k","cmp":"ex"}"#);
        for _ in 0..20 {
            deep = FilterNode {
                op: "not".into(),
                nodes: vec![deep],
                ..FilterNode::default()
            };
        }
        assert!(deep.validate().is_err());
    }

    #[test]
    fn equal_filters_share_a_key_and_tags_are_read() {
        let a = f(r#"{"cmp":"eq","key":"k","val":"v"}"#);
        let b = f(r#"{"val":"v","key":"k","cmp":"eq"}"#);
        assert_eq!(a.key(), b.key());
        assert_ne!(a.key(), f(r#"{"cmp":"eq","key":"k","val":"w"}"#).key());
        assert_eq!(
            of_object(br#"{"data":{},"tags":{"k":"v"},"offset":3}"#),
            tags(&[("k", "v")])
        );
        assert_eq!(of_object(br#"{"data":{}}"#), Tags::new());
        assert_eq!(
            of_push(br#"{"push":{"channel":"c","pub":{"data":{"x":1},"tags":{"k":"v"}}}}"#),
            tags(&[("k", "v")])
        );
    }
}
