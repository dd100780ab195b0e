-- The wrapper itself: handler and validator come from src/fdw.
CREATE FOREIGN DATA WRAPPER zoho_fdw
  HANDLER zoho_fdw_handler
  VALIDATOR zoho_fdw_validator;

COMMENT ON FOREIGN DATA WRAPPER zoho_fdw IS 'Zoho CRM modules as foreign tables';
