//! Loading rows with PostgreSQL's own COPY machinery: `BeginCopyFrom` with
//! a data-source callback, then `CopyFrom`, as `COPY t (cols) FROM STDIN`
//! would, but fed from a Bulk Read download instead of a client. This is
//! the fastest way an extension can insert rows: COPY's batched heap and
//! index inserts, with triggers, defaults and constraints honoured.
//!
//! COPY's callback takes no user pointer, so the feed lives in a
//! thread-local for the length of one `CopyFrom`.

use std::cell::RefCell;
use std::ffi::{c_int, c_void, CString};

use pgrx::pg_sys;
use pgrx::prelude::*;
use zoho_api::copy_text::{CopyText, StreamError};

use crate::error::{raise, ZohoFdwError};

/// One downloaded page as COPY text (encoded on zoho-api's thread).
pub struct Feed {
    pub text: CopyText,
    /// The table rows go to, for messages.
    pub table: String,
    chunk: Vec<u8>,
    pos: usize,
}

impl Feed {
    pub fn new(text: CopyText, table: String) -> Feed {
        Feed { text, table, chunk: Vec::new(), pos: 0 }
    }

    /// Fills `out` with up to its length of COPY text; 0 at the end.
    fn read(&mut self, out: &mut [u8]) -> Result<usize, ZohoFdwError> {
        if self.pos == self.chunk.len() {
            match self.text.next_chunk() {
                None => return Ok(0),
                Some(Ok(chunk)) => {
                    self.chunk = chunk;
                    self.pos = 0;
                }
                Some(Err(StreamError::Cell(e))) => {
                    return Err(ZohoFdwError::BadValue {
                        table: self.table.clone(),
                        what: format!("Zoho record {} sends {:?} for column {}, which cannot hold it: {}", e.record_id, e.value, e.column, e.reason),
                    })
                }
                Some(Err(StreamError::Read(e))) => {
                    return Err(ZohoFdwError::BadValue { table: self.table.clone(), what: format!("the Bulk Read file cannot be read after {} rows: {e}", self.text.rows()) })
                }
            }
        }
        let n = (self.chunk.len() - self.pos).min(out.len());
        out[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

thread_local! {
    static FEED: RefCell<Option<Feed>> = const { RefCell::new(None) };
}

#[pg_guard]
unsafe extern "C-unwind" fn read_feed(outbuf: *mut c_void, _minread: c_int, maxread: c_int) -> c_int {
    // SAFETY: COPY's data-source callback: `outbuf` has room for `maxread` bytes,
    // which nothing else touches until this returns.
    unsafe {
        let out = std::slice::from_raw_parts_mut(outbuf as *mut u8, maxread as usize);
        let got = FEED.with(|f| match f.borrow_mut().as_mut() {
            Some(feed) => feed.read(out),
            None => Ok(0),
        });
        match got {
            Ok(n) => n as c_int,
            Err(e) => {
                // Stops the parsing thread before the ERROR unwinds.
                FEED.with(|f| f.borrow_mut().take());
                raise(e)
            }
        }
    }
}

/// `COPY rel (columns) FROM <feed>`; returns the rows inserted and gives
/// the feed back (for its row count).
pub fn copy_into(rel_oid: pg_sys::Oid, columns: &[String], feed: Feed) -> Result<(u64, Feed), ZohoFdwError> {
    // SAFETY: `rel` is opened and locked here and closed after the COPY;
    // `pstate` and `nsitem` are built for it just above, and read_feed runs only
    // inside CopyFrom, while FEED holds the feed.
    unsafe {
        if pg_sys::check_enable_rls(rel_oid, pg_sys::InvalidOid, false) == pg_sys::CheckEnableRlsResult::RLS_ENABLED as i32 {
            return Err(ZohoFdwError::NotSupported(format!("{} has row-level security, which COPY FROM does not support", feed.table)));
        }
        let rel = pg_sys::table_open(rel_oid, pg_sys::RowExclusiveLock as i32);
        let pstate = pg_sys::make_parsestate(std::ptr::null_mut());
        let nsitem = pg_sys::addRangeTableEntryForRelation(pstate, rel, pg_sys::RowExclusiveLock as i32, std::ptr::null_mut(), false, false);
        (*(*nsitem).p_rte).requiredPerms = pg_sys::ACL_INSERT as u32;
        pg_sys::addNSItemToQuery(pstate, nsitem, true, true, true);
        // The caller's INSERT privilege, as COPY checks it.
        pg_sys::ExecCheckRTPerms((*pstate).p_rtable, true);
        let mut names = pgrx::PgList::<pg_sys::Node>::new();
        for c in columns {
            let s = CString::new(c.as_str()).map_err(|_| ZohoFdwError::Internal("column name with a NUL byte".into()))?;
            names.push(pg_sys::makeString(pg_sys::pstrdup(s.as_ptr())) as *mut pg_sys::Node);
        }
        FEED.with(|f| *f.borrow_mut() = Some(feed));
        let cstate = pg_sys::BeginCopyFrom(pstate, rel, std::ptr::null_mut(), std::ptr::null(), false, Some(read_feed), names.into_pg(), std::ptr::null_mut());
        let inserted = pg_sys::CopyFrom(cstate);
        pg_sys::EndCopyFrom(cstate);
        pg_sys::free_parsestate(pstate);
        pg_sys::table_close(rel, pg_sys::NoLock as i32);
        let feed = FEED.with(|f| f.borrow_mut().take()).ok_or_else(|| ZohoFdwError::Internal("the COPY feed vanished".into()))?;
        Ok((inserted, feed))
    }
}
