//! A Node's labels in two allocations: every key and value back to back in
//! one string, and where each ends. The plan reads every Node's labels once;
//! as a map of strings they were a tree node and two strings per label, and
//! at thousands of Nodes each of those was a cache miss of its own.
//!
//! In the facts JSON they are the same object as before, keys in order.

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;

/// Labels sorted by key, each key once.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct NodeLabels {
    /// Key, value, key, value, ... with nothing between them.
    text: Box<str>,
    /// Per label, in key order: where its key ends and where its value ends
    /// in `text` (each starts where the one before it ended).
    ends: Box<[(u32, u32)]>,
}

impl NodeLabels {
    /// Labels out of pairs already sorted by key, each key once.
    fn from_sorted<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> NodeLabels {
        let len: usize = pairs
            .iter()
            .map(|(k, v)| k.as_ref().len() + v.as_ref().len())
            .sum();
        let mut text = String::with_capacity(len);
        let mut ends = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            text.push_str(k.as_ref());
            let key_end = offset(text.len());
            text.push_str(v.as_ref());
            ends.push((key_end, offset(text.len())));
        }
        NodeLabels {
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
        }
    }

    /// Labels out of pairs in any order; a key given twice keeps its last value.
    fn from_pairs(mut pairs: Vec<(String, String)>) -> NodeLabels {
        // Stable: among equal keys the last given ends up last, and is kept.
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut kept: Vec<(String, String)> = Vec::with_capacity(pairs.len());
        for pair in pairs {
            match kept.last_mut() {
                Some(last) if last.0 == pair.0 => *last = pair,
                _ => kept.push(pair),
            }
        }
        NodeLabels::from_sorted(&kept)
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The `i`th label in key order.
    fn at(&self, i: usize) -> (&str, &str) {
        let start = match i {
            0 => 0,
            _ => self.ends[i - 1].1 as usize,
        };
        let (key_end, value_end) = self.ends[i];
        (
            &self.text[start..key_end as usize],
            &self.text[key_end as usize..value_end as usize],
        )
    }

    /// Every label, in key order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&str, &str)> + ExactSizeIterator {
        (0..self.len()).map(|i| self.at(i))
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &str> + ExactSizeIterator {
        self.iter().map(|(k, _)| k)
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        // A Node has a dozen labels or so: a binary search over the keys.
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let mid = (low + high) / 2;
            match self.at(mid).0.cmp(key) {
                std::cmp::Ordering::Less => low = mid + 1,
                std::cmp::Ordering::Greater => high = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(low)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.find(key).ok().map(|i| self.at(i).1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    /// Sets `key` to `value`; returns the value it had.
    pub fn insert(&mut self, key: String, value: String) -> Option<String> {
        let mut pairs = self.owned_pairs();
        let before = match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut pairs[i].1, value)),
            Err(i) => {
                pairs.insert(i, (key, value));
                None
            }
        };
        *self = NodeLabels::from_sorted(&pairs);
        before
    }

    /// Removes `key`; returns the value it had.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let i = self.find(key).ok()?;
        let mut pairs = self.owned_pairs();
        let (_, value) = pairs.remove(i);
        *self = NodeLabels::from_sorted(&pairs);
        Some(value)
    }

    fn owned_pairs(&self) -> Vec<(String, String)> {
        self.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The labels as a map, for code that wants one (kube's helpers).
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.owned_pairs().into_iter().collect()
    }
}

/// An offset into a Node's label text. Labels come from a facts file (at
/// most `fsutil::MAX_FACTS_BYTES`, 256 MiB) or from kubectl's output, read
/// up to a bound, both far below 4 GiB.
fn offset(len: usize) -> u32 {
    u32::try_from(len).expect("a Node's labels fit in 4 GiB")
}

impl From<BTreeMap<String, String>> for NodeLabels {
    fn from(map: BTreeMap<String, String>) -> Self {
        let pairs: Vec<(String, String)> = map.into_iter().collect();
        NodeLabels::from_sorted(&pairs)
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for NodeLabels {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        NodeLabels::from_pairs(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl<K: Into<String>, V: Into<String>, const N: usize> From<[(K, V); N]> for NodeLabels {
    fn from(pairs: [(K, V); N]) -> Self {
        pairs.into_iter().collect()
    }
}

impl fmt::Debug for NodeLabels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for NodeLabels {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for NodeLabels {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Pairs;
        impl<'de> Visitor<'de> for Pairs {
            type Value = NodeLabels;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of label keys to values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NodeLabels, A::Error> {
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(pair) = map.next_entry::<String, String>()? {
                    pairs.push(pair);
                }
                Ok(NodeLabels::from_pairs(pairs))
            }
        }
        deserializer.deserialize_map(Pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_as_the_sorted_map_it_was_made_from() {
        let m = map(&[
            ("kubernetes.io/os", "linux"),
            ("a", ""),
            ("node-role.kubernetes.io/control-plane", ""),
            ("goldentooth.io/rack", "r1"),
        ]);
        let labels = NodeLabels::from(m.clone());
        let read: Vec<(&str, &str)> = labels.iter().collect();
        let want: Vec<(&str, &str)> = m.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(read, want);
        assert_eq!(labels.len(), 4);
        assert_eq!(labels.get("goldentooth.io/rack"), Some("r1"));
        assert_eq!(labels.get("a"), Some(""));
        assert_eq!(labels.get("b"), None);
        assert!(labels.contains_key("node-role.kubernetes.io/control-plane"));
        assert!(!labels.contains_key("kubernetes.io"));
        assert_eq!(labels.to_map(), m);
        assert!(NodeLabels::default().is_empty());
        assert_eq!(NodeLabels::default().get(""), None);
    }

    #[test]
    fn pairs_in_any_order_sort_and_the_last_of_a_key_wins() {
        let labels: NodeLabels = [("b", "1"), ("a", "2"), ("b", "3")].into();
        assert_eq!(labels.iter().collect::<Vec<_>>(), [("a", "2"), ("b", "3")]);
    }

    #[test]
    fn insert_and_remove_keep_the_order_and_return_what_was_there() {
        let mut labels: NodeLabels = [("b", "1"), ("d", "2")].into();
        assert_eq!(labels.insert("c".into(), "x".into()), None);
        assert_eq!(labels.insert("a".into(), "".into()), None);
        assert_eq!(labels.insert("d".into(), "y".into()), Some("2".to_string()));
        assert_eq!(
            labels.iter().collect::<Vec<_>>(),
            [("a", ""), ("b", "1"), ("c", "x"), ("d", "y")]
        );
        assert_eq!(labels.remove("b"), Some("1".to_string()));
        assert_eq!(labels.remove("b"), None);
        assert_eq!(labels.keys().collect::<Vec<_>>(), ["a", "c", "d"]);
        assert_eq!(labels, [("d", "y"), ("c", "x"), ("a", "")].into());
    }

    #[test]
    fn json_is_the_maps_byte_for_byte_both_ways() {
        let m = map(&[("z", "1"), ("kubernetes.io/arch", "arm64"), ("e", "")]);
        let labels = NodeLabels::from(m.clone());
        let json = serde_json::to_string_pretty(&labels).unwrap();
        assert_eq!(json, serde_json::to_string_pretty(&m).unwrap());
        let back: NodeLabels = serde_json::from_str(&json).unwrap();
        assert_eq!(back, labels);
        // As serde_json reads a map: a repeated key keeps its last value.
        let repeated = r#"{"b": "1", "a": "x", "b": "2"}"#;
        let as_map: BTreeMap<String, String> = serde_json::from_str(repeated).unwrap();
        let read: NodeLabels = serde_json::from_str(repeated).unwrap();
        assert_eq!(read.to_map(), as_map);
        assert!(serde_json::from_str::<NodeLabels>(r#"{"a": 1}"#).is_err());
        assert!(serde_json::from_str::<NodeLabels>("[]").is_err());
    }
}
