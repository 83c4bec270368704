//! The join token a join uses, fresh enough for it: the one `kubeadm init`
//! created (or `mint-token` made) is minted again when less than a third
//! of its TTL is left, since hosts that prepare for long (a Raspberry Pi's
//! packages and reboot) can reach their join after a 15-minute token from
//! init has lapsed, and kubeadm then fails the join's discovery. The old
//! token is deleted at once: it has no join left to serve.

use super::{StepError, StepRunner};
use crate::kube::kubeadm;
use crate::kube::secret::BootstrapToken;
use crate::plan::StepId;
use crate::spec::format_duration;
use std::time::Duration;

/// A join renews the token when less than this share of its TTL is left.
const RENEW_BELOW: u32 = 3;

impl StepRunner<'_> {
    /// `kubeadm token create`: the run's token from now on.
    pub(super) async fn create_token(&self, id: &StepId) -> Result<BootstrapToken, StepError> {
        let made = tokio::time::Instant::now();
        let cmd = self
            .step_cmd(kubeadm::token_create_command(
                self.spec.tokens.ttl,
                &self.run.token_description(),
            ))
            .label("kubeadm token create");
        let out = self.admin(id, &cmd, self.settings().gate_timeout).await?;
        let token = kubeadm::parse_token_create(&out).ok_or(StepError::NotAToken)?;
        let mut s = self.secrets.lock().unwrap();
        s.token = Some(token.clone());
        s.token_made = Some(made);
        Ok(token)
    }

    pub(super) async fn token_for_join(&self, id: &StepId) -> Result<BootstrapToken, StepError> {
        // Joins that find it stale at once renew it once.
        let _renewing = self.token_renewal.lock().await;
        let (token, made) = {
            let s = self.secrets.lock().unwrap();
            (s.token.clone(), s.token_made)
        };
        let token = token.ok_or(StepError::NoToken)?;
        let ttl = self.spec.tokens.ttl.get();
        let age = made.map_or(Duration::ZERO, |m| m.elapsed());
        let left = ttl.saturating_sub(age);
        if left >= ttl / RENEW_BELOW {
            return Ok(token);
        }
        self.events.progress(
            id,
            format!(
                "join token {} has {} of its {} left: minting a fresh one",
                token.id(),
                format_duration(left),
                format_duration(ttl)
            ),
        );
        let fresh = self.create_token(id).await?;
        let delete = self
            .step_cmd(kubeadm::token_delete_command(token.id()))
            .label("kubeadm token delete");
        if let Err(e) = self.admin(id, &delete, Duration::from_secs(10)).await {
            if !e.tool_said("not found") {
                self.events.progress(
                    id,
                    format!(
                        "could not delete the old join token {} ({}); it expires by itself within {}",
                        token.id(),
                        super::exec::first_line(&e.to_string()),
                        format_duration(left)
                    ),
                );
            }
        }
        Ok(fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::steps::test_fixture::Fixture;
    use crate::spec::{NodeName, TokenTtl};
    use crate::transport::{BoxFuture, Cmd, Host, LineSink, Output, TransportError};
    use std::sync::{Arc, Mutex};

    const FRESH: &str = "fresh0.0123456789abcdef";

    /// A control plane that mints `FRESH` and records every command.
    #[derive(Default)]
    struct Tokens {
        commands: Mutex<Vec<String>>,
    }

    impl Host for Tokens {
        fn name(&self) -> &str {
            "bettley"
        }

        fn run<'a>(
            &'a self,
            cmd: &'a Cmd,
            _lines: Option<&'a LineSink>,
        ) -> BoxFuture<'a, Result<Output, TransportError>> {
            self.commands.lock().unwrap().push(cmd.script.clone());
            let stdout = if cmd.script.contains("token create") {
                format!("{FRESH}\n")
            } else {
                String::new()
            };
            Box::pin(async move {
                Ok(Output {
                    code: 0,
                    stdout,
                    stderr: String::new(),
                })
            })
        }

        fn close(&self) -> BoxFuture<'_, ()> {
            Box::pin(async {})
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_join_renews_the_token_from_init_only_once_little_of_it_is_left() {
        let host = Arc::new(Tokens::default());
        let answering = host.clone();
        let mut fixture = Fixture::new(move |_| answering.clone() as Arc<dyn Host>);
        fixture.spec.tokens.ttl = TokenTtl::new(Duration::from_secs(15 * 60)).unwrap();
        let runner = fixture.runner();
        let from_init = BootstrapToken::generate();
        {
            let mut s = runner.secrets.lock().unwrap();
            s.token = Some(from_init.clone());
            s.token_made = Some(tokio::time::Instant::now());
        }
        let id = StepId::JoinWorker("fenn".parse::<NodeName>().unwrap());
        // Ten minutes into a fifteen-minute token: a third is left, enough.
        tokio::time::advance(Duration::from_secs(10 * 60)).await;
        let t = runner.token_for_join(&id).await.unwrap();
        assert_eq!(t.id(), from_init.id());
        assert!(host.commands.lock().unwrap().is_empty());
        // A second later less than a third is left: a fresh one, the old one deleted.
        tokio::time::advance(Duration::from_secs(1)).await;
        let t = runner.token_for_join(&id).await.unwrap();
        assert_eq!(t.id(), "fresh0");
        let commands = host.commands.lock().unwrap().clone();
        assert_eq!(commands.len(), 2, "{commands:?}");
        assert!(commands[0].starts_with("kubeadm token create --ttl 15m0s"));
        assert_eq!(
            commands[1],
            format!("kubeadm token delete {}", from_init.id())
        );
        // The fresh one serves the joins after it, and is what the run revokes.
        let again = runner.token_for_join(&id).await.unwrap();
        assert_eq!(again.id(), "fresh0");
        assert_eq!(runner.token_id().as_deref(), Some("fresh0"));
        assert_eq!(host.commands.lock().unwrap().len(), 2);
    }
}
