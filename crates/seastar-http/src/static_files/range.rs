//! `Range: bytes=` parsing (RFC 9110 14.1): one range, or the whole file.

use http::header::HeaderValue;

/// What a `Range` header asks of a file.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum RangeSpec {
    Whole,
    /// `[start, end)`.
    Part(u64, u64),
    Unsatisfiable,
}

pub(super) fn parse_range(v: &HeaderValue, len: u64) -> RangeSpec {
    let Some(spec) = v
        .to_str()
        .ok()
        .and_then(|s| s.trim().strip_prefix("bytes="))
    else {
        return RangeSpec::Whole;
    };
    if spec.contains(',') {
        return RangeSpec::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeSpec::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    if len == 0 {
        // No byte to send a part of: a suffix range takes the whole
        // (empty) file, any other range starts past the end.
        return match (a.is_empty(), digits(b)) {
            (true, Some(0)) => RangeSpec::Unsatisfiable,
            (true, _) => RangeSpec::Whole,
            (false, _) if digits(a).is_some() => RangeSpec::Unsatisfiable,
            (false, _) => RangeSpec::Whole,
        };
    }
    match (digits(a).ok_or(()), digits(b).ok_or(())) {
        (Ok(a), _) if a >= len => RangeSpec::Unsatisfiable,
        (Ok(a), Ok(b)) if b >= a => RangeSpec::Part(a, b.saturating_add(1).min(len)),
        (Ok(a), Err(_)) if b.is_empty() => RangeSpec::Part(a, len),
        (Err(_), Ok(n)) if a.is_empty() => {
            if n == 0 {
                RangeSpec::Unsatisfiable
            } else {
                RangeSpec::Part(len.saturating_sub(n), len)
            }
        }
        _ => RangeSpec::Whole,
    }
}

/// A decimal number of ASCII digits only (`u64::from_str` also takes a `+`).
pub(super) fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hv(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).unwrap()
    }

    #[test]
    fn ranges_parse_per_rfc_9110() {
        assert_eq!(parse_range(&hv("bytes=0-9"), 100), RangeSpec::Part(0, 10));
        assert_eq!(parse_range(&hv("bytes=90-"), 100), RangeSpec::Part(90, 100));
        assert_eq!(parse_range(&hv("bytes=-10"), 100), RangeSpec::Part(90, 100));
        assert_eq!(parse_range(&hv("bytes=-200"), 100), RangeSpec::Part(0, 100));
        assert_eq!(
            parse_range(&hv("bytes=50-500"), 100),
            RangeSpec::Part(50, 100)
        );
        assert_eq!(
            parse_range(&hv("bytes=100-"), 100),
            RangeSpec::Unsatisfiable
        );
        assert_eq!(parse_range(&hv("bytes=-0"), 100), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range(&hv("bytes=5-2"), 100), RangeSpec::Whole);
        assert_eq!(parse_range(&hv("bytes=0-1,5-6"), 100), RangeSpec::Whole);
        assert_eq!(parse_range(&hv("items=0-1"), 100), RangeSpec::Whole);
        assert_eq!(parse_range(&hv("bytes=x-1"), 100), RangeSpec::Whole);
    }

    #[test]
    fn ranges_on_an_empty_file_never_underflow() {
        assert_eq!(parse_range(&hv("bytes=-5"), 0), RangeSpec::Whole);
        assert_eq!(parse_range(&hv("bytes=-0"), 0), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range(&hv("bytes=0-"), 0), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range(&hv("bytes=0-0"), 0), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range(&hv("bytes=x-"), 0), RangeSpec::Whole);
        assert_eq!(parse_range(&hv("bytes=+5-"), 100), RangeSpec::Whole);
        assert_eq!(parse_range(&hv("bytes=-+5"), 100), RangeSpec::Whole);
    }
}
