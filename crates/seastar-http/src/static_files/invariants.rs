//! The invariants of range parsing and path checking, for the fuzz
//! targets (`crates/seastar-http/fuzz`) and the unit tests; not an API.

use http::header::HeaderValue;

use super::range::{RangeSpec, parse_range};
use super::{relative_path, single_leading_slash};
use crate::Body;

/// Parses `header` as a `Range` value for a file of `len` bytes and
/// panics if the answer could not be served: a part must be a
/// non-empty slice of the file, and its `Content-Range` must say so.
pub fn check_range(header: &[u8], len: u64) {
    let Ok(v) = HeaderValue::from_bytes(header) else {
        return;
    };
    match parse_range(&v, len) {
        RangeSpec::Part(a, b) => {
            assert!(a < b && b <= len, "{v:?} on {len} bytes gave [{a}, {b})");
            let last = b - 1;
            assert!(last >= a);
        }
        RangeSpec::Whole | RangeSpec::Unsatisfiable => {}
    }
}

/// Checks the request path `path` as the static file handler does and
/// panics if an accepted path could leave the root (`..`, absolute,
/// backslash, NUL, empty segments) or if the directory redirect
/// built from it could be protocol-relative.
pub fn check_path(path: &str) {
    let Ok(uri) = http::Uri::try_from(path) else {
        return;
    };
    let req = http::Request::builder()
        .uri(uri)
        .body(Body::empty())
        .unwrap();
    if let Ok(rel) = relative_path(&req) {
        assert!(!rel.starts_with('/'), "{path:?} -> {rel:?}");
        assert!(!rel.contains(['\\', '\0']), "{path:?} -> {rel:?}");
        for seg in rel.split('/') {
            assert!(rel.is_empty() || !seg.is_empty(), "{path:?} -> {rel:?}");
            assert!(seg != ".." && seg != ".", "{path:?} -> {rel:?}");
        }
        let joined = std::path::Path::new("/root").join(&rel);
        assert!(joined.starts_with("/root"), "{path:?} -> {rel:?}");
    }
    let to = single_leading_slash(req.uri().path());
    assert!(
        to.starts_with('/') && !to.starts_with("//"),
        "{path:?} -> {to:?}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fuzz targets' invariants over a deterministic spread of inputs
    /// (the fuzzers search further; this keeps them checked on stable).
    #[test]
    fn range_and_path_invariants_hold_over_generated_inputs() {
        let parts = [
            "",
            "-",
            "0",
            "1",
            "5",
            "-0",
            "-1",
            "-5",
            "99",
            "100",
            "101",
            "18446744073709551615",
            "18446744073709551616",
            " ",
            "+1",
            "x",
            ",",
        ];
        for len in [0u64, 1, 5, 100, u64::MAX] {
            for a in parts {
                for b in parts {
                    for pre in ["bytes=", "bytes= ", "items=", ""] {
                        check_range(format!("{pre}{a}-{b}").as_bytes(), len);
                    }
                }
            }
        }
        let segs = [
            "", ".", "..", "a", "%2e%2e", "%2F", "%5c", "%00", "b.txt", "%", "%zz", "~",
        ];
        for x in segs {
            for y in segs {
                for z in segs {
                    check_path(&format!("/{x}/{y}/{z}"));
                    check_path(&format!("//{x}/{y}{z}"));
                }
            }
        }
    }
}
