//! A scripted host for unit tests: each command is matched against patterns
//! (substrings of the script, first match wins) that give a canned answer.

use super::{BoxFuture, Cmd, Host, LineSink, Output, OutputLine, Stream, TransportError};
use std::sync::Mutex;
use std::time::Duration;

/// A canned answer.
#[derive(Debug, Clone)]
pub enum Reply {
    Output {
        output: Output,
        delay: Duration,
    },
    Error(TransportError),
    /// Never answers: the command runs into its deadline.
    Hang,
}

impl Reply {
    pub fn ok(stdout: impl Into<String>) -> Reply {
        Reply::exit(0, stdout, "")
    }

    pub fn exit(code: i32, stdout: impl Into<String>, stderr: impl Into<String>) -> Reply {
        Reply::Output {
            output: Output {
                code,
                stdout: stdout.into(),
                stderr: stderr.into(),
            },
            delay: Duration::ZERO,
        }
    }

    pub fn after(self, d: Duration) -> Reply {
        match self {
            Reply::Output { output, .. } => Reply::Output { output, delay: d },
            other => other,
        }
    }
}

pub struct FakeHost {
    name: String,
    rules: Vec<(String, Reply)>,
    /// Every script run, in order (what tests assert on).
    log: Mutex<Vec<String>>,
    closed: Mutex<bool>,
}

impl FakeHost {
    pub fn new(name: &str) -> FakeHost {
        FakeHost {
            name: name.to_string(),
            rules: Vec::new(),
            log: Mutex::new(Vec::new()),
            closed: Mutex::new(false),
        }
    }

    /// Answers commands containing `pattern` with `reply`.
    pub fn on(mut self, pattern: &str, reply: Reply) -> FakeHost {
        self.rules.push((pattern.to_string(), reply));
        self
    }

    pub fn commands(&self) -> Vec<String> {
        self.log.lock().expect("not poisoned").clone()
    }

    pub fn is_closed(&self) -> bool {
        *self.closed.lock().expect("not poisoned")
    }

    async fn answer(&self, cmd: &Cmd, lines: Option<&LineSink>) -> Result<Output, TransportError> {
        self.log
            .lock()
            .expect("not poisoned")
            .push(cmd.script.clone());
        let reply = self
            .rules
            .iter()
            .find(|(p, _)| cmd.script.contains(p.as_str()))
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| {
                Reply::exit(127, "", format!("sh: 1: {}: not found\n", cmd.program()))
            });
        match reply {
            Reply::Error(e) => Err(e),
            Reply::Hang => {
                tokio::time::sleep(cmd.timeout).await;
                Err(TransportError::CommandTimeout {
                    host: self.name.clone(),
                    command: cmd.program().to_string(),
                    after: super::secs(cmd.timeout),
                })
            }
            Reply::Output { output, delay } => {
                tokio::time::sleep(delay.min(cmd.timeout)).await;
                if delay > cmd.timeout {
                    return Err(TransportError::CommandTimeout {
                        host: self.name.clone(),
                        command: cmd.program().to_string(),
                        after: super::secs(cmd.timeout),
                    });
                }
                if let Some(sink) = lines {
                    for (stream, text) in [
                        (Stream::Stdout, &output.stdout),
                        (Stream::Stderr, &output.stderr),
                    ] {
                        for l in text.lines() {
                            let _ = sink.send(OutputLine {
                                host: self.name.clone(),
                                stream,
                                line: l.to_string(),
                            });
                        }
                    }
                }
                Ok(output)
            }
        }
    }
}

impl Host for FakeHost {
    fn name(&self) -> &str {
        &self.name
    }

    fn run<'a>(
        &'a self,
        cmd: &'a Cmd,
        lines: Option<&'a LineSink>,
    ) -> BoxFuture<'a, Result<Output, TransportError>> {
        Box::pin(self.answer(cmd, lines))
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        *self.closed.lock().expect("not poisoned") = true;
        Box::pin(async {})
    }
}
