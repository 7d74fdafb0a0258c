//! Decimal parsing with memcached's acceptance rules.
//!
//! memcached parses numbers with `safe_strtoull`/`safe_strtol` (util.c):
//! `strtoull`/`strtol` in base 10, so leading whitespace and a sign are
//! accepted, at least one digit is required, overflow is rejected, and the
//! number may be followed only by whitespace or the end of the token. A `-`
//! is rejected for unsigned values only when the result would be negative as
//! a signed number (so `-0` parses as 0, as it does in memcached). We follow
//! those rules so that the same lines are accepted and refused.

fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Splits optional whitespace and sign; returns (negative, digits..rest).
fn prefix(s: &[u8]) -> (bool, &[u8]) {
    let start = s.iter().position(|&b| !is_c_space(b)).unwrap_or(s.len());
    let s = &s[start..];
    match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    }
}

/// Accumulates decimal digits; None on overflow or when there are none or
/// when something other than whitespace follows them.
fn digits(s: &[u8]) -> Option<u64> {
    let n = s
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    if n == 0 {
        return None;
    }
    if let Some(&b) = s.get(n) {
        if !is_c_space(b) {
            return None;
        }
    }
    let mut v: u64 = 0;
    for &d in &s[..n] {
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(v)
}

/// `safe_strtoull`: an unsigned 64-bit number.
///
/// ```
/// use memcached::protocol::number::parse_u64;
/// assert_eq!(parse_u64(b"42"), Some(42));
/// assert_eq!(parse_u64(b"+7"), Some(7));
/// assert_eq!(parse_u64(b"-1"), None);
/// assert_eq!(parse_u64(b"12a"), None);
/// assert_eq!(parse_u64(b"18446744073709551616"), None);
/// ```
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    let (neg, rest) = prefix(s);
    let v = digits(rest)?;
    let v = if neg { v.wrapping_neg() } else { v };
    // memcached: only refuse '-' when the result is negative as a signed value.
    if neg && (v as i64) < 0 {
        return None;
    }
    Some(v)
}

/// `safe_strtoul` for 32-bit client flags. Values above `u32::MAX` are
/// refused rather than truncated.
pub fn parse_u32(s: &[u8]) -> Option<u32> {
    let v = parse_u64(s)?;
    u32::try_from(v).ok()
}

/// `safe_strtol`: a signed number within `i64`.
///
/// ```
/// use memcached::protocol::number::parse_i64;
/// assert_eq!(parse_i64(b"-1"), Some(-1));
/// assert_eq!(parse_i64(b"0"), Some(0));
/// assert_eq!(parse_i64(b"x"), None);
/// ```
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    let (neg, rest) = prefix(s);
    let v = digits(rest)?;
    if neg {
        if v > i64::MAX as u64 + 1 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

/// `safe_strtol` into `int32_t`, as memcached reads data lengths.
pub fn parse_i32(s: &[u8]) -> Option<i32> {
    i32::try_from(parse_i64(s)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsigned_accepts_whitespace_and_plus() {
        assert_eq!(parse_u64(b" 5"), Some(5));
        assert_eq!(parse_u64(b"5\t"), Some(5));
        assert_eq!(parse_u64(b"5 junk"), Some(5));
        assert_eq!(parse_u64(b"-0"), Some(0));
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
    }

    #[test]
    fn unsigned_refuses_garbage() {
        for bad in [&b""[..], b"-", b"+", b"a1", b"1a", b"-5", b" "] {
            assert_eq!(parse_u64(bad), None, "{:?}", bad);
        }
    }

    #[test]
    fn flags_above_u32_are_refused() {
        assert_eq!(parse_u32(b"4294967295"), Some(u32::MAX));
        assert_eq!(parse_u32(b"4294967296"), None);
    }

    #[test]
    fn signed_bounds() {
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i32(b"2147483648"), None);
        assert_eq!(parse_i32(b"-2147483648"), Some(i32::MIN));
    }
}
