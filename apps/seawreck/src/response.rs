//! Incremental HTTP/1.1 response framing: how many bytes of a buffer make
//! the next complete response, and its status. Pure, no I/O.

/// One framed response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framed {
    /// Status code.
    pub status: u16,
    /// Bytes it occupies (head and body).
    pub len: usize,
    /// The server will close after it (`Connection: close`, or a body
    /// delimited by the close).
    pub close: bool,
}

/// Why a response could not be framed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Not HTTP/1.x.
    #[error("malformed response: {0}")]
    Malformed(String),
}

/// Frames the response at the start of `buf`: `Ok(None)` if more bytes
/// are needed. `head_only` for answers to HEAD.
///
/// ```
/// use seawreck::response::{frame, Framed};
///
/// let buf = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1";
/// assert_eq!(frame(buf, false).unwrap(), Some(Framed { status: 200, len: 40, close: false }));
/// assert_eq!(frame(&buf[..30], false).unwrap(), None);
/// ```
pub fn frame(buf: &[u8], head_only: bool) -> Result<Option<Framed>, FrameError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut r = httparse::Response::new(&mut headers);
    let head = match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(FrameError::Malformed(e.to_string())),
    };
    let status = r.code.unwrap_or(0);
    let mut length = None;
    let mut chunked = false;
    let mut close = r.version == Some(0);
    for h in r.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok());
            length = Some(v.ok_or_else(|| FrameError::Malformed("bad Content-Length".into()))?);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = h.value.eq_ignore_ascii_case(b"chunked");
        } else if h.name.eq_ignore_ascii_case("connection") {
            close = h.value.eq_ignore_ascii_case(b"close");
        }
    }
    if head_only || (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok(Some(Framed {
            status,
            len: head,
            close,
        }));
    }
    if chunked {
        return Ok(chunked_len(&buf[head..])?.map(|n| Framed {
            status,
            len: head + n,
            close,
        }));
    }
    match length {
        Some(n) if buf.len() >= head + n => Ok(Some(Framed {
            status,
            len: head + n,
            close,
        })),
        Some(_) => Ok(None),
        // Delimited by the close: the caller reads to the end.
        None => Err(FrameError::Malformed("response without length".into())),
    }
}

/// Length of a complete chunked body at the start of `buf`.
fn chunked_len(buf: &[u8]) -> Result<Option<usize>, FrameError> {
    let mut pos = 0;
    loop {
        let Some(eol) = buf[pos..].windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&buf[pos..pos + eol])
            .map_err(|_| FrameError::Malformed("bad chunk size".into()))?;
        let size_str = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_str, 16)
            .map_err(|_| FrameError::Malformed(format!("bad chunk size {size_str:?}")))?;
        pos += eol + 2;
        if size == 0 {
            // Trailers end with an empty line.
            loop {
                let Some(eol) = buf[pos..].windows(2).position(|w| w == b"\r\n") else {
                    return Ok(None);
                };
                pos += eol + 2;
                if eol == 0 {
                    return Ok(Some(pos));
                }
            }
        }
        if buf.len() < pos + size + 2 {
            return Ok(None);
        }
        pos += size + 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_chunked_bodies_and_interim_responses() {
        let b = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nX";
        assert_eq!(frame(b, false).unwrap().unwrap().len, b.len() - 1);
        for cut in 40..b.len() - 1 {
            assert_eq!(frame(&b[..cut], false).unwrap(), None, "cut {cut}");
        }
        let b = b"HTTP/1.1 100 Continue\r\n\r\n";
        assert_eq!(frame(b, false).unwrap().unwrap().status, 100);
        let b = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n";
        let f = frame(b, true).unwrap().unwrap();
        assert!(f.close && f.len == b.len());
    }

    #[test]
    fn rejects_garbage() {
        assert!(frame(b"HTTX/1.1 200 OK\r\n\r\n", false).is_err());
        assert!(frame(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", false).is_err());
        assert!(frame(b"HTTP/1.1 200 OK\r\n\r\n", false).is_err());
    }
}
