//! What a function builds once at start-up and shares across invocations.

use crate::billing::auth::Tokens;
use crate::platform::config::{Config, ConfigError};
use crate::platform::database::{self, Client, Connect, Pool};
use crate::platform::error::Result;
use std::sync::Arc;

#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub pool: Pool,
    pub tokens: Arc<Tokens>,
}

impl App {
    /// Builds the state from `Config`. The pool connects lazily, on the first request, so a
    /// cold start does not pay for a connection the invocation may not need.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        let pool = database::pool(&Connect::from_config(&config)?, config.db_pool_size)?;
        let tokens = Arc::new(Tokens::new(config.jwt.clone()));
        Ok(App {
            config: Arc::new(config),
            pool,
            tokens,
        })
    }

    /// A pooled connection, or `Unavailable` (503) when the database cannot be reached.
    pub async fn db(&self) -> Result<Client> {
        Ok(self.pool.get().await?)
    }
}
