//! Moving bytes in and out of a running command, shared by the SSH and local
//! hosts: stdin is written while the outputs are read, so that neither side
//! blocks on a full pipe.

use super::{LineSink, OutputLine, Stream};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

/// Writes `input` (if any) and closes stdin; reads both outputs to EOF,
/// forwarding complete lines to `lines`.
pub async fn exchange<W, O, E>(
    host: &str,
    stdin: Option<W>,
    input: Option<&[u8]>,
    stdout: Option<O>,
    stderr: Option<E>,
    lines: Option<&LineSink>,
) -> (String, String)
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
            let _ = w.shutdown().await;
        }
    };
    let (_, out, err) = tokio::join!(
        feed,
        read_all(host, stdout, Stream::Stdout, lines),
        read_all(host, stderr, Stream::Stderr, lines)
    );
    (out, err)
}

async fn read_all<R: AsyncRead + Unpin>(
    host: &str,
    reader: Option<R>,
    stream: Stream,
    lines: Option<&LineSink>,
) -> String {
    let Some(reader) = reader else {
        return String::new();
    };
    let mut reader = BufReader::new(reader);
    let mut all = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                all.extend_from_slice(&line);
                if let Some(sink) = lines {
                    let text = String::from_utf8_lossy(&line);
                    let _ = sink.send(OutputLine {
                        host: host.to_string(),
                        stream,
                        line: text.trim_end_matches(['\n', '\r']).to_string(),
                    });
                }
            }
        }
    }
    String::from_utf8_lossy(&all).into_owned()
}
