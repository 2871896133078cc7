//! Server status pages over the shared HTTP client.

use crate::common::http::{Client, ClientOptions, RequestSpec, Target};
use std::sync::Arc;
use std::time::Duration;

/// A server status page (`nginx` stub_status, Apache `server-status?auto`): GET, verified
/// TLS, status 200 and the whole page within [`StatusPage::MAX_BYTES`].
pub struct StatusPage {
    client: Client,
    target: Target,
    spec: Arc<RequestSpec>,
}

impl StatusPage {
    /// Status pages are a few hundred bytes (Apache's scoreboard one byte per worker slot);
    /// a bigger page is not one.
    pub const MAX_BYTES: usize = 64 * 1024;

    pub fn new(url: &str, timeout: Duration) -> Result<StatusPage, String> {
        let client = Client::new(&ClientOptions {
            timeout,
            follow_redirects: true,
            insecure_skip_verify: false,
            tls_ca: None,
            keep_bytes: Self::MAX_BYTES,
        })?;
        Ok(StatusPage {
            client,
            target: Target::parse(url)?,
            spec: Arc::new(RequestSpec::get()),
        })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    pub async fn fetch(&self) -> Result<Vec<u8>, String> {
        let shown = &self.target.shown;
        let page = self
            .client
            .fetch(&self.target, &self.spec, false)
            .await
            .map_err(|e| format!("{shown}: {e}"))?;
        if page.status != 200 {
            return Err(format!(
                "{shown}: HTTP status {} (expected 200)",
                page.status
            ));
        }
        if page.length > page.head.len() as u64 {
            return Err(format!(
                "{shown}: the page has {} bytes, more than a status page ({} at most); is this the status URL?",
                page.length,
                Self::MAX_BYTES
            ));
        }
        Ok(page.head)
    }
}
