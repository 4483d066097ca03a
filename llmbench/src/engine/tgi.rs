//! (being written) The Tgi adapter.

use futures_util::future::BoxFuture;

use super::{ClientConfig, EngineClient, GenRequest, ModelInfo};
use crate::error::{Error, Result};
use crate::measure::Exchange;

/// A client for one Tgi server (placeholder until the adapter lands).
#[derive(Debug)]
pub(crate) struct TgiClient {
    #[allow(dead_code)]
    config: ClientConfig,
}

impl TgiClient {
    pub(crate) fn new(config: ClientConfig) -> Result<Self> {
        Ok(TgiClient { config })
    }
}

impl EngineClient for TgiClient {
    fn send<'a>(&'a self, _req: &'a GenRequest, _ex: &'a mut Exchange) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
    fn models(&self) -> BoxFuture<'_, Result<Vec<ModelInfo>>> {
        Box::pin(async { Err(Error::config("not yet supported")) })
    }
    fn health(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { Err(Error::config("not yet supported")) })
    }
    fn version(&self) -> BoxFuture<'_, Result<Option<String>>> {
        Box::pin(async { Ok(None) })
    }
}
