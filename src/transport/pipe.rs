//! Moving bytes in and out of a running command, shared by the SSH and local
//! hosts: stdin is written while the outputs are read, so that neither side
//! blocks on a full pipe. What is read is bounded per stream: a host that
//! prints without end must not make gt hold it all in memory.

use super::{LineSink, OutputLine, Stream};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

/// A stream went past its bound: reading stopped, the command must be stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exceeded {
    pub stream: Stream,
    pub bound: Bound,
}

/// What a stream went past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Bytes(usize),
    /// Lines forwarded as they come: each is a message of its own, which
    /// costs far more than its bytes (`yes` prints 2-byte lines).
    Lines(usize),
}

/// A line forwarded as it comes costs this much of the byte bound in lines:
/// 16 MiB of output may be streamed as at most 262,144 lines.
pub const BYTES_PER_STREAMED_LINE: usize = 64;

/// Writes `input` (if any) and closes stdin (with `hold`, only once both
/// outputs have ended, or when this future is dropped); reads both outputs to EOF,
/// forwarding complete lines to `lines`. Stops at once, with the stream that
/// did, when either output passes `limit` bytes, or, forwarded to `lines`,
/// `limit / BYTES_PER_STREAMED_LINE` lines.
pub async fn exchange<W, O, E>(
    host: &str,
    stdin: Option<W>,
    input: Option<&[u8]>,
    hold: bool,
    (stdout, stderr): (Option<O>, Option<E>),
    lines: Option<&LineSink>,
    limit: usize,
) -> Result<(String, String), Exceeded>
where
    W: AsyncWrite + Unpin,
    O: AsyncRead + Unpin,
    E: AsyncRead + Unpin,
{
    let feed = async {
        if let Some(mut w) = stdin {
            if let Some(bytes) = input {
                // A command that exits without reading its stdin is not an error of ours.
                let _ = w.write_all(bytes).await;
            }
            if hold {
                // Closed when this future ends or is dropped.
                return Ok(Some(w));
            }
            let _ = w.shutdown().await;
        }
        Ok::<Option<W>, Exceeded>(None)
    };
    let (_held, out, err) = tokio::try_join!(
        feed,
        read_all(host, stdout, Stream::Stdout, lines, limit),
        read_all(host, stderr, Stream::Stderr, lines, limit)
    )?;
    Ok((out, err))
}

async fn read_all<R: AsyncRead + Unpin>(
    host: &str,
    reader: Option<R>,
    stream: Stream,
    lines: Option<&LineSink>,
    limit: usize,
) -> Result<String, Exceeded> {
    let Some(reader) = reader else {
        return Ok(String::new());
    };
    let mut reader = BufReader::new(reader);
    let mut all = Vec::new();
    // Where the line not yet forwarded starts.
    let mut line_start = 0;
    let max_lines = limit / BYTES_PER_STREAMED_LINE;
    let mut forwarded = 0;
    let forward = |line: &[u8]| {
        if let Some(sink) = lines {
            let text = String::from_utf8_lossy(line);
            let _ = sink.send(OutputLine {
                host: host.to_string(),
                stream,
                line: text.trim_end_matches(['\n', '\r']).to_string(),
            });
        }
    };
    loop {
        let chunk = match reader.fill_buf().await {
            Ok([]) | Err(_) => break,
            Ok(chunk) => chunk,
        };
        if all.len() + chunk.len() > limit {
            return Err(Exceeded {
                stream,
                bound: Bound::Bytes(limit),
            });
        }
        let n = chunk.len();
        // Only the new bytes are searched: a long line is not scanned again
        // for every chunk of it.
        let scanned = all.len();
        all.extend_from_slice(chunk);
        reader.consume(n);
        let mut from = scanned;
        while let Some(at) = all[from..].iter().position(|&b| b == b'\n') {
            let end = from + at + 1;
            if lines.is_some() && forwarded == max_lines {
                return Err(Exceeded {
                    stream,
                    bound: Bound::Lines(max_lines),
                });
            }
            forward(&all[line_start..end]);
            forwarded += 1;
            line_start = end;
            from = end;
        }
    }
    if line_start < all.len() {
        forward(&all[line_start..]);
    }
    Ok(String::from_utf8_lossy(&all).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &'static [u8], limit: usize) -> (Result<String, Exceeded>, Vec<String>) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let out = rt.block_on(read_all(
            "fenn",
            Some(bytes),
            Stream::Stdout,
            Some(&tx),
            limit,
        ));
        drop(tx);
        let mut got = vec![];
        while let Ok(l) = rx.try_recv() {
            got.push(l.line);
        }
        (out, got)
    }

    #[test]
    fn lines_are_forwarded_whole_and_the_last_one_without_its_newline() {
        let (out, lines) = read(b"one\r\ntwo\nthree", 1000);
        assert_eq!(out.unwrap(), "one\r\ntwo\nthree");
        assert_eq!(lines, ["one", "two", "three"]);
    }

    #[test]
    fn reading_stops_past_the_bound() {
        assert_eq!(read(b"0123456789", 10).0.unwrap(), "0123456789");
        let (out, _) = read(b"0123456789a", 10);
        assert_eq!(
            out,
            Err(Exceeded {
                stream: Stream::Stdout,
                bound: Bound::Bytes(10)
            })
        );
    }

    #[test]
    fn lines_forwarded_as_they_come_are_bounded_too() {
        let limit = 3 * BYTES_PER_STREAMED_LINE;
        let (out, lines) = read(b"y\ny\ny\n", limit);
        assert_eq!((out.unwrap().len(), lines.len()), (6, 3));
        let (out, lines) = read(b"y\ny\ny\ny\n", limit);
        assert_eq!(
            out,
            Err(Exceeded {
                stream: Stream::Stdout,
                bound: Bound::Lines(3)
            })
        );
        assert_eq!(lines.len(), 3);
    }
}
