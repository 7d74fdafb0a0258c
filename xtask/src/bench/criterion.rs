//! Reading criterion's results: `target/criterion/<group>/<function>[/<param>]/new/`.

use anyhow::{Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// One criterion benchmark's median time.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// Group (one operation, e.g. `spawn_await`), with `/<param>` if parameterised.
    pub group: String,
    /// Function: `seastar` or a peer (`tokio`, `crossbeam`, ...).
    pub function: String,
    /// Median point estimate, ns.
    pub median_ns: f64,
}

#[derive(Deserialize)]
struct Estimates {
    median: PointEstimate,
}

#[derive(Deserialize)]
struct PointEstimate {
    point_estimate: f64,
}

#[derive(Deserialize)]
struct BenchmarkId {
    group_id: String,
    function_id: Option<String>,
    value_str: Option<String>,
}

/// The median point estimate (ns) from an `estimates.json`.
pub fn parse_estimates(json: &str) -> Result<f64> {
    let e: Estimates = serde_json::from_str(json).context("bad criterion estimates.json")?;
    Ok(e.median.point_estimate)
}

/// (group, function) from a `benchmark.json`; a parameter is appended to the group.
pub fn parse_benchmark_id(json: &str) -> Result<(String, String)> {
    let id: BenchmarkId = serde_json::from_str(json).context("bad criterion benchmark.json")?;
    let group = match id.value_str {
        Some(v) if !v.is_empty() => format!("{}/{v}", id.group_id),
        _ => id.group_id,
    };
    Ok((group, id.function_id.unwrap_or_default()))
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "new") && path.join("estimates.json").is_file()
            {
                found.push(path);
            } else if path.file_name().is_none_or(|n| n != "report") {
                walk(&path, found);
            }
        }
    }
}

/// Every estimate under `criterion_dir` written at or after `since` (all if `None`),
/// sorted by group then function.
pub fn collect(criterion_dir: &Path, since: Option<SystemTime>) -> Result<Vec<Estimate>> {
    let mut dirs = Vec::new();
    walk(criterion_dir, &mut dirs);
    let mut out = Vec::new();
    for dir in dirs {
        let est_path = dir.join("estimates.json");
        if let Some(since) = since {
            let modified = std::fs::metadata(&est_path)?.modified()?;
            if modified < since {
                continue;
            }
        }
        let median_ns = parse_estimates(&std::fs::read_to_string(&est_path)?)
            .with_context(|| est_path.display().to_string())?;
        let (group, function) = match std::fs::read_to_string(dir.join("benchmark.json")) {
            Ok(json) => parse_benchmark_id(&json)?,
            Err(_) => ids_from_path(criterion_dir, &dir),
        };
        out.push(Estimate {
            group,
            function,
            median_ns,
        });
    }
    out.sort_by(|a, b| (&a.group, &a.function).cmp(&(&b.group, &b.function)));
    Ok(out)
}

/// Fallback when benchmark.json is missing: `<group>/<function>[/<param>]/new`.
fn ids_from_path(base: &Path, new_dir: &Path) -> (String, String) {
    let rel = new_dir.parent().and_then(|p| p.strip_prefix(base).ok());
    let parts: Vec<String> = rel
        .map(|r| r.iter().map(|c| c.to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    match parts.as_slice() {
        [group, function] => (group.clone(), function.clone()),
        [group, function, param, ..] => (format!("{group}/{param}"), function.clone()),
        [group] => (group.clone(), String::new()),
        [] => (String::new(), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ESTIMATES: &str = r#"{"mean":{"confidence_interval":{"confidence_level":0.95,
        "lower_bound":188.1,"upper_bound":192.3},"point_estimate":190.2,"standard_error":1.1},
        "median":{"confidence_interval":{"confidence_level":0.95,"lower_bound":187.0,
        "upper_bound":191.0},"point_estimate":189.5,"standard_error":0.9},
        "median_abs_dev":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1.0,
        "upper_bound":2.0},"point_estimate":1.5,"standard_error":0.2},"slope":null,
        "std_dev":{"confidence_interval":{"confidence_level":0.95,"lower_bound":3.0,
        "upper_bound":4.0},"point_estimate":3.5,"standard_error":0.3}}"#;

    #[test]
    fn parses_median() {
        assert_eq!(parse_estimates(ESTIMATES).unwrap(), 189.5);
        assert!(parse_estimates("{}").is_err());
    }

    #[test]
    fn parses_ids() {
        let plain = r#"{"group_id":"spawn_await","function_id":"tokio","value_str":null,
            "throughput":null,"full_id":"spawn_await/tokio","directory_name":"spawn_await/tokio",
            "title":"spawn_await/tokio"}"#;
        assert_eq!(
            parse_benchmark_id(plain).unwrap(),
            ("spawn_await".into(), "tokio".into())
        );
        let param = r#"{"group_id":"spawn_many","function_id":"seastar","value_str":"1000"}"#;
        assert_eq!(
            parse_benchmark_id(param).unwrap(),
            ("spawn_many/1000".into(), "seastar".into())
        );
    }

    #[test]
    fn collects_from_a_tree() {
        let base = std::env::temp_dir().join(format!("xtask-criterion-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        for (path, id) in [("yield/seastar/new", true), ("yield/tokio/new", false)] {
            let dir = base.join(path);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("estimates.json"), ESTIMATES).unwrap();
            if id {
                let json = r#"{"group_id":"yield","function_id":"seastar","value_str":null}"#;
                std::fs::write(dir.join("benchmark.json"), json).unwrap();
            }
        }
        std::fs::create_dir_all(base.join("report")).unwrap();
        let found = collect(&base, None).unwrap();
        let names: Vec<_> = found
            .iter()
            .map(|e| (e.group.as_str(), e.function.as_str()))
            .collect();
        assert_eq!(names, [("yield", "seastar"), ("yield", "tokio")]);
        let future = SystemTime::now() + std::time::Duration::from_secs(3600);
        assert!(collect(&base, Some(future)).unwrap().is_empty());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
