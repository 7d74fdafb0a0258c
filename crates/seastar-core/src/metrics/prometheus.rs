//! The Prometheus text exposition format, version 0.0.4.
//!
//! [`render`] writes a [`Snapshot`] of every shard: one family per metric
//! name (all shards' samples together, as the format requires), each opened
//! by a `# HELP` and a `# TYPE` line; every sample carries a `shard` label
//! first, then its own labels. A histogram becomes `<name>_bucket` samples
//! with cumulative counts and an `le` label (the finite bounds, then
//! `+Inf`), `<name>_sum` and `<name>_count`.
//!
//! Names are made valid (`[a-zA-Z_:][a-zA-Z0-9_:]*`, so `net.bytes` becomes
//! `net_bytes`), label names likewise without `:`, label values escaped
//! (`\\`, `\"`, `\n`), help texts escaped (`\\`, `\n`). A name recorded with
//! two different types on different shards is exported with the first type
//! seen; the other samples are skipped with a warning.
//!
//! [`parse`] reads the format back (the subset [`render`] writes plus
//! comments and blank lines), for tests and tools.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{Snapshot, SubmitError, Value};

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders every shard's metrics.
///
/// ```
/// use seastar_core::metrics::{Sample, ShardSnapshot, Snapshot, Value, prometheus};
///
/// let snap = Snapshot {
///     shards: vec![ShardSnapshot {
///         shard: 0,
///         samples: vec![Sample { name: "hits_total".into(), labels: vec![], value: Value::Counter(3) }],
///         ..Default::default()
///     }],
///     ..Default::default()
/// };
/// assert_eq!(
///     prometheus::render(&snap),
///     "# HELP hits_total hits_total\n# TYPE hits_total counter\nhits_total{shard=\"0\"} 3\n"
/// );
/// ```
pub fn render(snapshot: &Snapshot) -> String {
    // name -> (type, name as recorded, [(shard, labels, value)])
    type Family<'a> = (
        &'static str,
        &'a str,
        Vec<(usize, &'a [(String, String)], &'a Value)>,
    );
    let mut families: BTreeMap<String, Family<'_>> = BTreeMap::new();
    for shard in &snapshot.shards {
        for s in &shard.samples {
            let name = metric_name(&s.name);
            let fam = families
                .entry(name)
                .or_insert_with(|| (s.value.kind(), &s.name, Vec::new()));
            if fam.0 != s.value.kind() {
                tracing::warn!(metric = %s.name, "metric recorded with two types; skipped");
                continue;
            }
            fam.2.push((shard.shard, &s.labels, &s.value));
        }
    }
    let mut out = String::new();
    for (name, (kind, recorded, samples)) in &families {
        let help = snapshot.help(recorded).unwrap_or(name);
        let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (shard, labels, value) in samples {
            let shard = shard.to_string();
            let base: Vec<(&str, &str)> = std::iter::once(("shard", shard.as_str()))
                .chain(
                    labels
                        .iter()
                        .filter(|(k, _)| k != "shard")
                        .map(|(k, v)| (k.as_str(), v.as_str())),
                )
                .collect();
            match value {
                Value::Counter(v) => line(&mut out, name, "", &base, None, &v.to_string()),
                Value::FloatCounter(v) => line(&mut out, name, "", &base, None, &number(*v)),
                Value::Gauge(v) => line(&mut out, name, "", &base, None, &number(*v)),
                Value::Histogram(h) => {
                    for (le, n) in h.cumulative() {
                        let le = number(le);
                        line(&mut out, name, "_bucket", &base, Some(&le), &n.to_string());
                    }
                    line(&mut out, name, "_sum", &base, None, &number(h.sum));
                    line(&mut out, name, "_count", &base, None, &h.count.to_string());
                }
            }
        }
    }
    out
}

/// Gathers every shard's metrics ([`gather`](super::gather)) and renders
/// them: the body of a `/metrics` response.
///
/// ```
/// use seastar_core::{Runtime, metrics};
///
/// Runtime::builder().shards(2).build().unwrap().run(async {
///     let text = metrics::prometheus::text().await.unwrap();
///     assert!(text.contains("seastar_reactor_tasks_run_total{shard=\"1\"}"));
/// });
/// ```
pub async fn text() -> Result<String, SubmitError> {
    Ok(render(&super::gather().await?))
}

fn line(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: &[(&str, &str)],
    le: Option<&str>,
    value: &str,
) {
    out.push_str(name);
    out.push_str(suffix);
    out.push('{');
    let le = le.map(|v| ("le", v));
    for (i, (k, v)) in labels.iter().copied().chain(le).enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{}=\"{}\"", label_name(k), escape_value(v));
    }
    out.push_str("} ");
    out.push_str(value);
    out.push('\n');
}

/// A float as Prometheus writes it (`+Inf`, `-Inf`, `NaN`, else decimal).
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        v.to_string()
    }
}

fn sanitize(s: &str, colon: bool) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// A valid metric name for `s`.
pub fn metric_name(s: &str) -> String {
    sanitize(s, true)
}

fn label_name(s: &str) -> String {
    sanitize(s, false)
}

fn escape_value(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

/// One sample line read back by [`parse`].
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedSample {
    /// The sample's name (with any `_bucket`/`_sum`/`_count` suffix).
    pub name: String,
    /// Its labels, in order, unescaped.
    pub labels: Vec<(String, String)>,
    /// Its value.
    pub value: f64,
}

/// One family read back by [`parse`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParsedFamily {
    /// The `# HELP` text, unescaped.
    pub help: Option<String>,
    /// The `# TYPE`.
    pub kind: Option<String>,
    /// The family's samples in order.
    pub samples: Vec<ParsedSample>,
}

/// Why [`parse`] rejected its input.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {reason}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// Parses the text format into families by name (a histogram's
/// `_bucket`/`_sum`/`_count` samples go to the family their `# TYPE` line
/// named). Rejects a sample whose family has no `# TYPE`, a family whose
/// samples are not contiguous, bad escapes and bad numbers.
///
/// ```
/// use seastar_core::metrics::prometheus::parse;
///
/// let fams = parse("# TYPE up gauge\nup{job=\"a\\\"b\"} 1\n").unwrap();
/// assert_eq!(fams["up"].samples[0].labels, vec![("job".to_string(), "a\"b".to_string())]);
/// ```
pub fn parse(text: &str) -> Result<BTreeMap<String, ParsedFamily>, ParseError> {
    let mut fams: BTreeMap<String, ParsedFamily> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut closed: Vec<String> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let err = |reason: &str| ParseError {
            line: i + 1,
            reason: reason.to_owned(),
        };
        if raw.trim().is_empty() {
            continue;
        }
        if let Some(rest) = raw.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (Some(kw), Some(name)) = (parts.next(), parts.next()) else {
                continue;
            };
            let text = parts.next().unwrap_or("");
            if kw != "HELP" && kw != "TYPE" {
                continue;
            }
            if current.as_deref() != Some(name) {
                if closed.iter().any(|c| c == name) {
                    return Err(err("family appears twice"));
                }
                if let Some(c) = current.take() {
                    closed.push(c);
                }
                current = Some(name.to_owned());
            }
            let fam = fams.entry(name.to_owned()).or_default();
            if kw == "HELP" {
                fam.help = Some(unescape(text).ok_or_else(|| err("bad escape"))?);
            } else {
                if !matches!(
                    text,
                    "counter" | "gauge" | "histogram" | "summary" | "untyped"
                ) {
                    return Err(err("unknown type"));
                }
                fam.kind = Some(text.to_owned());
            }
            continue;
        }
        if raw.starts_with('#') {
            continue;
        }
        let sample = parse_sample(raw).map_err(|r| err(&r))?;
        let family = current
            .clone()
            .filter(|f| {
                sample.name == *f
                    || ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|s| sample.name == format!("{f}{s}"))
            })
            .ok_or_else(|| err("sample outside its family (no # TYPE line before it)"))?;
        let fam = fams.get_mut(&family).expect("current family exists");
        if fam.kind.is_none() {
            return Err(err("sample before its # TYPE line"));
        }
        fam.samples.push(sample);
    }
    Ok(fams)
}

fn parse_sample(line: &str) -> Result<ParsedSample, String> {
    let end = line
        .find(['{', ' '])
        .ok_or_else(|| "no value".to_string())?;
    let name = &line[..end];
    if name.is_empty() || metric_name(name) != name {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut rest = &line[end..];
    let mut labels = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        rest = r;
        loop {
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            let eq = rest.find('=').ok_or("label without '='")?;
            let key = &rest[..eq];
            if key.is_empty() || label_name(key) != key {
                return Err(format!("bad label name {key:?}"));
            }
            rest = rest[eq + 1..]
                .strip_prefix('"')
                .ok_or("label value not quoted")?;
            let mut value = String::new();
            let mut chars = rest.char_indices();
            let close = loop {
                match chars.next() {
                    None => return Err("unterminated label value".into()),
                    Some((i, '"')) => break i,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, '\\')) => value.push('\\'),
                        Some((_, '"')) => value.push('"'),
                        Some((_, 'n')) => value.push('\n'),
                        _ => return Err("bad escape in label value".into()),
                    },
                    Some((_, c)) => value.push(c),
                }
            };
            labels.push((key.to_owned(), value));
            rest = &rest[close + 1..];
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
    }
    let mut fields = rest.split_ascii_whitespace();
    let v = fields.next().ok_or("no value")?;
    let value = match v {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().map_err(|_| format!("bad value {v:?}"))?,
    };
    if let Some(ts) = fields.next() {
        ts.parse::<i64>().map_err(|_| "bad timestamp".to_string())?;
    }
    Ok(ParsedSample {
        name: name.to_owned(),
        labels,
        value,
    })
}

fn unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            '\\' => out.push('\\'),
            'n' => out.push('\n'),
            _ => return None,
        }
    }
    Some(out)
}
