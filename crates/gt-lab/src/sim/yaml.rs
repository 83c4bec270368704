//! The YAML manifests `kubectl apply` reads, as JSON values: block mappings
//! and sequences, plain, quoted and block (`|`, `>`) scalars, comments,
//! empty and one-line flow collections, documents separated by `---`. What
//! manifests use, not all of YAML: anything else is an error naming the line,
//! which kubectl's callers see as the document it could not read.

use serde_json::{Map, Value};

#[derive(Debug, Clone)]
struct Line {
    /// 1-based, in the whole stream.
    number: usize,
    indent: usize,
    text: String,
}

/// The documents of a stream; empty documents are dropped.
pub(crate) fn documents(text: &str) -> Result<Vec<Value>, String> {
    let mut docs = Vec::new();
    let mut current: Vec<Line> = Vec::new();
    let mut raw: Vec<(usize, String)> = Vec::new();
    for (i, l) in text.lines().enumerate() {
        if l == "---" || l.starts_with("--- ") || l == "..." {
            docs.push(std::mem::take(&mut raw));
            continue;
        }
        raw.push((i + 1, l.to_string()));
    }
    docs.push(raw);
    let mut out = Vec::new();
    for d in docs {
        current.clear();
        for (number, l) in &d {
            current.push(Line {
                number: *number,
                indent: l.len() - l.trim_start_matches(' ').len(),
                text: l.trim_start_matches(' ').to_string(),
            });
        }
        if let Some(v) = document(&current)? {
            out.push(v);
        }
    }
    Ok(out)
}

fn document(lines: &[Line]) -> Result<Option<Value>, String> {
    // Block scalars keep their lines verbatim; everything else loses comments.
    let mut p = Parser {
        lines: lines.to_vec(),
        pos: 0,
    };
    p.skip_blank();
    if p.pos >= p.lines.len() {
        return Ok(None);
    }
    let indent = p.lines[p.pos].indent;
    let v = p.block(indent)?;
    p.skip_blank();
    if let Some(l) = p.lines.get(p.pos) {
        return Err(format!("line {}: unexpected {:?}", l.number, l.text));
    }
    Ok(Some(v))
}

struct Parser {
    lines: Vec<Line>,
    pos: usize,
}

fn is_blank(l: &Line) -> bool {
    l.text.trim().is_empty() || l.text.starts_with('#')
}

/// A line's text without a trailing ` # comment` outside quotes.
fn strip_comment(s: &str) -> &str {
    let (mut single, mut double) = (false, false);
    let bytes = s.as_bytes();
    for (i, c) in s.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && (i == 0 || bytes[i - 1] == b' ') => {
                return s[..i].trim_end()
            }
            _ => {}
        }
    }
    s.trim_end()
}

/// `key: rest` of a mapping line, the key unquoted.
fn split_key(s: &str) -> Option<(String, &str)> {
    if let Some(q) = s.strip_prefix('"') {
        let end = q.find('"')?;
        let rest = q[end + 1..].strip_prefix(':')?;
        return Some((q[..end].to_string(), rest.trim_start()));
    }
    if let Some(q) = s.strip_prefix('\'') {
        let end = q.find('\'')?;
        let rest = q[end + 1..].strip_prefix(':')?;
        return Some((q[..end].to_string(), rest.trim_start()));
    }
    let i = s
        .find(": ")
        .or_else(|| s.ends_with(':').then(|| s.len() - 1))?;
    let key = &s[..i];
    if key.is_empty() || key.starts_with(['[', '{', '-']) && key.len() == 1 {
        return None;
    }
    Some((key.to_string(), s[i + 1..].trim_start()))
}

impl Parser {
    fn skip_blank(&mut self) {
        while self.pos < self.lines.len() && is_blank(&self.lines[self.pos]) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<Line> {
        self.skip_blank();
        self.lines.get(self.pos).cloned()
    }

    fn block(&mut self, indent: usize) -> Result<Value, String> {
        let Some(first) = self.peek() else {
            return Ok(Value::Null);
        };
        if first.text == "-" || first.text.starts_with("- ") {
            self.sequence(indent)
        } else {
            self.mapping(indent)
        }
    }

    fn sequence(&mut self, indent: usize) -> Result<Value, String> {
        let mut items = Vec::new();
        while let Some(l) = self.peek() {
            if l.indent != indent || !(l.text == "-" || l.text.starts_with("- ")) {
                break;
            }
            let content = l.text[1..].trim_start();
            let content_indent = indent + (l.text.len() - content.len());
            if content.is_empty() {
                self.pos += 1;
                match self.peek() {
                    Some(n) if n.indent > indent => items.push(self.block(n.indent)?),
                    _ => items.push(Value::Null),
                }
                continue;
            }
            // The item's first line becomes a line of its own at the content's column.
            self.lines[self.pos] = Line {
                number: l.number,
                indent: content_indent,
                text: content.to_string(),
            };
            if split_key(strip_comment(content)).is_some() || content.starts_with("- ") {
                items.push(self.block(content_indent)?);
            } else {
                self.pos += 1;
                items.push(scalar(strip_comment(content), l.number)?);
            }
        }
        Ok(Value::Array(items))
    }

    fn mapping(&mut self, indent: usize) -> Result<Value, String> {
        let mut map = Map::new();
        while let Some(l) = self.peek() {
            if l.indent < indent {
                break;
            }
            if l.indent > indent {
                return Err(format!(
                    "line {}: bad indentation of {:?}",
                    l.number, l.text
                ));
            }
            if l.text == "-" || l.text.starts_with("- ") {
                break;
            }
            let text = strip_comment(&l.text);
            let Some((key, rest)) = split_key(text) else {
                return Err(format!(
                    "line {}: could not find expected ':' in {:?}",
                    l.number, l.text
                ));
            };
            self.pos += 1;
            let value = if rest.is_empty() {
                match self.peek() {
                    Some(n) if n.indent > indent => self.block(n.indent)?,
                    Some(n)
                        if n.indent == indent && (n.text == "-" || n.text.starts_with("- ")) =>
                    {
                        self.sequence(indent)?
                    }
                    _ => Value::Null,
                }
            } else if rest.starts_with('|') || rest.starts_with('>') {
                self.block_scalar(indent, rest)
            } else {
                scalar(rest, l.number)?
            };
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }

    /// The lines of a `|` or `>` scalar: everything indented deeper than its key.
    fn block_scalar(&mut self, indent: usize, header: &str) -> Value {
        let mut body: Vec<Line> = Vec::new();
        while let Some(l) = self.lines.get(self.pos) {
            if !l.text.trim().is_empty() && l.indent <= indent {
                break;
            }
            body.push(l.clone());
            self.pos += 1;
        }
        while body.last().is_some_and(|l| l.text.trim().is_empty()) {
            body.pop();
        }
        let common = body
            .iter()
            .filter(|l| !l.text.trim().is_empty())
            .map(|l| l.indent)
            .min()
            .unwrap_or(0);
        let lines: Vec<String> = body
            .iter()
            .map(|l| {
                if l.text.trim().is_empty() {
                    String::new()
                } else {
                    format!("{}{}", " ".repeat(l.indent - common), l.text)
                }
            })
            .collect();
        let mut s = if header.starts_with('>') {
            lines.join(" ")
        } else {
            lines.join("\n")
        };
        if !header.contains('-') {
            s.push('\n');
        }
        Value::String(s)
    }
}

fn scalar(s: &str, line: usize) -> Result<Value, String> {
    let s = strip_comment(s);
    if let Some(q) = s.strip_prefix('"') {
        let inner = q
            .strip_suffix('"')
            .ok_or_else(|| format!("line {line}: unterminated string {s:?}"))?;
        return Ok(Value::String(
            inner
                .replace("\\\"", "\"")
                .replace("\\n", "\n")
                .replace("\\t", "\t")
                .replace("\\\\", "\\"),
        ));
    }
    if let Some(q) = s.strip_prefix('\'') {
        let inner = q
            .strip_suffix('\'')
            .ok_or_else(|| format!("line {line}: unterminated string {s:?}"))?;
        return Ok(Value::String(inner.replace("''", "'")));
    }
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return inner
            .split(',')
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .map(|i| scalar(i, line))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array);
    }
    if let Some(inner) = s.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
        let mut m = Map::new();
        for pair in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) =
                split_key(pair).ok_or_else(|| format!("line {line}: could not read {pair:?}"))?;
            m.insert(k, scalar(v, line)?);
        }
        return Ok(Value::Object(m));
    }
    Ok(match s {
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        "null" | "Null" | "NULL" | "~" | "" => Value::Null,
        _ => match s.parse::<i64>() {
            Ok(n) if !(s.starts_with('+') || s.len() > 1 && s.starts_with('0')) => Value::from(n),
            _ => match s.parse::<f64>() {
                Ok(f)
                    if s.contains('.')
                        && s.chars()
                            .all(|c| c.is_ascii_digit() || c == '.' || c == '-') =>
                {
                    Value::from(f)
                }
                _ => Value::String(s.to_string()),
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_pod_manifest_reads_as_its_json() {
        let y = "# a bare pod\napiVersion: v1\nkind: Pod\nmetadata:\n  name: hr-app   # the app\n  labels:\n    app: hr\nspec:\n  nodeName: fenn\n  containers:\n  - name: app\n    image: \"nginx:1.27\"\n    args: [\"-v\", x]\n    ports:\n      - containerPort: 80\n  tolerations: []\n";
        let docs = documents(y).unwrap();
        assert_eq!(
            docs,
            vec![json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "hr-app", "labels": {"app": "hr"}},
                "spec": {"nodeName": "fenn", "containers": [{"name": "app", "image": "nginx:1.27", "args": ["-v", "x"], "ports": [{"containerPort": 80}]}], "tolerations": []},
            })]
        );
    }

    #[test]
    fn documents_split_on_dashes_and_empty_ones_are_dropped() {
        let y = "---\nkind: A\nmetadata:\n  name: a\n---\n# nothing\n---\nkind: B\nmetadata:\n  name: b\nitems:\n- a\n- b\n";
        let docs = documents(y).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1]["items"], json!(["a", "b"]));
    }

    #[test]
    fn block_scalars_keep_their_lines() {
        let y = "data:\n  calico_backend: \"bird\"\n  cni_network_config: |-\n    {\n      \"name\": \"k8s-pod-network\"\n    }\n  veth_mtu: \"0\"\n";
        let v = &documents(y).unwrap()[0];
        assert_eq!(
            v["data"]["cni_network_config"],
            "{\n  \"name\": \"k8s-pod-network\"\n}"
        );
        assert_eq!(v["data"]["veth_mtu"], "0");
    }

    #[test]
    fn scalars_are_typed_as_yaml_does() {
        let v = &documents("a: 1\nb: '01'\nc: 010\nd: true\ne: ~\nf: 1.5\ng: x # y\nh: \"a#b\"\n")
            .unwrap()[0];
        assert_eq!(
            v,
            &json!({"a": 1, "b": "01", "c": "010", "d": true, "e": null, "f": 1.5, "g": "x", "h": "a#b"})
        );
    }

    #[test]
    fn text_that_is_not_a_mapping_is_an_error_naming_its_line() {
        let e = documents("kind: Pod\nmetadata:\n  name: a\n bad\n").unwrap_err();
        assert!(e.starts_with("line 4:"), "{e}");
    }
}
