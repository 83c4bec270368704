//! `gt plan --json`: the plan layer's document, printed (README "Plan JSON");
//! and the JSON writer every printed document goes through.

use crate::plan::Plan;
use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter, PrettyFormatter, Serializer};
use std::io::{self, Write};

pub use crate::plan::PLAN_FORMAT_VERSION;

pub fn plan_json(plan: &Plan) -> String {
    let mut out = to_string_pretty(&plan.document().to_sorted_value());
    out.push('\n');
    out
}

/// One JSON line. serde_json escapes C0 controls only; this also escapes
/// DEL, C1 controls and the bidirectional overrides (see `sanitize`), which
/// a terminal showing the JSON would act on too.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> String {
    write_with(value, CompactFormatter)
}

/// As `to_string`, indented.
pub fn to_string_pretty<T: Serialize + ?Sized>(value: &T) -> String {
    write_with(value, PrettyFormatter::new())
}

fn write_with<T: Serialize + ?Sized, F: Formatter>(value: &T, f: F) -> String {
    let mut out = Vec::new();
    value
        .serialize(&mut Serializer::with_formatter(&mut out, Escaping(f)))
        .expect("gt's documents serialize");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// A formatter that escapes what serde_json leaves raw; layout is `F`'s.
struct Escaping<F>(F);

impl<F: Formatter> Formatter for Escaping<F> {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if super::sanitize::unsafe_char(c) {
                w.write_all(&fragment.as_bytes()[start..i])?;
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    write!(w, "\\u{u:04x}")?;
                }
                start = i + c.len_utf8();
            }
        }
        w.write_all(&fragment.as_bytes()[start..])
    }
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn end_object_key<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_key(w)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_serde_json_leaves_raw_is_escaped_and_reads_back_the_same() {
        let v = serde_json::json!({"arch": "arm\u{1b}[31m\u{7f}\u{9b}2J\u{202e}", "ok": ["é", 1]});
        let compact = to_string(&v);
        assert_eq!(
            compact,
            r#"{"arch":"arm\u001b[31m\u007f\u009b2J\u202e","ok":["é",1]}"#
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&compact).unwrap(),
            v
        );
        let pretty = to_string_pretty(&v);
        assert!(pretty.contains("\n  \"ok\": [\n    \"é\","), "{pretty}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&pretty).unwrap(),
            v
        );
    }
}
