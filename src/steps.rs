//! Long work (a push, an export) in steps: reads and writes of the
//! database in steps, Zoho's calls between them.
//!
//! A SQL call runs every step in its caller's transaction, which commits or
//! rolls back as one ([`InCaller`]). The worker runs each step in a
//! transaction of its own, as the flow's owner: no transaction is open
//! while Zoho is called, and what a step wrote stays when a later one fails
//! or the server crashes, so the next run goes on from there.

use pgrx::prelude::*;
use pgrx::spi::SpiClient;

use crate::error::ZohoFdwError;

pub(crate) trait Steps {
    fn step<R>(&mut self, f: impl FnOnce(&mut SpiClient<'_>) -> Result<R, ZohoFdwError>) -> Result<R, ZohoFdwError>;
    /// A step of the extension's own bookkeeping, which must run even when
    /// the flow's owner may no longer act (releasing a session lock).
    fn plain<R>(&mut self, f: impl FnOnce(&mut SpiClient<'_>) -> Result<R, ZohoFdwError>) -> Result<R, ZohoFdwError> {
        self.step(f)
    }
    /// Each step commits.
    fn commits(&self) -> bool;
}

/// Every step in the caller's transaction.
pub(crate) struct InCaller;

impl Steps for InCaller {
    fn step<R>(&mut self, f: impl FnOnce(&mut SpiClient<'_>) -> Result<R, ZohoFdwError>) -> Result<R, ZohoFdwError> {
        Spi::connect_mut(f)
    }
    fn commits(&self) -> bool {
        false
    }
}
