//! zoho_fdw: Zoho CRM inside PostgreSQL.
//!
//! This crate is glue: Zoho logic lives in `zoho-api`. Layout:
//! - [`fdw`]: the foreign-data wrapper (handler, validator, callbacks)
//! - [`options`]: which options each catalog object takes, and their checks
//! - [`server`]: server + user mapping → a configured client
//! - [`functions`]: the SQL functions (`zoho_ping`, …)
//! - [`push`]: legacy → Zoho: `zoho_upsert_pending`, the `zoho_mark_pending` trigger
//! - [`export`]: Zoho → legacy: `zoho_bulk_export`, `zoho_create_mirror`
//! - [`watch`]: `zoho_watch`, `zoho_unwatch`; [`worker`]: the background worker
//! - [`gucs`]: the `zoho_fdw.*` settings
//! - [`local`]: local tables and columns, as push and export read them
//! - [`privileges`]: who may act on what; the worker acting as a flow's owner
//! - [`runtime`]: the backend's async runtime and cancel hook
//! - [`tokens`]: access tokens shared by all backends (shared memory)
//! - [`usage`]: API calls and credits of all backends (shared memory)
//! - [`error`]: errors → SQLSTATE, message, hint

use pgrx::prelude::*;

mod error;
mod export;
mod fdw;
mod filter;
mod gucs;
mod job_callbacks;
mod local;
mod functions;
mod options;
mod privileges;
mod progress;
mod push;
mod runtime;
mod server;
mod steps;
mod sync;
mod timestamps;
mod tokens;
mod usage;
mod verify;
mod watch;
mod worker;

::pgrx::pg_module_magic!();

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    progress::on_backend_thread();
    tokens::init();
    usage::init();
    job_callbacks::init();
    worker::wake::init();
    worker::strays::init();
    gucs::init();
    fdw::join::init();
    worker::register();
}

extension_sql_file!("../sql/fdw.sql", name = "create_fdw", requires = [zoho_fdw_handler, zoho_fdw_validator]);

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn wrapper_is_registered() {
        let handler = Spi::get_one::<String>(
            "SELECT h.proname::text FROM pg_foreign_data_wrapper w JOIN pg_proc h ON h.oid = w.fdwhandler WHERE w.fdwname = 'zoho_fdw'",
        );
        assert_eq!(handler, Ok(Some("zoho_fdw_handler".to_string())));
    }

    #[pg_test]
    fn valid_options_are_accepted() {
        Spi::run("CREATE SERVER z1 FOREIGN DATA WRAPPER zoho_fdw OPTIONS (data_center 'eu', timeout_ms '5000')").unwrap();
        Spi::run("CREATE SERVER z2 FOREIGN DATA WRAPPER zoho_fdw OPTIONS (api_domain 'http://127.0.0.1:1', accounts_url 'http://127.0.0.1:1')").unwrap();
        Spi::run("CREATE USER MAPPING FOR CURRENT_USER SERVER z1 OPTIONS (client_id 'a', client_secret 'b', refresh_token 'c')").unwrap();
        Spi::run("CREATE FOREIGN TABLE leads (id bigint, last_name text OPTIONS (api_name 'Last_Name')) SERVER z1 OPTIONS (module 'Leads')").unwrap();
        let n = Spi::get_one::<i64>("SELECT count(*) FROM pg_foreign_server WHERE srvname IN ('z1','z2')");
        assert_eq!(n, Ok(Some(2)));
    }

    #[pg_test(error = "zoho_fdw: invalid option \"datacenter\" for a server")]
    fn unknown_server_option() {
        Spi::run("CREATE SERVER z FOREIGN DATA WRAPPER zoho_fdw OPTIONS (datacenter 'eu')").unwrap();
    }

    #[pg_test(error = "zoho_fdw: invalid value for option \"data_center\" of a server: unknown Zoho data centre \"mars\"; valid: us, eu, in, au, jp, ca, cn, sa")]
    fn unknown_data_center() {
        Spi::run("CREATE SERVER z FOREIGN DATA WRAPPER zoho_fdw OPTIONS (data_center 'mars')").unwrap();
    }

    #[pg_test(error = "zoho_fdw: user mapping is missing option(s): refresh_token")]
    fn user_mapping_needs_refresh_token() {
        Spi::run("CREATE SERVER z FOREIGN DATA WRAPPER zoho_fdw").unwrap();
        Spi::run("CREATE USER MAPPING FOR CURRENT_USER SERVER z OPTIONS (client_id 'a', client_secret 'b')").unwrap();
    }

    #[pg_test(error = "zoho_fdw: foreign table is missing option(s): module")]
    fn table_needs_module() {
        Spi::run("CREATE SERVER z FOREIGN DATA WRAPPER zoho_fdw").unwrap();
        Spi::run("CREATE FOREIGN TABLE t (id bigint) SERVER z").unwrap();
    }

    #[pg_test(error = "zoho_fdw: invalid option \"field\" for a foreign table column")]
    fn unknown_column_option() {
        Spi::run("CREATE SERVER z FOREIGN DATA WRAPPER zoho_fdw").unwrap();
        Spi::run("CREATE FOREIGN TABLE t (id bigint OPTIONS (field 'id')) SERVER z OPTIONS (module 'Leads')").unwrap();
    }

    #[pg_test(error = "zoho_fdw: server is missing option(s): accounts_url")]
    fn api_domain_needs_accounts_url() {
        Spi::run("CREATE SERVER z FOREIGN DATA WRAPPER zoho_fdw OPTIONS (api_domain 'http://127.0.0.1:1')").unwrap();
    }

    #[pg_test(error = "zoho_fdw: invalid value for option \"max_concurrency\" of a server: must be a whole number from 1 to 25")]
    fn max_concurrency_range() {
        Spi::run("CREATE SERVER z FOREIGN DATA WRAPPER zoho_fdw OPTIONS (max_concurrency '0')").unwrap();
    }

    #[pg_test(error = "zoho_fdw: no zoho_fdw server exists")]
    fn ping_without_server() {
        Spi::run("SELECT * FROM zoho_ping()").unwrap();
    }

    #[pg_test(error = "zoho_fdw: 2 zoho_fdw servers exist (a, b); name the one to use")]
    fn ping_with_two_servers() {
        Spi::run("CREATE SERVER a FOREIGN DATA WRAPPER zoho_fdw").unwrap();
        Spi::run("CREATE SERVER b FOREIGN DATA WRAPPER zoho_fdw").unwrap();
        Spi::run("SELECT * FROM zoho_ping()").unwrap();
    }
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
