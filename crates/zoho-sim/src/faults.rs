//! Fault injection: queued faults that hit the next matching calls.

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer 401 INVALID_TOKEN.
    TokenExpiry,
    /// Answer this HTTP status with Zoho's error body.
    Status(u16),
    /// Drop the connection without an answer.
    Reset,
    /// Sleep this many ms, then answer normally.
    Slow(u64),
    /// Do the call, then sleep this many ms before answering: a write that
    /// Zoho applied but whose answer the client may never see.
    SlowReply(u64),
    /// A 200 whose body is not JSON.
    Malformed,
    /// The next bulk job ends in FAILURE / FAILED.
    JobFailed,
    /// The next bulk write skips this many rows with INVALID_DATA.
    SkipRows(usize),
}

/// A fault to inject; build with the constructors and `.on_path(prefix)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    /// How many matching calls it hits.
    pub count: u32,
    /// Only calls whose path starts with this; `None` matches every data
    /// call (but not `/oauth/…`, which only an explicit prefix reaches).
    pub path_prefix: Option<String>,
}

impl Fault {
    fn new(kind: FaultKind, count: u32) -> Self {
        Fault { kind, count, path_prefix: None }
    }
    pub fn status(code: u16, count: u32) -> Self {
        Self::new(FaultKind::Status(code), count)
    }
    pub fn token_expiry(count: u32) -> Self {
        Self::new(FaultKind::TokenExpiry, count)
    }
    pub fn reset(count: u32) -> Self {
        Self::new(FaultKind::Reset, count)
    }
    pub fn slow(ms: u64, count: u32) -> Self {
        Self::new(FaultKind::Slow(ms), count)
    }
    pub fn slow_reply(ms: u64, count: u32) -> Self {
        Self::new(FaultKind::SlowReply(ms), count)
    }
    pub fn malformed(count: u32) -> Self {
        Self::new(FaultKind::Malformed, count)
    }
    pub fn job_failed() -> Self {
        Self::new(FaultKind::JobFailed, 1)
    }
    pub fn skip_rows(n: usize) -> Self {
        Self::new(FaultKind::SkipRows(n), 1)
    }
    pub fn on_path(mut self, prefix: &str) -> Self {
        self.path_prefix = Some(prefix.to_string());
        self
    }

    /// The path starts with the prefix; a `*` in it stands for any run of
    /// characters and the part after the last `*` must end the path
    /// (`/crm/bulk/v8/read/*/result` hits downloads, not status reads).
    fn matches(&self, path: &str) -> bool {
        let Some(p) = &self.path_prefix else { return !path.starts_with("/oauth") };
        let parts: Vec<&str> = p.split('*').collect();
        if parts.len() == 1 {
            return path.starts_with(p.as_str());
        }
        let Some(mut rest) = path.strip_prefix(parts[0]) else { return false };
        for (i, part) in parts.iter().enumerate().skip(1) {
            if i == parts.len() - 1 {
                return rest.ends_with(part);
            }
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
        true
    }
}

/// The admin API's `POST /__sim/faults` body.
#[derive(Debug, Deserialize)]
pub struct FaultSpec {
    pub kind: String,
    pub count: Option<u32>,
    pub path_prefix: Option<String>,
    pub delay_ms: Option<u64>,
    pub status: Option<u16>,
}

impl FaultSpec {
    pub fn into_fault(self) -> Result<Fault, String> {
        let count = self.count.unwrap_or(1);
        let mut f = match self.kind.as_str() {
            "token_expiry" => Fault::token_expiry(count),
            "status" => Fault::status(self.status.ok_or("status fault needs \"status\"")?, count),
            "reset" => Fault::reset(count),
            "slow" => Fault::slow(self.delay_ms.ok_or("slow fault needs \"delay_ms\"")?, count),
            "slow_reply" => Fault::slow_reply(self.delay_ms.ok_or("slow_reply fault needs \"delay_ms\"")?, count),
            "malformed" => Fault::malformed(count),
            "job_failed" => Fault { kind: FaultKind::JobFailed, count, path_prefix: None },
            "skip_rows" => Fault::skip_rows(count as usize),
            other => return Err(format!("unknown fault kind {other:?}")),
        };
        f.path_prefix = self.path_prefix;
        Ok(f)
    }
}

#[derive(Debug, Default)]
pub struct Faults {
    pub queue: Vec<Fault>,
}

impl Faults {
    /// Takes one hit of the first per-call fault matching `path`.
    pub fn take(&mut self, path: &str) -> Option<FaultKind> {
        let i = self.queue.iter().position(|f| {
            f.count > 0 && !matches!(f.kind, FaultKind::JobFailed | FaultKind::SkipRows(_)) && f.matches(path)
        })?;
        let f = &mut self.queue[i];
        f.count -= 1;
        let kind = f.kind.clone();
        if f.count == 0 {
            self.queue.remove(i);
        }
        Some(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_by_prefix_or_pattern() {
        let f = Fault::status(500, 1).on_path("/crm/bulk/v8/read/*/result");
        assert!(f.matches("/crm/bulk/v8/read/5725/result"));
        assert!(!f.matches("/crm/bulk/v8/read/5725"));
        let f = Fault::status(500, 1).on_path("/crm/v8/upload");
        assert!(f.matches("/crm/v8/upload") && !f.matches("/crm/v8/Leads"));
        assert!(Fault::status(500, 1).matches("/crm/v8/Leads") && !Fault::status(500, 1).matches("/oauth/v2/token"));
    }
}
