//! `linux_net`: not implemented yet.

use crate::core::{ready, CollectFuture, Emitter, Input};
use crate::inputs::BuildCtx;
use serde::Deserialize;

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "- linux_net\n";

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {}

pub struct Stub;

pub fn build(_cfg: &Config, _ctx: &BuildCtx) -> Result<Stub, String> {
    Ok(Stub)
}

impl Input for Stub {
    fn collect<'a>(&'a mut self, _em: &'a mut Emitter<'_>) -> CollectFuture<'a> {
        ready(Ok(()))
    }
}
